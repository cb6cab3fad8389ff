/* dns_mx — from cached record sets to an MX result: which hosts to resolve, preference order
 * with equal preferences shuffled (RFC 5321 5.1), implicit MX, null MX (RFC 7505), statuses;
 * and the one-host result of a plain A/AAAA lookup (dns_resolve_host) or a numeric address.
 *
 * Why separate: the same pure functions serve both paths, the caller's thread when every record
 * set is cached and the resolver thread when the last answer arrives, so the two cannot drift.
 */
#include "dns/dns_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static _Thread_local uint64_t rng_state;

static uint64_t rng_next(void)
{
	if (!rng_state) {
		if (getrandom(&rng_state, sizeof(rng_state), GRND_NONBLOCK) != sizeof(rng_state))
			rng_state = dns_now_ms() ^ (uintptr_t)&rng_state;
		rng_state |= 1;
	}
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Copy S into DST of size CAP (cut, always terminated): cheaper than snprintf on a hot path. */
static void copy_str(char *dst, size_t cap, const char *s)
{
	size_t n = strlen(s);
	if (n > cap - 1)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = 0;
}

/* dns_mx_fail: a result with no hosts, status ST and reason WHY. NULL on allocation failure. */
struct dns_mx_result *dns_mx_fail(const char *domain, enum dns_status st, const char *why)
{
	struct dns_mx_result *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->status = st;
	copy_str(r->domain, sizeof(r->domain), domain);
	copy_str(r->reason, sizeof(r->reason), why);
	return r;
}

/* Indices of MX's records in preference order (stable), root targets left out. */
static size_t mx_order(const struct dns_ent *mx, uint32_t *idx, size_t cap)
{
	size_t n = 0;
	for (uint32_t i = 0; i < mx->n && n < cap; i++) {
		if (!mx->r.mx[i].host[0])
			continue;
		size_t j = n++;
		while (j > 0 && mx->r.mx[idx[j - 1]].pref > mx->r.mx[i].pref) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = i;
	}
	return n;
}

/* dns_mx_hosts: the host names whose A/AAAA the answer needs (NAMES, at most 32, pointing
 * into MX or DOMAIN): every host whose preference is within the first MAX_HOSTS, so a shuffle
 * among equal preferences at the cut still has addresses. Returns DNS_OK with *N set, or the
 * final status when no host lookup is needed (null MX, NXDOMAIN, no MX, temporary failure). */
int dns_mx_hosts(const struct dns_ent *mx, unsigned max_hosts, int implicit_mx, const char *domain,
		 const char **names, size_t *n)
{
	uint32_t idx[DNS_HOSTS_MAX];
	*n = 0;
	if (mx->rstat == DNS_R_TEMP)
		return DNS_TEMPFAIL;
	if (mx->rstat == DNS_R_NXDOMAIN)
		return DNS_NXDOMAIN;
	if (mx->rstat == DNS_R_NODATA) {
		if (!implicit_mx)
			return DNS_NO_MX;
		names[(*n)++] = domain;
		return DNS_OK;
	}
	size_t k = mx_order(mx, idx, DNS_HOSTS_MAX);
	if (k == 0)
		return DNS_NULL_MX;
	uint16_t cut = mx->r.mx[idx[(k < max_hosts ? k : max_hosts) - 1]].pref;
	for (size_t i = 0; i < k && mx->r.mx[idx[i]].pref <= cut; i++)
		names[(*n)++] = mx->r.mx[idx[i]].host;
	return DNS_OK;
}

static uint32_t ttl_left(const struct dns_ent *e, uint64_t now)
{
	return e->expires_ms > now ? (uint32_t)((e->expires_ms - now + 999) / 1000) : 0;
}

/* Fill H's addresses from its A and AAAA record sets; sets H's status. */
static int host_fill(struct dns_mx_host *h, const struct dns_ent *a4, const struct dns_ent *a6,
		     uint64_t now)
{
	const struct dns_ent *sets[2] = {a4, a6};
	h->addrs = calloc((size_t)a4->n + a6->n + 1, sizeof(*h->addrs));
	if (!h->addrs)
		return -1;
	for (int s = 0; s < 2; s++) {
		for (uint32_t i = 0; i < sets[s]->n; i++) {
			struct dns_addr *a = &h->addrs[h->naddrs++];
			a->family = sets[s]->r.ip[i].family;
			memcpy(&a->a, sets[s]->r.ip[i].addr, a->family == AF_INET ? 4 : 16);
			a->ttl = ttl_left(sets[s], now);
			inet_ntop(a->family, &a->a, a->text, sizeof(a->text));
		}
	}
	if (h->naddrs)
		h->status = DNS_OK;
	else if (a4->rstat == DNS_R_TEMP || a6->rstat == DNS_R_TEMP)
		h->status = DNS_TEMPFAIL;
	else
		h->status = DNS_NO_ADDRESS;
	return 0;
}

/* Shuffle runs of equal preference (hosts are already in preference order). */
static void shuffle_equal(struct dns_mx_host *h, size_t n)
{
	for (size_t lo = 0, hi; lo < n; lo = hi) {
		for (hi = lo + 1; hi < n && h[hi].pref == h[lo].pref;)
			hi++;
		for (size_t i = hi - 1; i > lo; i--) {
			size_t j = lo + (size_t)(rng_next() % (i - lo + 1));
			struct dns_mx_host t = h[i];
			h[i] = h[j];
			h[j] = t;
		}
	}
}

static void set_status(struct dns_mx_result *r)
{
	int ok = 0, temp = 0;
	for (size_t i = 0; i < r->nhosts; i++) {
		ok += r->hosts[i].status == DNS_OK;
		temp += r->hosts[i].status == DNS_TEMPFAIL;
	}
	r->status = ok ? DNS_OK : temp ? DNS_TEMPFAIL : DNS_NO_ADDRESS;
	if (ok)
		copy_str(r->reason, sizeof(r->reason),
			 r->implicit ? "implicit MX (no MX record): the domain's own address"
				     : "MX hosts with addresses");
	else
		snprintf(r->reason, sizeof(r->reason), "%s: no MX host has an address%s",
			 r->implicit ? "implicit MX" : "MX", temp ? " (lookup failed)" : "");
}

static const char *fail_reason(enum dns_status st, const struct dns_ent *mx)
{
	switch (st) {
	case DNS_NULL_MX:
		return "null MX (RFC 7505): the domain accepts no mail";
	case DNS_NXDOMAIN:
		return "domain does not exist (NXDOMAIN)";
	case DNS_NO_MX:
		return "no MX record and implicit MX is off";
	default:
		return mx->reason[0] ? mx->reason : "MX lookup failed";
	}
}

/* dns_mx_build: the result for DOMAIN from its MX record set and ADDRS (A then AAAA for each
 * name dns_mx_hosts() listed, in that order; unused when no host is needed). Shuffles equal
 * preferences and keeps MAX_HOSTS hosts. Returns a result the caller owns, NULL on ENOMEM. */
struct dns_mx_result *dns_mx_build(const char *domain, const struct dns_ent *mx,
				   struct dns_ent *const *addrs, unsigned max_hosts,
				   int implicit_mx)
{
	const char *names[DNS_HOSTS_MAX];
	size_t n;
	int st = dns_mx_hosts(mx, max_hosts, implicit_mx, domain, names, &n);
	uint64_t now = dns_now_ms();
	struct dns_mx_result *r = dns_mx_fail(domain, st, st ? fail_reason(st, mx) : "");
	if (r && mx->rstat != DNS_R_TEMP)
		r->ttl = ttl_left(mx, now);
	if (!r || st != DNS_OK)
		return r;
	if (!(r->hosts = calloc(n, sizeof(*r->hosts))))
		goto oom;
	r->implicit = mx->rstat == DNS_R_NODATA;
	for (size_t i = 0; i < n; i++, r->nhosts++) {
		struct dns_mx_host *h = &r->hosts[i];
		copy_str(h->name, sizeof(h->name), names[i]);
		if (!r->implicit)
			h->pref =
			    ((const struct dns_mxrec *)(const void *)(names[i] -
								      offsetof(struct dns_mxrec,
									       host)))
				->pref;
		h->ttl = ttl_left(r->implicit ? addrs[2 * i] : mx, now);
		if (host_fill(h, addrs[2 * i], addrs[2 * i + 1], now) < 0)
			goto oom;
	}
	shuffle_equal(r->hosts, r->nhosts);
	while (r->nhosts > max_hosts)
		free(r->hosts[--r->nhosts].addrs);
	set_status(r);
	return r;
oom:
	dns_mx_result_free(r);
	return NULL;
}

/* The TTL of a host lookup's result: the smallest left of the sets its status rests on (the
 * positive sets for DNS_OK, the negative ones otherwise; 0 for a temporary failure). */
static uint32_t host_ttl(const struct dns_ent *const *sets, enum dns_status st, uint64_t now)
{
	uint32_t t = 0;
	int any = 0;
	if (st == DNS_TEMPFAIL)
		return 0;
	for (int i = 0; i < 2; i++) {
		if ((sets[i]->rstat == DNS_R_OK) != (st == DNS_OK))
			continue;
		uint32_t left = ttl_left(sets[i], now);
		t = !any || left < t ? left : t;
		any = 1;
	}
	return t;
}

static const char *host_reason(enum dns_status st, const struct dns_ent *a4,
			       const struct dns_ent *a6)
{
	switch (st) {
	case DNS_OK:
		return "the host's own A/AAAA records";
	case DNS_NXDOMAIN:
		return "host does not exist (NXDOMAIN)";
	case DNS_NO_ADDRESS:
		return "host has no A or AAAA record";
	default:
		return a4->rstat == DNS_R_TEMP && a4->reason[0] ? a4->reason
		       : a6->reason[0]				? a6->reason
								: "address lookup failed";
	}
}

/* dns_host_build: the result of a host lookup of NAME from its A set A4 and AAAA set A6 (the
 * caller keeps its references): one host, A then AAAA addresses; status DNS_OK with any address,
 * else DNS_TEMPFAIL when a lookup failed, else DNS_NXDOMAIN when either set says so, else
 * DNS_NO_ADDRESS. Returns a result the caller owns, NULL on ENOMEM. */
struct dns_mx_result *dns_host_build(const char *name, const struct dns_ent *a4,
				     const struct dns_ent *a6)
{
	const struct dns_ent *sets[2] = {a4, a6};
	uint64_t now = dns_now_ms();
	struct dns_mx_result *r = dns_mx_fail(name, DNS_OK, "");
	if (!r || !(r->hosts = calloc(1, sizeof(*r->hosts))))
		goto oom;
	struct dns_mx_host *h = &r->hosts[r->nhosts++];
	copy_str(h->name, sizeof(h->name), name);
	if (host_fill(h, a4, a6, now) < 0)
		goto oom;
	if (h->status == DNS_NO_ADDRESS &&
	    (a4->rstat == DNS_R_NXDOMAIN || a6->rstat == DNS_R_NXDOMAIN))
		h->status = DNS_NXDOMAIN;
	r->status = h->status;
	r->ttl = h->ttl = host_ttl(sets, h->status, now);
	copy_str(r->reason, sizeof(r->reason), host_reason(h->status, a4, a6));
	return r;
oom:
	dns_mx_result_free(r);
	return NULL;
}

/* dns_host_literal: when NAME is a numeric IPv4 or IPv6 address (IPv6 or IPv4 also within
 * brackets), build its DNS_OK result (one host, one address, ttl DNS_LITERAL_TTL) into *out and
 * return 1; return 0 when NAME is not one (*out untouched), -ENOMEM when out of memory. */
int dns_host_literal(const char *name, struct dns_mx_result **out)
{
	struct dns_addr a = {.ttl = DNS_LITERAL_TTL};
	char lit[INET6_ADDRSTRLEN];
	size_t n = strlen(name);
	int br = n >= 2 && name[0] == '[' && name[n - 1] == ']';
	if (n - 2 * (size_t)br >= sizeof(lit))
		return 0;
	memcpy(lit, name + br, n - 2 * (size_t)br);
	lit[n - 2 * (size_t)br] = 0;
	if (inet_pton(AF_INET, lit, &a.a.v4) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, lit, &a.a.v6) == 1)
		a.family = AF_INET6;
	else
		return 0;
	inet_ntop(a.family, &a.a, a.text, sizeof(a.text));
	struct dns_mx_result *r = dns_mx_fail(name, DNS_OK, "numeric address: no lookup");
	if (!r || !(r->hosts = calloc(1, sizeof(*r->hosts))) ||
	    !(r->hosts[0].addrs = calloc(1, sizeof(a)))) {
		dns_mx_result_free(r);
		return -ENOMEM;
	}
	struct dns_mx_host *h = &r->hosts[r->nhosts++];
	copy_str(h->name, sizeof(h->name), name);
	h->addrs[h->naddrs++] = a;
	h->status = DNS_OK;
	r->ttl = h->ttl = DNS_LITERAL_TTL;
	*out = r;
	return 1;
}

/* dns_mx_result_free: free R and everything it points to (NULL is a no-op). */
void dns_mx_result_free(struct dns_mx_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nhosts; i++)
		free(r->hosts[i].addrs);
	free(r->hosts);
	free(r);
}

/* dns_status_name: see dns.h. */
const char *dns_status_name(enum dns_status s)
{
	static const char *const names[] = {"ok",    "null-mx",	   "nxdomain",
					    "no-mx", "no-address", "tempfail"};
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* dns_status_permanent: see dns.h. */
int dns_status_permanent(enum dns_status s)
{
	return s != DNS_OK && s != DNS_TEMPFAIL;
}
