/* dest_mx — the targets a destination connects to: the relay's one address, or a recipient
 * domain's MX hosts from dns/ in try order, with the MX walk and the fallback relay (see
 * dest_int.h); and the shard's table of destinations by name.
 *
 * A domain is resolved when a job arrives and its answer is older than its TTL. The lookup
 * runs on the resolver thread unless the shared cache answers at once; the answer comes back
 * to this shard by loop_post. Permanent answers (null MX, NXDOMAIN, no address; no MX with
 * implicit MX off and no fallback relay) end the queued jobs with a 5xx and no connection;
 * a temporary failure defers them (4.4.3). A target that refuses, times out or greets with an
 * error is skipped for min(retry_delay, 10 s), so the next session tries the next address.
 */
#include "engine/daemon/dest_int.h"
#include "engine/daemon/snap.h"

#include <errno.h>
#include <string.h>

#define DEST_DOWN_MAX_MS 10000u
#define DEST_TTL_MAX_S	 3600u
/* A temporary DNS failure defers what arrives in the next second without asking again. */
#define DEST_TEMPFAIL_HOLD_MS 1000u
/* A lookup that fails temporarily while known targets work keeps them this much longer. */
#define DEST_KEEP_ON_TEMPFAIL_MS 30000u

int dest_pick_target(const struct dest *d, unsigned min)
{
	uint64_t now = loop_now_ms(d->env.loop);

	for (unsigned t = min; t < d->ntargets; t++)
		if (d->targets[t].down_until <= now)
			return (int)t;
	return -1;
}

unsigned dest_sess_t(const struct dest *d, const struct osess *o)
{
	return o->gen == d->tgen ? o->t : 0;
}

void dest_target_down(struct dest *d, const struct osess *o)
{
	uint64_t back = d->cfg->retry_delay_ms;

	if (o->gen == d->tgen && o->t < d->ntargets)
		d->targets[o->t].down_until =
		    loop_now_ms(d->env.loop) + (back < DEST_DOWN_MAX_MS ? back : DEST_DOWN_MAX_MS);
}

int dest_next_host(const struct dest *d, const struct osess *o)
{
	for (unsigned i = o->gen == d->tgen ? o->t + 1 : 0; i < d->ntargets; i++)
		if (strcmp(d->targets[i].host, o->tg.host) != 0)
			return (int)i;
	return -1;
}

bool dest_fall_through(struct dest *d, struct job *j, const struct osess *o,
		       const struct smtpc_result *res)
{
	bool whole = res->err || res->reply.code / 100 == 4;
	int enh[3] = {4, 4, 1}, nh = dest_next_host(d, o);
	unsigned n = 0, *idx;
	struct job *nj;

	if (d->shutting)
		return false; /* nothing would send it: the provisional outcomes stand */
	idx = util_xmalloc(j->n * sizeof(*idx));
	for (unsigned k = 0; k < j->n; k++) {
		if (j->decided[k] == JOB_OPEN && whole) {
			const char *txt = res->err ? res->err : res->reply.text;
			size_t len = res->err ? strlen(res->err) : res->reply.text_len;
			unit_set(j->u, j->idx[k], QUEUE_RCPT_PENDING,
				 res->err ? 0 : res->reply.code, txt, len);
			unit_set_enh(j->u, j->idx[k], enh);
			j->decided[k] = JOB_FALL;
		}
		if (j->decided[k] == JOB_FALL)
			idx[n++] = j->idx[k];
	}
	if (n && nh >= 0) {
		nj = job_new(j->u, idx, n);
		nj->hop = (unsigned)nh;
		job_push(d, nj);
		dest_job_to_front(d, nj);
	} else if (n && dest_has_fallback(d)) { /* no host left: the fallback (relay, route) */
		nj = job_new(j->u, idx, n);
		nj->u->jobs_out++; /* counted here; dest_no_host links it without counting */
		dest_no_host(d, nj);
	}
	free(idx);
	return n && (nh >= 0 || dest_has_fallback(d));
}

bool dest_has_fallback(const struct dest *d)
{
	if (d->fb_default)
		return !d->shutting;
	return (d->kind == DEST_MX || d->is_site) && d->fb && !d->fb->shutting;
}

bool dest_no_host(struct dest *d, struct job *j)
{
	if (!dest_has_fallback(d))
		return false;
	j->hop = 0;
	memset(j->decided, JOB_OPEN, j->n);
	if (d->fb_default)
		return dest_fb_default(d, j);
	job_link(d->fb, j);
	dest_pump(d->fb);
	return true;
}

/* Every queued job to the fallback relay (none moves if there is none). */
static void dest_to_fallback(struct dest *d)
{
	struct job *j;

	while (dest_has_fallback(d) && (j = job_pop(d)))
		dest_no_host(d, j);
}

/* ---- resolution ---- */

void dest_target_set(struct dest_target *t, const struct dns_addr *a, const char *host,
		     unsigned port)
{
	memset(t, 0, sizeof(*t));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr.ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sin->sin_addr = a->a.v4;
		t->addr.len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->addr.ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sin6->sin6_addr = a->a.v6;
		t->addr.len = sizeof(*sin6);
	}
	t->addr.family = a->family;
	snprintf(t->host, sizeof(t->host), "%s", host);
	util_addr_format(&t->addr, t->ip, sizeof(t->ip));
}

/* A new target list: the walk indexes of queued jobs refer to the old one, so they start over. */
static void dest_targets_changed(struct dest *d)
{
	d->tgen++;
	for (struct job *j = d->head; j; j = j->next)
		j->hop = 0;
}

/* Take a lookup's answer (r is freed): the targets in try order and how long they hold. A
 * temporary failure while earlier targets are known keeps them a little longer. */
static void dest_dns_apply(struct dest *d, struct dns_mx_result *r)
{
	unsigned n = 0, ttl = r->ttl < 1 ? 1 : r->ttl > DEST_TTL_MAX_S ? DEST_TTL_MAX_S : r->ttl;

	if (r->status == DNS_TEMPFAIL && d->ntargets && d->dns_status == DNS_OK) {
		d->targets_until = loop_now_ms(d->env.loop) + DEST_KEEP_ON_TEMPFAIL_MS;
		dns_mx_result_free(r);
		return;
	}
	dest_targets_changed(d);
	free(d->targets);
	d->targets = NULL;
	for (size_t h = 0; h < r->nhosts; h++)
		n += (unsigned)r->hosts[h].naddrs;
	d->targets = util_xcalloc(n ? n : 1, sizeof(*d->targets));
	d->ntargets = 0;
	for (size_t h = 0; h < r->nhosts; h++)
		for (size_t a = 0; a < r->hosts[h].naddrs; a++)
			dest_target_set(&d->targets[d->ntargets++], &r->hosts[h].addrs[a],
					r->hosts[h].name, d->port);
	d->dns_status = r->status == DNS_OK && n == 0 ? DNS_NO_ADDRESS : r->status;
	snprintf(d->dns_reason, sizeof(d->dns_reason), "%s", r->reason);
	d->targets_until =
	    loop_now_ms(d->env.loop) +
	    (d->dns_status == DNS_TEMPFAIL ? DEST_TEMPFAIL_HOLD_MS : (uint64_t)ttl * 1000u);
	dns_mx_result_free(r);
}

/* Resolver thread: hand the answer to the destination's shard. */
void dest_dns_cb(void *arg, struct dns_mx_result *r)
{
	struct dest *d = arg;

	d->dns_answer = r;
	loop_post(d->env.loop, &d->dns_msg);
}

static bool dest_mx_judge(struct dest *d);

void dest_dns_posted(struct loop *l, struct loop_msg *lm)
{
	struct dest *d = container_of(lm, struct dest, dns_msg);
	struct dns_mx_result *r = d->dns_answer;

	(void)l;
	d->resolving = false;
	d->dns_answer = NULL;
	if (d->kind != DEST_HOSTS)
		dest_dns_apply(d, r);
	else if (!dest_hosts_answer(d, r))
		return; /* the next host's lookup is running */
	if (!d->shutting && dest_mx_judge(d))
		dest_pump(d);
}

/* Start a lookup; the answer may be applied at once (cache). */
static void dest_resolve(struct dest *d)
{
	struct dns_mx_result *cached = NULL;
	int ret;

	if (d->kind == DEST_HOSTS) {
		dest_hosts_start(d);
		return;
	}
	ret = d->relay_host[0] ? dns_resolve_host(d->dns, d->relay_host, dest_dns_cb, d, &cached)
			       : dns_resolve_mx(d->dns, d->domain, dest_dns_cb, d, &cached);
	if (ret == 0 && cached) {
		dest_dns_apply(d, cached);
		return;
	}
	if (ret == 0) {
		d->resolving = true;
		return;
	}
	d->dns_status = ret == -EINVAL ? DNS_NXDOMAIN : DNS_TEMPFAIL;
	snprintf(d->dns_reason, sizeof(d->dns_reason), "%s",
		 ret == -EINVAL ? "not a valid domain name" : "resolver unavailable");
	d->targets_until =
	    loop_now_ms(d->env.loop) + (ret == -EINVAL ? 60000u : DEST_TEMPFAIL_HOLD_MS);
}

/* A non-OK answer ends what is queued: permanent ones fail, temporary ones defer. */
static void dest_dns_verdict(struct dest *d)
{
	static const int e5110[3] = {5, 1, 10}, e512[3] = {5, 1, 2}, e544[3] = {5, 4, 4},
			 e443[3] = {4, 4, 3};
	char text[ROUTE_NAME_MAX + sizeof(d->dns_reason) + 4];

	snprintf(text, sizeof(text), "%s: %s", d->name, d->dns_reason);
	if (d->kind == DEST_HOSTS && d->fb_default) { /* the default route takes them */
		dest_to_fallback(d);
		return;
	}
	/* a relay or a route's hosts that do not resolve are never a verdict on the mail */
	if (d->relay_host[0] || d->kind == DEST_HOSTS) {
		dest_end_all(d, 451, e443, text);
		return;
	}
	switch (d->dns_status) {
	case DNS_NULL_MX:
		dest_end_all(d, 556, e5110, text);
		break;
	case DNS_NXDOMAIN:
		dest_end_all(d, 550, e512, text);
		break;
	case DNS_NO_MX:
		/* to the fallback relay if there is one; else it fails like no address */
		dest_to_fallback(d);
		/* fall through */
	case DNS_NO_ADDRESS:
		dest_end_all(d, 550, e544, text);
		break;
	default:
		dest_end_all(d, 451, e443, text);
		break;
	}
}

/* The current answer: true if it has targets, else its verdict ends the queued jobs. */
static bool dest_mx_judge(struct dest *d)
{
	if (d->dns_status == DNS_OK)
		return true;
	dest_dns_verdict(d);
	return false;
}

bool dest_mx_ready(struct dest *d)
{
	if (d->kind == DEST_RELAY && !d->relay_host[0])
		return true;
	if (d->resolving)
		return false;
	if (d->targets_until <= loop_now_ms(d->env.loop))
		dest_resolve(d);
	return !d->resolving && dest_mx_judge(d);
}

/* ---- construction, the shard's table ---- */

struct dest *dest_new_relay(const struct dest_env *env, const struct util_addr *addr,
			    const char *name, bool is_fallback)
{
	struct dest *d = dest_alloc(env, name);

	d->kind = DEST_RELAY;
	d->is_fallback = is_fallback;
	d->targets = util_xcalloc(1, sizeof(*d->targets));
	d->ntargets = 1;
	d->targets[0].addr = *addr;
	snprintf(d->targets[0].host, sizeof(d->targets[0].host), "%s", name);
	util_addr_format(addr, d->targets[0].ip, sizeof(d->targets[0].ip));
	d->targets_until = UINT64_MAX;
	d->dns_status = DNS_OK;
	return d;
}

struct dest *dest_new_relay_named(const struct dest_env *env, const char *host, unsigned port,
				  const char *name, bool is_fallback)
{
	struct dest *d = dest_alloc(env, name);

	d->kind = DEST_RELAY;
	d->is_fallback = is_fallback;
	snprintf(d->relay_host, sizeof(d->relay_host), "%s", host);
	d->port = port;
	d->dns_msg.fn = dest_dns_posted;
	return d;
}

struct dest *dest_new_mx(const struct dest_env *env, const char *domain, struct dest *fallback)
{
	struct dest *d = dest_alloc(env, domain);

	d->kind = DEST_MX;
	d->fb = fallback;
	d->port = (*env->snap)->cfg.mx_port;
	snprintf(d->domain, sizeof(d->domain), "%s", domain);
	d->dns_msg.fn = dest_dns_posted;
	return d;
}

const char *dest_name(const struct dest *d)
{
	return d->name;
}
