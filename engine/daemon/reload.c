/* reload — SIGHUP and `riptidectl reload`: read the file again and apply what can change
 * while mail flows; also the resolvers of routes with DNS settings of their own.
 *
 * Why here: a reload is one decision made on the main thread: the new file either loads and
 * indexes completely (config_load, snap_new) or nothing changes. What it applies: `outgoing`,
 * `log` (reopened: logrotate), and a new snapshot (snap.h): routes, shaping, backoff rules,
 * pools, rewrite rules and the per-destination [delivery] settings (timeouts, TLS, AUTH, retry
 * schedule, throttles, sources). Sessions already open finish under the settings they were
 * opened with; queued mail is never dropped (it is in the queue, and a destination whose route
 * changed drains before it goes). What the threads were built with (listeners, spool, shards,
 * mode, relay, DNS, the global connection cap, DSN settings) waits for a restart, and the
 * reload says so.
 */
#include "engine/daemon/rt.h"
#include "engine/daemon/runner.h"
#include "engine/daemon/snap.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rt_dns_opts(const struct config *c, struct dns_opts *o)
{
	*o = (struct dns_opts){
	    .servers = c->dns_servers,
	    .resolv_conf = c->resolv_conf,
	    .fallback_auto = c->dns_fallback_auto,
	    .timeout_ms = (unsigned)c->dns_timeout_ms,
	    .tries = c->dns_tries,
	    .implicit_mx = c->implicit_mx,
	    .max_mx_hosts = c->max_mx_hosts,
	    .min_ttl = (uint32_t)(c->dns_min_ttl_ms / 1000),
	    .max_ttl = (uint32_t)(c->dns_max_ttl_ms / 1000),
	    .neg_max_ttl = (uint32_t)(c->dns_negative_ttl_ms / 1000),
	    .max_entries = c->dns_cache_entries,
	};
}

/* Whether two option sets make the same resolver. */
static bool rt_dns_same(const struct dns_opts *a, const struct dns_opts *b)
{
	return strcmp(a->servers, b->servers) == 0 && strcmp(a->resolv_conf, b->resolv_conf) == 0 &&
	       a->fallback_auto == b->fallback_auto && a->timeout_ms == b->timeout_ms &&
	       a->tries == b->tries && a->implicit_mx == b->implicit_mx &&
	       a->max_mx_hosts == b->max_mx_hosts && a->min_ttl == b->min_ttl &&
	       a->max_ttl == b->max_ttl && a->neg_max_ttl == b->neg_max_ttl &&
	       a->max_entries == b->max_entries;
}

struct dns *rt_dns_for(struct rt *rt, const struct config *c)
{
	struct dns_opts o, def;
	struct rt_dns *e;

	rt_dns_opts(c, &o);
	rt_dns_opts(&rt->cfg, &def);
	if (rt_dns_same(&o, &def))
		return rt->dns;
	for (unsigned i = 0; i < rt->nxdns; i++)
		if (rt_dns_same(&o, &rt->xdns[i].opts))
			return rt->xdns[i].dns;
	rt->xdns = util_xrealloc(rt->xdns, (rt->nxdns + 1) * sizeof(*rt->xdns));
	e = &rt->xdns[rt->nxdns];
	snprintf(e->key, sizeof(e->key), "%s", c->dns_servers);
	snprintf(e->key + CONFIG_STR, CONFIG_STR, "%s", c->resolv_conf);
	e->opts = o;
	e->opts.servers = e->key;
	e->opts.resolv_conf = e->key + CONFIG_STR;
	if (dns_open(&e->opts, &e->dns) < 0) {
		fprintf(stderr, "riptide: cannot start a resolver for dns_servers = %s\n",
			c->dns_servers);
		return NULL;
	}
	rt->nxdns++;
	return e->dns;
}

/* Copy into x, from a, every [delivery] value a reload applies (new sessions and rounds take
 * it from the snapshot), so what is left to compare needs a restart. */
static void rt_reloadable_from(struct config *x, const struct config *a)
{
#define KEEP(f) memcpy(&x->f, &a->f, sizeof(x->f))
	KEEP(outgoing), KEEP(log), KEEP(helo_name), KEEP(tls), KEEP(tls_verify);
	KEEP(tls_ca_file), KEEP(auth_user), KEEP(auth_password), KEEP(auth_plaintext);
	KEEP(max_messages_per_connection), KEEP(max_recipients_per_transaction);
	KEEP(idle_timeout_ms), KEEP(retry_delay_ms), KEEP(retry_backoff);
	KEEP(retry_max_delay_ms), KEEP(max_attempts), KEEP(lifetime_ms);
	KEEP(connect_timeout_ms), KEEP(greeting_timeout_ms), KEEP(helo_timeout_ms);
	KEEP(mail_timeout_ms), KEEP(rcpt_timeout_ms), KEEP(data_timeout_ms);
	KEEP(data_block_timeout_ms), KEEP(data_done_timeout_ms), KEEP(mx_port);
	KEEP(first_mx_only), KEEP(max_connections_per_destination), KEEP(max_message_rate);
	KEEP(max_connection_rate), KEEP(static_routes), KEEP(default_pool);
	KEEP(source_address), KEEP(source_v4), KEEP(source_v6), KEEP(mx_rollup);
	x->sets = NULL;
#undef KEEP
}

/* True if b differs from a in anything a reload cannot apply. */
static bool rt_needs_restart(const struct config *a, const struct config *b)
{
	struct config x = *b, y = *a;
	char *ta = NULL, *tb = NULL;
	size_t la = 0, lb = 0;
	FILE *fa = open_memstream(&ta, &la), *fb = open_memstream(&tb, &lb);
	bool differ;

	rt_reloadable_from(&x, a);
	y.sets = NULL;
	config_print(&y, fa);
	config_print(&x, fb);
	fclose(fa);
	fclose(fb);
	differ = la != lb || memcmp(ta, tb, la) != 0;
	free(ta);
	free(tb);
	return differ;
}

/* Apply `log` and `outgoing` of the new file nc. */
static void rt_reload_basics(struct rt *rt, const struct config *nc)
{
	int ret = dlog_reopen(rt->log, nc->log);

	if (ret < 0)
		fprintf(stderr, "riptide: reload: cannot open log %s: %s (kept the old one)\n",
			nc->log, strerror(-ret));
	else
		memcpy(rt->cfg.log, nc->log, sizeof(nc->log));
	atomic_store(&rt->outgoing, nc->outgoing);
	runner_set_paused(rt->runner, !nc->outgoing);
}

/* What a snapshot holds, in words, into buf. */
static void rt_reload_summary(const struct snap *s, char *buf, size_t len)
{
	const struct config_sets *cs = s->cfg.sets;

	snprintf(buf, len,
		 "%u routes (%u in use), %u shaping rules, %u backoff rules, %u pools, %u rewrite "
		 "rules",
		 cs ? cs->nroutes : 0, route_table_count(s->routes), cs ? cs->nshapings : 0,
		 cs ? cs->nbackoffs : 0, cs ? cs->npools : 0, cs ? cs->nrewrites : 0);
}

int rt_reload(struct rt *rt, const char *path, char *msg, size_t len)
{
	static struct config nc;
	struct snap *s;
	char err[512], what[256];
	bool restart;

	if (!path) {
		int ret = dlog_reopen(rt->log, rt->cfg.log);
		snprintf(msg, len, "no configuration file; log reopened (%d)", ret);
		return 0;
	}
	if (config_load(&nc, path, err, sizeof(err)) < 0) {
		snprintf(msg, len, "reload failed, running configuration kept: %s", err);
		return -EINVAL;
	}
	restart = rt_needs_restart(&rt->cfg, &nc);
	if (snap_new(rt, &nc, &s, err, sizeof(err)) < 0) {
		config_free(&nc);
		snprintf(msg, len, "reload failed, running configuration kept: %s: %s", path, err);
		return -EINVAL;
	}
	rt_reload_basics(rt, &nc);
	rt_reload_summary(s, what, sizeof(what));
	snap_install(rt, s);
	snprintf(msg, len, "reloaded %s: outgoing %s, log %s, %s%s", path,
		 nc.outgoing ? "on" : "OFF", rt->cfg.log, what,
		 restart ? "; other changes (listeners, spool, shards, mode, relay, DNS, global "
			   "cap, DSN settings) take effect at the next restart"
			 : "");
	return 0;
}

int rt_reload_request(struct rt *rt, char *msg, size_t len)
{
	struct timespec until;
	uint64_t mine;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&rt->reload_lock);
	mine = ++rt->reload_asked;
	kill(getpid(), SIGHUP); /* main's sigwait takes it */
	while (rt->reload_done < mine && ret == 0)
		ret = pthread_cond_timedwait(&rt->reload_cond, &rt->reload_lock, &until);
	if (rt->reload_done >= mine) {
		snprintf(msg, len, "%s", rt->reload_msg);
		ret = rt->reload_ret;
	} else {
		snprintf(msg, len, "the main thread did not answer in 30 s");
		ret = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&rt->reload_lock);
	return ret;
}

void rt_reload_served(struct rt *rt, int ret, const char *msg)
{
	pthread_mutex_lock(&rt->reload_lock);
	rt->reload_done = rt->reload_asked;
	rt->reload_ret = ret;
	snprintf(rt->reload_msg, sizeof(rt->reload_msg), "%s", msg);
	pthread_cond_broadcast(&rt->reload_cond);
	pthread_mutex_unlock(&rt->reload_lock);
}
