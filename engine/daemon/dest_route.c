/* dest_route — what a destination is: made from its name and the shard's snapshot (routes,
 * shaping, pools), re-pointed when a reload installs a new snapshot, and the resolution of a
 * destination that is a list of hosts (a route's `hosts`, an MX site's hosts).
 *
 * Why here: a destination's name is all that survives in the queue (the sched entries and
 * envelopes name it), so the name must say everything: "pool/" in front selects the egress
 * pool, "mx:" a rolled-up MX site, "fallback:" the default route of a domain whose route's
 * hosts all failed; anything else is a route's name or a domain, looked up in the routes.
 */
#include "engine/daemon/dest_int.h"
#include "engine/daemon/snap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DEST_SITE_PREFIX     "mx:"
#define DEST_FALLBACK_PREFIX "fallback:"

static bool dest_has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* Parse a hosts list ("a b:2525, [::1]:25" or a site's "h1,h2") into d->hosts. Bad entries
 * are skipped (the configuration checked a route's list already). */
static void dest_hosts_parse(struct dest *d, const char *list, unsigned port)
{
	char buf[CONFIG_STR], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *tok = strtok_r(buf, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		struct dest_host h = {0};
		uint16_t p = 0;
		if (util_hostport_parse(tok, h.name, sizeof(h.name), &p, (uint16_t)port) < 0)
			continue;
		h.port = p;
		d->hosts = util_xrealloc(d->hosts, (d->nhosts + 1) * sizeof(*d->hosts));
		d->hosts[d->nhosts++] = h;
	}
}

static struct dest *dest_new_hosts(const struct dest_env *env, const char *name, const char *list,
				   unsigned port)
{
	struct dest *d = dest_alloc(env, name);

	d->kind = DEST_HOSTS;
	d->port = port;
	d->dns_msg.fn = dest_dns_posted;
	dest_hosts_parse(d, list, port);
	return d;
}

/* A route's relay: by address, or by name (resolved). */
static struct dest *dest_new_route_relay(const struct dest_env *env, const char *name,
					 const char *relay)
{
	struct util_addr a;
	char h[UTIL_HOST_MAX] = "";
	uint16_t p = 25;

	/* (the configuration checked the spec: a name is all that is left) */
	if (util_relay_parse(relay, &a, h, sizeof(h), &p) == 0)
		return dest_new_relay(env, &a, name, false);
	return dest_new_relay_named(env, h, p, name, false);
}

/* The default route's relay (relay mode), for a pool's name of it. */
static struct dest *dest_new_default_relay(const struct dest_env *env, const char *name)
{
	const struct rt *rt = env->rt;

	if (rt->relay_host[0])
		return dest_new_relay_named(env, rt->relay_host, rt->relay_port, name, false);
	return dest_new_relay(env, &rt->relay, name, false);
}

/* The destination for a route's own name or a domain under it (r: its route, NULL: none). */
static struct dest *dest_new_routed(const struct dest_env *env, const char *name, const char *base,
				    const struct config_route *r, struct dest *fallback)
{
	struct dest *d;

	if (r && r->hosts[0]) {
		d = dest_new_hosts(env, name, r->hosts, r->cfg.mx_port);
		d->fb_default = r->fallback_to_default;
		d->fb = fallback; /* the "fallback:" destinations' fallback relay */
		return d;
	}
	if (r && r->cfg.mode == CONFIG_MODE_RELAY)
		return dest_new_route_relay(env, name, r->cfg.relay);
	if (!r && (*env->snap)->cfg.mode == CONFIG_MODE_RELAY)
		return dest_new_default_relay(env, name);
	d = dest_new_mx(env, name, fallback);
	snprintf(d->domain, sizeof(d->domain), "%s", base);
	if (r) /* an independent route: its own MX port */
		d->port = r->cfg.mx_port;
	return d;
}

/* What `name` means under snapshot s, as a string: a destination whose meaning changed with a
 * reload is retired. */
static void dest_sig(const struct snap *s, const char *name, char *sig, size_t len)
{
	size_t plen;
	const char *base = route_base(name, &plen);
	const struct config_route *r = snap_route(s, name);

	if (dest_has_prefix(base, DEST_SITE_PREFIX) || dest_has_prefix(base, DEST_FALLBACK_PREFIX))
		snprintf(sig, len, "fixed");
	else if (r && r->hosts[0])
		snprintf(sig, len, "hosts %d %s", r->fallback_to_default, r->hosts);
	else if (r && r->cfg.mode == CONFIG_MODE_RELAY)
		snprintf(sig, len, "relay %s", r->cfg.relay);
	else if (!r && s->cfg.mode == CONFIG_MODE_RELAY)
		snprintf(sig, len, "default relay");
	else if (r) /* its MX port and resolver are the destination's */
		snprintf(sig, len, "mx %u %s", r->cfg.mx_port, r->cfg.dns_servers);
	else
		snprintf(sig, len, "mx");
}

struct dest *dest_create(const struct dest_env *env, const char *name, struct dest *fallback)
{
	const struct snap *s = *env->snap;
	size_t plen;
	const char *base = route_base(name, &plen);
	struct dest *d;

	if (dest_has_prefix(base, DEST_SITE_PREFIX)) {
		d = dest_new_hosts(env, name, base + strlen(DEST_SITE_PREFIX), s->cfg.mx_port);
		d->fb = fallback;
		d->is_site = true;
	} else if (dest_has_prefix(base, DEST_FALLBACK_PREFIX)) {
		d = dest_new_mx(env, name, fallback);
		snprintf(d->domain, sizeof(d->domain), "%s", base + strlen(DEST_FALLBACK_PREFIX));
	} else {
		d = dest_new_routed(env, name, base, snap_route(s, name), fallback);
	}
	dest_reconf(d);
	if (!d->domain[0])
		snprintf(d->domain, sizeof(d->domain), "%s", base);
	return d;
}

bool dest_reconf(struct dest *d)
{
	struct snap *s = *d->env.snap;
	char sig[sizeof(d->sig)];

	if (d->snap == s)
		return true;
	dest_sig(s, d->name, sig, sizeof(sig));
	if (!d->snap) /* its first configuration: what its name means now is what it is */
		memcpy(d->sig, sig, sizeof(sig));
	else if (strcmp(sig, d->sig) != 0) {
		d->retired = true; /* keeps its snapshot until it is freed */
		return false;
	}
	snap_unref(d->snap);
	d->snap = snap_ref(s);
	d->route = snap_route(s, d->name);
	d->cfg = d->route ? &d->route->cfg : &s->cfg;
	d->dns = snap_dns(s, d->cfg);
	dest_shape_conf(d);
	return true;
}

/* ---- a list of hosts ---- */

/* Every host answered: the addresses gathered become the targets (when there are none, the
 * status says why: temporary if any lookup failed temporarily). */
static void dest_hosts_done(struct dest *d, enum dns_status worst, uint32_t ttl)
{
	free(d->targets);
	d->targets = d->acc;
	d->ntargets = d->nacc;
	d->acc = NULL;
	d->nacc = 0;
	d->tgen++;
	for (struct job *j = d->head; j; j = j->next)
		j->hop = 0;
	d->dns_status = d->ntargets ? DNS_OK : worst;
	snprintf(d->dns_reason, sizeof(d->dns_reason), "%s",
		 d->ntargets ? "" : "no host of the list has an address");
	d->targets_until = loop_now_ms(d->env.loop) + (uint64_t)(ttl ? ttl : 1) * 1000u;
}

bool dest_hosts_answer(struct dest *d, struct dns_mx_result *r)
{
	const struct dest_host *h = &d->hosts[d->hosts_i];

	for (size_t i = 0; i < r->nhosts; i++) {
		d->acc =
		    util_xrealloc(d->acc, (d->nacc + r->hosts[i].naddrs + 1) * sizeof(*d->acc));
		for (size_t a = 0; a < r->hosts[i].naddrs; a++)
			dest_target_set(&d->acc[d->nacc++], &r->hosts[i].addrs[a], h->name,
					h->port);
	}
	if (r->status == DNS_TEMPFAIL || d->hosts_i == 0 || r->ttl < d->acc_ttl)
		d->acc_ttl = r->status == DNS_TEMPFAIL ? 1 : r->ttl > 3600 ? 3600 : r->ttl;
	d->acc_worst =
	    r->status == DNS_TEMPFAIL || d->acc_worst == DNS_TEMPFAIL ? DNS_TEMPFAIL : r->status;
	dns_mx_result_free(r);
	if (++d->hosts_i < d->nhosts) {
		dest_hosts_resolve(d);
		return !d->resolving && d->hosts_i >= d->nhosts;
	}
	dest_hosts_done(d, d->acc_worst, d->acc_ttl);
	return true;
}

void dest_hosts_start(struct dest *d)
{
	free(d->acc);
	d->acc = NULL;
	d->nacc = 0;
	d->hosts_i = 0;
	d->acc_ttl = 0;
	d->acc_worst = DNS_OK;
	dest_hosts_resolve(d);
}

void dest_hosts_resolve(struct dest *d)
{
	while (d->hosts_i < d->nhosts) {
		struct dns_mx_result *cached = NULL;
		int ret =
		    dns_resolve_host(d->dns, d->hosts[d->hosts_i].name, dest_dns_cb, d, &cached);
		if (ret == 0 && !cached) {
			d->resolving = true;
			return;
		}
		if (ret < 0) { /* resolver gone or a bad name: a temporary failure for this host */
			cached = util_xcalloc(1, sizeof(*cached));
			cached->status = DNS_TEMPFAIL;
		}
		if (dest_hosts_answer(d, cached))
			return;
	}
	if (d->nhosts == 0)
		dest_hosts_done(d, DNS_NO_ADDRESS, 60);
}

/* ---- the default route behind a route's hosts ---- */

/* The default route's destination on this shard for the recipients of domain dom (length
 * len) of a job of d. */
static struct dest *dest_default_for(struct dest *d, const char *dom, size_t len)
{
	char name[ROUTE_NAME_MAX + 320];
	size_t plen;
	int pre;

	route_base(d->name, &plen);
	pre = plen ? (int)plen + 1 : 0; /* "pool/" */
	if (d->env.rt->cfg.mode == CONFIG_MODE_RELAY && !plen && *d->env.relay)
		return *d->env.relay;
	if (d->env.rt->cfg.mode == CONFIG_MODE_RELAY)
		snprintf(name, sizeof(name), "%.*s%.299s", pre, d->name, d->env.rt->relay_name);
	else
		snprintf(name, sizeof(name), "%.*s%s%.*s", pre, d->name, DEST_FALLBACK_PREFIX,
			 (int)len, dom);
	return dest_table_get(d->env.table, &d->env, name, d->fb);
}

bool dest_fb_default(struct dest *d, struct job *j)
{
	unsigned *idx = util_xmalloc(j->n * sizeof(*idx));
	uint8_t *done = util_xcalloc(j->n, 1);

	for (unsigned k = 0; k < j->n; k++) {
		size_t len, l2;
		const char *dom = route_domain(j->rcpts[k], &len);
		unsigned n = 0;
		struct job *nj;
		struct dest *fb;
		for (unsigned k2 = k; k2 < j->n && !done[k]; k2++)
			if (!done[k2] && (route_domain(j->rcpts[k2], &l2), l2 == len) &&
			    strncasecmp(route_domain(j->rcpts[k2], &l2), dom, len) == 0)
				idx[n++] = j->idx[k2], done[k2] = 1;
		if (n == 0)
			continue;
		nj = job_new(j->u, idx, n);
		fb = dest_default_for(d, dom, len);
		job_push(fb, nj);
		dest_pump(fb);
	}
	free(idx);
	free(done);
	job_end(d, j);
	return true;
}

/* ---- the shard's table ---- */

static void dest_table_grow(struct dest_table *t)
{
	unsigned cap = t->cap ? t->cap * 2 : 64;
	struct dest **b = util_xcalloc(cap, sizeof(*b));

	for (unsigned i = 0; i < t->cap; i++)
		for (struct dest *d = t->b[i], *next; d; d = next) {
			next = d->tab_next;
			d->tab_next = b[route_name_hash(d->name) & (cap - 1)];
			b[route_name_hash(d->name) & (cap - 1)] = d;
		}
	free(t->b);
	t->b = b;
	t->cap = cap;
}

struct dest *dest_table_get(struct dest_table *t, const struct dest_env *env, const char *name,
			    struct dest *fallback)
{
	struct dest *d;

	if (t->n >= t->cap)
		dest_table_grow(t);
	for (d = t->b[route_name_hash(name) & (t->cap - 1)]; d; d = d->tab_next)
		if (!d->retired && strcmp(d->name, name) == 0)
			return d;
	d = dest_create(env, name, fallback);
	d->tab_next = t->b[route_name_hash(name) & (t->cap - 1)];
	t->b[route_name_hash(name) & (t->cap - 1)] = d;
	t->n++;
	return d;
}

void dest_table_gc(struct dest_table *t, uint64_t now_ms, uint64_t idle_ms)
{
	for (unsigned i = 0; i < t->cap; i++)
		for (struct dest **pp = &t->b[i], *d; (d = *pp);) {
			if (dest_busy(d) || d->shutting || d->bo_active ||
			    (!d->retired && now_ms - d->last_used < idle_ms)) {
				pp = &d->tab_next;
				continue;
			}
			*pp = d->tab_next;
			t->n--;
			dest_free(d);
		}
}

void dest_table_reclaim(struct dest_table *t)
{
	for (unsigned i = 0; i < t->cap; i++)
		for (struct dest *d = t->b[i]; d; d = d->tab_next)
			dest_tick(d);
}

unsigned dest_table_busy(const struct dest_table *t)
{
	unsigned busy = 0;

	for (unsigned i = 0; i < t->cap; i++)
		for (const struct dest *d = t->b[i]; d; d = d->tab_next)
			busy += dest_busy(d);
	return busy;
}

void dest_table_shutdown(struct dest_table *t, bool abort)
{
	for (unsigned i = 0; i < t->cap; i++)
		for (struct dest *d = t->b[i]; d; d = d->tab_next)
			dest_shutdown(d, abort);
}

void dest_table_free(struct dest_table *t)
{
	for (unsigned i = 0; i < t->cap; i++)
		for (struct dest *d = t->b[i], *next; d; d = next) {
			next = d->tab_next;
			dest_free(d);
		}
	free(t->b);
	memset(t, 0, sizeof(*t));
}

void dest_table_reconf(struct dest_table *t)
{
	for (unsigned i = 0; i < t->cap; i++)
		for (struct dest *d = t->b[i]; d; d = d->tab_next)
			if (!d->retired)
				dest_reconf(d);
}
