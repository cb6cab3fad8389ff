/* test_smtpd_tls — engine/smtpd's TLS over TCP on loopback: STARTTLS (offered in EHLO only
 * while in plaintext, 220 then the handshake, the client must EHLO again, plaintext pipelined
 * behind STARTTLS discarded, STARTTLS twice / with an argument / inside a transaction / not
 * configured), AUTH offered and accepted only once TLS is up, an implicit-TLS listener, and a
 * client whose handshake is garbage.
 *
 * Why a client thread with its own TLS (tls_client.c): the server runs on engine/xport; its
 * client drives tls/ by hand over a blocking socket, so it can also misbehave (pipeline
 * plaintext behind STARTTLS, send garbage instead of a ClientHello). Certificates come from
 * tests/integration/mkcerts.sh (argv[1]) through the tls/ test fixture.
 */
#include "tests/unit/smtpd/tls_client.h"
#include "tests/unit/tls/tls_fx.h"
#include "engine/smtpd/smtpd.h"
#include "engine/smtpd/smtpd_types.h" /* the listening fd, for its ephemeral port */
#include "engine/util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define GREETING	"220 mx.test ESMTP riptide\r\n"
#define EXT_LINES	"250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n"
#define EHLO_TLS	"250-mx.test\r\n250-STARTTLS\r\n" EXT_LINES "250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_NONE	"250-mx.test\r\n" EXT_LINES "250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_AUTH	"250-mx.test\r\n250-AUTH PLAIN LOGIN\r\n" EXT_LINES "250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_TLS_NOAUTH EHLO_TLS
#define GO_TLS		"220 2.0.0 Ready to start TLS\r\n"
#define OK_MAIL		"250 2.1.0 Ok\r\n"
#define OK_RCPT		"250 2.1.5 Ok\r\n"
#define GO_DATA		"354 End data with <CR><LF>.<CR><LF>\r\n"
#define OK_DOT		"250 2.0.0 Ok\r\n"
#define OK		"250 2.0.0 Ok\r\n"
#define NEED_EHLO	"503 5.5.1 Error: send HELO/EHLO first\r\n"
#define PLAIN_ALICE	"AGFsaWNlQHgudGVzdABzM2NyZXQ=" /* \0alice@x.test\0s3cret */

/* clang-format off */
#define HELLO(ehlo) T_EXPECT(1, GREETING), T_SEND("EHLO client.test\r\n"), T_EXPECT(1, ehlo)
#define TO_TLS	    T_SEND("STARTTLS\r\n"), T_EXPECT(1, GO_TLS), T_STARTTLS("ok")
#define TXN	    T_SEND("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nhi\r\n.\r\n"), \
		    T_EXPECT(4, OK_MAIL OK_RCPT GO_DATA OK_DOT)
#define BYE	    T_SEND("QUIT\r\n"), T_EXPECT(1, "221 2.0.0 Bye\r\n"), T_EOF("")
/* clang-format on */

static const char *mkcerts;
static struct tls_ctx *srv_ctx, *cli_ctx;

struct fx {
	struct loop *l;
	struct smtpd_server *srv;
	struct smtpd_worker *w;
	struct smtpd_config cfg;
	struct smtpd_hooks hooks;
	struct tcli cli;
	bool implicit; /* listen with smtpd_server_listen_tls */
	char log[2048];
	unsigned mails, datas, closes, done_calls;
};

#define logf_(f, ...)                                                                              \
	snprintf((f)->log + strlen((f)->log), sizeof((f)->log) - strlen((f)->log), __VA_ARGS__)

/* ---- the owner's hooks (loop thread): record, accept ---- */

static int hook_mail(struct smtpd_session *s, const char *sender, const char *params, void *user)
{
	struct fx *f = user;

	f->mails++;
	logf_(f, "mail %s secure=%d;", sender, smtpd_session_secure(s));
	return SMTPD_DEFAULT;
}

static int hook_data(struct smtpd_session *s, const struct smtpd_envelope *env, void *user)
{
	struct fx *f = user;

	f->datas++;
	logf_(f, "data %.*s;", (int)env->body_len, env->body);
	return SMTPD_DEFAULT;
}

static int hook_auth(struct smtpd_session *s, const char *login, const char *pass, void *user)
{
	logf_((struct fx *)user, "auth %s;", login);
	smtpd_auth_result(s, !strcmp(login, "alice@x.test") && !strcmp(pass, "s3cret"), NULL);
	return SMTPD_DEFAULT;
}

static void hook_close(struct smtpd_session *s, void *user)
{
	((struct fx *)user)->closes++;
}

static void worker_done(struct smtpd_worker *w, void *arg)
{
	struct fx *f = arg;

	f->done_calls++;
	loop_stop(f->l);
}

static void end_script(void *user)
{
	struct fx *f = user;

	smtpd_worker_shutdown(f->w, 1000, worker_done, f);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct fx *f = util_xcalloc(1, sizeof(*f));

	f->cfg = (struct smtpd_config){.hostname = "mx.test", .max_size = 1000, .tls_ctx = srv_ctx};
	f->cfg.trace = getenv("TRACE") != NULL;
	f->hooks = (struct smtpd_hooks){
	    .on_mail = hook_mail, .on_data = hook_data, .on_close = hook_close};
	f->cli.ctx = cli_ctx;
	f->cli.host = "mx.test";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	tcli_fini(&f->cli);
	free(f);
	return 0;
}

/* Listen on 127.0.0.1 (port chosen by the kernel; implicit TLS if f->implicit) and point the
 * client at it. */
static void listen_tcp(struct fx *f)
{
	struct util_addr a;

	assert_int_equal(util_addr_parse("127.0.0.1:0", &a), 0);
	if (f->implicit)
		assert_int_equal(smtpd_server_listen_tls(f->srv, &a), 0);
	else
		assert_int_equal(smtpd_server_listen(f->srv, &a), 0);
	f->cli.tolen = sizeof(f->cli.to);
	assert_int_equal(
	    getsockname(f->srv->ls[0].fd, (struct sockaddr *)&f->cli.to, &f->cli.tolen), 0);
	f->cli.implicit = f->implicit;
}

/* One session: server + worker on a fresh loop, the client thread plays steps, the loop runs
 * until the worker's shutdown completes; then what the client read is compared. */
static void run(struct fx *f, const struct tcli_step *steps)
{
	assert_int_equal(smtpd_server_new(&f->srv, &f->cfg, &f->hooks, f), 0);
	listen_tcp(f);
	assert_int_equal(loop_new(&f->l, 64), 0);
	assert_int_equal(smtpd_worker_new(&f->w, f->srv, f->l, NULL), 0);
	assert_int_equal(tcli_start(&f->cli, f->l, steps, end_script, f), 0);
	assert_int_equal(loop_run(f->l), 0);
	assert_int_equal(tcli_join(&f->cli), 0);
	assert_int_equal(smtpd_worker_sessions(f->w), 0);
	smtpd_worker_free(f->w);
	smtpd_server_free(f->srv);
	loop_free(f->l);
	assert_int_equal(f->done_calls, 1);
	assert_int_equal(f->closes, 1);
	print_message("log: %s\n", f->log);
	tcli_check(&f->cli);
}

/* ---- tests ---- */

/* STARTTLS offered, 220, handshake, EHLO again (no STARTTLS any more), a transaction over TLS
 * that the owner sees as secure. */
static void test_starttls_transaction(void **state)
{
	struct fx *f = *state;
	const struct tcli_step steps[] = {HELLO(EHLO_TLS),
					  TO_TLS,
					  T_SEND("EHLO client.test\r\n"),
					  T_EXPECT(1, EHLO_NONE),
					  TXN,
					  BYE,
					  {0}};

	run(f, steps);
	assert_string_equal(f->log, "mail a@x.test secure=1;data hi\r\n;");
	assert_true(!strcmp(f->cli.info.version, "TLSv1.3") ||
		    !strcmp(f->cli.info.version, "TLSv1.2"));
	assert_true(f->cli.info.verified);
}

/* A client that pipelines a MAIL behind STARTTLS in one write: only the 220 comes back in
 * plaintext, the MAIL is never acted on; after the handshake the session starts over (MAIL
 * before EHLO is 503). */
static void test_starttls_pipelined_plaintext_discarded(void **state)
{
	struct fx *f = *state;
	const struct tcli_step steps[] = {HELLO(EHLO_TLS),
					  T_SEND("STARTTLS\r\nMAIL FROM:<evil@x.test>\r\n"),
					  T_EXPECT(1, GO_TLS),
					  T_QUIET(200, ""),
					  T_STARTTLS("ok"),
					  T_SEND("MAIL FROM:<a@x.test>\r\n"),
					  T_EXPECT(1, NEED_EHLO),
					  T_SEND("EHLO client.test\r\n"),
					  T_EXPECT(1, EHLO_NONE),
					  TXN,
					  BYE,
					  {0}};

	run(f, steps);
	assert_int_equal(f->mails, 1);
	assert_null(strstr(f->log, "evil"));
}

/* STARTTLS with an argument (501), inside a transaction (503), then for real; after it, a
 * second STARTTLS is 503. */
static void test_starttls_misuse(void **state)
{
	struct fx *f = *state;
	const struct tcli_step steps[] = {
	    HELLO(EHLO_TLS),
	    T_SEND("STARTTLS now\r\n"),
	    T_EXPECT(1, "501 5.5.4 Syntax: STARTTLS\r\n"),
	    T_SEND("MAIL FROM:<a@x.test>\r\n"),
	    T_EXPECT(1, OK_MAIL),
	    T_SEND("STARTTLS\r\n"),
	    T_EXPECT(1, "503 5.5.1 Error: STARTTLS inside a transaction\r\n"),
	    T_SEND("RSET\r\n"),
	    T_EXPECT(1, OK),
	    TO_TLS,
	    T_SEND("EHLO client.test\r\n"),
	    T_EXPECT(1, EHLO_NONE),
	    T_SEND("STARTTLS\r\n"),
	    T_EXPECT(1, "503 5.5.1 Error: TLS already active\r\n"),
	    BYE,
	    {0}};

	run(f, steps);
	assert_string_equal(f->log, "mail a@x.test secure=0;");
}

/* Without a server context: no STARTTLS in EHLO, the command is 502. */
static void test_starttls_not_configured(void **state)
{
	struct fx *f = *state;
	const struct tcli_step steps[] = {
	    HELLO(EHLO_NONE),
	    T_SEND("STARTTLS\r\n"),
	    T_EXPECT(1, "502 5.5.1 Error: command not implemented\r\n"),
	    BYE,
	    {0}};

	f->cfg.tls_ctx = NULL;
	run(f, steps);
}

/* AUTH over TCP: not offered and 538 in plaintext; offered and accepted after STARTTLS. */
static void test_auth_only_after_tls(void **state)
{
	struct fx *f = *state;
	const struct tcli_step steps[] = {
	    HELLO(EHLO_TLS_NOAUTH),
	    T_SEND("AUTH PLAIN " PLAIN_ALICE "\r\n"),
	    T_EXPECT(1, "538 5.7.11 Encryption required for requested authentication "
			"mechanism\r\n"),
	    TO_TLS,
	    T_SEND("EHLO client.test\r\n"),
	    T_EXPECT(1, EHLO_AUTH),
	    T_SEND("AUTH PLAIN " PLAIN_ALICE "\r\n"),
	    T_EXPECT(1, "235 2.7.0 Authentication successful\r\n"),
	    TXN,
	    BYE,
	    {0}};

	f->cfg.auth = true;
	f->hooks.on_auth = hook_auth;
	run(f, steps);
	assert_string_equal(f->log, "auth alice@x.test;mail a@x.test secure=1;data hi\r\n;");
}

/* An implicit-TLS listener: the handshake first, then the greeting; no STARTTLS offered. */
static void test_implicit_listener(void **state)
{
	struct fx *f = *state;
	const struct tcli_step steps[] = {HELLO(EHLO_NONE),
					  T_SEND("STARTTLS\r\n"),
					  T_EXPECT(1, "503 5.5.1 Error: TLS already active\r\n"),
					  TXN,
					  BYE,
					  {0}};

	f->implicit = true;
	run(f, steps);
	assert_string_equal(f->log, "mail a@x.test secure=1;data hi\r\n;");
	assert_true(f->cli.info.version[0] != '\0');
}

/* Plaintext where the ClientHello belongs: the handshake fails, the server answers with a
 * TLS alert at most (never an SMTP reply) and closes without acting on it. */
static void test_handshake_garbage(void **state)
{
	struct fx *f = *state;
	const struct tcli_step steps[] = {
	    HELLO(EHLO_TLS),	 T_SEND("STARTTLS\r\n"),
	    T_EXPECT(1, GO_TLS), T_GARBAGE("MAIL FROM:<evil@x.test>\r\n"),
	    T_EOF_ANY,		 {0}};
	const char *tail;

	run(f, steps);
	assert_int_equal(f->mails, 0);
	tail = f->cli.got[6];
	assert_non_null(tail);
	print_message("after the garbage: %zu bytes, first 0x%02x\n", strlen(tail),
		      (unsigned char)tail[0]);
	assert_true(tail[0] == '\0' || tail[0] == 0x15); /* nothing, or an alert record */
}

/* 700 NOOPs and STARTTLS in one write fill the reply buffer, so STARTTLS is taken while a
 * plaintext recv is armed; a MAIL written right behind (a second write, as an attacker in the
 * path would add it) must never run as a command: it is either dropped with the STARTTLS
 * line's read or handed to TLS as (bad) handshake bytes. */
static void test_starttls_injection_behind_full_reply_buffer(void **state)
{
	struct fx *f = *state;
	char *cmds = util_xmalloc(700 * 6 + 16), *want = util_xmalloc(700 * 14 + 40);
	struct tcli_step steps[] = {HELLO(EHLO_TLS),
				    T_SEND(cmds),
				    T_SEND("MAIL FROM:<evil@x.test>\r\n"),
				    T_EXPECT(701, want),
				    {.kind = TC_STARTTLS, .data = NULL},
				    T_SEND("MAIL FROM:<a@x.test>\r\n"),
				    T_QUIET(300, NULL),
				    {0}};

	cmds[0] = want[0] = '\0';
	for (int i = 0; i < 700; i++) {
		strcat(cmds, "NOOP\r\n");
		strcat(want, OK);
	}
	strcat(cmds, "STARTTLS\r\n");
	strcat(want, GO_TLS);
	run(f, steps);
	print_message("handshake after the injection: %s\n", f->cli.got[6]);
	assert_int_equal(f->mails, 0);
	free(cmds);
	free(want);
}

static int group_setup(void **state)
{
	if (fx_setup(mkcerts) < 0)
		return -1;
	srv_ctx = fx_server("server.pem", "server.key");
	cli_ctx = fx_client(TLS_VERIFY_CA, "ca.pem", 0);
	return srv_ctx && cli_ctx ? 0 : -1;
}

static int group_teardown(void **state)
{
	tls_ctx_free(cli_ctx);
	tls_ctx_free(srv_ctx);
	fx_teardown();
	return 0;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    T(test_starttls_transaction), T(test_starttls_pipelined_plaintext_discarded),
	    T(test_starttls_misuse),	  T(test_starttls_not_configured),
	    T(test_auth_only_after_tls),  T(test_implicit_listener),
	    T(test_handshake_garbage),	  T(test_starttls_injection_behind_full_reply_buffer),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s MKCERTS\n", argv[0]);
		return 2;
	}
	mkcerts = argv[1];
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
