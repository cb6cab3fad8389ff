/* test_smtp_dsn — table-driven tests of the DSN parameter codec (RFC 3461): xtext decode and
 * encode, RET=, NOTIFY=, ENVID= and ORCPT= parsing, NOTIFY and ORCPT formatting.
 *
 * Why: these values come from any client and go into stored envelopes, notices and the next
 * hop's command lines; each row pins one case of the grammar or one limit, so a regression names
 * the exact input.
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

struct xtext_case {
	const char *in;
	ssize_t rc;	 /* length, or -errno */
	const char *out; /* decoded (when rc >= 0) */
};

static const struct xtext_case decode_cases[] = {
    {"", 0, ""},
    {"abc", 3, "abc"},
    {"a+2Bb", 3, "a+b"},
    {"a+3Db", 3, "a=b"},
    {"+20", 1, " "},	 /* space: printable ("graphic and white space") */
    {"+7E", 1, "~"},	 /* 126 */
    {"+2b", 1, "+"},	 /* lower-case hex tolerated */
    {"+41+42", 2, "AB"}, /* needless encoding decodes */
    {"!~", 2, "!~"},	 /* 33 and 126 stand for themselves */
    {"<a@b>;,", 7, "<a@b>;,"},
    {"+", -EINVAL, NULL},
    {"+2", -EINVAL, NULL},
    {"a+", -EINVAL, NULL},
    {"+G0", -EINVAL, NULL},
    {"+0G", -EINVAL, NULL},
    {"+0D", -EINVAL, NULL}, /* CR */
    {"+0A", -EINVAL, NULL}, /* LF */
    {"+00", -EINVAL, NULL}, /* NUL */
    {"+09", -EINVAL, NULL}, /* HT */
    {"+1F", -EINVAL, NULL},
    {"+7F", -EINVAL, NULL}, /* DEL */
    {"+80", -EINVAL, NULL}, /* 8-bit */
    {"+FF", -EINVAL, NULL},
    {"a=b", -EINVAL, NULL},
    {"a b", -EINVAL, NULL},
    {"a\tb", -EINVAL, NULL},
    {"\x7f", -EINVAL, NULL},
    {"\xc3\xa9", -EINVAL, NULL},
};

static void test_xtext_decode(void **state)
{
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
		const struct xtext_case *c = &decode_cases[i];
		ssize_t r = smtp_xtext_decode(c->in, strlen(c->in), out, sizeof(out));
		if (r != c->rc)
			fail_msg("decode \"%s\": %zd, expected %zd", c->in, r, c->rc);
		if (r >= 0)
			assert_string_equal(out, c->out);
	}
	/* length-delimited: a NUL byte inside is not xtext */
	assert_int_equal(smtp_xtext_decode("a\0b", 3, out, sizeof(out)), -EINVAL);
	/* room: exactly len + 1 is enough, len is not */
	assert_int_equal(smtp_xtext_decode("a+2Bb", 5, out, 4), 3);
	assert_string_equal(out, "a+b");
	assert_int_equal(smtp_xtext_decode("a+2Bb", 5, out, 3), -ENOSPC);
	assert_int_equal(smtp_xtext_decode("", 0, out, 0), -ENOSPC);
}

static void test_xtext_encode(void **state)
{
	static const char all[] = " !\"+=~\x01\x7f\xff";
	char out[64], back[64], again[64];
	ssize_t r;

	(void)state;
	r = smtp_xtext_encode("a+b=c d", 7, out, sizeof(out));
	assert_int_equal(r, 13);
	assert_string_equal(out, "a+2Bb+3Dc+20d");
	r = smtp_xtext_encode(all, sizeof(all) - 1, out, sizeof(out));
	assert_string_equal(out, "+20!\"+2B+3D~+01+7F+FF");
	assert_int_equal(r, (ssize_t)strlen(out));
	r = smtp_xtext_encode("", 0, out, 1);
	assert_int_equal(r, 0);
	assert_string_equal(out, "");
	/* room: 3 * n + 1 always; one byte less for an encoded byte is not */
	assert_int_equal(smtp_xtext_encode("+", 1, out, 4), 3);
	assert_int_equal(smtp_xtext_encode("+", 1, out, 3), -ENOSPC);
	assert_int_equal(smtp_xtext_encode("ab", 2, out, 2), -ENOSPC);
	/* round trip of every printable byte, and the encoder's output is canonical */
	for (int c = 32; c <= 126; c++) {
		char in[3] = {'x', (char)c, 'y'};
		r = smtp_xtext_encode(in, 3, out, sizeof(out));
		assert_true(r >= 3);
		assert_int_equal(smtp_xtext_decode(out, (size_t)r, back, sizeof(back)), 3);
		assert_memory_equal(back, in, 3);
		assert_int_equal(smtp_xtext_encode(back, 3, again, sizeof(again)), r);
		assert_string_equal(again, out);
	}
}

static void test_ret(void **state)
{
	(void)state;
	assert_int_equal(smtp_dsn_ret_parse("FULL", 4), SMTP_RET_FULL);
	assert_int_equal(smtp_dsn_ret_parse("full", 4), SMTP_RET_FULL);
	assert_int_equal(smtp_dsn_ret_parse("HDRS", 4), SMTP_RET_HDRS);
	assert_int_equal(smtp_dsn_ret_parse("hDrS", 4), SMTP_RET_HDRS);
	assert_int_equal(smtp_dsn_ret_parse("FUL", 3), -EINVAL);
	assert_int_equal(smtp_dsn_ret_parse("FULLX", 5), -EINVAL);
	assert_int_equal(smtp_dsn_ret_parse("HEADERS", 7), -EINVAL);
	assert_int_equal(smtp_dsn_ret_parse("", 0), -EINVAL);
}

struct notify_case {
	const char *in;
	int rc;
	const char *canon; /* smtp_dsn_notify_format of rc */
};

static const struct notify_case notify_cases[] = {
    {"NEVER", SMTP_NOTIFY_NEVER, "NEVER"},
    {"never", SMTP_NOTIFY_NEVER, "NEVER"},
    {"SUCCESS", SMTP_NOTIFY_SUCCESS, "SUCCESS"},
    {"FAILURE", SMTP_NOTIFY_FAILURE, "FAILURE"},
    {"DELAY", SMTP_NOTIFY_DELAY, "DELAY"},
    {"delay,Failure", SMTP_NOTIFY_DELAY | SMTP_NOTIFY_FAILURE, "FAILURE,DELAY"},
    {"SUCCESS,FAILURE,DELAY", 7, "SUCCESS,FAILURE,DELAY"},
    {"DELAY,SUCCESS", SMTP_NOTIFY_DELAY | SMTP_NOTIFY_SUCCESS, "SUCCESS,DELAY"},
    {"", -EINVAL, NULL},
    {"NEVER,SUCCESS", -EINVAL, NULL},
    {"FAILURE,NEVER", -EINVAL, NULL},
    {"NEVER,NEVER", -EINVAL, NULL},
    {"SUCCESS,SUCCESS", -EINVAL, NULL},
    {"SUCCESS,", -EINVAL, NULL},
    {",SUCCESS", -EINVAL, NULL},
    {"SUCCESS,,DELAY", -EINVAL, NULL},
    {"SUCCES", -EINVAL, NULL},
    {"SUCCESSX", -EINVAL, NULL},
    {"ALWAYS", -EINVAL, NULL},
    {"SUCCESS;FAILURE", -EINVAL, NULL},
};

static void test_notify(void **state)
{
	char out[SMTP_NOTIFY_TEXT];

	(void)state;
	for (size_t i = 0; i < sizeof(notify_cases) / sizeof(notify_cases[0]); i++) {
		const struct notify_case *c = &notify_cases[i];
		int r = smtp_dsn_notify_parse(c->in, strlen(c->in));
		if (r != c->rc)
			fail_msg("notify \"%s\": %d, expected %d", c->in, r, c->rc);
		if (r < 0)
			continue;
		assert_int_equal(smtp_dsn_notify_format((unsigned)r, out, sizeof(out)),
				 strlen(c->canon));
		assert_string_equal(out, c->canon);
		assert_int_equal(smtp_dsn_notify_parse(out, strlen(out)), r);
	}
	assert_int_equal(smtp_dsn_notify_format(0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* NEVER wins over anything an owner might have combined with it */
	smtp_dsn_notify_format(SMTP_NOTIFY_NEVER | SMTP_NOTIFY_SUCCESS, out, sizeof(out));
	assert_string_equal(out, "NEVER");
	assert_int_equal(smtp_dsn_notify_format(7, out, 5), 0); /* too small: "" */
	assert_string_equal(out, "");
}

/* A string of n copies of c (static buffer, n < 2000). */
static const char *rep(char c, size_t n)
{
	static char buf[2][2000];
	static int k;

	k ^= 1;
	memset(buf[k], c, n);
	buf[k][n] = '\0';
	return buf[k];
}

static void test_envid(void **state)
{
	char out[SMTP_ENVID_MAX + 1], in[400];

	(void)state;
	assert_int_equal(smtp_dsn_envid_parse("QQ314159", 8, out, sizeof(out)), 8);
	assert_string_equal(out, "QQ314159");
	assert_int_equal(smtp_dsn_envid_parse("id+2Bx+3D+20y", 13, out, sizeof(out)), 7);
	assert_string_equal(out, "id+x= y");
	assert_int_equal(smtp_dsn_envid_parse("", 0, out, sizeof(out)), -EINVAL);
	assert_int_equal(smtp_dsn_envid_parse("a+0Db", 5, out, sizeof(out)), -EINVAL);
	assert_int_equal(smtp_dsn_envid_parse("a+", 2, out, sizeof(out)), -EINVAL);
	/* 100 decoded bytes are fine, 101 are not, however they are encoded */
	assert_int_equal(smtp_dsn_envid_parse(rep('x', 100), 100, out, sizeof(out)), 100);
	assert_string_equal(out, rep('x', 100));
	assert_int_equal(smtp_dsn_envid_parse(rep('x', 101), 101, out, sizeof(out)), -E2BIG);
	in[0] = '\0';
	for (int i = 0; i < 100; i++)
		strcat(in, "+2B");
	assert_int_equal(smtp_dsn_envid_parse(in, 300, out, sizeof(out)), 100);
	assert_string_equal(out, rep('+', 100));
	strcat(in, "+2B");
	assert_int_equal(smtp_dsn_envid_parse(in, 303, out, sizeof(out)), -E2BIG);
	assert_int_equal(smtp_dsn_envid_parse("ab", 2, out, SMTP_ENVID_MAX), -ENOSPC);
}

struct orcpt_case {
	const char *in;
	ssize_t rc;
	const char *out;
};

static const struct orcpt_case orcpt_cases[] = {
    {"rfc822;a@b.example", 18, "rfc822;a@b.example"},
    {"RFC822;a+2Bb@c", 12, "RFC822;a+b@c"},
    {"rfc822;\"a+20b\"@c", 14, "rfc822;\"a b\"@c"},
    {"x-local;anything;goes", 21, "x-local;anything;goes"},
    {"utf-8;j+C3+B6rg@x", -EINVAL, NULL}, /* decoded 8-bit */
    {"rfc822;", -EINVAL, NULL},		  /* empty address */
    {";a@b", -EINVAL, NULL},		  /* empty addr-type */
    {"rfc822", -EINVAL, NULL},		  /* no ';' */
    {"rfc 822;a@b", -EINVAL, NULL},	  /* not an atom */
    {"rfc(822);a@b", -EINVAL, NULL},
    {"rfc822;a+0D+0Ab", -EINVAL, NULL},
    {"rfc822;a+zz", -EINVAL, NULL},
};

static void test_orcpt(void **state)
{
	char out[SMTP_ORCPT_BUF], enc[SMTP_ORCPT_BUF * 3], in[2000];
	ssize_t r;

	(void)state;
	for (size_t i = 0; i < sizeof(orcpt_cases) / sizeof(orcpt_cases[0]); i++) {
		const struct orcpt_case *c = &orcpt_cases[i];
		r = smtp_dsn_orcpt_parse(c->in, strlen(c->in), out, sizeof(out));
		if (r != c->rc)
			fail_msg("orcpt \"%s\": %zd, expected %zd", c->in, r, c->rc);
		if (r < 0)
			continue;
		assert_string_equal(out, c->out);
		/* formatting the decoded value gives back a value that parses to the same */
		r = smtp_dsn_orcpt_format(out, enc, sizeof(enc));
		assert_true(r > 0);
		assert_int_equal(smtp_dsn_orcpt_parse(enc, (size_t)r, in, SMTP_ORCPT_BUF), c->rc);
		assert_string_equal(in, c->out);
	}
	/* the address: 500 decoded bytes fine, 501 not */
	snprintf(in, sizeof(in), "rfc822;%s", rep('a', 500));
	assert_int_equal(smtp_dsn_orcpt_parse(in, strlen(in), out, sizeof(out)), 507);
	snprintf(in, sizeof(in), "rfc822;%s", rep('a', 501));
	assert_int_equal(smtp_dsn_orcpt_parse(in, strlen(in), out, sizeof(out)), -E2BIG);
	/* the addr-type: 64 bytes fine, 65 not */
	snprintf(in, sizeof(in), "%s;a@b", rep('t', 64));
	assert_int_equal(smtp_dsn_orcpt_parse(in, strlen(in), out, sizeof(out)), 68);
	snprintf(in, sizeof(in), "%s;a@b", rep('t', 65));
	assert_int_equal(smtp_dsn_orcpt_parse(in, strlen(in), out, sizeof(out)), -E2BIG);
	assert_int_equal(smtp_dsn_orcpt_parse("rfc822;a", 8, out, SMTP_ORCPT_BUF - 1), -ENOSPC);
}

static void test_orcpt_format(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(smtp_dsn_orcpt_format("rfc822;a+b=c d@x", out, sizeof(out)), 22);
	assert_string_equal(out, "rfc822;a+2Bb+3Dc+20d@x");
	assert_int_equal(smtp_dsn_orcpt_format("rfc822;a@b", out, 11), 10);
	assert_int_equal(smtp_dsn_orcpt_format("rfc822;a@b", out, 10), -ENOSPC);
	assert_int_equal(smtp_dsn_orcpt_format("rfc822;", out, sizeof(out)), -EINVAL);
	assert_int_equal(smtp_dsn_orcpt_format("a@b", out, sizeof(out)), -EINVAL);
	assert_int_equal(smtp_dsn_orcpt_format("", out, sizeof(out)), -EINVAL);
	assert_int_equal(smtp_dsn_orcpt_format("bad type;a@b", out, sizeof(out)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_xtext_decode), cmocka_unit_test(test_xtext_encode),
	    cmocka_unit_test(test_ret),		 cmocka_unit_test(test_notify),
	    cmocka_unit_test(test_envid),	 cmocka_unit_test(test_orcpt),
	    cmocka_unit_test(test_orcpt_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
