/* test_config_sets — issue #9's configuration: the rate keys, [route X] (every [delivery] key,
 * inherited whatever the order), [shaping X], [backoff X] (built-in rules and their override),
 * [pool X], [rewrite], their errors with file:line, config_print's round trip with sections,
 * config_pool_find and config_free (the ASan build checks that nothing leaks).
 *
 * Why through the public API only: the daemon reads these structs as config.h declares them;
 * what the tests assert is what it will see.
 */
#include "engine/config/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

static int load(const char *text, struct config *c, char *err, size_t errlen)
{
	return config_load_buf(c, "t.conf", text, strlen(text), err, errlen);
}

static char *print_to_string(const struct config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	config_print(c, f);
	fclose(f);
	return buf;
}

static const struct config_route *route(const struct config *c, const char *name)
{
	for (unsigned i = 0; i < c->sets->nroutes; i++)
		if (strcmp(c->sets->routes[i].name, name) == 0)
			return &c->sets->routes[i];
	return NULL;
}

static const struct config_backoff *backoff(const struct config *c, const char *name)
{
	for (unsigned i = 0; i < c->sets->nbackoffs; i++)
		if (strcmp(c->sets->backoffs[i].name, name) == 0)
			return &c->sets->backoffs[i];
	return NULL;
}

static void test_rate_parse(void **state)
{
	static const struct {
		const char *s;
		uint32_t n;
		uint64_t per_ms;
		const char *printed;
	} good[] = {
	    {"0", 0, 1000, "0"},	   {"0/h", 0, 1000, "0"},
	    {"10", 10, 1000, "10/s"},	   {"10/s", 10, 1000, "10/s"},
	    {"60/m", 60, 60000, "60/m"},   {"500/h", 500, 3600000, "500/h"},
	    {"7/sec", 7, 1000, "7/s"},	   {"7/second", 7, 1000, "7/s"},
	    {"7/min", 7, 60000, "7/m"},	   {"7/Minute", 7, 60000, "7/m"},
	    {"7/hour", 7, 3600000, "7/h"}, {"4294967295/h", 4294967295u, 3600000, "4294967295/h"}};
	static const char *const bad[] = {"",	   "x",	   "-1",    "1/",     "1/d",
					  "1/ s",  " 1/s", "1.5/s", "1/s ",   "4294967296",
					  "10/mm", "/s",   "1//s",  "1/hours"};
	struct config_rate r;
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(config_rate_parse(good[i].s, &r), 0);
		assert_int_equal(r.n, good[i].n);
		assert_int_equal(r.per_ms, good[i].per_ms);
		config_rate_format(&r, buf, sizeof(buf));
		assert_string_equal(buf, good[i].printed);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = (struct config_rate){123, 456};
		assert_int_equal(config_rate_parse(bad[i], &r), -EINVAL);
		assert_int_equal(r.n, 123); /* untouched */
	}
}

static void test_delivery_new_keys(void **state)
{
	struct config c;
	char err[512];

	(void)state;
	assert_int_equal(load("", &c, err, sizeof(err)), 0);
	assert_int_equal(c.max_message_rate.n, 0);
	assert_int_equal(c.max_connection_rate.n, 0);
	assert_true(c.static_routes);
	assert_string_equal(c.default_pool, "");
	assert_non_null(c.sets);
	assert_int_equal(c.sets->nbackoffs, 3);
	assert_int_equal(
	    load("[delivery]\nmax_message_rate = 60/m\nmax_connection_rate = 5\n"
		 "static_routes = no\ndefault_pool = p1\n[pool p1]\nsources = 127.0.0.2\n",
		 &c, err, sizeof(err)),
	    0);
	assert_int_equal(c.max_message_rate.n, 60);
	assert_int_equal(c.max_message_rate.per_ms, 60000);
	assert_int_equal(c.max_connection_rate.n, 5);
	assert_int_equal(c.max_connection_rate.per_ms, 1000);
	assert_false(c.static_routes);
	assert_string_equal(c.default_pool, "p1");
	assert_non_null(config_pool_find(&c, "p1"));
	assert_null(config_pool_find(&c, "P1")); /* case-sensitive */
	assert_null(config_pool_find(&c, "p2"));
	config_free(&c);
	assert_null(c.sets);
	assert_null(config_pool_find(&c, "p1"));
	config_free(&c); /* twice is harmless */
}

static const char sets_text[] = "[route Example.COM]\n"
				"hosts = mx1.example.net, [::1]:2525 127.0.0.1:26\n"
				"fallback_to_default = yes\n"
				"lifetime = 30d\n"
				"[route *.example.org]\n"
				"enabled = no\n"
				"mode = relay\n"
				"relay = relay.example.org:587\n"
				"auth_user = u\n"
				"auth_password = secret\n"
				"tls = required\n"
				"[route independent.test]\n"
				"mode = independent\n"
				"dns_servers = 127.0.0.1:5353\n"
				"implicit_mx = no\n"
				"first_mx_only = yes\n"
				"max_message_rate = 100/h\n"
				"[shaping gmail.com]\n"
				"max_connections = 5\n"
				"max_message_rate = 500/h\n"
				"tls = required\n"
				"[shaping MX:Google]\n"
				"max_recipients_per_transaction = 50\n"
				"max_messages_per_connection = 10\n"
				"max_connection_rate = 10/minute\n"
				"connect_timeout = 5s\n"
				"[backoff gmail]\n"
				"duration = 1h\n"
				"[backoff mine]\n"
				"code = 550\n"
				"enhanced = 5.7.1\n"
				"text = spam|blocked\n"
				"action = bounce\n"
				"[backoff slow-down]\n"
				"text = too many\n"
				"action = reduce\n"
				"factor = 0.25\n"
				"recover_steps = 2\n"
				"recover_interval = 30s\n"
				"enabled = no\n"
				"[pool p1]\n"
				"sources = 127.0.0.2 mta2.example.com, 127.0.0.3\n"
				"sources = ::1 mta6.example.com\n"
				"[rewrite]\n"
				"John@Example.com = news@example.com\n"
				"[rewrite]\n"
				"b@example.com = c@example.com\n";

static void check_routes(const struct config *c)
{
	const struct config_route *r;

	assert_int_equal(c->sets->nroutes, 3);
	r = route(c, "example.com");
	assert_non_null(r);
	assert_true(r->enabled);
	assert_string_equal(r->hosts, "mx1.example.net, [::1]:2525 127.0.0.1:26");
	assert_true(r->fallback_to_default);
	assert_int_equal(r->cfg.lifetime_ms, 30ull * 86400000);
	assert_null(r->cfg.sets);
	assert_int_equal(r->line, 1);
	r = route(c, "*.example.org");
	assert_non_null(r);
	assert_false(r->enabled);
	assert_false(r->fallback_to_default);
	assert_string_equal(r->hosts, "");
	assert_int_equal(r->cfg.mode, CONFIG_MODE_RELAY);
	assert_string_equal(r->cfg.relay, "relay.example.org:587");
	assert_string_equal(r->cfg.auth_password, "secret");
	assert_int_equal(r->cfg.tls, CONFIG_TLS_REQUIRED);
	r = route(c, "independent.test");
	assert_non_null(r);
	assert_int_equal(r->cfg.mode, CONFIG_MODE_INDEPENDENT);
	assert_string_equal(r->cfg.dns_servers, "127.0.0.1:5353");
	assert_false(r->cfg.implicit_mx);
	assert_true(r->cfg.first_mx_only);
	assert_int_equal(r->cfg.max_message_rate.n, 100);
	assert_int_equal(r->cfg.max_message_rate.per_ms, 3600000);
}

static void check_shaping(const struct config *c)
{
	const struct config_shaping *s = &c->sets->shapings[0];

	assert_int_equal(c->sets->nshapings, 2);
	assert_string_equal(s->name, "gmail.com");
	assert_int_equal(s->given, CONFIG_SHAPE_CONNS | CONFIG_SHAPE_MSG_RATE | CONFIG_SHAPE_TLS);
	assert_int_equal(s->max_connections, 5);
	assert_int_equal(s->max_message_rate.n, 500);
	assert_int_equal(s->tls, CONFIG_TLS_REQUIRED);
	s = &c->sets->shapings[1];
	assert_string_equal(s->name, "mx:google");
	assert_int_equal(s->given, CONFIG_SHAPE_RCPTS | CONFIG_SHAPE_MSGS | CONFIG_SHAPE_CONN_RATE |
				       CONFIG_SHAPE_CONNECT_TMO);
	assert_int_equal(s->max_recipients_per_transaction, 50);
	assert_int_equal(s->max_messages_per_connection, 10);
	assert_int_equal(s->max_connection_rate.n, 10);
	assert_int_equal(s->max_connection_rate.per_ms, 60000);
	assert_int_equal(s->connect_timeout_ms, 5000);
}

static void check_backoffs(const struct config *c)
{
	const struct config_backoff *b;

	assert_int_equal(c->sets->nbackoffs, 5);
	assert_string_equal(c->sets->backoffs[0].name, "gmail"); /* built-ins first */
	assert_string_equal(c->sets->backoffs[1].name, "outlook");
	assert_string_equal(c->sets->backoffs[2].name, "yahoo");
	assert_string_equal(c->sets->backoffs[3].name, "mine"); /* then file order */
	assert_string_equal(c->sets->backoffs[4].name, "slow-down");
	b = backoff(c, "gmail"); /* overridden: duration only */
	assert_true(b->builtin);
	assert_int_equal(b->code, 421);
	assert_string_equal(b->enhanced, "4.7.28");
	assert_int_equal(b->action, CONFIG_BACKOFF_SUSPEND);
	assert_int_equal(b->duration_ms, 3600000);
	assert_true(b->line > 0);
	b = backoff(c, "mine");
	assert_false(b->builtin);
	assert_true(b->enabled);
	assert_int_equal(b->code, 550);
	assert_string_equal(b->enhanced, "5.7.1");
	assert_string_equal(b->text, "spam|blocked");
	assert_int_equal(b->action, CONFIG_BACKOFF_BOUNCE);
	assert_int_equal(b->duration_ms, 600000); /* defaults */
	assert_true(b->factor == 0.5);
	assert_int_equal(b->recover_steps, 4);
	assert_int_equal(b->recover_interval_ms, 60000);
	b = backoff(c, "slow-down");
	assert_false(b->enabled);
	assert_int_equal(b->action, CONFIG_BACKOFF_REDUCE);
	assert_true(b->factor == 0.25);
	assert_int_equal(b->recover_steps, 2);
	assert_int_equal(b->recover_interval_ms, 30000);
}

static void check_pool_rewrite(const struct config *c)
{
	const struct config_pool *p = config_pool_find(c, "p1");
	const struct sockaddr_in *s4;

	assert_non_null(p);
	assert_int_equal(p->nsources, 3);
	assert_string_equal(p->sources[0].text, "127.0.0.2");
	assert_string_equal(p->sources[0].helo, "mta2.example.com");
	s4 = (const struct sockaddr_in *)&p->sources[0].addr.ss;
	assert_int_equal(p->sources[0].addr.family, AF_INET);
	assert_int_equal(s4->sin_port, 0);
	assert_int_equal(ntohl(s4->sin_addr.s_addr), 0x7f000002);
	assert_string_equal(p->sources[1].text, "127.0.0.3");
	assert_string_equal(p->sources[1].helo, c->helo_name); /* the default */
	assert_string_equal(p->sources[2].text, "::1");
	assert_int_equal(p->sources[2].addr.family, AF_INET6);
	assert_string_equal(p->sources[2].helo, "mta6.example.com");
	assert_int_equal(c->sets->nrewrites, 2);
	assert_string_equal(c->sets->rewrites[0].from, "john@example.com");
	assert_string_equal(c->sets->rewrites[0].to, "news@example.com");
	assert_string_equal(c->sets->rewrites[1].from, "b@example.com");
}

static void test_sets_parsed(void **state)
{
	struct config c;
	char err[512] = "";

	(void)state;
	assert_int_equal(load(sets_text, &c, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	check_routes(&c);
	check_shaping(&c);
	check_backoffs(&c);
	check_pool_rewrite(&c);
	config_free(&c);
}

/* route.cfg = the final [delivery], then the route's keys, whatever the order in the file. */
static void test_route_inherits_any_order(void **state)
{
	static const char *const texts[] = {
	    "[delivery]\nlifetime = 2d\nretry_delay = 1m\nhelo_name = out.example\n"
	    "[route a.test]\nretry_delay = 7m\n",
	    "[route a.test]\nretry_delay = 7m\n"
	    "[delivery]\nlifetime = 2d\nretry_delay = 1m\nhelo_name = out.example\n",
	    "[delivery]\nlifetime = 9d\n[route a.test]\nretry_delay = 7m\n"
	    "[delivery]\nlifetime = 2d\nretry_delay = 1m\nhelo_name = out.example\n"};
	struct config c;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		const struct config_route *r;

		assert_int_equal(load(texts[i], &c, err, sizeof(err)), 0);
		r = route(&c, "a.test");
		assert_non_null(r);
		assert_int_equal(r->cfg.lifetime_ms, 2 * 86400000ull);
		assert_int_equal(r->cfg.retry_delay_ms, 7 * 60000);
		assert_int_equal(c.retry_delay_ms, 60000);
		assert_string_equal(r->cfg.helo_name, "out.example");
		assert_string_equal(r->cfg.relay, c.relay);
		assert_int_equal(r->cfg.mode, c.mode);
		config_free(&c);
	}
	/* a route's empty helo_name is the hostname, as in [delivery] */
	assert_int_equal(load("[main]\nhostname = h.example\n[delivery]\nhelo_name = o.example\n"
			      "[route a.test]\nhelo_name =\n",
			      &c, err, sizeof(err)),
			 0);
	assert_string_equal(route(&c, "a.test")->cfg.helo_name, "h.example");
	config_free(&c);
	/* a route with hosts and the inherited mode = relay is fine; mode = independent too */
	assert_int_equal(
	    load("[route a.test]\nhosts = 10.0.0.1\n[route b.test]\nmode = "
		 "independent\nhosts = 10.0.0.2\n[delivery]\nrelay =\nmode = independent\n",
		 &c, err, sizeof(err)),
	    0);
	config_free(&c);
}

struct err_case {
	const char *text;
	const char *msg; /* after "t.conf:" */
};

static const struct err_case err_cases[] = {
    {"[route]\n",
     "1: [route] needs a name: a domain: [route example.com] or [route *.example.com]"},
    {"\n[route 1.2.3.4]\n", "2: [route 1.2.3.4]: '1.2.3.4' is not a domain: [route example.com] or "
			    "[route *.example.com]"},
    {"[route a..b]\n", "1: [route a..b]: 'a..b' is not a domain: [route example.com] or [route "
		       "*.example.com]"},
    {"[route a.test b]\n", "1: [route a.test b]: the route name must be one word of at most 255 "
			   "bytes"},
    {"[route a.test]\n[route A.TEST]\n", "2: duplicate section [route a.test] (first at line 1)"},
    {"[route a.test]\nx = 1\n", "2: unknown key 'x' in [route a.test]: no such setting"},
    {"[route a.test]\nlisten = 127.0.0.1:25\n",
     "2: unknown key 'listen' in [route a.test]: it belongs in [inject]"},
    {"[route a.test]\nhosts = a.test:0\n",
     "2: invalid value for 'hosts' in [route a.test]: 'a.test:0' is not a host (IPv4[:port], "
     "[IPv6][:port] or a host name[:port]; hosts separated by blanks or ',')"},
    {"[route a.test]\nhosts = ::1\n", "2: invalid value for 'hosts' in [route a.test]: '::1' is "
				      "not a host (IPv4[:port], [IPv6][:port] or a host "
				      "name[:port]; hosts separated by blanks or ',')"},
    {"[route a.test]\nhosts = ,\n",
     "2: invalid value for 'hosts' in [route a.test]: ',' names no host"},
    {"[route a.test]\nlifetime = 1x\n",
     "2: invalid value for 'lifetime' in [route a.test]: '1x' is not a duration (e.g. 250ms, 30s, "
     "5m, 1h, 2d)"},
    {"[route a.test]\nmode = relay\n\nhosts = 10.0.0.1\n",
     "4: [route a.test] sets both hosts and mode = relay (hosts, or mode = relay with relay)"},
    {"[route a.test]\nrelay =\n[delivery]\nrelay = 10.0.0.1:25\n",
     "2: [route a.test] mode = relay but relay is empty (set relay = host:port, or hosts)"},
    {"[delivery]\nmode = independent\n[route a.test]\nmode = relay\n[delivery]\nrelay =\n",
     "4: [route a.test] mode = relay but relay is empty (set relay = host:port, or hosts)"},
    {"[route a.test]\n\nauth_user = u\n",
     "3: [route a.test] auth_user is set but auth_password is empty"},
    {"[delivery]\nauth_user = u\nauth_password = p\n[route a.test]\nauth_user =\n",
     "5: [route a.test] auth_password is set but auth_user is empty"},
    {"[route a.test]\ndefault_pool = nope\n",
     "2: [route a.test] default_pool names no [pool] section"},
    {"[delivery]\n\ndefault_pool = nope\n",
     "3: [delivery] default_pool 'nope' names no [pool] section"},
    {"[delivery]\nmax_message_rate = 5/d\n",
     "2: invalid value for 'max_message_rate' in [delivery]: '5/d' is not a rate (e.g. 500/h, "
     "60/m, 10/s, or 10 = per second; 0 = no limit)"},
    {"[shaping mx:]\n", "1: [shaping mx:]: 'mx:' is not a domain, *.domain, a site or a relay: "
			"[shaping example.com], [shaping mx:NAME], [shaping 127.0.0.1:25]"},
    {"[shaping 127.0.0.1:x]\n", "1: [shaping 127.0.0.1:x]: '127.0.0.1:x' is not a domain, "
				"*.domain, a site or a relay: [shaping example.com], [shaping "
				"mx:NAME], [shaping 127.0.0.1:25]"},
    {"[shaping a.test]\n[shaping b.test]\n[shaping a.test]\n",
     "3: duplicate section [shaping a.test] (first at line 1)"},
    {"[shaping a.test]\nmax_connections = 0\n",
     "2: invalid value for 'max_connections' in [shaping a.test]: 0 is out of range 1..1000000"},
    {"[shaping a.test]\nrelay = x\n",
     "2: unknown key 'relay' in [shaping a.test]: it belongs in [delivery]"},
    {"[shaping a.test]\ntls = maybe\n", "2: invalid value for 'tls' in [shaping a.test]: 'maybe' "
					"is not one of: none opportunistic required smtps"},
    {"[backoff a b]\n", "1: [backoff a b]: the backoff name must be one word of at most 255 bytes"},
    {"[backoff a/b]\ncode = 421\n",
     "1: [backoff a/b]: 'a/b' is not letters, digits, '_', '.', '-': [backoff NAME]"},
    {"[backoff x]\ncode = 199\n",
     "2: invalid value for 'code' in [backoff x]: 199 is not 0 (any) or a reply code 200..599"},
    {"[backoff x]\ncode = 600\n",
     "2: invalid value for 'code' in [backoff x]: 600 is out of range 0..599"},
    {"[backoff x]\nenhanced = 3.1.1\n",
     "2: invalid value for 'enhanced' in [backoff x]: '3.1.1' is not an enhanced status code (e.g. "
     "4.7.28)"},
    {"[backoff x]\nenhanced = 4.1234.1\n",
     "2: invalid value for 'enhanced' in [backoff x]: "
     "'4.1234.1' is not an enhanced status code (e.g. 4.7.28)"},
    {"[backoff x]\ncode = 421\n\ntext = a(b\n",
     "4: invalid value for 'text' in [backoff x]: not a POSIX extended regular expression: "
     "Unmatched ( or \\("},
    {"[backoff x]\naction = drop\n", "2: invalid value for 'action' in [backoff x]: 'drop' is not "
				     "one of: suspend reduce bounce"},
    {"[backoff x]\nfactor = 1\n",
     "2: invalid value for 'factor' in [backoff x]: 1 is not greater than 0 and less than 1"},
    {"[backoff x]\nfactor = 0\n",
     "2: invalid value for 'factor' in [backoff x]: 0 is not greater than 0 and less than 1"},
    {"[backoff x]\nrecover_steps = 101\n",
     "2: invalid value for 'recover_steps' in [backoff x]: 101 is out of range 1..100"},
    {"[main]\n[backoff x]\naction = reduce\n",
     "2: [backoff x] matches every reply: set code, enhanced or text"},
    {"[backoff gmail]\nduration = 1h\n[backoff gmail]\n",
     "3: duplicate section [backoff gmail] (first at line 1)"},
    {"[backoff gmail]\ncode = 0\nenhanced =\n",
     "1: [backoff gmail] matches every reply: set code, enhanced or text"},
    {"[pool]\n", "1: [pool] needs a name: letters, digits, '_', '.', '-', at most 63: [pool NAME]"},
    {"[pool p]\nsources = 127.0.0.1:25\n",
     "2: invalid value for 'sources' in [pool p]: '127.0.0.1:25': not an IPv4 or IPv6 address (no "
     "port)"},
    {"[pool p]\nsources = 127.0.0.1 a b\n",
     "2: invalid value for 'sources' in [pool p]: "
     "'127.0.0.1 a b': one address and at most one EHLO name "
     "per item"},
    {"[pool p]\nsources = 127.0.0.1,,::1\n", "2: invalid value for 'sources' in [pool p]: '': an "
					     "empty item (sources are separated by ',')"},
    {"[pool p]\nsources = 127.0.0.1\nsources = 127.0.0.2, 127.0.0.1 x\n",
     "3: invalid value for 'sources' in [pool p]: ' 127.0.0.1 x': this address is already in the "
     "pool"},
    {"[pool p]\nsources =\n", "2: invalid value for 'sources' in [pool p]: no source given"},
    {"[pool p]\nsource = 127.0.0.1\n", "2: unknown key 'source' in [pool p]: no such setting"},
    {"[pool p]\n[pool q]\nsources = 127.0.0.1\n", "1: [pool p] has no sources"},
    {"[pool p]\nsources = 127.0.0.1\n[pool p]\n",
     "3: duplicate section [pool p] (first at line 1)"},
    {"[rewrite x]\n", "1: [rewrite x]: [rewrite] takes no name"},
    {"[rewrite]\nnoat = a@b\n",
     "2: invalid value for 'noat' in [rewrite]: 'noat' is not an address (local@domain)"},
    {"[rewrite]\na@b = <c@d>\n",
     "2: invalid value for 'a@b' in [rewrite]: '<c@d>' is not an address (local@domain)"},
    {"[rewrite]\na@b = c@\n",
     "2: invalid value for 'a@b' in [rewrite]: 'c@' is not an address (local@domain)"},
    {"[rewrite]\nA@B = c@d\n[rewrite]\na@b = e@f\n",
     "4: duplicate address 'a@b' in [rewrite] (first at line 2)"},
    {"[routes a.test]\nx = 1\n",
     "1: unknown section [routes a.test]: expected [main], [inject], [delivery], [queue], [route "
     "DOMAIN], [shaping DESTINATION], [backoff NAME], [pool NAME] or [rewrite]"},
};

static void test_errors(void **state)
{
	struct config c, before;
	char err[512], want[640];

	(void)state;
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		config_defaults(&c);
		c.shards = 77; /* a failed load must not touch c */
		memcpy(&before, &c, sizeof(c));
		assert_int_equal(load(err_cases[i].text, &c, err, sizeof(err)), -EINVAL);
		snprintf(want, sizeof(want), "t.conf:%s", err_cases[i].msg);
		assert_string_equal(err, want);
		assert_memory_equal(&c, &before, sizeof(c));
	}
}

/* The built-in rules, after config_defaults and with no file at all. */
static void test_builtins(void **state)
{
	const struct config_backoff *b;
	struct config c;
	char err[512];

	(void)state;
	config_defaults(&c);
	assert_int_equal(c.sets->nbackoffs, 3);
	b = backoff(&c, "gmail");
	assert_true(b->builtin && b->enabled);
	assert_int_equal(b->line, 0);
	assert_int_equal(b->code, 421);
	assert_string_equal(b->enhanced, "4.7.28");
	assert_int_equal(b->action, CONFIG_BACKOFF_SUSPEND);
	assert_int_equal(b->duration_ms, 600000);
	b = backoff(&c, "outlook");
	assert_int_equal(b->code, 451);
	assert_string_equal(b->enhanced, "4.7.650");
	assert_int_equal(b->action, CONFIG_BACKOFF_REDUCE);
	assert_true(b->factor == 0.5);
	assert_int_equal(b->duration_ms, 1800000);
	b = backoff(&c, "yahoo");
	assert_int_equal(b->code, 421);
	assert_string_equal(b->enhanced, "4.7.0");
	assert_string_equal(b->text, "\\[TSS04\\]");
	assert_int_equal(b->duration_ms, 1800000);
	config_free(&c); /* the shared set is not freed */
	assert_int_equal(load("", &c, err, sizeof(err)), 0);
	assert_int_equal(c.sets->nbackoffs, 3);
	/* switching a built-in rule off keeps its other keys */
	assert_int_equal(load("[backoff yahoo]\nenabled = no\n", &c, err, sizeof(err)), 0);
	b = backoff(&c, "yahoo");
	assert_false(b->enabled);
	assert_true(b->builtin);
	assert_int_equal(b->line, 1);
	assert_string_equal(b->text, "\\[TSS04\\]");
	assert_true(backoff(&c, "gmail")->enabled);
	config_free(&c);
}

static void assert_shaping_equal(const struct config_shaping *sa, const struct config_shaping *sb)
{
	assert_string_equal(sa->name, sb->name);
	assert_int_equal(sa->given, sb->given);
	assert_int_equal(sa->max_connections, sb->max_connections);
	assert_int_equal(sa->max_messages_per_connection, sb->max_messages_per_connection);
	assert_int_equal(sa->max_recipients_per_transaction, sb->max_recipients_per_transaction);
	assert_memory_equal(&sa->max_message_rate, &sb->max_message_rate,
			    sizeof(struct config_rate));
	assert_memory_equal(&sa->max_connection_rate, &sb->max_connection_rate,
			    sizeof(struct config_rate));
	assert_int_equal(sa->connect_timeout_ms, sb->connect_timeout_ms);
	assert_int_equal(sa->tls, sb->tls);
}

static void assert_backoff_equal(const struct config_backoff *ba, const struct config_backoff *bb)
{
	assert_string_equal(ba->name, bb->name);
	assert_int_equal(ba->enabled, bb->enabled);
	assert_int_equal(ba->code, bb->code);
	assert_string_equal(ba->enhanced, bb->enhanced);
	assert_string_equal(ba->text, bb->text);
	assert_int_equal(ba->action, bb->action);
	assert_int_equal(ba->duration_ms, bb->duration_ms);
	assert_true(ba->factor == bb->factor);
	assert_int_equal(ba->recover_steps, bb->recover_steps);
	assert_int_equal(ba->recover_interval_ms, bb->recover_interval_ms);
	assert_int_equal(ba->builtin, bb->builtin);
}

/* Every loaded value of a and b's sections is the same. */
static void assert_sets_equal(const struct config *a, const struct config *b)
{
	const struct config_sets *x = a->sets, *y = b->sets;

	assert_int_equal(x->nroutes, y->nroutes);
	for (unsigned i = 0; i < x->nroutes; i++) {
		struct config ca = x->routes[i].cfg, cb = y->routes[i].cfg;
		char *pa = print_to_string(&ca), *pb = print_to_string(&cb);

		assert_string_equal(x->routes[i].name, y->routes[i].name);
		assert_int_equal(x->routes[i].enabled, y->routes[i].enabled);
		assert_string_equal(x->routes[i].hosts, y->routes[i].hosts);
		assert_int_equal(x->routes[i].fallback_to_default,
				 y->routes[i].fallback_to_default);
		assert_string_equal(pa, pb); /* every key of the route's cfg */
		assert_string_equal(ca.auth_password, cb.auth_password);
		free(pa);
		free(pb);
	}
	assert_int_equal(x->nshapings, y->nshapings);
	for (unsigned i = 0; i < x->nshapings; i++)
		assert_shaping_equal(&x->shapings[i], &y->shapings[i]);
	assert_int_equal(x->nbackoffs, y->nbackoffs);
	for (unsigned i = 0; i < x->nbackoffs; i++)
		assert_backoff_equal(&x->backoffs[i], &y->backoffs[i]);
	assert_int_equal(x->npools, y->npools);
	for (unsigned i = 0; i < x->npools; i++) {
		assert_string_equal(x->pools[i].name, y->pools[i].name);
		assert_int_equal(x->pools[i].nsources, y->pools[i].nsources);
		assert_memory_equal(x->pools[i].sources, y->pools[i].sources,
				    x->pools[i].nsources * sizeof(struct config_source));
	}
	assert_int_equal(x->nrewrites, y->nrewrites);
	for (unsigned i = 0; i < x->nrewrites; i++) {
		assert_string_equal(x->rewrites[i].from, y->rewrites[i].from);
		assert_string_equal(x->rewrites[i].to, y->rewrites[i].to);
	}
}

/* c prints, loads back to the same values, and prints the same again. */
static void round_trip(const struct config *c)
{
	char *text = print_to_string(c), *again, err[512] = "";
	struct config back;

	assert_int_equal(load(text, &back, err, sizeof(err)), 0);
	assert_sets_equal(c, &back);
	again = print_to_string(&back);
	assert_string_equal(text, again);
	free(text);
	free(again);
	config_free(&back);
}

static void test_round_trip(void **state)
{
	struct config c;
	char err[512], *text;

	(void)state;
	/* the fixture without the route's secret, which prints as a comment */
	text = strdup(sets_text);
	assert_non_null(text);
	*strstr(text, "auth_user = u\nauth_password = secret\n") = '\0';
	strcat(text, strstr(sets_text, "tls = required\n[route independent"));
	assert_int_equal(load(text, &c, err, sizeof(err)), 0);
	free(text);
	assert_int_equal(c.sets->nroutes, 3);
	round_trip(&c);
	text = print_to_string(&c);
	/* a route prints its own keys and what differs from [delivery], nothing else */
	assert_non_null(strstr(text,
			       "\n[route example.com]\nenabled = yes\nhosts = mx1.example.net, "
			       "[::1]:2525 127.0.0.1:26\nfallback_to_default = yes\nlifetime = "
			       "30d\n\n"));
	assert_non_null(strstr(text, "\n[shaping gmail.com]\nmax_connections = 5\n"
				     "max_message_rate = 500/h\ntls = required\n\n"));
	assert_non_null(strstr(text, "\n[backoff outlook]\nenabled = yes\ncode = 451\n"));
	assert_non_null(strstr(text, "\n[pool p1]\nsources = 127.0.0.2 mta2.example.com\n"
				     "sources = 127.0.0.3\nsources = ::1 mta6.example.com\n"));
	assert_non_null(strstr(text, "\n[rewrite]\njohn@example.com = news@example.com\n"
				     "b@example.com = c@example.com\n"));
	free(text);
	config_free(&c);
	/* defaults: the built-in rules print and load back to the shared set */
	config_defaults(&c);
	round_trip(&c);
}

/* A route's password is never printed; the rest of the route is. */
static void test_route_secret_not_printed(void **state)
{
	struct config c;
	char err[512], *text;

	(void)state;
	assert_int_equal(load(sets_text, &c, err, sizeof(err)), 0);
	text = print_to_string(&c);
	assert_null(strstr(text, "secret"));
	assert_non_null(strstr(text, "\n[route *.example.org]\nenabled = no\nhosts =\n"
				     "fallback_to_default = no\nrelay = relay.example.org:587\n"
				     "tls = required\nauth_user = u\n"
				     "# auth_password = (set, not shown)\n"));
	free(text);
	config_free(&c);
}

/* Loads that fail after building sections free them (the ASan build checks for leaks), and a
 * loaded config can be loaded over after config_free. */
static void test_no_leaks(void **state)
{
	static const char *const bad_late[] = {
	    "[pool p]\nsources = 127.0.0.1\n[route a.test]\nlifetime = 1d\n[backoff x]\n",
	    "[route a.test]\nlifetime = 1d\n[rewrite]\na@b = c@d\n[delivery]\nrelay =\n",
	    "[route a.test]\nlifetime = 1d\n[route b.test]\nauth_user = x\n",
	    "[pool p]\nsources = 127.0.0.1\n[route a.test]\nx = 1\n"};
	struct config c;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_late) / sizeof(bad_late[0]); i++)
		assert_int_equal(load(bad_late[i], &c, err, sizeof(err)), -EINVAL);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(load(sets_text, &c, err, sizeof(err)), 0);
		config_free(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rate_parse),	cmocka_unit_test(test_delivery_new_keys),
	    cmocka_unit_test(test_sets_parsed), cmocka_unit_test(test_route_inherits_any_order),
	    cmocka_unit_test(test_errors),	cmocka_unit_test(test_builtins),
	    cmocka_unit_test(test_round_trip),	cmocka_unit_test(test_route_secret_not_printed),
	    cmocka_unit_test(test_no_leaks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
