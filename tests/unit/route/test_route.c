/* test_route — unit tests for engine/route: route_domain, route_dest_name, route_group and
 * route_owner.
 *
 * Why: grouping decides how many jobs a message becomes and which recipients travel together;
 * the owner decides which shard holds a destination's connections and state. Two spellings of
 * one domain split into two groups would open two connections for one destination and split a
 * transaction; two domains merged into one would send a recipient to the wrong MX; an owner
 * that is not stable would put one destination on two shards. So the tests check names, group
 * numbering (first appearance, `first` indexes), the 65535-group limit, and the owner's range,
 * stability and spread.
 */
#include "engine/route/route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* ---- route_domain ---- */

/* The part after the last '@'; no '@' (or nothing after it): the empty string at the end. */
static void test_domain(void **state)
{
	static const char *const cases[][2] = {
	    {"user@Example.ORG", "Example.ORG"},
	    {"\"a@b\"@c.example", "c.example"},
	    {"a@b@d.example", "d.example"},
	    {"user@", ""},
	    {"postmaster", ""},
	    {"", ""},
	};
	size_t len = 99;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *d = route_domain(cases[i][0], &len);
		assert_string_equal(d, cases[i][1]);
		assert_int_equal(len, strlen(cases[i][1]));
		/* a pointer into the address itself */
		assert_ptr_equal(d, cases[i][0] + strlen(cases[i][0]) - len);
	}
}

/* ---- route_dest_name ---- */

/* Independent mode: the domain in lower case (ASCII only; other bytes as they are), the relay
 * ignored; the return value is the length. */
static void test_dest_name_independent_lowercases(void **state)
{
	char out[ROUTE_NAME_MAX];

	(void)state;
	assert_int_equal(route_dest_name(ROUTE_INDEPENDENT, "relay.example", "Bob@MiXeD.Example",
					 out, sizeof(out)),
			 13);
	assert_string_equal(out, "mixed.example");
	assert_int_equal(route_dest_name(ROUTE_INDEPENDENT, NULL,
					 "x@\xc3\x89"
					 "COLE.Fr",
					 out, sizeof(out)),
			 9);
	assert_string_equal(out, "\xc3\x89"
				 "cole.fr");
	assert_int_equal(route_dest_name(ROUTE_INDEPENDENT, NULL, "postmaster", out, sizeof(out)),
			 0);
	assert_string_equal(out, "");
}

/* Relay mode: the relay's name exactly as configured, whatever the recipient. */
static void test_dest_name_relay_as_is(void **state)
{
	char out[ROUTE_NAME_MAX];
	const char *relay = "Smart.Relay.EXAMPLE:2525";

	(void)state;
	assert_int_equal(route_dest_name(ROUTE_RELAY, relay, "a@Other.Example", out, sizeof(out)),
			 (int)strlen(relay));
	assert_string_equal(out, relay);
	assert_int_equal(route_dest_name(ROUTE_RELAY, "[::1]:25", "nodomain", out, sizeof(out)), 8);
	assert_string_equal(out, "[::1]:25");
}

/* A name that does not fit (with its NUL) is -ENAMETOOLONG and leaves out empty; 255 bytes
 * fit in ROUTE_NAME_MAX, 256 do not; a zero-sized buffer is refused. */
static void test_dest_name_too_long(void **state)
{
	char rcpt[400], relay[300], out[ROUTE_NAME_MAX];

	(void)state;
	memcpy(rcpt, "u@", 2);
	memset(rcpt + 2, 'A', 255);
	rcpt[257] = '\0';
	assert_int_equal(route_dest_name(ROUTE_INDEPENDENT, NULL, rcpt, out, sizeof(out)), 255);
	assert_int_equal(strlen(out), 255);
	assert_int_equal(out[0], 'a');

	memset(rcpt + 2, 'b', 256);
	rcpt[258] = '\0';
	strcpy(out, "junk");
	assert_int_equal(route_dest_name(ROUTE_INDEPENDENT, NULL, rcpt, out, sizeof(out)),
			 -ENAMETOOLONG);
	assert_string_equal(out, "");

	assert_int_equal(route_dest_name(ROUTE_INDEPENDENT, NULL, "u@abc", out, 4), 3);
	assert_int_equal(route_dest_name(ROUTE_INDEPENDENT, NULL, "u@abc", out, 3), -ENAMETOOLONG);
	assert_string_equal(out, "");

	memset(relay, 'r', 299);
	relay[299] = '\0';
	strcpy(out, "junk");
	assert_int_equal(route_dest_name(ROUTE_RELAY, relay, "a@b.example", out, sizeof(out)),
			 -ENAMETOOLONG);
	assert_string_equal(out, "");
	assert_int_equal(route_dest_name(ROUTE_RELAY, "r", "a@b.example", out, 0), -ENAMETOOLONG);
}

/* ---- route_group ---- */

/* Relay mode: one group, whatever the domains. */
static void test_group_relay_one_group(void **state)
{
	const char *const rcpts[] = {"a@x.example", "b@y.example", "c@Z.example"};
	uint16_t group[3] = {7, 7, 7};
	unsigned first[3] = {9, 9, 9};

	(void)state;
	assert_int_equal(route_group(ROUTE_RELAY, rcpts, 3, group, first), 1);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(group[i], 0);
	assert_int_equal(first[0], 0);
}

/* Independent mode: domains compared without regard to case, groups numbered in order of first
 * appearance, first[g] the index of group g's first recipient; similar but different names
 * (prefix, suffix) stay apart; addresses without a domain share the empty one. */
static void test_group_independent(void **state)
{
	const char *const rcpts[] = {"a@X.org", "b@y.net",  "c@x.ORG",	 "d@z.com",
				     "e@Y.Net", "f@x.org",  "g@x.or",	 "h@xx.org",
				     "local",	"i@x.org.", "postmaster"};
	const uint16_t want[] = {0, 1, 0, 2, 1, 0, 3, 4, 5, 6, 5};
	const unsigned want_first[] = {0, 1, 3, 6, 7, 8, 9};
	const unsigned n = sizeof(rcpts) / sizeof(rcpts[0]);
	uint16_t group[sizeof(rcpts) / sizeof(rcpts[0])];
	unsigned first[sizeof(rcpts) / sizeof(rcpts[0])];

	(void)state;
	assert_int_equal(route_group(ROUTE_INDEPENDENT, rcpts, n, group, first), 7);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(group[i], want[i]);
	for (unsigned g = 0; g < 7; g++)
		assert_int_equal(first[g], want_first[g]);
}

/* No recipients: no group, in both modes. */
static void test_group_none(void **state)
{
	uint16_t group[1] = {7};
	unsigned first[1] = {9};

	(void)state;
	assert_int_equal(route_group(ROUTE_INDEPENDENT, NULL, 0, group, first), 0);
	assert_int_equal(route_group(ROUTE_RELAY, NULL, 0, group, first), 0);
	assert_int_equal(group[0], 7);
}

/* n recipients "r<i>@<fmt % (i % mod)>" (mod 0: i itself) as an array of strings. */
static char **make_rcpts(unsigned n, unsigned mod, const char *fmt)
{
	char **r = malloc(n * sizeof(*r));
	char dom[64], buf[96];

	assert_non_null(r);
	for (unsigned i = 0; i < n; i++) {
		snprintf(dom, sizeof(dom), fmt, mod ? i % mod : i);
		snprintf(buf, sizeof(buf), "r%u@%s", i, dom);
		r[i] = strdup(buf);
		assert_non_null(r[i]);
	}
	return r;
}

static void free_rcpts(char **r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(r[i]);
	free(r);
}

/* 70,000 recipients in distinct domains: more than 65,535 groups is -E2BIG. */
static void test_group_too_many(void **state)
{
	const unsigned n = 70000;
	char **r = make_rcpts(n, 0, "d%u.example");
	uint16_t *group = malloc(n * sizeof(*group));
	unsigned *first = malloc(n * sizeof(*first));

	(void)state;
	assert_non_null(group);
	assert_non_null(first);
	assert_int_equal(route_group(ROUTE_INDEPENDENT, (const char *const *)r, n, group, first),
			 -E2BIG);
	free_rcpts(r, n);
	free(group);
	free(first);
}

/* Exactly 65,535 distinct domains is allowed, and every recipient is its own group (a large
 * table with hash collisions still never merges two domains). */
static void test_group_max_groups(void **state)
{
	const unsigned n = 65535;
	char **r = make_rcpts(n, 0, "D%u.Example");
	uint16_t *group = malloc(n * sizeof(*group));
	unsigned *first = malloc(n * sizeof(*first));

	(void)state;
	assert_non_null(group);
	assert_non_null(first);
	assert_int_equal(route_group(ROUTE_INDEPENDENT, (const char *const *)r, n, group, first),
			 65535);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(group[i], i);
		assert_int_equal(first[i], i);
	}
	free_rcpts(r, n);
	free(group);
	free(first);
}

/* 100,000 recipients over 7 domains (alternating case): 7 groups, recipient i in group i % 7,
 * first[g] = g. */
static void test_group_many_in_few_domains(void **state)
{
	const unsigned n = 100000;
	char **r = make_rcpts(n, 7, "dom%u.example");
	uint16_t *group = malloc(n * sizeof(*group));
	unsigned *first = malloc(n * sizeof(*first));

	(void)state;
	assert_non_null(group);
	assert_non_null(first);
	for (unsigned i = 1; i < n; i += 2) /* "DOM3.EXAMPLE" is dom3.example */
		for (char *p = strchr(r[i], '@'); *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	assert_int_equal(route_group(ROUTE_INDEPENDENT, (const char *const *)r, n, group, first),
			 7);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(group[i], i % 7);
	for (unsigned g = 0; g < 7; g++)
		assert_int_equal(first[g], g);
	free_rcpts(r, n);
	free(group);
	free(first);
}

/* ---- route_owner ---- */

/* Always in range, and the same answer for the same name and shard count. */
static void test_owner_stable_in_range(void **state)
{
	static const unsigned shards[] = {1, 2, 3, 7, 8, 64};
	char name[64];

	(void)state;
	for (size_t s = 0; s < sizeof(shards) / sizeof(shards[0]); s++)
		for (unsigned i = 0; i < 500; i++) {
			unsigned o;
			snprintf(name, sizeof(name), "host%u.example.net", i);
			o = route_owner(name, shards[s]);
			assert_true(o < shards[s]);
			assert_int_equal(route_owner(name, shards[s]), o);
			if (shards[s] == 1)
				assert_int_equal(o, 0);
		}
	assert_int_equal(route_owner("", 8), route_owner("", 8));
	assert_true(route_owner("", 8) < 8);
}

/* nd domains named by fmt over n shards: each shard owns between 75% and 125% of the mean. */
static void check_spread(const char *fmt, unsigned nd, unsigned n)
{
	unsigned count[64] = {0};
	char name[64];
	double mean = (double)nd / n;

	for (unsigned i = 0; i < nd; i++) {
		snprintf(name, sizeof(name), fmt, i);
		count[route_owner(name, n)]++;
	}
	for (unsigned s = 0; s < n; s++) {
		if (count[s] < 0.75 * mean || count[s] > 1.25 * mean)
			fail_msg("%s over %u shards: shard %u owns %u (mean %.1f)", fmt, n, s,
				 count[s], mean);
	}
}

/* 1,000 domains over 2 and over 8 shards spread evenly, for a few naming schemes (short
 * numbered names, where FNV alone is weakest, and longer ones). */
static void test_owner_spread(void **state)
{
	static const char *const fmts[] = {"d%u.example", "domain%04u.test", "%u.com",
					   "mx.customer-%u.mail.example.org"};

	(void)state;
	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
		check_spread(fmts[f], 1000, 2);
		check_spread(fmts[f], 1000, 8);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_domain),
	    cmocka_unit_test(test_dest_name_independent_lowercases),
	    cmocka_unit_test(test_dest_name_relay_as_is),
	    cmocka_unit_test(test_dest_name_too_long),
	    cmocka_unit_test(test_group_relay_one_group),
	    cmocka_unit_test(test_group_independent),
	    cmocka_unit_test(test_group_none),
	    cmocka_unit_test(test_group_too_many),
	    cmocka_unit_test(test_group_max_groups),
	    cmocka_unit_test(test_group_many_in_few_domains),
	    cmocka_unit_test(test_owner_stable_in_range),
	    cmocka_unit_test(test_owner_spread),
	};

	return cmocka_run_group_tests_name("route", tests, NULL, NULL);
}
