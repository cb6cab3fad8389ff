/* smtpd_session — one server session's I/O and run loop: recv into a fixed buffer, process every
 * complete command (pipelining), queue replies in a fixed buffer and flush them with one send.
 *
 * Why this shape: the run loop is the only place that decides I/O. It processes input until it
 * must stop (input exhausted, a reply is owed by the owner or held by the reply delay, the reply
 * buffer is short of room, or the session is closing) and then flushes whatever is queued —
 * which is exactly RFC 2920's rule (flush when input is exhausted or a command needs
 * synchronisation). At most one recv and one send are in flight; each carries a linked timeout.
 * A session is torn down (state DEAD) by cancelling its ops and freed only when its in-flight
 * count is zero, it is not inside the run loop, and no async reply is owed.
 */
#include "engine/smtpd/smtpd_types.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

static const char *const smtpd_state_names[SMTPD_S__COUNT] = {
    [SMTPD_S_GREET] = "greet",	   [SMTPD_S_HELO] = "helo", [SMTPD_S_IDLE] = "idle",
    [SMTPD_S_MAIL] = "mail",	   [SMTPD_S_RCPT] = "rcpt", [SMTPD_S_DATA] = "data",
    [SMTPD_S_CLOSING] = "closing", [SMTPD_S_DEAD] = "dead",
};

static void smtpd_teardown(struct smtpd_session *s);

/* smtpd_set_state: the one place a session changes state (traced when cfg.trace is set). */
void smtpd_set_state(struct smtpd_session *s, enum smtpd_state st)
{
	if (s->w->srv->cfg.trace)
		fprintf(stderr, "smtpd[%llu]: %s -> %s\n", (unsigned long long)s->id,
			smtpd_state_names[s->state], smtpd_state_names[st]);
	s->state = st;
}

const char *smtpd_session_state_name(const struct smtpd_session *s)
{
	return smtpd_state_names[s->state];
}

/* ---- reply buffer ---- */

/* smtpd_emit_raw: append n preformatted bytes to the reply buffer (room is the caller's job:
 * the run loop guarantees SMTPD_REPLY_MAX before each command). */
void smtpd_emit_raw(struct smtpd_session *s, const char *p, size_t n)
{
	BUG_ON(n > SMTPD_WBUF - s->wlen);
	memcpy(s->wbuf + s->wlen, p, n);
	s->wlen += (uint32_t)n;
}

/* Length of the enhanced status code "c.sss.ddd " (RFC 3463) that starts text, 0 if none. */
static size_t smtpd_enh_len(const char *t)
{
	size_t i = 2, n;

	if ((t[0] != '2' && t[0] != '4' && t[0] != '5') || t[1] != '.')
		return 0;
	for (int part = 0; part < 2; part++) {
		for (n = 0; n < 3 && t[i] >= '0' && t[i] <= '9'; n++)
			i++;
		if (!n || t[i] != (part ? ' ' : '.'))
			return 0;
		i++;
	}
	return i;
}

/* smtpd_emit: append "<code> <text>\r\n" (text truncated to SMTPD_TEXT_MAX, CR/LF blanked;
 * its enhanced status code left out when ENHANCEDSTATUSCODES is hidden). */
void smtpd_emit(struct smtpd_session *s, int code, const char *text)
{
	size_t tl;
	char *p;

	if (s->w->srv->cfg.hide_ext & SMTP_EXT_ENHANCEDSTATUSCODES)
		text += smtpd_enh_len(text);
	tl = strnlen(text, SMTPD_TEXT_MAX);

	BUG_ON(code < 200 || code > 599);
	BUG_ON(tl + 6 > SMTPD_WBUF - s->wlen);
	p = s->wbuf + s->wlen;
	p[0] = (char)('0' + code / 100);
	p[1] = (char)('0' + code / 10 % 10);
	p[2] = (char)('0' + code % 10);
	p[3] = ' ';
	memcpy(p + 4, text, tl);
	for (size_t i = 0; i < tl; i++)
		if (p[4 + i] == '\r' || p[4 + i] == '\n')
			p[4 + i] = ' ';
	p[4 + tl] = '\r';
	p[5 + tl] = '\n';
	s->wlen += (uint32_t)(tl + 6);
}

static void smtpd_wbuf_compact(struct smtpd_session *s)
{
	if (s->send_armed || s->woff == 0)
		return;
	memmove(s->wbuf, s->wbuf + s->woff, s->wlen - s->woff);
	s->wlen -= s->woff;
	if (s->hold != SMTPD_NO_HOLD)
		s->hold -= s->woff;
	s->woff = 0;
}

/* ---- reply delay (reply_delay_ms) ---- */

static void smtpd_timer_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct smtpd_session *s = op->owner;

	s->timer_armed = false;
	s->inflight--;
	if (s->wait == SMTPD_W_DELAY)
		s->wait = SMTPD_W_NONE;
	s->hold = SMTPD_NO_HOLD;
	smtpd_session_run(s);
}

/* smtpd_after_reply: a reply was just emitted at offset mark; apply the reply delay. */
void smtpd_after_reply(struct smtpd_session *s, size_t mark)
{
	uint64_t ms = s->w->srv->cfg.reply_delay_ms;

	if (!ms || s->state >= SMTPD_S_CLOSING || s->hold != SMTPD_NO_HOLD)
		return;
	s->hold = (uint32_t)mark;
	s->wait = SMTPD_W_DELAY;
	s->timer_armed = true;
	s->inflight++;
	loop_timer(s->w->l, &s->timer_op, ms);
}

/* ---- socket ops ---- */

static void smtpd_recv_done(void *user, long res)
{
	struct smtpd_session *s = user;

	s->recv_armed = false;
	s->inflight--;
	if (s->state >= SMTPD_S_CLOSING) {
		/* no more input wanted: lingering ends at EOF, error or its deadline */
		if (s->lingering && res <= 0)
			smtpd_teardown(s);
	} else if (s->tls_pending && (res > 0 || res == -ECANCELED)) {
		/* cancelled for the handshake; bytes sent before it never count (dropped) */
	} else if (res == -ETIMEDOUT) {
		smtpd_close(s, 421, s->w->srv->timeout_text); /* per-read timeout or deadline */
	} else if (res <= 0) {
		smtpd_teardown(s);
	} else {
		s->rlen += (uint32_t)res;
	}
	smtpd_session_run(s);
}

static void smtpd_arm_recv(struct smtpd_session *s, uint64_t timeout_ms)
{
	if (s->rpos == s->rlen) {
		s->rpos = s->rlen = 0;
	} else if (s->rpos > 0) {
		memmove(s->rbuf, s->rbuf + s->rpos, s->rlen - s->rpos);
		s->rlen -= s->rpos;
		s->rpos = 0;
	}
	if (s->rlen == SMTPD_RBUF)
		return; /* full of unprocessed input: the run loop drains it first */
	BUG_ON(xport_recv(s->x, s->rbuf + s->rlen, SMTPD_RBUF - s->rlen, timeout_ms) < 0);
	s->recv_armed = true;
	s->inflight++;
}

/* Lingering close: after the last reply, shut down our side and read (discarding) until the
 * peer closes or SMTPD_LINGER_MS pass. Closing with unread pipelined input would send a RST,
 * which can destroy replies (e.g. 250 for committed messages) still unread by the client. */
static void smtpd_linger(struct smtpd_session *s)
{
	uint64_t now = loop_now_ms(s->w->l);

	if (!s->lingering) {
		s->lingering = true;
		s->linger_end = now + SMTPD_LINGER_MS;
		if (shutdown(s->fd, SHUT_WR) < 0)
			s->linger_end = now;
	}
	if (now >= s->linger_end) {
		smtpd_teardown(s);
		return;
	}
	s->rpos = s->rlen = 0;
	smtpd_arm_recv(s, s->linger_end - now);
}

static void smtpd_send_done(void *user, long res)
{
	struct smtpd_session *s = user;

	s->send_armed = false;
	s->inflight--;
	if (res <= 0) {
		smtpd_teardown(s); /* error or timeout */
	} else {
		s->woff += (uint32_t)res;
		BUG_ON(s->woff > s->wsent_end);
		smtpd_wbuf_compact(s);
	}
	smtpd_session_run(s);
}

static void smtpd_arm_send(struct smtpd_session *s, uint32_t end)
{
	struct iovec iov = {.iov_base = s->wbuf + s->woff, .iov_len = end - s->woff};

	BUG_ON(xport_send(s->x, &iov, 1, s->w->srv->cfg.send_timeout_ms) < 0);
	s->wsent_end = end;
	s->send_armed = true;
	s->inflight++;
}

/* Callbacks of the session's transport (engine/xport). */
const struct xport_ops smtpd_xops = {
    .recv_done = smtpd_recv_done, .send_done = smtpd_send_done, .tls_done = smtpd_tls_done};

/* ---- life cycle ---- */

static void smtpd_maybe_free(struct smtpd_session *s)
{
	struct smtpd_worker *w = s->w;

	if (s->state != SMTPD_S_DEAD || s->inflight || s->depth || s->wait == SMTPD_W_HOOK)
		return;
	xport_free(s->x);
	s->x = NULL;
	close(s->fd);
	s->fd = -1;
	if (s->connected_hook && w->srv->hooks.on_close)
		w->srv->hooks.on_close(s, w->user);
	smtpd_worker_session_gone(w, s);
}

static void smtpd_teardown(struct smtpd_session *s)
{
	struct loop *l = s->w->l;

	if (s->state == SMTPD_S_DEAD)
		return;
	smtpd_set_state(s, SMTPD_S_DEAD);
	xport_cancel(s->x); /* the running recv, send or TLS start report -ECANCELED */
	if (s->timer_armed)
		loop_cancel(l, &s->timer_op);
}

/* smtpd_close: queue a last reply (code 0: none) and close once it is sent. */
void smtpd_close(struct smtpd_session *s, int code, const char *text)
{
	if (s->state >= SMTPD_S_CLOSING)
		return;
	if (code && SMTPD_WBUF - s->wlen >= SMTPD_TEXT_MAX + 6)
		smtpd_emit(s, code, text);
	s->hold = SMTPD_NO_HOLD;
	smtpd_set_state(s, SMTPD_S_CLOSING);
	if (s->recv_armed)
		xport_cancel_recv(s->x);
}

/* The timeout of the next recv: the per-read timeout, cut to what is left of the deadline of
 * the current command line or body. A body's deadline starts when the server starts waiting for
 * it (right after the 354); a command line's starts with its first byte, so waiting idle
 * between commands is bounded by the per-read timeout only (RFC 5321 4.5.3.2.7: 5 minutes).
 * 0 when the deadline has passed. */
static uint64_t smtpd_recv_timeout(struct smtpd_session *s)
{
	const struct smtpd_config *cfg = &s->w->srv->cfg;
	bool data = s->state == SMTPD_S_DATA;
	uint64_t now = loop_now_ms(s->w->l), left;
	uint64_t per_read = data ? cfg->data_timeout_ms : cfg->cmd_timeout_ms;

	if (!data && !s->deadline && s->rpos == s->rlen && !s->skip_line)
		return per_read; /* idle: no part of a command line has arrived yet */
	if (!s->deadline)
		s->deadline = now + (data ? cfg->data_deadline_ms : cfg->cmd_deadline_ms);
	if (s->deadline <= now)
		return 0;
	left = s->deadline - now;
	return left < per_read ? left : per_read;
}

static void smtpd_io(struct smtpd_session *s)
{
	enum smtpd_tls_io tio = SMTPD_TLS_NONE;
	uint64_t timeout = 0;
	uint32_t end;

	if (s->state == SMTPD_S_DEAD || (tio = smtpd_tls_io(s)) == SMTPD_TLS_WAIT)
		return;
	if (s->state < SMTPD_S_CLOSING && s->wait == SMTPD_W_NONE && !s->recv_armed &&
	    tio == SMTPD_TLS_NONE && !(timeout = smtpd_recv_timeout(s)))
		smtpd_close(s, 421, s->w->srv->timeout_text); /* the deadline has passed */
	end = s->hold != SMTPD_NO_HOLD ? s->hold : s->wlen;
	if (!s->send_armed && end > s->woff)
		smtpd_arm_send(s, end);
	if (s->state == SMTPD_S_CLOSING) {
		if (!s->send_armed && !s->recv_armed && s->woff == s->wlen)
			smtpd_linger(s);
		return;
	}
	if (timeout)
		smtpd_arm_recv(s, timeout);
}

/* smtpd_session_run: process buffered input as far as allowed, then do the I/O it implies. */
void smtpd_session_run(struct smtpd_session *s)
{
	bool progress = true;

	s->depth++;
	while (progress && s->wait == SMTPD_W_NONE && !s->tls_pending &&
	       s->state < SMTPD_S_CLOSING) {
		if (SMTPD_WBUF - s->wlen < SMTPD_REPLY_MAX) {
			smtpd_wbuf_compact(s);
			if (SMTPD_WBUF - s->wlen < SMTPD_REPLY_MAX)
				break; /* resumes when the send completes */
		}
		if (s->quit_after && s->state <= SMTPD_S_IDLE && s->state != SMTPD_S_GREET) {
			smtpd_close(s, 421, "4.3.2 Service shutting down");
			break;
		}
		progress = s->state == SMTPD_S_DATA ? smtpd_data_step(s) : smtpd_cmd_step(s);
	}
	smtpd_io(s);
	s->depth--;
	smtpd_maybe_free(s);
}

static struct smtpd_session *smtpd_session_alloc(struct smtpd_worker *w)
{
	size_t extra = w->srv->cfg.session_data_size;
	struct smtpd_session *s = w->freelist;
	char *arena, *body;
	uint32_t *rcpt_off, *orcpt_off, arena_cap;
	const char **rcpt_ptr, **orcpt_ptr;
	uint8_t *rcpt_notify;
	unsigned rcpt_cap;
	size_t body_cap;

	if (!s)
		return util_xcalloc(1, sizeof(*s) + extra);
	w->freelist = s->next;
	w->nfree--;
	/* keep the growable buffers of a recycled session, zero the rest of the header */
	arena = s->arena, arena_cap = s->arena_cap, body = s->body, body_cap = s->body_cap;
	rcpt_off = s->rcpt_off, rcpt_ptr = s->rcpt_ptr, rcpt_cap = s->rcpt_cap;
	rcpt_notify = s->rcpt_notify, orcpt_off = s->orcpt_off, orcpt_ptr = s->orcpt_ptr;
	memset(s, 0, offsetof(struct smtpd_session, rbuf));
	s->arena = arena, s->arena_cap = arena_cap, s->body = body, s->body_cap = body_cap;
	s->rcpt_off = rcpt_off, s->rcpt_ptr = rcpt_ptr, s->rcpt_cap = rcpt_cap;
	s->rcpt_notify = rcpt_notify, s->orcpt_off = orcpt_off, s->orcpt_ptr = orcpt_ptr;
	memset(s->data, 0, extra);
	return s;
}

static void smtpd_session_init(struct smtpd_session *s, struct smtpd_worker *w, int fd)
{
	s->w = w;
	s->fd = fd;
	s->id = atomic_fetch_add(&w->srv->next_id, 1) + 1;
	s->hold = SMTPD_NO_HOLD;
	s->state = SMTPD_S_GREET;
	s->x = xport_new(w->l, fd, &smtpd_xops, s);
	s->timer_op = (struct loop_op){.cb = smtpd_timer_cb, .owner = s};
	s->next = w->head;
	if (w->head)
		w->head->prev = s;
	w->head = s;
	w->nsessions++;
}

/* Count s against the server's global max_sessions; false (not counted) when it is over. */
static bool smtpd_admit(struct smtpd_session *s)
{
	struct smtpd_server *srv = s->w->srv;
	unsigned max = srv->cfg.max_sessions;

	if (atomic_fetch_add(&srv->sessions, 1) >= max && max) {
		atomic_fetch_sub(&srv->sessions, 1);
		return false;
	}
	s->counted = true;
	return true;
}

/* smtpd_session_start: take over an accepted fd: set up a session, run on_connect and send the
 * greeting (or the rejection). */
void smtpd_session_start(struct smtpd_worker *w, int fd, const struct sockaddr_storage *peer,
			 socklen_t peer_len, bool tls_first)
{
	struct smtpd_server *srv = w->srv;
	struct smtpd_session *s = smtpd_session_alloc(w);
	char greet[600];
	int one = 1, ret = 0;
	size_t mark;

	smtpd_session_init(s, w, fd);
	s->tls_pending = s->tls_first = tls_first;
	memcpy(&s->peer, peer, peer_len);
	s->peer_len = peer_len;
	if (peer->ss_family == AF_INET || peer->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->depth++;
	if (w->shutting_down || !smtpd_admit(s)) {
		smtpd_close(s, 421,
			    w->shutting_down ? "4.3.2 Service shutting down"
					     : "4.7.0 Error: too many connections");
		goto out;
	}
	s->connected_hook = true;
	s->await = SMTPD_A_CONNECT;
	s->in_hook = true;
	mark = s->wlen;
	if (srv->hooks.on_connect)
		ret = srv->hooks.on_connect(s, w->user);
	snprintf(greet, sizeof(greet), "%s ESMTP %s", srv->hostname, srv->greeting);
	smtpd_hook_done(s, ret, 220, greet, mark);
out:
	s->depth--;
	smtpd_session_run(s);
}

/* smtpd_session_kick_idle: shutdown of the worker: close s now if it is between transactions,
 * otherwise mark it to close after the current one. */
void smtpd_session_kick_idle(struct smtpd_session *s)
{
	s->quit_after = true;
	if (s->state >= SMTPD_S_CLOSING || s->wait != SMTPD_W_NONE)
		return;
	if (s->state == SMTPD_S_HELO || s->state == SMTPD_S_IDLE)
		smtpd_close(s, 421, "4.3.2 Service shutting down");
	smtpd_session_run(s);
}

/* smtpd_session_force_close: end of the shutdown grace: close s unless it owes nothing but an
 * async reply (then it closes right after that reply). hard: tear down without a reply. */
void smtpd_session_force_close(struct smtpd_session *s, bool hard)
{
	if (s->wait == SMTPD_W_HOOK)
		return;
	s->depth++;
	if (hard)
		smtpd_teardown(s);
	else if (s->state < SMTPD_S_CLOSING)
		smtpd_close(s, 421, "4.3.2 Service shutting down");
	s->depth--;
	smtpd_session_run(s);
}

/* smtpd_session_drop: see smtpd.h. Replies already queued (for earlier, pipelined commands)
 * still go out through the normal closing path; the current step gets none. */
void smtpd_session_drop(struct smtpd_session *s)
{
	if (s->wait == SMTPD_W_HOOK) {
		s->wait = SMTPD_W_NONE;
		s->await = SMTPD_A_NONE;
	}
	s->dropped = true;
	s->depth++;
	if (s->state < SMTPD_S_CLOSING)
		smtpd_close(s, 0, NULL);
	else
		smtpd_teardown(s);
	s->depth--;
	smtpd_session_run(s); /* flush and close (only frees when no caller is inside) */
}

void smtpd_reply(struct smtpd_session *s, int code, const char *text)
{
	size_t mark = s->wlen;

	BUG_ON(s->await == SMTPD_A_NONE);
	if (s->in_hook) {
		BUG_ON(s->hook_code != 0);
		smtpd_emit_reply(s, code, text);
		s->hook_code = code;
		return;
	}
	BUG_ON(s->wait != SMTPD_W_HOOK);
	s->wait = SMTPD_W_NONE;
	s->depth++;
	if (s->state == SMTPD_S_DEAD) {
		s->await = SMTPD_A_NONE;
	} else {
		smtpd_emit_reply(s, code, text);
		smtpd_apply_reply(s, code);
		smtpd_after_reply(s, mark);
	}
	s->depth--;
	smtpd_session_run(s);
}

uint64_t smtpd_session_id(const struct smtpd_session *s)
{
	return s->id;
}

void *smtpd_session_data(struct smtpd_session *s)
{
	return s->data;
}

struct loop *smtpd_session_loop(const struct smtpd_session *s)
{
	return s->w->l;
}

const char *smtpd_session_helo(const struct smtpd_session *s)
{
	return s->helo;
}

bool smtpd_session_esmtp(const struct smtpd_session *s)
{
	return s->esmtp;
}

const struct sockaddr *smtpd_session_peer(const struct smtpd_session *s, socklen_t *len)
{
	if (len)
		*len = s->peer_len;
	return (const struct sockaddr *)&s->peer;
}

/* smtpd_session_body_cap: see smtpd.h. */
size_t smtpd_session_body_cap(const struct smtpd_session *s)
{
	return s->body ? s->body_cap : 0;
}
