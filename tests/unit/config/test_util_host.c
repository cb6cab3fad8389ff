/* test_util_host — unit tests for engine/util's host helpers: util_hostport_parse (every form
 * it takes and refuses, default port, buffer size, outputs untouched on error),
 * util_host_name_ok (label and total length limits, LDH rules, numeric last label) and
 * util_host_is_numeric; util_addr_parse checked unchanged for the relay forms.
 *
 * Why here: the configuration is the first user of these helpers (relay and fallback_relay by
 * name) and tests/unit has no util directory yet; this file only needs engine/util.
 */
#include "engine/util/util.h"

#include <errno.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

struct hp_case {
	const char *in;
	const char *host; /* NULL: refused */
	unsigned port;
};

static const struct hp_case hp_cases[] = {
    {"relay.example.net:2525", "relay.example.net", 2525},
    {"relay.example.net", "relay.example.net", 25},
    {"localhost", "localhost", 25},
    {"MX1.Example.ORG:587", "MX1.Example.ORG", 587},
    {"127.0.0.1:2525", "127.0.0.1", 2525},
    {"127.0.0.1", "127.0.0.1", 25},
    {"[::1]:2525", "::1", 2525},
    {"[::1]", "::1", 25},
    {"[2001:db8::1]:65535", "2001:db8::1", 65535},
    {"[::ffff:10.0.0.1]:1", "::ffff:10.0.0.1", 1},
    {"a:00025", "a", 25},
    {"", NULL, 0},
    {":25", NULL, 0},
    {"::1", NULL, 0}, /* bare IPv6: ambiguous */
    {"::1:25", NULL, 0},
    {"a:b:c", NULL, 0},
    {"[::1", NULL, 0},
    {"[::1]25", NULL, 0},
    {"[::1]:", NULL, 0},
    {"[127.0.0.1]:25", NULL, 0},
    {"[relay.example.net]:25", NULL, 0},
    {"[]:25", NULL, 0},
    {"relay.example.net:", NULL, 0},
    {"relay.example.net:0", NULL, 0},
    {"relay.example.net:65536", NULL, 0},
    {"relay.example.net:123456", NULL, 0},
    {"relay.example.net:-1", NULL, 0},
    {"relay.example.net:+25", NULL, 0},
    {"relay.example.net: 25", NULL, 0},
    {"relay.example.net:25 ", NULL, 0},
    {"relay example.net", NULL, 0},
    {"10.0.0.256:25", NULL, 0},
    {"1.2.3:25", NULL, 0},
    {"relay.example.net.", NULL, 0},
    {"under_score.example", NULL, 0},
    {"unix:/run/x.sock", NULL, 0},
    {"/run/x.sock", NULL, 0},
};

static void test_hostport_table(void **state)
{
	char host[UTIL_HOST_MAX];
	uint16_t port;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(hp_cases); i++) {
		const struct hp_case *c = &hp_cases[i];
		int ret;

		strcpy(host, "untouched");
		port = 7;
		ret = util_hostport_parse(c->in, host, sizeof(host), &port, 25);
		if (!c->host) {
			if (ret != -EINVAL)
				fail_msg("'%s' accepted as '%s' port %u", c->in, host, port);
			assert_string_equal(host, "untouched");
			assert_int_equal(port, 7);
			continue;
		}
		if (ret != 0)
			fail_msg("'%s' refused", c->in);
		assert_string_equal(host, c->host);
		assert_int_equal(port, c->port);
	}
	assert_int_equal(util_hostport_parse(NULL, host, sizeof(host), &port, 25), -EINVAL);
}

static void test_hostport_default_and_room(void **state)
{
	char host[UTIL_HOST_MAX], small[10];
	uint16_t port = 0;

	(void)state;
	assert_int_equal(util_hostport_parse("relay.example", host, sizeof(host), &port, 2525), 0);
	assert_int_equal(port, 2525);
	assert_int_equal(util_hostport_parse("relay.example:26", host, sizeof(host), &port, 2525),
			 0);
	assert_int_equal(port, 26);
	/* a default port of 0 is no port: a name without one is refused */
	assert_int_equal(util_hostport_parse("relay.example", host, sizeof(host), &port, 0),
			 -EINVAL);
	assert_int_equal(util_hostport_parse("relay.example:1", host, sizeof(host), &port, 0), 0);
	/* the host and its NUL must fit hostlen */
	assert_int_equal(util_hostport_parse("abcdefghi:25", small, sizeof(small), &port, 25), 0);
	assert_string_equal(small, "abcdefghi");
	assert_int_equal(util_hostport_parse("abcdefghij:25", small, sizeof(small), &port, 25),
			 -EINVAL);
	assert_int_equal(util_hostport_parse("[::ffff:1.2.3.4]", small, sizeof(small), &port, 25),
			 -EINVAL);
}

/* Build a name of `labels` labels of `len` bytes each (a last label of letters). */
static void make_name(char *buf, unsigned labels, unsigned len)
{
	char *p = buf;

	for (unsigned i = 0; i < labels; i++) {
		memset(p, 'a' + (char)(i % 26), len);
		p += len;
		*p++ = i + 1 < labels ? '.' : '\0';
	}
}

static void test_host_name_lengths(void **state)
{
	char name[600], host[UTIL_HOST_MAX];
	uint16_t port;

	(void)state;
	make_name(name, 1, 63);
	assert_true(util_host_name_ok(name));
	make_name(name, 1, 64);
	assert_false(util_host_name_ok(name));
	make_name(name, 4, 63); /* 4 * 63 + 3 dots = 255 */
	assert_false(util_host_name_ok(name));
	make_name(name, 4, 62); /* 251 */
	assert_true(util_host_name_ok(name));
	strcat(name, ".a"); /* 253: the most */
	assert_int_equal(strlen(name), 253);
	assert_true(util_host_name_ok(name));
	assert_int_equal(util_hostport_parse(name, host, sizeof(host), &port, 25), 0);
	assert_string_equal(host, name);
	strcat(name, "b"); /* 254 */
	assert_false(util_host_name_ok(name));
	assert_int_equal(util_hostport_parse(name, host, sizeof(host), &port, 25), -EINVAL);
}

static void test_host_name_syntax(void **state)
{
	static const char *const good[] = {"a",	   "localhost", "A-1.example",		"0a.b",
					   "x.y1", "1.2.3.a",	"xn--bcher-kva.example"};
	static const char *const bad[] = {"",	 ".",	  "a.",	 ".a",	  "a..b", "-a",
					  "a-",	 "a.-b",  "a_b", "a b",	  "a\tb", "1.2.3.4",
					  "123", "a.123", "é.x", "a.b/c", "a:b",  "[::1]"};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		if (!util_host_name_ok(good[i]))
			fail_msg("'%s' refused", good[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (util_host_name_ok(bad[i]))
			fail_msg("'%s' accepted", bad[i]);
	assert_false(util_host_name_ok(NULL));
}

static void test_host_is_numeric(void **state)
{
	(void)state;
	assert_true(util_host_is_numeric("127.0.0.1"));
	assert_true(util_host_is_numeric("::1"));
	assert_true(util_host_is_numeric("2001:db8::1"));
	assert_true(util_host_is_numeric("::ffff:10.0.0.1"));
	assert_false(util_host_is_numeric("[::1]"));
	assert_false(util_host_is_numeric("127.0.0.1:25"));
	assert_false(util_host_is_numeric("localhost"));
	assert_false(util_host_is_numeric("10.0.0.256"));
	assert_false(util_host_is_numeric(""));
	assert_false(util_host_is_numeric(NULL));
}

/* util_addr_parse keeps its numeric-only behaviour (the relay's numeric form). */
static void test_addr_parse_unchanged(void **state)
{
	struct util_addr a;
	char buf[64];

	(void)state;
	assert_int_equal(util_addr_parse("127.0.0.1:25", &a), 0);
	util_addr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.1:25");
	assert_int_equal(util_addr_parse("[::1]:2525", &a), 0);
	util_addr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:2525");
	assert_int_equal(util_addr_parse("relay.example.net:25", &a), -EINVAL);
	assert_int_equal(util_addr_parse("localhost:25", &a), -EINVAL);
	assert_int_equal(util_addr_parse("127.0.0.1", &a), -EINVAL);
}

/* util_relay_parse: addresses (with or without a port) to *a, names to host and port. */
static void test_relay_parse(void **state)
{
	struct util_addr a;
	char host[UTIL_HOST_MAX], buf[64];
	uint16_t port = 0;

	(void)state;
	assert_int_equal(util_relay_parse("192.0.2.1:2525", &a, host, sizeof(host), &port), 0);
	util_addr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1:2525");
	assert_int_equal(util_relay_parse("192.0.2.1", &a, host, sizeof(host), &port), 0);
	util_addr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.1:25");
	assert_int_equal(util_relay_parse("[::1]", &a, host, sizeof(host), &port), 0);
	util_addr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:25");
	assert_int_equal(util_relay_parse("smtp.example.net:587", &a, host, sizeof(host), &port),
			 1);
	assert_string_equal(host, "smtp.example.net");
	assert_int_equal(port, 587);
	assert_int_equal(util_relay_parse("relay.example", &a, host, sizeof(host), &port), 1);
	assert_int_equal(port, 25);
	assert_int_equal(util_relay_parse("bad host:25", &a, host, sizeof(host), &port), -EINVAL);
	assert_int_equal(util_relay_parse("::1", &a, host, sizeof(host), &port), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hostport_table),
	    cmocka_unit_test(test_hostport_default_and_room),
	    cmocka_unit_test(test_host_name_lengths),
	    cmocka_unit_test(test_host_name_syntax),
	    cmocka_unit_test(test_host_is_numeric),
	    cmocka_unit_test(test_addr_parse_unchanged),
	    cmocka_unit_test(test_relay_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
