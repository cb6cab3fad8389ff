/* test_smtpc — unit tests for engine/smtpc: a real client session on a real loop, connecting
 * over a UNIX socket in a temp dir to a server scripted by the test.
 *
 * Why this shape: smtpc's promises are about what goes on the wire (one write for a pipelined
 * group, lock-step without PIPELINING, HELO fallback, RSET instead of DATA, dot-stuffing) and
 * about what the owner is told (per-recipient replies, the transaction's deciding reply and
 * stage, maybe_delivered, why the session closed). Both only show against a real peer, so the
 * loop runs on the test thread and the scripted peer of tests/unit/peer plays the server (send
 * replies / read N command lines / read once / read to EOF / close / run a function on the loop
 * thread). The peer only records what it read; every assertion runs on the test thread after
 * the loop stops (from ops->closed), so cmocka's longjmp never crosses threads.
 */
#include "tests/unit/smtpc/smtpc_fx.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* ---- tests ---- */

static void test_pipelined_mixed_rcpts(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(MAIL_CMD RCPT_B "RCPT TO:<c@y.test>\r\nRCPT TO:<d@y.test>\r\nDATA\r\n"),
	    SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 No such user\r\n250 2.1.5 Ok\r\n"
		 "354 go ahead\r\n"),
	    DOT_BODY(),
	    SEND("250 2.0.0 Ok: queued as Q1\r\n"),
	    BYE,
	    {0},
	};

	fx_run(f, 3, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 2);
	assert_int_equal(f->res_reply.enh_class, 2);
	assert_string_equal(f->res_reply.text, "Ok: queued as Q1");
	assert_string_equal(f->log, "rcpt 0 250;rcpt 1 550;rcpt 2 250;done;");
	assert_null(f->info.err);
	assert_true(f->info.was_ready);
	assert_int_equal(f->info.txns, 1);
}

static void test_lockstep_without_pipelining(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PLAIN),
	    ONCE(MAIL_CMD),
	    QUIET(50), /* nothing more until MAIL is answered */
	    SEND("250 2.1.0 Ok\r\n"),
	    ONCE(RCPT_B),
	    QUIET(20),
	    SEND("250 2.1.5 Ok\r\n"),
	    ONCE("RCPT TO:<c@y.test>\r\n"),
	    SEND("250 2.1.5 Ok\r\n"),
	    DATA_TO_BYE(),
	    {0},
	};

	fx_run(f, 2, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 2);
	assert_string_equal(f->log, "rcpt 0 250;rcpt 1 250;done;");
}

static void test_all_rcpts_rejected_rset(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PLAIN),
	    ONCE(MAIL_CMD),
	    SEND("250 2.1.0 Ok\r\n"),
	    ONCE(RCPT_B),
	    SEND("550 5.1.1 No such user\r\n"),
	    ONCE("RCPT TO:<c@y.test>\r\n"),
	    SEND("550 5.1.1 No such user either\r\n"),
	    ONCE("RSET\r\n"), /* not DATA */
	    SEND_OK(),
	    BYE,
	    {0},
	};

	fx_run(f, 2, steps);
	fx_assert_txn(f, 550, SMTPC_STAGE_RCPT, 0);
	assert_string_equal(f->res_reply.text, "No such user either");
	assert_string_equal(f->log, "rcpt 0 550;rcpt 1 550;done;");
}

static void test_pipelined_all_rejected_rset(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(GROUP_1),
	    SEND("250 2.1.0 Ok\r\n550 5.1.1 No such user\r\n554 5.5.1 No valid recipients\r\n"),
	    ONCE("RSET\r\n"),
	    SEND_OK(),
	    BYE,
	    {0},
	};

	fx_run(f, 1, steps);
	fx_assert_txn(f, 550, SMTPC_STAGE_RCPT, 0);
}

static void test_helo_fallback(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO("502 5.5.2 EHLO not implemented\r\n"),
	    ONCE("HELO client.test\r\n"),
	    SEND("250 mx.test\r\n"),
	    BYE,
	    {0},
	};

	f->give_txn = false;
	fx_run(f, 3, steps);
	fx_assert_idle_close(f);
	assert_int_equal(f->ext_at_next, 0);
	assert_int_equal(f->txn_dones, 0);
}

static void test_dot_stuffing(void **state)
{
	struct fx *f = *state;
	const char *body = ".a\r\nb\r\n.\r\n..c\r\nend"; /* no final CRLF */
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE("MAIL FROM:<a@x.test> SIZE=18\r\n" RCPT_B "DATA\r\n"),
	    ACCEPT_1(),
	    LINES(6, "..a\r\nb\r\n..\r\n...c\r\nend\r\n.\r\n"),
	    SEND_OK(),
	    BYE,
	    {0},
	};

	f->txn.body = body;
	f->txn.body_len = strlen(body);
	assert_int_equal(f->txn.body_len, 18);
	fx_run(f, 1, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
}

static void test_drop_after_dot_maybe_delivered(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {TO_DOT(), CLOSE(), {0}};

	fx_run(f, 1, steps);
	fx_assert_txn_err(f, NULL, SMTPC_STAGE_DOT, true);
	assert_string_equal(f->info.err, "connection closed by peer");
}

static void test_greeting_421(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    SEND("421 4.3.2 Too busy, go away\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	fx_run(f, 3, steps);
	assert_int_equal(f->nexts, 0);
	assert_int_equal(f->txn_dones, 0);
	assert_non_null(f->info.err);
	assert_int_equal(f->info.state, SMTPC_S_GREETING);
	assert_false(f->info.was_ready);
	assert_int_equal(f->info_reply.code, 421);
	assert_int_equal(f->info_reply.enh_class, 4);
	assert_int_equal(f->info_reply.enh_subject, 3);
	assert_int_equal(f->info_reply.enh_detail, 2);
	assert_string_equal(f->info_reply.text, "Too busy, go away");
}

static void test_idle_timeout_quits(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE),
	    BYE, /* QUIT comes from the idle timer, not from the owner */
	    {0},
	};

	f->give_txn = false;
	f->quit_when_idle = false;
	f->cfg.timeouts.idle_ms = 50;
	fx_run(f, 3, steps);
	fx_assert_idle_close(f);
	assert_int_equal(f->info.state, SMTPC_S_QUIT);
}

static void test_abort_during_txn(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE), /* then the group, never answered */
	    ONCE(GROUP_1),
	    CALL(fx_do_abort), /* the client aborts while waiting for the MAIL reply */
	    EXPECT_EOF(""),    /* and closes */
	    {0},
	};

	fx_run(f, 1, steps);
	fx_assert_txn_err(f, "aborted", SMTPC_STAGE_MAIL, false);
	assert_string_equal(f->info.err, "aborted");
	assert_string_equal(f->log, "done;");
}

static void test_mail_rejected_pipelined_drains(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(GROUP_1),
	    SEND("550 5.7.1 Sender rejected\r\n503 5.5.1 Need MAIL\r\n503 5.5.1 Need MAIL\r\n"),
	    BYE, /* the pipelined replies were drained: no RSET needed, no DATA body */
	    {0},
	};

	fx_run(f, 1, steps);
	fx_assert_txn(f, 550, SMTPC_STAGE_MAIL, 0);
	assert_string_equal(f->log, "done;"); /* no rcpt callback after a failed MAIL */
}

static void test_421_mid_transaction(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(MAIL_CMD RCPT_B "RCPT TO:<c@y.test>\r\nDATA\r\n"),
	    SEND("250 2.1.0 Ok\r\n421 4.7.0 Try again later\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	fx_run(f, 2, steps);
	fx_assert_txn(f, 421, SMTPC_STAGE_RCPT, 0);
	assert_string_equal(f->log, "done;");
	assert_int_equal(f->info_reply.code, 421);
	assert_non_null(f->info.err);
}

/* A body far larger than the socket buffer: 300 KB without dots (one segment, so a short send
 * lands inside it), then 30000 lines that each need a stuffed dot (many more segments than one
 * sendmsg's iovec array), then another 100 KB. */
#define BIG_PLAIN1 3000u
#define BIG_DOTS   30000u
#define BIG_PLAIN2 1000u
#define BIG_LINES  (BIG_PLAIN1 + BIG_DOTS + BIG_PLAIN2)

static void big_line(unsigned i, char *body, size_t *bn, char *wire, size_t *wn)
{
	if (i < BIG_PLAIN1 || i >= BIG_PLAIN1 + BIG_DOTS) {
		snprintf(body + *bn, 101, "%098u\r\n", i);
		memcpy(wire + *wn, body + *bn, 100);
		*bn += 100;
		*wn += 100;
		return;
	}
	snprintf(body + *bn, 9, ".%05u\r\n", i);
	wire[(*wn)++] = '.';
	memcpy(wire + *wn, body + *bn, 8);
	*bn += 8;
	*wn += 8;
}

static void build_big(struct fx *f)
{
	size_t cap = (size_t)BIG_LINES * 100 + 4, bn = 0, wn = 0;
	char *b = util_xmalloc(cap), *w = util_xmalloc(cap + BIG_DOTS);

	for (unsigned i = 0; i < BIG_LINES; i++)
		big_line(i, b, &bn, w, &wn);
	memcpy(w + wn, ".\r\n", 4);
	f->big = b;
	f->big_wire = w;
	f->txn.body = b;
	f->txn.body_len = bn;
	snprintf(f->group, sizeof(f->group), "MAIL FROM:<a@x.test> SIZE=%zu\r\n" RCPT_B "DATA\r\n",
		 bn);
}

static void test_large_stuffed_body(void **state)
{
	struct fx *f = *state;

	build_big(f);
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(f->group),
	    ACCEPT_1(),
	    LINES(BIG_LINES + 1, f->big_wire),
	    SEND_OK(),
	    BYE,
	    {0},
	};

	fx_run(f, 1, steps);
	assert_int_equal(f->txn.body_len, 640000);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
}

static void test_send_on_idle_session(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    /* next() returns NULL; smtpc_send follows from a timer */
	    HELLO(EHLO_PIPE),
	    ONCE(GROUP_1),
	    /* slower than idle_ms: the idle deadline must not apply to MAIL */
	    QUIET(500),
	    ACCEPT_1(),
	    DOT_BODY(),
	    SEND_OK(),
	    BYE,
	    {0},
	};

	f->give_txn = false;
	f->quit_when_idle = false;
	f->send_later = true;
	f->send_op.cb = fx_send_timer_cb;
	f->cfg.timeouts.idle_ms = 300;
	fx_run(f, 1, steps);
	assert_int_equal(f->send_ret, 0);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
	assert_null(f->info.err);
}

static void test_ehlo_reply_split(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO("250-mx.test\r\n250-PIPE"),
	    /* a partial reply: the client waits */
	    QUIET(30),
	    SEND("LINING\r\n250 SIZE 12345\r\n"),
	    BYE,
	    {0},
	};

	f->give_txn = false;
	fx_run(f, 3, steps);
	assert_int_equal(f->nexts, 1);
	assert_true(f->ext_at_next & SMTP_EXT_PIPELINING);
	assert_int_equal(f->size_at_next, 12345);
}

static void test_abort_after_dot_maybe_delivered(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {TO_DOT(), CALL(fx_do_abort), EXPECT_EOF(""), {0}};

	fx_run(f, 1, steps);
	fx_assert_txn_err(f, "aborted", SMTPC_STAGE_DOT, true);
}

static void test_no_pipelining_config_and_8bitmime(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE), /* offered, but the config says lock-step */
	    ONCE("MAIL FROM:<a@x.test> SIZE=21 BODY=8BITMIME\r\n"),
	    QUIET(30),
	    SEND("250 2.1.0 Ok\r\n"),
	    ONCE(RCPT_B),
	    SEND("250 2.1.5 Ok\r\n"),
	    DATA_TO_BYE(),
	    {0},
	};

	f->cfg.no_pipelining = true;
	f->txn.eightbit = true;
	fx_run(f, 1, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
}

static void test_max_txns_then_quit(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE("MAIL FROM:<a@x.test> SIZE=0\r\n" RCPT_B "DATA\r\n"),
	    ACCEPT_1(),
	    LINES(1, ".\r\n"), /* empty body: just the terminator */
	    SEND_OK(),
	    BYE, /* max_txns reached: QUIT without asking next() */
	    {0},
	};

	f->cfg.max_txns = 1;
	f->quit_when_idle = false;
	f->txn.body = "";
	f->txn.body_len = 0;
	fx_run(f, 1, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
	assert_int_equal(f->nexts, 1);
	assert_int_equal(f->info.txns, 1);
}

static void test_invalid_txn_from_next(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE),
	    BYE, /* nothing of the invalid transaction reaches the wire */
	    {0},
	};

	f->txn.sender = "a@x.test>\r\nRCPT TO:<evil@x.test";
	fx_run(f, 3, steps);
	fx_assert_txn_err(f, "invalid transaction", SMTPC_STAGE_MAIL, false);
	assert_int_equal(f->nexts, 2);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TEST(test_pipelined_mixed_rcpts),
	    TEST(test_lockstep_without_pipelining),
	    TEST(test_all_rcpts_rejected_rset),
	    TEST(test_pipelined_all_rejected_rset),
	    TEST(test_helo_fallback),
	    TEST(test_dot_stuffing),
	    TEST(test_drop_after_dot_maybe_delivered),
	    TEST(test_greeting_421),
	    TEST(test_idle_timeout_quits),
	    TEST(test_abort_during_txn),
	    TEST(test_mail_rejected_pipelined_drains),
	    TEST(test_421_mid_transaction),
	    TEST(test_large_stuffed_body),
	    TEST(test_send_on_idle_session),
	    TEST(test_ehlo_reply_split),
	    TEST(test_abort_after_dot_maybe_delivered),
	    TEST(test_no_pipelining_config_and_8bitmime),
	    TEST(test_max_txns_then_quit),
	    TEST(test_invalid_txn_from_next),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
