/* smtpd_tls — TLS for the SMTP server: STARTTLS (RFC 3207) and implicit-TLS listeners.
 *
 * Why a file of its own: when the handshake may start (after the 220 has left, or before the
 * greeting on an implicit-TLS listener), what happens to plaintext the client pipelined behind
 * STARTTLS (discarded: RFC 3207 section 4.2, the command-injection class of bugs), and what the
 * session forgets afterwards (the EHLO name and state: the client must EHLO again) is protocol
 * policy that reads best in one place. smtpd_session.c calls smtpd_tls_io before its own I/O
 * and routes the transport's tls_done here; the bytes go through engine/xport over tls/.
 */
#include "engine/smtpd/smtpd_types.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* smtpd_tls_offer: whether STARTTLS is offered to s now (a server certificate is configured
 * and the session is still in plaintext). */
bool smtpd_tls_offer(const struct smtpd_session *s)
{
	return s->w->srv->cfg.tls_ctx && !s->tls_on && !s->tls_pending;
}

/* Start the handshake on the session's transport (or, if no TLS connection can be made,
 * close without a reply). Bytes already received are the start of the client's handshake: the
 * session keeps a plaintext recv armed while the 220 leaves, and that recv returns the
 * ClientHello (what was pipelined behind the STARTTLS line itself was dropped when the
 * command was taken), so they go to TLS, never to the command parser. */
static void smtpd_tls_begin(struct smtpd_session *s)
{
	struct tls *t;

	if (tls_new(s->w->srv->cfg.tls_ctx, NULL, NULL, &t) < 0) {
		s->tls_pending = false;
		smtpd_close(s, 0, NULL);
		return;
	}
	if (s->rlen > s->rpos && tls_feed(t, s->rbuf + s->rpos, s->rlen - s->rpos) < 0) {
		tls_free(t);
		s->tls_pending = false;
		smtpd_close(s, 0, NULL);
		return;
	}
	s->rpos = s->rlen = 0;
	BUG_ON(xport_start_tls(s->x, t, s->w->srv->cfg.cmd_timeout_ms) < 0);
	s->inflight++;
	s->recv_armed = s->send_armed = true; /* the transport is busy in both directions */
}

/* smtpd_tls_io: called before the session arms its own I/O. While a handshake is due or
 * running it starts it at the right moment and returns true (the session does nothing else);
 * false when no TLS is pending. */
bool smtpd_tls_io(struct smtpd_session *s)
{
	if (!s->tls_pending || s->state >= SMTPD_S_CLOSING)
		return false;
	if (s->recv_armed || s->send_armed)
		return true; /* running, or the 220 / a recv is still in flight */
	if (!s->tls_first && s->woff < s->wlen)
		return false; /* STARTTLS: the 220 must leave first, in plaintext */
	smtpd_tls_begin(s);
	return true;
}

/* smtpd_tls_done: the transport's handshake result. Failure: the session is torn down (nothing
 * can be said in plaintext any more). Success: an implicit-TLS session goes on to its greeting;
 * after STARTTLS the session starts over at HELO (RFC 3207: the client must EHLO again). */
void smtpd_tls_done(void *user, int res)
{
	struct smtpd_session *s = user;

	s->inflight--;
	s->recv_armed = s->send_armed = false;
	s->tls_pending = false;
	if (s->state < SMTPD_S_CLOSING && res < 0) {
		if (s->w->srv->cfg.trace)
			fprintf(stderr, "smtpd[%llu]: TLS handshake failed: %s\n",
				(unsigned long long)s->id, xport_error(s->x));
		smtpd_close(s, 0, NULL);
	} else if (s->state < SMTPD_S_CLOSING) {
		s->tls_on = true;
		smtpd_session_set_secure(s);
		if (!s->tls_first) {
			s->helo[0] = '\0';
			s->esmtp = false;
			smtpd_set_state(s, SMTPD_S_HELO);
		}
	}
	smtpd_session_run(s);
}

/* smtpd_tls_starttls: the STARTTLS command (has_arg: something followed the verb). Only
 * outside a transaction, once, with no argument, when a certificate is configured. On 220 the
 * plaintext the client sent behind the command is discarded and the handshake starts once the
 * 220 has been sent. */
void smtpd_tls_starttls(struct smtpd_session *s, bool has_arg)
{
	if (!s->w->srv->cfg.tls_ctx) {
		smtpd_error(s, 502, "5.5.1 Error: command not implemented");
	} else if (has_arg) {
		smtpd_error(s, 501, "5.5.4 Syntax: STARTTLS");
	} else if (s->tls_on) {
		smtpd_error(s, 503, "5.5.1 Error: TLS already active");
	} else if (s->state != SMTPD_S_HELO && s->state != SMTPD_S_IDLE) {
		smtpd_error(s, 503, "5.5.1 Error: STARTTLS inside a transaction");
	} else {
		smtpd_say(s, 220, "2.0.0 Ready to start TLS");
		s->rpos = s->rlen; /* RFC 3207 4.2: nothing sent before the handshake counts */
		s->tls_pending = true;
	}
}
