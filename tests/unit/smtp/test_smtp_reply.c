/* test_smtp_reply — smtp_reply_parse and smtp_ehlo_parse.
 *
 * Why: the client reads pipelined replies out of one buffer; the parser must say "need more"
 * (0) at every split point of a valid reply, the exact length when complete, and -EBADMSG for
 * anything that is not a reply. Each valid reply is fed in every prefix length.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/smtp/smtp.h"

struct reply_case {
	const char *in;
	int code;
	int enh[3];
	unsigned lines;
	const char *text;
};

static const struct reply_case good[] = {
    {"220 mx.example.com ESMTP ready\r\n", 220, {0, 0, 0}, 1, "mx.example.com ESMTP ready"},
    {"250 2.1.0 Ok\r\n", 250, {2, 1, 0}, 1, "Ok"},
    {"550 5.1.1 <u@d.example>: Recipient address rejected\r\n",
     550,
     {5, 1, 1},
     1,
     "<u@d.example>: Recipient address rejected"},
    {"451 4.7.1   greylisted\r\n", 451, {4, 7, 1}, 1, "greylisted"},
    {"250 2.0.0\r\n", 250, {2, 0, 0}, 1, ""},
    {"552 5.3.4 Message size exceeds fixed limit\r\n",
     552,
     {5, 3, 4},
     1,
     "Message size exceeds fixed limit"},
    {"250 Ok\r\n", 250, {0, 0, 0}, 1, "Ok"},
    {"250\r\n", 250, {0, 0, 0}, 1, ""},
    {"250 \r\n", 250, {0, 0, 0}, 1, ""},
    {"354 End data with <CR><LF>.<CR><LF>\r\n",
     354,
     {0, 0, 0},
     1,
     "End data with <CR><LF>.<CR><LF>"},
    {"250 Ok\n", 250, {0, 0, 0}, 1, "Ok"},
    /* class of the enhanced code must match the reply code; otherwise it is text */
    {"250 5.1.1 odd\r\n", 250, {0, 0, 0}, 1, "5.1.1 odd"},
    {"250 2.1.0000 too long\r\n", 250, {0, 0, 0}, 1, "2.1.0000 too long"},
    {"250 2.1.0x\r\n", 250, {0, 0, 0}, 1, "2.1.0x"},
    {"250 2.100.255 wide\r\n", 250, {2, 100, 255}, 1, "wide"},
    {"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
     "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n",
     250,
     {0, 0, 0},
     8,
     "SMTPUTF8"},
    {"421-4.3.2 first\r\n421-4.3.2 second\r\n421 4.3.2 Service shutting down\r\n",
     421,
     {4, 3, 2},
     3,
     "Service shutting down"},
    {"250-first\n250 last\n", 250, {0, 0, 0}, 2, "last"},
    {"250-\r\n250-\r\n250\r\n", 250, {0, 0, 0}, 3, ""},
};

static void check_reply(const struct reply_case *t, const char *buf, const struct smtp_reply *r)
{
	if (r->code != t->code || r->enh_class != t->enh[0] || r->enh_subject != t->enh[1] ||
	    r->enh_detail != t->enh[2] || r->lines != t->lines)
		fail_msg("reply \"%s\": code %d enh %d.%d.%d lines %u", t->in, r->code,
			 r->enh_class, r->enh_subject, r->enh_detail, r->lines);
	if (r->text_len != strlen(t->text) || memcmp(r->text, t->text, r->text_len) != 0)
		fail_msg("reply \"%s\": text \"%.*s\"", t->in, (int)r->text_len, r->text);
	assert_ptr_equal(r->first, buf);
	assert_int_equal(r->total_len, strlen(t->in));
}

/* Every prefix of a valid reply is "need more"; the whole is consumed exactly, and a following
 * pipelined reply is left alone. Each prefix is copied to an exact-size heap buffer so ASan
 * catches a read past len. */
static void test_reply_good(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const struct reply_case *t = &good[i];
		size_t n = strlen(t->in);
		char *buf = malloc(n + 32);
		struct smtp_reply r;

		for (size_t k = 0; k < n; k++) {
			char *pre = malloc(k ? k : 1);
			memcpy(pre, t->in, k);
			if (smtp_reply_parse(pre, k, &r) != 0)
				fail_msg("reply \"%s\": prefix %zu not 0", t->in, k);
			free(pre);
		}
		memcpy(buf, t->in, n);
		assert_int_equal(smtp_reply_parse(buf, n, &r), (ssize_t)n);
		check_reply(t, buf, &r);
		memcpy(buf + n, "354 go ahead\r\n", 14);
		assert_int_equal(smtp_reply_parse(buf, n + 14, &r), (ssize_t)n);
		check_reply(t, buf, &r);
		free(buf);
	}
}

static void test_reply_bad(void **state)
{
	static const char *bad[] = {
	    "HTTP/1.1 400 Bad Request\r\n",
	    "2",
	    "2x",
	    "099 too low\r\n",
	    "650 too high\r\n",
	    "25a oops\r\n",
	    "250x no separator\r\n",
	    "250_Ok\r\n",
	    "25\r\n",
	    "\r\n",
	    "250-first\r\n251 second\r\n",
	    "250-first\r\n251",
	    "250-first\r\n25", /* incomplete, still consistent: not bad */
	    "250-first\r\n550-x\r\n550 y\r\n",
	    "250-first\r\nXYZ\r\n",
	};
	static const ssize_t want[] = {-EBADMSG, 0,	   -EBADMSG, -EBADMSG, -EBADMSG,
				       -EBADMSG, -EBADMSG, -EBADMSG, -EBADMSG, -EBADMSG,
				       -EBADMSG, -EBADMSG, 0,	     -EBADMSG, -EBADMSG};
	struct smtp_reply r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ssize_t rc = smtp_reply_parse(bad[i], strlen(bad[i]), &r);
		if (rc != want[i])
			fail_msg("reply \"%s\": %zd, want %zd", bad[i], rc, want[i]);
	}
}

/* A line of 4096 bytes is fine; one longer without an end is rejected once it is too long. */
static void test_reply_long_line(void **state)
{
	size_t n = 8192;
	char *buf = malloc(n);
	struct smtp_reply r;

	(void)state;
	memcpy(buf, "250 ", 4);
	memset(buf + 4, 'x', n - 4);
	assert_int_equal(smtp_reply_parse(buf, 4000, &r), 0);
	assert_int_equal(smtp_reply_parse(buf, n, &r), -EBADMSG);
	memcpy(buf + 4094, "\r\n", 2);
	assert_int_equal(smtp_reply_parse(buf, n, &r), 4096);
	assert_int_equal(r.text_len, 4090);
	free(buf);
}

static void test_ehlo(void **state)
{
	const char *in = "250-mx.example.com Hello client [192.0.2.1]\r\n"
			 "250-pipelining\r\n"
			 "250-SIZE 35882577\r\n"
			 "250-8BITMIME\r\n"
			 "250-ENHANCEDSTATUSCODES\r\n"
			 "250-STARTTLS\r\n"
			 "250-AUTH=LOGIN\r\n"
			 "250-AUTH PLAIN LOGIN\r\n"
			 "250-X-UNKNOWN-THING 1\r\n"
			 "250-DSN\r\n"
			 "250-SMTPUTF8\r\n"
			 "250 CHUNKING\r\n";
	struct smtp_reply r;
	struct smtp_ehlo e;

	(void)state;
	assert_int_equal(smtp_reply_parse(in, strlen(in), &r), (ssize_t)strlen(in));
	assert_int_equal(smtp_ehlo_parse(&r, &e), 0);
	assert_int_equal(e.ext, SMTP_EXT_PIPELINING | SMTP_EXT_SIZE | SMTP_EXT_8BITMIME |
				    SMTP_EXT_ENHANCEDSTATUSCODES | SMTP_EXT_STARTTLS |
				    SMTP_EXT_AUTH | SMTP_EXT_DSN | SMTP_EXT_SMTPUTF8 |
				    SMTP_EXT_CHUNKING);
	assert_int_equal(e.size_limit, 35882577);
	assert_int_equal(e.auth, SMTP_EHLO_AUTH_PLAIN | SMTP_EHLO_AUTH_LOGIN);
}

static void test_ehlo_minimal(void **state)
{
	static const char *in[] = {"250 mx.example.com\r\n",
				   "250-PIPELINING.example\r\n250 SIZE\r\n",
				   "250-mx\r\n250 SIZE 0\r\n"};
	static const uint32_t want_ext[] = {0, SMTP_EXT_SIZE, SMTP_EXT_SIZE};
	struct smtp_reply r;
	struct smtp_ehlo e;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		assert_true(smtp_reply_parse(in[i], strlen(in[i]), &r) > 0);
		assert_int_equal(smtp_ehlo_parse(&r, &e), 0);
		assert_int_equal(e.ext, want_ext[i]);
		assert_int_equal(e.size_limit, 0);
	}
}

/* The AUTH keyword's mechanism list: SMTP_AUTH_* for PLAIN and LOGIN, any case, in either
 * form ("AUTH A B" and the old "AUTH=A B"), several AUTH lines adding up; other mechanisms,
 * look-alike names and a keyword that only starts with AUTH give nothing. */
static void test_ehlo_auth(void **state)
{
	static const struct {
		const char *in;
		uint32_t auth;
		bool ext_auth;
	} c[] = {
	    {"250-mx\r\n250 AUTH PLAIN LOGIN\r\n", SMTP_EHLO_AUTH_PLAIN | SMTP_EHLO_AUTH_LOGIN,
	     true},
	    {"250-mx\r\n250 AUTH LOGIN\r\n", SMTP_EHLO_AUTH_LOGIN, true},
	    {"250-mx\r\n250 auth cram-md5 plain\r\n", SMTP_EHLO_AUTH_PLAIN, true},
	    {"250-mx\r\n250 AUTH=LOGIN PLAIN\r\n", SMTP_EHLO_AUTH_PLAIN | SMTP_EHLO_AUTH_LOGIN,
	     true},
	    {"250-mx\r\n250-AUTH=LOGIN\r\n250 AUTH CRAM-MD5 PLAIN\r\n",
	     SMTP_EHLO_AUTH_PLAIN | SMTP_EHLO_AUTH_LOGIN, true},
	    {"250-mx\r\n250 AUTH   XOAUTH2  SCRAM-SHA-256 \r\n", 0, true},
	    {"250-mx\r\n250 AUTH PLAINX LOGI PLAI\r\n", 0, true},
	    {"250-mx\r\n250 AUTH\r\n", 0, true},
	    {"250-mx\r\n250 AUTHX PLAIN\r\n", 0, false},
	    {"250-mx\r\n250 X-PLAIN LOGIN\r\n", 0, false},
	    {"250 mx AUTH PLAIN\r\n", 0, false}, /* the greeting line carries no keyword */
	};
	struct smtp_reply r;
	struct smtp_ehlo e;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		assert_true(smtp_reply_parse(c[i].in, strlen(c[i].in), &r) > 0);
		e.auth = 0xff;
		assert_int_equal(smtp_ehlo_parse(&r, &e), 0);
		assert_int_equal(e.auth, c[i].auth);
		assert_int_equal((e.ext & SMTP_EXT_AUTH) != 0, c[i].ext_auth);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_good),	    cmocka_unit_test(test_reply_bad),
	    cmocka_unit_test(test_reply_long_line), cmocka_unit_test(test_ehlo),
	    cmocka_unit_test(test_ehlo_minimal),    cmocka_unit_test(test_ehlo_auth),
	};
	return cmocka_run_group_tests_name("smtp_reply", tests, NULL, NULL);
}
