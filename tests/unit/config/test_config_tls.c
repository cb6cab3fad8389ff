/* test_config_tls — the TLS, AUTH and access-control keys of issue #6 ([delivery] tls,
 * tls_verify, tls_ca_file, auth_user, auth_password, auth_plaintext; [inject] tls_cert, tls_key,
 * tls_listen, auth_users_file, trusted_networks, relay_domains, sender_policy, max_rset, vrfy),
 * helo_name defaulting to the host name, the secret never printed, and engine/util's network
 * and domain lists that the injection server matches with.
 *
 * Why a file of its own: test_config.c is near the size limit; these need only the public API.
 */
#include "engine/config/config.h"
#include "engine/util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

static int load_text(const char *text, struct config *c, char *err, size_t errlen)
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

static void test_defaults(void **state)
{
	struct config c;
	char err[512] = "";
	char *text;

	(void)state;
	assert_int_equal(load_text("[main]\nhostname = mta.example.net\n", &c, err, sizeof(err)),
			 0);
	assert_int_equal(c.tls, CONFIG_TLS_OPPORTUNISTIC);
	assert_int_equal(c.tls_verify, CONFIG_VERIFY_AUTO);
	assert_int_equal(config_tls_verify_effective(&c), CONFIG_VERIFY_NONE);
	assert_string_equal(c.trusted_networks, "127.0.0.0/8 ::1/128");
	assert_int_equal(c.sender_policy, CONFIG_SENDER_ANY);
	assert_int_equal(c.max_rset, 20);
	assert_false(c.vrfy);
	assert_false(c.auth_plaintext);
	assert_string_equal(c.helo_name, "mta.example.net"); /* the file's hostname */
	text = print_to_string(&c);
	assert_non_null(strstr(text, "\nhelo_name = mta.example.net\n"));
	assert_non_null(strstr(text, "\ntls = opportunistic\n"));
	assert_non_null(strstr(text, "\ntrusted_networks = 127.0.0.0/8 ::1/128\n"));
	assert_non_null(strstr(text, "\nauth_password =\n"));
	free(text);
}

static void test_verify_auto(void **state)
{
	struct config c;
	char err[512];

	(void)state;
	assert_int_equal(load_text("[delivery]\ntls = required\n", &c, err, sizeof(err)), 0);
	assert_int_equal(config_tls_verify_effective(&c), CONFIG_VERIFY_CA);
	assert_int_equal(load_text("[delivery]\ntls = smtps\n", &c, err, sizeof(err)), 0);
	assert_int_equal(config_tls_verify_effective(&c), CONFIG_VERIFY_CA);
	assert_int_equal(
	    load_text("[delivery]\ntls = required\ntls_verify = none\n", &c, err, sizeof(err)), 0);
	assert_int_equal(config_tls_verify_effective(&c), CONFIG_VERIFY_NONE);
	assert_int_equal(
	    load_text("[delivery]\ntls = none\ntls_verify = ca\n", &c, err, sizeof(err)), 0);
	assert_int_equal(config_tls_verify_effective(&c), CONFIG_VERIFY_CA);
	assert_int_equal(load_text("[delivery]\ntls = maybe\n", &c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.conf:2: invalid value for 'tls' in [delivery]: 'maybe' is not "
				 "one of: none opportunistic required smtps");
}

/* The password is loaded but never printed; everything else round-trips. */
static void test_secret_not_printed(void **state)
{
	static const char conf[] = "[delivery]\nauth_user = bulk@example.com\n"
				   "auth_password = s3cr3t-Pa55\n";
	struct config c;
	char err[512];
	char *text;

	(void)state;
	assert_int_equal(load_text(conf, &c, err, sizeof(err)), 0);
	assert_string_equal(c.auth_password, "s3cr3t-Pa55");
	text = print_to_string(&c);
	assert_null(strstr(text, "s3cr3t"));
	assert_non_null(strstr(text, "\n# auth_password = (set, not shown)\n"));
	assert_non_null(strstr(text, "\nauth_user = bulk@example.com\n"));
	free(text);
}

static void test_cross_keys(void **state)
{
	static const struct {
		const char *text, *err;
	} bad[] = {
	    {"[inject]\ntls_cert = /a.pem\n",
	     "t.conf:2: [inject] tls_cert and tls_key must be set together"},
	    {"[inject]\ntls_key = /a.key\n",
	     "t.conf:2: [inject] tls_cert and tls_key must be set together"},
	    {"[inject]\ntls_listen = 127.0.0.1:4650\n",
	     "t.conf:2: [inject] tls_listen needs tls_cert and tls_key"},
	    {"[delivery]\nauth_user = u\n",
	     "t.conf:2: [delivery] auth_user is set but auth_password is empty"},
	    {"[delivery]\nauth_password = p\n",
	     "t.conf:2: [delivery] auth_password is set but auth_user is empty"},
	    {"[inject]\ntrusted_networks = 10.0.0.0/33\n",
	     "t.conf:2: invalid value for 'trusted_networks' in [inject]: '10.0.0.0/33' is not a "
	     "network (IPv4 or IPv6 address[/prefix])"},
	    {"[inject]\nrelay_domains = example.com, 1.2.3.4\n",
	     "t.conf:2: invalid value for 'relay_domains' in [inject]: '1.2.3.4' is not a domain "
	     "(example.com or *.example.com)"},
	    {"[inject]\nsender_policy = mine\n",
	     "t.conf:2: invalid value for 'sender_policy' in [inject]: 'mine' is not one of: any "
	     "own_address own_domain"},
	};
	struct config c;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(load_text(bad[i].text, &c, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, bad[i].err);
	}
	assert_int_equal(load_text("[inject]\ntls_cert = /a.pem\ntls_key = /a.key\ntls_listen = "
				   "127.0.0.1:4650\nrelay_domains = example.com *.example.org\n",
				   &c, err, sizeof(err)),
			 0);
}

static struct sockaddr_storage sa_of(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	return ss;
}

static bool in_nets(const struct util_net *n, int count, const char *ip)
{
	struct sockaddr_storage ss = sa_of(ip);

	return util_nets_match(n, (unsigned)count, (struct sockaddr *)&ss);
}

static void test_nets(void **state)
{
	struct util_net n[8];
	char why[256];
	int count = util_nets_parse("127.0.0.1, 10.1.0.0/16;::1/128 2001:db8::/33 0.0.0.0/0x", n, 8,
				    why, sizeof(why));

	(void)state;
	assert_int_equal(count, -EINVAL);
	assert_string_equal(why, "'0.0.0.0/0x' is not a network (IPv4 or IPv6 address[/prefix])");
	count =
	    util_nets_parse("127.0.0.1, 10.1.0.0/16;::1/128 2001:db8::/33", n, 8, why, sizeof(why));
	assert_int_equal(count, 4);
	assert_true(in_nets(n, count, "127.0.0.1"));
	assert_false(in_nets(n, count, "127.0.0.2"));
	assert_true(in_nets(n, count, "10.1.255.3"));
	assert_false(in_nets(n, count, "10.2.0.1"));
	assert_true(in_nets(n, count, "::1"));
	assert_true(in_nets(n, count, "::ffff:127.0.0.1")); /* IPv4-mapped */
	assert_true(in_nets(n, count, "2001:db8:7fff::1"));
	assert_false(in_nets(n, count, "2001:db8:8000::1"));
	assert_int_equal(util_nets_parse("", n, 8, why, sizeof(why)), 0);
	assert_int_equal(util_nets_parse("1.2.3.4 5.6.7.8", n, 1, why, sizeof(why)), -EINVAL);
}

static void test_domains(void **state)
{
	const char *list = "example.com, *.example.org .example.net";

	(void)state;
	assert_int_equal(util_domains_check(list, NULL, 0), 3);
	assert_true(util_domains_match(list, "EXAMPLE.com", 11));
	assert_false(util_domains_match(list, "sub.example.com", 15));
	assert_true(util_domains_match(list, "a.b.example.org", 15));
	assert_false(util_domains_match(list, "example.org", 11));
	assert_false(util_domains_match(list, "badexample.org", 14));
	assert_true(util_domains_match(list, "mx.example.net", 14));
	assert_false(util_domains_match("", "example.com", 11));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_verify_auto),
	    cmocka_unit_test(test_secret_not_printed),
	    cmocka_unit_test(test_cross_keys),
	    cmocka_unit_test(test_nets),
	    cmocka_unit_test(test_domains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
