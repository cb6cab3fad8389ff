/* test_smtpd — unit tests for engine/smtpd: a real worker on a real loop, accepting on a UNIX
 * socket in a temp dir, with the client side scripted by the test.
 *
 * Why this shape: smtpd's promises are about bytes on the wire (exact replies and enhanced
 * codes, their order under pipelining, what ends DATA) and about when hooks run relative to
 * input (an async reply holds later pipelined commands). Those only show on a real socket with
 * the real run loop, so each test runs the loop on the test thread and the scripted peer of
 * tests/unit/peer plays the client (send bytes / read N replies / read to EOF / run a function
 * on the loop thread). The peer only records what it read; every assertion runs on the test
 * thread after the loop has stopped, so cmocka's longjmp never crosses threads. The loop stops
 * through the worker's shutdown done callback, so every test also checks that the worker
 * drains and frees cleanly (ASan checks the rest).
 */
#include "tests/unit/smtpd/smtpd_fx.h"

/* ---- tests ---- */

static void test_greeting_and_ehlo(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("HELO old.test\r\n"), /* HELO: one line, no keywords */
	    EXPECT(1, "250 mx.test\r\n"),
	    BYE,
	    {0},
	};

	fx_run(f, steps);
}

static void test_pipelined_one_write(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    EXPECT(1, GREETING),
	    SEND("EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
		 "RCPT TO:<c@y.test>\r\nDATA\r\nSubject: t\r\n\r\nhello\r\n.\r\nNOOP\r\nQUIT\r\n"),
	    EXPECT(8, EHLO_REPLY OK_MAIL OK_RCPT OK_RCPT GO_DATA OK_DOT OK_DOT "221 2.0.0 Bye\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	fx_run(f, steps);
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
	unsigned send_len; /* 0: strlen(send); else send holds NUL bytes */
};

/* clang-format off */
#define CASE(snd, k, w)	    {.send = (snd), .nreplies = (k), .want = (w)}
#define RAW_CASE(lit, k, w) {.send = (lit), .nreplies = (k), .want = (w), .send_len = sizeof(lit) - 1}
/* clang-format on */

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

#define BAD_ADDR "501 5.1.3 Error: bad address syntax\r\n"
#define NOT_IMPL "502 5.5.1 Error: command not implemented\r\n"

static void run_limit(const struct limit_case *c, unsigned *datas)
{
	struct fx *f;
	const struct peer_step steps[] = {
	    HELLO,
	    {.kind = PEER_SEND, .data = c->send, .n = c->send_len},
	    EXPECT(c->nreplies, c->want),
	    BYE,
	    {0},
	};

	assert_int_equal(fx_setup((void **)&f), 0);
	fx_run(f, steps);
	*datas += f->datas;
	fx_teardown((void **)&f);
}

static void test_limits(void **state)
{
	const struct limit_case cases[] = {
	    CASE("MAIL FROM:<a@x.test> SIZE=1001\r\n", 1,
		 "552 5.3.4 Message size exceeds fixed limit\r\n"),
	    CASE(big_body, 4,
		 OK_MAIL OK_RCPT GO_DATA "552 5.3.4 Error: message size exceeds fixed limit\r\n"),
	    CASE("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n"
		 "RCPT TO:<d@y.test>\r\n",
		 4, OK_MAIL OK_RCPT OK_RCPT "452 4.5.3 Error: too many recipients\r\n"),
	    CASE(long_line, 2, "500 5.5.2 Error: line too long\r\n" OK_DOT),
	    CASE("FROB\r\n", 1, "500 5.5.1 Error: command not recognized\r\n"),
	    CASE("RCPT TO:<b@y.test>\r\n", 1, "503 5.5.1 Error: need MAIL command\r\n"),
	    CASE("MAIL FROM:<a@x.test>\r\nDATA\r\n", 2,
		 OK_MAIL "503 5.5.1 Error: need RCPT command\r\n"),
	    CASE("MAIL FROM:a@x.test\r\n", 1, BAD_ADDR),
	};
	unsigned datas = 0;

	build_inputs();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_limit(&cases[i], &datas);
	assert_int_equal(datas, 0); /* the oversize body never reached on_data */
}

/* Issue 5: control bytes in paths (raw NUL/CR inside the line) are 501 5.1.3 and never reach
 * a hook; a HELO/EHLO name with a control byte is refused; EXPN/HELP/ETRN/TURN are 502. */
static void test_bad_bytes_and_verbs(void **state)
{
	const struct limit_case cases[] = {
	    /* issue 5: control bytes escaped in a quoted local part (NUL and CR inside the line) */
	    RAW_CASE("MAIL FROM:<\"\\\0\"@p.example>\r\n", 1, BAD_ADDR),
	    RAW_CASE("MAIL FROM:<a@x.test>\r\nRCPT TO:<\"a\\\0b\"@evil.example>\r\n", 2,
		     OK_MAIL BAD_ADDR),
	    RAW_CASE("MAIL FROM:<a@x.test>\r\nRCPT TO:<\"a\\\r\"@b.example>\r\n", 2,
		     OK_MAIL BAD_ADDR),
	    RAW_CASE("MAIL FROM:<\"x\\\rRCPT TO:<y@z>\"@b.example>\r\n", 1, BAD_ADDR),
	    CASE("EHLO bad\x01name\r\n", 1, "501 5.5.4 Error: invalid HELO/EHLO host name\r\n"),
	    CASE("EXPN staff\r\nHELP\r\nETRN example.org\r\nTURN\r\n", 4,
		 NOT_IMPL NOT_IMPL NOT_IMPL NOT_IMPL),
	};
	unsigned datas = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_limit(&cases[i], &datas);
	assert_int_equal(datas, 0);
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
	fx_keep_body(f, env->body, env->body_len);
	f->async_s = s;
	f->async_op = (struct loop_op){.cb = async_reply_cb};
	loop_timer(f->l, &f->async_op, 50);
	return SMTPD_ASYNC;
}

static void test_async_data_reply(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nhi\r\n.\r\n"
		 "MAIL FROM:<c@x.test>\r\nRSET\r\n"),
	    EXPECT(6, OK_MAIL OK_RCPT GO_DATA "250 2.0.0 Ok: queued as T1\r\n" OK_MAIL OK_DOT),
	    BYE,
	    {0},
	};

	f->hooks.on_data = hook_data_async;
	fx_run(f, steps);
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
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
		 "Subject: t\r\n\r\n..dot\r\n..\r\nend\r\n.\r\n"
		 "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\ntwo\r\n.\r\n"),
	    EXPECT(8, OK_MAIL OK_RCPT GO_DATA OK_DOT OK_MAIL OK_RCPT GO_DATA OK_DOT),
	    BYE,
	    {0},
	};

	f->hooks.on_data = hook_data_take;
	fx_run(f, steps);
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
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
		 "x\n.\nMAIL FROM:<evil@x.test>\r\n.\r\n"),
	    EXPECT(4, OK_MAIL OK_RCPT GO_DATA OK_DOT),
	    BYE,
	    {0},
	};

	fx_run(f, steps);
	assert_int_equal(f->mails, 1);
	assert_int_equal(f->datas, 1);
	/* the smuggled command stayed body text (bare LFs normalised to CRLF) */
	assert_string_equal(f->body, "x\r\n.\r\nMAIL FROM:<evil@x.test>\r\n");
}

/* ---- shutdown ---- */

static void do_shutdown(void *user)
{
	struct fx *f = user;

	smtpd_worker_shutdown(f->w, 1000, fx_worker_done, f);
}

static void test_shutdown_idle(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    /* no transaction open: the 421 comes at once */
	    CALL(do_shutdown),
	    EXPECT(1, SHUTTING),
	    EXPECT_EOF(""),
	    {0},
	};

	fx_run(f, steps);
	assert_int_equal(f->done_calls, 1);
}

static void test_shutdown_mid_transaction(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"),
	    EXPECT(2, OK_MAIL OK_RCPT),
	    CALL(do_shutdown), /* inside a transaction: it may finish */
	    SEND("DATA\r\nhi\r\n.\r\nNOOP\r\n"),
	    EXPECT(3, GO_DATA OK_DOT SHUTTING),
	    EXPECT_EOF(""),
	    {0},
	};

	fx_run(f, steps);
	assert_int_equal(f->datas, 1);
}

static void do_shutdown_short(void *user)
{
	struct fx *f = user;

	smtpd_worker_shutdown(f->w, 100, fx_worker_done, f);
}

static void test_shutdown_grace_expires(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\n"),
	    EXPECT(1, OK_MAIL),
	    CALL(do_shutdown_short), /* the transaction never finishes: grace ends it */
	    EXPECT(1, SHUTTING),
	    EXPECT_EOF(""),
	    {0},
	};

	fx_run(f, steps);
	assert_int_equal(f->datas, 0);
}

static void test_async_reply_after_peer_left(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nhi\r\n.\r\n"),
	    EXPECT(3, OK_MAIL OK_RCPT GO_DATA),
	    {0}, /* the peer closes while the reply is owed */
	};

	f->hooks.on_data = hook_data_async;
	fx_run(f, steps);
	assert_string_equal(f->log, "mail a@x.test;rcpt b@y.test;data;reply;");
}

static void test_too_many_errors(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("FROB\r\nFROB\r\nNOOP\r\n"),
	    EXPECT(3, "500 5.5.1 Error: command not recognized\r\n"
		      "500 5.5.1 Error: command not recognized\r\n"
		      "421 4.7.0 Error: too many errors\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	f->cfg.max_errors = 2;
	fx_run(f, steps);
}

static int hook_connect_reject(struct smtpd_session *s, void *user)
{
	smtpd_reply(s, 554, "5.7.1 No service for you");
	return SMTPD_DEFAULT;
}

static void test_connect_rejected(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    EXPECT(1, "554 5.7.1 No service for you\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	f->hooks.on_connect = hook_connect_reject;
	fx_run(f, steps);
	assert_int_equal(f->mails, 0);
}

static void test_linger_drains_late_input(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("QUIT\r\n"),
	    EXPECT(1, "221 2.0.0 Bye\r\n"),
	    SEND("NOOP\r\nNOOP\r\n"), /* after QUIT: drained, never answered, never a reset */
	    EXPECT_EOF(""),
	    {0},
	};

	fx_run(f, steps);
}

static void test_linger_is_bounded(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("QUIT\r\n"),
	    EXPECT(1, "221 2.0.0 Bye\r\n"),
	    EXPECT_EOF(""), /* the server shut down its side */
	    WAIT_CLOSE(),   /* we never close: the server gives up lingering on its own */
	    {0},
	};

	fx_run(f, steps);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

/* ---- command deadline (more in test_smtpd_hard.c) ---- */

/* Each line gets its own deadline: four slow lines, each within it, together well over it. */
static void test_cmd_deadline_is_per_line(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    TRICKLE("NOOP\r\n", 30),
	    EXPECT(1, OK_DOT),
	    TRICKLE("NOOP\r\n", 30),
	    EXPECT(1, OK_DOT),
	    TRICKLE("NOOP\r\n", 30),
	    EXPECT(1, OK_DOT),
	    TRICKLE("NOOP\r\n", 30),
	    EXPECT(1, OK_DOT),
	    BYE,
	    {0},
	};

	f->cfg.cmd_deadline_ms = 500; /* a line takes ~150 ms, the four ~600 ms */
	fx_run(f, steps);
}

/* The command deadline runs from a line's first byte: waiting idle between commands longer
 * than it is only bounded by the per-read timeout (RFC 5321 4.5.3.2.7 asks for minutes). */
static void test_cmd_deadline_not_idle(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,	QUIET(400),	  SEND("NOOP\r\n"),  EXPECT(1, OK_DOT),
	    QUIET(400), SEND("NOOP\r\n"), EXPECT(1, OK_DOT), BYE,
	    {0},
	};

	f->cfg.cmd_deadline_ms = 150;
	fx_run(f, steps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TEST(test_greeting_and_ehlo),
	    TEST(test_pipelined_one_write),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_bad_bytes_and_verbs),
	    TEST(test_async_data_reply),
	    TEST(test_take_body),
	    TEST(test_no_smuggling),
	    TEST(test_shutdown_idle),
	    TEST(test_shutdown_mid_transaction),
	    TEST(test_shutdown_grace_expires),
	    TEST(test_async_reply_after_peer_left),
	    TEST(test_too_many_errors),
	    TEST(test_connect_rejected),
	    TEST(test_linger_drains_late_input),
	    TEST(test_linger_is_bounded),
	    TEST(test_cmd_deadline_is_per_line),
	    TEST(test_cmd_deadline_not_idle),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
