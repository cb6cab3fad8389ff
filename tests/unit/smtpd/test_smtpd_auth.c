/* test_smtpd_auth — unit tests for what issue 8 added to engine/smtpd: AUTH PLAIN and LOGIN
 * (initial response or not, sync and async verdicts, cancel, bad base64, malformed answers,
 * sequence errors, 538 when not secure, brute force bounded by max_errors, payloads masked in
 * traces and wiped from the receive buffer) and the injection policy (530 for an untrusted
 * client, relay_domains, trusted networks, sender_policy own_address / own_domain, max_rset,
 * VRFY and EXPN).
 *
 * Why over TCP too: trust and "secure" depend on where the client comes from, so those cases
 * listen on 127.0.0.1 and the scripted peer connects from 127.0.0.2 (bound before connecting);
 * the rest use the UNIX socket, which is both trusted and secure.
 */
#include "tests/unit/smtpd/smtpd_fx.h"
#include "engine/smtpd/smtpd_types.h" /* smtpd_session_set_secure, the receive buffer */

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#define EHLO_AUTH                                                                                  \
	"250-mx.test\r\n250-AUTH PLAIN LOGIN\r\n250-PIPELINING\r\n250-SIZE "                       \
	"1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n"                                      \
	"250 ENHANCEDSTATUSCODES\r\n"
#define HELLO_AUTH EXPECT(1, GREETING), SEND("EHLO client.test\r\n"), EXPECT(1, EHLO_AUTH)

#define OK_AUTH	  "235 2.7.0 Authentication successful\r\n"
#define BAD_AUTH  "535 5.7.8 Authentication credentials invalid\r\n"
#define BAD_B64	  "501 5.5.2 Error: cannot decode response\r\n"
#define BAD_MSG	  "501 5.5.2 Error: malformed authentication response\r\n"
#define ABORTED	  "501 5.7.0 Authentication aborted\r\n"
#define ASK_USER  "334 VXNlcm5hbWU6\r\n"
#define ASK_PASS  "334 UGFzc3dvcmQ6\r\n"
#define NEED_AUTH "530 5.7.0 Authentication required\r\n"
#define NOT_OWNED "553 5.7.1 Sender address rejected: not owned by user alice@x.test\r\n"
#define NOT_IMPL  "502 5.5.1 Error: command not implemented\r\n"
#define OK_RSET	  "250 2.0.0 Ok\r\n"

/* base64 of the credentials the tests send */
#define PLAIN_ALICE "AGFsaWNlQHgudGVzdABzM2NyZXQ="		   /* \0alice@x.test\0s3cret */
#define PLAIN_WRONG "AGFsaWNlQHgudGVzdAB3cm9uZw=="		   /* \0alice@x.test\0wrong */
#define PLAIN_BOB   "AGJvYgBwdw=="				   /* \0bob\0pw */
#define PLAIN_AZ    "YWxpY2VAeC50ZXN0AGFsaWNlQHgudGVzdABzM2NyZXQ=" /* alice@.. as herself */
#define PLAIN_CAROL "Y2Fyb2wAYWxpY2VAeC50ZXN0AHMzY3JldA=="	   /* carol\0alice@..\0s3cret */
#define B64_ALICE   "YWxpY2VAeC50ZXN0"				   /* alice@x.test */
#define B64_S3CRET  "czNjcmV0"					   /* s3cret */
#define B64_WRONG   "d3Jvbmc="					   /* wrong */

#define TRANSACTION                                                                                \
	SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nhi\r\n.\r\n"),                 \
	    EXPECT(4, OK_MAIL OK_RCPT GO_DATA OK_DOT)

/* ---- the owner's side: a table of users, sync or async verdicts ---- */

struct user {
	const char *login, *pass, *domains;
};

static const struct user users[] = {
    {"alice@x.test", "s3cret", "y.test *.w.test"},
    {"bob", "pw", NULL},
};

static bool verdict_async;	/* the verdict comes 20 ms later from a timer */
static atomic_bool auth_called; /* on_auth has run (polled by the peer) */

static const struct user *user_find(const char *login, const char *pass)
{
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		if (!strcmp(users[i].login, login) && !strcmp(users[i].pass, pass))
			return &users[i];
	return NULL;
}

static void verdict_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct fx *f = container_of(op, struct fx, async_op);

	smtpd_auth_result(f->async_s, f->async_code == 235, f->async_text);
}

static int hook_auth(struct smtpd_session *s, const char *login, const char *pass, void *user)
{
	struct fx *f = user;
	const struct user *u = user_find(login, pass);

	logf_(f, "auth %s %s;", login, pass);
	atomic_store(&auth_called, true);
	f->async_s = s;
	if (!verdict_async) {
		smtpd_auth_result(s, u != NULL, u ? u->domains : NULL);
		return SMTPD_DEFAULT;
	}
	f->async_code = u ? 235 : 535;
	f->async_text = u ? u->domains : NULL;
	f->async_op = (struct loop_op){.cb = verdict_cb};
	loop_timer(f->l, &f->async_op, 20);
	return SMTPD_ASYNC;
}

static int hook_data(struct smtpd_session *s, const struct smtpd_envelope *env, void *user)
{
	const char *who = smtpd_session_auth_user(s);

	logf_((struct fx *)user, "data as %s;", who ? who : "-");
	return fx_hook_data(s, env, user);
}

static int hook_connect_secure(struct smtpd_session *s, void *user)
{
	smtpd_session_set_secure(s); /* what STARTTLS does once TLS is up */
	return SMTPD_DEFAULT;
}

/* Fixture: AUTH on, the owner hooks above, sync verdicts, no policy. */
static int setup(void **state)
{
	struct fx *f;

	if (fx_setup(state) < 0)
		return -1;
	f = *state;
	f->cfg.auth = true;
	f->hooks.on_auth = hook_auth;
	f->hooks.on_data = hook_data;
	verdict_async = false;
	atomic_store(&auth_called, false);
	return 0;
}

/* ---- AUTH ---- */

static void test_plain_initial_response(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO_AUTH,
	    SEND("AUTH PLAIN " PLAIN_ALICE "\r\n"),
	    EXPECT(1, OK_AUTH),
	    SEND("AUTH PLAIN " PLAIN_BOB "\r\n"),
	    EXPECT(1, "503 5.5.1 Error: already authenticated\r\n"),
	    TRANSACTION,
	    BYE,
	    {0},
	};

	fx_run(f, steps);
	assert_string_equal(f->log, "auth alice@x.test s3cret;mail a@x.test;rcpt b@y.test;"
				    "data as alice@x.test;data from a@x.test to b@y.test;");
}

static void test_plain_challenge_async(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO_AUTH,
	    SEND("AUTH PLAIN\r\n"),
	    EXPECT(1, "334 \r\n"),
	    SEND(PLAIN_BOB "\r\n"),
	    EXPECT(1, OK_AUTH),
	    TRANSACTION,
	    BYE,
	    {0},
	};

	verdict_async = true;
	fx_run(f, steps);
	assert_string_equal(f->log, "auth bob pw;mail a@x.test;rcpt b@y.test;data as bob;"
				    "data from a@x.test to b@y.test;");
}

/* LOGIN both ways; a wrong password is 535 and AUTH may be tried again; an authorization
 * identity equal to the login is fine. */
static void test_login(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO_AUTH,
	    SEND("AUTH LOGIN\r\n"),
	    EXPECT(1, ASK_USER),
	    SEND(B64_ALICE "\r\n"),
	    EXPECT(1, ASK_PASS),
	    SEND(B64_WRONG "\r\n"),
	    EXPECT(1, BAD_AUTH),
	    SEND("AUTH LOGIN " B64_ALICE "\r\n"),
	    EXPECT(1, ASK_PASS),
	    SEND(B64_S3CRET "\r\n"),
	    EXPECT(1, OK_AUTH),
	    TRANSACTION,
	    BYE,
	    {0},
	};

	verdict_async = true;
	fx_run(f, steps);
	assert_string_equal(f->log, "auth alice@x.test wrong;auth alice@x.test s3cret;"
				    "mail a@x.test;rcpt b@y.test;data as alice@x.test;"
				    "data from a@x.test to b@y.test;");
}

/* Cancel, bad base64, malformed PLAIN answers, another identity, another mechanism: none
 * reaches the owner; then a PLAIN with authzid = login does. */
static void test_cancel_and_bad_responses(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO_AUTH,
	    SEND("AUTH PLAIN\r\n*\r\nAUTH LOGIN\r\n" B64_ALICE "\r\n*\r\n"),
	    EXPECT(5, "334 \r\n" ABORTED ASK_USER ASK_PASS ABORTED),
	    SEND("AUTH PLAIN !!!!\r\nAUTH PLAIN\r\nAGFsaWNl QHg=\r\nAUTH LOGIN Zg\r\n"),
	    EXPECT(4, BAD_B64 "334 \r\n" BAD_B64 BAD_B64),
	    SEND("AUTH PLAIN bm8tbnVsLWhlcmU=\r\nAUTH PLAIN AGEAYgBj\r\nAUTH PLAIN =\r\n"),
	    EXPECT(3, BAD_MSG BAD_MSG BAD_MSG),
	    SEND("AUTH PLAIN " PLAIN_CAROL "\r\nAUTH CRAM-MD5\r\nAUTH\r\n"),
	    EXPECT(3, BAD_AUTH "504 5.5.4 Unrecognized authentication type\r\n"
			       "501 5.5.4 Error: syntax error in parameters\r\n"),
	    SEND("AUTH PLAIN " PLAIN_AZ "\r\n"),
	    EXPECT(1, OK_AUTH),
	    BYE,
	    {0},
	};

	fx_run(f, steps);
	assert_string_equal(f->log, "auth alice@x.test s3cret;");
}

/* AUTH needs EHLO (not HELO) and no transaction; STARTTLS without TLS is 502. */
static void test_sequence(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    EXPECT(1, GREETING),
	    SEND("AUTH PLAIN " PLAIN_ALICE "\r\nHELO c.test\r\nAUTH PLAIN " PLAIN_ALICE "\r\n"),
	    EXPECT(3, "503 5.5.1 Error: send EHLO first\r\n250 mx.test\r\n"
		      "503 5.5.1 Error: send EHLO first\r\n"),
	    SEND("EHLO client.test\r\n"),
	    EXPECT(1, EHLO_AUTH),
	    SEND("MAIL FROM:<a@x.test>\r\nAUTH PLAIN " PLAIN_ALICE "\r\nRSET\r\nSTARTTLS\r\n"),
	    EXPECT(4, OK_MAIL "503 5.5.1 Error: MAIL transaction in progress\r\n" OK_RSET NOT_IMPL),
	    BYE,
	    {0},
	};

	fx_run(f, steps);
	assert_string_equal(f->log, "mail a@x.test;");
}

/* AUTH off (cfg.auth unset, or no on_auth hook): not advertised, 502 as before. */
static void test_auth_disabled(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO, SEND("AUTH PLAIN " PLAIN_ALICE "\r\n"), EXPECT(1, NOT_IMPL), BYE, {0},
	};

	f->cfg.auth = false;
	fx_run(f, steps);
	fx_teardown(state);
	setup(state);
	f = *state;
	f->hooks.on_auth = NULL;
	fx_run(f, steps);
	assert_string_equal(f->log, "");
}

/* Failed logins count as errors: max_errors ends a password-guessing session. */
static void test_bruteforce_bounded(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO_AUTH,
	    SEND("AUTH PLAIN " PLAIN_WRONG "\r\nAUTH PLAIN " PLAIN_WRONG
		 "\r\nAUTH PLAIN " PLAIN_WRONG "\r\nAUTH PLAIN " PLAIN_ALICE "\r\n"),
	    EXPECT(4, BAD_AUTH BAD_AUTH BAD_AUTH "421 4.7.0 Error: too many errors\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	f->cfg.max_errors = 3;
	verdict_async = true;
	fx_run(f, steps);
	assert_string_equal(
	    f->log, "auth alice@x.test wrong;auth alice@x.test wrong;auth alice@x.test wrong;");
}

static bool auth_seen(void *user)
{
	return atomic_load(&auth_called);
}

/* The client goes away while its AUTH is being verified: the late verdict is harmless, the
 * session closes once. */
static void test_gone_during_verify(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO_AUTH, SEND("AUTH PLAIN " PLAIN_WRONG "\r\n"), WAIT(auth_seen, "asked"), CLOSE(),
	    {0},
	};

	verdict_async = true;
	fx_run(f, steps);
	assert_string_equal(f->log, "auth alice@x.test wrong;");
}

/* ---- where the client comes from (TCP) ---- */

/* Not secure (TCP without TLS): AUTH is not advertised and is 538. */
static void test_tcp_not_secure(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("AUTH PLAIN " PLAIN_ALICE "\r\nAUTH LOGIN\r\n"),
	    EXPECT(2, "538 5.7.11 Encryption required for requested authentication mechanism\r\n"
		      "538 5.7.11 Encryption required for requested authentication mechanism\r\n"),
	    TRANSACTION, /* no policy: a TCP client may still inject */
	    BYE,
	    {0},
	};

	f->tcp_from = "127.0.0.1";
	fx_run(f, steps);
	assert_string_equal(f->log, "mail a@x.test;rcpt b@y.test;data as -;"
				    "data from a@x.test to b@y.test;");
}

/* auth_plaintext (test receivers): AUTH offered and accepted over plain TCP. */
static void test_tcp_auth_plaintext(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO_AUTH, SEND("AUTH PLAIN " PLAIN_ALICE "\r\n"), EXPECT(1, OK_AUTH), BYE, {0},
	};

	f->cfg.auth_plaintext = true;
	f->tcp_from = "127.0.0.1";
	fx_run(f, steps);
	assert_string_equal(f->log, "auth alice@x.test s3cret;");
}

static const struct util_net *net(const char *list)
{
	static struct util_net nets[4];
	char why[128];

	assert_true(util_nets_parse(list, nets, 4, why, sizeof(why)) > 0);
	return nets;
}

/* From 127.0.0.2 with only 127.0.0.1 trusted: 530 except for relay_domains. */
static void test_tcp_untrusted(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<postmaster>\r\n"
		 "RCPT TO:<c@relay.test>\r\nRCPT TO:<d@a.sub.test>\r\nRCPT TO:<e@sub.test>\r\n"
		 "DATA\r\nhi\r\n.\r\n"),
	    EXPECT(8, OK_MAIL NEED_AUTH NEED_AUTH OK_RCPT OK_RCPT NEED_AUTH GO_DATA OK_DOT),
	    BYE,
	    {0},
	};

	f->cfg.policy = true;
	f->cfg.trusted = net("127.0.0.1/32");
	f->cfg.ntrusted = 1;
	f->cfg.relay_domains = "relay.test *.sub.test";
	f->tcp_from = "127.0.0.2";
	fx_run(f, steps);
	assert_string_equal(f->log, "mail a@x.test;rcpt c@relay.test;rcpt d@a.sub.test;data as -;"
				    "data from a@x.test to c@relay.test d@a.sub.test;");
}

/* The defaults of the policy (nothing trusted, no relay domain) reach nothing without AUTH. */
static void test_tcp_closed_by_default(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO,
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<b@127.0.0.1>\r\n"
		 "RCPT TO:<b@[127.0.0.1]>\r\n"),
	    EXPECT(4, OK_MAIL NEED_AUTH NEED_AUTH NEED_AUTH),
	    BYE,
	    {0},
	};

	f->cfg.policy = true;
	f->tcp_from = "127.0.0.1";
	fx_run(f, steps);
	assert_string_equal(f->log, "mail a@x.test;");
}

/* 127.0.0.2 inside a trusted network: no AUTH needed. */
static void test_tcp_trusted(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {HELLO, TRANSACTION, BYE, {0}};

	f->cfg.policy = true;
	f->cfg.trusted = net("::1 127.0.0.0/8");
	f->cfg.ntrusted = 2;
	f->tcp_from = "127.0.0.2";
	fx_run(f, steps);
	assert_string_equal(f->log, "mail a@x.test;rcpt b@y.test;data as -;"
				    "data from a@x.test to b@y.test;");
}

/* Untrusted but secure (what STARTTLS will give): AUTH offered, and after it any recipient. */
static void test_tcp_secure_auth(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO_AUTH,
	    SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRSET\r\n"),
	    EXPECT(3, OK_MAIL NEED_AUTH OK_RSET),
	    SEND("AUTH PLAIN " PLAIN_ALICE "\r\n"),
	    EXPECT(1, OK_AUTH),
	    TRANSACTION,
	    BYE,
	    {0},
	};

	f->cfg.policy = true;
	f->cfg.trusted = net("127.0.0.1/32");
	f->cfg.ntrusted = 1;
	f->hooks.on_connect = hook_connect_secure;
	f->tcp_from = "127.0.0.2";
	verdict_async = true;
	fx_run(f, steps);
	assert_string_equal(f->log, "mail a@x.test;auth alice@x.test s3cret;mail a@x.test;"
				    "rcpt b@y.test;data as alice@x.test;"
				    "data from a@x.test to b@y.test;");
}

/* ---- sender_policy ---- */

static void test_sender_own_address(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO_AUTH,
	    SEND("MAIL FROM:<bob@x.test>\r\nRSET\r\n"), /* not authenticated: not held */
	    EXPECT(2, OK_MAIL OK_RSET),
	    SEND("AUTH PLAIN " PLAIN_ALICE "\r\n"),
	    EXPECT(1, OK_AUTH),
	    SEND(
		"MAIL FROM:<bob@x.test>\r\nMAIL FROM:<Alice@x.test>\r\nMAIL FROM:<alice@y.test>\r\n"
		"MAIL FROM:<alice@X.TEST>\r\nRSET\r\nMAIL FROM:<>\r\n"),
	    EXPECT(6, NOT_OWNED NOT_OWNED NOT_OWNED OK_MAIL OK_RSET OK_MAIL),
	    BYE,
	    {0},
	};

	f->cfg.sender_policy = SMTPD_SENDER_OWN_ADDRESS;
	fx_run(f, steps);
	assert_string_equal(f->log,
			    "mail bob@x.test;auth alice@x.test s3cret;mail alice@X.TEST;mail ;");
}

static void test_sender_own_domain(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO_AUTH,
	    SEND("AUTH PLAIN " PLAIN_ALICE "\r\n"),
	    EXPECT(1, OK_AUTH),
	    SEND(
		"MAIL FROM:<bob@X.test>\r\nRSET\r\nMAIL FROM:<c@Y.TEST>\r\nRSET\r\n"
		"MAIL FROM:<d@a.w.test>\r\nRSET\r\nMAIL FROM:<e@w.test>\r\nMAIL FROM:<f@z.test>\r\n"
		"MAIL FROM:<x.test>\r\nMAIL FROM:<>\r\n"),
	    EXPECT(10, OK_MAIL OK_RSET OK_MAIL OK_RSET OK_MAIL OK_RSET NOT_OWNED NOT_OWNED NOT_OWNED
			   OK_MAIL),
	    BYE,
	    {0},
	};

	f->cfg.sender_policy = SMTPD_SENDER_OWN_DOMAIN;
	fx_run(f, steps);
	assert_string_equal(f->log, "auth alice@x.test s3cret;mail bob@X.test;mail c@Y.TEST;"
				    "mail d@a.w.test;mail ;");
}

/* A login without a domain and without extra domains owns no domain. */
static void test_sender_own_domain_bare_login(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO_AUTH,
	    SEND("AUTH PLAIN " PLAIN_BOB "\r\nMAIL FROM:<bob@x.test>\r\nMAIL FROM:<bob>\r\n"),
	    EXPECT(3, OK_AUTH "553 5.7.1 Sender address rejected: not owned by user bob\r\n"
			      "553 5.7.1 Sender address rejected: not owned by user bob\r\n"),
	    BYE,
	    {0},
	};

	f->cfg.sender_policy = SMTPD_SENDER_OWN_DOMAIN;
	fx_run(f, steps);
	assert_string_equal(f->log, "auth bob pw;");
}

/* ---- limits and answers ---- */

/* max_rset counts RSETs since the last accepted message. */
static void test_max_rset(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO_AUTH,
	    SEND("RSET\r\nRSET\r\n"),
	    EXPECT(2, OK_RSET OK_RSET),
	    TRANSACTION,
	    SEND("RSET\r\nRSET\r\n"),
	    EXPECT(2, OK_RSET OK_RSET),
	    SEND("RSET\r\nNOOP\r\n"),
	    EXPECT(1, "421 4.7.0 Too many RSET commands\r\n"),
	    EXPECT_EOF(""),
	    {0},
	};

	f->cfg.max_rset = 2;
	fx_run(f, steps);
	assert_int_equal(f->datas, 1);
}

static void test_vrfy_expn(void **state)
{
	struct fx *f = *state;
	const struct peer_step legacy[] = {
	    HELLO_AUTH,
	    SEND("VRFY <a@b.test>\r\nEXPN staff\r\n"),
	    EXPECT(2, "252 2.5.0 Cannot VRFY user, but will accept message\r\n" NOT_IMPL),
	    BYE,
	    {0},
	};
	const struct peer_step no[] = {
	    HELLO_AUTH,
	    SEND("VRFY <a@b.test>\r\nEXPN staff\r\nVRFY\r\n"),
	    EXPECT(3, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery\r\n"
		      "502 5.5.1 EXPN not supported\r\n"
		      "501 5.5.4 Error: syntax error in parameters\r\n"),
	    BYE,
	    {0},
	};
	const struct peer_step yes[] = {
	    HELLO_AUTH,
	    SEND("VRFY <a@b.test>\r\nVRFY John Smith\r\n"),
	    EXPECT(2, "252 2.5.2 <a@b.test>: cannot VRFY user, but will accept message and attempt "
		      "delivery\r\n"
		      "252 2.5.2 John Smith: cannot VRFY user, but will accept message and attempt "
		      "delivery\r\n"),
	    BYE,
	    {0},
	};

	fx_run(f, legacy);
	fx_teardown(state);
	setup(state);
	f = *state;
	f->cfg.policy = true;
	fx_run(f, no);
	fx_teardown(state);
	setup(state);
	f = *state;
	f->cfg.policy = true;
	f->cfg.vrfy = true;
	fx_run(f, yes);
}

/* ---- secrets ---- */

/* On the loop thread after the AUTH lines were handled: is any of them still in the receive
 * buffer? */
static void check_rbuf(void *user)
{
	struct fx *f = user;
	const char *needles[] = {PLAIN_ALICE, PLAIN_WRONG, "s3cret", "wrong"};
	bool leak = false;

	for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++)
		leak |=
		    memmem(f->async_s->rbuf, SMTPD_RBUF, needles[i], strlen(needles[i])) != NULL;
	logf_(f, "rbuf %s;", leak ? "LEAK" : "clean");
}

/* Traces name the mechanism and mask the payload; the lines are wiped from the buffer. */
static void test_secrets_masked(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO_AUTH,
	    SEND("AUTH PLAIN\r\n" PLAIN_WRONG "\r\n"),
	    EXPECT(2, "334 \r\n" BAD_AUTH),
	    SEND("AUTH PLAIN " PLAIN_ALICE "\r\n"),
	    EXPECT(1, OK_AUTH),
	    CALL(check_rbuf),
	    BYE,
	    {0},
	};
	char path[] = "/tmp/rt-smtpd-trace-XXXXXX", trace[8192];
	int fd = mkstemp(path), saved = dup(2);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	f->cfg.trace = true;
	fflush(stderr);
	dup2(fd, 2);
	fx_run(f, steps);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, trace, sizeof(trace) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	trace[n] = '\0';
	assert_non_null(strstr(trace, "AUTH PLAIN\n"));
	assert_non_null(strstr(trace, "AUTH response ****\n"));
	assert_non_null(strstr(trace, "AUTH PLAIN ****\n"));
	assert_non_null(strstr(trace, "AUTH -> 235\n"));
	assert_null(strstr(trace, "s3cret"));
	assert_null(strstr(trace, "AGFsaWNl"));
	assert_null(strstr(trace, "wrong"));
	assert_string_equal(f->log, "auth alice@x.test wrong;auth alice@x.test s3cret;rbuf clean;");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_plain_initial_response),
	    T(test_plain_challenge_async),
	    T(test_login),
	    T(test_cancel_and_bad_responses),
	    T(test_sequence),
	    T(test_auth_disabled),
	    T(test_bruteforce_bounded),
	    T(test_gone_during_verify),
	    T(test_tcp_not_secure),
	    T(test_tcp_auth_plaintext),
	    T(test_tcp_untrusted),
	    T(test_tcp_closed_by_default),
	    T(test_tcp_trusted),
	    T(test_tcp_secure_auth),
	    T(test_sender_own_address),
	    T(test_sender_own_domain),
	    T(test_sender_own_domain_bare_login),
	    T(test_max_rset),
	    T(test_vrfy_expn),
	    T(test_secrets_masked),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
