/* test_smtpc — unit tests for engine/smtpc: a real client session on a real loop, connecting
 * over a UNIX socket in a temp dir to a server scripted by the test.
 *
 * Why this shape: smtpc's promises are about what goes on the wire (one write for a pipelined
 * group, lock-step without PIPELINING, HELO fallback, RSET instead of DATA, dot-stuffing) and
 * about what the owner is told (per-recipient replies, the transaction's deciding reply and
 * stage, maybe_delivered, why the session closed). Both only show against a real peer, so the
 * loop runs on the test thread and a small blocking "server" thread plays a table of steps
 * (send replies / read N command lines / read once / read to EOF / close / run a function on
 * the loop thread). The server only records what it read; every assertion runs on the test
 * thread after the loop stops (from ops->closed), so cmocka's longjmp never crosses threads.
 * alarm() turns a hang into a failure.
 */
#include "engine/loop/loop.h"
#include "engine/smtp/smtp.h"
#include "engine/smtpc/smtpc.h"
#include "engine/util/util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define MAX_STEPS 24
#define PEER_BUF  (1u << 20)
#define TEXT_MAX  256

#define GREET	   "220 mx.test ESMTP scripted\r\n"
#define EHLO_CMD   "EHLO client.test\r\n"
#define EHLO_PIPE  "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 8BITMIME\r\n"
#define EHLO_PLAIN "250-mx.test\r\n250 SIZE 100000\r\n"
#define BODY	   "Subject: t\r\n\r\nhello\r\n" /* 21 bytes */
#define MAIL_CMD   "MAIL FROM:<a@x.test> SIZE=21\r\n"

struct fx;

enum step_kind {
	S_END = 0,
	S_SEND,	 /* write data */
	S_LINES, /* read n CRLF lines; got[i] is what was read */
	S_ONCE,	 /* exactly one read(); got[i] is what it returned (plus any leftover) */
	S_QUIET, /* poll n ms: got[i] is "" if nothing arrived, else what did */
	S_EOF,	 /* read until EOF */
	S_CLOSE, /* close the connection now */
	S_CALL,	 /* run fn on the loop thread and wait until it has run */
};

struct step {
	enum step_kind kind;
	const char *data; /* S_SEND: bytes; reading steps: the wanted text */
	unsigned n;
	void (*fn)(struct fx *f);
};

/* clang-format off */
#define SEND(s)	     {.kind = S_SEND, .data = (s)}
#define LINES(k, s)  {.kind = S_LINES, .data = (s), .n = (k)}
#define ONCE(s)	     {.kind = S_ONCE, .data = (s)}
#define QUIET(t)     {.kind = S_QUIET, .data = "", .n = (t)}
#define EXPECT_EOF() {.kind = S_EOF, .data = ""}
#define CLOSE()	     {.kind = S_CLOSE}
#define CALL(f)	     {.kind = S_CALL, .fn = (f)}
#define HELLO(ehlo)  SEND(GREET), ONCE(EHLO_CMD), SEND(ehlo)
#define BYE	     ONCE("QUIT\r\n"), SEND("221 2.0.0 Bye\r\n"), EXPECT_EOF()
/* clang-format on */

/* A reply or close info copied out of a callback. */
struct saved_reply {
	int code, enh_class, enh_subject, enh_detail;
	char text[TEXT_MAX];
};

struct fx {
	char dir[64];
	char path[96];
	int lfd;
	struct loop *l;
	struct smtpc *c;
	struct smtpc_config cfg;
	struct smtpc_ops ops;
	/* server thread */
	const struct step *steps;
	char *got[MAX_STEPS];
	char buf[PEER_BUF];
	size_t blen;
	pthread_t srv;
	struct loop_msg call_msg;
	void (*call_fn)(struct fx *f);
	atomic_bool call_done;
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
	char group[128];
	char log[1024];
	struct smtpc_result res; /* res.reply.text points into res_text */
	struct saved_reply res_reply;
	struct smtpc_close_info info;
	struct saved_reply info_reply;
};

static void logf_(struct fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct fx *f, const char *fmt, ...)
{
	size_t n = strlen(f->log);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->log + n, sizeof(f->log) - n, fmt, ap);
	va_end(ap);
}

static void save_reply(struct saved_reply *d, const struct smtpc_reply *r)
{
	size_t n = r->text_len < TEXT_MAX - 1 ? r->text_len : TEXT_MAX - 1;

	d->code = r->code;
	d->enh_class = r->enh_class;
	d->enh_subject = r->enh_subject;
	d->enh_detail = r->enh_detail;
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
	logf_(user, "rcpt %u %d;", idx, r->code);
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

/* ---- the scripted server (its own thread: blocking I/O, records only) ---- */

static size_t lines_end(const char *b, size_t len, unsigned n)
{
	size_t i = 0;
	const char *lf;

	while (n && i < len && (lf = memchr(b + i, '\n', len - i))) {
		i = (size_t)(lf - b) + 1;
		n--;
	}
	return n ? 0 : i;
}

static char *take(struct fx *f, size_t n)
{
	char *out = util_xstrndup(f->buf, n);

	memmove(f->buf, f->buf + n, f->blen - n);
	f->blen -= n;
	return out;
}

static bool read_more(struct fx *f, int fd)
{
	ssize_t r = read(fd, f->buf + f->blen, PEER_BUF - f->blen);

	if (r <= 0)
		return false;
	f->blen += (size_t)r;
	return true;
}

static char *srv_lines(struct fx *f, int fd, unsigned n)
{
	size_t end;

	while (!(end = lines_end(f->buf, f->blen, n)) && f->blen < PEER_BUF && read_more(f, fd))
		;
	return take(f, end ? end : f->blen);
}

static char *srv_quiet(struct fx *f, int fd, unsigned ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (!f->blen && poll(&p, 1, (int)ms) > 0)
		read_more(f, fd);
	return take(f, f->blen);
}

static char *srv_eof(struct fx *f, int fd)
{
	while (f->blen < PEER_BUF && read_more(f, fd))
		;
	return take(f, f->blen);
}

static void write_all(int fd, const char *p, size_t n)
{
	ssize_t r;

	while (n && (r = write(fd, p, n)) > 0) {
		p += r;
		n -= (size_t)r;
	}
}

static void call_msg_fn(struct loop *l, struct loop_msg *m)
{
	struct fx *f = container_of(m, struct fx, call_msg);

	f->call_fn(f);
	atomic_store(&f->call_done, true);
}

/* Run fn on the loop thread; wait for it so the next step sees its effect. */
static void srv_call(struct fx *f, void (*fn)(struct fx *f))
{
	atomic_store(&f->call_done, false);
	f->call_fn = fn;
	f->call_msg.fn = call_msg_fn;
	loop_post(f->l, &f->call_msg);
	while (!atomic_load(&f->call_done))
		usleep(1000);
}

static char *srv_step(struct fx *f, int *fd, const struct step *st)
{
	switch (st->kind) {
	case S_SEND:
		write_all(*fd, st->data, strlen(st->data));
		return NULL;
	case S_LINES:
		return srv_lines(f, *fd, st->n);
	case S_ONCE:
		if (!f->blen)
			read_more(f, *fd);
		return take(f, f->blen);
	case S_QUIET:
		return srv_quiet(f, *fd, st->n);
	case S_EOF:
		return srv_eof(f, *fd);
	case S_CLOSE:
		close(*fd);
		*fd = -1;
		return NULL;
	case S_CALL:
		srv_call(f, st->fn);
		return NULL;
	case S_END:
		break;
	}
	return NULL;
}

static void *srv_main(void *arg)
{
	struct fx *f = arg;
	int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);

	for (unsigned i = 0; fd >= 0 && f->steps[i].kind != S_END; i++)
		f->got[i] = srv_step(f, &fd, &f->steps[i]);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* ---- fixture ---- */

static int listen_unix(struct fx *f)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(f->lfd, 4) < 0)
		return -1;
	return 0;
}

static int setup(void **state)
{
	struct fx *f = util_xcalloc(1, sizeof(*f));
	char addr[160];

	alarm(20); /* a hang fails the test instead of stalling the suite */
	*state = f;
	f->lfd = -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/rt-smtpc-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/mx.sock", f->dir);
	snprintf(addr, sizeof(addr), "unix:%s", f->path);
	if (listen_unix(f) < 0 || util_addr_parse(addr, &f->cfg.addr) < 0)
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

	for (unsigned i = 0; i < MAX_STEPS; i++)
		free(f->got[i]);
	free(f->big);
	free(f->big_wire);
	if (f->lfd >= 0)
		close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	alarm(0);
	return 0;
}

/* Run one session against the scripted server until ops->closed; then compare what the
 * server read with what each step wanted. */
static void run(struct fx *f, const struct step *steps)
{
	f->steps = steps;
	assert_int_equal(loop_new(&f->l, 64), 0);
	assert_int_equal(pthread_create(&f->srv, NULL, srv_main, f), 0);
	assert_int_equal(smtpc_new(f->l, &f->cfg, &f->c), 0);
	assert_int_equal(loop_run(f->l), 0);
	assert_int_equal(pthread_join(f->srv, NULL), 0);
	loop_free(f->l);
	assert_int_equal(f->closes, 1);
	for (unsigned i = 0; steps[i].kind != S_END; i++) {
		if (steps[i].kind >= S_LINES && steps[i].kind <= S_EOF) {
			assert_non_null(f->got[i]);
			assert_string_equal(f->got[i], steps[i].data);
		}
	}
}

static void assert_txn(const struct fx *f, int code, enum smtpc_stage stage, unsigned accepted)
{
	assert_int_equal(f->txn_dones, 1);
	assert_null(f->res.err);
	assert_int_equal(f->res_reply.code, code);
	assert_int_equal(f->res.stage, stage);
	assert_int_equal(f->res.rcpt_accepted, accepted);
	assert_false(f->res.maybe_delivered);
}

/* ---- tests ---- */

static void test_pipelined_mixed_rcpts(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(MAIL_CMD "RCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nRCPT TO:<d@y.test>\r\n"
			  "DATA\r\n"),
	    SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 No such user\r\n250 2.1.5 Ok\r\n"
		 "354 go ahead\r\n"),
	    LINES(4, BODY ".\r\n"),
	    SEND("250 2.0.0 Ok: queued as Q1\r\n"),
	    BYE,
	    {0},
	};

	run(f, steps);
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
	const struct step steps[] = {
	    HELLO(EHLO_PLAIN),
	    ONCE(MAIL_CMD),
	    QUIET(50), /* nothing more until MAIL is answered */
	    SEND("250 2.1.0 Ok\r\n"),
	    ONCE("RCPT TO:<b@y.test>\r\n"),
	    QUIET(20),
	    SEND("250 2.1.5 Ok\r\n"),
	    ONCE("RCPT TO:<c@y.test>\r\n"),
	    SEND("250 2.1.5 Ok\r\n"),
	    ONCE("DATA\r\n"),
	    SEND("354 go ahead\r\n"),
	    LINES(4, BODY ".\r\n"),
	    SEND("250 2.0.0 Ok\r\n"),
	    BYE,
	    {0},
	};

	f->txn.rcpt_count = 2;
	run(f, steps);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 2);
	assert_string_equal(f->log, "rcpt 0 250;rcpt 1 250;done;");
}

static void test_all_rcpts_rejected_rset(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO(EHLO_PLAIN),
	    ONCE(MAIL_CMD),
	    SEND("250 2.1.0 Ok\r\n"),
	    ONCE("RCPT TO:<b@y.test>\r\n"),
	    SEND("550 5.1.1 No such user\r\n"),
	    ONCE("RCPT TO:<c@y.test>\r\n"),
	    SEND("550 5.1.1 No such user either\r\n"),
	    ONCE("RSET\r\n"), /* not DATA */
	    SEND("250 2.0.0 Ok\r\n"),
	    BYE,
	    {0},
	};

	f->txn.rcpt_count = 2;
	run(f, steps);
	assert_txn(f, 550, SMTPC_STAGE_RCPT, 0);
	assert_string_equal(f->res_reply.text, "No such user either");
	assert_string_equal(f->log, "rcpt 0 550;rcpt 1 550;done;");
}

static void test_pipelined_all_rejected_rset(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(MAIL_CMD "RCPT TO:<b@y.test>\r\nDATA\r\n"),
	    SEND("250 2.1.0 Ok\r\n550 5.1.1 No such user\r\n554 5.5.1 No valid recipients\r\n"),
	    ONCE("RSET\r\n"),
	    SEND("250 2.0.0 Ok\r\n"),
	    BYE,
	    {0},
	};

	f->txn.rcpt_count = 1;
	run(f, steps);
	assert_txn(f, 550, SMTPC_STAGE_RCPT, 0);
}

static void test_helo_fallback(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO("502 5.5.2 EHLO not implemented\r\n"),
	    ONCE("HELO client.test\r\n"),
	    SEND("250 mx.test\r\n"),
	    BYE,
	    {0},
	};

	f->give_txn = false;
	run(f, steps);
	assert_int_equal(f->nexts, 1);
	assert_int_equal(f->ext_at_next, 0);
	assert_int_equal(f->txn_dones, 0);
	assert_null(f->info.err);
	assert_true(f->info.was_ready);
}

static void test_dot_stuffing(void **state)
{
	struct fx *f = *state;
	const char *body = ".a\r\nb\r\n.\r\n..c\r\nend"; /* no final CRLF */
	const struct step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE("MAIL FROM:<a@x.test> SIZE=18\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"),
	    SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
	    LINES(6, "..a\r\nb\r\n..\r\n...c\r\nend\r\n.\r\n"),
	    SEND("250 2.0.0 Ok\r\n"),
	    BYE,
	    {0},
	};

	f->txn.rcpt_count = 1;
	f->txn.body = body;
	f->txn.body_len = strlen(body);
	assert_int_equal(f->txn.body_len, 18);
	run(f, steps);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
}

static void test_drop_after_dot_maybe_delivered(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(MAIL_CMD "RCPT TO:<b@y.test>\r\nDATA\r\n"),
	    SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
	    LINES(4, BODY ".\r\n"),
	    CLOSE(),
	    {0},
	};

	f->txn.rcpt_count = 1;
	run(f, steps);
	assert_int_equal(f->txn_dones, 1);
	assert_non_null(f->res.err);
	assert_int_equal(f->res_reply.code, 0);
	assert_int_equal(f->res.stage, SMTPC_STAGE_DOT);
	assert_true(f->res.maybe_delivered);
	assert_string_equal(f->info.err, "connection closed by peer");
}

static void test_greeting_421(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    SEND("421 4.3.2 Too busy, go away\r\n"),
	    EXPECT_EOF(),
	    {0},
	};

	run(f, steps);
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
	const struct step steps[] = {
	    HELLO(EHLO_PIPE),
	    BYE, /* QUIT comes from the idle timer, not from the owner */
	    {0},
	};

	f->give_txn = false;
	f->quit_when_idle = false;
	f->cfg.timeouts.idle_ms = 50;
	run(f, steps);
	assert_int_equal(f->nexts, 1);
	assert_null(f->info.err);
	assert_int_equal(f->info.state, SMTPC_S_QUIT);
	assert_true(f->info.was_ready);
}

static void do_abort(struct fx *f)
{
	smtpc_abort(f->c);
}

static void test_abort_during_txn(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO(EHLO_PIPE), /* then the group, never answered */
	    ONCE(MAIL_CMD "RCPT TO:<b@y.test>\r\nDATA\r\n"),
	    CALL(do_abort), /* the client aborts while waiting for the MAIL reply */
	    EXPECT_EOF(),   /* and closes */
	    {0},
	};

	f->txn.rcpt_count = 1;
	run(f, steps);
	assert_int_equal(f->txn_dones, 1);
	assert_string_equal(f->res.err, "aborted");
	assert_int_equal(f->res_reply.code, 0);
	assert_int_equal(f->res.stage, SMTPC_STAGE_MAIL);
	assert_false(f->res.maybe_delivered);
	assert_string_equal(f->info.err, "aborted");
	assert_string_equal(f->log, "done;");
}

static void test_mail_rejected_pipelined_drains(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(MAIL_CMD "RCPT TO:<b@y.test>\r\nDATA\r\n"),
	    SEND("550 5.7.1 Sender rejected\r\n503 5.5.1 Need MAIL\r\n503 5.5.1 Need MAIL\r\n"),
	    BYE, /* the pipelined replies were drained: no RSET needed, no DATA body */
	    {0},
	};

	f->txn.rcpt_count = 1;
	run(f, steps);
	assert_txn(f, 550, SMTPC_STAGE_MAIL, 0);
	assert_string_equal(f->log, "done;"); /* no rcpt callback after a failed MAIL */
}

static void test_421_mid_transaction(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(MAIL_CMD "RCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n"),
	    SEND("250 2.1.0 Ok\r\n421 4.7.0 Try again later\r\n"),
	    EXPECT_EOF(),
	    {0},
	};

	f->txn.rcpt_count = 2;
	run(f, steps);
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
	snprintf(f->group, sizeof(f->group),
		 "MAIL FROM:<a@x.test> SIZE=%zu\r\nRCPT TO:<b@y.test>\r\nDATA\r\n", bn);
}

static void test_large_stuffed_body(void **state)
{
	struct fx *f = *state;

	f->txn.rcpt_count = 1;
	build_big(f);
	const struct step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(f->group),
	    SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
	    LINES(BIG_LINES + 1, f->big_wire),
	    SEND("250 2.0.0 Ok\r\n"),
	    BYE,
	    {0},
	};

	run(f, steps);
	assert_int_equal(f->txn.body_len, 640000);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
}

/* From a loop timer, after next() returned NULL: start the transaction from outside. */
static void send_timer_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct fx *f = container_of(op, struct fx, send_op);

	f->send_ret = smtpc_send(f->c, &f->txn);
	f->quit_when_idle = true; /* after this transaction */
}

static void test_send_on_idle_session(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO(EHLO_PIPE), /* next() returns NULL; smtpc_send follows from a timer */
	    ONCE(MAIL_CMD "RCPT TO:<b@y.test>\r\nDATA\r\n"),
	    QUIET(500), /* slower than idle_ms: the idle deadline must not apply to MAIL */
	    SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
	    LINES(4, BODY ".\r\n"),
	    SEND("250 2.0.0 Ok\r\n"),
	    BYE,
	    {0},
	};

	f->give_txn = false;
	f->quit_when_idle = false;
	f->send_later = true;
	f->send_op.cb = send_timer_cb;
	f->txn.rcpt_count = 1;
	f->cfg.timeouts.idle_ms = 300;
	run(f, steps);
	assert_int_equal(f->send_ret, 0);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
	assert_null(f->info.err);
}

static void test_ehlo_reply_split(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    SEND(GREET),
	    ONCE(EHLO_CMD),
	    SEND("250-mx.test\r\n250-PIPE"),
	    QUIET(30), /* a partial reply: the client waits */
	    SEND("LINING\r\n250 SIZE 12345\r\n"),
	    BYE,
	    {0},
	};

	f->give_txn = false;
	run(f, steps);
	assert_int_equal(f->nexts, 1);
	assert_true(f->ext_at_next & SMTP_EXT_PIPELINING);
	assert_int_equal(f->size_at_next, 12345);
}

static void test_abort_after_dot_maybe_delivered(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE(MAIL_CMD "RCPT TO:<b@y.test>\r\nDATA\r\n"),
	    SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
	    LINES(4, BODY ".\r\n"),
	    CALL(do_abort),
	    EXPECT_EOF(),
	    {0},
	};

	f->txn.rcpt_count = 1;
	run(f, steps);
	assert_int_equal(f->txn_dones, 1);
	assert_string_equal(f->res.err, "aborted");
	assert_int_equal(f->res.stage, SMTPC_STAGE_DOT);
	assert_true(f->res.maybe_delivered);
}

static void test_no_pipelining_config_and_8bitmime(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO(EHLO_PIPE), /* offered, but the config says lock-step */
	    ONCE("MAIL FROM:<a@x.test> SIZE=21 BODY=8BITMIME\r\n"),
	    QUIET(30),
	    SEND("250 2.1.0 Ok\r\n"),
	    ONCE("RCPT TO:<b@y.test>\r\n"),
	    SEND("250 2.1.5 Ok\r\n"),
	    ONCE("DATA\r\n"),
	    SEND("354 go ahead\r\n"),
	    LINES(4, BODY ".\r\n"),
	    SEND("250 2.0.0 Ok\r\n"),
	    BYE,
	    {0},
	};

	f->cfg.no_pipelining = true;
	f->txn.eightbit = true;
	f->txn.rcpt_count = 1;
	run(f, steps);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
}

static void test_max_txns_then_quit(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO(EHLO_PIPE),
	    ONCE("MAIL FROM:<a@x.test> SIZE=0\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"),
	    SEND("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
	    LINES(1, ".\r\n"), /* empty body: just the terminator */
	    SEND("250 2.0.0 Ok\r\n"),
	    BYE, /* max_txns reached: QUIT without asking next() */
	    {0},
	};

	f->cfg.max_txns = 1;
	f->quit_when_idle = false;
	f->txn.rcpt_count = 1;
	f->txn.body = "";
	f->txn.body_len = 0;
	run(f, steps);
	assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
	assert_int_equal(f->nexts, 1);
	assert_int_equal(f->info.txns, 1);
}

static void test_invalid_txn_from_next(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO(EHLO_PIPE),
	    BYE, /* nothing of the invalid transaction reaches the wire */
	    {0},
	};

	f->txn.sender = "a@x.test>\r\nRCPT TO:<evil@x.test";
	run(f, steps);
	assert_int_equal(f->txn_dones, 1);
	assert_string_equal(f->res.err, "invalid transaction");
	assert_int_equal(f->res.stage, SMTPC_STAGE_MAIL);
	assert_int_equal(f->nexts, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pipelined_mixed_rcpts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lockstep_without_pipelining, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_all_rcpts_rejected_rset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipelined_all_rejected_rset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_helo_fallback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dot_stuffing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drop_after_dot_maybe_delivered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_greeting_421, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_timeout_quits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_abort_during_txn, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mail_rejected_pipelined_drains, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_421_mid_transaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_large_stuffed_body, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_on_idle_session, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ehlo_reply_split, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_abort_after_dot_maybe_delivered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_pipelining_config_and_8bitmime, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_max_txns_then_quit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_txn_from_next, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
