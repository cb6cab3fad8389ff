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

/* Start the handshake on the session's transport; a TLS connection that cannot be made
 * closes the session. */
static void smtpd_tls_begin(struct smtpd_session *s)
{
	struct tls *t;

	if (tls_new(s->w->srv->cfg.tls_ctx, NULL, NULL, &t) < 0) {
		s->tls_pending = false;
		smtpd_close(s, 0, NULL);
		return;
	}
	BUG_ON(xport_start_tls(s->x, t, s->w->srv->cfg.cmd_timeout_ms) < 0);
	s->inflight++;
	s->tls_hs = true;
}

/* smtpd_tls_io: called before the session arms its own I/O. While a handshake is due it
 * decides: a recv still in flight is cancelled first (its bytes, sent before the handshake,
 * never count), then the 220 to STARTTLS leaves in plaintext (SMTPD_TLS_SEND_ONLY: no recv
 * may be armed, it would swallow the ClientHello), then the handshake starts (on an
 * implicit-TLS listener: at once, before the greeting). SMTPD_TLS_WAIT: do nothing now;
 * SMTPD_TLS_NONE: no TLS pending. */
enum smtpd_tls_io smtpd_tls_io(struct smtpd_session *s)
{
	if (!s->tls_pending || s->state >= SMTPD_S_CLOSING)
		return SMTPD_TLS_NONE;
	if (s->tls_hs)
		return SMTPD_TLS_WAIT;
	if (s->recv_armed) {
		xport_cancel_recv(s->x);
		return SMTPD_TLS_WAIT;
	}
	if (!s->tls_first && (s->send_armed || s->woff < s->wlen))
		return s->send_armed ? SMTPD_TLS_WAIT : SMTPD_TLS_SEND_ONLY;
	smtpd_tls_begin(s);
	return SMTPD_TLS_WAIT;
}

/* smtpd_tls_done: the transport's handshake result. Failure: the session is torn down (nothing
 * can be said in plaintext any more). Success: whatever arrived before the handshake is
 * dropped; an implicit-TLS session goes on to its greeting; after STARTTLS the session starts
 * over at HELO (RFC 3207: the client must EHLO again). */
void smtpd_tls_done(void *user, int res)
{
	struct smtpd_session *s = user;

	s->inflight--;
	s->tls_hs = false;
	s->tls_pending = false;
	if (s->state < SMTPD_S_CLOSING && res < 0) {
		if (s->w->srv->cfg.trace)
			fprintf(stderr, "smtpd[%llu]: TLS handshake failed: %s\n",
				(unsigned long long)s->id, xport_error(s->x));
		smtpd_close(s, 0, NULL);
	} else if (s->state < SMTPD_S_CLOSING) {
		s->tls_on = true;
		s->rpos = s->rlen = 0;
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

/* smtpd_session_tls: see smtpd.h. */
bool smtpd_session_tls(const struct smtpd_session *s, struct tls_info *i)
{
	if (s->tls_on && i)
		xport_tls_info(s->x, i);
	return s->tls_on;
}
