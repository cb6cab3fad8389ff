/* smtpd_cmd — the SMTP command handlers and the DATA receiver of a server session.
 *
 * Why this shape: each command is one small handler that checks the state (503 on bad
 * sequence), the syntax (501) and the limits, then either replies itself or hands the decision
 * to the owner's hook. Hook replies are applied by one function (smtpd_apply_reply) whatever the
 * path they took (inside the hook, default, or async), so the transitions live in one place.
 * The envelope lives in a per-session arena (no allocation per command once it has grown); the
 * body is unstuffed straight from the receive buffer into a growable buffer the owner may take.
 * That buffer starts small and doubles as bytes arrive: an announced SIZE= is a promise, not a
 * reason to allocate, so idle clients announcing large messages cost nothing.
 */
#include "engine/smtpd/smtpd_types.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>

/* ---- replies ---- */

/* smtpd_say: emit one reply and apply the reply delay to it. */
void smtpd_say(struct smtpd_session *s, int code, const char *text)
{
	size_t mark = s->wlen;

	smtpd_emit(s, code, text);
	smtpd_after_reply(s, mark);
}

/* smtpd_error: smtpd_say, counted as a protocol error (max_errors: 421 4.7.0 and close). */
void smtpd_error(struct smtpd_session *s, int code, const char *text)
{
	unsigned max = s->w->srv->cfg.max_errors;

	smtpd_say(s, code, text);
	if (++s->errors >= max)
		smtpd_close(s, 421, "4.7.0 Error: too many errors");
}

/* ---- envelope arena ---- */

static uint32_t smtpd_arena_add(struct smtpd_session *s, const char *p, size_t n)
{
	uint32_t off = s->arena_len;

	if (s->arena_cap - s->arena_len < n + 1) {
		size_t cap = s->arena_cap ? s->arena_cap : 512;
		while (cap - s->arena_len < n + 1)
			cap *= 2;
		s->arena = util_xrealloc(s->arena, cap);
		s->arena_cap = (uint32_t)cap;
	}
	memcpy(s->arena + off, p, n);
	s->arena[off + n] = '\0';
	s->arena_len = off + (uint32_t)n + 1;
	return off;
}

static void smtpd_rcpt_push(struct smtpd_session *s, uint32_t off)
{
	if (s->nrcpts == s->rcpt_cap) {
		s->rcpt_cap = s->rcpt_cap ? s->rcpt_cap * 2 : 16;
		s->rcpt_off = util_xrealloc(s->rcpt_off, s->rcpt_cap * sizeof(*s->rcpt_off));
		s->rcpt_ptr = util_xrealloc(s->rcpt_ptr, s->rcpt_cap * sizeof(*s->rcpt_ptr));
		smtpd_dsn_rcpt_grow(s, s->rcpt_cap);
	}
	smtpd_dsn_rcpt_push(s, s->nrcpts);
	s->rcpt_off[s->nrcpts++] = off;
}

/* smtpd_session_bufs_free: free the session's growable buffers (envelope, body). */
void smtpd_session_bufs_free(struct smtpd_session *s)
{
	free(s->arena);
	free(s->rcpt_off);
	free(s->rcpt_ptr);
	free(s->rcpt_notify);
	free(s->orcpt_off);
	free(s->orcpt_ptr);
	free(s->body);
}

/* smtpd_reset_tx: forget the current transaction; back to IDLE if a HELO was seen. */
void smtpd_reset_tx(struct smtpd_session *s)
{
	s->arena_len = 0;
	s->nrcpts = 0;
	s->body_len = 0;
	s->body_total = 0;
	s->body_over = false;
	s->body_8bit = false;
	s->smtputf8 = false;
	s->ret = SMTP_RET_NONE;
	s->envid[0] = '\0';
	if (s->body && s->body_cap > SMTPD_BODY_KEEP) {
		free(s->body);
		s->body = NULL;
		s->body_cap = 0;
	}
	if (s->state >= SMTPD_S_IDLE && s->state < SMTPD_S_CLOSING)
		smtpd_set_state(s, SMTPD_S_IDLE);
}

/* ---- hooks ---- */

/* The standard HELO/EHLO reply: "250 host", or "250-host" and the EHLO lines: STARTTLS and
 * AUTH (both decided per session) first, then the server's fixed keywords. */
static void smtpd_helo_reply(struct smtpd_session *s)
{
	const struct smtpd_server *srv = s->w->srv;
	const char *line[2];
	unsigned n = 0;
	bool more = s->esmtp_new && srv->ehlo_extra_len;

	if (s->esmtp_new && smtpd_tls_offer(s))
		line[n++] = "STARTTLS";
	if (s->esmtp_new && smtpd_auth_offered(s))
		line[n++] = "AUTH PLAIN LOGIN";
	smtpd_emit_raw(s, n || more ? "250-" : "250 ", 4);
	smtpd_emit_raw(s, srv->hostname, strlen(srv->hostname));
	smtpd_emit_raw(s, "\r\n", 2);
	for (unsigned i = 0; i < n; i++) {
		smtpd_emit_raw(s, i + 1 < n || more ? "250-" : "250 ", 4);
		smtpd_emit_raw(s, line[i], strlen(line[i]));
		smtpd_emit_raw(s, "\r\n", 2);
	}
	if (more)
		smtpd_emit_raw(s, srv->ehlo_extra, srv->ehlo_extra_len);
}

/* smtpd_emit_reply: emit the reply to the awaited step; a 2xx to HELO/EHLO is always the
 * standard reply (the text given is not used). */
void smtpd_emit_reply(struct smtpd_session *s, int code, const char *text)
{
	if (s->await == SMTPD_A_HELO && code >= 200 && code < 300)
		smtpd_helo_reply(s);
	else
		smtpd_emit(s, code, text);
}

/* HELO/EHLO accepted: the new greeting replaces the old one and any transaction ends. */
static void smtpd_helo_commit(struct smtpd_session *s)
{
	memcpy(s->helo, s->helo_new, sizeof(s->helo));
	s->esmtp = s->esmtp_new;
	if (s->state > SMTPD_S_IDLE)
		smtpd_reset_tx(s);
	smtpd_set_state(s, SMTPD_S_IDLE);
}

/* 354 given: receive the body (its deadline starts with the first wait for bytes). */
static void smtpd_data_enter(struct smtpd_session *s)
{
	smtp_data_rx_init(&s->rx);
	s->deadline = 0;
	smtpd_set_state(s, SMTPD_S_DATA);
}

static void smtpd_apply_envelope(struct smtpd_session *s, bool ok)
{
	if (s->await == SMTPD_A_MAIL && ok) {
		smtpd_set_state(s, SMTPD_S_MAIL);
	} else if (s->await == SMTPD_A_MAIL) {
		s->arena_len = 0;
	} else if (ok) {
		smtpd_rcpt_push(s, s->arena_mark);
		smtpd_set_state(s, SMTPD_S_RCPT);
	} else {
		s->arena_len = s->arena_mark;
	}
}

/* smtpd_apply_reply: the transition a reply to the awaited step implies. */
void smtpd_apply_reply(struct smtpd_session *s, int code)
{
	bool ok = code >= 200 && code < 300;

	switch (s->await) {
	case SMTPD_A_CONNECT:
		if (ok)
			smtpd_set_state(s, SMTPD_S_HELO);
		else
			smtpd_close(s, 0, NULL);
		break;
	case SMTPD_A_HELO:
		if (ok)
			smtpd_helo_commit(s);
		break;
	case SMTPD_A_MAIL:
	case SMTPD_A_RCPT:
		smtpd_apply_envelope(s, ok);
		break;
	case SMTPD_A_DATA_BEGIN:
		if (code == 354)
			smtpd_data_enter(s);
		else
			smtpd_reset_tx(s);
		break;
	case SMTPD_A_DATA:
		if (ok)
			s->rsets = 0; /* max_rset counts RSETs since the last accepted message */
		smtpd_reset_tx(s);
		break;
	case SMTPD_A_AUTH:
		smtpd_auth_apply(s, code);
		break;
	case SMTPD_A_NONE:
		BUG_ON(1);
	}
	s->await = SMTPD_A_NONE;
	if (code == 421)
		smtpd_close(s, 0, NULL);
}

/* smtpd_hook_done: a hook returned ret; give its reply (or the default, or wait for it). */
void smtpd_hook_done(struct smtpd_session *s, int ret, int def_code, const char *def_text,
		     size_t mark)
{
	int code = s->hook_code;

	s->in_hook = false;
	s->hook_code = 0;
	if (s->dropped || s->state == SMTPD_S_DEAD) {
		s->await = SMTPD_A_NONE; /* dropped from inside the hook */
		return;
	}
	if (!code && ret == SMTPD_ASYNC) {
		s->wait = SMTPD_W_HOOK;
		return;
	}
	if (!code) {
		code = ret < 0 ? 451 : def_code;
		smtpd_emit_reply(s, code, ret < 0 ? "4.3.0 Error: local error" : def_text);
	}
	smtpd_apply_reply(s, code);
	smtpd_after_reply(s, mark);
}

static void *smtpd_user(struct smtpd_session *s)
{
	return s->w->user;
}

/* ---- commands ---- */

/* HELO/EHLO: the name waits in helo_new for on_helo's verdict (smtpd_helo_commit on 2xx). */
static void smtpd_do_helo(struct smtpd_session *s, const struct smtp_cmd *c)
{
	const struct smtpd_hooks *h = &s->w->srv->hooks;
	size_t n = c->arg_len < SMTPD_HELO_MAX - 1 ? c->arg_len : SMTPD_HELO_MAX - 1;
	size_t mark = s->wlen;
	int ret = 0;

	memcpy(s->helo_new, c->arg, n);
	s->helo_new[n] = '\0';
	s->esmtp_new = c->verb == SMTP_VERB_EHLO;
	s->await = SMTPD_A_HELO;
	s->in_hook = true;
	if (h->on_helo)
		ret = h->on_helo(s, s->helo_new, smtpd_user(s));
	smtpd_hook_done(s, ret, 250, "", mark);
}

/* SIZE=<digits>: 0, or the error reply code. A number of 20 significant digits or more does
 * not fit the parser (nor any limit we take): 552 like any other size over the limit. */
static int smtpd_param_size(struct smtpd_session *s, const struct smtp_param *prm, const char **why)
{
	const char *v = prm->value;
	size_t n = prm->value_len;

	if (n == 0 || strspn(v, "0123456789") < n)
		return *why = "5.5.4 Invalid parameter value", 501;
	for (; n > 1 && *v == '0'; n--)
		v++;
	if (n >= 20 || strtoull(v, NULL, 10) > s->w->srv->cfg.max_size)
		return *why = "5.3.4 Message size exceeds fixed limit", 552;
	return 0;
}

/* BODY=7BIT|8BITMIME: 0, or the error reply code. */
static int smtpd_param_body(struct smtpd_session *s, const struct smtp_param *prm, const char **why)
{
	if (prm->value_len == 4 && strncasecmp(prm->value, "7BIT", 4) == 0)
		s->body_8bit = false;
	else if (prm->value_len == 8 && strncasecmp(prm->value, "8BITMIME", 8) == 0)
		s->body_8bit = true;
	else
		return *why = "5.5.4 Invalid parameter value", 501;
	return 0;
}

/* MAIL parameters: SIZE=<digits>, BODY=7BIT|8BITMIME, SMTPUTF8, and RET=, ENVID= (DSN, see
 * smtpd_dsn.c); the parameter of a hidden extension is unsupported. Returns 0 or the error
 * reply code (*why its text). */
static int smtpd_mail_params(struct smtpd_session *s, const char *p, size_t len, const char **why)
{
	uint32_t hide = s->w->srv->cfg.hide_ext;
	struct smtp_param prm;
	unsigned seen = 0;
	int r, dsn, code = 0;

	while (!code && (r = smtp_param_next(&p, &len, &prm)) == 1) {
		if ((dsn = smtpd_dsn_mail_param(s, &prm, &seen, why)) >= 0)
			code = dsn;
		else if (smtp_param_is(&prm, "SIZE") && !(hide & SMTP_EXT_SIZE))
			code = smtpd_param_size(s, &prm, why);
		else if (smtp_param_is(&prm, "BODY") && !(hide & SMTP_EXT_8BITMIME))
			code = smtpd_param_body(s, &prm, why);
		else if (smtp_param_is(&prm, "SMTPUTF8") && !(hide & SMTP_EXT_SMTPUTF8) &&
			 prm.value_len)
			code = (*why = "5.5.4 Invalid parameter value", 501);
		else if (smtp_param_is(&prm, "SMTPUTF8") && !(hide & SMTP_EXT_SMTPUTF8))
			s->smtputf8 = true;
		else
			code = (*why = "5.5.4 Unsupported parameter", 555);
	}
	if (!code && r < 0)
		return *why = "5.5.4 Syntax error in parameters", 501;
	return code;
}

#define NEED_UTF8 "5.6.7 Error: non-ASCII address requires SMTPUTF8"

static void smtpd_do_mail(struct smtpd_session *s, const struct smtp_cmd *c)
{
	const struct smtpd_hooks *h = &s->w->srv->hooks;
	const char *why = NULL;
	size_t mark = s->wlen;
	int code, ret = 0;

	if (s->state < SMTPD_S_IDLE)
		return smtpd_error(s, 503, "5.5.1 Error: send HELO/EHLO first");
	if (s->state > SMTPD_S_IDLE)
		return smtpd_error(s, 503, "5.5.1 Error: nested MAIL command");
	s->body_8bit = false;
	s->smtputf8 = false;
	s->ret = SMTP_RET_NONE;
	s->envid[0] = '\0';
	code = smtpd_mail_params(s, c->params, c->params_len, &why);
	if (code)
		return smtpd_error(s, code, why);
	if (!s->smtputf8 && !smtp_is_ascii(c->addr, c->addr_len))
		return smtpd_error(s, 553, NEED_UTF8);
	if (smtpd_policy_sender(s, c->addr, c->addr_len))
		return; /* 553 5.7.1 given */
	s->arena_len = 0;
	smtpd_arena_add(s, c->addr, c->addr_len);
	s->arena_mark = s->arena_len;
	s->await = SMTPD_A_MAIL;
	s->in_hook = true;
	if (h->on_mail)
		ret = h->on_mail(s, s->arena, c->params_len ? c->params : "", smtpd_user(s));
	smtpd_hook_done(s, ret, 250, "2.1.0 Ok", mark);
}

/* RCPT: the address, then its decoded ORCPT (if any) go to the arena; both are dropped again
 * if the recipient is refused. */
static void smtpd_do_rcpt(struct smtpd_session *s, const struct smtp_cmd *c)
{
	const struct smtpd_hooks *h = &s->w->srv->hooks;
	char orcpt[SMTP_ORCPT_BUF];
	const char *why = NULL;
	size_t mark = s->wlen;
	uint32_t off;
	int code, ret = 0;

	if (s->state < SMTPD_S_MAIL)
		return smtpd_error(s, 503, "5.5.1 Error: need MAIL command");
	code = smtpd_rcpt_params(s, c->params, c->params_len, orcpt, &why);
	if (code)
		return smtpd_error(s, code, why);
	if (!s->smtputf8 && !smtp_is_ascii(c->addr, c->addr_len))
		return smtpd_error(s, 553, NEED_UTF8);
	if (smtpd_policy_rcpt(s, c->addr, c->addr_len))
		return; /* 530 5.7.0 given */
	if (s->nrcpts >= s->w->srv->cfg.max_rcpts)
		return smtpd_say(s, 452, "4.5.3 Error: too many recipients");
	s->arena_mark = s->arena_len;
	off = smtpd_arena_add(s, c->addr, c->addr_len);
	s->orcpt_new = orcpt[0] ? smtpd_arena_add(s, orcpt, strlen(orcpt)) : SMTPD_NO_ORCPT;
	s->await = SMTPD_A_RCPT;
	s->in_hook = true;
	if (h->on_rcpt)
		ret = h->on_rcpt(s, s->arena + off, smtpd_user(s));
	smtpd_hook_done(s, ret, 250, "2.1.5 Ok", mark);
}

/* DATA: the body buffer is not allocated here (it grows as bytes arrive); on_data_begin may
 * seed it with smtpd_body_prepend before the 354. */
static void smtpd_do_data(struct smtpd_session *s, const struct smtp_cmd *c)
{
	const struct smtpd_hooks *h = &s->w->srv->hooks;
	size_t mark = s->wlen;
	int ret = 0;

	if (s->state < SMTPD_S_MAIL)
		return smtpd_error(s, 503, "5.5.1 Error: need MAIL command");
	if (s->state == SMTPD_S_MAIL)
		return smtpd_error(s, 503, "5.5.1 Error: need RCPT command");
	if (c->arg_len)
		return smtpd_error(s, 501, "5.5.4 Syntax error: DATA takes no argument");
	s->body_len = 0;
	s->body_total = 0;
	s->body_over = false;
	s->await = SMTPD_A_DATA_BEGIN;
	s->in_hook = true;
	if (h->on_data_begin)
		ret = h->on_data_begin(s, smtpd_user(s));
	smtpd_hook_done(s, ret, 354, "End data with <CR><LF>.<CR><LF>", mark);
}

static void smtpd_dispatch(struct smtpd_session *s, const struct smtp_cmd *c)
{
	switch (c->verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		return smtpd_do_helo(s, c);
	case SMTP_VERB_MAIL:
		return smtpd_do_mail(s, c);
	case SMTP_VERB_RCPT:
		return smtpd_do_rcpt(s, c);
	case SMTP_VERB_DATA:
		return smtpd_do_data(s, c);
	case SMTP_VERB_RSET:
		return smtpd_do_rset(s);
	case SMTP_VERB_NOOP:
		return smtpd_say(s, 250, "2.0.0 Ok");
	case SMTP_VERB_VRFY:
		return smtpd_do_vrfy(s, c);
	case SMTP_VERB_QUIT:
		smtpd_emit(s, 221, "2.0.0 Bye");
		return smtpd_close(s, 0, NULL);
	case SMTP_VERB_STARTTLS:
		return smtpd_tls_starttls(s, c->arg_len != 0);
	case SMTP_VERB_AUTH:
		return smtpd_do_auth(s, c);
	case SMTP_VERB_EXPN:
		return smtpd_do_expn(s);
	case SMTP_VERB_HELP:
	case SMTP_VERB_ETRN:
	case SMTP_VERB_TURN:
		return smtpd_error(s, 502, "5.5.1 Error: command not implemented");
	case SMTP_VERB_UNKNOWN:
		break;
	}
	smtpd_error(s, 500, "5.5.1 Error: command not recognized");
}

/* An over-long line: reported once, skipped to its end (more: still inside it). An AUTH
 * exchange it was part of ends. */
static void smtpd_line_too_long(struct smtpd_session *s, bool more)
{
	if (!s->skip_line)
		smtpd_error(s, 500, "5.5.2 Error: line too long");
	s->skip_line = more;
	s->auth_step = SMTPD_AUTH_NONE;
}

/* smtpd_cmd_step: handle one complete command line from the receive buffer. Returns false
 * when no complete line is buffered (more input needed). */
bool smtpd_cmd_step(struct smtpd_session *s)
{
	size_t avail = s->rlen - s->rpos, term, max = s->w->srv->cfg.max_line;
	char *line = s->rbuf + s->rpos;
	ssize_t n = smtp_line_end(line, avail, &term);
	struct smtp_cmd c;
	int r;

	if (n < 0) {
		if (avail <= max + 1)
			return false; /* (the buffer is compacted before the next recv) */
		s->rpos = s->rlen;    /* over-long line: report once, skip to its end */
		smtpd_line_too_long(s, true);
		return true;
	}
	s->rpos += (uint32_t)(n + (ssize_t)term);
	s->deadline = 0; /* a whole line arrived: the next one gets its own deadline */
	if (s->skip_line || (size_t)n > max) {
		smtpd_line_too_long(s, false);
		return true;
	}
	line[n] = '\0'; /* overwrites the CR or LF: params become a C string */
	if (s->auth_step) {
		smtpd_auth_line(s, line, (size_t)n);
		explicit_bzero(line, (size_t)n); /* an AUTH response: a secret */
		return true;
	}
	r = smtp_cmd_parse(line, (size_t)n, &c);
	if (r == -EBADMSG)
		smtpd_error(s, 501, "5.1.3 Error: bad address syntax");
	else if (r < 0 && (c.verb == SMTP_VERB_HELO || c.verb == SMTP_VERB_EHLO))
		smtpd_error(s, 501, "5.5.4 Error: invalid HELO/EHLO host name");
	else if (r < 0)
		smtpd_error(s, 501, "5.5.4 Error: syntax error in parameters");
	else
		smtpd_dispatch(s, &c);
	if (c.verb == SMTP_VERB_AUTH)
		explicit_bzero(line, (size_t)n); /* its initial response is a secret */
	return true;
}

/* ---- DATA ---- */

static void smtpd_data_end(struct smtpd_session *s)
{
	const struct smtpd_hooks *h = &s->w->srv->hooks;
	struct smtpd_envelope env;
	size_t mark = s->wlen;
	int ret = 0;

	s->deadline = 0; /* the body is in: the next command line gets its own deadline */
	if (s->body_over) {
		smtpd_reset_tx(s);
		return smtpd_say(s, 552, "5.3.4 Error: message size exceeds fixed limit");
	}
	s->body[s->body_len] = '\0';
	for (unsigned i = 0; i < s->nrcpts; i++)
		s->rcpt_ptr[i] = s->arena + s->rcpt_off[i];
	env = (struct smtpd_envelope){
	    .sender = s->arena,
	    .rcpts = s->rcpt_ptr,
	    .nrcpts = s->nrcpts,
	    .body = s->body,
	    .body_len = s->body_len,
	    .body_8bit = s->body_8bit,
	    .smtputf8 = s->smtputf8,
	};
	smtpd_dsn_envelope(s, &env);
	smtpd_set_state(s, SMTPD_S_RCPT); /* out of DATA: input after the dot is commands */
	s->await = SMTPD_A_DATA;
	s->in_hook = true;
	if (h->on_data)
		ret = h->on_data(s, &env, smtpd_user(s));
	smtpd_hook_done(s, ret, 250, "2.0.0 Ok", mark);
}

/* Make sure the body buffer has room for `need` more bytes and its NUL (doubling from
 * SMTPD_BODY_INIT). */
static void smtpd_body_reserve(struct smtpd_session *s, size_t need)
{
	size_t cap = s->body ? s->body_cap : SMTPD_BODY_INIT;

	while (cap - 1 - s->body_len < need)
		cap *= 2;
	if (!s->body || cap != s->body_cap) {
		s->body = util_xrealloc(s->body, cap);
		s->body_cap = cap;
	}
}

/* Make room for a slice of input; returns the room for output (>= 2 unless impossible). */
static size_t smtpd_body_room(struct smtpd_session *s, size_t in_len)
{
	size_t room;

	if (!s->body)
		smtpd_body_reserve(s, 1);
	room = s->body_cap - 1 - s->body_len;
	if (s->body_over) {
		s->body_len = 0; /* over the limit: the buffer is scratch */
		return s->body_cap - 1;
	}
	if (room < 2 * in_len && room < s->body_cap / 2) {
		s->body_cap *= 2;
		s->body = util_xrealloc(s->body, s->body_cap);
		room = s->body_cap - 1 - s->body_len;
	}
	return room;
}

/* smtpd_data_step: feed the buffered input to the DATA receiver. Returns false when the buffer
 * is exhausted without the terminator. */
bool smtpd_data_step(struct smtpd_session *s)
{
	const struct smtpd_hooks *h = &s->w->srv->hooks;
	size_t in_len = s->rlen - s->rpos, room, slice, used, out_len;
	bool done = false;

	if (in_len == 0)
		return false;
	while (in_len && !done) {
		room = smtpd_body_room(s, in_len);
		slice = in_len < room / 2 ? in_len : room / 2;
		BUG_ON(slice == 0);
		used = smtp_data_rx_feed(&s->rx, s->rbuf + s->rpos, slice, s->body + s->body_len,
					 room, &out_len, &done);
		s->rpos += (uint32_t)used;
		in_len -= used;
		s->body_len += out_len;
		s->body_total += out_len;
		if (s->body_total > s->w->srv->cfg.max_size)
			s->body_over = true; /* (prepended bytes do not count) */
	}
	if (h->on_data_progress && h->on_data_progress(s, s->body_total, smtpd_user(s))) {
		smtpd_session_drop(s);
		return false;
	}
	if (done)
		smtpd_data_end(s);
	return true;
}

char *smtpd_take_body(struct smtpd_session *s, size_t *len)
{
	char *b = s->body;

	if (!b || s->await != SMTPD_A_DATA)
		return NULL;
	*len = s->body_len;
	s->body = NULL;
	s->body_cap = 0;
	s->body_len = 0;
	return b;
}

/* smtpd_body_prepend: see smtpd.h (copies p; BUG outside on_data_begin's reply window). */
void smtpd_body_prepend(struct smtpd_session *s, const char *p, size_t n)
{
	BUG_ON(s->await != SMTPD_A_DATA_BEGIN);
	smtpd_body_reserve(s, n);
	memcpy(s->body + s->body_len, p, n);
	s->body_len += n;
}
