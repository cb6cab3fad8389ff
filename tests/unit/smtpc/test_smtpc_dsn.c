/* test_smtpc_dsn — unit tests for the DSN extension (RFC 3461) on engine/smtpc's side: the exact
 * MAIL and RCPT lines a next hop reads with and without DSN offered, xtext encoding of ENVID
 * and ORCPT, the per-recipient values following the recipient they belong to (also when some
 * recipients were refused locally), what is left out rather than sent, and result.dsn /
 * smtpc_peer_dsn telling the owner whether the hop took the parameters.
 *
 * Why this shape: the same real session and scripted server as test_smtpc.c and
 * test_smtpc_wire.c (smtpc_fx), so each test pins the bytes the server read.
 */
#include "tests/unit/smtpc/smtpc_fx.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define EHLO_DSN	  "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250-8BITMIME\r\n250 DSN\r\n"
#define EHLO_DSN_LOCKSTEP "250-mx.test\r\n250-SIZE 100000\r\n250-8BITMIME\r\n250 DSN\r\n"
#define ACCEPT_3                                                                                   \
	SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")

static const uint8_t notify3[3] = {SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, 0, SMTP_NOTIFY_NEVER};
static const char *const orcpts3[3] = {"rfc822;b+x@y.test", "", "rfc822;\"d d\"@y.test"};

/* The owner's transaction with DSN values on every field. */
static void dsn_txn(struct fx *f)
{
	f->txn.ret = SMTP_RET_HDRS;
	f->txn.envid = "id+1= x";
	f->txn.notify = notify3;
	f->txn.orcpts = orcpts3;
}

/* Offered: RET/ENVID after SIZE/BODY on MAIL, NOTIFY/ORCPT per recipient, xtext-encoded. */
static void test_dsn_offered(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_DSN),
	    ONCE("MAIL FROM:<a@x.test> SIZE=21 BODY=8BITMIME RET=HDRS ENVID=id+2B1+3D+20x\r\n"
		 "RCPT TO:<b@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx@y.test\r\n"
		 "RCPT TO:<c@y.test>\r\n"
		 "RCPT TO:<d@y.test> NOTIFY=NEVER ORCPT=rfc822;\"d+20d\"@y.test\r\n"
		 "DATA\r\n"),
	    ACCEPT_3,
	    DOT_BODY(),
	    SEND_OK(),
	    BYE,
	    {0},
	};

	dsn_txn(f);
	f->txn.eightbit = true;
	fx_run(f, 3, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 3);
	assert_true(f->res.dsn);
	assert_true(f->ext_at_next & SMTP_EXT_DSN);
}

/* Not offered: none of the parameters is sent, and the owner is told (result.dsn false). */
static void test_dsn_not_offered(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(MAIL_CMD RCPT_B "RCPT TO:<c@y.test>\r\nRCPT TO:<d@y.test>\r\nDATA\r\n"),
	    ACCEPT_3,
	    DOT_BODY(),
	    SEND_OK(),
	    BYE,
	    {0},
	};

	dsn_txn(f);
	fx_run(f, 3, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 3);
	assert_false(f->res.dsn);
}

/* EHLO refused, HELO accepted: no extension at all, so no DSN parameter. */
static void test_dsn_helo_fallback(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    SEND(GREET),
	    ONCE(EHLO_CMD),
	    SEND("502 5.5.1 no EHLO here\r\n"),
	    ONCE("HELO client.test\r\n"),
	    SEND("250 mx.test\r\n"),
	    ONCE("MAIL FROM:<a@x.test>\r\n"),
	    SEND("250 2.1.0 Ok\r\n"),
	    ONCE(RCPT_B),
	    SEND("250 2.1.5 Ok\r\n"),
	    DATA_TO_BYE(),
	    {0},
	};

	dsn_txn(f);
	fx_run(f, 1, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
	assert_false(f->res.dsn);
}

/* Lock-step, and the middle recipient refused locally (it needs SMTPUTF8, not offered): the
 * others carry their own NOTIFY/ORCPT, not their neighbour's. */
static void test_dsn_follows_rcpt_index(void **state)
{
	static const uint8_t notify[3] = {SMTP_NOTIFY_FAILURE, SMTP_NOTIFY_SUCCESS,
					  SMTP_NOTIFY_DELAY};
	static const char *const orcpts[3] = {"rfc822;b@y.test", "rfc822;c@y.test",
					      "rfc822;d@y.test"};
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_DSN_LOCKSTEP),
	    ONCE(MAIL_CMD),
	    SEND("250 2.1.0 Ok\r\n"),
	    ONCE("RCPT TO:<b@y.test> NOTIFY=FAILURE ORCPT=rfc822;b@y.test\r\n"),
	    SEND("250 2.1.5 Ok\r\n"),
	    ONCE("RCPT TO:<d@y.test> NOTIFY=DELAY ORCPT=rfc822;d@y.test\r\n"),
	    SEND("250 2.1.5 Ok\r\n"),
	    DATA_TO_BYE(),
	    {0},
	};

	f->rcpts[1] = "c\xc3\xa9@y.test";
	f->txn.notify = notify;
	f->txn.orcpts = orcpts;
	fx_run(f, 3, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 2);
	assert_string_equal(f->log, "rcpt 1 553L;rcpt 0 250;rcpt 2 250;done;");
	assert_true(f->res.dsn);
}

static char long_envid[SMTP_ENVID_MAX + 2], long_orcpt[SMTP_ORCPT_MAX + 10];

/* What the next hop would refuse is left out: an ENVID over 100 bytes, an ORCPT that is not
 * "<atom>;<address>" or whose address is over 500 bytes, a RET value that is not FULL/HDRS.
 * NOTIFY=NEVER wins over bits combined with it. */
static void test_dsn_unusable_left_out(void **state)
{
	static const uint8_t notify[3] = {SMTP_NOTIFY_NEVER | SMTP_NOTIFY_SUCCESS, 0, 0};
	static const char *const orcpts[3] = {"no-semicolon", "bad type;c@y.test", long_orcpt};
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_DSN),
	    ONCE("MAIL FROM:<a@x.test> SIZE=21\r\nRCPT TO:<b@y.test> NOTIFY=NEVER\r\n"
		 "RCPT TO:<c@y.test>\r\nRCPT TO:<d@y.test>\r\nDATA\r\n"),
	    ACCEPT_3,
	    DOT_BODY(),
	    SEND_OK(),
	    BYE,
	    {0},
	};

	memset(long_envid, 'e', SMTP_ENVID_MAX + 1);
	memcpy(long_orcpt, "rfc822;", 7);
	memset(long_orcpt + 7, 'o', SMTP_ORCPT_MAX + 1);
	f->txn.envid = long_envid;
	f->txn.ret = 7;
	f->txn.notify = notify;
	f->txn.orcpts = orcpts;
	fx_run(f, 3, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 3);
	assert_true(f->res.dsn);
}

static char envid100[SMTP_ENVID_MAX + 1], orcpt500[SMTP_ORCPT_MAX + 8], wire_at_limits[1024];

/* RET alone (no NOTIFY/ORCPT arrays), and values exactly at the limits are sent. */
static void test_dsn_at_limits(void **state)
{
	static const char *orcpts[1] = {orcpt500};
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_DSN), ONCE(wire_at_limits), ACCEPT_1(), DOT_BODY(), SEND_OK(), BYE, {0},
	};

	memset(envid100, 'e', SMTP_ENVID_MAX);
	memcpy(orcpt500, "rfc822;", 7);
	memset(orcpt500 + 7, 'o', SMTP_ORCPT_MAX);
	snprintf(wire_at_limits, sizeof(wire_at_limits),
		 "MAIL FROM:<a@x.test> SIZE=21 RET=FULL ENVID=%s\r\nRCPT TO:<b@y.test> ORCPT=%s\r\n"
		 "DATA\r\n",
		 envid100, orcpt500);
	f->txn.ret = SMTP_RET_FULL;
	f->txn.envid = envid100;
	f->txn.orcpts = orcpts;
	fx_run(f, 1, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
}

/* smtpc_peer_dsn follows the EHLO reply (checked from inside next()). */
static struct smtpc_txn *next_peer_dsn(struct smtpc *s, void *user)
{
	struct fx *f = user;

	logf_(f, "peer_dsn %d;", smtpc_peer_dsn(s));
	smtpc_quit(s);
	return NULL;
}

static void test_peer_dsn_offered(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {HELLO(EHLO_DSN), BYE, {0}};

	f->ops.next = next_peer_dsn;
	fx_run(f, 1, steps);
	assert_string_equal(f->log, "peer_dsn 1;");
}

static void test_peer_dsn_not_offered(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {HELLO(EHLO_PIPE), BYE, {0}};

	f->ops.next = next_peer_dsn;
	fx_run(f, 1, steps);
	assert_string_equal(f->log, "peer_dsn 0;");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_dsn_offered, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dsn_not_offered, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dsn_helo_fallback, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dsn_follows_rcpt_index, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dsn_unusable_left_out, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dsn_at_limits, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_peer_dsn_offered, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_peer_dsn_not_offered, fx_setup, fx_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
