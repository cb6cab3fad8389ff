/* sink_sec — riptide-sink's TLS and AUTH: --tls-cert/--tls-key (STARTTLS), --tls-listen
 * (implicit TLS), --tls-fail (every handshake fails), --auth USER:PASSWORD, --auth-plaintext and
 * --auth-required.
 *
 * Why: capacity and fallback tests of a sender need a receiver that does TLS like a real MX
 * (STARTTLS, or TLS on connect), one whose TLS is broken (the opportunistic sender must reconnect
 * in plaintext) and a relay that wants a login. smtpd does the protocol; this file only makes
 * the tls/ context, checks the credentials and counts TLS sessions.
 *
 * AUTH is offered where smtpd offers it: after STARTTLS, on an implicit-TLS or UNIX listener,
 * and with --auth-plaintext on any session.
 *
 * --tls-fail: STARTTLS is offered and answered with 220 like on a working server, but the
 * context handed to smtpd is a tls/ *client* context. So after the 220 the sink starts a
 * handshake as a TLS client: it sends a ClientHello of its own while the client sends one too.
 * Each side receives a ClientHello where it expects a ServerHello, sends a fatal alert
 * (unexpected_message) and the connection closes: a real TLS failure on the wire, fast, with no
 * certificate needed. The sink's ClientHello leaves right behind the 220, so a client that reads
 * both in one go may instead refuse it as bytes behind the 220 (riptide's smtpc: "STARTTLS
 * response injection"); either way TLS fails after a 220, which is what an opportunistic sender
 * must survive. The sink is otherwise unchanged, so a client that reconnects without STARTTLS
 * delivers in plaintext. The same holds for --tls-listen with it (the handshake fails at once).
 */
#include "tools/sink/sink.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* sink_auth_add: see sink.h. */
int sink_auth_add(struct sink_opts *o, const char *arg)
{
	const char *colon = strchr(arg, ':');
	size_t n = colon ? (size_t)(colon - arg) : 0;

	if (n == 0 || n >= SMTPD_AUTH_LOGIN_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)arg[i] <= ' ' || arg[i] == 0x7f)
			return -EINVAL;
	if (o->nauth == SINK_MAX_AUTH)
		return -E2BIG;
	o->auth[o->nauth++] = (struct sink_cred){.user = arg, .user_len = n, .password = colon + 1};
	return 0;
}

/* Whether one of o's -l listeners is a UNIX socket (AUTH is offered there without TLS). */
static bool sink_has_unix(const struct sink_opts *o)
{
	for (unsigned i = 0; i < o->nlisten; i++)
		if (strncmp(o->listen[i], "unix:", 5) == 0 || o->listen[i][0] == '/')
			return true;
	return false;
}

/* sink_sec_check: see sink.h. */
int sink_sec_check(const struct sink_opts *o)
{
	const char *why = NULL;

	if (!o->tls_cert != !o->tls_key)
		why = "--tls-cert and --tls-key go together";
	else if (o->tls_fail && o->tls_cert)
		why = "--tls-fail takes no certificate (--tls-cert/--tls-key)";
	else if (o->ntls_listen && !o->tls_cert && !o->tls_fail)
		why = "--tls-listen needs --tls-cert and --tls-key (or --tls-fail)";
	else if (o->auth_plaintext && !o->nauth)
		why = "--auth-plaintext needs --auth";
	if (why) {
		fprintf(stderr, "riptide-sink: %s\n", why);
		return -EINVAL;
	}
	if (o->nauth && !o->tls_cert && !o->auth_plaintext && !sink_has_unix(o) && !o->quiet)
		fprintf(stderr, "riptide-sink: warning: AUTH is offered only after STARTTLS, on a "
				"UNIX socket or with --auth-plaintext; as it is, no client can "
				"authenticate\n");
	return 0;
}

/* sink_sec_config: see sink.h. */
int sink_sec_config(struct smtpd_config *cfg)
{
	const struct sink_opts *o = &sink_g.o;
	struct tls_server_opts so = {.cert_file = o->tls_cert, .key_file = o->tls_key};
	struct tls_client_opts co = {.verify = TLS_VERIFY_NONE};
	char err[256];
	int ret = 0;

	if (o->tls_cert)
		ret = tls_ctx_server_new(&so, &sink_g.tls, err, sizeof(err));
	else if (o->tls_fail) /* see the top of this file */
		ret = tls_ctx_client_new(&co, &sink_g.tls, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "riptide-sink: TLS: %s\n", err);
		return ret;
	}
	cfg->tls_ctx = sink_g.tls;
	cfg->auth = o->nauth > 0;
	cfg->auth_plaintext = o->auth_plaintext;
	return 0;
}

/* sink_sec_listen: see sink.h. */
int sink_sec_listen(struct smtpd_server *srv)
{
	struct util_addr a;
	int ret;

	for (unsigned i = 0; i < sink_g.o.ntls_listen; i++) {
		ret = util_addr_parse(sink_g.o.tls_listen[i], &a);
		if (ret == 0)
			ret = smtpd_server_listen_tls(srv, &a);
		if (ret < 0) {
			fprintf(stderr, "riptide-sink: listen (TLS) %s: %s\n",
				sink_g.o.tls_listen[i], strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* sink_sec_free: see sink.h. */
void sink_sec_free(void)
{
	tls_ctx_free(sink_g.tls);
	sink_g.tls = NULL;
}

/* Compare n bytes without an early exit (the time does not tell how much of a password
 * matched). */
static bool sink_same(const char *a, const char *b, size_t n)
{
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* Whether login/password is one of the --auth credentials. */
static bool sink_auth_ok(const char *login, const char *password)
{
	size_t ln = strlen(login), pn = strlen(password);
	bool ok = false;

	for (unsigned i = 0; i < sink_g.o.nauth; i++) {
		const struct sink_cred *c = &sink_g.o.auth[i];

		if (c->user_len == ln && memcmp(c->user, login, ln) == 0 &&
		    strlen(c->password) == pn && sink_same(c->password, password, pn))
			ok = true;
	}
	return ok;
}

/* sink_on_auth: see sink.h. */
int sink_on_auth(struct smtpd_session *s, const char *login, const char *password, void *user)
{
	smtpd_auth_result(s, sink_auth_ok(login, password), NULL);
	return SMTPD_DEFAULT;
}

/* sink_sec_close: see sink.h. */
void sink_sec_close(struct smtpd_session *s, struct sink_worker *w)
{
	if (smtpd_session_tls(s, NULL))
		atomic_fetch_add_explicit(&w->c.tls_sessions, 1, memory_order_relaxed);
}
