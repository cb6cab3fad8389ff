/* smtpc_fsm — the SMTP client protocol as an explicit state machine.
 *
 * Why this shape (after OpenSMTPD's mta_session.c): every state has a small "enter" function
 * that sends what the state needs and a small "reply" function that decides the next state from
 * the server's reply; smtpc_enter() is the only place the state changes and it traces every
 * transition. With PIPELINING, entering MAIL writes MAIL, every RCPT and DATA in one go and the
 * RCPT/DATA enter steps send nothing; the reply steps are the same in both modes, consuming the
 * replies in order. A transaction is reported as soon as its outcome is known; replies still in
 * the pipe are then drained (txn NULL) before RSET / READY.
 */
#include "engine/smtpc/smtpc_types.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static bool smtpc_2xx(const struct smtp_reply *r)
{
	return r->code >= 200 && r->code < 300;
}

/* smtpc_quit_with: courtesy QUIT after a rejection r (saved as the close info's reply); `err`
 * is reported in closed() once QUIT is answered. */
void smtpc_quit_with(struct smtpc *s, const char *err, const struct smtp_reply *r)
{
	struct smtpc_reply rr = smtpc_reply_of(r);
	size_t n = rr.text_len < sizeof(s->ctext) ? rr.text_len : sizeof(s->ctext) - 1;

	memcpy(s->ctext, rr.text, n);
	s->ctext[n] = '\0';
	rr.text = s->ctext;
	rr.text_len = n;
	s->cinfo.reply = rr;
	s->quit_err = err;
	smtpc_enter(s, SMTPC_S_QUIT);
}

/* ---- connection setup ---- */

static void smtpc_greeting_reply(struct smtpc *s, const struct smtp_reply *r)
{
	if (smtpc_2xx(r))
		smtpc_enter(s, SMTPC_S_EHLO);
	else
		smtpc_quit_with(s, "greeting rejected", r);
}

/* Handshake done (EHLO or HELO accepted). STARTTLS (when configured and offered, followed by a
 * new EHLO: smtpc_tls.c); then AUTH (smtpc_auth.c), which enters READY. */
static void smtpc_hello_done(struct smtpc *s)
{
	if (smtpc_tls_after_hello(s))
		return;
	smtpc_auth_start(s);
}

static void smtpc_ehlo_enter(struct smtpc *s)
{
	smtpc_io_outf(s, "EHLO %s\r\n", s->helo);
	smtpc_io_kick(s);
}

static void smtpc_ehlo_reply(struct smtpc *s, const struct smtp_reply *r)
{
	struct smtp_ehlo e = {0};

	if (smtpc_2xx(r)) {
		smtp_ehlo_parse(r, &e);
		s->ext = e.ext;
		s->size_limit = e.size_limit;
		s->auth_mechs = e.auth;
		smtpc_hello_done(s);
	} else if (r->code >= 500) {
		smtpc_enter(s, SMTPC_S_HELO);
	} else {
		smtpc_quit_with(s, "EHLO rejected", r);
	}
}

static void smtpc_helo_enter(struct smtpc *s)
{
	smtpc_io_outf(s, "HELO %s\r\n", s->helo);
	smtpc_io_kick(s);
}

static void smtpc_helo_reply(struct smtpc *s, const struct smtp_reply *r)
{
	if (smtpc_2xx(r)) {
		s->ext = 0;
		smtpc_hello_done(s);
	} else {
		smtpc_quit_with(s, "HELO rejected", r);
	}
}

/* ---- idle ---- */

/* smtpc_text_ok: no control byte (< 0x20, 0x7f: CR, LF, NUL's neighbours, TAB, ESC...) in s.
 * Bytes >= 0x80 pass (UTF-8 addresses, RFC 6531). */
bool smtpc_text_ok(const char *a)
{
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static bool smtpc_addr_ok(const char *a)
{
	return a && smtpc_text_ok(a) && !strpbrk(a, "<>");
}

/* smtpc_txn_valid: addresses that cannot smuggle a command (no control byte, no '<' or '>'),
 * at least one recipient, a body pointer if there is a length. */
bool smtpc_txn_valid(const struct smtpc_txn *t)
{
	if (!smtpc_addr_ok(t->sender) || !t->rcpts || t->rcpt_count == 0 ||
	    (!t->body && t->body_len))
		return false;
	for (unsigned i = 0; i < t->rcpt_count; i++)
		if (!smtpc_addr_ok(t->rcpts[i]) || !t->rcpts[i][0])
			return false;
	return true;
}

static struct smtpc_txn *smtpc_pull(struct smtpc *s)
{
	struct smtpc_txn *t;

	s->in_next = true;
	t = s->ops->next(s, s->user);
	s->in_next = false;
	return t;
}

static void smtpc_ready_enter(struct smtpc *s)
{
	struct smtpc_txn *t;

	s->was_ready = true;
	for (;;) {
		if (s->quit_wanted || (s->max_txns && s->txns >= s->max_txns)) {
			smtpc_enter(s, SMTPC_S_QUIT);
			return;
		}
		t = smtpc_pull(s);
		if (!t)
			break;
		if (!s->closing && smtpc_txn_valid(t)) {
			smtpc_txn_begin(s, t);
			return;
		}
		/* aborted inside next(), or unusable: hand it back as not attempted */
		s->txn = t;
		smtpc_txn_finish(s, SMTPC_STAGE_MAIL, NULL,
				 s->closing ? "session closed" : "invalid transaction");
		if (s->closing)
			return;
	}
	if (s->quit_wanted && !s->closing)
		smtpc_enter(s, SMTPC_S_QUIT);
}

/* smtpc_txn_begin: start transaction t (valid, session READY, no transaction running). */
void smtpc_txn_begin(struct smtpc *s, struct smtpc_txn *t)
{
	s->txn = t;
	s->rcpt_sent = s->rcpt_replied = s->rcpt_ok = 0;
	s->mail_ok = false;
	s->pipelined = (s->ext & SMTP_EXT_PIPELINING) && !s->no_pipelining;
	smtpc_txn_prepare(s, t); /* sets nrcpt, the body to send, a local outcome */
	smtpc_enter(s, SMTPC_S_MAIL);
}

/* ---- transaction ---- */

static void smtpc_out_rcpt(struct smtpc *s)
{
	unsigned i = smtpc_rcpt_idx(s, s->rcpt_sent++);
	char dsn[SMTPC_DSN_RCPT_MAX];

	smtpc_dsn_rcpt(s, i, dsn, sizeof(dsn));
	smtpc_io_outf(s, "RCPT TO:<%s>%s\r\n", s->txn->rcpts[i], dsn);
}

/* smtpc_mail_send: write MAIL (SIZE= the bytes actually sent, BODY=8BITMIME, SMTPUTF8 as
 * decided by smtpc_txn_prepare, then RET=/ENVID= to a server offering DSN), and with
 * PIPELINING every RCPT and DATA too. */
void smtpc_mail_send(struct smtpc *s)
{
	const struct smtpc_txn *t = s->txn;
	bool eight = t->eightbit && (s->ext & SMTP_EXT_8BITMIME);
	char size[32] = "", dsn[SMTPC_DSN_MAIL_MAX];

	if (s->ext & SMTP_EXT_SIZE)
		snprintf(size, sizeof(size), " SIZE=%zu", s->xlen);
	smtpc_dsn_mail(s, dsn, sizeof(dsn));
	smtpc_io_outf(s, "MAIL FROM:<%s>%s%s%s%s\r\n", t->sender, size,
		      eight ? " BODY=8BITMIME" : "", s->utf8 ? " SMTPUTF8" : "", dsn);
	if (s->pipelined) {
		while (s->rcpt_sent < s->nrcpt)
			smtpc_out_rcpt(s);
		smtpc_io_out(s, "DATA\r\n", 6);
	}
	smtpc_io_kick(s);
}

static void smtpc_mail_enter(struct smtpc *s)
{
	if (s->local)
		smtpc_local_arm(s); /* reported (and MAIL sent, if still wanted) from the loop */
	else
		smtpc_mail_send(s);
}

static void smtpc_mail_reply(struct smtpc *s, const struct smtp_reply *r)
{
	if (smtpc_2xx(r)) {
		s->mail_ok = true;
		smtpc_enter(s, SMTPC_S_RCPT);
		return;
	}
	smtpc_txn_finish(s, SMTPC_STAGE_MAIL, r, NULL);
	if (!s->closing)
		smtpc_enter(s, s->pipelined ? SMTPC_S_RCPT : SMTPC_S_READY);
}

static void smtpc_rcpt_enter(struct smtpc *s)
{
	if (s->pipelined)
		return;
	smtpc_out_rcpt(s);
	smtpc_io_kick(s);
}

static void smtpc_rcpt_report(struct smtpc *s, unsigned idx, const struct smtp_reply *r)
{
	struct smtpc_reply rr;

	if (!s->txn || !s->mail_ok)
		return; /* draining after MAIL failed */
	if (smtpc_2xx(r))
		s->rcpt_ok++;
	if (s->ops->rcpt) {
		rr = smtpc_reply_of(r);
		s->ops->rcpt(s, s->txn, idx, &rr, s->user);
	}
}

static void smtpc_rcpt_reply(struct smtpc *s, const struct smtp_reply *r)
{
	smtpc_rcpt_report(s, smtpc_rcpt_idx(s, s->rcpt_replied++), r);
	if (s->closing)
		return;
	if (s->rcpt_replied < s->nrcpt) {
		if (!s->pipelined)
			smtpc_enter(s, SMTPC_S_RCPT);
		return;
	}
	if (s->rcpt_ok == 0)
		smtpc_txn_finish(s, SMTPC_STAGE_RCPT, r, NULL);
	if (s->closing)
		return;
	if (s->pipelined)
		smtpc_enter(s, SMTPC_S_DATA); /* its reply is already on the way */
	else
		smtpc_enter(s, s->rcpt_ok ? SMTPC_S_DATA : SMTPC_S_RSET);
}

static void smtpc_data_enter(struct smtpc *s)
{
	if (s->pipelined)
		return;
	smtpc_io_out(s, "DATA\r\n", 6);
	smtpc_io_kick(s);
}

static void smtpc_data_reply(struct smtpc *s, const struct smtp_reply *r)
{
	if (r->code == 354) {
		/* with no live transaction (everything rejected, DATA accepted anyway) BODY sends
		 * a lone dot, as RFC 2920 asks */
		smtpc_enter(s, SMTPC_S_BODY);
		return;
	}
	if (r->code < 400) {
		smtpc_close(s, "protocol error: unexpected reply to DATA", NULL);
		return;
	}
	smtpc_txn_finish(s, SMTPC_STAGE_DATA, r, NULL);
	if (!s->closing)
		smtpc_enter(s, s->mail_ok ? SMTPC_S_RSET : SMTPC_S_READY);
}

static void smtpc_body_enter(struct smtpc *s)
{
	if (s->txn)
		smtpc_io_body(s, s->xbody, s->xlen);
	else
		smtpc_io_body(s, "", 0);
	smtpc_io_kick(s);
}

static void smtpc_body_reply(struct smtpc *s, const struct smtp_reply *r)
{
	if (!s->dot_sent) {
		/* the server answered before our final dot: it is out of sync with us */
		smtpc_close(s, "protocol error: reply before end of data", smtpc_2xx(r) ? NULL : r);
		return;
	}
	smtpc_txn_finish(s, SMTPC_STAGE_DOT, r, NULL);
	if (!s->closing)
		smtpc_enter(s, SMTPC_S_READY);
}

static void smtpc_rset_enter(struct smtpc *s)
{
	smtpc_io_out(s, "RSET\r\n", 6);
	smtpc_io_kick(s);
}

static void smtpc_rset_reply(struct smtpc *s, const struct smtp_reply *r)
{
	if (smtpc_2xx(r))
		smtpc_enter(s, SMTPC_S_READY);
	else
		smtpc_quit_with(s, "RSET rejected", r);
}

static void smtpc_quit_enter(struct smtpc *s)
{
	smtpc_io_out(s, "QUIT\r\n", 6);
	smtpc_io_kick(s);
}

static void smtpc_quit_reply(struct smtpc *s, const struct smtp_reply *r)
{
	smtpc_close(s, s->quit_err, NULL);
}

/* ---- the table ---- */

struct smtpc_state_def {
	const char *name;
	void (*enter)(struct smtpc *s);
	void (*reply)(struct smtpc *s, const struct smtp_reply *r);
	size_t tmo;		/* offsetof(struct smtpc_timeouts, ...) for replies in this state */
	const char *tmo_err;	/* error when that timeout fires */
	enum smtpc_stage stage; /* stage reported for a transaction failing in this state */
};

#define TMO(f) offsetof(struct smtpc_timeouts, f)

static const struct smtpc_state_def smtpc_states[SMTPC_S__COUNT] = {
    [SMTPC_S_INIT] = {"INIT", NULL, NULL, TMO(connect_ms), "connect timeout", 0},
    [SMTPC_S_CONNECT] = {"CONNECT", NULL, NULL, TMO(connect_ms), "connect timeout", 0},
    [SMTPC_S_GREETING] = {"GREETING", NULL, smtpc_greeting_reply, TMO(greeting_ms),
			  "timeout waiting for greeting", 0},
    [SMTPC_S_EHLO] = {"EHLO", smtpc_ehlo_enter, smtpc_ehlo_reply, TMO(helo_ms),
		      "timeout waiting for EHLO reply", 0},
    [SMTPC_S_HELO] = {"HELO", smtpc_helo_enter, smtpc_helo_reply, TMO(helo_ms),
		      "timeout waiting for HELO reply", 0},
    [SMTPC_S_STARTTLS] = {"STARTTLS", smtpc_starttls_enter, smtpc_starttls_reply, TMO(helo_ms),
			  "timeout waiting for STARTTLS reply", 0},
    [SMTPC_S_AUTH] = {"AUTH", smtpc_auth_enter, smtpc_auth_reply, TMO(helo_ms),
		      "timeout waiting for AUTH reply", 0},
    [SMTPC_S_READY] = {"READY", smtpc_ready_enter, NULL, TMO(idle_ms), "idle timeout", 0},
    [SMTPC_S_MAIL] = {"MAIL", smtpc_mail_enter, smtpc_mail_reply, TMO(mail_ms),
		      "timeout waiting for MAIL reply", SMTPC_STAGE_MAIL},
    [SMTPC_S_RCPT] = {"RCPT", smtpc_rcpt_enter, smtpc_rcpt_reply, TMO(rcpt_ms),
		      "timeout waiting for RCPT reply", SMTPC_STAGE_RCPT},
    [SMTPC_S_DATA] = {"DATA", smtpc_data_enter, smtpc_data_reply, TMO(data_ms),
		      "timeout waiting for DATA reply", SMTPC_STAGE_DATA},
    [SMTPC_S_BODY] = {"BODY", smtpc_body_enter, smtpc_body_reply, TMO(data_done_ms),
		      "timeout waiting for reply to end of data", SMTPC_STAGE_DOT},
    [SMTPC_S_RSET] = {"RSET", smtpc_rset_enter, smtpc_rset_reply, TMO(rset_ms),
		      "timeout waiting for RSET reply", 0},
    [SMTPC_S_QUIT] = {"QUIT", smtpc_quit_enter, smtpc_quit_reply, TMO(quit_ms),
		      "timeout waiting for QUIT reply", 0},
    [SMTPC_S_CLOSING] = {"CLOSING", NULL, NULL, TMO(quit_ms), "closing", 0},
};

/* smtpc_state_name: printable name of st ("?" if out of range). */
const char *smtpc_state_name(enum smtpc_state st)
{
	return (unsigned)st < SMTPC_S__COUNT ? smtpc_states[st].name : "?";
}

/* smtpc_state_timeout: the timeout (ms) for waiting on a reply (or sending) in state st. */
uint32_t smtpc_state_timeout(const struct smtpc *s, enum smtpc_state st)
{
	uint32_t ms;

	memcpy(&ms, (const char *)&s->tmo + smtpc_states[st].tmo, sizeof(ms));
	return ms;
}

/* smtpc_state_timeout_err: the static error string for a timeout in state st. */
const char *smtpc_state_timeout_err(enum smtpc_state st)
{
	return smtpc_states[st].tmo_err;
}

/* smtpc_state_stage: the transaction stage a failure in state st is reported at. */
enum smtpc_stage smtpc_state_stage(enum smtpc_state st)
{
	return smtpc_states[st].stage;
}

/* smtpc_enter: the one place the state changes: trace, switch, run the state's send step. */
void smtpc_enter(struct smtpc *s, enum smtpc_state st)
{
	smtpc_trace(s, "%s -> %s", smtpc_states[s->state].name, smtpc_states[st].name);
	s->state = st;
	if (smtpc_states[st].enter)
		smtpc_states[st].enter(s);
}

static void smtpc_dispatch(struct smtpc *s, const struct smtp_reply *r)
{
	const struct smtpc_state_def *d = &smtpc_states[s->state];

	smtpc_trace(s, "<<< %d %.*s (in %s)", r->code, (int)r->text_len, r->text, d->name);
	if (s->local_busy) { /* nothing sent yet for this transaction */
		smtpc_close(s, "protocol error: unexpected reply", NULL);
		return;
	}
	if (r->code == 421 && s->state != SMTPC_S_QUIT) {
		smtpc_close(s, "service not available (421)", r);
		return;
	}
	if (r->code < 200 || (r->code < 400 && r->code >= 300 && s->state != SMTPC_S_DATA &&
			      s->state != SMTPC_S_AUTH)) { /* 354, 334 */
		smtpc_close(s, "protocol error: unexpected reply code", NULL);
		return;
	}
	if (!d->reply) {
		smtpc_close(s, "protocol error: unexpected reply", r);
		return;
	}
	d->reply(s, r);
}

/* smtpc_on_input: parse every complete reply in the receive buffer and feed each to the
 * current state's reply step; keep a partial reply for the next recv. */
void smtpc_on_input(struct smtpc *s)
{
	struct smtp_reply r;
	size_t off = 0;
	ssize_t n;

	while (!s->closing && off < s->rlen) {
		n = smtp_reply_parse(s->rbuf + off, s->rlen - off, &r);
		if (n == 0)
			break;
		if (n < 0) {
			smtpc_close(s, "protocol error: malformed reply", NULL);
			return;
		}
		off += (size_t)n;
		s->rest = s->rlen - off;
		smtpc_dispatch(s, &r);
	}
	if (s->closing)
		return;
	s->rlen -= off;
	if (s->rlen && off)
		memmove(s->rbuf, s->rbuf + off, s->rlen);
}
