/* route_table — static routes and shaping rules by name, and destination names (route.h).
 *
 * Why: every recipient domain of every message is looked up at acceptance and again at each
 * delivery round, on shard threads. The table is built once per configuration snapshot and
 * never changes, so lookups take no lock: an open-addressing table of names (lower case) to
 * sections. A domain's route is its exact [route], else the nearest wildcard [route *.parent]
 * found by walking up the labels: a handful of probes per lookup whatever the number of routes.
 */
#include "engine/route/route.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct route_slot {
	const char *name; /* NULL: empty */
	const void *val;
};

struct route_map {
	struct route_slot *slots;
	size_t mask;
};

struct route_table {
	struct route_map routes;   /* enabled routes */
	struct route_map disabled; /* routes with enabled = no (route_why names them) */
	struct route_map shaping;
	unsigned nroutes;
	bool on; /* static_routes */
};

static int map_init(struct route_map *m, unsigned n)
{
	size_t cap = 8;

	while (cap < 2 * (size_t)n)
		cap *= 2;
	m->slots = calloc(cap, sizeof(*m->slots));
	m->mask = cap - 1;
	return m->slots ? 0 : -ENOMEM;
}

/* Insert name -> val (the first of equal names wins; the config refuses duplicates). */
static void map_put(struct route_map *m, const char *name, const void *val)
{
	for (size_t s = route_name_hash(name) & m->mask;; s = (s + 1) & m->mask) {
		if (!m->slots[s].name) {
			m->slots[s] = (struct route_slot){name, val};
			return;
		}
		if (strcasecmp(m->slots[s].name, name) == 0)
			return;
	}
}

static const void *map_get(const struct route_map *m, const char *name)
{
	if (!m->slots)
		return NULL;
	for (size_t s = route_name_hash(name) & m->mask; m->slots[s].name; s = (s + 1) & m->mask)
		if (strcasecmp(m->slots[s].name, name) == 0)
			return m->slots[s].val;
	return NULL;
}

/* The exact entry of name, else the nearest "*.parent" one up its labels. A name that is
 * itself a wildcard ("*.example.com", a route's own name) matches exactly only. */
static const void *map_lookup(const struct route_map *m, const char *name)
{
	char buf[ROUTE_NAME_MAX + 2];
	const void *v = map_get(m, name);

	if (v || name[0] == '*')
		return v;
	for (const char *p = strchr(name, '.'); p && p[1]; p = strchr(p + 1, '.')) {
		snprintf(buf, sizeof(buf), "*%s", p);
		if ((v = map_get(m, buf)))
			return v;
	}
	return NULL;
}

int route_table_new(const struct config *c, struct route_table **out)
{
	const struct config_sets *s = c->sets;
	unsigned nr = s ? s->nroutes : 0, ns = s ? s->nshapings : 0;
	struct route_table *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t || map_init(&t->routes, nr) || map_init(&t->disabled, nr) ||
	    map_init(&t->shaping, ns)) {
		route_table_free(t);
		return -ENOMEM;
	}
	t->on = c->static_routes;
	for (unsigned i = 0; i < nr; i++) {
		const struct config_route *r = &s->routes[i];
		map_put(r->enabled ? &t->routes : &t->disabled, r->name, r);
		t->nroutes += r->enabled && t->on;
	}
	for (unsigned i = 0; i < ns; i++)
		map_put(&t->shaping, s->shapings[i].name, &s->shapings[i]);
	*out = t;
	return 0;
}

void route_table_free(struct route_table *t)
{
	if (!t)
		return;
	free(t->routes.slots);
	free(t->disabled.slots);
	free(t->shaping.slots);
	free(t);
}

unsigned route_table_count(const struct route_table *t)
{
	return t ? t->nroutes : 0;
}

const struct config_route *route_find(const struct route_table *t, const char *name)
{
	if (!t || !t->on || t->nroutes == 0)
		return NULL;
	return map_lookup(&t->routes, name);
}

const char *route_why(const struct route_table *t, const struct config_route *r, const char *name,
		      char *buf, size_t len)
{
	const struct config_route *off = t ? map_lookup(&t->disabled, name) : NULL;

	if (r)
		snprintf(buf, len, "[route %s] (%s match, line %u)", r->name,
			 r->name[0] == '*' && name[0] != '*' ? "wildcard" : "exact", r->line);
	else if (t && !t->on && (map_lookup(&t->routes, name) || off))
		snprintf(
		    buf, len, "default route: static_routes = no turns [route %s] off",
		    (off ? off : (const struct config_route *)map_lookup(&t->routes, name))->name);
	else if (off)
		snprintf(buf, len, "default route: [route %s] is disabled (enabled = no)",
			 off->name);
	else
		snprintf(buf, len, "default route: no [route] matches %s", name);
	return buf;
}

enum route_kind route_kind_of(const struct config_route *r, enum route_mode mode)
{
	if (r && r->hosts[0])
		return ROUTE_KIND_HOSTS;
	if (r)
		return r->cfg.mode == CONFIG_MODE_RELAY ? ROUTE_KIND_RELAY : ROUTE_KIND_MX;
	return mode == ROUTE_RELAY ? ROUTE_KIND_RELAY : ROUTE_KIND_MX;
}

const struct config_shaping *route_shaping(const struct route_table *t, const char *name)
{
	return t ? map_lookup(&t->shaping, name) : NULL;
}

const char *route_base(const char *name, size_t *pool_len)
{
	const char *slash = strchr(name, '/');

	*pool_len = slash ? (size_t)(slash - name) : 0;
	return slash ? slash + 1 : name;
}

/* The base destination of lower-case domain dom (no pool): see route.h. */
static const char *route_base_of(const struct route_ctx *ctx, const char *dom, char *site,
				 size_t sitelen)
{
	const struct config_route *r = route_find(ctx->t, dom);
	enum route_kind k = route_kind_of(r, ctx->mode);

	if (r)
		return k == ROUTE_KIND_MX ? dom : r->name;
	if (k == ROUTE_KIND_RELAY)
		return ctx->relay;
	if (ctx->site && dom[0] && !route_shaping(ctx->t, dom) &&
	    ctx->site(ctx->site_arg, dom, site, sitelen))
		return site;
	return dom;
}

int route_dest_of(const struct route_ctx *ctx, const char *domain, char *out, size_t outlen)
{
	char dom[ROUTE_NAME_MAX], site[ROUTE_NAME_MAX];
	const char *base;
	int n;

	if (outlen)
		out[0] = '\0';
	size_t dl = strlen(domain);

	if (dl >= sizeof(dom))
		return -ENAMETOOLONG;
	for (size_t i = 0; i <= dl; i++)
		dom[i] = (char)tolower((unsigned char)domain[i]);
	base = route_base_of(ctx, dom, site, sizeof(site));
	if (ctx->pool && ctx->pool[0])
		n = snprintf(out, outlen, "%s/%s", ctx->pool, base);
	else
		n = snprintf(out, outlen, "%s", base);
	if (n < 0 || (size_t)n >= outlen) {
		if (outlen)
			out[0] = '\0';
		return -ENAMETOOLONG;
	}
	return n;
}

/* Name each of the nd domain groups (dfirst: a recipient of each) into names. */
static int route_name_groups(const struct route_ctx *ctx, const char *const *rcpts,
			     const unsigned *dfirst, int nd, char *names)
{
	for (int g = 0; g < nd; g++) {
		char *nm = names + (size_t)g * ROUTE_NAME_MAX;
		size_t len;
		const char *dom = route_domain(rcpts[dfirst[g]], &len);
		int ret = route_dest_of(ctx, dom, nm, ROUTE_NAME_MAX);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Merge domain groups with equal names: dgrp/dfirst (nd groups) into group/first/names. The
 * names are grouped by route_group as "@name" (it groups by what follows the last '@'). */
static int route_merge(const unsigned *dfirst, int nd, const uint16_t *dgrp, unsigned n,
		       uint16_t *group, unsigned *first, char *names)
{
	char *at = malloc((size_t)nd * (ROUTE_NAME_MAX + 1));
	const char **ptrs = malloc((size_t)nd * sizeof(*ptrs));
	uint16_t *mgrp = malloc((size_t)nd * sizeof(*mgrp));
	unsigned *mfirst = malloc((size_t)nd * sizeof(*mfirst));
	int nm = -ENOMEM;

	if (at && ptrs && mgrp && mfirst) {
		for (int g = 0; g < nd; g++) {
			ptrs[g] = at + (size_t)g * (ROUTE_NAME_MAX + 1);
			snprintf(at + (size_t)g * (ROUTE_NAME_MAX + 1), ROUTE_NAME_MAX + 1, "@%s",
				 names + (size_t)g * ROUTE_NAME_MAX);
		}
		nm = route_group(ROUTE_INDEPENDENT, ptrs, (unsigned)nd, mgrp, mfirst);
	}
	for (int m = 0; m < nm; m++) { /* mfirst[m] >= m: compacting in place is safe */
		first[m] = dfirst[mfirst[m]];
		memmove(names + (size_t)m * ROUTE_NAME_MAX, ptrs[mfirst[m]] + 1, ROUTE_NAME_MAX);
	}
	for (unsigned i = 0; nm > 0 && i < n; i++)
		group[i] = mgrp[dgrp[i]];
	free(at);
	free(ptrs);
	free(mgrp);
	free(mfirst);
	return nm;
}

/* Relay mode without routes: every recipient goes to the relay, one group (the common bulk
 * case: no name per domain). */
static int route_split_relay(const struct route_ctx *ctx, unsigned n, uint16_t *group,
			     unsigned *first, char **names)
{
	char *nm = calloc(1, ROUTE_NAME_MAX);
	int len;

	*names = NULL;
	if (!nm)
		return -ENOMEM;
	len = ctx->pool && ctx->pool[0]
		  ? snprintf(nm, ROUTE_NAME_MAX, "%s/%s", ctx->pool, ctx->relay)
		  : snprintf(nm, ROUTE_NAME_MAX, "%s", ctx->relay);
	if (len < 0 || len >= ROUTE_NAME_MAX) {
		free(nm);
		return -ENAMETOOLONG;
	}
	memset(group, 0, n * sizeof(*group));
	first[0] = 0;
	*names = nm;
	return 1;
}

/* The general case: by domain, each domain named, equal names merged. */
static int route_split_any(const struct route_ctx *ctx, const char *const *rcpts, unsigned n,
			   uint16_t *group, unsigned *first, char **names)
{
	unsigned *dfirst = malloc((n ? n : 1) * sizeof(*dfirst));
	uint16_t *dgrp = malloc((n ? n : 1) * sizeof(*dgrp));
	int nd = dfirst && dgrp ? route_group(ROUTE_INDEPENDENT, rcpts, n, dgrp, dfirst) : -ENOMEM;
	char *nm = nd >= 0 ? calloc(nd ? (size_t)nd : 1, ROUTE_NAME_MAX) : NULL;
	int ret = nd < 0 ? nd : nm ? 0 : -ENOMEM;

	if (ret == 0)
		ret = route_name_groups(ctx, rcpts, dfirst, nd, nm);
	if (ret == 0)
		ret = route_merge(dfirst, nd, dgrp, n, group, first, nm);
	free(dfirst);
	free(dgrp);
	if (ret < 0) {
		free(nm);
		nm = NULL;
	}
	*names = nm;
	return ret;
}

int route_split(const struct route_ctx *ctx, const char *const *rcpts, unsigned n, uint16_t *group,
		unsigned *first, char **names)
{
	if (n && ctx->mode == ROUTE_RELAY && route_table_count(ctx->t) == 0)
		return route_split_relay(ctx, n, group, first, names);
	return route_split_any(ctx, rcpts, n, group, first, names);
}
