/* dns — MX resolution for independent-mode delivery, and A/AAAA resolution of a relay given by
 * host name: one resolver thread owning a c-ares channel, and a TTL cache shared by every thread.
 *
 * Why this shape: shards must never block on DNS, yet most lookups repeat (thousands of
 * messages to the same few hundred domains). So the cache is readable from any thread without
 * a round trip (sharded, one mutex per shard, refcounted immutable entries), and only misses
 * travel to the resolver thread through a locked queue + eventfd. Concurrent misses on one
 * name are merged into one query. dns/ knows nothing of the daemon's loop: answers come back
 * through a callback run on the resolver thread, which the caller turns into a post to its
 * own loop.
 */
#ifndef RIPTIDE_DNS_H
#define RIPTIDE_DNS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct dns;

enum dns_status {
	DNS_OK = 0,	/* at least one host with an address */
	DNS_NULL_MX,	/* RFC 7505 null MX: permanent, 5.1.10 */
	DNS_NXDOMAIN,	/* the domain does not exist: permanent, 5.1.2 */
	DNS_NO_MX,	/* no MX and implicit MX off: permanent (fallback relay may apply) */
	DNS_NO_ADDRESS, /* MX hosts exist, none has an address: permanent, 5.4.4 */
	DNS_TEMPFAIL,	/* SERVFAIL, REFUSED, timeout, shutdown: retry later, 4.4.3 */
};

struct dns_opts {
	const char *servers;	 /* "auto" (resolv.conf) or "127.0.0.1:5353;[::1]:5353" */
	const char *resolv_conf; /* path used by "auto" and fallback; NULL: /etc/resolv.conf */
	int fallback_auto;	 /* retry on the resolv.conf servers when the listed fail */
	unsigned timeout_ms;	 /* per try; 0: 5000 */
	unsigned tries;		 /* 0: 2 */
	uint32_t min_ttl;	 /* clamp of positive and negative TTLs (seconds) */
	uint32_t max_ttl;	 /* 0: 86400 */
	uint32_t neg_max_ttl;	 /* clamp of negative TTLs; 0: 3600 (RFC 2308 suggests 1-3 h) */
	size_t max_entries;	 /* cache bound; 0: 65536 */
	int implicit_mx;	 /* no MX: the domain's A/AAAA act as its MX (RFC 5321 5.1) */
	unsigned max_mx_hosts;	 /* hosts kept in a result; 0: 5 */
};

struct dns_addr {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} a;
	uint32_t ttl; /* seconds left when the result was built */
	char text[INET6_ADDRSTRLEN];
};

struct dns_mx_host {
	char name[256];
	uint16_t pref;
	uint32_t ttl; /* of the MX answer (implicit MX, host lookup: of the address answers) */
	size_t naddrs;
	struct dns_addr *addrs; /* A records first, then AAAA */
	enum dns_status status; /* DNS_OK, DNS_NO_ADDRESS or DNS_TEMPFAIL for this host
				 * (dns_resolve_host: also DNS_NXDOMAIN) */
};

struct dns_mx_result {
	enum dns_status status;
	int implicit; /* hosts[0] is the domain itself (no MX record) */
	char domain[256];
	char reason[256]; /* human-readable: why this status */
	uint32_t ttl;	  /* seconds left of the MX answer, positive or negative (RFC 2308) */
	size_t nhosts;
	struct dns_mx_host *hosts; /* preference order, equal preferences shuffled */
};

struct dns_counters {
	uint64_t queries_sent;	   /* queries handed to c-ares (fallback re-sends included) */
	uint64_t fallback_queries; /* of which re-sent to the resolv.conf servers */
	uint64_t cache_hits;	   /* record sets answered from the cache */
	uint64_t cache_misses;	   /* record sets not in the cache (or expired) */
	uint64_t merged;	   /* misses that joined a query already in flight */
	uint64_t evictions;	   /* entries dropped to respect max_entries */
	uint64_t entries;	   /* entries in the cache now */
	uint64_t mx_from_cache;	   /* dns_resolve_mx answered entirely on the caller's thread */
	uint64_t host_from_cache;  /* dns_resolve_host answered from the cache on that thread */
};

/* TTL (seconds) of the answer dns_resolve_host gives for a numeric address. */
#define DNS_LITERAL_TTL 86400u

/* Called once per lookup on the resolver thread; owns r (free with dns_mx_result_free). */
typedef void (*dns_mx_cb)(void *arg, struct dns_mx_result *r);

/* dns_open: parse opts, create the c-ares channel(s) and start the resolver thread.
 * opts is copied. Returns 0 and *out, or negative errno (-EINVAL: bad servers string). */
int dns_open(const struct dns_opts *opts, struct dns **out);

/* dns_shutdown: stop the resolver thread like dns_close (every lookup not yet answered gets its
 * callback with DNS_TEMPFAIL before this returns; later lookups get -ESHUTDOWN, or a cached
 * answer) but keep d valid, so other threads may still call dns_resolve_* until dns_close.
 * Idempotent. */
void dns_shutdown(struct dns *d);

/* dns_close: stop the resolver thread; every lookup not yet answered gets its callback with
 * DNS_TEMPFAIL before this returns; no callback runs after. NULL is a no-op. */
void dns_close(struct dns *d);

/* dns_resolve_mx: resolve DOMAIN's MX hosts and their A/AAAA. Callable from any thread.
 * If `cached` is non-NULL and the whole answer is in the cache, *cached receives the result
 * (caller owns it) and cb is never called. Otherwise *cached is NULL and cb(arg, r) runs
 * later on the resolver thread. Returns 0, -EINVAL (bad name, no cb), -ENOMEM, or
 * -ESHUTDOWN once dns_close has begun. */
int dns_resolve_mx(struct dns *d, const char *domain, dns_mx_cb cb, void *arg,
		   struct dns_mx_result **cached);

/* dns_resolve_host: resolve NAME's own A and AAAA (never MX, whatever implicit_mx says), e.g.
 * a relay given by host name. Same contract as dns_resolve_mx: callable from any thread; with
 * `cached` non-NULL an answer available at once lands in *cached (caller owns it, cb never
 * called), else *cached is NULL and cb(arg, r) runs later on the resolver thread; lookups of
 * one name in flight are merged (also with dns_resolve_mx's lookups of the same A/AAAA).
 * The result has domain = NAME (normalised) and one host (name = NAME, pref 0, addresses A
 * first then AAAA; naddrs 0 unless DNS_OK; nhosts is 0 only in an out-of-memory TEMPFAIL).
 * status: DNS_OK, DNS_NXDOMAIN, DNS_NO_ADDRESS (the name exists, no A/AAAA) or DNS_TEMPFAIL
 * (a lookup failed and no address came). ttl: the smallest TTL left of the record sets used,
 * the positive ones for DNS_OK, the negative ones (RFC 2308, clamped) for NXDOMAIN / NO_ADDRESS,
 * 0 for TEMPFAIL. A numeric IPv4 or IPv6 address (optionally in brackets: "[::1]") is answered
 * without a query: DNS_OK, ttl DNS_LITERAL_TTL (in *cached when given, else through cb).
 * Returns 0, -EINVAL (bad name, no cb), -ENOMEM, or -ESHUTDOWN once dns_close has begun. */
int dns_resolve_host(struct dns *d, const char *name, dns_mx_cb cb, void *arg,
		     struct dns_mx_result **cached);

/* dns_mx_result_free: free a result (NULL is a no-op). */
void dns_mx_result_free(struct dns_mx_result *r);

/* dns_counters_get: a snapshot of the counters (relaxed atomics, any thread). */
void dns_counters_get(struct dns *d, struct dns_counters *c);

/* dns_status_name: a static name ("ok", "null-mx", ...) for logs. */
const char *dns_status_name(enum dns_status s);

/* dns_status_permanent: 1 if the status must fail recipients permanently, else 0. */
int dns_status_permanent(enum dns_status s);

#endif
