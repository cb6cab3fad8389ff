/* test_route_table — unit tests for engine/route's static routes: route_find (exact, wildcard,
 * disabled, the global switch), route_why, route_kind_of, route_shaping, route_base, and how
 * route_split names and groups a message's recipients (routes, pools, MX sites).
 *
 * Why: the destination name is all the queue keeps of where a recipient goes. A wildcard that
 * also caught its parent, a disabled route still used, or two domains of one site split into
 * two transactions would each send mail the wrong way or lose the batching, silently. The
 * tables are built from real configuration text (config_load_buf), as the daemon builds them.
 */
#include "engine/config/config.h"
#include "engine/route/route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

static const char conf_text[] =
    "[inject]\nlisten = 127.0.0.1:2525\n"
    "[delivery]\nmode = independent\n"
    "[route example.com]\nmode = relay\nrelay = 127.0.0.1:2600\n"
    "[route *.example.com]\nhosts = 127.0.0.1:2601 127.0.0.1:2602\n"
    "[route off.test]\nenabled = no\nmode = relay\nrelay = 127.0.0.1:2603\n"
    "[route *.deep.example.net]\nlifetime = 30d\n"
    "[shaping slow.test]\nmax_message_rate = 60/m\n"
    "[shaping *.shaped.test]\nmax_connections = 2\n";

struct fx {
	struct config c;
	struct route_table *t;
};

static struct fx *fx_load(const char *extra)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512], *text = NULL;

	assert_true(asprintf(&text, "%s%s", conf_text, extra) > 0);
	if (config_load_buf(&f->c, "t.conf", text, strlen(text), err, sizeof(err)) != 0)
		fail_msg("config: %s", err);
	free(text);
	assert_int_equal(route_table_new(&f->c, &f->t), 0);
	return f;
}

static void fx_free(struct fx *f)
{
	route_table_free(f->t);
	config_free(&f->c);
	free(f);
}

/* Exact beats wildcard; a wildcard covers subdomains at any depth but not its parent; a
 * disabled route is not used (its domain takes the default); case does not matter. */
static void test_find(void **state)
{
	struct fx *f = fx_load("");
	const struct config_route *r;

	(void)state;
	assert_non_null(r = route_find(f->t, "example.com"));
	assert_string_equal(r->name, "example.com");
	assert_non_null(r = route_find(f->t, "A.B.Example.COM"));
	assert_string_equal(r->name, "*.example.com");
	assert_non_null(r = route_find(f->t, "*.example.com")); /* a route's own name */
	assert_string_equal(r->name, "*.example.com");
	assert_null(route_find(f->t, "off.test"));
	assert_null(route_find(f->t, "notexample.com"));
	assert_null(route_find(f->t, "deep.example.net"));
	assert_non_null(r = route_find(f->t, "x.deep.example.net"));
	assert_int_equal(r->cfg.lifetime_ms, 30ull * 86400 * 1000);
	assert_int_equal(route_table_count(f->t), 3);
	fx_free(f);
}

/* static_routes = no turns every route off, and route_why says so. */
static void test_global_switch(void **state)
{
	struct fx *f = fx_load("[delivery]\nstatic_routes = no\n");
	char why[256];

	(void)state;
	assert_null(route_find(f->t, "example.com"));
	assert_null(route_find(f->t, "a.example.com"));
	assert_int_equal(route_table_count(f->t), 0);
	route_why(f->t, NULL, "a.example.com", why, sizeof(why));
	assert_non_null(strstr(why, "static_routes = no"));
	fx_free(f);
}

/* route_why names the route and the kind of match, or why the default is taken. */
static void test_why(void **state)
{
	struct fx *f = fx_load("");
	char why[256];

	(void)state;
	route_why(f->t, route_find(f->t, "a.example.com"), "a.example.com", why, sizeof(why));
	assert_non_null(strstr(why, "[route *.example.com] (wildcard"));
	route_why(f->t, route_find(f->t, "example.com"), "example.com", why, sizeof(why));
	assert_non_null(strstr(why, "(exact"));
	route_why(f->t, NULL, "off.test", why, sizeof(why));
	assert_non_null(strstr(why, "disabled"));
	route_why(f->t, NULL, "gmail.com", why, sizeof(why));
	assert_non_null(strstr(why, "no [route] matches"));
	fx_free(f);
}

static void test_kind_and_shaping(void **state)
{
	struct fx *f = fx_load("");
	size_t plen;

	(void)state;
	assert_int_equal(route_kind_of(route_find(f->t, "example.com"), ROUTE_INDEPENDENT),
			 ROUTE_KIND_RELAY);
	assert_int_equal(route_kind_of(route_find(f->t, "a.example.com"), ROUTE_INDEPENDENT),
			 ROUTE_KIND_HOSTS);
	assert_int_equal(route_kind_of(route_find(f->t, "x.deep.example.net"), ROUTE_RELAY),
			 ROUTE_KIND_MX);
	assert_int_equal(route_kind_of(NULL, ROUTE_RELAY), ROUTE_KIND_RELAY);
	assert_int_equal(route_kind_of(NULL, ROUTE_INDEPENDENT), ROUTE_KIND_MX);
	assert_int_equal(route_shaping(f->t, "slow.test")->max_message_rate.n, 60);
	assert_int_equal(route_shaping(f->t, "a.shaped.test")->max_connections, 2);
	assert_null(route_shaping(f->t, "shaped.test"));
	assert_string_equal(route_base("p1/example.com", &plen), "example.com");
	assert_int_equal(plen, 2);
	assert_string_equal(route_base("example.com", &plen), "example.com");
	assert_int_equal(plen, 0);
	fx_free(f);
}

/* A fake MX cache for route_ctx.site: g1/g2/g3.test share one site, solo.test has its own. */
static bool fake_site(void *arg, const char *domain, char *buf, size_t len)
{
	(*(unsigned *)arg)++;
	if (strcmp(domain, "g1.test") == 0 || strcmp(domain, "g2.test") == 0 ||
	    strcmp(domain, "g3.test") == 0)
		return snprintf(buf, len, "mx:aspmx.g.test,alt1.g.test") > 0;
	return false;
}

/* Names: routes by their name (all subdomains of a hosts route in one group), domains as
 * themselves, rolled-up domains as their site (one group: one transaction), a pool in front. */
static void test_split(void **state)
{
	struct fx *f = fx_load("");
	const char *rcpts[] = {"a@G1.test",	  "b@x.example.com", "c@g2.test",
			       "d@y.example.com", "e@example.com",   "f@solo.test",
			       "g@g3.test",	  "h@slow.test",     "i@solo.test"};
	unsigned n = sizeof(rcpts) / sizeof(rcpts[0]), first[9], calls = 0;
	uint16_t grp[9];
	char *names = NULL;
	struct route_ctx ctx = {.t = f->t,
				.mode = ROUTE_INDEPENDENT,
				.relay = "mx",
				.pool = "p1",
				.site = fake_site,
				.site_arg = &calls};
	int ng = route_split(&ctx, rcpts, n, grp, first, &names);

	(void)state;
	assert_int_equal(ng, 5);
	assert_string_equal(names + 0 * ROUTE_NAME_MAX, "p1/mx:aspmx.g.test,alt1.g.test");
	assert_string_equal(names + 1 * ROUTE_NAME_MAX, "p1/*.example.com");
	assert_string_equal(names + 2 * ROUTE_NAME_MAX, "p1/example.com");
	assert_string_equal(names + 3 * ROUTE_NAME_MAX, "p1/solo.test");
	assert_string_equal(names + 4 * ROUTE_NAME_MAX, "p1/slow.test"); /* own shaping: no site */
	assert_int_equal(grp[0], 0);
	assert_int_equal(grp[2], 0);
	assert_int_equal(grp[6], 0);
	assert_int_equal(grp[1], 1);
	assert_int_equal(grp[3], 1);
	assert_int_equal(grp[8], 3);
	assert_int_equal(first[3], 5);
	assert_int_equal(calls, 4); /* g1, g2, solo, g3: once per domain, never for routes */
	free(names);
	fx_free(f);
}

/* Relay mode: routed domains go their own way, the rest to the relay, in one group. */
static void test_split_relay_mode(void **state)
{
	struct fx *f = fx_load("");
	const char *rcpts[] = {"a@one.test", "b@example.com", "c@two.test"};
	unsigned first[3];
	uint16_t grp[3];
	char *names = NULL;
	struct route_ctx ctx = {
	    .t = f->t, .mode = ROUTE_RELAY, .relay = "127.0.0.1:25", .pool = ""};

	(void)state;
	assert_int_equal(route_split(&ctx, rcpts, 3, grp, first, &names), 2);
	assert_string_equal(names, "127.0.0.1:25");
	assert_string_equal(names + ROUTE_NAME_MAX, "example.com");
	assert_int_equal(grp[2], 0);
	free(names);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_find),  cmocka_unit_test(test_global_switch),
	    cmocka_unit_test(test_why),	  cmocka_unit_test(test_kind_and_shaping),
	    cmocka_unit_test(test_split), cmocka_unit_test(test_split_relay_mode),
	};

	return cmocka_run_group_tests_name("route_table", tests, NULL, NULL);
}
