/* smtpd_dsn — the DSN extension (RFC 3461) of a server session: RET= and ENVID= on MAIL,
 * NOTIFY= and ORCPT= on RCPT, kept with the transaction until on_data.
 *
 * Why a file of its own: the command handlers (smtpd_cmd.c) stay about the protocol steps; the
 * parameters' grammar is engine/smtp's (smtp_dsn.c), and what is here is the session's side:
 * whether DSN was offered to this client (EHLO, not hidden), duplicate detection, the reply for
 * each kind of bad value, and the per-recipient arrays on_data sees. The parameters are taken
 * only from a client that was offered DSN; from any other they are unknown parameters (555
 * 5.5.4), as from a server without the extension.
 */
#include "engine/smtpd/smtpd_types.h"

#include <errno.h>
#include <string.h>

/* DSN parameters seen in the command being parsed (each may appear once). */
enum {
	SMTPD_SEEN_RET = 1,
	SMTPD_SEEN_ENVID = 2,
	SMTPD_SEEN_NOTIFY = 4,
	SMTPD_SEEN_ORCPT = 8,
};

/* DSN offered to this client: it greeted with EHLO and the extension is not hidden. */
static bool smtpd_dsn_offered(const struct smtpd_session *s)
{
	return s->esmtp && !(s->w->srv->cfg.hide_ext & SMTP_EXT_DSN);
}

/* Mark `bit` seen; false (with *why) if it was already. */
static bool smtpd_dsn_once(unsigned *seen, unsigned bit, const char *dup, const char **why)
{
	if (*seen & bit) {
		*why = dup;
		return false;
	}
	*seen |= bit;
	return true;
}

/* smtpd_dsn_mail_param: one MAIL parameter: RET= or ENVID= from a client offered DSN is taken
 * into the session (s->ret, s->envid). Returns -1 when prm is not one of them (the caller goes
 * on with the other parameters), 0 when taken, or the error reply code (501; *why its text,
 * static) for a duplicate or a bad value. */
int smtpd_dsn_mail_param(struct smtpd_session *s, const struct smtp_param *prm, unsigned *seen,
			 const char **why)
{
	ssize_t r;

	if (!smtpd_dsn_offered(s))
		return -1;
	if (smtp_param_is(prm, "RET")) {
		if (!smtpd_dsn_once(seen, SMTPD_SEEN_RET, "5.5.4 Duplicate RET parameter", why))
			return 501;
		r = smtp_dsn_ret_parse(prm->value, prm->value_len);
		if (r < 0)
			return *why = "5.5.4 Invalid RET parameter value (FULL or HDRS)", 501;
		s->ret = (uint8_t)r;
		return 0;
	}
	if (!smtp_param_is(prm, "ENVID"))
		return -1;
	if (!smtpd_dsn_once(seen, SMTPD_SEEN_ENVID, "5.5.4 Duplicate ENVID parameter", why))
		return 501;
	r = smtp_dsn_envid_parse(prm->value, prm->value_len, s->envid, sizeof(s->envid));
	if (r == -E2BIG)
		return *why = "5.5.4 ENVID parameter too long (100 characters at most)", 501;
	if (r < 0)
		return *why = "5.5.4 Invalid ENVID parameter value (xtext of printable ASCII)", 501;
	return 0;
}

/* NOTIFY=: into s->notify_new. 0 or 501. */
static int smtpd_param_notify(struct smtpd_session *s, const struct smtp_param *prm, unsigned *seen,
			      const char **why)
{
	int r;

	if (!smtpd_dsn_once(seen, SMTPD_SEEN_NOTIFY, "5.5.4 Duplicate NOTIFY parameter", why))
		return 501;
	r = smtp_dsn_notify_parse(prm->value, prm->value_len);
	if (r < 0)
		return *why = "5.5.4 Invalid NOTIFY parameter value (NEVER, or a list of SUCCESS, "
			      "FAILURE, DELAY)",
		       501;
	s->notify_new = (uint8_t)r;
	return 0;
}

/* ORCPT=: decoded into orcpt (SMTP_ORCPT_BUF bytes). 0 or 501. */
static int smtpd_param_orcpt(const struct smtp_param *prm, unsigned *seen, char *orcpt,
			     const char **why)
{
	ssize_t r;

	if (!smtpd_dsn_once(seen, SMTPD_SEEN_ORCPT, "5.5.4 Duplicate ORCPT parameter", why))
		return 501;
	r = smtp_dsn_orcpt_parse(prm->value, prm->value_len, orcpt, SMTP_ORCPT_BUF);
	if (r == -E2BIG)
		return *why = "5.5.4 ORCPT parameter too long (500 characters at most)", 501;
	if (r < 0)
		return *why = "5.5.4 Invalid ORCPT parameter value (addr-type;xtext)", 501;
	return 0;
}

/* smtpd_rcpt_params: the parameters of a RCPT command (p, len): NOTIFY= and ORCPT= from a
 * client offered DSN; anything else is unsupported. Sets s->notify_new (0: none) and writes the
 * decoded ORCPT into orcpt (SMTP_ORCPT_BUF bytes; "" when none). Returns 0 or the error reply
 * code: 555 for an unsupported parameter, 501 for a malformed list, a duplicate or a bad value
 * (*why its text, static). */
int smtpd_rcpt_params(struct smtpd_session *s, const char *p, size_t len, char *orcpt,
		      const char **why)
{
	bool dsn = smtpd_dsn_offered(s);
	struct smtp_param prm;
	unsigned seen = 0;
	int r, code = 0;

	s->notify_new = 0;
	orcpt[0] = '\0';
	while (!code && (r = smtp_param_next(&p, &len, &prm)) == 1) {
		if (dsn && smtp_param_is(&prm, "NOTIFY"))
			code = smtpd_param_notify(s, &prm, &seen, why);
		else if (dsn && smtp_param_is(&prm, "ORCPT"))
			code = smtpd_param_orcpt(&prm, &seen, orcpt, why);
		else
			code = (*why = "5.5.4 Unsupported parameter", 555);
	}
	if (!code && r < 0)
		return *why = "5.5.4 Syntax error in parameters", 501;
	return code;
}

/* smtpd_dsn_rcpt_grow: make the per-recipient DSN arrays hold cap entries (like rcpt_off). */
void smtpd_dsn_rcpt_grow(struct smtpd_session *s, unsigned cap)
{
	s->rcpt_notify = util_xrealloc(s->rcpt_notify, cap * sizeof(*s->rcpt_notify));
	s->orcpt_off = util_xrealloc(s->orcpt_off, cap * sizeof(*s->orcpt_off));
	s->orcpt_ptr = util_xrealloc(s->orcpt_ptr, cap * sizeof(*s->orcpt_ptr));
}

/* smtpd_dsn_rcpt_push: recipient idx was accepted: keep the DSN values of its RCPT. */
void smtpd_dsn_rcpt_push(struct smtpd_session *s, unsigned idx)
{
	s->rcpt_notify[idx] = s->notify_new;
	s->orcpt_off[idx] = s->orcpt_new;
}

/* smtpd_dsn_envelope: fill env's DSN fields for on_data (pointers into the session, valid
 * until the DATA reply). */
void smtpd_dsn_envelope(struct smtpd_session *s, struct smtpd_envelope *env)
{
	for (unsigned i = 0; i < s->nrcpts; i++)
		s->orcpt_ptr[i] =
		    s->orcpt_off[i] == SMTPD_NO_ORCPT ? "" : s->arena + s->orcpt_off[i];
	env->envid = s->envid;
	env->ret = s->ret;
	env->notify = s->rcpt_notify;
	env->orcpts = s->orcpt_ptr;
}
