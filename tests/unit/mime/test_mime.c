/* test_mime — unit tests for engine/mime: the 8BITMIME downgrade (mime_to_7bit), the walker
 * and the 8-bit scan.
 *
 * Why this shape: what matters is the exact bytes a 7-bit hop receives, so the main cases
 * compare the whole output with a golden string written by hand from RFC 2045/2046; the rest
 * assert the refusals (-EBADMSG) and the limits. Every input also goes through the fuzz
 * harness's invariant check (included below: 7-bit CRLF lines <= 998, same leaves, each
 * converted part decoding back to the original bytes), so the unit suite and the fuzzer prove
 * the same properties.
 */
#include "engine/mime/mime.h"
#include "tests/fuzz/fuzz_mime.c"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define S(lit) lit, sizeof(lit) - 1

/* Convert, run the harness's invariants, and return the result (output in *out, NUL-ended). */
static int conv(const char *in, size_t len, char **out)
{
	size_t n = 0;
	int ret = mime_to_7bit(in, len, out, &n);

	LLVMFuzzerTestOneInput((const uint8_t *)in, len);
	if (ret == 0) {
		*out = realloc(*out, n + 1);
		(*out)[n] = '\0';
		assert_int_equal(strlen(*out), n);
	}
	return ret;
}

static void expect_conv(const char *in, size_t len, const char *want)
{
	char *out = NULL;

	assert_int_equal(conv(in, len, &out), 0);
	assert_string_equal(out, want);
	free(out);
}

static void expect_ret(const char *in, size_t len, int want)
{
	char *out = (char *)"x";

	assert_int_equal(conv(in, len, &out), want);
	assert_null(out);
}

/* ---- nothing to do ---- */

static void test_7bit_untouched(void **state)
{
	expect_ret(S("Subject: x\r\n\r\nplain ascii\r\n"), 1);
	expect_ret(S(""), 1);
	/* 7-bit but broken (long line, NUL): not this module's business, still "nothing to do" */
	expect_ret(S("Subject: x\r\n\r\na\0b\r\n"), 1);
}

static void test_has_8bit_every_position(void **state)
{
	char buf[200];

	memset(buf, 'a', sizeof(buf));
	for (size_t len = 0; len <= sizeof(buf); len++)
		assert_false(mime_has_8bit(buf, len));
	for (size_t pos = 0; pos < sizeof(buf); pos++) {
		buf[pos] = (char)0x80;
		assert_true(mime_has_8bit(buf, sizeof(buf)));
		assert_false(mime_has_8bit(buf, pos));
		assert_true(mime_has_8bit(buf + pos, sizeof(buf) - pos));
		buf[pos] = 'a';
	}
}

/* ---- single-part messages ---- */

static void test_plain_message_without_mime(void **state)
{
	expect_conv(S("Subject: caf\r\n\r\ncaf\xc3\xa9 \r\nend\t"),
		    "Subject: caf\r\n"
		    "MIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=unknown-8bit\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n"
		    "\r\n"
		    "caf=C3=A9=20\r\nend=09");
}

static void test_mime_text_8bit(void **state)
{
	expect_conv(S("MIME-Version: 1.0\r\n"
		      "Content-Transfer-Encoding: 8bit\r\n"
		      "Content-Type: text/plain;\r\n"
		      "\tcharset=\"utf-8\"\r\n"
		      "Subject: t\r\n"
		      "\r\n"
		      "Gr\xc3\xbc\xc3\x9f"
		      "e = 1\r\n"
		      "-- \r\n"
		      "sig\r\n"),
		    "MIME-Version: 1.0\r\n"
		    "Content-Type: text/plain;\r\n"
		    "\tcharset=\"utf-8\"\r\n"
		    "Subject: t\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n"
		    "\r\n"
		    "Gr=C3=BC=C3=9Fe =3D 1\r\n"
		    "=2D-=20\r\n"
		    "sig\r\n");
}

static void test_non_text_base64(void **state)
{
	expect_conv(S("MIME-Version: 1.0\r\n"
		      "Content-Type: application/octet-stream\r\n"
		      "Content-Transfer-Encoding: binary\r\n"
		      "\r\n"
		      "\xff\x00\x01\r\nabc"),
		    "MIME-Version: 1.0\r\n"
		    "Content-Type: application/octet-stream\r\n"
		    "Content-Transfer-Encoding: base64\r\n"
		    "\r\n"
		    "/wABDQphYmM=");
}

static void test_qp_soft_breaks(void **state)
{
	char in[400], *out = NULL, *line, *save = NULL;
	size_t n = (size_t)snprintf(in, sizeof(in), "Subject: x\r\n\r\n");
	unsigned lines = 0;

	for (unsigned i = 0; i < 100; i++)
		in[n++] = i % 10 ? 'a' : (char)0xe9;
	memcpy(in + n, "\r\n", 2);
	n += 2;
	assert_int_equal(conv(in, n, &out), 0);
	assert_non_null(strstr(out, "=\r\n"));
	for (line = strtok_r(strstr(out, "\r\n\r\n") + 4, "\r\n", &save); line;
	     line = strtok_r(NULL, "\r\n", &save), lines++)
		assert_true(strlen(line) <= 76);
	assert_int_equal(lines, 2); /* 100 bytes, 10 of them =E9: 120 characters, 2 lines */
	free(out);
}

/* Bare CR and LF, and a dash starting a line after a soft break, all survive. */
static void test_qp_odd_bytes(void **state)
{
	char in[200], want[400];
	size_t n = (size_t)snprintf(in, sizeof(in), "Subject: x\r\n\r\n\xe9");
	size_t w = (size_t)snprintf(want, sizeof(want),
				    "Subject: x\r\nMIME-Version: 1.0\r\n"
				    "Content-Type: text/plain; charset=unknown-8bit\r\n"
				    "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9");

	memset(in + n, 'b', 72); /* "=E9" and 72 b: 75 columns, the '-' starts the next line */
	n += 72;
	n += (size_t)snprintf(in + n, sizeof(in) - n, "-x\ra\nb\r\n");
	memset(want + w, 'b', 72);
	w += 72;
	snprintf(want + w, sizeof(want) - w, "=\r\n=2Dx=0Da=0Ab\r\n");
	expect_conv(in, n, want);
}

/* ---- multipart ---- */

#define MP_IN                                                                                      \
	"MIME-Version: 1.0\r\n"                                                                    \
	"Content-Type: multipart/mixed; boundary=\"=_b 1\"\r\n"                                    \
	"Content-Transfer-Encoding: 8bit\r\n"                                                      \
	"\r\n"                                                                                     \
	"preamble\r\n"                                                                             \
	"--=_b 1\r\n"                                                                              \
	"Content-Type: text/plain; charset=iso-8859-1\r\n"                                         \
	"\r\n"                                                                                     \
	"\xe9t\xe9\r\n"                                                                            \
	"--=_b 1  \r\n"                                                                            \
	"Content-Type: image/png\r\n"                                                              \
	"Content-Transfer-Encoding: 8bit\r\n"                                                      \
	"\r\n"                                                                                     \
	"\x89PNG\r\n"                                                                              \
	"--=_b 1\r\n"                                                                              \
	"\r\n"                                                                                     \
	"seven bit\r\n"                                                                            \
	"--=_b 1--\r\n"                                                                            \
	"epilogue\r\n"

static void test_multipart_mixed(void **state)
{
	expect_conv(S(MP_IN), "MIME-Version: 1.0\r\n"
			      "Content-Type: multipart/mixed; boundary=\"=_b 1\"\r\n"
			      "Content-Transfer-Encoding: 7bit\r\n"
			      "\r\n"
			      "preamble\r\n"
			      "--=_b 1\r\n"
			      "Content-Type: text/plain; charset=iso-8859-1\r\n"
			      "Content-Transfer-Encoding: quoted-printable\r\n"
			      "\r\n"
			      "=E9t=E9\r\n"
			      "--=_b 1  \r\n"
			      "Content-Type: image/png\r\n"
			      "Content-Transfer-Encoding: base64\r\n"
			      "\r\n"
			      "iVBORw==\r\n"
			      "--=_b 1\r\n"
			      "\r\n"
			      "seven bit\r\n"
			      "--=_b 1--\r\n"
			      "epilogue\r\n");
}

struct decoded {
	unsigned n;
	char body[4][64];
	size_t len[4];
	enum mime_cte cte[4];
};

static int collect(const struct mime_leaf *l, void *arg)
{
	struct decoded *d = arg;
	size_t k = l->cte == MIME_CTE_QP       ? fuzz_qp_decode(l->body, l->len, d->body[d->n])
		   : l->cte == MIME_CTE_BASE64 ? fuzz_b64_decode(l->body, l->len, d->body[d->n])
					       : (memcpy(d->body[d->n], l->body, l->len), l->len);

	assert_true(d->n < 4 && l->len < 64);
	d->cte[d->n] = l->cte;
	d->len[d->n++] = k;
	return 0;
}

/* The decode check spelled out: each converted part decodes to its original bytes. */
static void test_parts_decode_to_original(void **state)
{
	struct decoded d = {0};
	char *out = NULL;
	size_t n;

	assert_int_equal(mime_to_7bit(S(MP_IN), &out, &n), 0);
	assert_int_equal(mime_walk(out, n, collect, &d), 0);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.cte[0], MIME_CTE_QP);
	assert_int_equal(d.cte[1], MIME_CTE_BASE64);
	assert_int_equal(d.cte[2], MIME_CTE_NONE);
	assert_memory_equal(d.body[0], "\xe9t\xe9", 3);
	assert_int_equal(d.len[0], 3);
	assert_memory_equal(d.body[1], "\x89PNG", 4);
	assert_int_equal(d.len[1], 4);
	assert_memory_equal(d.body[2], "seven bit", 9);
	free(out);
}

static void test_nested_rfc822(void **state)
{
	expect_conv(S("MIME-Version: 1.0\r\n"
		      "Content-Type: multipart/mixed; boundary=outer\r\n"
		      "\r\n"
		      "--outer\r\n"
		      "Content-Type: message/rfc822\r\n"
		      "Content-Transfer-Encoding: 8bit\r\n"
		      "\r\n"
		      "Subject: inner\r\n"
		      "Content-Type: multipart/alternative; boundary=inner\r\n"
		      "\r\n"
		      "--inner\r\n"
		      "Content-Type: text/plain\r\n"
		      "\r\n"
		      "\xc3\xa9\r\n"
		      "--inner--\r\n"
		      "--outer--\r\n"),
		    "MIME-Version: 1.0\r\n"
		    "Content-Type: multipart/mixed; boundary=outer\r\n"
		    "\r\n"
		    "--outer\r\n"
		    "Content-Type: message/rfc822\r\n"
		    "Content-Transfer-Encoding: 7bit\r\n"
		    "\r\n"
		    "Subject: inner\r\n"
		    "Content-Type: multipart/alternative; boundary=inner\r\n"
		    "MIME-Version: 1.0\r\n"
		    "\r\n"
		    "--inner\r\n"
		    "Content-Type: text/plain\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n"
		    "\r\n"
		    "=C3=A9\r\n"
		    "--inner--\r\n"
		    "--outer--\r\n");
}

/* In multipart/digest a part without Content-Type is a message; no close delimiter. */
static void test_digest_default_and_no_close(void **state)
{
	expect_conv(S("MIME-Version: 1.0\r\n"
		      "Content-Type: multipart/digest;\r\n boundary=d\r\n"
		      "\r\n"
		      "--d\r\n"
		      "\r\n"
		      "Subject: m\r\n"
		      "\r\n"
		      "\xe9\r\n"),
		    "MIME-Version: 1.0\r\n"
		    "Content-Type: multipart/digest;\r\n boundary=d\r\n"
		    "\r\n"
		    "--d\r\n"
		    "\r\n"
		    "Subject: m\r\n"
		    "MIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=unknown-8bit\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n"
		    "\r\n"
		    "=E9\r\n");
}

/* A part whose header ends at a line that is not a field (found by fuzzing): the converted
 * embedded message must not be read as more fields of the part. */
static void test_part_header_without_blank_line(void **state)
{
	expect_conv(S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
		      "--o\r\nContent-Type: message/rfc822\r\nnot a field \xe9\r\n--o--\r\n"),
		    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
		    "--o\r\nContent-Type: message/rfc822\r\n\r\n"
		    "MIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=unknown-8bit\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		    "not a field =E9\r\n--o--\r\n");
}

/* A base64 part with a 7-bit but over-long line is re-wrapped when the message is converted. */
static void test_base64_rewrap(void **state)
{
	char in[4096], *out = NULL;
	size_t n =
	    (size_t)snprintf(in, sizeof(in),
			     "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
			     "\r\n--b\r\n\r\n\xe9\r\n--b\r\nContent-Type: application/pdf\r\n"
			     "Content-Transfer-Encoding: base64\r\n\r\n");

	for (unsigned i = 0; i < 1500; i++)
		in[n++] = "QUJD"[i % 4];
	n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n--b--\r\n");
	assert_int_equal(conv(in, n, &out), 0);
	assert_non_null(strstr(out, "base64\r\n\r\nQUJDQUJD"));
	assert_non_null(strstr(out, "QUJD\r\nQUJD")); /* broken every 76 */
	free(out);
}

/* ---- refusals ---- */

static void test_unconvertible(void **state)
{
	/* 8-bit in a header field */
	expect_ret(S("Subject: caf\xc3\xa9\r\n\r\nbody\r\n"), -EBADMSG);
	/* 8-bit in the header of an embedded message */
	expect_ret(S("MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
		     "Subject: \xe9\r\n\r\nx\r\n"),
		   -EBADMSG);
	/* 8-bit in a part header */
	expect_ret(S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
		     "--b\r\nContent-Description: \xe9\r\n\r\nx\r\n--b--\r\n"),
		   -EBADMSG);
	/* raw 8-bit inside an already-encoded body */
	expect_ret(S("MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
		     "\xe9\r\n"),
		   -EBADMSG);
	expect_ret(S("MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\nQQ\xe9\r\n"),
		   -EBADMSG);
	/* multipart without boundary, message/partial, 8-bit preamble */
	expect_ret(S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n\xe9\r\n"),
		   -EBADMSG);
	expect_ret(S("MIME-Version: 1.0\r\nContent-Type: message/partial; id=1\r\n\r\n\xe9\r\n"),
		   -EBADMSG);
	expect_ret(S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
		     "\xe9\r\n--b\r\n\r\nx\r\n--b--\r\n"),
		   -EBADMSG);
}

/* depth nested multiparts, 8-bit text at the bottom. */
static char *nested(unsigned depth, size_t *len)
{
	size_t cap = 128 * (size_t)depth + 256, n = 0;
	char *m = malloc(cap);

	assert_non_null(m);
	n += (size_t)snprintf(m + n, cap - n, "MIME-Version: 1.0\r\n");
	for (unsigned i = 0; i < depth; i++)
		n += (size_t)snprintf(
		    m + n, cap - n, "Content-Type: multipart/mixed; boundary=b%u\r\n\r\n--b%u\r\n",
		    i, i);
	n += (size_t)snprintf(m + n, cap - n, "\r\n\xe9\r\n");
	*len = n;
	return m;
}

static void test_depth_limit(void **state)
{
	char *out = NULL, *m;
	size_t len;

	m = nested(MIME_DEPTH_MAX - 1, &len); /* the text leaf is at depth MIME_DEPTH_MAX - 1 */
	assert_int_equal(conv(m, len, &out), 0);
	assert_non_null(strstr(out, "\r\n\r\n=E9\r\n"));
	free(out);
	free(m);
	m = nested(MIME_DEPTH_MAX, &len);
	expect_ret(m, len, -EBADMSG);
	free(m);
}

#define TEST(fn) cmocka_unit_test(fn)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TEST(test_7bit_untouched),
	    TEST(test_has_8bit_every_position),
	    TEST(test_plain_message_without_mime),
	    TEST(test_mime_text_8bit),
	    TEST(test_non_text_base64),
	    TEST(test_qp_soft_breaks),
	    TEST(test_qp_odd_bytes),
	    TEST(test_multipart_mixed),
	    TEST(test_parts_decode_to_original),
	    TEST(test_nested_rfc822),
	    TEST(test_digest_default_and_no_close),
	    TEST(test_part_header_without_blank_line),
	    TEST(test_base64_rewrap),
	    TEST(test_unconvertible),
	    TEST(test_depth_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
