/* test_smtpd_dsn — unit tests for the DSN extension (RFC 3461) of engine/smtpd: DSN advertised
 * after EHLO, RET=/ENVID= on MAIL and NOTIFY=/ORCPT= on RCPT accepted and handed to on_data in
 * the envelope (decoded, per recipient, aligned with rcpts even when a recipient was refused),
 * bad values refused with 501 5.5.4 and a text naming the problem, and the parameters unknown
 * (555 5.5.4) to a client that greeted with HELO.
 *
 * Why session-level: what a client sees is replies on the wire and what the owner sees is the
 * envelope; both come from the real worker on a real loop with the scripted peer of
 * tests/unit/peer (fixture smtpd_fx.c), like test_smtpd.c. The codec itself is tested in
 * tests/unit/smtp/test_smtp_dsn.c.
 */
#include "tests/unit/smtpd/smtpd_fx.h"
#include "engine/smtp/smtp.h"

#include <stdio.h>

#define BAD(text)   "501 5.5.4 " text "\r\n"
#define UNSUPPORTED "555 5.5.4 Unsupported parameter\r\n"
#define NO_RCPT	    "550 5.1.1 No such user\r\n"

/* on_rcpt: refuse recipients whose local part starts with "no". */
static int hook_rcpt_no(struct smtpd_session *s, const char *rcpt, void *user)
{
	if (strncmp(rcpt, "no", 2) == 0)
		smtpd_reply(s, 550, "5.1.1 No such user");
	return fx_hook_rcpt(s, rcpt, user);
}

/* on_data: log the DSN fields of the envelope: "dsn ret=R envid=E [rcpt:notify:orcpt]...;". */
static int hook_data_dsn(struct smtpd_session *s, const struct smtpd_envelope *env, void *user)
{
	struct fx *f = user;

	f->datas++;
	logf_(f, "dsn ret=%u envid=%s", env->ret, env->envid);
	for (unsigned i = 0; i < env->nrcpts; i++)
		logf_(f, " [%s:%u:%s]", env->rcpts[i], env->notify[i], env->orcpts[i]);
	logf_(f, ";");
	return SMTPD_DEFAULT;
}

static void dsn_hooks(struct fx *f)
{
	f->hooks.on_rcpt = hook_rcpt_no;
	f->hooks.on_data = hook_data_dsn;
	f->cfg.max_line = 2048;
	f->cfg.max_rcpts = 4;
	f->cfg.max_errors = 100;
}

#define MSG "DATA\r\nSubject: t\r\n\r\nx\r\n.\r\n"

/* Accepted parameters reach on_data decoded; a refused recipient's ORCPT/NOTIFY do not shift
 * the others; the next transaction starts without any. */
static void test_dsn_stored(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO, /* EHLO_REPLY advertises DSN */
	    SEND("MAIL FROM:<a@x.test> ret=hdrs SIZE=20 ENVID=QQ+2B1+3D2+20z\r\n"
		 "RCPT TO:<no@y.test> NOTIFY=NEVER ORCPT=rfc822;no@y.test\r\n"
		 "RCPT TO:<b@y.test> Notify=success,DELAY ORCPT=RFC822;b+2Bx@y.test\r\n"
		 "RCPT TO:<c@y.test>\r\n"
		 "RCPT TO:<d@y.test> ORCPT=x-local;+22d+20d+22\r\n"
		 "RCPT TO:<e@y.test> NOTIFY=never\r\n" MSG),
	    EXPECT(8, OK_MAIL NO_RCPT OK_RCPT OK_RCPT OK_RCPT OK_RCPT GO_DATA OK_DOT),
	    SEND("MAIL FROM:<a@x.test> RET=FULL\r\nRCPT TO:<b@y.test>\r\n" MSG),
	    EXPECT(4, OK_MAIL OK_RCPT GO_DATA OK_DOT),
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test> NOTIFY=FAILURE\r\n" MSG),
	    EXPECT(4, OK_MAIL OK_RCPT GO_DATA OK_DOT),
	    BYE,
	    {0},
	};

	dsn_hooks(f);
	fx_run(f, steps);
	assert_int_equal(f->datas, 3);
	assert_string_equal(
	    f->log, "mail a@x.test;rcpt no@y.test;rcpt b@y.test;rcpt c@y.test;rcpt d@y.test;"
		    "rcpt e@y.test;"
		    "dsn ret=2 envid=QQ+1=2 z [b@y.test:5:RFC822;b+x@y.test] [c@y.test:0:] "
		    "[d@y.test:0:x-local;\"d d\"] [e@y.test:8:];"
		    "mail a@x.test;rcpt b@y.test;dsn ret=1 envid= [b@y.test:0:];"
		    "mail a@x.test;rcpt b@y.test;dsn ret=0 envid= [b@y.test:2:];");
}

/* A string of n copies of c after prefix (static buffer). */
static const char *longv(const char *prefix, char c, size_t n)
{
	static char buf[2][1200];
	static int k;
	size_t p = strlen(prefix);

	k ^= 1;
	memcpy(buf[k], prefix, p);
	memset(buf[k] + p, c, n);
	buf[k][p + n] = '\0';
	return buf[k];
}

struct bad_case {
	const char *mail; /* MAIL parameters */
	const char *rcpt; /* RCPT parameters (after an accepted plain MAIL), or NULL */
	const char *want; /* the reply to the command */
};

/* Each bad command in a session of its own, then a plain transaction: nothing of the refused
 * command reaches on_data. */
static void run_bad(const struct bad_case *c)
{
	char cmd[1400], want[300], log[256];
	struct fx *f;

	if (c->rcpt)
		snprintf(cmd, sizeof(cmd), "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test> %s\r\n",
			 c->rcpt);
	else
		snprintf(cmd, sizeof(cmd), "MAIL FROM:<a@x.test> %s\r\n", c->mail);
	snprintf(want, sizeof(want), "%s%s", c->rcpt ? OK_MAIL : "", c->want);
	snprintf(log, sizeof(log), "%sdsn ret=0 envid= [b@y.test:0:];",
		 c->rcpt ? "mail a@x.test;mail a@x.test;rcpt b@y.test;"
			 : "mail a@x.test;rcpt b@y.test;");
	const struct peer_step steps[] = {
	    HELLO,
	    SEND(cmd),
	    EXPECT(c->rcpt ? 2 : 1, want),
	    SEND("RSET\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n" MSG),
	    EXPECT(5, OK_DOT OK_MAIL OK_RCPT GO_DATA OK_DOT),
	    BYE,
	    {0},
	};

	assert_int_equal(fx_setup((void **)&f), 0);
	dsn_hooks(f);
	fx_run(f, steps);
	if (strcmp(f->log, log) != 0)
		fail_msg("\"%s\": log \"%s\"", c->rcpt ? c->rcpt : c->mail, f->log);
	fx_teardown((void **)&f);
}

static void test_dsn_bad_values(void **state)
{
	char envid101[130], orcpt501[530];
	const struct bad_case cases[] = {
	    {"RET=FULL RET=HDRS", NULL, BAD("Duplicate RET parameter")},
	    {"RET=FULL ret=FULL", NULL, BAD("Duplicate RET parameter")},
	    {"RET=NONE", NULL, BAD("Invalid RET parameter value (FULL or HDRS)")},
	    {"RET", NULL, BAD("Invalid RET parameter value (FULL or HDRS)")},
	    {"RET=", NULL, BAD("Syntax error in parameters")},
	    {"RET=FULL ENVID=a+0Db", NULL,
	     BAD("Invalid ENVID parameter value (xtext of printable ASCII)")},
	    {"ENVID=a+", NULL, BAD("Invalid ENVID parameter value (xtext of printable ASCII)")},
	    {"ENVID=a+C3+A9", NULL,
	     BAD("Invalid ENVID parameter value (xtext of printable ASCII)")},
	    {"ENVID=a ENVID=b", NULL, BAD("Duplicate ENVID parameter")},
	    {envid101, NULL, BAD("ENVID parameter too long (100 characters at most)")},
	    {NULL, "NOTIFY=NEVER,SUCCESS",
	     BAD("Invalid NOTIFY parameter value (NEVER, or a list of SUCCESS, FAILURE, DELAY)")},
	    {NULL, "NOTIFY=SUCCESS,SUCCESS",
	     BAD("Invalid NOTIFY parameter value (NEVER, or a list of SUCCESS, FAILURE, DELAY)")},
	    {NULL, "NOTIFY=ALWAYS",
	     BAD("Invalid NOTIFY parameter value (NEVER, or a list of SUCCESS, FAILURE, DELAY)")},
	    {NULL, "NOTIFY=SUCCESS NOTIFY=FAILURE", BAD("Duplicate NOTIFY parameter")},
	    {NULL, "ORCPT=rfc822", BAD("Invalid ORCPT parameter value (addr-type;xtext)")},
	    {NULL, "ORCPT=rfc822;", BAD("Invalid ORCPT parameter value (addr-type;xtext)")},
	    {NULL, "ORCPT=rfc822;a+0A@b", BAD("Invalid ORCPT parameter value (addr-type;xtext)")},
	    {NULL, "ORCPT=a;b ORCPT=a;c", BAD("Duplicate ORCPT parameter")},
	    {NULL, orcpt501, BAD("ORCPT parameter too long (500 characters at most)")},
	    {NULL, "NOTIFY=NEVER FOO=bar", UNSUPPORTED},
	    {NULL, "SIZE=10", UNSUPPORTED},
	    {NULL, "=x", BAD("Syntax error in parameters")},
	};

	(void)state;
	snprintf(envid101, sizeof(envid101), "%s", longv("ENVID=", 'e', 101));
	snprintf(orcpt501, sizeof(orcpt501), "%s", longv("ORCPT=rfc822;", 'o', 501));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_bad(&cases[i]);
}

/* The limits themselves are fine: ENVID of 100 and ORCPT address of 500 decoded bytes. */
static void test_dsn_at_limits(void **state)
{
	struct fx *f = *state;
	static char cmd[1400], want_log[1400];
	const struct peer_step steps[] = {
	    HELLO, SEND(cmd), EXPECT(5, OK_MAIL OK_RCPT OK_RCPT GO_DATA OK_DOT), BYE, {0},
	};

	snprintf(cmd, sizeof(cmd),
		 "MAIL FROM:<a@x.test> %s\r\nRCPT TO:<b@y.test> %s\r\nRCPT TO:<c@y.test> "
		 "NOTIFY=SUCCESS,FAILURE,DELAY\r\n" MSG,
		 longv("ENVID=", 'e', 100), longv("ORCPT=rfc822;", 'o', 500));
	snprintf(want_log, sizeof(want_log),
		 "mail a@x.test;rcpt b@y.test;rcpt c@y.test;dsn ret=0 envid=%s [b@y.test:0:%s] "
		 "[c@y.test:7:];",
		 longv("", 'e', 100), longv("rfc822;", 'o', 500));
	dsn_hooks(f);
	fx_run(f, steps);
	assert_string_equal(f->log, want_log);
}

/* After HELO the DSN parameters are unknown (555), and so is DSN's keyword (no EHLO lines). */
static void test_dsn_not_after_helo(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    EXPECT(1, GREETING),
	    SEND("HELO client.test\r\n"),
	    EXPECT(1, "250 mx.test\r\n"),
	    SEND("MAIL FROM:<a@x.test> RET=FULL\r\nMAIL FROM:<a@x.test> ENVID=x\r\n"
		 "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test> NOTIFY=NEVER\r\n"
		 "RCPT TO:<b@y.test> ORCPT=rfc822;b@y.test\r\nRCPT TO:<b@y.test>\r\n" MSG),
	    EXPECT(8,
		   UNSUPPORTED UNSUPPORTED OK_MAIL UNSUPPORTED UNSUPPORTED OK_RCPT GO_DATA OK_DOT),
	    /* a later EHLO offers DSN again */
	    SEND("EHLO client.test\r\nMAIL FROM:<a@x.test> RET=FULL\r\n"
		 "RCPT TO:<b@y.test> NOTIFY=NEVER\r\n" MSG),
	    EXPECT(5, EHLO_REPLY OK_MAIL OK_RCPT GO_DATA OK_DOT),
	    BYE,
	    {0},
	};

	dsn_hooks(f);
	fx_run(f, steps);
	assert_string_equal(f->log, "mail a@x.test;rcpt b@y.test;dsn ret=0 envid= [b@y.test:0:];"
				    "mail a@x.test;rcpt b@y.test;dsn ret=1 envid= [b@y.test:8:];");
}

/* More recipients than the arrays' first allocation (16): the per-recipient values stay
 * aligned as they grow. */
static void test_dsn_many_rcpts(void **state)
{
	struct fx *f = *state;
	static char cmd[4096], want[4096], replies[2048];
	size_t n = 0, w = 0, r = 0;

	n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, "MAIL FROM:<a@x.test>\r\n");
	r += (size_t)snprintf(replies + r, sizeof(replies) - r, OK_MAIL);
	w += (size_t)snprintf(want + w, sizeof(want) - w, "dsn ret=0 envid=");
	for (int i = 0; i < 40; i++) {
		n += (size_t)snprintf(cmd + n, sizeof(cmd) - n,
				      "RCPT TO:<r%d@y.test> NOTIFY=%s ORCPT=rfc822;r%d\r\n", i,
				      i % 2 ? "DELAY" : "FAILURE", i);
		r += (size_t)snprintf(replies + r, sizeof(replies) - r, OK_RCPT);
		w += (size_t)snprintf(want + w, sizeof(want) - w, " [r%d@y.test:%d:rfc822;r%d]", i,
				      i % 2 ? 4 : 2, i);
	}
	snprintf(cmd + n, sizeof(cmd) - n, MSG);
	snprintf(replies + r, sizeof(replies) - r, GO_DATA OK_DOT);
	snprintf(want + w, sizeof(want) - w, ";");
	const struct peer_step steps[] = {
	    HELLO, SEND(cmd), EXPECT(43, replies), BYE, {0},
	};

	dsn_hooks(f);
	f->cfg.max_rcpts = 100;
	f->hooks.on_mail = NULL;
	f->hooks.on_rcpt = NULL;
	fx_run(f, steps);
	assert_string_equal(f->log, want);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TEST(test_dsn_stored),     cmocka_unit_test(test_dsn_bad_values),
	    TEST(test_dsn_at_limits),  TEST(test_dsn_not_after_helo),
	    TEST(test_dsn_many_rcpts),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
