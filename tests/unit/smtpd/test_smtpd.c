/* test_smtpd — unit tests for engine/smtpd: a real worker on a real loop, accepting on a UNIX
 * socket in a temp dir, with the client side scripted by the test.
 *
 * Why this shape: smtpd's promises are about bytes on the wire (exact replies and enhanced
 * codes, their order under pipelining, what ends DATA) and about when hooks run relative to
 * input (an async reply holds later pipelined commands). Those only show on a real socket with
 * the real run loop, so each test runs the loop on the test thread and a small blocking "peer"
 * thread plays a table of steps (send bytes / read N replies / read to EOF / run a function on
 * the loop thread). The peer only records what it read; every assertion runs on the test
 * thread after the loop has stopped, so cmocka's longjmp never crosses threads. The loop stops
 * through the worker's shutdown done callback, so every test also checks that the worker
 * drains and frees cleanly (ASan checks the rest). alarm() turns a hang into a failure.
 */
#include "engine/loop/loop.h"
#include "engine/smtpd/smtpd.h"
#include "engine/util/util.h"

#include <errno.h>
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

#define MAX_STEPS 16
#define PEER_BUF  65536
#define MAX_SIZE  1000 /* small limits so the tests can cross them */
#define MAX_RCPTS 2
#define MAX_LINE  64

#define GREETING "220 mx.test ESMTP riptide\r\n"
#define EHLO_REPLY                                                                                 \
	"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"                       \
	"250 ENHANCEDSTATUSCODES\r\n"

struct fx;

enum step_kind {
	S_END = 0,
	S_SEND,	      /* write data */
	S_EXPECT,     /* read n complete replies; got[i] is what was read */
	S_EOF,	      /* read until EOF; got[i] is what was read */
	S_CALL,	      /* run fn on the loop thread and wait until it has run */
	S_WAIT_CLOSE, /* keep the socket open until on_close ran (5 s max); got "closed" */
};

struct step {
	enum step_kind kind;
	const char *data; /* S_SEND: bytes to write; S_EXPECT/S_EOF: the wanted text */
	unsigned n;	  /* S_EXPECT: number of replies (final lines) */
	void (*fn)(struct fx *f);
};

/* clang-format off */
#define SEND(s)	     {.kind = S_SEND, .data = (s)}
#define EXPECT(k, s) {.kind = S_EXPECT, .data = (s), .n = (k)}
#define EXPECT_EOF(s) {.kind = S_EOF, .data = (s)}
#define CALL(f)	     {.kind = S_CALL, .fn = (f)}
#define WAIT_CLOSE() {.kind = S_WAIT_CLOSE, .data = "closed"}
#define HELLO	     EXPECT(1, GREETING), SEND("EHLO client.test\r\n"), EXPECT(1, EHLO_REPLY)
#define BYE	     SEND("QUIT\r\n"), EXPECT(1, "221 2.0.0 Bye\r\n"), EXPECT_EOF("")
/* clang-format on */

struct fx {
	char dir[64];
	char path[96];
	struct loop *l;
	struct smtpd_server *srv;
	struct smtpd_worker *w;
	struct smtpd_config cfg;
	struct smtpd_hooks hooks;
	/* peer */
	const struct step *steps;
	char *got[MAX_STEPS];
	char buf[PEER_BUF];
	size_t blen;
	pthread_t peer;
	struct loop_msg end_msg, call_msg;
	void (*call_fn)(struct fx *f);
	atomic_bool call_done;
	/* what the hooks saw (loop thread; read after join) */
	char log[2048];
	unsigned mails, datas, done_calls;
	atomic_uint closes; /* also polled by the peer (S_WAIT_CLOSE) */
	char *body;	    /* taken or copied body of the last on_data */
	size_t body_len;
	bool second_take_null;
	struct loop_op async_op;
	struct smtpd_session *async_s;
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

/* ---- default hooks: record and accept ---- */

static int hook_mail(struct smtpd_session *s, const char *sender, const char *params, void *user)
{
	struct fx *f = user;

	f->mails++;
	logf_(f, "mail %s;", sender);
	return SMTPD_DEFAULT;
}

static int hook_rcpt(struct smtpd_session *s, const char *rcpt, void *user)
{
	logf_(user, "rcpt %s;", rcpt);
	return SMTPD_DEFAULT;
}

static void keep_body(struct fx *f, const char *b, size_t len)
{
	free(f->body);
	f->body = util_xmalloc(len + 1);
	memcpy(f->body, b, len + 1); /* including the NUL smtpd promises at b[len] */
	f->body_len = len;
}

static int hook_data(struct smtpd_session *s, const struct smtpd_envelope *env, void *user)
{
	struct fx *f = user;

	f->datas++;
	logf_(f, "data from %s to", env->sender);
	for (unsigned i = 0; i < env->nrcpts; i++)
		logf_(f, " %s", env->rcpts[i]);
	logf_(f, ";");
	keep_body(f, env->body, env->body_len);
	return SMTPD_DEFAULT;
}

static void hook_close(struct smtpd_session *s, void *user)
{
	struct fx *f = user;

	f->closes++;
}

/* ---- the scripted peer (its own thread: blocking I/O, records only) ---- */

/* End of the first n replies in b (a reply ends with a line "ddd " ... LF), or 0. */
static size_t replies_end(const char *b, size_t len, unsigned n)
{
	size_t i = 0, next;
	const char *lf;

	while (n && i < len) {
		lf = memchr(b + i, '\n', len - i);
		if (!lf)
			return 0;
		next = (size_t)(lf - b) + 1;
		if (next - i >= 4 && b[i + 3] == ' ')
			n--;
		i = next;
	}
	return n ? 0 : i;
}

/* Read until n replies are buffered (or EOF); return them, keep what follows. */
static char *peer_expect(struct fx *f, int fd, unsigned n)
{
	size_t end;
	ssize_t r;
	char *out;

	while (!(end = replies_end(f->buf, f->blen, n)) && f->blen < PEER_BUF) {
		r = read(fd, f->buf + f->blen, PEER_BUF - f->blen);
		if (r <= 0)
			break;
		f->blen += (size_t)r;
	}
	if (!end)
		end = f->blen;
	out = util_xstrndup(f->buf, end);
	memmove(f->buf, f->buf + end, f->blen - end);
	f->blen -= end;
	return out;
}

static char *peer_eof(struct fx *f, int fd)
{
	ssize_t r = 0;
	char *out;

	while (f->blen < PEER_BUF && (r = read(fd, f->buf + f->blen, PEER_BUF - f->blen)) > 0)
		f->blen += (size_t)r;
	if (r < 0) /* e.g. ECONNRESET: the server closed with our input unread */
		f->blen +=
		    (size_t)snprintf(f->buf + f->blen, PEER_BUF - f->blen, "<%s>", strerror(errno));
	out = util_xstrndup(f->buf, f->blen);
	f->blen = 0;
	return out;
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

static void on_worker_done(struct smtpd_worker *w, void *arg)
{
	struct fx *f = arg;

	f->done_calls++;
	loop_stop(f->l);
}

static void end_msg_fn(struct loop *l, struct loop_msg *m)
{
	struct fx *f = container_of(m, struct fx, end_msg);

	smtpd_worker_shutdown(f->w, 1000, on_worker_done, f); /* no-op if already shut down */
}

/* Run fn on the loop thread; wait for it so the next step sees its effect. */
static void peer_call(struct fx *f, void (*fn)(struct fx *f))
{
	atomic_store(&f->call_done, false);
	f->call_fn = fn;
	f->call_msg.fn = call_msg_fn;
	loop_post(f->l, &f->call_msg);
	while (!atomic_load(&f->call_done))
		usleep(1000);
}

static char *peer_wait_close(struct fx *f)
{
	const char *r;

	for (unsigned ms = 0; ms < 5000 && !atomic_load(&f->closes); ms++)
		usleep(1000);
	r = atomic_load(&f->closes) ? "closed" : "still open";
	return util_xstrndup(r, strlen(r));
}

static int peer_connect(const struct fx *f)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void *peer_main(void *arg)
{
	struct fx *f = arg;
	int fd = peer_connect(f);

	for (unsigned i = 0; fd >= 0 && f->steps[i].kind != S_END; i++) {
		const struct step *st = &f->steps[i];

		if (st->kind == S_SEND) {
			write_all(fd, st->data, strlen(st->data));
		} else if (st->kind == S_EXPECT) {
			f->got[i] = peer_expect(f, fd, st->n);
		} else if (st->kind == S_EOF) {
			f->got[i] = peer_eof(f, fd);
		} else if (st->kind == S_CALL) {
			peer_call(f, st->fn);
		} else if (st->kind == S_WAIT_CLOSE) {
			f->got[i] = peer_wait_close(f);
		}
	}
	if (fd >= 0)
		close(fd);
	f->end_msg.fn = end_msg_fn;
	loop_post(f->l, &f->end_msg);
	return NULL;
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct fx *f = util_xcalloc(1, sizeof(*f));

	alarm(20); /* a hang fails the test instead of stalling the suite */
	snprintf(f->dir, sizeof(f->dir), "/tmp/rt-smtpd-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/smtpd.sock", f->dir);
	f->cfg = (struct smtpd_config){
	    .hostname = "mx.test",
	    .max_size = MAX_SIZE,
	    .max_rcpts = MAX_RCPTS,
	    .max_line = MAX_LINE,
	};
	f->hooks = (struct smtpd_hooks){
	    .on_mail = hook_mail,
	    .on_rcpt = hook_rcpt,
	    .on_data = hook_data,
	    .on_close = hook_close,
	};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	for (unsigned i = 0; i < MAX_STEPS; i++)
		free(f->got[i]);
	free(f->body);
	rmdir(f->dir);
	free(f);
	alarm(0);
	return 0;
}

/* Run one session: server + worker on a fresh loop, the peer plays steps, the loop runs until
 * the worker's shutdown completes. Then compare what the peer read with what it wanted. */
static void run(struct fx *f, const struct step *steps)
{
	char addr[160];

	f->steps = steps;
	snprintf(addr, sizeof(addr), "unix:%s", f->path);
	assert_int_equal(smtpd_server_new(&f->srv, &f->cfg, &f->hooks, f), 0);
	assert_int_equal(smtpd_server_listen_str(f->srv, addr), 0);
	assert_int_equal(loop_new(&f->l, 64), 0);
	assert_int_equal(smtpd_worker_new(&f->w, f->srv, f->l, NULL), 0);
	assert_int_equal(pthread_create(&f->peer, NULL, peer_main, f), 0);
	assert_int_equal(loop_run(f->l), 0);
	assert_int_equal(pthread_join(f->peer, NULL), 0);
	assert_int_equal(smtpd_worker_sessions(f->w), 0);
	smtpd_worker_free(f->w);
	smtpd_server_free(f->srv);
	loop_free(f->l);
	assert_int_equal(f->done_calls, 1);
	for (unsigned i = 0; steps[i].kind != S_END; i++) {
		if (steps[i].kind == S_EXPECT || steps[i].kind == S_EOF ||
		    steps[i].kind == S_WAIT_CLOSE) {
			assert_non_null(f->got[i]);
			assert_string_equal(f->got[i], steps[i].data);
		}
	}
}

/* ---- tests ---- */

static void test_greeting_and_ehlo(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO,
	    SEND("HELO old.test\r\n"), /* HELO: one line, no keywords */
	    EXPECT(1, "250 mx.test\r\n"),
	    BYE,
	    {0},
	};

	run(f, steps);
	assert_int_equal(f->closes, 1);
}

static void test_pipelined_one_write(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    EXPECT(1, GREETING),
	    SEND("EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
		 "RCPT TO:<c@y.test>\r\nDATA\r\nSubject: t\r\n\r\nhello\r\n.\r\nNOOP\r\nQUIT\r\n"),
	    EXPECT(8, EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
				 "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok\r\n"
				 "250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	run(f, steps);
	assert_string_equal(f->log, "mail a@x.test;rcpt b@y.test;rcpt c@y.test;"
				    "data from a@x.test to b@y.test c@y.test;");
	assert_string_equal(f->body, "Subject: t\r\n\r\nhello\r\n");
	assert_int_equal(f->body_len, strlen("Subject: t\r\n\r\nhello\r\n"));
}

/* One session per limit: the commands (one write) and every reply they must get. */
struct limit_case {
	const char *send;
	unsigned nreplies;
	const char *want;
};

static char big_body[MAX_SIZE + 200];
static char long_line[MAX_LINE + 40];

/* A transaction whose body is ~1100 bytes (> MAX_SIZE), and a 95-byte command line. */
static void build_inputs(void)
{
	const char *head = "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n";
	size_t n = strlen(head);

	memcpy(big_body, head, n);
	while (n + 16 + 4 <= sizeof(big_body)) {
		memcpy(big_body + n, "0123456789abcd\r\n", 16);
		n += 16;
	}
	memcpy(big_body + n, ".\r\n", 4);
	memset(long_line, 'X', sizeof(long_line) - 9);
	memcpy(long_line + sizeof(long_line) - 9, "\r\nNOOP\r\n", 9);
}

static void run_limit(const struct limit_case *c, unsigned *datas)
{
	struct fx *f;
	const struct step steps[] = {HELLO, SEND(c->send), EXPECT(c->nreplies, c->want), BYE, {0}};

	assert_int_equal(setup((void **)&f), 0);
	run(f, steps);
	*datas += f->datas;
	teardown((void **)&f);
}

static void test_limits(void **state)
{
	const struct limit_case cases[] = {
	    {"MAIL FROM:<a@x.test> SIZE=1001\r\n", 1,
	     "552 5.3.4 Message size exceeds fixed limit\r\n"},
	    {big_body, 4,
	     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
	     "552 5.3.4 Error: message size exceeds fixed limit\r\n"},
	    {"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n"
	     "RCPT TO:<d@y.test>\r\n",
	     4,
	     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n452 4.5.3 Error: too many "
	     "recipients\r\n"},
	    {long_line, 2, "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n"},
	    {"FROB\r\n", 1, "500 5.5.1 Error: command not recognized\r\n"},
	    {"RCPT TO:<b@y.test>\r\n", 1, "503 5.5.1 Error: need MAIL command\r\n"},
	    {"MAIL FROM:<a@x.test>\r\nDATA\r\n", 2,
	     "250 2.1.0 Ok\r\n503 5.5.1 Error: need RCPT command\r\n"},
	    {"MAIL FROM:a@x.test\r\n", 1, "501 5.1.3 Error: bad address syntax\r\n"},
	};
	unsigned datas = 0;

	build_inputs();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_limit(&cases[i], &datas);
	assert_int_equal(datas, 0); /* the oversize body never reached on_data */
}

/* ---- async DATA reply ---- */

static void async_reply_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct fx *f = container_of(op, struct fx, async_op);

	logf_(f, "reply;");
	smtpd_reply(f->async_s, 250, "2.0.0 Ok: queued as T1");
}

static int hook_data_async(struct smtpd_session *s, const struct smtpd_envelope *env, void *user)
{
	struct fx *f = user;

	f->datas++;
	logf_(f, "data;");
	keep_body(f, env->body, env->body_len);
	f->async_s = s;
	f->async_op = (struct loop_op){.cb = async_reply_cb};
	loop_timer(f->l, &f->async_op, 50);
	return SMTPD_ASYNC;
}

static void test_async_data_reply(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nhi\r\n.\r\n"
		 "MAIL FROM:<c@x.test>\r\nRSET\r\n"),
	    EXPECT(6, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		      "250 2.0.0 Ok: queued as T1\r\n250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n"),
	    BYE,
	    {0},
	};

	f->hooks.on_data = hook_data_async;
	run(f, steps);
	/* the MAIL pipelined after the dot ran only after the owner's reply */
	assert_string_equal(f->log, "mail a@x.test;rcpt b@y.test;data;reply;mail c@x.test;");
	assert_string_equal(f->body, "hi\r\n");
}

/* ---- smtpd_take_body ---- */

static int hook_data_take(struct smtpd_session *s, const struct smtpd_envelope *env, void *user)
{
	struct fx *f = user;
	size_t len2 = 0;
	char *b;

	f->datas++;
	if (f->datas > 1) { /* the next transaction got a fresh buffer */
		logf_(f, "second %.*s;", (int)env->body_len, env->body);
		return SMTPD_DEFAULT;
	}
	free(f->body);
	f->body = smtpd_take_body(s, &f->body_len);
	b = smtpd_take_body(s, &len2);
	f->second_take_null = b == NULL;
	return SMTPD_DEFAULT;
}

static void test_take_body(void **state)
{
	struct fx *f = *state;
	const char *want = "Subject: t\r\n\r\n.dot\r\n.\r\nend\r\n";
	const struct step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
		 "Subject: t\r\n\r\n..dot\r\n..\r\nend\r\n.\r\n"
		 "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\ntwo\r\n.\r\n"),
	    EXPECT(8, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		      "250 2.0.0 Ok\r\n"
		      "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		      "250 2.0.0 Ok\r\n"),
	    BYE,
	    {0},
	};

	f->hooks.on_data = hook_data_take;
	run(f, steps);
	assert_non_null(f->body);
	assert_int_equal(f->body_len, strlen(want));
	assert_memory_equal(f->body, want, f->body_len);
	assert_int_equal(f->body[f->body_len], '\0');
	assert_true(f->second_take_null);
	assert_int_equal(f->datas, 2);
	assert_true(strstr(f->log, "second two\r\n;") != NULL);
}

/* ---- smuggling: only <CRLF>.<CRLF> ends DATA ---- */

static void test_no_smuggling(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
		 "x\n.\nMAIL FROM:<evil@x.test>\r\n.\r\n"),
	    EXPECT(4, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
		      "250 2.0.0 Ok\r\n"),
	    BYE,
	    {0},
	};

	run(f, steps);
	assert_int_equal(f->mails, 1);
	assert_int_equal(f->datas, 1);
	/* the smuggled command stayed body text (bare LFs normalised to CRLF) */
	assert_string_equal(f->body, "x\r\n.\r\nMAIL FROM:<evil@x.test>\r\n");
}

/* ---- shutdown ---- */

static void do_shutdown(struct fx *f)
{
	smtpd_worker_shutdown(f->w, 1000, on_worker_done, f);
}

static void test_shutdown_idle(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO,
	    CALL(do_shutdown),
	    EXPECT(1, "421 4.3.2 Service shutting down\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	run(f, steps);
	assert_int_equal(f->done_calls, 1);
	assert_int_equal(f->closes, 1);
}

static void test_shutdown_mid_transaction(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"),
	    EXPECT(2, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
	    CALL(do_shutdown), /* inside a transaction: it may finish */
	    SEND("DATA\r\nhi\r\n.\r\nNOOP\r\n"),
	    EXPECT(3, "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok\r\n"
		      "421 4.3.2 Service shutting down\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	run(f, steps);
	assert_int_equal(f->datas, 1);
	assert_int_equal(f->closes, 1);
}

static void do_shutdown_short(struct fx *f)
{
	smtpd_worker_shutdown(f->w, 100, on_worker_done, f);
}

static void test_shutdown_grace_expires(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\n"),
	    EXPECT(1, "250 2.1.0 Ok\r\n"),
	    CALL(do_shutdown_short), /* the transaction never finishes: grace ends it */
	    EXPECT(1, "421 4.3.2 Service shutting down\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	run(f, steps);
	assert_int_equal(f->datas, 0);
	assert_int_equal(f->closes, 1);
}

static void test_async_reply_after_peer_left(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nhi\r\n.\r\n"),
	    EXPECT(3, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"),
	    {0}, /* the peer closes while the reply is owed */
	};

	f->hooks.on_data = hook_data_async;
	run(f, steps);
	assert_string_equal(f->log, "mail a@x.test;rcpt b@y.test;data;reply;");
	assert_int_equal(f->closes, 1);
}

static void test_too_many_errors(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO,
	    SEND("FROB\r\nFROB\r\nNOOP\r\n"),
	    EXPECT(3, "500 5.5.1 Error: command not recognized\r\n"
		      "500 5.5.1 Error: command not recognized\r\n"
		      "421 4.7.0 Error: too many errors\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	f->cfg.max_errors = 2;
	run(f, steps);
	assert_int_equal(f->closes, 1);
}

static int hook_connect_reject(struct smtpd_session *s, void *user)
{
	smtpd_reply(s, 554, "5.7.1 No service for you");
	return SMTPD_DEFAULT;
}

static void test_connect_rejected(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    EXPECT(1, "554 5.7.1 No service for you\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	f->hooks.on_connect = hook_connect_reject;
	run(f, steps);
	assert_int_equal(f->closes, 1);
	assert_int_equal(f->mails, 0);
}

static void test_linger_drains_late_input(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO,
	    SEND("QUIT\r\n"),
	    EXPECT(1, "221 2.0.0 Bye\r\n"),
	    SEND("NOOP\r\nNOOP\r\n"), /* after QUIT: drained, never answered, never a reset */
	    EXPECT_EOF(""),
	    {0},
	};

	run(f, steps);
	assert_int_equal(f->closes, 1);
}

static void test_linger_is_bounded(void **state)
{
	struct fx *f = *state;
	const struct step steps[] = {
	    HELLO,
	    SEND("QUIT\r\n"),
	    EXPECT(1, "221 2.0.0 Bye\r\n"),
	    EXPECT_EOF(""), /* the server shut down its side */
	    WAIT_CLOSE(),   /* we never close: the server gives up lingering on its own */
	    {0},
	};

	run(f, steps);
	assert_int_equal(f->closes, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_greeting_and_ehlo, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipelined_one_write, setup, teardown),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test_setup_teardown(test_async_data_reply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_take_body, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_smuggling, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_idle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_mid_transaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_grace_expires, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_async_reply_after_peer_left, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_many_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connect_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_linger_drains_late_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_linger_is_bounded, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
