/* smtpd_auth — AUTH PLAIN and LOGIN (RFC 4954, 4616) and the injection policy of a server
 * session: who may relay (trusted networks, relay_domains, AUTH), which senders an
 * authenticated client may use, the RSET limit and the VRFY / EXPN answers.
 *
 * Why a file of its own: this is the part of the server that handles secrets and decides
 * whether riptide is an open relay, so it is kept small and readable in one place. The
 * exchange is a short side-track of the command loop: while auth_step is set, the next line is
 * a response, not a command. Decoded credentials live in one stack buffer for the length of one
 * call (the owner's hook copies what it needs) and are wiped with the line they came in;
 * traces show "AUTH PLAIN ****". The verdict comes back through the usual hook-reply path
 * (SMTPD_A_AUTH), so async verification works like every other hook.
 */
#include "engine/smtpd/smtpd_types.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Room for a decoded response: a line is at most 4096 bytes, so its base64 at most 3072. */
#define SMTPD_AUTH_BUF 3073u

#define AUTH_OK	     "2.7.0 Authentication successful"
#define AUTH_BAD     "5.7.8 Authentication credentials invalid"
#define AUTH_BAD_B64 "5.5.2 Error: cannot decode response"
#define AUTH_BAD_MSG "5.5.2 Error: malformed authentication response"

/* ---- state ---- */

static bool smtpd_auth_enabled(const struct smtpd_session *s)
{
	return s->w->srv->cfg.auth && s->w->srv->hooks.on_auth;
}

/* smtpd_session_secure: see smtpd.h. */
bool smtpd_session_secure(const struct smtpd_session *s)
{
	return s->secure || s->peer.ss_family == AF_UNIX;
}

/* smtpd_session_trusted: see smtpd.h. */
bool smtpd_session_trusted(const struct smtpd_session *s)
{
	const struct smtpd_config *cfg = &s->w->srv->cfg;

	return s->peer.ss_family == AF_UNIX ||
	       util_nets_match(cfg->trusted, cfg->ntrusted, (const struct sockaddr *)&s->peer);
}

/* smtpd_session_auth_user: see smtpd.h. */
const char *smtpd_session_auth_user(const struct smtpd_session *s)
{
	return s->authed ? s->auth_user : NULL;
}

/* AUTH may be used on this session as far as transport security goes. */
static bool smtpd_auth_secure_enough(const struct smtpd_session *s)
{
	return smtpd_session_secure(s) || s->w->srv->cfg.auth_plaintext;
}

/* smtpd_auth_offered: AUTH is enabled and the session secure enough (the EHLO reply lists it). */
bool smtpd_auth_offered(const struct smtpd_session *s)
{
	return smtpd_auth_enabled(s) && smtpd_auth_secure_enough(s);
}

/* Forget the login (a failed or abandoned exchange, or TLS starting). */
static void smtpd_auth_forget(struct smtpd_session *s)
{
	s->authed = false;
	s->auth_step = SMTPD_AUTH_NONE;
	explicit_bzero(s->auth_user, sizeof(s->auth_user));
	s->auth_domains[0] = '\0';
}

/* smtpd_session_set_secure: see smtpd_types.h. */
void smtpd_session_set_secure(struct smtpd_session *s)
{
	s->secure = true;
	smtpd_auth_forget(s);
}

/* A trace line about AUTH (cfg.trace): never a payload. */
static void smtpd_auth_trace(const struct smtpd_session *s, const char *what, size_t n,
			     const char *tail)
{
	if (s->w->srv->cfg.trace)
		fprintf(stderr, "smtpd[%" PRIu64 "]: AUTH %.*s%s\n", s->id, (int)n, what, tail);
}

/* ---- the exchange ---- */

/* A failed exchange before the owner was asked: forget the login, answer (an error). */
static void smtpd_auth_fail(struct smtpd_session *s, int code, const char *text)
{
	smtpd_auth_forget(s);
	smtpd_auth_trace(s, "->", 2, code == 501 ? " 501" : " 535");
	smtpd_error(s, code, text);
}

/* Hand login (already in s->auth_user) and password to the owner; its verdict arrives through
 * smtpd_auth_result (smtpd_auth_apply). */
static void smtpd_auth_verify(struct smtpd_session *s, const char *password)
{
	size_t mark = s->wlen;
	int ret;

	s->await = SMTPD_A_AUTH;
	s->in_hook = true;
	ret = s->w->srv->hooks.on_auth(s, s->auth_user, password, s->w->user);
	smtpd_hook_done(s, ret, 535, AUTH_BAD, mark);
}

/* Decode the base64 response b64[0..n) into buf (SMTPD_AUTH_BUF bytes), NUL-terminated.
 * Returns its length, or -1 after answering 501 5.5.2. */
static ssize_t smtpd_auth_decode(struct smtpd_session *s, const char *b64, size_t n, char *buf)
{
	ssize_t len = smtp_b64_decode(b64, n, buf, SMTPD_AUTH_BUF - 1);

	if (len < 0) {
		smtpd_auth_fail(s, 501, AUTH_BAD_B64);
		return -1;
	}
	buf[len] = '\0';
	return len;
}

/* Keep login[0..n) as the login being verified; false (and 535 given) when it is too long. */
static bool smtpd_auth_set_login(struct smtpd_session *s, const char *login, size_t n)
{
	if (n >= sizeof(s->auth_user)) {
		smtpd_auth_fail(s, 535, AUTH_BAD);
		return false;
	}
	memcpy(s->auth_user, login, n);
	s->auth_user[n] = '\0';
	return true;
}

/* PLAIN (RFC 4616): authzid NUL authcid NUL passwd; an authzid, if any, must be the login. */
static void smtpd_auth_plain(struct smtpd_session *s, const char *b64, size_t n)
{
	char buf[SMTPD_AUTH_BUF];
	ssize_t len = smtpd_auth_decode(s, b64, n, buf);
	const char *authc, *pass, *end = buf + (len > 0 ? len : 0);

	if (len < 0)
		return;
	authc = memchr(buf, '\0', (size_t)len);
	pass = authc ? memchr(authc + 1, '\0', (size_t)(end - authc - 1)) : NULL;
	if (!pass || memchr(pass + 1, '\0', (size_t)(end - pass - 1)))
		smtpd_auth_fail(s, 501, AUTH_BAD_MSG);
	else if (buf[0] && strcmp(buf, authc + 1) != 0)
		smtpd_auth_fail(s, 535, AUTH_BAD); /* acting as someone else: not offered */
	else if (smtpd_auth_set_login(s, authc + 1, (size_t)(pass - authc - 1)))
		smtpd_auth_verify(s, pass + 1);
	explicit_bzero(buf, sizeof(buf));
}

/* LOGIN's user name: keep it and ask for the password. */
static void smtpd_auth_login_user(struct smtpd_session *s, const char *b64, size_t n)
{
	char buf[SMTPD_AUTH_BUF];
	ssize_t len = smtpd_auth_decode(s, b64, n, buf);

	if (len < 0)
		return;
	if (memchr(buf, '\0', (size_t)len))
		smtpd_auth_fail(s, 501, AUTH_BAD_MSG);
	else if (smtpd_auth_set_login(s, buf, (size_t)len)) {
		s->auth_step = SMTPD_AUTH_LOGIN_PASS;
		smtpd_say(s, 334, "UGFzc3dvcmQ6"); /* "Password:" */
	}
	explicit_bzero(buf, sizeof(buf));
}

/* LOGIN's password: verify. */
static void smtpd_auth_login_pass(struct smtpd_session *s, const char *b64, size_t n)
{
	char buf[SMTPD_AUTH_BUF];
	ssize_t len = smtpd_auth_decode(s, b64, n, buf);

	if (len >= 0 && memchr(buf, '\0', (size_t)len))
		smtpd_auth_fail(s, 501, AUTH_BAD_MSG);
	else if (len >= 0)
		smtpd_auth_verify(s, buf);
	explicit_bzero(buf, sizeof(buf));
}

/* Why AUTH cannot start now (NULL: it can), and its code in *code. */
static const char *smtpd_auth_refusal(const struct smtpd_session *s, int *code)
{
	*code = 503;
	if (!s->esmtp || s->state < SMTPD_S_IDLE)
		return "5.5.1 Error: send EHLO first";
	if (s->authed)
		return "5.5.1 Error: already authenticated";
	if (s->state > SMTPD_S_IDLE)
		return "5.5.1 Error: MAIL transaction in progress";
	*code = 538;
	if (!smtpd_auth_secure_enough(s))
		return "5.7.11 Encryption required for requested authentication mechanism";
	return NULL;
}

/* smtpd_do_auth: the AUTH command (its line is wiped by the caller). */
void smtpd_do_auth(struct smtpd_session *s, const struct smtp_cmd *c)
{
	const char *why;
	int code;

	smtpd_auth_trace(s, c->arg, c->mech_len, c->has_resp ? " ****" : "");
	if (!smtpd_auth_enabled(s))
		return smtpd_error(s, 502, "5.5.1 Error: command not implemented");
	if ((why = smtpd_auth_refusal(s, &code)))
		return smtpd_error(s, code, why);
	if (c->mech == SMTP_AUTH_OTHER)
		return smtpd_error(s, 504, "5.5.4 Unrecognized authentication type");
	if (c->mech == SMTP_AUTH_PLAIN && c->has_resp)
		return smtpd_auth_plain(s, c->resp, c->resp_len);
	if (c->mech == SMTP_AUTH_LOGIN && c->has_resp)
		return smtpd_auth_login_user(s, c->resp, c->resp_len);
	s->auth_step = c->mech == SMTP_AUTH_PLAIN ? SMTPD_AUTH_PLAIN : SMTPD_AUTH_LOGIN_USER;
	smtpd_say(s, 334, c->mech == SMTP_AUTH_PLAIN ? "" : "VXNlcm5hbWU6"); /* "Username:" */
}

/* smtpd_auth_line: a response line of the exchange (wiped by the caller); "*" cancels. */
void smtpd_auth_line(struct smtpd_session *s, const char *line, size_t n)
{
	enum smtpd_auth_step step = s->auth_step;

	s->auth_step = SMTPD_AUTH_NONE;
	smtpd_auth_trace(s, "response", 8, " ****");
	if (n == 1 && line[0] == '*')
		return smtpd_auth_fail(s, 501, "5.7.0 Authentication aborted");
	if (step == SMTPD_AUTH_PLAIN)
		smtpd_auth_plain(s, line, n);
	else if (step == SMTPD_AUTH_LOGIN_USER)
		smtpd_auth_login_user(s, line, n);
	else
		smtpd_auth_login_pass(s, line, n);
}

/* smtpd_auth_apply: the owner's verdict (a reply to SMTPD_A_AUTH) was emitted: 235
 * authenticates; anything else forgets the login and counts as an error. */
void smtpd_auth_apply(struct smtpd_session *s, int code)
{
	smtpd_auth_trace(s, "->", 2, code == 235 ? " 235" : " refused");
	if (code == 235) {
		s->authed = true;
		return;
	}
	smtpd_auth_forget(s);
	if (++s->errors >= s->w->srv->cfg.max_errors)
		smtpd_close(s, 421, "4.7.0 Error: too many errors");
}

/* smtpd_auth_result: see smtpd.h. */
void smtpd_auth_result(struct smtpd_session *s, bool ok, const char *domains)
{
	size_t n = ok && domains ? strlen(domains) : 0;

	BUG_ON(s->await != SMTPD_A_AUTH);
	if (n >= sizeof(s->auth_domains))
		ok = false;
	else if (ok)
		memcpy(s->auth_domains, domains ? domains : "", n + 1);
	smtpd_reply(s, ok ? 235 : 535, ok ? AUTH_OK : AUTH_BAD);
}

/* ---- policy ---- */

/* The domain of address a[0..n) (after its last '@'), *dn its length; NULL when none. */
static const char *smtpd_addr_domain(const char *a, size_t n, size_t *dn)
{
	const char *at = memrchr(a, '@', n);

	if (!at)
		return NULL;
	*dn = n - (size_t)(at + 1 - a);
	return at + 1;
}

/* a[0..n) is the login: local parts equal, domains equal but for case (no domain: equal). */
static bool smtpd_own_address(const struct smtpd_session *s, const char *a, size_t n)
{
	const char *login = s->auth_user, *ld, *ad;
	size_t ln = strlen(login), ldn = 0, adn = 0;

	ld = smtpd_addr_domain(login, ln, &ldn);
	ad = smtpd_addr_domain(a, n, &adn);
	if (!ld || !ad)
		return !ld && !ad && ln == n && memcmp(login, a, n) == 0;
	return ld - login == ad - a && memcmp(login, a, (size_t)(ld - login)) == 0 && ldn == adn &&
	       strncasecmp(ld, ad, adn) == 0;
}

/* a[0..n)'s domain is the login's or one of the login's extra domains. */
static bool smtpd_own_domain(const struct smtpd_session *s, const char *a, size_t n)
{
	size_t adn = 0, ldn = 0;
	const char *ad = smtpd_addr_domain(a, n, &adn);
	const char *ld = smtpd_addr_domain(s->auth_user, strlen(s->auth_user), &ldn);

	if (!ad)
		return false;
	if (ld && ldn == adn && strncasecmp(ld, ad, adn) == 0)
		return true;
	return s->auth_domains[0] && util_domains_match(s->auth_domains, ad, adn);
}

/* smtpd_policy_sender: MAIL FROM addr[0..n) against cfg.sender_policy; true when refused
 * (553 5.7.1 given). The null sender and unauthenticated sessions pass. */
bool smtpd_policy_sender(struct smtpd_session *s, const char *addr, size_t n)
{
	enum smtpd_sender_policy p = s->w->srv->cfg.sender_policy;
	char text[SMTPD_AUTH_LOGIN_MAX + 64];

	if (!s->authed || p == SMTPD_SENDER_ANY || n == 0)
		return false;
	if (p == SMTPD_SENDER_OWN_ADDRESS ? smtpd_own_address(s, addr, n)
					  : smtpd_own_domain(s, addr, n))
		return false;
	snprintf(text, sizeof(text), "5.7.1 Sender address rejected: not owned by user %s",
		 s->auth_user);
	smtpd_error(s, 553, text);
	return true;
}

/* smtpd_policy_rcpt: with cfg.policy, a client neither trusted nor authenticated may only send
 * to relay_domains; true when refused (530 5.7.0 given). */
bool smtpd_policy_rcpt(struct smtpd_session *s, const char *addr, size_t n)
{
	const struct smtpd_config *cfg = &s->w->srv->cfg;
	const char *d;
	size_t dn = 0;

	if (!cfg->policy || s->authed || smtpd_session_trusted(s))
		return false;
	d = smtpd_addr_domain(addr, n, &dn);
	if (d && cfg->relay_domains && util_domains_match(cfg->relay_domains, d, dn))
		return false;
	smtpd_error(s, 530, "5.7.0 Authentication required");
	return true;
}

/* smtpd_do_rset: end the transaction; past max_rset RSETs since the last accepted message,
 * 421 4.7.0 and close (bulk injectors may RSET between messages: only a run is bounded). */
void smtpd_do_rset(struct smtpd_session *s)
{
	unsigned max = s->w->srv->cfg.max_rset;

	smtpd_reset_tx(s);
	if (max && ++s->rsets > max)
		return smtpd_close(s, 421, "4.7.0 Too many RSET commands");
	smtpd_say(s, 250, "2.0.0 Ok");
}

/* smtpd_do_vrfy: 252 without a look-up (riptide knows no local users); with cfg.vrfy it names
 * the address as given (printable ASCII, anything else as '?'; at most 256 bytes). */
void smtpd_do_vrfy(struct smtpd_session *s, const struct smtp_cmd *c)
{
	const struct smtpd_config *cfg = &s->w->srv->cfg;
	char addr[257], text[400];
	size_t n = c->arg_len < sizeof(addr) - 1 ? c->arg_len : sizeof(addr) - 1;

	if (!cfg->policy)
		return smtpd_say(s, 252, "2.5.0 Cannot VRFY user, but will accept message");
	if (!cfg->vrfy)
		return smtpd_say(s, 252,
				 "2.5.2 Cannot VRFY user, but will accept message and "
				 "attempt delivery");
	for (size_t i = 0; i < n; i++)
		addr[i] = c->arg[i] >= 32 && c->arg[i] < 127 ? c->arg[i] : '?';
	addr[n] = '\0';
	snprintf(text, sizeof(text),
		 "2.5.2 %s: cannot VRFY user, but will accept message and attempt delivery", addr);
	smtpd_say(s, 252, text);
}

/* smtpd_do_expn: refused (mailing lists are not riptide's). */
void smtpd_do_expn(struct smtpd_session *s)
{
	if (s->w->srv->cfg.policy)
		return smtpd_error(s, 502, "5.5.1 EXPN not supported");
	smtpd_error(s, 502, "5.5.1 Error: command not implemented");
}
