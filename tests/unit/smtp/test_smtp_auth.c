/* test_smtp_auth — AUTH command parsing (RFC 4954) and the strict base64 codec (RFC 4648).
 *
 * Why: the injection server's AUTH handling trusts the parser's split of mechanism and initial
 * response, and a credential must have exactly one spelling, so each row pins one case: the
 * mechanisms and their case, "=" as an empty response, refused names and extra words; the RFC
 * 4648 test vectors, padding rules, bits under the padding and the size limits.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "engine/smtp/smtp.h"

struct auth_case {
	const char *line;
	int rc;
	enum smtp_auth_mech mech;
	const char *mech_name; /* arg[0..mech_len) */
	const char *resp;      /* NULL: no initial response */
};

static const struct auth_case auth_cases[] = {
    {"AUTH PLAIN", 0, SMTP_AUTH_PLAIN, "PLAIN", NULL},
    {"auth plain", 0, SMTP_AUTH_PLAIN, "plain", NULL},
    {"AUTH LOGIN", 0, SMTP_AUTH_LOGIN, "LOGIN", NULL},
    {"AUTH Login dXNlcg==", 0, SMTP_AUTH_LOGIN, "Login", "dXNlcg=="},
    {"AUTH PLAIN AHVzZXIAcGFzcw==", 0, SMTP_AUTH_PLAIN, "PLAIN", "AHVzZXIAcGFzcw=="},
    {"AUTH PLAIN =", 0, SMTP_AUTH_PLAIN, "PLAIN", ""},
    {"AUTH  PLAIN   AHVzZXIAcGFzcw==  ", 0, SMTP_AUTH_PLAIN, "PLAIN", "AHVzZXIAcGFzcw=="},
    {"AUTH PLAIN\tAHVzZXIAcGFzcw==", 0, SMTP_AUTH_PLAIN, "PLAIN", "AHVzZXIAcGFzcw=="},
    {"AUTH PLAIN ==", 0, SMTP_AUTH_PLAIN, "PLAIN", "=="}, /* not "=": left to the decoder */
    {"AUTH PLAIN !!!", 0, SMTP_AUTH_PLAIN, "PLAIN", "!!!"},
    {"AUTH CRAM-MD5", 0, SMTP_AUTH_OTHER, "CRAM-MD5", NULL},
    {"AUTH SCRAM-SHA-256-PLUS", 0, SMTP_AUTH_OTHER, "SCRAM-SHA-256-PLUS", NULL},
    {"AUTH X_OAUTH2 abc=", 0, SMTP_AUTH_OTHER, "X_OAUTH2", "abc="},
    {"AUTH PLAINX", 0, SMTP_AUTH_OTHER, "PLAINX", NULL},
    {"AUTH ABCDEFGHIJKLMNOPQRST", 0, SMTP_AUTH_OTHER, "ABCDEFGHIJKLMNOPQRST", NULL},
    /* refused */
    {"AUTH", -EINVAL, 0, NULL, NULL},
    {"AUTH   ", -EINVAL, 0, NULL, NULL},
    {"AUTH ABCDEFGHIJKLMNOPQRSTU", -EINVAL, 0, NULL, NULL}, /* 21 characters */
    {"AUTH PL@IN", -EINVAL, 0, NULL, NULL},
    {"AUTH PLAIN a b", -EINVAL, 0, NULL, NULL},
    {"AUTH PLAIN = =", -EINVAL, 0, NULL, NULL},
    {"AUTH PL\xc3\xa9IN", -EINVAL, 0, NULL, NULL},
};

static void test_auth_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(auth_cases) / sizeof(auth_cases[0]); i++) {
		const struct auth_case *c = &auth_cases[i];
		struct smtp_cmd cmd;
		int rc = smtp_cmd_parse(c->line, strlen(c->line), &cmd);

		printf("# %s\n", c->line);
		assert_int_equal(rc, c->rc);
		assert_int_equal(cmd.verb, SMTP_VERB_AUTH);
		if (rc < 0)
			continue;
		assert_int_equal(cmd.mech, c->mech);
		assert_int_equal(cmd.mech_len, strlen(c->mech_name));
		assert_memory_equal(cmd.arg, c->mech_name, cmd.mech_len);
		assert_int_equal(cmd.has_resp, c->resp != NULL);
		if (!c->resp)
			continue;
		assert_int_equal(cmd.resp_len, strlen(c->resp));
		if (cmd.resp_len)
			assert_memory_equal(cmd.resp, c->resp, cmd.resp_len);
	}
}

/* The other new verbs keep their ids (the server answers them). */
static void test_other_verbs(void **state)
{
	struct smtp_cmd cmd;

	(void)state;
	assert_int_equal(smtp_cmd_parse("EXPN staff", 10, &cmd), 0);
	assert_int_equal(cmd.verb, SMTP_VERB_EXPN);
	assert_int_equal(smtp_cmd_parse("StartTLS", 8, &cmd), 0);
	assert_int_equal(cmd.verb, SMTP_VERB_STARTTLS);
	assert_int_equal(smtp_cmd_parse("VRFY <a@b.example>", 18, &cmd), 0);
	assert_int_equal(cmd.verb, SMTP_VERB_VRFY);
	assert_false(cmd.has_resp); /* AUTH fields stay zero for other verbs */
}

/* RFC 4648 section 10 test vectors, both ways. */
static void test_b64_vectors(void **state)
{
	static const char *const v[][2] = {
	    {"", ""},
	    {"f", "Zg=="},
	    {"fo", "Zm8="},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg=="},
	    {"fooba", "Zm9vYmE="},
	    {"foobar", "Zm9vYmFy"},
	    {"\0user\0pass", "AHVzZXIAcGFzcw=="},
	};
	char enc[64], dec[64];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = i == 7 ? 10 : strlen(v[i][0]), e = strlen(v[i][1]);

		assert_int_equal(smtp_b64_encode(v[i][0], n, enc, sizeof(enc)), (ssize_t)e);
		assert_string_equal(enc, v[i][1]);
		assert_int_equal(smtp_b64_decode(v[i][1], e, dec, sizeof(dec)), (ssize_t)n);
		assert_memory_equal(dec, v[i][0], n);
	}
}

static void test_b64_strict(void **state)
{
	static const char *const bad[] = {
	    "Zg",	/* not a multiple of 4 */
	    "Zg=",	/* idem */
	    "Zh==",	/* bits under the padding */
	    "Zm9=",	/* idem */
	    "Z===",	/* too much padding */
	    "====",	/* idem */
	    "Zg==Zg==", /* padding before the end */
	    "Zm9v Zg==", "Zm9\n", "Zm9-", "Zm9_", "Zm\xc3\xa9",
	};
	char dec[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		printf("# %s\n", bad[i]);
		assert_int_equal(smtp_b64_decode(bad[i], strlen(bad[i]), dec, sizeof(dec)),
				 -EINVAL);
	}
	assert_int_equal(smtp_b64_decode("Zm9vYmFy", 8, dec, 5), -ENOSPC);
	assert_int_equal(smtp_b64_decode("Zm9vYmFy", 8, dec, 6), 6);
	assert_int_equal(smtp_b64_encode("foo", 3, dec, 4), -ENOSPC);
	assert_int_equal(smtp_b64_encode("foo", 3, dec, 5), 4);
}

/* Every byte value, every length mod 3, round-trips. */
static void test_b64_all_bytes(void **state)
{
	char raw[256], enc[400], dec[300];

	(void)state;
	for (int i = 0; i < 256; i++)
		raw[i] = (char)i;
	for (size_t n = 253; n <= 256; n++) {
		ssize_t e = smtp_b64_encode(raw, n, enc, sizeof(enc));

		assert_true(e > 0);
		assert_int_equal(smtp_b64_decode(enc, (size_t)e, dec, sizeof(dec)), (ssize_t)n);
		assert_memory_equal(dec, raw, n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_auth_table),	  cmocka_unit_test(test_other_verbs),
	    cmocka_unit_test(test_b64_vectors),	  cmocka_unit_test(test_b64_strict),
	    cmocka_unit_test(test_b64_all_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
