/* test_smtpc_wire — unit tests for engine/smtpc: what a next hop may receive. No control byte
 * ever reaches the wire (addresses, the HELO name, every command line); an 8-bit body goes to a
 * hop without 8BITMIME only converted to 7 bit (or not at all: a local 554 5.6.3); SMTPUTF8 is
 * passed on when offered, and without it non-ASCII addresses get a local 553 5.6.7 while ASCII
 * recipients still go.
 *
 * Why this shape: the same real session and scripted server as test_smtpc.c (smtpc_fx), so a
 * test asserts the exact bytes the server read and exactly what the owner was told (reply.local
 * marks the replies smtpc made up). The control-byte checks also test smtpc's internal
 * predicates directly (white-box: smtpc_types.h) over every byte value.
 */
#include "engine/smtpc/smtpc_types.h" /* white-box: smtpc_io_line_ok, smtpc_txn_valid */
#include "tests/unit/smtpc/smtpc_fx.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* ---- control bytes never reach the wire ---- */

#define L(lit, good)                                                                               \
	{                                                                                          \
		lit, sizeof(lit) - 1, good                                                         \
	}

static void test_line_ok_table(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		bool ok;
	} t[] = {
	    L("MAIL FROM:<a@x.test>\r\n", true),
	    L("RCPT TO:<caf\xc3\xa9@y.test>\r\n", true), /* UTF-8 passes */
	    L("QUIT\r\nRSET\r\n", false),		 /* two lines */
	    L("QUIT\n", false),
	    L("QUIT\r", false),
	    L("QUIT", false),
	    L("", false),
	    L("\r\n", true), /* an empty line is one line */
	    L("A\rB\r\n", false),
	    L("A\nB\r\n", false),
	    L("A\0B\r\n", false),
	    L("A\tB\r\n", false),
	    L("A\x1b\r\n", false),
	    L("A\x7f\r\n", false),
	    L("A\x1f\r\n", false),
	};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		assert_int_equal(smtpc_io_line_ok(t[i].s, t[i].n), t[i].ok);
}

static void test_txn_valid_control_bytes(void **state)
{
	struct fx *f = *state;
	char addr[32];

	assert_true(smtpc_txn_valid(&f->txn));
	for (int c = 1; c <= 0x7f; c++) {
		bool bad = c < 0x20 || c == 0x7f || c == '<' || c == '>';

		snprintf(addr, sizeof(addr), "a%cb@y.test", c);
		f->txn.sender = addr;
		assert_int_equal(smtpc_txn_valid(&f->txn), !bad);
		f->txn.sender = "a@x.test";
		f->rcpts[1] = addr;
		assert_int_equal(smtpc_txn_valid(&f->txn), !bad);
		f->rcpts[1] = "c@y.test";
	}
	f->rcpts[2] = "d\xc3\xa9@y.test"; /* non-ASCII is not a control byte */
	assert_true(smtpc_txn_valid(&f->txn));
}

static void test_helo_control_byte_refused(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {"client\ttest", "client\x7f", "a\rb", "a\nb", "x\x01"};
	struct loop *l;

	assert_int_equal(loop_new(&l, 8), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		f->cfg.helo_name = bad[i];
		assert_int_equal(smtpc_new(l, &f->cfg, &f->c), -EINVAL);
	}
	loop_free(l);
}

static void test_control_byte_rcpt_from_next(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE),
	    BYE, /* nothing of the transaction reaches the wire */
	    {0},
	};

	f->rcpts[1] = "c\x01@y.test";
	fx_run(f, 2, steps);
	fx_assert_txn_err(f, "invalid transaction", SMTPC_STAGE_MAIL, false);
	assert_string_equal(f->log, "done;");
}

/* On the loop thread while a transaction waits for its MAIL reply: a command line with a
 * control byte is offered to the output path (as a bug in smtpc would). */
static void bad_line_out(void *user)
{
	struct fx *f = user;

	smtpc_io_outf(f->c, "NOOP %s\r\n", "a\rRSET");
}

static void test_bad_command_line_closes(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(GROUP_1),
	    CALL(bad_line_out),
	    EXPECT_EOF(""), /* never sent: the session closed */
	    {0},
	};

	fx_run(f, 1, steps);
	fx_assert_txn_err(f, "refused to send a command line with a control byte", SMTPC_STAGE_MAIL,
			  false);
	assert_string_equal(f->info.err, "refused to send a command line with a control byte");
}

/* ---- 8BITMIME downgrade and SMTPUTF8 ---- */

#define EHLO_PIPE_7BIT "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100000\r\n"
#define EHLO_UTF8      "250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
#define BODY8                                                                                      \
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"                   \
	"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "            \
	"8bit\r\n\r\n"                                                                             \
	"caf\xc3\xa9\r\n"                                                                          \
	"--b\r\nContent-Type: application/octet-stream\r\n\r\n\xff\xfe\r\n--b--\r\n"
#define BODY8_7BIT                                                                                 \
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"                   \
	"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"                                       \
	"Content-Transfer-Encoding: quoted-printable\r\n\r\n"                                      \
	"caf=C3=A9\r\n"                                                                            \
	"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"   \
	"\r\n//4=\r\n--b--\r\n"

static unsigned count_lines(const char *p)
{
	unsigned n = 0;

	for (; *p; p++)
		n += *p == '\n';
	return n;
}

/* The owner's body is `body`; the server must read MAIL with SIZE=strlen(wire body) and
 * `params`, RCPT b, DATA (f->group) and then `wire` with the final dot (f->wire). */
static void expect_body(struct fx *f, const char *body, const char *wire, const char *params)
{
	f->txn.body = body;
	f->txn.body_len = strlen(body);
	snprintf(f->group, sizeof(f->group),
		 "MAIL FROM:<a@x.test> SIZE=%zu%s\r\n" RCPT_B "DATA\r\n", strlen(wire), params);
	snprintf(f->wire, sizeof(f->wire), "%s.\r\n", wire);
}

static void test_8bit_body_converted_for_7bit_hop(void **state)
{
	struct fx *f = *state;

	expect_body(f, BODY8, BODY8_7BIT, "");
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE_7BIT),
	    ONCE(f->group),
	    ACCEPT_1(),
	    LINES(count_lines(f->wire), f->wire),
	    SEND_OK(),
	    BYE,
	    {0},
	};

	f->txn.eightbit = true;
	fx_run(f, 1, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
	assert_false(f->res_reply.local);
}

static void test_8bit_body_as_is_with_8bitmime(void **state)
{
	struct fx *f = *state;

	expect_body(f, BODY8, BODY8, " BODY=8BITMIME");
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(f->group),
	    ACCEPT_1(),
	    LINES(count_lines(f->wire), f->wire),
	    SEND_OK(),
	    BYE,
	    {0},
	};

	f->txn.eightbit = true;
	fx_run(f, 1, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
}

/* A local outcome: the reply smtpc made up, err NULL, nothing accepted, not maybe delivered. */
static void assert_local(const struct fx *f, int code, int subject, int detail,
			 enum smtpc_stage stage)
{
	fx_assert_txn(f, code, stage, 0);
	assert_true(f->res_reply.local);
	assert_int_equal(f->res_reply.enh_class, 5);
	assert_int_equal(f->res_reply.enh_subject, subject);
	assert_int_equal(f->res_reply.enh_detail, detail);
}

static void test_unconvertible_body_554_no_mail(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE_7BIT),
	    BYE, /* no MAIL: the server only sees QUIT */
	    {0},
	};

	f->txn.body = "Subject: caf\xc3\xa9\r\n\r\nx\r\n"; /* 8-bit header: no MIME for that */
	f->txn.body_len = strlen(f->txn.body);
	fx_run(f, 2, steps);
	assert_local(f, 554, 6, 3, SMTPC_STAGE_MAIL);
	assert_string_equal(f->res_reply.text, "Conversion to 7bit not possible");
	assert_string_equal(f->log, "done;"); /* no rcpt callback */
	assert_int_equal(f->info.txns, 1);
}

/* smtpc_send with a transaction that fails locally: reported later, from the loop. */
static void test_local_outcome_not_inside_send(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {HELLO(EHLO_PIPE_7BIT), BYE, {0}};

	f->give_txn = false;
	f->quit_when_idle = false;
	f->send_later = true;
	f->send_op.cb = fx_send_timer_cb;
	f->txn.body = "Subject: \xe9\r\n\r\nx\r\n";
	f->txn.body_len = strlen(f->txn.body);
	fx_run(f, 1, steps);
	assert_int_equal(f->send_ret, 0);
	assert_int_equal(f->dones_in_send, 0);
	assert_local(f, 554, 6, 3, SMTPC_STAGE_MAIL);
}

static void test_smtputf8_offered_param(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_UTF8),
	    ONCE("MAIL FROM:<a@x.test> SMTPUTF8\r\nRCPT TO:<d\xc3\xa9@y.test>\r\nDATA\r\n"),
	    ACCEPT_1(),
	    DOT_BODY(),
	    SEND_OK(),
	    BYE,
	    {0},
	};

	f->rcpts[0] = "d\xc3\xa9@y.test";
	f->txn.smtputf8 = true;
	fx_run(f, 1, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
}

/* No SMTPUTF8 at the server: the non-ASCII recipient gets a local 553 5.6.7 first, the ASCII
 * ones are sent without the parameter (lock-step, so the index mapping shows). */
static void test_smtputf8_missing_ascii_rcpts_sent(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PLAIN),
	    ONCE(MAIL_CMD),
	    SEND("250 2.1.0 Ok\r\n"),
	    ONCE(RCPT_B),
	    SEND("250 2.1.5 Ok\r\n"),
	    ONCE("RCPT TO:<d@y.test>\r\n"),
	    SEND("550 5.1.1 No such user\r\n"),
	    DATA_TO_BYE(),
	    {0},
	};

	f->rcpts[1] = "c\xc3\xa9@y.test";
	f->txn.smtputf8 = true;
	fx_run(f, 3, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
	assert_string_equal(f->log, "rcpt 1 553L;rcpt 0 250;rcpt 2 550;done;");
}

static void test_smtputf8_missing_sender_553(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {HELLO(EHLO_PIPE), BYE, {0}};

	f->txn.sender = "\xc3\xa9@x.test";
	f->txn.smtputf8 = true;
	fx_run(f, 2, steps);
	assert_local(f, 553, 6, 7, SMTPC_STAGE_MAIL);
	assert_string_equal(f->log, "done;");
}

/* UTF-8 in the header of an SMTPUTF8 message: no recipient can go (no header downgrade). */
static void test_smtputf8_missing_utf8_header_553(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {HELLO(EHLO_PIPE), BYE, {0}};

	f->txn.body = "Subject: \xc3\xa9t\xc3\xa9\r\n\r\nx\r\n";
	f->txn.body_len = strlen(f->txn.body);
	f->txn.smtputf8 = true;
	fx_run(f, 2, steps);
	assert_local(f, 553, 6, 7, SMTPC_STAGE_RCPT);
	assert_string_equal(f->log, "rcpt 0 553L;rcpt 1 553L;done;");
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TEST(test_line_ok_table),
	    TEST(test_txn_valid_control_bytes),
	    TEST(test_helo_control_byte_refused),
	    TEST(test_control_byte_rcpt_from_next),
	    TEST(test_bad_command_line_closes),
	    TEST(test_8bit_body_converted_for_7bit_hop),
	    TEST(test_8bit_body_as_is_with_8bitmime),
	    TEST(test_unconvertible_body_554_no_mail),
	    TEST(test_local_outcome_not_inside_send),
	    TEST(test_smtputf8_offered_param),
	    TEST(test_smtputf8_missing_ascii_rcpts_sent),
	    TEST(test_smtputf8_missing_sender_553),
	    TEST(test_smtputf8_missing_utf8_header_553),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
