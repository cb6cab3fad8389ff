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
#include "engine/loop/loop.h"
#include "engine/smtp/smtp.h"
#include "engine/smtpc/smtpc.h"
#include "engine/smtpc/smtpc_types.h" /* white-box: smtpc_io_line_ok, smtpc_txn_valid */
#include "engine/util/util.h"
#include "tests/unit/peer/peer.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define TEXT_MAX 256

#define GREET	   "220 mx.test ESMTP scripted\r\n"
#define EHLO_CMD   "EHLO client.test\r\n"
#define EHLO_PIPE  "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 8BITMIME\r\n"
#define EHLO_PLAIN "250-mx.test\r\n250 SIZE 100000\r\n"
#define BODY	   "Subject: t\r\n\r\nhello\r\n" /* 21 bytes */
#define MAIL_CMD   "MAIL FROM:<a@x.test> SIZE=21\r\n"
#define RCPT_B	   "RCPT TO:<b@y.test>\r\n"
#define GROUP_1	   MAIL_CMD RCPT_B "DATA\r\n" /* the pipelined group of a one-recipient txn */

/* clang-format off */
#define HELLO(ehlo)   SEND(GREET), ONCE(EHLO_CMD), SEND(ehlo)
#define BYE	      ONCE("QUIT\r\n"), SEND("221 2.0.0 Bye\r\n"), EXPECT_EOF("")
#define ACCEPT_1()      SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
#define DOT_BODY()      LINES(4, BODY ".\r\n")
#define SEND_OK()	      SEND("250 2.0.0 Ok\r\n") /* after the dot or RSET */
/* a pipelined one-recipient transaction up to the server's read of the final dot */
#define TO_DOT()	      HELLO(EHLO_PIPE), ONCE(GROUP_1), ACCEPT_1(), DOT_BODY()
/* lock-step: DATA, the body, its acceptance, then QUIT */
#define DATA_TO_BYE()   ONCE("DATA\r\n"), SEND("354 go ahead\r\n"), DOT_BODY(), SEND_OK(), BYE
/* clang-format on */

#define logf_(f, ...) peer_logf((f)->log, sizeof((f)->log), __VA_ARGS__)

/* A reply or close info copied out of a callback. */
struct saved_reply {
	int code, enh_class, enh_subject, enh_detail;
	bool local;
	char text[TEXT_MAX];
};

struct fx {
	struct peer peer;
	struct loop *l;
	struct smtpc *c;
	struct smtpc_config cfg;
	struct smtpc_ops ops;
	/* owner side */
	struct smtpc_txn txn;
	const char *rcpts[4];
	bool give_txn, quit_when_idle;
	unsigned nexts, txn_dones, closes;
	uint32_t ext_at_next;
	uint64_t size_at_next;
	int send_ret;
	bool send_later; /* next() returns NULL and arms send_op, which calls smtpc_send */
	struct loop_op send_op;
	char *big, *big_wire; /* large-body test: body and its expected wire form */
	char group[256];
	char wire[1024];	/* the body as the server must read it (with the final dot) */
	unsigned dones_in_send; /* txn_done calls made from inside smtpc_send */
	char log[1024];
	struct smtpc_result res; /* res.reply.text is NULL: the copy is res_reply */
	struct saved_reply res_reply;
	struct smtpc_close_info info;
	struct saved_reply info_reply;
};

static void save_reply(struct saved_reply *d, const struct smtpc_reply *r)
{
	size_t n = r->text_len < TEXT_MAX - 1 ? r->text_len : TEXT_MAX - 1;

	d->code = r->code;
	d->enh_class = r->enh_class;
	d->enh_subject = r->enh_subject;
	d->enh_detail = r->enh_detail;
	d->local = r->local;
	if (r->text)
		memcpy(d->text, r->text, n);
	d->text[r->text ? n : 0] = '\0';
}

/* ---- the owner's callbacks (loop thread) ---- */

static struct smtpc_txn *op_next(struct smtpc *s, void *user)
{
	struct fx *f = user;

	f->nexts++;
	f->ext_at_next = smtpc_ext(s);
	f->size_at_next = smtpc_size_limit(s);
	if (f->give_txn) {
		f->give_txn = false;
		return &f->txn;
	}
	if (f->send_later) {
		f->send_later = false;
		loop_timer(f->l, &f->send_op, 10);
	}
	if (f->quit_when_idle)
		smtpc_quit(s);
	return NULL;
}

static void op_rcpt(struct smtpc *s, struct smtpc_txn *t, unsigned idx, const struct smtpc_reply *r,
		    void *user)
{
	logf_((struct fx *)user, "rcpt %u %d%s;", idx, r->code, r->local ? "L" : "");
}

static void op_txn_done(struct smtpc *s, struct smtpc_txn *t, const struct smtpc_result *res,
			void *user)
{
	struct fx *f = user;

	f->txn_dones++;
	f->res = *res;
	f->res.reply.text = NULL;
	save_reply(&f->res_reply, &res->reply);
	logf_(f, "done;");
}

static void op_closed(struct smtpc *s, const struct smtpc_close_info *info, void *user)
{
	struct fx *f = user;

	f->closes++;
	f->info = *info;
	f->info.reply.text = NULL;
	save_reply(&f->info_reply, &info->reply);
	loop_stop(f->l);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct fx *f = util_xcalloc(1, sizeof(*f));
	char addr[160];

	*state = f;
	if (peer_init(&f->peer, "smtpc", "mx.sock") < 0 || peer_listen(&f->peer) < 0)
		return -1;
	peer_addr(&f->peer, addr, sizeof(addr));
	if (util_addr_parse(addr, &f->cfg.addr) < 0)
		return -1;
	f->ops = (struct smtpc_ops){
	    .next = op_next, .rcpt = op_rcpt, .txn_done = op_txn_done, .closed = op_closed};
	f->cfg.helo_name = "client.test";
	smtpc_timeouts_default(&f->cfg.timeouts);
	f->cfg.ops = &f->ops;
	f->cfg.user = f;
	f->rcpts[0] = "b@y.test";
	f->rcpts[1] = "c@y.test";
	f->rcpts[2] = "d@y.test";
	f->txn = (struct smtpc_txn){
	    .sender = "a@x.test", .rcpts = f->rcpts, .rcpt_count = 3, .body = BODY};
	f->txn.body_len = strlen(BODY);
	f->give_txn = true;
	f->quit_when_idle = true;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	peer_fini(&f->peer);
	free(f->big);
	free(f->big_wire);
	free(f);
	return 0;
}

/* Run one session against the scripted server until ops->closed, the owner's transaction
 * carrying the first rcpts of f->rcpts; then compare what the server read with what each step
 * wanted. */
static void run(struct fx *f, unsigned rcpts, const struct peer_step *steps)
{
	f->txn.rcpt_count = rcpts;
	assert_int_equal(loop_new(&f->l, 64), 0);
	assert_int_equal(peer_start(&f->peer, f->l, steps, f, NULL), 0);
	assert_int_equal(smtpc_new(f->l, &f->cfg, &f->c), 0);
	assert_int_equal(loop_run(f->l), 0);
	assert_int_equal(peer_join(&f->peer), 0);
	loop_free(f->l);
	assert_int_equal(f->closes, 1);
	peer_check(&f->peer);
}

/* The one transaction ended with the server's reply code at stage, accepted rcpts. */
static void assert_txn(const struct fx *f, int code, enum smtpc_stage stage, unsigned accepted)
{
	assert_int_equal(f->txn_dones, 1);
	assert_null(f->res.err);
	assert_int_equal(f->res_reply.code, code);
	assert_int_equal(f->res.stage, stage);
	assert_int_equal(f->res.rcpt_accepted, accepted);
	assert_false(f->res.maybe_delivered);
}

/* The one transaction failed without a reply: err (any if NULL) at stage, maybe_delivered. */
static void assert_txn_err(const struct fx *f, const char *err, enum smtpc_stage stage,
			   bool maybe_delivered)
{
	assert_int_equal(f->txn_dones, 1);
	assert_non_null(f->res.err);
	if (err)
		assert_string_equal(f->res.err, err);
	assert_int_equal(f->res_reply.code, 0);
	assert_int_equal(f->res.stage, stage);
	assert_int_equal(f->res.maybe_delivered, maybe_delivered);
}

/* The session was ready, asked next() once and closed without an error. */
static void assert_idle_close(const struct fx *f)
{
	assert_int_equal(f->nexts, 1);
	assert_null(f->info.err);
	assert_true(f->info.was_ready);
}

static void do_abort(void *user)
{
	struct fx *f = user;

	smtpc_abort(f->c);
}

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

	run(f, 3, steps);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 2);
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

	run(f, 2, steps);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 2);
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

	run(f, 2, steps);
	assert_txn(f, 550, SMTPC_STAGE_RCPT, 0);
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

	run(f, 1, steps);
	assert_txn(f, 550, SMTPC_STAGE_RCPT, 0);
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
	run(f, 3, steps);
	assert_idle_close(f);
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
	run(f, 1, steps);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
}

static void test_drop_after_dot_maybe_delivered(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {TO_DOT(), CLOSE(), {0}};

	run(f, 1, steps);
	assert_txn_err(f, NULL, SMTPC_STAGE_DOT, true);
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

	run(f, 3, steps);
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
	run(f, 3, steps);
	assert_idle_close(f);
	assert_int_equal(f->info.state, SMTPC_S_QUIT);
}

static void test_abort_during_txn(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_PIPE), /* then the group, never answered */
	    ONCE(GROUP_1),
	    CALL(do_abort), /* the client aborts while waiting for the MAIL reply */
	    EXPECT_EOF(""), /* and closes */
	    {0},
	};

	run(f, 1, steps);
	assert_txn_err(f, "aborted", SMTPC_STAGE_MAIL, false);
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

	run(f, 1, steps);
	assert_txn(f, 550, SMTPC_STAGE_MAIL, 0);
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

	run(f, 2, steps);
	assert_txn(f, 421, SMTPC_STAGE_RCPT, 0);
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

	run(f, 1, steps);
	assert_int_equal(f->txn.body_len, 640000);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
}

/* From a loop timer, after next() returned NULL: start the transaction from outside. */
static void send_timer_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct fx *f = container_of(op, struct fx, send_op);

	unsigned before = f->txn_dones;

	f->send_ret = smtpc_send(f->c, &f->txn);
	f->dones_in_send = f->txn_dones - before;
	f->quit_when_idle = true; /* after this transaction */
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
	f->send_op.cb = send_timer_cb;
	f->cfg.timeouts.idle_ms = 300;
	run(f, 1, steps);
	assert_int_equal(f->send_ret, 0);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
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
	run(f, 3, steps);
	assert_int_equal(f->nexts, 1);
	assert_true(f->ext_at_next & SMTP_EXT_PIPELINING);
	assert_int_equal(f->size_at_next, 12345);
}

static void test_abort_after_dot_maybe_delivered(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {TO_DOT(), CALL(do_abort), EXPECT_EOF(""), {0}};

	run(f, 1, steps);
	assert_txn_err(f, "aborted", SMTPC_STAGE_DOT, true);
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
	run(f, 1, steps);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
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
	run(f, 1, steps);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
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
	run(f, 3, steps);
	assert_txn_err(f, "invalid transaction", SMTPC_STAGE_MAIL, false);
	assert_int_equal(f->nexts, 2);
}

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
	run(f, 2, steps);
	assert_txn_err(f, "invalid transaction", SMTPC_STAGE_MAIL, false);
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

	run(f, 1, steps);
	assert_txn_err(f, "refused to send a command line with a control byte", SMTPC_STAGE_MAIL,
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
	run(f, 1, steps);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
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
	run(f, 1, steps);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
}

/* A local outcome: the reply smtpc made up, err NULL, nothing accepted, not maybe delivered. */
static void assert_local(const struct fx *f, int code, int subject, int detail,
			 enum smtpc_stage stage)
{
	assert_txn(f, code, stage, 0);
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
	run(f, 2, steps);
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
	f->send_op.cb = send_timer_cb;
	f->txn.body = "Subject: \xe9\r\n\r\nx\r\n";
	f->txn.body_len = strlen(f->txn.body);
	run(f, 1, steps);
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
	run(f, 1, steps);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
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
	run(f, 3, steps);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
	assert_string_equal(f->log, "rcpt 1 553L;rcpt 0 250;rcpt 2 550;done;");
}

static void test_smtputf8_missing_sender_553(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {HELLO(EHLO_PIPE), BYE, {0}};

	f->txn.sender = "\xc3\xa9@x.test";
	f->txn.smtputf8 = true;
	run(f, 2, steps);
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
	run(f, 2, steps);
	assert_local(f, 553, 6, 7, SMTPC_STAGE_RCPT);
	assert_string_equal(f->log, "rcpt 0 553L;rcpt 1 553L;done;");
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

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
