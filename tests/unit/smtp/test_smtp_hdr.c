/* test_smtp_hdr — table-driven tests of smtp_count_received (loop detection input).
 *
 * Why: a miscount either loops mail forever or refuses good mail, and the header/body boundary
 * and folded lines are exactly where a naive line scan goes wrong; each row pins one case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "engine/smtp/smtp.h"

struct rcv_case {
	const char *msg;
	unsigned want;
};

static const struct rcv_case rcv_cases[] = {
    {"", 0},
    {"\r\n", 0},
    {"Subject: x\r\n\r\nbody\r\n", 0},
    {"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: x\r\n\r\nbody\r\n", 1},
    {"Received: a\r\nreceived: b\r\nRECEIVED: c\r\nReCeIvEd : d\r\nReceived\t: e\r\n\r\n", 5},
    /* folded: one field over three lines, the continuation naming "Received:" is not a field */
    {"Received: from a\r\n\tby b\r\n Received: not a field\r\nSubject: x\r\n\r\n", 1},
    /* after the empty line: body text, not counted */
    {"Received: a\r\n\r\nReceived: in the body\r\nReceived: again\r\n", 1},
    /* no header section: the message starts with the empty line */
    {"\r\nReceived: a\r\nReceived: b\r\n", 0},
    /* other names that start alike */
    {"Received-SPF: pass\r\nReceivedX: y\r\nX-Received: z\r\nReceived\r\n\r\n", 0},
    {"Received:\r\n\r\n", 1},
    /* no empty line at all: the whole text is the header section; last line without CRLF */
    {"Subject: x\r\nReceived: a\r\nReceived: b", 2},
    /* bare LF line ends are tolerated */
    {"Received: a\nReceived: b\n\nReceived: c\n", 2},
};

static void test_count_received_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rcv_cases) / sizeof(rcv_cases[0]); i++) {
		const struct rcv_case *t = &rcv_cases[i];
		unsigned got = smtp_count_received(t->msg, strlen(t->msg));

		if (got != t->want)
			fail_msg("case %zu: got %u, want %u", i, got, t->want);
	}
}

/* Only len bytes are read: a "Received:" just past the end is not seen. */
static void test_count_received_bounds(void **state)
{
	const char *m = "Received: a\r\nReceived: b\r\n";

	(void)state;
	assert_int_equal(smtp_count_received(m, 13), 1);
	assert_int_equal(smtp_count_received(m, 21), 1); /* "Received" cut before the colon */
	assert_int_equal(smtp_count_received(m, strlen(m)), 2);
	assert_int_equal(smtp_count_received(NULL, 0), 0);
}

/* Many trace fields, as a looping message accumulates them. */
static void test_count_received_many(void **state)
{
	static char buf[100 * 32];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "Received: hop %d\r\n", i);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\nbody\r\n");
	assert_int_equal(smtp_count_received(buf, n), 100);
}

/* The trace header: exact layout for TCP (address literal) and UNIX clients, one recipient
 * named with "for", control bytes in the client's strings neutralised, too small a buffer -> 0,
 * and the result counts as one Received: field. */
static void test_received_format(void **state)
{
	char out[512];
	struct smtp_received r = {.helo = "client.test",
				  .addr_lit = "[127.0.0.1]",
				  .by = "mx.riptide.test",
				  .with = "ESMTP",
				  .id = "0123456789abcdef0123456789abcdef",
				  .when = 1796004654};
	const char *want = "Received: from client.test ([127.0.0.1])\r\n"
			   "\tby mx.riptide.test (riptide) with ESMTP id "
			   "0123456789abcdef0123456789abcdef;\r\n"
			   "\tMon, 30 Nov 2026 02:10:54 +0000\r\n";
	size_t n;

	(void)state;
	n = smtp_received_format(out, sizeof(out), &r);
	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
	assert_int_equal(smtp_count_received(out, n), 1);
	r.addr_lit = NULL;
	r.helo = "bad\r\nX-Injected: 1";
	r.for_rcpt = "a@b.test";
	r.with = "UTF8SMTP";
	n = smtp_received_format(out, sizeof(out), &r);
	assert_string_equal(out, "Received: from bad??X-Injected: 1\r\n"
				 "\tby mx.riptide.test (riptide) with UTF8SMTP id "
				 "0123456789abcdef0123456789abcdef\r\n"
				 "\tfor <a@b.test>;\r\n"
				 "\tMon, 30 Nov 2026 02:10:54 +0000\r\n");
	r.helo = "";
	assert_true(smtp_received_format(out, sizeof(out), &r) > 0);
	assert_non_null(strstr(out, "from unknown\r\n"));
	assert_int_equal(smtp_received_format(out, 40, &r), 0);
	assert_int_equal(smtp_received_format(out, 0, &r), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_count_received_table),
	    cmocka_unit_test(test_count_received_bounds),
	    cmocka_unit_test(test_count_received_many),
	    cmocka_unit_test(test_received_format),
	};
	return cmocka_run_group_tests_name("smtp_hdr", tests, NULL, NULL);
}
