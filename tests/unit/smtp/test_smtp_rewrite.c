/* test_smtp_rewrite — smtp_hdr_take (X-Riptide-Pool: taken out at injection) and
 * smtp_hdr_rewrite / smtp_rewrite_sort (From/Sender/Reply-To aliases), table-driven.
 *
 * Why: both change a customer's message before it is stored and signed; a byte changed outside
 * the field or the address (a display name, the body, "X-From:") is corruption, and a pool
 * field left in is an internal header leaked to the world. Each row pins one whole message in
 * and the whole message out; every row also goes through the fuzz harness's invariants
 * (included below: the line model of take, identity and length-changing rewrites, untouched
 * body and other fields) with each field and alias length, so unit suite and fuzzer prove the
 * same properties.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/smtp/smtp.h"
#include "tests/fuzz/fuzz_rewrite.c"

#define POOL "X-Riptide-Pool"

struct take_case {
	const char *name;
	const char *in;
	int rc;
	const char *val; /* when rc == 1 */
	const char *out; /* the message after the call */
};

static const struct take_case take_cases[] = {
    {"present", "From: a@b\r\nX-Riptide-Pool: bulk\r\nSubject: s\r\n\r\nbody\r\n", 1, "bulk",
     "From: a@b\r\nSubject: s\r\n\r\nbody\r\n"},
    {"absent", "From: a@b\r\nSubject: s\r\n\r\nbody\r\n", 0, NULL,
     "From: a@b\r\nSubject: s\r\n\r\nbody\r\n"},
    {"name any case, blanks trimmed, space before colon",
     "x-riptide-POOL \t:  \t bulk-2 \t\r\nSubject: s\r\n\r\nb\r\n", 1, "bulk-2",
     "Subject: s\r\n\r\nb\r\n"},
    {"first field of the message", "X-Riptide-Pool: p\r\n\r\n", 1, "p", "\r\n"},
    {"folded value: CRLF + blanks become one space",
     "Subject: s\r\nX-Riptide-Pool: a\r\n\t  b\r\n c\r\nTo: t@u\r\n\r\nx\r\n", 1, "a b c",
     "Subject: s\r\nTo: t@u\r\n\r\nx\r\n"},
    {"value on the continuation line", "X-Riptide-Pool:\r\n  p1\r\nTo: t\r\n\r\n", 1, "p1",
     "To: t\r\n\r\n"},
    {"every occurrence removed, first value kept",
     "X-Riptide-Pool: one\r\nA: 1\r\nX-RIPTIDE-POOL: two\r\n\tfolded\r\nB: 2\r\n"
     "x-riptide-pool: three\r\n\r\nbody\r\n",
     1, "one", "A: 1\r\nB: 2\r\n\r\nbody\r\n"},
    {"only in the header section: the body keeps its line",
     "Subject: s\r\n\r\nX-Riptide-Pool: body\r\n", 0, NULL,
     "Subject: s\r\n\r\nX-Riptide-Pool: body\r\n"},
    {"header and body both have one: only the header's goes",
     "X-Riptide-Pool: hdr\r\n\r\nX-Riptide-Pool: body\r\n", 1, "hdr",
     "\r\nX-Riptide-Pool: body\r\n"},
    {"a continuation line naming the field is not a field",
     "Subject: s\r\n X-Riptide-Pool: no\r\n\r\n", 0, NULL,
     "Subject: s\r\n X-Riptide-Pool: no\r\n\r\n"},
    {"longer names and X- prefixes are other fields",
     "X-Riptide-Pool-Id: 1\r\nX-X-Riptide-Pool: 2\r\nX-Riptide-Pool\r\n\r\n", 0, NULL,
     "X-Riptide-Pool-Id: 1\r\nX-X-Riptide-Pool: 2\r\nX-Riptide-Pool\r\n\r\n"},
    {"no body separator, last line without CRLF", "Subject: s\r\nX-Riptide-Pool: last", 1, "last",
     "Subject: s\r\n"},
    {"bare LF line ends", "A: 1\nX-Riptide-Pool: lf\n\tmore\nB: 2\n\nbody\n", 1, "lf more",
     "A: 1\nB: 2\n\nbody\n"},
    {"a bare CR in the value becomes a space", "X-Riptide-Pool: a\rb\r\n\r\n", 1, "a b", "\r\n"},
    {"empty value", "X-Riptide-Pool:\r\nA: 1\r\n\r\n", 1, "", "A: 1\r\n\r\n"},
    {"no header section", "\r\nX-Riptide-Pool: p\r\n", 0, NULL, "\r\nX-Riptide-Pool: p\r\n"},
};

static void test_take_table(void **state)
{
	char buf[512], val[64];

	(void)state;
	for (size_t i = 0; i < sizeof(take_cases) / sizeof(take_cases[0]); i++) {
		const struct take_case *t = &take_cases[i];
		size_t len = strlen(t->in);
		int rc;

		memcpy(buf, t->in, len);
		strcpy(val, "untouched");
		rc = smtp_hdr_take(buf, &len, POOL, val, sizeof(val));
		if (rc != t->rc)
			fail_msg("%s: rc %d, want %d", t->name, rc, t->rc);
		if (rc == 1 && strcmp(val, t->val) != 0)
			fail_msg("%s: value '%s', want '%s'", t->name, val, t->val);
		if (len != strlen(t->out) || memcmp(buf, t->out, len) != 0)
			fail_msg("%s: message '%.*s', want '%s'", t->name, (int)len, buf, t->out);
	}
}

/* A value that does not fit: -ENAMETOOLONG and the message as it was; one byte more room and
 * it fits (the NUL is counted); bad arguments. */
static void test_take_too_long(void **state)
{
	const char *in = "A: 1\r\nX-Riptide-Pool:  abcdef  \r\nX-Riptide-Pool: x\r\n\r\nbody\r\n";
	char buf[128], val[8];
	size_t len = strlen(in);

	(void)state;
	memcpy(buf, in, len);
	assert_int_equal(smtp_hdr_take(buf, &len, POOL, val, 6), -ENAMETOOLONG);
	assert_int_equal(len, strlen(in));
	assert_memory_equal(buf, in, len);
	assert_int_equal(smtp_hdr_take(buf, &len, POOL, val, 7), 1);
	assert_string_equal(val, "abcdef");
	assert_int_equal(len, strlen("A: 1\r\n\r\nbody\r\n"));
	assert_memory_equal(buf, "A: 1\r\n\r\nbody\r\n", len);
	assert_int_equal(smtp_hdr_take(buf, &len, POOL, val, 0), -EINVAL);
	assert_int_equal(smtp_hdr_take(buf, &len, "", val, sizeof(val)), -EINVAL);
	assert_int_equal(smtp_hdr_take(buf, &len, "X-Pool:", val, sizeof(val)), -EINVAL);
	assert_int_equal(smtp_hdr_take(buf, &len, "X Pool", val, sizeof(val)), -EINVAL);
	assert_int_equal(smtp_hdr_take(NULL, &len, POOL, val, sizeof(val)), -EINVAL);
}

/* Only len bytes are looked at: a field just past the end is not seen. */
static void test_take_bounds(void **state)
{
	char buf[] = "A: 1\r\nX-Riptide-Pool: p\r\n";
	size_t len = 6;
	char val[8];

	(void)state;
	assert_int_equal(smtp_hdr_take(buf, &len, POOL, val, sizeof(val)), 0);
	assert_int_equal(len, 6);
	len = 0;
	assert_int_equal(smtp_hdr_take(buf, &len, POOL, val, sizeof(val)), 0);
}

/* ---- rewrite ---- */

static struct smtp_rewrite_rule rules[] = {
    {"alice@example.com", "news@example.net"},
    {"bob@example.com", "b@x.org"},
    {"\"quoted local\"@example.com", "q@x.org"},
    {"carol@[192.0.2.1]", "carol@example.org"},
};
#define NRULES (unsigned)(sizeof(rules) / sizeof(rules[0]))

struct rw_case {
	const char *name;
	const char *in;
	int rc;
	const char *out; /* NULL: unchanged (rc 0) */
};

static const struct rw_case rw_cases[] = {
    {"simple bare From", "From: alice@example.com\r\n\r\nbody\r\n", 1,
     "From: news@example.net\r\n\r\nbody\r\n"},
    {"angle, display name kept", "From: Alice Smith <alice@example.com>\r\nTo: x@y\r\n\r\nb\r\n", 1,
     "From: Alice Smith <news@example.net>\r\nTo: x@y\r\n\r\nb\r\n"},
    {"quoted display name with @ and <",
     "From: \"alice@example.com <alice@example.com>, x\" <alice@example.com>\r\n\r\n", 1,
     "From: \"alice@example.com <alice@example.com>, x\" <news@example.net>\r\n\r\n"},
    {"comments around and in the display name",
     "From: (alice@example.com) Alice (the <boss>) <alice@example.com> (work)\r\n\r\n", 1,
     "From: (alice@example.com) Alice (the <boss>) <news@example.net> (work)\r\n\r\n"},
    {"bare address with a trailing comment", "Sender: bob@example.com (Bob)\r\n\r\n", 1,
     "Sender: b@x.org (Bob)\r\n\r\n"},
    {"several addresses in Reply-To, others kept",
     "Reply-To: a@z.com, Bob <BOB@example.com>,alice@example.com , c@z.com\r\n\r\n", 2,
     "Reply-To: a@z.com, Bob <b@x.org>,news@example.net , c@z.com\r\n\r\n"},
    {"group syntax: group name is not an address",
     "From: alice@example.com: bob@example.com, Al <alice@example.com>;, bob@example.com\r\n\r\n",
     3, "From: alice@example.com: b@x.org, Al <news@example.net>;, b@x.org\r\n\r\n"},
    {"folded From",
     "From: \"Alice\r\n Smith\"\r\n\t<alice@example.com>,\r\n bob@example.com\r\nTo: t@u\r\n\r\n",
     2, "From: \"Alice\r\n Smith\"\r\n\t<news@example.net>,\r\n b@x.org\r\nTo: t@u\r\n\r\n"},
    {"Sender and From, field names in any case",
     "FROM: <Alice@Example.COM>\r\nsender : bob@example.com\r\nrEpLy-tO: alice@example.com\r\n\r\n",
     3, "FROM: <news@example.net>\r\nsender : b@x.org\r\nrEpLy-tO: news@example.net\r\n\r\n"},
    {"no match", "From: Alice <alice@example.org>\r\nSender: alice@example.com.evil\r\n\r\n", 0,
     NULL},
    {"sub-strings and neighbours do not match",
     "From: xalice@example.com, <alice@example.co>, alice@example.comm\r\n\r\n", 0, NULL},
    {"body untouched", "Subject: s\r\n\r\nFrom: alice@example.com\r\n", 0, NULL},
    {"body untouched after a rewrite",
     "From: alice@example.com\r\n\r\nFrom: alice@example.com\r\nReply-To: bob@example.com\r\n", 1,
     "From: news@example.net\r\n\r\nFrom: alice@example.com\r\nReply-To: bob@example.com\r\n"},
    {"X-From, To, Resent-From untouched",
     "X-From: alice@example.com\r\nTo: alice@example.com\r\nResent-From: alice@example.com\r\n"
     "Cc: bob@example.com\r\n\r\n",
     0, NULL},
    {"a continuation line naming From is not a field",
     "Subject: s\r\n From: alice@example.com\r\n\r\n", 0, NULL},
    {"no body separator, no final CRLF", "Subject: s\r\nFrom: <alice@example.com>", 1,
     "Subject: s\r\nFrom: <news@example.net>"},
    {"quoted local part and domain literal",
     "From: \"Quoted Local\"@example.com, Carol <carol@[192.0.2.1]>\r\n\r\n", 2,
     "From: q@x.org, Carol <carol@example.org>\r\n\r\n"},
    {"obsolete route in the angle brackets",
     "From: Al <@relay.example,@r2.example:alice@example.com>\r\n\r\n", 1,
     "From: Al <@relay.example,@r2.example:news@example.net>\r\n\r\n"},
    {"blanks inside the angle brackets", "From: < alice@example.com >\r\n\r\n", 1,
     "From: < news@example.net >\r\n\r\n"},
    {"comment or space inside an address: left alone",
     "From: alice(x)@example.com, alice @example.com\r\n\r\n", 0, NULL},
    {"unclosed angle bracket: left alone", "From: Al <alice@example.com\r\n\r\n", 0, NULL},
    {"unclosed quote swallows the rest of the field",
     "From: \"Al <alice@example.com>\r\nSender: bob@example.com\r\n\r\n", 1,
     "From: \"Al <alice@example.com>\r\nSender: b@x.org\r\n\r\n"},
    {"empty From, empty group", "From:\r\nReply-To: undisclosed:;\r\n\r\n", 0, NULL},
    {"bare LF", "From: alice@example.com\n\nbody\n", 1, "From: news@example.net\n\nbody\n"},
};

static void test_rewrite_table(void **state)
{
	(void)state;
	assert_int_equal(smtp_rewrite_sort(rules, NRULES), 0);
	for (size_t i = 0; i < sizeof(rw_cases) / sizeof(rw_cases[0]); i++) {
		const struct rw_case *t = &rw_cases[i];
		char *out = (char *)1;
		size_t outlen = 99;
		int rc = smtp_hdr_rewrite(t->in, strlen(t->in), rules, NRULES, &out, &outlen);

		if (rc != t->rc)
			fail_msg("%s: rc %d, want %d", t->name, rc, t->rc);
		if (rc == 0 && (out != NULL || outlen != 0))
			fail_msg("%s: rc 0 but out %p, outlen %zu", t->name, (void *)out, outlen);
		if (rc > 0 && (outlen != strlen(t->out) || memcmp(out, t->out, outlen) != 0))
			fail_msg("%s: got '%.*s', want '%s'", t->name, (int)outlen, out, t->out);
		free(rc > 0 ? out : NULL);
	}
}

/* Rules to sort: invalid ones refused, duplicates refused, and the order is what bisection
 * needs (the first rule of an unsorted array must still be found). */
static void test_rewrite_sort(void **state)
{
	struct smtp_rewrite_rule r[] = {{"z@z", "1@a"}, {"a@a", "2@a"}, {"m@m", "3@a"}};
	struct smtp_rewrite_rule upper[] = {{"A@a", "x@y"}}, empty[] = {{"", "x@y"}};
	struct smtp_rewrite_rule crlf[] = {{"a@a", "x@y\r\nBcc: z@z"}}, nul[] = {{"a@a", NULL}};
	struct smtp_rewrite_rule dup[] = {{"a@a", "x@y"}, {"b@b", "x@y"}, {"a@a", "q@y"}};
	char *out;
	size_t outlen;

	(void)state;
	assert_int_equal(smtp_rewrite_sort(r, 3), 0);
	assert_string_equal(r[0].from, "a@a");
	assert_string_equal(r[2].from, "z@z");
	assert_int_equal(smtp_hdr_rewrite("From: Z@Z\r\n\r\n", 13, r, 3, &out, &outlen), 1);
	assert_memory_equal(out, "From: 1@a\r\n\r\n", outlen);
	free(out);
	assert_int_equal(smtp_rewrite_sort(upper, 1), -EINVAL);
	assert_int_equal(smtp_rewrite_sort(empty, 1), -EINVAL);
	assert_int_equal(smtp_rewrite_sort(crlf, 1), -EINVAL);
	assert_int_equal(smtp_rewrite_sort(nul, 1), -EINVAL);
	assert_int_equal(smtp_rewrite_sort(dup, 3), -EEXIST);
	assert_int_equal(smtp_rewrite_sort(NULL, 0), 0);
	assert_int_equal(smtp_hdr_rewrite("From: a@a\r\n", 11, NULL, 0, &out, &outlen), 0);
	assert_null(out);
	assert_int_equal(smtp_hdr_rewrite("From: a@a\r\n", 11, NULL, 1, &out, &outlen), -EINVAL);
}

/* A few thousand rules: every one is found (bisection over the sorted array), in a message
 * whose From list names many of them. */
static void test_rewrite_many_rules(void **state)
{
	enum { N = 5000 };
	struct smtp_rewrite_rule *r = calloc(N, sizeof(*r));
	char(*from)[32] = calloc(N, 32), (*to)[32] = calloc(N, 32), *msg = malloc(N * 40), *out;
	size_t len = 0, outlen, shorter = 0;

	(void)state;
	assert_non_null(r);
	for (int i = 0; i < N; i++) {
		snprintf(from[(i * 7919) % N], 32, "user%d@d%d.example", i, i % 97);
		snprintf(to[(i * 7919) % N], 32, "alias%d@x.example", i);
	}
	for (int i = 0; i < N; i++)
		r[i] = (struct smtp_rewrite_rule){from[i], to[i]};
	assert_int_equal(smtp_rewrite_sort(r, N), 0);
	len += (size_t)sprintf(msg, "From: ");
	for (int i = 0; i < N; i += 3) {
		len += (size_t)sprintf(msg + len, "%sU <USER%d@D%d.example>", i ? ",\r\n " : "", i,
				       i % 97);
		/* "alias<i>@x.example" for "user<i>@d<k>.example": one byte less when k has 2
		 * digits */
		shorter += i % 97 > 9;
	}
	len += (size_t)sprintf(msg + len, "\r\n\r\nbody\r\n");
	assert_int_equal(smtp_hdr_rewrite(msg, len, r, N, &out, &outlen), (N + 2) / 3);
	assert_int_equal(outlen, len - shorter);
	assert_non_null(memmem(out, outlen, "U <alias4998@x.example>\r\n\r\nbody\r\n", 33));
	free(out);
	free(msg);
	free(to);
	free(from);
	free(r);
}

/* One fuzz input: control byte c, the rule addresses a line each, NUL, the message. */
static void harness(unsigned char c, const char *msg)
{
	static const char rtext[] =
	    "alice@example.com\nbob@example.com\n\"quoted local\"@example.com\n"
	    "carol@[192.0.2.1]\nx@y";
	size_t ml = strlen(msg), n = 1 + sizeof(rtext) + ml;
	uint8_t *in = malloc(n);

	assert_non_null(in);
	in[0] = c;
	memcpy(in + 1, rtext, sizeof(rtext)); /* with its NUL */
	memcpy(in + 1 + sizeof(rtext), msg, ml);
	LLVMFuzzerTestOneInput(in, n);
	free(in);
}

/* Every message of both tables through the harness, for every control byte (field to take,
 * room for its value, alias length); a broken invariant aborts. */
static void test_fuzz_invariants(void **state)
{
	(void)state;
	for (unsigned c = 0; c < 256; c++) {
		for (size_t i = 0; i < sizeof(take_cases) / sizeof(take_cases[0]); i++)
			harness((unsigned char)c, take_cases[i].in);
		for (size_t i = 0; i < sizeof(rw_cases) / sizeof(rw_cases[0]); i++)
			harness((unsigned char)c, rw_cases[i].in);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_take_table),	    cmocka_unit_test(test_take_too_long),
	    cmocka_unit_test(test_take_bounds),	    cmocka_unit_test(test_rewrite_table),
	    cmocka_unit_test(test_rewrite_sort),    cmocka_unit_test(test_rewrite_many_rules),
	    cmocka_unit_test(test_fuzz_invariants),
	};
	return cmocka_run_group_tests_name("smtp_rewrite", tests, NULL, NULL);
}
