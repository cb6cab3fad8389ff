/* snap — configuration snapshots (see snap.h).
 *
 * The current snapshot's pointer is guarded by rt->snap_lock: taking a reference to it and
 * swapping it are rare (a reload; a shard at start; a failure notice on the commit thread),
 * and a lock makes "load the pointer, then take a reference" safe against the swap freeing it
 * in between. Lookups inside a snapshot take no lock: it never changes.
 */
#include "engine/daemon/snap.h"
#include "engine/daemon/rt.h"
#include "engine/daemon/shard.h"
#include "engine/shape/shape.h"
#include "engine/smtp/smtp.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The context for (verify, ca) if s has one. */
static struct snap_tls *snap_tls_find(const struct snap *s, enum config_tls_verify v,
				      const char *ca)
{
	for (unsigned i = 0; i < s->ntls; i++)
		if (s->tls[i].verify == v && strcmp(s->tls[i].ca_file, ca) == 0)
			return &s->tls[i];
	return NULL;
}

/* Make sure s has a client context for (v, ca). */
static int snap_tls_add(struct rt *rt, struct snap *s, enum config_tls_verify v, const char *ca,
			char *err, size_t errlen)
{
	struct tls_client_opts o = {.verify =
					v == CONFIG_VERIFY_CA ? TLS_VERIFY_CA : TLS_VERIFY_NONE,
				    .ca_file = ca,
				    .session_cache = 4096};
	struct snap_tls *t;
	int ret = 0;

	if (snap_tls_find(s, v, ca))
		return 0;
	s->tls = util_xrealloc(s->tls, (s->ntls + 1) * sizeof(*s->tls));
	t = &s->tls[s->ntls];
	*t = (struct snap_tls){.verify = v};
	snprintf(t->ca_file, sizeof(t->ca_file), "%s", ca);
	if (rt->tls_client && v == config_tls_verify_effective(&rt->cfg) &&
	    strcmp(ca, rt->cfg.tls_ca_file) == 0)
		t->ctx = rt->tls_client;
	else if ((ret = tls_ctx_client_new(&o, &t->ctx, err, errlen)) == 0)
		t->owned = true;
	if (ret == 0)
		s->ntls++;
	return ret;
}

/* Whether anything in s may use TLS (else no context is made). */
static bool snap_tls_used(const struct snap *s)
{
	const struct config_sets *cs = s->cfg.sets;
	bool used = s->cfg.tls != CONFIG_TLS_NONE;

	for (unsigned i = 0; cs && i < cs->nroutes; i++)
		used |= cs->routes[i].cfg.tls != CONFIG_TLS_NONE;
	for (unsigned i = 0; cs && i < cs->nshapings; i++)
		used |= (cs->shapings[i].given & CONFIG_SHAPE_TLS) &&
			cs->shapings[i].tls != CONFIG_TLS_NONE;
	return used;
}

/* Both verification modes for c's CA file (a [shaping] rule may change the TLS mode, and
 * with it what auto verification means). */
static int snap_tls_for(struct rt *rt, struct snap *s, const struct config *c, char *err,
			size_t errlen)
{
	int ret = snap_tls_add(rt, s, CONFIG_VERIFY_NONE, c->tls_ca_file, err, errlen);

	return ret < 0 ? ret : snap_tls_add(rt, s, CONFIG_VERIFY_CA, c->tls_ca_file, err, errlen);
}

static void snap_free(struct snap *s)
{
	for (unsigned i = 0; i < s->ntls; i++)
		if (s->tls[i].owned)
			tls_ctx_free(s->tls[i].ctx);
	free(s->tls);
	free(s->route_dns);
	free(s->rw);
	shape_rules_free(s->rules);
	route_table_free(s->routes);
	config_free(&s->cfg);
	free(s);
}

/* The [rewrite] rules as smtp_hdr_rewrite takes them (strings stay in cfg.sets). */
static void snap_rewrite_rules(struct snap *s)
{
	const struct config_sets *cs = s->cfg.sets;

	s->nrw = cs ? cs->nrewrites : 0;
	s->rw = util_xcalloc(s->nrw ? s->nrw : 1, sizeof(*s->rw));
	for (unsigned i = 0; i < s->nrw; i++)
		s->rw[i] = (struct smtp_rewrite_rule){.from = cs->rewrites[i].from,
						      .to = cs->rewrites[i].to};
	smtp_rewrite_sort(s->rw, s->nrw);
}

/* Index, compile and make the contexts of a new snapshot. */
static int snap_build(struct rt *rt, struct snap *s, char *err, size_t errlen)
{
	const struct config_sets *cs = s->cfg.sets;
	int ret = route_table_new(&s->cfg, &s->routes);

	if (ret < 0) {
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	s->rules = shape_rules_new(cs ? cs->backoffs : NULL, cs ? cs->nbackoffs : 0, err, errlen);
	if (!s->rules)
		return -EINVAL;
	if (snap_tls_used(s) && (ret = snap_tls_for(rt, s, &s->cfg, err, errlen)) < 0)
		return ret;
	s->dns = rt->dns;
	snap_rewrite_rules(s);
	s->route_dns = util_xcalloc(cs && cs->nroutes ? cs->nroutes : 1, sizeof(*s->route_dns));
	for (unsigned i = 0; cs && i < cs->nroutes; i++) {
		if (snap_tls_used(s) &&
		    (ret = snap_tls_for(rt, s, &cs->routes[i].cfg, err, errlen)) < 0)
			return ret;
		if (!(s->route_dns[i] = rt_dns_for(rt, &cs->routes[i].cfg))) {
			snprintf(err, errlen, "[route %s]: cannot start its resolver",
				 cs->routes[i].name);
			return -EINVAL;
		}
	}
	return 0;
}

int snap_new(struct rt *rt, struct config *c, struct snap **out, char *err, size_t errlen)
{
	static atomic_uint gens;
	struct snap *s = util_xcalloc(1, sizeof(*s));
	int ret;

	atomic_init(&s->refs, 1);
	s->rt = rt;
	s->gen = atomic_fetch_add(&gens, 1) + 1;
	s->cfg = *c;
	c->sets = NULL;
	ret = snap_build(rt, s, err, errlen);
	if (ret < 0) {
		snap_free(s);
		s = NULL;
	}
	*out = s;
	return ret;
}

struct snap *snap_ref(struct snap *s)
{
	atomic_fetch_add(&s->refs, 1);
	return s;
}

void snap_unref(struct snap *s)
{
	if (s && atomic_fetch_sub(&s->refs, 1) == 1)
		snap_free(s);
}

struct snap *snap_current(struct rt *rt)
{
	struct snap *s;

	pthread_mutex_lock(&rt->snap_lock);
	s = snap_ref(rt->snap);
	pthread_mutex_unlock(&rt->snap_lock);
	return s;
}

void snap_install(struct rt *rt, struct snap *s)
{
	struct snap *old;

	pthread_mutex_lock(&rt->snap_lock);
	old = rt->snap;
	rt->snap = s;
	pthread_mutex_unlock(&rt->snap_lock);
	for (unsigned i = 0; i < rt->nshards; i++)
		shard_snap(rt->shards[i]);
	snap_unref(old);
}

const struct config_route *snap_route(const struct snap *s, const char *name)
{
	size_t plen;
	const char *base = route_base(name, &plen);

	/* relay names (host:port), sites (mx:...) and fallbacks are never routed */
	return strchr(base, ':') ? NULL : route_find(s->routes, base);
}

struct dns *snap_dns(const struct snap *s, const struct config *c)
{
	const struct config_sets *cs = s->cfg.sets;

	for (unsigned i = 0; cs && c != &s->cfg && i < cs->nroutes; i++)
		if (c == &cs->routes[i].cfg)
			return s->route_dns[i];
	return s->dns;
}

const struct config *snap_cfg(const struct snap *s, const char *name)
{
	const struct config_route *r = snap_route(s, name);

	return r ? &r->cfg : &s->cfg;
}

void snap_sched(const struct snap *s, const char *name, struct msg_sched *out)
{
	const struct config *c = snap_cfg(s, name);

	out->retry_ms = c->retry_delay_ms;
	out->backoff = c->retry_backoff;
	out->max_ms = c->retry_max_delay_ms;
	out->lifetime_ms = c->lifetime_ms;
	out->max_attempts = c->max_attempts;
}

struct tls_ctx *snap_tls_ctx(const struct snap *s, const struct config *c, enum config_tls tls)
{
	enum config_tls_verify v = c->tls_verify;
	struct snap_tls *t;

	if (tls == CONFIG_TLS_NONE)
		return NULL;
	if (v == CONFIG_VERIFY_AUTO)
		v = tls == CONFIG_TLS_OPPORTUNISTIC ? CONFIG_VERIFY_NONE : CONFIG_VERIFY_CA;
	t = snap_tls_find(s, v, c->tls_ca_file);
	return t ? t->ctx : NULL;
}

const struct config_pool *snap_pool(const struct snap *s, const char *name, size_t len)
{
	const struct config_sets *cs = s->cfg.sets;

	for (unsigned i = 0; cs && i < cs->npools; i++)
		if (strlen(cs->pools[i].name) == len && memcmp(cs->pools[i].name, name, len) == 0)
			return &cs->pools[i];
	return NULL;
}

/* A lookup started only to fill the cache: its answer is dropped. */
static void snap_site_prefetch(void *arg, struct dns_mx_result *r)
{
	(void)arg;
	dns_mx_result_free(r);
}

static int snap_host_cmp(const void *a, const void *b)
{
	const struct dns_mx_host *x = a, *y = b;

	return x->pref != y->pref ? (x->pref < y->pref ? -1 : 1) : strcasecmp(x->name, y->name);
}

/* The site of an MX answer: "mx:" and its hosts by preference, then name (the resolver
 * shuffles equal preferences), comma-separated, lower case. False if it does not fit. */
static bool snap_site_name(struct dns_mx_result *r, char *buf, size_t len)
{
	size_t off;
	int n = snprintf(buf, len, "mx:");

	qsort(r->hosts, r->nhosts, sizeof(*r->hosts), snap_host_cmp);
	off = (size_t)n;
	for (size_t h = 0; h < r->nhosts; h++) {
		n = snprintf(buf + off, len - off, "%s%s", h ? "," : "", r->hosts[h].name);
		if (n < 0 || (size_t)n >= len - off)
			return false;
		off += (size_t)n;
	}
	for (size_t i = 0; i < off; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
	return true;
}

/* route_ctx.site: the MX site of domain from the DNS cache (see snap_route_ctx). */
static bool snap_site(void *arg, const char *domain, char *buf, size_t len)
{
	const struct snap *s = arg;
	struct dns_mx_result *r = NULL;
	bool ok;

	if (!s->dns || dns_resolve_mx(s->dns, domain, snap_site_prefetch, NULL, &r) < 0 || !r)
		return false;
	ok = r->status == DNS_OK && !r->implicit && r->nhosts > 0 && snap_site_name(r, buf, len);
	dns_mx_result_free(r);
	return ok;
}

void snap_route_ctx(const struct snap *s, const char *pool, struct route_ctx *ctx)
{
	*ctx = (struct route_ctx){
	    .t = s->routes,
	    .mode = s->rt->cfg.mode == CONFIG_MODE_RELAY ? ROUTE_RELAY : ROUTE_INDEPENDENT,
	    .relay = s->rt->relay_name,
	    .pool = pool,
	    .site = s->cfg.mx_rollup ? snap_site : NULL,
	    .site_arg = (void *)s,
	};
}

int snap_split(void *arg, const char *const *rcpts, unsigned n, uint16_t *group, unsigned *first,
	       char **names)
{
	struct snap *s = snap_current(arg);
	struct route_ctx ctx;
	int ret;

	snap_route_ctx(s, s->cfg.default_pool, &ctx);
	ret = route_split(&ctx, rcpts, n, group, first, names);
	snap_unref(s);
	return ret;
}
