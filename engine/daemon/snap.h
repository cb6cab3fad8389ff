/* snap — an immutable snapshot of what a reload may change: the routes, shaping rules,
 * backoff rules, pools and rewrite rules of one configuration file, indexed for lookups.
 *
 * Why (DESIGN "Configuration and control"): shards read routes and throttles on every message,
 * so they must not lock or see a half-applied reload. A reload builds a new snapshot on the
 * main thread; snap_install swaps it in and tells every shard by mailbox; each shard re-points
 * its destinations and drops its reference to the old one. Sessions keep the snapshot they
 * were opened with (their TLS context lives in it) until they close. A broken file never gets
 * this far: config_load refuses it and the running snapshot stays.
 */
#ifndef RIPTIDE_SNAP_H
#define RIPTIDE_SNAP_H

#include "engine/config/config.h"
#include "engine/daemon/msg.h"
#include "engine/route/route.h"

#include <stdatomic.h>

struct rt;
struct tls_ctx;
struct shape_rules;
struct smtp_rewrite_rule;

struct snap_tls {
	enum config_tls_verify verify; /* effective */
	char ca_file[CONFIG_STR];
	struct tls_ctx *ctx; /* owned, unless it is rt->tls_client */
	bool owned;
};

struct snap {
	atomic_uint refs;
	struct rt *rt;
	unsigned gen;		    /* 1 at start, +1 per reload */
	struct config cfg;	    /* the file's values; owns cfg.sets */
	struct route_table *routes; /* over cfg.sets */
	struct shape_rules *rules;  /* backoff rules, compiled */
	struct snap_tls *tls;	    /* client contexts by (verify, CA file) */
	unsigned ntls;
	struct dns *dns;	      /* the default route's resolver (rt->dns) */
	struct dns **route_dns;	      /* per route (cfg.sets->routes order) */
	struct smtp_rewrite_rule *rw; /* [rewrite], for smtp_hdr_rewrite */
	unsigned nrw;
};

/* snap_new: a snapshot of *c, whose sets it takes (c->sets is NULL after). TLS client
 * contexts are made for every route (and the default) that may use TLS; the default one is
 * rt->tls_client when its settings match. Returns 0 and *out with one reference, or -errno
 * with the reason in err. */
int snap_new(struct rt *rt, struct config *c, struct snap **out, char *err, size_t errlen);

/* snap_ref / snap_unref: take / drop a reference (any thread); the last one frees it. */
struct snap *snap_ref(struct snap *s);
void snap_unref(struct snap *s);

/* snap_current: a reference to the snapshot installed now (any thread; snap_unref it). */
struct snap *snap_current(struct rt *rt);

/* snap_install: make s (its reference is taken over) the current snapshot and tell every
 * shard (shard_snap). The previous one is dropped by its last holder. Main thread. */
void snap_install(struct rt *rt, struct snap *s);

/* snap_route: the route of destination `name` (a "pool/" prefix is ignored), NULL for the
 * default route. */
const struct config_route *snap_route(const struct snap *s, const char *name);

/* snap_cfg: the delivery settings of destination `name`: its route's, or the default's. */
const struct config *snap_cfg(const struct snap *s, const char *name);

/* snap_sched: the retry schedule of destination `name` into out (rng left as it is). */
void snap_sched(const struct snap *s, const char *name, struct msg_sched *out);

/* snap_tls_ctx: the client TLS context for settings c under TLS mode tls (the mode may come
 * from a [shaping] rule); NULL with tls = none. */
struct tls_ctx *snap_tls_ctx(const struct snap *s, const struct config *c, enum config_tls tls);

/* snap_dns: the resolver for settings c (s->cfg or one of its routes' cfg). */
struct dns *snap_dns(const struct snap *s, const struct config *c);

/* snap_route_ctx: how recipients are routed under s for a message of egress pool `pool`
 * ("" = none): routes, the default route, and MX sites when mx_rollup is on (from the DNS
 * cache only; a domain whose MX answer is not cached yet goes as itself, and its lookup is
 * started so the next message finds it). */
void snap_route_ctx(const struct snap *s, const char *pool, struct route_ctx *ctx);

/* snap_split: (any thread; arg: the struct rt) route_split under the snapshot installed now,
 * from the default pool: how a failure notice's recipients are routed. */
int snap_split(void *arg, const char *const *rcpts, unsigned n, uint16_t *group, unsigned *first,
	       char **names);

/* snap_pool: the [pool] called name (length len), or NULL. */
const struct config_pool *snap_pool(const struct snap *s, const char *name, size_t len);

#endif
