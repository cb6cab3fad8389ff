/* test_smtpd_hard — unit tests for what issue 5 added to engine/smtpd: deadlines against slow
 * clients, the global max_sessions, hidden EHLO extensions, SMTPUTF8, the on_helo and
 * on_data_begin hooks (reject, 421, drop, sync and async), smtpd_body_prepend, SIZE= overflow
 * and a body buffer that does not follow an announced SIZE=.
 *
 * Why a second file: test_smtpd.c pins the protocol core; this file pins the hardening, with
 * the same fixture (smtpd_fx.c) and the same scripted peer over a UNIX socket. Slow clients are
 * played with TRICKLE (one byte every few ms, stopping as soon as the server speaks) against
 * deadlines of a few hundred ms, with the per-read timeouts left at their 300/180 s defaults,
 * so only the deadline can end those sessions within the test's alarm.
 */
#include "tests/unit/smtpd/smtpd_fx.h"
#include "engine/smtp/smtp.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define TIMED_OUT   "421 4.4.2 mx.test Error: timeout exceeded\r\n"
#define NEED_UTF8   "553 5.6.7 Error: non-ASCII address requires SMTPUTF8\r\n"
#define UNSUPPORTED "555 5.5.4 Unsupported parameter\r\n"
#define TOO_BIG	    "552 5.3.4 Message size exceeds fixed limit\r\n"
#define NOT_GREETED "503 5.5.1 Error: send HELO/EHLO first\r\n"
#define MAIL_RCPT   "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
#define BYE_CODES   "221 2.0.0 Bye\r\n"

/* ---- deadlines ---- */

static void test_cmd_deadline_cuts_trickle(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    TRICKLE("MAIL FROM:<a@x.test>\r\n", 30), /* 22 bytes over ~660 ms */
	    EXPECT(1, TIMED_OUT),
	    EXPECT_EOF(""),
	    {0},
	};

	f->cfg.cmd_deadline_ms = 300; /* cmd_timeout_ms (per read) stays 300 s */
	fx_run(f, steps);
	assert_int_equal(f->mails, 0);
}

static void test_data_deadline_cuts_trickle(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND(MAIL_RCPT "DATA\r\n"),
	    EXPECT(3, OK_MAIL OK_RCPT GO_DATA),
	    TRICKLE("Subject: slow\r\n\r\nbody\r\n.\r\n", 25), /* 27 bytes over ~675 ms */
	    EXPECT(1, TIMED_OUT),
	    EXPECT_EOF(""),
	    {0},
	};

	f->cfg.data_deadline_ms = 300; /* data_timeout_ms (per read) stays 180 s */
	fx_run(f, steps);
	assert_int_equal(f->datas, 0);
}

/* ---- max_sessions is global: two workers on two loop threads, limit 3 ---- */

struct mt;
struct mt_worker {
	struct mt *m;
	struct loop *l;
	struct smtpd_worker *w;
	struct loop_msg stop;
	unsigned took; /* on_connect calls (its own loop thread; read after join) */
};

struct mt {
	struct smtpd_server *srv;
	const char *path;
	struct mt_worker wk[2];
	atomic_bool b_ready;
	char got[7][128]; /* what each client connection read (client thread) */
};

static int mt_on_connect(struct smtpd_session *s, void *user)
{
	((struct mt_worker *)user)->took++;
	return SMTPD_DEFAULT;
}

static void mt_done(struct smtpd_worker *w, void *arg)
{
	loop_stop(((struct mt_worker *)arg)->l);
}

static void mt_stop_fn(struct loop *l, struct loop_msg *msg)
{
	struct mt_worker *wk = container_of(msg, struct mt_worker, stop);

	smtpd_worker_shutdown(wk->w, 1000, mt_done, wk);
}

static void *mt_thread_b(void *arg)
{
	struct mt *m = arg;
	struct mt_worker *wk = &m->wk[1];

	if (loop_new(&wk->l, 64) < 0 || smtpd_worker_new(&wk->w, m->srv, wk->l, wk) < 0)
		abort();
	atomic_store(&m->b_ready, true);
	loop_run(wk->l);
	smtpd_worker_free(wk->w);
	loop_free(wk->l);
	return NULL;
}

/* Connect and read up to the first CRLF (all: until EOF) within 5 s; -1 if no connection. */
static int mt_dial(const struct mt *m, char *got, size_t cap, bool all)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct pollfd pf = {.events = POLLIN};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t n = 0;
	ssize_t r = 1;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", m->path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -1;
	}
	pf.fd = fd;
	while (n + 1 < cap && r > 0 && (all || !memchr(got, '\n', n)) && poll(&pf, 1, 5000) > 0)
		if ((r = read(fd, got + n, cap - 1 - n)) > 0)
			n += (size_t)r;
	got[n] = '\0';
	return fd;
}

/* Three sessions (each greeted before the next connects), three more over the limit (each
 * read to EOF), then one closed and one more admitted. With a per-worker limit of 3 only all
 * six landing on one worker would refuse three. */
static void *mt_client(void *arg)
{
	struct mt *m = arg;
	int fd[7];

	for (int i = 0; i < 6; i++)
		fd[i] = mt_dial(m, m->got[i], sizeof(m->got[i]), i >= 3);
	close(fd[0]);
	for (int ms = 0; ms < 5000 && smtpd_server_sessions(m->srv) != 2; ms++)
		usleep(1000);
	fd[6] = mt_dial(m, m->got[6], sizeof(m->got[6]), false); /* room again */
	for (int i = 1; i < 7; i++)
		close(fd[i]);
	for (int i = 0; i < 2; i++) {
		m->wk[i].stop.fn = mt_stop_fn;
		loop_post(m->wk[i].l, &m->wk[i].stop);
	}
	return NULL;
}

static void test_max_sessions_global(void **state)
{
	struct fx *f = *state;
	struct mt m = {.path = f->peer.path};
	pthread_t tb, tc;
	char addr[160];

	f->cfg.max_sessions = 3;
	f->hooks = (struct smtpd_hooks){.on_connect = mt_on_connect};
	peer_addr(&f->peer, addr, sizeof(addr));
	assert_int_equal(smtpd_server_new(&m.srv, &f->cfg, &f->hooks, NULL), 0);
	assert_int_equal(smtpd_server_listen_str(m.srv, addr), 0);
	for (int i = 0; i < 2; i++)
		m.wk[i].m = &m;
	assert_int_equal(loop_new(&m.wk[0].l, 64), 0);
	assert_int_equal(smtpd_worker_new(&m.wk[0].w, m.srv, m.wk[0].l, &m.wk[0]), 0);
	assert_int_equal(pthread_create(&tb, NULL, mt_thread_b, &m), 0);
	while (!atomic_load(&m.b_ready))
		usleep(1000);
	assert_int_equal(pthread_create(&tc, NULL, mt_client, &m), 0);
	assert_int_equal(loop_run(m.wk[0].l), 0);
	assert_int_equal(pthread_join(tc, NULL), 0);
	assert_int_equal(pthread_join(tb, NULL), 0);
	smtpd_worker_free(m.wk[0].w);
	assert_int_equal(smtpd_server_sessions(m.srv), 0);
	smtpd_server_free(m.srv);
	loop_free(m.wk[0].l);
	for (int i = 0; i < 7; i++)
		assert_string_equal(m.got[i], i < 3 || i == 6
						  ? GREETING
						  : "421 4.7.0 Error: too many connections\r\n");
	assert_int_equal(m.wk[0].took + m.wk[1].took, 4); /* the refused never reached a hook */
	print_message("workers took %u and %u sessions\n", m.wk[0].took, m.wk[1].took);
}

/* ---- hide_ext ---- */

struct hide_case {
	uint32_t hide;
	const char *ehlo;
	const char *send;
	unsigned n;
	const char *want;
	const char *bye;
};

#define ALL_EXT                                                                                    \
	(SMTP_EXT_PIPELINING | SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 |             \
	 SMTP_EXT_DSN | SMTP_EXT_ENHANCEDSTATUSCODES)

static const struct hide_case hide_cases[] = {
    {SMTP_EXT_PIPELINING,
     "250-mx.test\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250 "
     "ENHANCEDSTATUSCODES\r\n",
     "MAIL FROM:<a@x.test> SIZE=10\r\nRSET\r\n", 2, OK_MAIL OK_DOT, BYE_CODES},
    {SMTP_EXT_SIZE,
     "250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250 "
     "ENHANCEDSTATUSCODES\r\n",
     "MAIL FROM:<a@x.test> SIZE=10\r\n", 1, UNSUPPORTED, BYE_CODES},
    {SMTP_EXT_8BITMIME,
     "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-SMTPUTF8\r\n250-DSN\r\n250 "
     "ENHANCEDSTATUSCODES\r\n",
     "MAIL FROM:<a@x.test> BODY=8BITMIME\r\nMAIL FROM:<a@x.test> BODY=7BIT\r\n", 2,
     UNSUPPORTED UNSUPPORTED, BYE_CODES},
    {SMTP_EXT_SMTPUTF8,
     "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-DSN\r\n250 "
     "ENHANCEDSTATUSCODES\r\n",
     "MAIL FROM:<a@x.test> SMTPUTF8\r\nMAIL FROM:<\xc3\xa9@x.test>\r\n", 2, UNSUPPORTED NEED_UTF8,
     BYE_CODES},
    {SMTP_EXT_ENHANCEDSTATUSCODES,
     "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
     "250 DSN\r\n",
     "MAIL FROM:<a@x.test>\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b c>\r\n", 3,
     "250 Ok\r\n503 Error: nested MAIL command\r\n501 Error: bad address syntax\r\n",
     "221 Bye\r\n"},
    {SMTP_EXT_DSN,
     "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 "
     "ENHANCEDSTATUSCODES\r\n",
     "MAIL FROM:<a@x.test> RET=HDRS\r\nMAIL FROM:<a@x.test> ENVID=x\r\nMAIL FROM:<a@x.test>\r\n"
     "RCPT TO:<b@y.test> NOTIFY=NEVER\r\nRCPT TO:<b@y.test> ORCPT=rfc822;b@y.test\r\n",
     5, UNSUPPORTED UNSUPPORTED OK_MAIL UNSUPPORTED UNSUPPORTED, BYE_CODES},
    {ALL_EXT, "250 mx.test\r\n", "MAIL FROM:<a@x.test> SIZE=1\r\n", 1,
     "555 Unsupported parameter\r\n", "221 Bye\r\n"},
};

static void test_hide_ext(void **state)
{
	for (size_t i = 0; i < sizeof(hide_cases) / sizeof(hide_cases[0]); i++) {
		const struct hide_case *c = &hide_cases[i];
		const struct peer_step steps[] = {
		    EXPECT(1, GREETING),
		    SEND("EHLO client.test\r\n"),
		    EXPECT(1, c->ehlo),
		    SEND(c->send),
		    EXPECT(c->n, c->want),
		    SEND("QUIT\r\n"),
		    EXPECT(1, c->bye),
		    EXPECT_EOF(""),
		    {0},
		};
		struct fx *f;

		assert_int_equal(fx_setup((void **)&f), 0);
		f->cfg.hide_ext = c->hide;
		fx_run(f, steps);
		fx_teardown((void **)&f);
	}
}

/* ---- SMTPUTF8 ---- */

static int hook_data_flags(struct smtpd_session *s, const struct smtpd_envelope *env, void *user)
{
	struct fx *f = user;

	f->datas++;
	logf_(f, "data %s %s utf8=%d 8bit=%d;", env->sender, env->rcpts[0], env->smtputf8,
	      env->body_8bit);
	return SMTPD_DEFAULT;
}

static void test_smtputf8(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<\xc3\xa9@x.test>\r\n"), /* non-ASCII without SMTPUTF8 */
	    EXPECT(1, NEED_UTF8),
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<\xc3\xbc@y.test>\r\nRCPT TO:<b@y.test>\r\n"
		 "DATA\r\nx\r\n.\r\n"),
	    EXPECT(5, OK_MAIL NEED_UTF8 OK_RCPT GO_DATA OK_DOT),
	    SEND("MAIL FROM:<\xc3\xa9@x.test> SMTPUTF8 BODY=8BITMIME\r\nRCPT "
		 "TO:<\xc3\xbc@y.test>\r\n"
		 "DATA\r\ny\r\n.\r\n"),
	    EXPECT(4, OK_MAIL OK_RCPT GO_DATA OK_DOT),
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<\xc3\xbc@y.test>\r\nRSET\r\n"), /* flag reset */
	    EXPECT(3, OK_MAIL NEED_UTF8 OK_DOT),
	    SEND("MAIL FROM:<a@x.test> SMTPUTF8=yes\r\n"),
	    EXPECT(1, "501 5.5.4 Invalid parameter value\r\n"),
	    BYE,
	    {0},
	};

	f->hooks.on_data = hook_data_flags;
	fx_run(f, steps);
	assert_string_equal(f->log,
			    "mail a@x.test;rcpt b@y.test;data a@x.test b@y.test utf8=0 8bit=0;"
			    "mail \xc3\xa9@x.test;rcpt \xc3\xbc@y.test;"
			    "data \xc3\xa9@x.test \xc3\xbc@y.test utf8=1 8bit=1;mail a@x.test;");
}

/* ---- SIZE= that does not fit ---- */

static void test_size_overflow(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test> SIZE=100000000000000000000\r\n" /* 21 digits */
		 "MAIL FROM:<a@x.test> SIZE=18446744073709551616\r\n"  /* 2^64 */
		 "MAIL FROM:<a@x.test> SIZE=99999999999999999999\r\n"
		 "MAIL FROM:<a@x.test> SIZE=12a\r\n"
		 "MAIL FROM:<a@x.test> SIZE=00000000000000000999\r\nRSET\r\n"),
	    EXPECT(6,
		   TOO_BIG TOO_BIG TOO_BIG "501 5.5.4 Invalid parameter value\r\n" OK_MAIL OK_DOT),
	    BYE,
	    {0},
	};

	fx_run(f, steps);
	assert_int_equal(f->mails, 1);
}

/* ---- hooks: verdicts by name (HELO name, or the sender for on_data_begin) ---- */

struct verdict {
	const char *prefix;
	int code; /* 0 default, -1 drop, -2 return -EIO */
	const char *text;
};

static const struct verdict verdicts[] = {
    {"bad", 550, "5.7.1 Go away"},
    {"bye", 421, "4.7.0 Closing"},
    {"drop", -1, NULL},
    {"fail", -2, NULL},
    {"custom", 250, "this text is not used"},
    {"go", 354, "Go ahead"},
};

static int verdict_of(const char *name, const char **text)
{
	for (size_t i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++)
		if (strncmp(name, verdicts[i].prefix, strlen(verdicts[i].prefix)) == 0) {
			*text = verdicts[i].text;
			return verdicts[i].code;
		}
	*text = NULL;
	return 0;
}

/* Apply the verdict for name now (from inside a hook). */
static int verdict_apply(struct fx *f, struct smtpd_session *s, const char *name)
{
	const char *text;
	int code = verdict_of(name, &text);

	if (strncmp(name, "pre", 3) == 0 || strncmp(name, "go", 2) == 0)
		smtpd_body_prepend(s, f->prepend, strlen(f->prepend));
	if (code == -1)
		smtpd_session_drop(s);
	else if (code == -2)
		return -EIO;
	else if (code)
		smtpd_reply(s, code, text);
	return SMTPD_DEFAULT;
}

static int hook_helo(struct smtpd_session *s, const char *name, void *user)
{
	struct fx *f = user;

	logf_(f, "helo %s (was '%s');", name, smtpd_session_helo(s));
	return verdict_apply(f, s, name);
}

static int hook_mail_helo(struct smtpd_session *s, const char *sender, const char *params,
			  void *user)
{
	struct fx *f = user;

	f->mails++;
	logf_(f, "mail %s helo=%s esmtp=%d;", sender, smtpd_session_helo(s),
	      smtpd_session_esmtp(s));
	snprintf(f->sel, sizeof(f->sel), "%s", sender);
	return SMTPD_DEFAULT;
}

static int hook_data_begin(struct smtpd_session *s, void *user)
{
	struct fx *f = user;

	logf_(f, "begin %s;", f->sel);
	return verdict_apply(f, s, f->sel);
}

/* The async variants: a timer 20 ms later applies the same verdict (accepting with
 * async_code). The reply may run the next pipelined command, whose hook re-arms this timer and
 * rewrites f->sel: everything needed is read before. */
static void async_verdict_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct fx *f = container_of(op, struct fx, async_op);
	int code = f->async_code;
	const char *text = f->async_text, *vtext;
	char sel[sizeof(f->sel)];

	memcpy(sel, f->sel, sizeof(sel));
	if (verdict_of(sel, &vtext))
		verdict_apply(f, f->async_s, sel);
	else
		smtpd_reply(f->async_s, code, text);
}

static int go_async(struct fx *f, struct smtpd_session *s, const char *sel)
{
	snprintf(f->sel, sizeof(f->sel), "%s", sel);
	f->async_s = s;
	f->async_op = (struct loop_op){.cb = async_verdict_cb};
	loop_timer(f->l, &f->async_op, 20);
	return SMTPD_ASYNC;
}

static int hook_helo_async(struct smtpd_session *s, const char *name, void *user)
{
	struct fx *f = user;

	logf_(f, "helo %s;", name);
	f->async_code = 250;
	f->async_text = "not used";
	return go_async(f, s, name);
}

static int hook_data_begin_async(struct smtpd_session *s, void *user)
{
	struct fx *f = user;
	char sel[64];

	logf_(f, "begin %s;", f->sel);
	f->async_code = 354;
	f->async_text = "Start mail input";
	snprintf(sel, sizeof(sel), "%s", f->sel);
	return go_async(f, s, sel);
}

/* ---- on_helo ---- */

static void test_on_helo_verdicts(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    EXPECT(1, GREETING),
	    SEND("EHLO bad.test\r\nMAIL FROM:<a@x.test>\r\n"), /* rejected: still not greeted */
	    EXPECT(2, "550 5.7.1 Go away\r\n" NOT_GREETED),
	    SEND("EHLO fail.test\r\n"),
	    EXPECT(1, "451 4.3.0 Error: local error\r\n"),
	    SEND("EHLO custom.test\r\n"), /* a 2xx from the hook: the standard EHLO reply */
	    EXPECT(1, EHLO_REPLY),
	    SEND("MAIL FROM:<a@x.test>\r\nHELO bad.again\r\nRCPT TO:<b@y.test>\r\n"),
	    EXPECT(3, OK_MAIL "550 5.7.1 Go away\r\n" OK_RCPT), /* nothing changed */
	    SEND("HELO plain.test\r\nRCPT TO:<b@y.test>\r\n"),	/* accepted: transaction reset */
	    EXPECT(2, "250 mx.test\r\n503 5.5.1 Error: need MAIL command\r\n"),
	    SEND("MAIL FROM:<c@x.test>\r\n"),
	    EXPECT(1, OK_MAIL),
	    SEND("EHLO bye.test\r\n"),
	    EXPECT(1, "421 4.7.0 Closing\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	f->hooks.on_helo = hook_helo;
	f->hooks.on_mail = hook_mail_helo;
	fx_run(f, steps);
	assert_string_equal(
	    f->log, "helo bad.test (was '');helo fail.test (was '');"
		    "helo custom.test (was '');mail a@x.test helo=custom.test esmtp=1;"
		    "helo bad.again (was 'custom.test');rcpt b@y.test;"
		    "helo plain.test (was 'custom.test');"
		    "mail c@x.test helo=plain.test esmtp=0;helo bye.test (was 'plain.test');");
}

static void test_on_helo_drop(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    EXPECT(1, GREETING),
	    SEND("EHLO drop.test\r\nNOOP\r\n"), /* dropped inside the hook: no reply at all */
	    EXPECT_EOF(""),
	    {0},
	};

	f->hooks.on_helo = hook_helo;
	fx_run(f, steps);
	assert_string_equal(f->log, "helo drop.test (was '');");
}

static void test_on_helo_async(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    EXPECT(1, GREETING),
	    SEND("EHLO bad.test\r\nEHLO fine.test\r\nMAIL FROM:<a@x.test>\r\n"),
	    EXPECT(3, "550 5.7.1 Go away\r\n" EHLO_REPLY OK_MAIL),
	    SEND("EHLO drop.test\r\nNOOP\r\n"), /* dropped by the owner instead of a reply */
	    EXPECT_EOF(""),
	    {0},
	};

	f->hooks.on_helo = hook_helo_async;
	fx_run(f, steps);
	/* the pipelined commands waited for each async verdict */
	assert_string_equal(f->log, "helo bad.test;helo fine.test;mail a@x.test;helo drop.test;");
}

/* ---- on_data_begin and smtpd_body_prepend ---- */

static char prefix[700];
static char body900[1000];

/* A 640-byte header block to prepend and a 900-byte body: together over MAX_SIZE (1000), the
 * client's part alone under it. */
static void build_prepend(void)
{
	size_t n = (size_t)snprintf(prefix, sizeof(prefix),
				    "Received: from client.test by mx.test"
				    "\r\nX-Pad: ");
	memset(prefix + n, 'p', 640 - 2 - n);
	memcpy(prefix + 638, "\r\n", 3);
	for (n = 0; n < 900; n += 18)
		memcpy(body900 + n, "0123456789abcdef\r\n", 18);
	memcpy(body900 + 900, ".\r\n", 4);
}

static void assert_prepended(const struct fx *f)
{
	assert_int_equal(f->body_len, 640 + 900);
	assert_memory_equal(f->body, prefix, 640);
	assert_memory_equal(f->body + 640, body900, 900);
}

static void test_on_data_begin_verdicts(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<bad@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nRCPT TO:<b@y.test>\r\n"),
	    EXPECT(4, OK_MAIL OK_RCPT "550 5.7.1 Go away\r\n"
				      "503 5.5.1 Error: need MAIL command\r\n"), /* reset */
	    SEND("MAIL FROM:<fail@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"),
	    EXPECT(3, OK_MAIL OK_RCPT "451 4.3.0 Error: local error\r\n"),
	    SEND("MAIL FROM:<pre@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"),
	    EXPECT(3, OK_MAIL OK_RCPT GO_DATA),
	    SEND(body900),
	    EXPECT(1, OK_DOT),
	    SEND("MAIL FROM:<bye@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"),
	    EXPECT(3, OK_MAIL OK_RCPT "421 4.7.0 Closing\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	build_prepend();
	f->prepend = prefix;
	f->hooks.on_mail = hook_mail_helo;
	f->hooks.on_data_begin = hook_data_begin;
	fx_run(f, steps);
	assert_int_equal(f->datas, 1);
	assert_prepended(f); /* prepended bytes first, and they did not count against max_size */
}

static void test_on_data_begin_drop(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<drop@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nbody\r\n.\r\n"),
	    EXPECT(2, OK_MAIL OK_RCPT),
	    EXPECT_EOF(""),
	    {0},
	};

	f->hooks.on_mail = hook_mail_helo;
	f->hooks.on_data_begin = hook_data_begin;
	fx_run(f, steps);
	assert_int_equal(f->datas, 0);
}

static int hook_data_take(struct smtpd_session *s, const struct smtpd_envelope *env, void *user)
{
	struct fx *f = user;

	f->datas++;
	free(f->body);
	f->body = smtpd_take_body(s, &f->body_len);
	return SMTPD_DEFAULT;
}

static void test_on_data_begin_async(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<bad@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"),
	    EXPECT(3, OK_MAIL OK_RCPT "550 5.7.1 Go away\r\n"),
	    SEND("MAIL FROM:<go@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"),
	    EXPECT(3, OK_MAIL OK_RCPT "354 Go ahead\r\n"), /* the owner's own 354 */
	    SEND(body900),
	    EXPECT(1, OK_DOT),
	    SEND("MAIL FROM:<drop@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"),
	    EXPECT(2, OK_MAIL OK_RCPT),
	    EXPECT_EOF(""),
	    {0},
	};

	build_prepend();
	f->prepend = prefix;
	f->hooks.on_mail = hook_mail_helo;
	f->hooks.on_data_begin = hook_data_begin_async;
	f->hooks.on_data = hook_data_take;
	fx_run(f, steps);
	assert_int_equal(f->datas, 1);
	assert_prepended(f); /* prepended from the timer, taken with smtpd_take_body */
	assert_int_equal(f->body[f->body_len], '\0');
}

/* ---- memory: an announced SIZE= is not allocated ---- */

static int hook_progress(struct smtpd_session *s, size_t bytes, void *user)
{
	struct fx *f = user;

	f->async_s = s;
	atomic_store(&f->progress, bytes);
	return 0;
}

static bool ten_bytes_in(void *user)
{
	return atomic_load(&((struct fx *)user)->progress) >= 10;
}

static void sample_body_cap(void *user)
{
	struct fx *f = user;

	f->body_cap = smtpd_session_body_cap(f->async_s);
}

static char big_rest[300 * 1024 + 8];

static void test_size_not_preallocated(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    EXPECT(1, GREETING),
	    SEND("EHLO client.test\r\n"),
	    EXPECT(1, "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 20000000\r\n250-8BITMIME\r\n"
		      "250-SMTPUTF8\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n"),
	    SEND("MAIL FROM:<a@x.test> SIZE=10000000\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"),
	    EXPECT(3, OK_MAIL OK_RCPT GO_DATA),
	    SEND("01234567\r\n"), /* 10 of the 10 000 000 announced bytes */
	    WAIT(ten_bytes_in, "in"),
	    CALL(sample_body_cap),
	    SEND(big_rest), /* then 300 KiB more: the buffer grows as they come */
	    EXPECT(1, OK_DOT),
	    BYE,
	    {0},
	};

	for (size_t n = 0; n < 300 * 1024; n += 64)
		memcpy(big_rest + n,
		       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 64);
	memcpy(big_rest + 300 * 1024, ".\r\n", 4);
	f->cfg.max_size = 20000000;
	f->hooks.on_data_progress = hook_progress;
	fx_run(f, steps);
	print_message("body buffer after 10 bytes of SIZE=10000000: %zu bytes\n", f->body_cap);
	assert_true(f->body_cap > 0 && f->body_cap <= 4096);
	assert_int_equal(f->body_len, 10 + 300 * 1024);
	assert_memory_equal(f->body + 10, big_rest, 300 * 1024);
}

/* ---- drop at the other steps: the replies before the dropped step arrive, then EOF ---- */

static int hook_mail_drop(struct smtpd_session *s, const char *sender, const char *params,
			  void *user)
{
	if (strncmp(sender, "drop@", 5) == 0)
		smtpd_session_drop(s);
	return SMTPD_DEFAULT;
}

static int hook_rcpt_drop(struct smtpd_session *s, const char *rcpt, void *user)
{
	return hook_mail_drop(s, rcpt, "", user);
}

static int hook_data_drop(struct smtpd_session *s, const struct smtpd_envelope *env, void *user)
{
	((struct fx *)user)->datas++;
	if (strcmp(env->sender, "dropdata@x.test") == 0)
		smtpd_session_drop(s);
	return SMTPD_DEFAULT;
}

static int hook_progress_drop(struct smtpd_session *s, size_t bytes, void *user)
{
	return bytes >= 5;
}

struct drop_case {
	const char *send, *want;
	bool progress;
};

static const struct drop_case drop_cases[] = {
    {"MAIL FROM:<drop@x.test>\r\nNOOP\r\n", "", false},
    {"MAIL FROM:<a@x.test>\r\nRCPT TO:<drop@y.test>\r\nNOOP\r\n", OK_MAIL, false},
    {"MAIL FROM:<dropdata@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nhi\r\n.\r\nNOOP\r\n",
     OK_MAIL OK_RCPT GO_DATA, false},
    {MAIL_RCPT "DATA\r\n0123456789\r\n.\r\nNOOP\r\n", OK_MAIL OK_RCPT GO_DATA, true},
};

static void test_drop_at_each_step(void **state)
{
	for (size_t i = 0; i < sizeof(drop_cases) / sizeof(drop_cases[0]); i++) {
		const struct drop_case *c = &drop_cases[i];
		const struct peer_step steps[] = {HELLO, SEND(c->send), EXPECT_EOF(c->want), {0}};
		struct fx *f;

		assert_int_equal(fx_setup((void **)&f), 0);
		f->hooks = (struct smtpd_hooks){.on_mail = hook_mail_drop,
						.on_rcpt = hook_rcpt_drop,
						.on_data = hook_data_drop,
						.on_close = fx_hook_close};
		if (c->progress)
			f->hooks.on_data_progress = hook_progress_drop;
		fx_run(f, steps);
		assert_int_equal(f->datas, i == 2);
		fx_teardown((void **)&f);
	}
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TEST(test_cmd_deadline_cuts_trickle),
	    TEST(test_data_deadline_cuts_trickle),
	    TEST(test_max_sessions_global),
	    cmocka_unit_test(test_hide_ext),
	    TEST(test_smtputf8),
	    TEST(test_size_overflow),
	    TEST(test_on_helo_verdicts),
	    TEST(test_on_helo_drop),
	    TEST(test_on_helo_async),
	    TEST(test_on_data_begin_verdicts),
	    TEST(test_on_data_begin_drop),
	    TEST(test_on_data_begin_async),
	    TEST(test_size_not_preallocated),
	    cmocka_unit_test(test_drop_at_each_step),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
