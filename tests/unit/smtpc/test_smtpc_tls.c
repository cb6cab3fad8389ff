/* test_smtpc_tls — engine/smtpc's TLS against the real engine/smtpd with a server certificate,
 * both on one loop over loopback TCP: STARTTLS (TRY) with two transactions on one connection
 * and the bodies compared byte for byte, smtpc_tls_info; TRY against a server without
 * STARTTLS (plaintext delivery), REQUIRE against it (tls_failed); certificate verification
 * against a wrong host name (tls_failed, the reason kept) and without verification (delivered,
 * reported unverified); implicit TLS against smtpd_server_listen_tls (and against a plaintext
 * listener); session resumption by tls_cache_key. Scripted servers (tests/unit/peer) for what
 * smtpd never does: plaintext injected behind the 220 to STARTTLS, STARTTLS refused.
 *
 * Why the real server: the client and server TLS paths were written together and must agree
 * on when the handshake starts and what is forgotten afterwards; a scripted TLS server would
 * only test the script. Certificates come from tests/integration/mkcerts.sh (argv[1]).
 */
#include "tests/unit/peer/peer.h"
#include "tests/unit/tls/tls_fx.h"
#include "engine/smtpc/smtpc.h"
#include "engine/smtpd/smtpd.h"
#include "engine/smtpd/smtpd_types.h" /* the listening fd, for its ephemeral port */
#include "engine/util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

static const char *mkcerts;
static struct tls_ctx *srv_ctx, *wrong_ctx, *cli_verify, *cli_any, *cli_cache;

#define MAX_TXN 2

struct fx {
	struct loop *l;
	/* the server (smtpd on the same loop) */
	struct smtpd_server *srv;
	struct smtpd_worker *w;
	struct smtpd_config scfg;
	struct smtpd_hooks hooks;
	bool srv_done;
	unsigned connects, datas, secure_datas;
	char *bodies[MAX_TXN];
	size_t body_lens[MAX_TXN];
	/* the client */
	struct smtpc_config ccfg;
	struct smtpc_ops ops;
	struct smtpc_txn txn[MAX_TXN];
	const char *rcpts[1];
	unsigned ntxn, given, nexts, dones;
	int codes[MAX_TXN];
	bool closed, tls_at_ready;
	struct tls_info ti;
	struct smtpc_close_info info;
	char info_err[256];
	char trace[32768];
	/* a scripted server instead of smtpd */
	struct peer peer;
	char *big;
};

#define logf_(f, ...) peer_logf((f)->trace, sizeof((f)->trace), __VA_ARGS__)

/* ---- server hooks (loop thread) ---- */

static int srv_connect(struct smtpd_session *s, void *user)
{
	((struct fx *)user)->connects++;
	return SMTPD_DEFAULT;
}

static int srv_data(struct smtpd_session *s, const struct smtpd_envelope *env, void *user)
{
	struct fx *f = user;

	if (f->datas < MAX_TXN) {
		f->bodies[f->datas] = util_xmalloc(env->body_len + 1);
		memcpy(f->bodies[f->datas], env->body, env->body_len);
		f->body_lens[f->datas] = env->body_len;
	}
	f->datas++;
	f->secure_datas += smtpd_session_secure(s);
	return SMTPD_DEFAULT;
}

static void srv_done(struct smtpd_worker *w, void *arg)
{
	struct fx *f = arg;

	f->srv_done = true;
	loop_stop(f->l);
}

/* ---- client callbacks (loop thread) ---- */

static struct smtpc_txn *cli_next(struct smtpc *s, void *user)
{
	struct fx *f = user;

	if (!f->nexts++)
		f->tls_at_ready = smtpc_tls_info(s, &f->ti);
	if (f->given < f->ntxn)
		return &f->txn[f->given++];
	smtpc_quit(s);
	return NULL;
}

static void cli_txn_done(struct smtpc *s, struct smtpc_txn *t, const struct smtpc_result *res,
			 void *user)
{
	struct fx *f = user;

	if (f->dones < MAX_TXN)
		f->codes[f->dones] = res->reply.code;
	f->dones++;
}

static void cli_closed(struct smtpc *s, const struct smtpc_close_info *info, void *user)
{
	struct fx *f = user;

	f->closed = true;
	f->info = *info;
	f->info.reply.text = NULL;
	snprintf(f->info_err, sizeof(f->info_err), "%s", info->err ? info->err : "");
	f->info.err = NULL;
	loop_stop(f->l);
}

static void cli_trace(struct smtpc *s, const char *line, void *user)
{
	logf_((struct fx *)user, "%s\n", line);
}

/* ---- fixture ---- */

/* A 300 KB body with lines that start with a dot (stuffed on the wire, unstuffed by smtpd). */
static char *big_body(size_t *len)
{
	size_t cap = 320000, n = 0;
	char *b = util_xmalloc(cap);

	n += (size_t)snprintf(b, cap, "Subject: big\r\n\r\n");
	for (unsigned i = 0; n + 100 < cap - 100; i++)
		n +=
		    (size_t)snprintf(b + n, cap - n, "%sline %u of the body, some text to fill\r\n",
				     i % 40 == 0 ? "." : "", i);
	*len = n;
	return b;
}

static int setup(void **state)
{
	struct fx *f = util_xcalloc(1, sizeof(*f));
	size_t blen;

	alarm(30);
	*state = f;
	f->big = big_body(&blen);
	f->rcpts[0] = "b@y.test";
	f->txn[0] = (struct smtpc_txn){.sender = "a@x.test",
				       .rcpts = f->rcpts,
				       .rcpt_count = 1,
				       .body = f->big,
				       .body_len = blen};
	f->txn[1] = (struct smtpc_txn){.sender = "c@x.test",
				       .rcpts = f->rcpts,
				       .rcpt_count = 1,
				       .body = "Subject: t\r\n\r\nhello\r\n",
				       .body_len = 21};
	f->ntxn = 1;
	f->scfg = (struct smtpd_config){.hostname = "mx.test", .tls_ctx = srv_ctx};
	f->hooks = (struct smtpd_hooks){.on_connect = srv_connect, .on_data = srv_data};
	f->ops = (struct smtpc_ops){
	    .next = cli_next, .txn_done = cli_txn_done, .closed = cli_closed, .trace = cli_trace};
	smtpc_timeouts_default(&f->ccfg.timeouts);
	f->ccfg.helo_name = "client.test";
	f->ccfg.ops = &f->ops;
	f->ccfg.user = f;
	f->ccfg.tls_host = "mx.test";
	f->peer.lfd = -1;
	return loop_new(&f->l, 64) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->peer.buf)
		peer_fini(&f->peer);
	for (unsigned i = 0; i < MAX_TXN; i++)
		free(f->bodies[i]);
	free(f->big);
	loop_free(f->l);
	free(f);
	alarm(0);
	return 0;
}

/* Start smtpd on 127.0.0.1 (port chosen by the kernel; implicit TLS when asked) and point the
 * client at it. */
static void server_start(struct fx *f, bool implicit)
{
	struct util_addr a;

	assert_int_equal(smtpd_server_new(&f->srv, &f->scfg, &f->hooks, f), 0);
	assert_int_equal(util_addr_parse("127.0.0.1:0", &a), 0);
	if (implicit)
		assert_int_equal(smtpd_server_listen_tls(f->srv, &a), 0);
	else
		assert_int_equal(smtpd_server_listen(f->srv, &a), 0);
	f->ccfg.addr = a;
	f->ccfg.addr.len = sizeof(f->ccfg.addr.ss);
	assert_int_equal(
	    getsockname(f->srv->ls[0].fd, (struct sockaddr *)&f->ccfg.addr.ss, &f->ccfg.addr.len),
	    0);
	assert_int_equal(smtpd_worker_new(&f->w, f->srv, f->l, NULL), 0);
}

static void server_stop(struct fx *f)
{
	smtpd_worker_shutdown(f->w, 1000, srv_done, f);
	while (!f->srv_done)
		assert_int_equal(loop_run(f->l), 0);
	smtpd_worker_free(f->w);
	smtpd_server_free(f->srv);
}

/* One client session with mode and ctx, until closed(). */
static void client_run(struct fx *f, enum smtpc_tls mode, struct tls_ctx *ctx)
{
	struct smtpc *c;

	f->ccfg.tls = mode;
	f->ccfg.tls_ctx = ctx;
	f->closed = false;
	f->nexts = f->given = 0;
	assert_int_equal(smtpc_new(f->l, &f->ccfg, &c), 0);
	while (!f->closed)
		assert_int_equal(loop_run(f->l), 0);
	print_message("closed: '%s' tls_failed=%d txns=%u\n", f->info_err, f->info.tls_failed,
		      f->info.txns);
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void assert_delivered(struct fx *f, unsigned i)
{
	assert_true(f->datas > i);
	assert_int_equal(f->body_lens[i], f->txn[i].body_len);
	assert_memory_equal(f->bodies[i], f->txn[i].body, f->txn[i].body_len);
	assert_int_equal(f->codes[i], 250);
}

static void assert_tls_info(const struct fx *f, bool verified)
{
	assert_true(f->tls_at_ready);
	assert_true(!strcmp(f->ti.version, "TLSv1.3") || !strcmp(f->ti.version, "TLSv1.2"));
	assert_true(f->ti.cipher[0] != '\0');
	assert_int_equal(f->ti.verified, verified);
}

/* ---- against smtpd ---- */

/* TRY with a verifying context: STARTTLS, EHLO again, two transactions on one connection, the
 * 300 KB body (dot-stuffed on the wire) and the small one arrive intact, over TLS. */
static void test_try_starttls_two_transactions(void **state)
{
	struct fx *f = *state;

	f->ntxn = 2;
	server_start(f, false);
	client_run(f, SMTPC_TLS_TRY, cli_verify);
	server_stop(f);
	assert_string_equal(f->info_err, "");
	assert_false(f->info.tls_failed);
	assert_int_equal(f->info.txns, 2);
	assert_int_equal(f->connects, 1);
	assert_int_equal(f->datas, 2);
	assert_int_equal(f->secure_datas, 2);
	assert_delivered(f, 0);
	assert_delivered(f, 1);
	assert_tls_info(f, true);
	assert_non_null(strstr(f->ti.subject, "mx.test"));
	assert_int_equal(count(f->trace, ">>> STARTTLS"), 1);
	assert_int_equal(count(f->trace, ">>> EHLO"), 2);
	assert_non_null(strstr(f->trace, "<<< 220"));
}

/* TRY against a server without STARTTLS: delivered in plaintext. */
static void test_try_without_starttls(void **state)
{
	struct fx *f = *state;

	f->scfg.tls_ctx = NULL;
	server_start(f, false);
	client_run(f, SMTPC_TLS_TRY, cli_verify);
	server_stop(f);
	assert_string_equal(f->info_err, "");
	assert_false(f->info.tls_failed);
	assert_delivered(f, 0);
	assert_int_equal(f->secure_datas, 0);
	assert_false(f->tls_at_ready);
	assert_null(strstr(f->trace, "STARTTLS"));
}

/* REQUIRE against a server without STARTTLS: closed before any transaction, tls_failed. */
static void test_require_without_starttls(void **state)
{
	struct fx *f = *state;

	f->scfg.tls_ctx = NULL;
	server_start(f, false);
	client_run(f, SMTPC_TLS_REQUIRE, cli_verify);
	server_stop(f);
	assert_true(f->info.tls_failed);
	assert_string_equal(f->info_err, "STARTTLS not offered (TLS required)");
	assert_int_equal(f->nexts, 0);
	assert_int_equal(f->datas, 0);
}

/* A certificate for wrong.test: with verification (REQUIRE, and TRY alike) the handshake
 * fails and the session closes with tls_failed and the reason; without verification the mail
 * goes through and the info says it was not verified, and why. */
static void test_verify_wrong_name(void **state)
{
	struct fx *f = *state;

	f->scfg.tls_ctx = wrong_ctx;
	server_start(f, false);
	client_run(f, SMTPC_TLS_REQUIRE, cli_verify);
	assert_true(f->info.tls_failed);
	assert_non_null(strstr(f->info_err, "TLS handshake failed: "));
	assert_non_null(strstr(f->info_err, "host name mismatch"));
	client_run(f, SMTPC_TLS_TRY, cli_verify);
	assert_true(f->info.tls_failed);
	assert_non_null(strstr(f->info_err, "TLS handshake failed: "));
	assert_int_equal(f->datas, 0);
	client_run(f, SMTPC_TLS_TRY, cli_any);
	server_stop(f);
	assert_string_equal(f->info_err, "");
	assert_delivered(f, 0);
	assert_tls_info(f, false);
	assert_true(f->ti.verify_error[0] != '\0');
	print_message("unverified because: %s\n", f->ti.verify_error);
}

/* IMPLICIT against an implicit-TLS listener: TLS before the greeting, no STARTTLS. Against a
 * plaintext listener the greeting is not TLS: tls_failed. */
static void test_implicit(void **state)
{
	struct fx *f = *state;

	server_start(f, true);
	client_run(f, SMTPC_TLS_IMPLICIT, cli_verify);
	server_stop(f);
	assert_string_equal(f->info_err, "");
	assert_delivered(f, 0);
	assert_int_equal(f->secure_datas, 1);
	assert_tls_info(f, true);
	assert_null(strstr(f->trace, "STARTTLS"));

	f->srv_done = false;
	server_start(f, false);
	client_run(f, SMTPC_TLS_IMPLICIT, cli_verify);
	server_stop(f);
	assert_true(f->info.tls_failed);
	assert_non_null(strstr(f->info_err, "TLS handshake failed"));
	assert_int_equal(f->datas, 1);
}

/* Two sessions in a row with the same tls_cache_key: the second resumes the first's TLS
 * session (and reports the first's verification verdict); a third under another key does
 * not. */
static void test_resumption(void **state)
{
	struct fx *f = *state;

	f->ccfg.tls_cache_key = "mx.test:25";
	server_start(f, false);
	client_run(f, SMTPC_TLS_TRY, cli_cache);
	assert_string_equal(f->info_err, "");
	assert_tls_info(f, true);
	assert_false(f->ti.resumed);
	client_run(f, SMTPC_TLS_TRY, cli_cache);
	assert_string_equal(f->info_err, "");
	assert_int_equal(f->datas, 2);
	assert_tls_info(f, true);
	assert_true(f->ti.resumed);
	f->ccfg.tls_cache_key = "other.test:25"; /* nothing cached under it: a full handshake */
	client_run(f, SMTPC_TLS_TRY, cli_cache);
	server_stop(f);
	assert_tls_info(f, true);
	assert_false(f->ti.resumed);
}

/* ---- against a scripted server ---- */

#define GREET "220 mx.test ESMTP scripted\r\n"
#define EHLO  "EHLO client.test\r\n"
#define OFFER "250-mx.test\r\n250 STARTTLS\r\n"

static void scripted(struct fx *f, enum smtpc_tls mode, const struct peer_step *steps)
{
	char addr[160];

	assert_int_equal(peer_init(&f->peer, "smtpctls", "s.sock"), 0);
	assert_int_equal(peer_listen(&f->peer), 0);
	peer_addr(&f->peer, addr, sizeof(addr));
	assert_int_equal(util_addr_parse(addr, &f->ccfg.addr), 0);
	assert_int_equal(peer_start(&f->peer, f->l, steps, f, NULL), 0);
	client_run(f, mode, cli_verify);
	assert_int_equal(peer_join(&f->peer), 0);
	peer_check(&f->peer);
}

/* "220 go ahead" and "250 injected" in one write: the client refuses to go on (the 250 was
 * plaintext injected before the handshake) and closes without sending anything more. */
static void test_starttls_response_injection(void **state)
{
	struct fx *f = *state;
	const struct peer_step steps[] = {SEND(GREET),
					  ONCE(EHLO),
					  SEND(OFFER),
					  ONCE("STARTTLS\r\n"),
					  SEND("220 go ahead\r\n250 injected\r\n"),
					  EXPECT_EOF(""),
					  {0}};

	scripted(f, SMTPC_TLS_TRY, steps);
	assert_true(f->info.tls_failed);
	assert_string_equal(f->info_err, "STARTTLS response injection: plaintext after the 220");
	assert_int_equal(f->nexts, 0);
}

/* STARTTLS answered 454: TRY goes on in plaintext (here: nothing to send, QUIT); REQUIRE
 * closes with tls_failed and the reply. */
static void test_starttls_refused(void **state)
{
	struct fx *f = *state;
	const struct peer_step try_steps[] = {SEND(GREET),
					      ONCE(EHLO),
					      SEND(OFFER),
					      ONCE("STARTTLS\r\n"),
					      SEND("454 4.7.0 TLS not available\r\n"),
					      ONCE("QUIT\r\n"),
					      SEND("221 2.0.0 Bye\r\n"),
					      EXPECT_EOF(""),
					      {0}};
	const struct peer_step req_steps[] = {SEND(GREET),
					      ONCE(EHLO),
					      SEND(OFFER),
					      ONCE("STARTTLS\r\n"),
					      SEND("454 4.7.0 TLS not available\r\n"),
					      EXPECT_EOF(""),
					      {0}};

	f->ntxn = 0;
	scripted(f, SMTPC_TLS_TRY, try_steps);
	assert_false(f->info.tls_failed);
	assert_string_equal(f->info_err, "");
	assert_int_equal(f->nexts, 1);
	peer_fini(&f->peer);
	memset(&f->peer, 0, sizeof(f->peer));
	scripted(f, SMTPC_TLS_REQUIRE, req_steps);
	assert_true(f->info.tls_failed);
	assert_string_equal(f->info_err, "STARTTLS refused (TLS required)");
	assert_int_equal(f->info.reply.code, 454);
}

static int group_setup(void **state)
{
	if (fx_setup(mkcerts) < 0)
		return -1;
	srv_ctx = fx_server("server.pem", "server.key");
	wrong_ctx = fx_server("wrongname.pem", "wrongname.key");
	cli_verify = fx_client(TLS_VERIFY_CA, "ca.pem", 0);
	cli_any = fx_client(TLS_VERIFY_NONE, "ca.pem", 0);
	cli_cache = fx_client(TLS_VERIFY_CA, "ca.pem", 8);
	return srv_ctx && wrong_ctx && cli_verify && cli_any && cli_cache ? 0 : -1;
}

static int group_teardown(void **state)
{
	tls_ctx_free(cli_cache);
	tls_ctx_free(cli_any);
	tls_ctx_free(cli_verify);
	tls_ctx_free(wrong_ctx);
	tls_ctx_free(srv_ctx);
	fx_teardown();
	return 0;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    T(test_try_starttls_two_transactions),
	    T(test_try_without_starttls),
	    T(test_require_without_starttls),
	    T(test_verify_wrong_name),
	    T(test_implicit),
	    T(test_resumption),
	    T(test_starttls_response_injection),
	    T(test_starttls_refused),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s MKCERTS\n", argv[0]);
		return 2;
	}
	mkcerts = argv[1];
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
