/* smtpc_fx — the fixture shared by the smtpc unit tests: a real client session on a real loop,
 * connecting over a UNIX socket in a temp dir to the scripted peer (tests/unit/peer) that
 * plays the server.
 *
 * Why: test_smtpc.c (the protocol) and test_smtpc_wire.c (what a next hop may receive: control
 * bytes, 8BITMIME downgrade, SMTPUTF8) drive the session the same way; one fixture keeps them
 * identical and each file under the size limit. The owner's callbacks record what they are told
 * (log, result, close info); every assertion runs on the test thread after the loop stopped.
 */
#ifndef RIPTIDE_TESTS_SMTPC_FX_H
#define RIPTIDE_TESTS_SMTPC_FX_H

#include "engine/loop/loop.h"
#include "engine/smtp/smtp.h"
#include "engine/smtpc/smtpc.h"
#include "engine/util/util.h"
#include "tests/unit/peer/peer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	struct smtpc_close_info info; /* info.err points at info_err (copied) */
	struct saved_reply info_reply;
	char info_err[TEXT_MAX];
};

/* fx_setup / fx_teardown: cmocka fixture: a listening peer, a config with the owner's
 * callbacks, a three-recipient transaction (a@x.test -> b, c, d @y.test, body BODY). */
int fx_setup(void **state);
int fx_teardown(void **state);

/* fx_run: run one session against the scripted server until ops->closed, the owner's
 * transaction carrying the first rcpts of f->rcpts; then compare what the server read with
 * what each step wanted. */
void fx_run(struct fx *f, unsigned rcpts, const struct peer_step *steps);

/* fx_assert_txn: the one transaction ended with the server's reply code at stage, accepted
 * rcpts, not maybe delivered. */
void fx_assert_txn(const struct fx *f, int code, enum smtpc_stage stage, unsigned accepted);

/* fx_assert_txn_err: the one transaction failed without a reply: err (any if NULL) at stage. */
void fx_assert_txn_err(const struct fx *f, const char *err, enum smtpc_stage stage,
		       bool maybe_delivered);

/* fx_assert_idle_close: the session was ready, asked next() once and closed without error. */
void fx_assert_idle_close(const struct fx *f);

/* fx_do_abort: a CALL step: smtpc_abort on the loop thread. */
void fx_do_abort(void *user);

/* fx_send_timer_cb: the send_op timer armed by next() when send_later: smtpc_send from outside,
 * counting txn_done calls made inside it (dones_in_send). */
void fx_send_timer_cb(struct loop_op *op, int res, uint32_t flags);

#endif
