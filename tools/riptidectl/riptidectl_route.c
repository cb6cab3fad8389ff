/* riptidectl_route — `riptidectl test-route DOMAIN|relay` (the classic servers' "Test outgoing
 * route"): where would riptide send mail for DOMAIN, and would it get through?
 *
 * Why no daemon: an operator checks a route before starting riptide or while mail is stuck,
 * with the configuration file the daemon reads and the modules it uses (engine/config, dns/,
 * tls/, engine/smtp). The targets are the daemon's: the relay (mode = relay or the word
 * `relay`; by address, or by name through A/AAAA, never MX), or DOMAIN's MX hosts with their
 * addresses in try order (mode = independent), with the daemon's verdicts when there is none
 * (null MX 5.1.10, NXDOMAIN 5.1.2, no MX / no address 5.4.4, temporary 4.4.3; no MX with a
 * fallback_relay: that relay). The first target is tried; the next only when a step before
 * MAIL FROM failed (connect, greeting, EHLO, TLS; not AUTH: the same credentials would fail
 * everywhere), as the daemon's MX walk does. An opportunistic handshake that fails is retried
 * in plaintext on the same host, as the daemon does. Exit 0 when RCPT TO:<postmaster@DOMAIN>
 * was accepted, 1 when not (the last line names the failing step), 2 usage or configuration.
 *
 * Static routes (engine/route, the daemon's own lookup): a DOMAIN first goes through the route
 * table, and the first line says which route it takes and why ("route: [route *.example.com]
 * (wildcard match, line 12): hosts ..."). Everything after follows that route's settings (its
 * [delivery] values: DNS servers, relay, TLS, AUTH, helo_name, port): a `hosts` route tries
 * its hosts in order (names through A/AAAA), a relay route its relay, an independent route or
 * the default route in independent mode the MX hosts. The word `relay` ignores the routes.
 */
#include "engine/route/route.h"
#include "tools/riptidectl/riptidectl.h"
#include "tools/riptidectl/riptidectl_route.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct targets {
	struct riptidectl_target *v;
	size_t n;
};

struct args {
	const char *what; /* DOMAIN or "relay" */
	const char *rcpt; /* --rcpt, NULL: postmaster@... */
	unsigned port;	  /* --port, 0: the configured one */
};

void riptidectl_route_usage(FILE *f)
{
	fprintf(f,
		"  test-route [--rcpt ADDR] [--port N] DOMAIN|relay\n"
		"             connect where riptide would send DOMAIN's mail (the relay, or its\n"
		"             MX hosts) and try greeting, EHLO, STARTTLS, AUTH, MAIL FROM:<>,\n"
		"             RCPT TO:<postmaster@DOMAIN> (--rcpt: another), RSET, QUIT, each\n"
		"             step timed; `relay`: the relay (fallback_relay in independent\n"
		"             mode). First line: the [route] DOMAIN takes and why; the test\n"
		"             then follows that route (its hosts, relay or MX, TLS, AUTH).\n"
		"             Exit 0 when the recipient is accepted, 1 when not.\n");
}

/* ---- arguments ---- */

/* A printable address or domain that cannot smuggle a command (no control byte, blank, <>). */
static bool text_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>')
			return false;
	return *s != 0;
}

/* The words after test-route into a. Returns 0, or 2 with a message on stderr. */
static int route_args(int argc, char **argv, struct args *a)
{
	char *end;

	for (int i = 0; i < argc; i++) {
		const char *w = argv[i];
		unsigned long p;

		if ((strcmp(w, "--rcpt") == 0 || strcmp(w, "--port") == 0) && i + 1 < argc) {
			if (w[2] == 'r') {
				a->rcpt = argv[++i];
				continue;
			}
			p = strtoul(argv[++i], &end, 10);
			if (*end || p == 0 || p > 65535)
				goto usage;
			a->port = (unsigned)p;
		} else if (w[0] == '-' || a->what) {
			goto usage;
		} else {
			a->what = w;
		}
	}
	if (a->what && text_ok(a->what) && (!a->rcpt || text_ok(a->rcpt)))
		return 0;
usage:
	fprintf(stderr, "usage: riptidectl [-c FILE] test-route [--rcpt ADDR] [--port N] "
			"DOMAIN|relay\n");
	return 2;
}

/* ---- targets ---- */

static void target_add(struct targets *ts, const char *host, const struct util_addr *a)
{
	struct riptidectl_target *t;

	ts->v = util_xrealloc(ts->v, (ts->n + 1) * sizeof(*ts->v));
	t = &ts->v[ts->n++];
	memset(t, 0, sizeof(*t));
	snprintf(t->host, sizeof(t->host), "%s", host);
	t->addr = *a;
	util_addr_format(a, t->ip, sizeof(t->ip));
}

/* Every address of r's hosts, in order, on port. Returns how many. */
static size_t targets_from_dns(struct targets *ts, const struct dns_mx_result *r, unsigned port)
{
	size_t before = ts->n;

	for (size_t h = 0; h < r->nhosts; h++)
		for (size_t k = 0; k < r->hosts[h].naddrs; k++) {
			const struct dns_addr *d = &r->hosts[h].addrs[k];
			char text[INET6_ADDRSTRLEN + 16];
			struct util_addr a;

			snprintf(text, sizeof(text), d->family == AF_INET6 ? "[%s]:%u" : "%s:%u",
				 d->text, port);
			if (util_addr_parse(text, &a) == 0)
				target_add(ts, r->hosts[h].name, &a);
		}
	return ts->n - before;
}

/* "result: FAILED at STEP: WHY" (the last line). Returns 1, the exit code. */
static int route_failed(const char *step, const char *fmt, ...)
{
	va_list ap;

	printf("result: FAILED at %s: ", step);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return 1;
}

/* Host `host`'s A/AAAA (never MX) through r->cfg's resolver, printed; its addresses on port
 * added to ts. Returns how many were added, or -1 when the lookup could not start. */
static int host_lookup(struct riptidectl_route_run *r, const char *host, unsigned port,
		       struct targets *ts)
{
	struct dns_mx_result *res;
	struct dns_opts o;
	double ms = 0;
	int n = 0;

	riptidectl_dns_opts(r->cfg, &o, r->cfg->dns_servers);
	res = riptidectl_lookup(&o, host, true, &ms);
	if (!res)
		return -1;
	printf("A/AAAA lookup of %s: %s in %.1f ms%s%s\n", host, dns_status_name(res->status), ms,
	       res->status == DNS_OK ? "" : ": ", res->status == DNS_OK ? "" : res->reason);
	for (size_t k = 0; res->nhosts && k < res->hosts[0].naddrs; k++)
		printf("       %-4s %s  ttl %us\n",
		       res->hosts[0].addrs[k].family == AF_INET ? "A" : "AAAA",
		       res->hosts[0].addrs[k].text, res->hosts[0].addrs[k].ttl);
	if (res->status == DNS_OK)
		n = (int)targets_from_dns(ts, res, port);
	dns_mx_result_free(res);
	return n;
}

/* A relay given by name: its A/AAAA (never MX). Returns 0, or 1 (printed). */
static int relay_by_name(struct riptidectl_route_run *r, const char *host, unsigned port,
			 struct targets *ts)
{
	int n = host_lookup(r, host, port, ts);

	if (n < 0)
		return route_failed("relay lookup", "the lookup of %s could not start", host);
	if (n == 0)
		return route_failed("relay lookup",
				    "%s does not resolve: the daemon defers the mail (451 4.4.3)",
				    host);
	return 0;
}

/* The relay spec of `key` (host[:port], port 25 by default; --port wins): an address, or a
 * name resolved to A/AAAA. Returns 0, 1 (printed) or 2 (bad spec). */
static int route_relay(struct riptidectl_route_run *r, const char *key, const char *spec,
		       unsigned port, struct targets *ts)
{
	char h[UTIL_HOST_MAX], text[UTIL_HOST_MAX + 16];
	struct util_addr a;
	uint16_t p = 25;

	if (util_hostport_parse(spec, h, sizeof(h), &p, 25) < 0) {
		fprintf(stderr, "riptidectl: %s = %s: not host[:port]\n", key, spec);
		return 2;
	}
	p = port ? (uint16_t)port : p;
	printf("%s = %s: %s, port %u\n", key, spec,
	       util_host_is_numeric(h) ? "an address (no DNS)" : "a host name (A/AAAA, never MX)",
	       (unsigned)p);
	if (!util_host_is_numeric(h))
		return relay_by_name(r, h, p, ts);
	snprintf(text, sizeof(text), strchr(h, ':') ? "[%s]:%u" : "%s:%u", h, (unsigned)p);
	if (util_addr_parse(text, &a) < 0)
		return 2;
	target_add(ts, h, &a);
	return 0;
}

/* A host of a route's `hosts` (host[:port], the route's port by default; --port wins): an
 * address, or a name resolved to A/AAAA. Returns how many targets it added (-1: bad spec). */
static int hosts_one(struct riptidectl_route_run *r, const char *tok, unsigned port,
		     struct targets *ts)
{
	char h[UTIL_HOST_MAX], text[UTIL_HOST_MAX + 16];
	uint16_t p = (uint16_t)r->cfg->mx_port;
	struct util_addr a;

	if (util_hostport_parse(tok, h, sizeof(h), &p, (uint16_t)r->cfg->mx_port) < 0)
		return -1;
	p = port ? (uint16_t)port : p;
	if (!util_host_is_numeric(h))
		return host_lookup(r, h, p, ts);
	snprintf(text, sizeof(text), strchr(h, ':') ? "[%s]:%u" : "%s:%u", h, (unsigned)p);
	if (util_addr_parse(text, &a) < 0)
		return -1;
	target_add(ts, h, &a);
	return 1;
}

/* A route's hosts, in the given order, as the daemon reads the list (blanks or commas between
 * entries). Returns 0, 1 (none resolves, printed). */
static int route_hosts(struct riptidectl_route_run *r, const struct config_route *rt, unsigned port,
		       struct targets *ts)
{
	char buf[CONFIG_STR], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", rt->hosts);
	for (char *t = strtok_r(buf, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save))
		if (hosts_one(r, t, port, ts) < 0)
			printf("hosts entry %s: not host[:port], skipped (as the daemon does)\n",
			       t);
	if (ts->n)
		return 0;
	return route_failed("hosts lookup", "no host of [route %s] has an address%s", rt->name,
			    rt->fallback_to_default
				? " (fallback_to_default = yes: the daemon uses the default route)"
				: ": the daemon defers the mail");
}

/* The daemon's verdict on a DNS answer without targets (dest_dns_verdict). Returns 1. */
static int mx_verdict(const struct dns_mx_result *res, enum dns_status st)
{
	static const char *const what[] = {
	    [DNS_NULL_MX] = "null MX (RFC 7505): the domain takes no mail; the daemon fails it "
			    "at once (556 5.1.10)",
	    [DNS_NXDOMAIN] = "the domain does not exist: the daemon fails the mail (550 5.1.2)",
	    [DNS_NO_MX] = "no MX record (implicit_mx = no) and no fallback_relay: the daemon "
			  "fails the mail (550 5.4.4)",
	    [DNS_NO_ADDRESS] = "no MX host has an address: the daemon fails the mail (550 5.4.4)",
	    [DNS_TEMPFAIL] = "temporary DNS failure: the daemon defers the mail (451 4.4.3)",
	};

	return route_failed("MX lookup", "%s: %s [%s]", res->domain, what[st], res->reason);
}

/* DOMAIN's MX hosts and their addresses (or the fallback relay when it has no MX). Returns
 * 0, 1 (a verdict, printed) or 2. */
static int route_mx(struct riptidectl_route_run *r, const char *domain, unsigned port,
		    struct targets *ts)
{
	const struct config *c = r->cfg;
	struct dns_mx_result *res;
	enum dns_status st;
	struct dns_opts o;
	double ms = 0;
	int rc = 0;

	riptidectl_dns_opts(c, &o, c->dns_servers);
	res = riptidectl_lookup(&o, domain, false, &ms);
	if (!res)
		return route_failed("MX lookup", "the lookup of %s could not start", domain);
	printf("MX lookup of %s (dns_servers = %s): %s in %.1f ms, answer ttl %us\n", res->domain,
	       c->dns_servers, dns_status_name(res->status), ms, res->ttl);
	riptidectl_print_hosts(res);
	st = res->status;
	if (st == DNS_OK && targets_from_dns(ts, res, port ? port : c->mx_port) == 0)
		st = DNS_NO_ADDRESS;
	if (st == DNS_NO_MX && c->fallback_relay[0]) {
		printf("no MX record (implicit_mx = no): the daemon sends to the fallback relay\n");
		rc = route_relay(r, "fallback_relay", c->fallback_relay, port, ts);
	} else if (st != DNS_OK) {
		rc = mx_verdict(res, st);
	}
	dns_mx_result_free(res);
	return rc;
}

/* ---- the walk ---- */

/* The success line. Returns 0. */
static int route_ok(const struct riptidectl_route_run *r, const struct riptidectl_target *t,
		    bool fell_back)
{
	printf("result: OK: <%s> accepted by %s [%s], %s%s%s\n", r->rcpt, t->host, t->ip,
	       !r->tls_on    ? (fell_back ? "plaintext after a failed TLS handshake" : "plaintext")
	       : r->verified ? "TLS, certificate verified"
			     : "TLS, certificate not verified",
	       r->authed ? ", authenticated as " : "", r->authed ? r->cfg->auth_user : "");
	return 0;
}

/* Try the targets in order as the daemon would. Returns the exit code. */
static int route_walk(struct riptidectl_route_run *r, const struct targets *ts)
{
	if (r->route && r->route->hosts[0] && ts->n > 1)
		printf("hosts of [route %s] in order: the first that works takes the mail\n",
		       r->route->name);
	const struct riptidectl_target *t = NULL;

	for (size_t i = 0; i < ts->n; i++) {
		t = &ts->v[i];
		printf("target %zu of %zu: %s [%s]\n", i + 1, ts->n, t->host, t->ip);
		if (riptidectl_route_attempt(r, t, true) == 0)
			return route_ok(r, t, false);
		if (r->tls_failed && r->cfg->tls == CONFIG_TLS_OPPORTUNISTIC) {
			printf(
			    "TLS failed (tls = opportunistic): the daemon reconnects to this host "
			    "without TLS\n");
			if (riptidectl_route_attempt(r, t, false) == 0)
				return route_ok(r, t, true);
		}
		if (!r->before_mail)
			break;
		if (i + 1 < ts->n)
			printf("failed before MAIL FROM: the daemon tries the next target\n");
	}
	if (r->before_mail && r->route && r->route->hosts[0])
		printf("every host failed: fallback_to_default = %s: %s\n",
		       r->route->fallback_to_default ? "yes" : "no",
		       r->route->fallback_to_default ? "the daemon sends by the default route"
						     : "the daemon defers the mail");
	if (ts->n > 1 && r->before_mail)
		return route_failed(r->step, "%s (%s [%s]; every target failed)", r->why, t->host,
				    t->ip);
	return route_failed(r->step, "%s (%s [%s])", r->why, t->host, t->ip);
}

/* ---- set-up ---- */

static const char *tls_name(enum config_tls t)
{
	static const char *const n[] = {"none", "opportunistic", "required", "smtps"};

	return n[t];
}

/* What the configuration says about this route, before anything happens. */
static void route_header(const struct riptidectl_route_run *r, const char *what, enum route_kind k)
{
	static const char *const how[] = {[ROUTE_KIND_RELAY] = "to the relay",
					  [ROUTE_KIND_MX] = "independent (MX) delivery",
					  [ROUTE_KIND_HOSTS] = "to the route's hosts, in order"};
	const struct config *c = r->cfg;

	printf("test-route %s: %s\n", what, how[k]);
	printf("  tls = %s, tls_verify = %s, tls_ca_file = %s\n", tls_name(c->tls),
	       config_tls_verify_effective(c) == CONFIG_VERIFY_CA ? "ca" : "none",
	       c->tls_ca_file[0] ? c->tls_ca_file : "(system CA store)");
	if (c->auth_user[0])
		printf("  auth_user = %s (password %s), auth_plaintext = %s\n", c->auth_user,
		       c->auth_password[0] ? "set, not shown" : "empty",
		       c->auth_plaintext ? "yes" : "no");
	printf("  helo_name = %s, source_address = %s\n",
	       c->helo_name[0] ? c->helo_name : c->hostname,
	       c->source_address[0] ? c->source_address : "(kernel's choice)");
	printf("  recipient <%s>\n", r->rcpt);
}

/* The client TLS context as the daemon makes it. Returns 0 or 2 (message on stderr). */
static int route_tls(struct riptidectl_route_run *r)
{
	struct tls_client_opts o = {
	    .verify = config_tls_verify_effective(r->cfg) == CONFIG_VERIFY_CA ? TLS_VERIFY_CA
									      : TLS_VERIFY_NONE,
	    .ca_file = r->cfg->tls_ca_file,
	};
	char err[512];

	if (r->cfg->tls == CONFIG_TLS_NONE)
		return 0;
	if (tls_ctx_client_new(&o, &r->tls, err, sizeof(err)) == 0)
		return 0;
	fprintf(stderr, "riptidectl: [delivery] tls: %s\n", err);
	return 2;
}

/* The targets of `what` (relay or DOMAIN, whose route is r->route, of kind k) under
 * r->cfg. Returns 0, 1 or 2. */
static int route_targets(struct riptidectl_route_run *r, const struct args *a, enum route_kind k,
			 struct targets *ts)
{
	const struct config *c = r->cfg;

	if (strcmp(a->what, "relay") == 0)
		return route_relay(
		    r,
		    c->mode != CONFIG_MODE_RELAY && c->fallback_relay[0] ? "fallback_relay"
									 : "relay",
		    c->mode != CONFIG_MODE_RELAY && c->fallback_relay[0] ? c->fallback_relay
									 : c->relay,
		    a->port, ts);
	if (k == ROUTE_KIND_HOSTS)
		return route_hosts(r, r->route, a->port, ts);
	if (k == ROUTE_KIND_RELAY)
		return route_relay(r, "relay", c->relay, a->port, ts);
	return route_mx(r, a->what, a->port, ts);
}

/* Which route `what` takes and why, printed as the first line; r->route and r->cfg follow
 * it. Returns its kind. */
static enum route_kind route_pick(struct riptidectl_route_run *r, const struct config *cfg,
				  const struct route_table *t, const char *what)
{
	enum route_mode mode = cfg->mode == CONFIG_MODE_RELAY ? ROUTE_RELAY : ROUTE_INDEPENDENT;
	char why[CONFIG_STR + 128];
	enum route_kind k;

	if (strcmp(what, "relay") == 0)
		return ROUTE_KIND_RELAY;
	r->route = route_find(t, what);
	r->cfg = r->route ? &r->route->cfg : cfg;
	k = route_kind_of(r->route, mode);
	route_why(t, r->route, what, why, sizeof(why));
	if (k == ROUTE_KIND_HOSTS)
		printf("route: %s: hosts %s, fallback_to_default %s\n", why, r->route->hosts,
		       r->route->fallback_to_default ? "yes" : "no");
	else if (k == ROUTE_KIND_RELAY)
		printf("route: %s: relay %s\n", why, r->cfg->relay);
	else
		printf("route: %s: MX lookup (dns_servers = %s)\n", why, r->cfg->dns_servers);
	return k;
}

/* test-route with the loaded configuration cfg (and its route table t). Returns the exit
 * code. */
static int route_run(const struct config *cfg, const struct route_table *t, const struct args *a)
{
	struct riptidectl_route_run r = {.cfg = cfg};
	struct targets ts = {0};
	enum route_kind k = route_pick(&r, cfg, t, a->what);
	int rc;

	snprintf(r.rcpt, sizeof(r.rcpt), "%s%s", a->rcpt ? a->rcpt : "postmaster@",
		 a->rcpt			 ? ""
		 : strcmp(a->what, "relay") == 0 ? cfg->hostname
						 : a->what);
	if ((rc = route_tls(&r)) != 0)
		return rc;
	route_header(&r, a->what, k);
	fflush(stdout);
	rc = route_targets(&r, a, k, &ts);
	if (rc == 0)
		rc = route_walk(&r, &ts);
	free(ts.v);
	tls_ctx_free(r.tls);
	return rc;
}

int riptidectl_route(const struct riptidectl_opts *o, int argc, char **argv)
{
	static struct config cfg;
	struct route_table *t = NULL;
	struct args a = {0};
	char err[512];
	int rc = route_args(argc, argv, &a);

	if (rc)
		return rc;
	setvbuf(stdout, NULL, _IOLBF, 0); /* each step shows as it happens, even in a pipe */
	if (config_load(&cfg, o->config, err, sizeof(err)) < 0) {
		fprintf(stderr, "riptidectl: %s\n", err);
		return 2;
	}
	if (route_table_new(&cfg, &t) < 0) {
		fprintf(stderr, "riptidectl: out of memory\n");
		config_free(&cfg);
		return 2;
	}
	rc = route_run(&cfg, t, &a);
	route_table_free(t);
	config_free(&cfg);
	return rc;
}
