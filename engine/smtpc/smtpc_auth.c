/* smtpc_auth — SMTP AUTH from the client side (RFC 4954): PLAIN with the initial response, or
 * LOGIN, after EHLO and before READY (see "AUTH" in smtpc.h).
 *
 * Why a file of its own: the protocol machine (smtpc_fsm.c) only hooks in — its state table
 * points the AUTH state at smtpc_auth_enter / smtpc_auth_reply and the end of EHLO calls
 * smtpc_auth_start — so credentials, the decision whether AUTH may be sent at all and the
 * masking of secrets live in one place. The credentials are the session's own copies, wiped
 * when it is freed. A line that carries them is queued with the trace muted (smtpc_trace
 * formats nothing) and traced masked afterwards, so neither the password nor its base64 ever
 * reaches ops->trace. Every failure is reported as close info with auth_failed: what it means
 * for the mail (a deferral, a configuration error) is the owner's decision.
 */
#include "engine/smtpc/smtpc_types.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Where the exchange is (s->auth_step). */
enum {
	SMTPC_AUTH_NONE = 0,
	SMTPC_AUTH_PLAIN,      /* AUTH PLAIN <initial response> sent: 235 wanted */
	SMTPC_AUTH_LOGIN_USER, /* AUTH LOGIN sent: 334 asks for the user */
	SMTPC_AUTH_LOGIN_PASS, /* user sent: 334 asks for the password */
	SMTPC_AUTH_LOGIN_DONE, /* password sent: 235 wanted */
	SMTPC_AUTH_CANCEL,     /* "*" sent (RFC 4954 4): the server's refusal is the outcome */
	SMTPC_AUTH_OK,
};

static const char smtpc_err_plain[] =
    "AUTH refused: the connection is not encrypted (auth_plaintext = no)";
static const char smtpc_err_mech[] = "the server offers no AUTH PLAIN/LOGIN";
static const char smtpc_err_auth[] = "authentication failed";

/* smtpc_auth_init: copy cfg's credentials into s (none when auth_user is NULL or ""). */
void smtpc_auth_init(struct smtpc *s, const struct smtpc_config *cfg)
{
	const char *pw = cfg->auth_password ? cfg->auth_password : "";

	if (!cfg->auth_user || !cfg->auth_user[0])
		return;
	s->auth_user = util_xstrndup(cfg->auth_user, strlen(cfg->auth_user));
	s->auth_pass = util_xstrndup(pw, strlen(pw));
	s->auth_plaintext = cfg->auth_plaintext;
}

static void smtpc_wipe_free(char *p)
{
	if (!p)
		return;
	explicit_bzero(p, strlen(p));
	free(p);
}

/* smtpc_auth_free: wipe and free s's credentials. */
void smtpc_auth_free(struct smtpc *s)
{
	smtpc_wipe_free(s->auth_user);
	smtpc_wipe_free(s->auth_pass);
	s->auth_user = s->auth_pass = NULL;
}

/* smtpc_secure: the connection is encrypted (STARTTLS or smtps: tls_on) or never leaves the
 * host (a UNIX socket): credentials may be sent without auth_plaintext. */
bool smtpc_secure(const struct smtpc *s)
{
	return s->tls_on || s->addr.family == AF_UNIX;
}

/* Queue "<prefix><base64 of data[0..n)>\r\n" with the trace muted; trace `shown` instead. */
static void smtpc_auth_out(struct smtpc *s, const char *prefix, const char *data, size_t n,
			   const char *shown)
{
	size_t plen = strlen(prefix), cap = plen + SMTP_B64_ENC_LEN(n) + 2, len;
	char *line = util_xmalloc(cap);

	memcpy(line, prefix, plen);
	len = plen + (size_t)smtp_b64_encode(data, n, line + plen, cap - plen);
	memcpy(line + len, "\r\n", 2);
	s->trace_mute = true;
	smtpc_io_out(s, line, len + 2);
	s->trace_mute = false;
	explicit_bzero(line, cap);
	free(line);
	smtpc_trace(s, ">>> %s", shown);
	smtpc_io_kick(s);
}

/* AUTH PLAIN with the initial response: authzid empty, NUL, user, NUL, password. */
static void smtpc_auth_plain(struct smtpc *s)
{
	size_t ul = strlen(s->auth_user), pl = strlen(s->auth_pass), n = ul + pl + 2;
	char *msg = util_xmalloc(n);

	msg[0] = '\0';
	memcpy(msg + 1, s->auth_user, ul);
	msg[1 + ul] = '\0';
	memcpy(msg + 2 + ul, s->auth_pass, pl);
	s->auth_step = SMTPC_AUTH_PLAIN;
	smtpc_auth_out(s, "AUTH PLAIN ", msg, n, "AUTH PLAIN ****");
	explicit_bzero(msg, n);
	free(msg);
}

/* Credentials are configured but AUTH cannot be done: courtesy QUIT, then closed() with err. */
static void smtpc_auth_refuse(struct smtpc *s, const char *err)
{
	smtpc_trace(s, "%s", err);
	s->cinfo.auth_failed = true;
	s->quit_err = err;
	smtpc_enter(s, SMTPC_S_QUIT);
}

/* smtpc_auth_start: the greeting and EHLO/HELO are done: without credentials go READY; with
 * them enter AUTH, or refuse (not secure and !auth_plaintext; no usable mechanism). */
void smtpc_auth_start(struct smtpc *s)
{
	uint32_t mechs = (s->ext & SMTP_EXT_AUTH) ? s->auth_mechs : 0;

	if (!s->auth_user)
		smtpc_enter(s, SMTPC_S_READY);
	else if (!smtpc_secure(s) && !s->auth_plaintext)
		smtpc_auth_refuse(s, smtpc_err_plain);
	else if (!(mechs & (SMTP_EHLO_AUTH_PLAIN | SMTP_EHLO_AUTH_LOGIN)))
		smtpc_auth_refuse(s, smtpc_err_mech);
	else
		smtpc_enter(s, SMTPC_S_AUTH);
}

/* smtpc_auth_enter: the AUTH state's send step: PLAIN when offered, else LOGIN. */
void smtpc_auth_enter(struct smtpc *s)
{
	if (s->auth_mechs & SMTP_EHLO_AUTH_PLAIN) {
		smtpc_auth_plain(s);
		return;
	}
	s->auth_step = SMTPC_AUTH_LOGIN_USER;
	smtpc_io_out(s, "AUTH LOGIN\r\n", 12);
	smtpc_io_kick(s);
}

/* smtpc_auth_reply: the AUTH state's reply step: 235 after the credentials -> READY; a 334
 * gets the next LOGIN answer (or "*" when nothing more is due); anything else fails. */
void smtpc_auth_reply(struct smtpc *s, const struct smtp_reply *r)
{
	int step = s->auth_step;

	if (r->code == 235 && (step == SMTPC_AUTH_PLAIN || step == SMTPC_AUTH_LOGIN_DONE)) {
		s->auth_step = SMTPC_AUTH_OK;
		smtpc_enter(s, SMTPC_S_READY);
	} else if (r->code == 334 && step == SMTPC_AUTH_LOGIN_USER) {
		s->auth_step = SMTPC_AUTH_LOGIN_PASS;
		smtpc_auth_out(s, "", s->auth_user, strlen(s->auth_user), "****");
	} else if (r->code == 334 && step == SMTPC_AUTH_LOGIN_PASS) {
		s->auth_step = SMTPC_AUTH_LOGIN_DONE;
		smtpc_auth_out(s, "", s->auth_pass, strlen(s->auth_pass), "****");
	} else if (r->code == 334 && step != SMTPC_AUTH_CANCEL) {
		s->auth_step = SMTPC_AUTH_CANCEL; /* a challenge we have nothing for */
		smtpc_io_out(s, "*\r\n", 3);
		smtpc_io_kick(s);
	} else {
		s->cinfo.auth_failed = true;
		smtpc_quit_with(s, smtpc_err_auth, r);
	}
}
