/* test_smtpc_auth — unit tests for SMTP AUTH in engine/smtpc (RFC 4954, client side): a real
 * session on a real loop against the scripted peer (tests/unit/peer) playing the server.
 *
 * Why: what matters is on the wire and in what the owner is told: the exact AUTH PLAIN initial
 * response (base64 of "\0user\0password"), the LOGIN 334 exchange, MAIL only after 235, a 535
 * ending the session with auth_failed and the reply, nothing of AUTH sent when the server
 * offers no usable mechanism or the connection is not encrypted and auth_plaintext is off, and
 * never a password (or its base64) in the trace. The peer listens on a UNIX socket (which the
 * session counts as secure) or, for the plaintext rules, on TCP loopback (not secure: no TLS
 * here). Every test's trace is checked for the secrets.
 */
#include "tests/unit/smtpc/smtpc_fx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define USER	   "user@example.test"
#define PASS	   "s3cr3t-pw"
#define PLAIN_B64  "AHVzZXJAZXhhbXBsZS50ZXN0AHMzY3IzdC1wdw==" /* "\0" USER "\0" PASS */
#define USER_B64   "dXNlckBleGFtcGxlLnRlc3Q="
#define PASS_B64   "czNjcjN0LXB3"
#define AUTH_PLAIN "AUTH PLAIN " PLAIN_B64 "\r\n"
#define EHLO_AUTH  "250-mx.test\r\n250-SIZE 100000\r\n250 AUTH LOGIN PLAIN\r\n"
#define EHLO_LOGIN "250-mx.test\r\n250-SIZE 100000\r\n250 AUTH=LOGIN\r\n"
#define OK_235	   "235 2.7.0 Authentication successful\r\n"

static const char err_plain[] =
    "AUTH refused: the connection is not encrypted (auth_plaintext = no)";
static const char err_mech[] = "the server offers no AUTH PLAIN/LOGIN";

/* Every trace line of the running test, one per line (loop thread; read after the loop). */
static char trace[16384];
static size_t trace_len;

static void op_trace(struct smtpc *s, const char *line, void *user)
{
	(void)s;
	(void)user;
	trace_len += (size_t)snprintf(trace + trace_len, sizeof(trace) - trace_len, "%s\n", line);
	if (trace_len >= sizeof(trace))
		trace_len = sizeof(trace) - 1;
}

static int setup(void **state)
{
	struct fx *f;

	if (fx_setup(state) < 0)
		return -1;
	f = *state;
	f->ops.trace = op_trace;
	f->cfg.auth_user = USER;
	f->cfg.auth_password = PASS;
	f->give_txn = false; /* most tests: AUTH, then idle and QUIT */
	trace[0] = '\0';
	trace_len = 0;
	return 0;
}

/* The trace ran, and holds neither the password nor anything base64 of the credentials. */
static void assert_trace_clean(void)
{
	assert_non_null(strstr(trace, ">>> EHLO client.test"));
	assert_null(strstr(trace, PASS));
	assert_null(strstr(trace, PASS_B64));
	assert_null(strstr(trace, PLAIN_B64));
	assert_null(strstr(trace, USER_B64));
}

/* Replace the fixture's UNIX listener by one on 127.0.0.1 (a TCP connection: not secure). */
static void listen_tcp(struct fx *f)
{
	struct util_addr a;
	int fd;

	assert_int_equal(util_addr_parse("127.0.0.1:0", &a), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a.ss, a.len), 0);
	assert_int_equal(listen(fd, 4), 0);
	a.len = sizeof(a.ss);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a.ss, &a.len), 0);
	close(f->peer.lfd);
	f->peer.lfd = fd;
	f->cfg.addr = a;
}

/* Between two sessions of one test: forget what the peer read (its listener stays open). */
static void peer_forget(struct fx *f)
{
	for (unsigned i = 0; i < PEER_MAX_STEPS; i++) {
		free(f->peer.got[i]);
		f->peer.got[i] = NULL;
	}
}

/* The session authenticated, went READY, asked next() once and quit cleanly. */
static void assert_authed_idle(const struct fx *f)
{
	fx_assert_idle_close(f);
	assert_false(f->info.auth_failed);
	assert_int_equal(f->txn_dones, 0);
}

/* The session ended before READY with auth_failed and err, no reply (nothing refused by the
 * server), after a courtesy QUIT. */
static void assert_refused(const struct fx *f, const char *err)
{
	assert_true(f->info.auth_failed);
	assert_false(f->info.was_ready);
	assert_string_equal(f->info.err, err);
	assert_int_equal(f->info_reply.code, 0);
	assert_int_equal(f->nexts, 0);
	assert_int_equal(f->txn_dones, 0);
}

/* ---- tests ---- */

/* base64 as RFC 4648 section 10 spells it, plus bytes >= 0x80 and NUL. */
static void test_b64_vectors(void **state)
{
	static const struct {
		const char *in;
		size_t n;
		const char *out;
	} v[] = {
	    {"", 0, ""},
	    {"f", 1, "Zg=="},
	    {"fo", 2, "Zm8="},
	    {"foo", 3, "Zm9v"},
	    {"foob", 4, "Zm9vYg=="},
	    {"fooba", 5, "Zm9vYmE="},
	    {"foobar", 6, "Zm9vYmFy"},
	    {"\xff\xfe\x00", 3, "//4A"},
	    {"\0u\0p", 4, "AHUAcA=="},
	};
	char out[SMTP_B64_ENC_LEN(8)];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		memset(out, 'x', sizeof(out));
		assert_int_equal(smtp_b64_encode(v[i].in, v[i].n, out, sizeof(out)),
				 strlen(v[i].out));
		assert_string_equal(out, v[i].out);
	}
}

/* PLAIN offered (with LOGIN): AUTH PLAIN with the initial response, exactly; 235 -> READY. */
static void test_plain_initial_response(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_AUTH), ONCE(AUTH_PLAIN), QUIET(30), SEND(OK_235), BYE, {0},
	};

	fx_run(f, 1, steps);
	assert_authed_idle(f);
	assert_non_null(strstr(trace, ">>> AUTH PLAIN ****\n"));
	assert_non_null(strstr(trace, "EHLO -> AUTH\n"));
	assert_non_null(strstr(trace, "AUTH -> READY\n"));
	assert_trace_clean();
}

/* Only LOGIN offered (old "AUTH=" form): user and password each answer a 334; MAIL follows
 * 235 and the transaction runs as usual. */
static void test_login_exchange_then_mail(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_LOGIN),
	    ONCE("AUTH LOGIN\r\n"),
	    SEND("334 VXNlcm5hbWU6\r\n"),
	    ONCE(USER_B64 "\r\n"),
	    SEND("334 UGFzc3dvcmQ6\r\n"),
	    ONCE(PASS_B64 "\r\n"),
	    QUIET(30),
	    SEND(OK_235),
	    ONCE(MAIL_CMD),
	    SEND("250 2.1.0 Ok\r\n"),
	    ONCE(RCPT_B),
	    SEND("250 2.1.5 Ok\r\n"),
	    DATA_TO_BYE(),
	    {0},
	};

	f->give_txn = true;
	fx_run(f, 1, steps);
	fx_assert_txn(f, 250, SMTPC_STAGE_DOT, 1);
	assert_false(f->info.auth_failed);
	assert_null(f->info.err);
	assert_non_null(strstr(trace, ">>> AUTH LOGIN\n"));
	assert_non_null(strstr(trace, ">>> ****\n"));
	assert_trace_clean();
}

/* 535: closed before MAIL with auth_failed and the server's reply; the transaction the owner
 * had was never pulled. */
static void test_535_auth_failed(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_AUTH),
	    ONCE(AUTH_PLAIN),
	    SEND("535 5.7.8 Authentication credentials invalid\r\n"),
	    BYE,
	    {0},
	};

	f->give_txn = true;
	fx_run(f, 1, steps);
	assert_true(f->info.auth_failed);
	assert_false(f->info.was_ready);
	assert_string_equal(f->info.err, "authentication failed");
	assert_int_equal(f->info_reply.code, 535);
	assert_int_equal(f->info_reply.enh_class, 5);
	assert_int_equal(f->info_reply.enh_subject, 7);
	assert_int_equal(f->info_reply.enh_detail, 8);
	assert_string_equal(f->info_reply.text, "Authentication credentials invalid");
	assert_int_equal(f->nexts, 0);
	assert_int_equal(f->txn_dones, 0);
	assert_trace_clean();
}

/* A 334 challenge after the PLAIN initial response: cancelled with "*" (RFC 4954 4); the
 * server's answer to that (501) is the failure. A 4xx to LOGIN fails the same way. */
static void test_unexpected_challenge_cancelled(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_AUTH),
	    ONCE(AUTH_PLAIN),
	    SEND("334 \r\n"),
	    ONCE("*\r\n"),
	    SEND("501 5.7.0 Authentication cancelled\r\n"),
	    BYE,
	    {0},
	};

	fx_run(f, 1, steps);
	assert_true(f->info.auth_failed);
	assert_int_equal(f->info_reply.code, 501);
	assert_string_equal(f->info.err, "authentication failed");
	assert_trace_clean();
}

static void test_login_temp_failure(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_LOGIN),
	    ONCE("AUTH LOGIN\r\n"),
	    SEND("454 4.7.0 Temporary authentication failure\r\n"),
	    BYE,
	    {0},
	};

	fx_run(f, 1, steps);
	assert_true(f->info.auth_failed);
	assert_int_equal(f->info_reply.code, 454);
	assert_int_equal(f->info_reply.enh_class, 4);
	assert_trace_clean();
}

/* No AUTH in EHLO, only mechanisms smtpc cannot use, or only HELO: nothing of AUTH is sent;
 * QUIT, and closed() with the "no AUTH" error. */
static void test_no_usable_mechanism(void **state)
{
	static const char *const ehlo[] = {EHLO_PLAIN,
					   "250-mx.test\r\n250 AUTH CRAM-MD5 XOAUTH2\r\n",
					   "250-mx.test\r\n250 AUTH\r\n"};
	struct fx *f = *state;

	for (size_t i = 0; i < ARRAY_SIZE(ehlo); i++) {
		const struct peer_step steps[] = {HELLO(ehlo[i]), BYE, {0}};

		f->closes = 0;
		fx_run(f, 1, steps);
		assert_refused(f, err_mech);
		assert_trace_clean();
		peer_forget(f);
	}
}

static void test_helo_fallback_no_auth(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO("502 5.5.2 EHLO not implemented\r\n"),
	    ONCE("HELO client.test\r\n"),
	    SEND("250 mx.test\r\n"),
	    BYE,
	    {0},
	};

	fx_run(f, 1, steps);
	assert_refused(f, err_mech);
}

/* TCP without TLS and auth_plaintext off: the credentials are not sent at all (EHLO, QUIT). */
static void test_not_encrypted_refused(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {HELLO(EHLO_AUTH), BYE, {0}};

	listen_tcp(f);
	fx_run(f, 1, steps);
	assert_refused(f, err_plain);
	assert_non_null(strstr(trace, err_plain));
	assert_null(strstr(trace, "AUTH PLAIN"));
	assert_trace_clean();
}

/* The same over TCP with auth_plaintext = yes: AUTH PLAIN is sent and the session goes on. */
static void test_plaintext_allowed(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {
	    HELLO(EHLO_AUTH), ONCE(AUTH_PLAIN), SEND(OK_235), BYE, {0}};

	listen_tcp(f);
	f->cfg.auth_plaintext = true;
	fx_run(f, 1, steps);
	assert_authed_idle(f);
	assert_trace_clean();
}

/* No credentials (NULL, or an empty user): AUTH offered by the server is not used. */
static void test_no_credentials_no_auth(void **state)
{
	static const char *const users[] = {NULL, ""};
	struct fx *f = *state;

	for (size_t i = 0; i < ARRAY_SIZE(users); i++) {
		const struct peer_step steps[] = {HELLO(EHLO_AUTH), BYE, {0}};

		f->closes = f->nexts = 0;
		f->cfg.auth_user = users[i];
		fx_run(f, 1, steps);
		assert_authed_idle(f);
		assert_null(strstr(trace, ">>> AUTH"));
		assert_null(strstr(trace, "-> AUTH"));
		peer_forget(f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64_vectors),
	    cmocka_unit_test_setup_teardown(test_plain_initial_response, setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_login_exchange_then_mail, setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_535_auth_failed, setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_unexpected_challenge_cancelled, setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_login_temp_failure, setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_no_usable_mechanism, setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_helo_fallback_no_auth, setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_not_encrypted_refused, setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_plaintext_allowed, setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_no_credentials_no_auth, setup, fx_teardown),
	};
	return cmocka_run_group_tests_name("smtpc_auth", tests, NULL, NULL);
}
