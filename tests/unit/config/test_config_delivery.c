/* test_config_delivery — unit tests for the [delivery] keys of MX delivery and outbound
 * addressing: relay and fallback_relay given by host name or numeric address, source_address
 * (IPv4 and/or IPv6 literals, parsed for bind()), port, first_mx_only and
 * max_connections_per_destination; every bad value refused with file:line; print/load round
 * trips.
 *
 * Why a file apart from test_config.c: that one tests the table machinery and is near the file
 * size limit; these tests only need the public API (config_load_buf, config_print).
 */
#include "engine/config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* Load text named t.conf; err gets config_load_buf's message. */
static int load_text(const char *text, struct config *c, char *err, size_t errlen)
{
	return config_load_buf(c, "t.conf", text, strlen(text), err, errlen);
}

/* Load "[delivery]\n<line>\n" named t.conf; err gets config_load_buf's message. */
static int load_delivery(const char *line, struct config *c, char *err, size_t errlen)
{
	char text[512];
	snprintf(text, sizeof(text), "[delivery]\n%s\n", line);
	return load_text(text, c, err, errlen);
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

/* c prints, loads back to the same struct (byte for byte) and prints the same again. */
static void assert_round_trip(const struct config *c)
{
	char *text = print_to_string(c), *again, err[512] = "";
	struct config back;

	assert_int_equal(config_load_buf(&back, "p.conf", text, strlen(text), err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_memory_equal(c, &back, sizeof(back));
	again = print_to_string(&back);
	assert_string_equal(text, again);
	free(text);
	free(again);
}

/* The two keys that take a next hop: relay and fallback_relay. */
static const char *const hop_keys[] = {"relay", "fallback_relay"};

static void test_hop_good(void **state)
{
	static const char *const good[] = {"127.0.0.1:25",	   "[::1]:2525",
					   "relay.example.net",	   "relay.example.net:2525",
					   "localhost:1",	   "LOCALHOST",
					   "a-b.c0.example:65535", "x1.a123",
					   "0relay.example",	   "[2001:db8::1]:587",
					   "mx--1.example.org:26", "a.b.c.d.e.f.g.h.example"};
	char line[256], err[512], *field;
	struct config c;

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			snprintf(line, sizeof(line), "%s = %s", hop_keys[k], good[i]);
			assert_int_equal(load_delivery(line, &c, err, sizeof(err)), 0);
			field = k == 0 ? c.relay : c.fallback_relay;
			assert_string_equal(field, good[i]);
			assert_round_trip(&c);
		}
	}
}

static void test_hop_bad(void **state)
{
	static const char *const bad[] = {"127.0.0.1", /* numeric needs its port, as before */
					  "[::1]",
					  "::1:25",
					  "10.0.0.1:0",
					  "10.0.0.256:25",
					  "1.2.3:25",
					  "relay.example.net:0",
					  "relay.example.net:65536",
					  "relay.example.net:",
					  "relay.example.net:25x",
					  "relay.example.net.",
					  ".example.net",
					  "a..b",
					  "-a.example",
					  "a-.example",
					  "under_score.example",
					  "unix:/run/x.sock",
					  "/run/x.sock",
					  "h\xc3\xa9.example",
					  "a:b:c",
					  "[::1]x",
					  "[nothost]:25",
					  "relay.example.net:+25",
					  "relay.example.net: 25",
					  "x1.123"};
	char line[300], err[512], want[128];
	struct config c;

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		snprintf(want, sizeof(want), "t.conf:2: invalid value for '%s' in [delivery]: '",
			 hop_keys[k]);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(line, sizeof(line), "%s = %s", hop_keys[k], bad[i]);
			assert_int_equal(load_delivery(line, &c, err, sizeof(err)), -EINVAL);
			assert_non_null(strstr(err, want));
			assert_non_null(strstr(err, "is not a host:port address"));
		}
	}
}

/* Host name length limits: 63 bytes per label, 253 in all. */
static void test_hop_name_lengths(void **state)
{
	char name[300], line[400], err[512];
	struct config c;

	(void)state;
	memset(name, 'a', 63);
	strcpy(name + 63, ".example");
	snprintf(line, sizeof(line), "fallback_relay = %s", name);
	assert_int_equal(load_delivery(line, &c, err, sizeof(err)), 0);
	memset(name, 'a', 64);
	strcpy(name + 64, ".example");
	snprintf(line, sizeof(line), "fallback_relay = %s", name);
	assert_int_equal(load_delivery(line, &c, err, sizeof(err)), -EINVAL);
	/* 3 x 63 + 3 dots + "example" = 199 bytes: the line (with "fallback_relay = ") is over
	 * inih's 199-byte line, so it is refused as too long rather than loaded cut */
	for (int i = 0; i < 3; i++) {
		memset(name + i * 64, 'b', 63);
		name[i * 64 + 63] = '.';
	}
	strcpy(name + 192, "example");
	snprintf(line, sizeof(line), "fallback_relay = %s", name);
	assert_int_equal(load_delivery(line, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "t.conf:2: line too long"));
}

/* An empty fallback_relay is "none"; an empty relay is fine in independent mode only. */
static void test_hop_empty(void **state)
{
	char err[512];
	struct config c;

	(void)state;
	assert_int_equal(load_delivery("fallback_relay =", &c, err, sizeof(err)), 0);
	assert_string_equal(c.fallback_relay, "");
	assert_int_equal(load_delivery("relay =", &c, err, sizeof(err)), -EINVAL);
	assert_int_equal(
	    load_text("[delivery]\nmode = independent\nrelay =\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c.relay, "");
}

static void assert_v4(const struct util_addr *a, const char *want)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(a->family, AF_INET);
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(a->len, sizeof(*s4));
	assert_int_equal(s4->sin_port, 0);
	assert_non_null(inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof(buf)));
	assert_string_equal(buf, want);
}

static void assert_v6(const struct util_addr *a, const char *want)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(a->family, AF_INET6);
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(a->len, sizeof(*s6));
	assert_int_equal(s6->sin6_port, 0);
	assert_non_null(inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof(buf)));
	assert_string_equal(buf, want);
}

static void test_source_good(void **state)
{
	char err[512];
	struct config c;

	(void)state;
	assert_int_equal(load_delivery("source_address = 192.0.2.7", &c, err, sizeof(err)), 0);
	assert_v4(&c.source_v4, "192.0.2.7");
	assert_int_equal(c.source_v6.family, AF_UNSPEC);
	assert_round_trip(&c);

	assert_int_equal(load_delivery("source_address = 2001:db8::7", &c, err, sizeof(err)), 0);
	assert_int_equal(c.source_v4.family, AF_UNSPEC);
	assert_v6(&c.source_v6, "2001:db8::7");
	assert_round_trip(&c);

	assert_int_equal(load_delivery("source_address = 127.0.0.1;::1", &c, err, sizeof(err)), 0);
	assert_string_equal(c.source_address, "127.0.0.1;::1");
	assert_v4(&c.source_v4, "127.0.0.1");
	assert_v6(&c.source_v6, "::1");
	assert_round_trip(&c);

	assert_int_equal(load_delivery("source_address = ::1;10.1.2.3", &c, err, sizeof(err)), 0);
	assert_v4(&c.source_v4, "10.1.2.3");
	assert_v6(&c.source_v6, "::1");
	assert_round_trip(&c);

	/* a later empty value clears both */
	assert_int_equal(
	    load_text("[delivery]\nsource_address = ::1\nsource_address =\n", &c, err, sizeof(err)),
	    0);
	assert_string_equal(c.source_address, "");
	assert_int_equal(c.source_v4.family, AF_UNSPEC);
	assert_int_equal(c.source_v6.family, AF_UNSPEC);
}

static void test_source_bad(void **state)
{
	static const char *const bad[] = {
	    "localhost",      "127.0.0.1:25",	 "[::1]",	  "127.0.0.1;",	     "::1;",
	    "127.0.0.1;;::1", "1.2.3.4;5.6.7.8", "::1;::2",	  "1.2.3.4;::1;::2", "256.1.1.1",
	    "::1%lo",	      "127.0.0.1,::1",	 "127.0.0.1 ::1", "1.2.3",	     "::g"};
	char line[256], err[512];
	struct config c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "source_address = %s", bad[i]);
		assert_int_equal(load_delivery(line, &c, err, sizeof(err)), -EINVAL);
		assert_non_null(
		    strstr(err, "t.conf:2: invalid value for 'source_address' in [delivery]: "));
	}
}

/* port, first_mx_only, max_connections_per_destination: values land in their fields. */
static void test_mx_scalars(void **state)
{
	static const char text[] = "[delivery]\nport = 1\nfirst_mx_only = on\n"
				   "max_connections_per_destination = 1000000\n";
	char err[512];
	struct config c;

	(void)state;
	assert_int_equal(config_load_buf(&c, "t.conf", text, sizeof(text) - 1, err, sizeof(err)),
			 0);
	assert_int_equal(c.mx_port, 1);
	assert_true(c.first_mx_only);
	assert_int_equal(c.max_connections_per_destination, 1000000);
	assert_round_trip(&c);
	assert_int_equal(load_delivery("port = 65536", &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.conf:2: invalid value for 'port' in [delivery]: 65536 is out "
				 "of range 1..65535");
	assert_int_equal(
	    load_delivery("max_connections_per_destination = 1000001", &c, err, sizeof(err)),
	    -EINVAL);
	assert_int_equal(load_delivery("port = 25x", &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.conf:2: invalid value for 'port' in [delivery]: '25x' is not "
				 "a number");
}

/* --print-config names every new key, with its default. */
static void test_print_defaults(void **state)
{
	static const char *const lines[] = {
	    "\nport = 25\n", "\nfirst_mx_only = no\n", "\nfallback_relay =\n",
	    "\nmax_connections_per_destination = 20\n", "\nsource_address =\n"};
	struct config c;
	char *text;

	(void)state;
	config_defaults(&c);
	text = print_to_string(&c);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		assert_non_null(strstr(text, lines[i]));
	free(text);
	assert_round_trip(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hop_good),	     cmocka_unit_test(test_hop_bad),
	    cmocka_unit_test(test_hop_name_lengths), cmocka_unit_test(test_hop_empty),
	    cmocka_unit_test(test_source_good),	     cmocka_unit_test(test_source_bad),
	    cmocka_unit_test(test_mx_scalars),	     cmocka_unit_test(test_print_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
