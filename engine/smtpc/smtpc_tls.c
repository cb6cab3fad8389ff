/* smtpc_tls — TLS for the SMTP client: STARTTLS (RFC 3207) and TLS on connect (smtps).
 *
 * Why a file of its own: the decisions around TLS (offered or not, required or opportunistic,
 * what to do with bytes behind the 220, when the handshake may start, forgetting the EHLO
 * answer) are protocol policy that reads best in one place; smtpc_fsm.c only calls in after
 * the EHLO reply, and smtpc_io.c routes the transport's tls_done here. The bytes themselves
 * go through engine/xport, which runs tls/ over the session's socket.
 */
#include "engine/smtpc/smtpc_types.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether this session should try STARTTLS now (configured, not yet on, plaintext). */
static bool smtpc_tls_wanted(const struct smtpc *s)
{
	return (s->tls_mode == SMTPC_TLS_TRY || s->tls_mode == SMTPC_TLS_REQUIRE) && !s->tls_on;
}

/* TLS was required and cannot be had: close, marked tls_failed. */
static void smtpc_tls_fail(struct smtpc *s, const char *err, const struct smtp_reply *r)
{
	s->cinfo.tls_failed = true;
	smtpc_close(s, err, r);
}

/* smtpc_tls_after_hello: called when EHLO/HELO was accepted. Enters STARTTLS (or closes, for
 * tls = REQUIRE without STARTTLS) and returns true; false when the session goes on as is. */
bool smtpc_tls_after_hello(struct smtpc *s)
{
	if (!smtpc_tls_wanted(s))
		return false;
	if (s->ext & SMTP_EXT_STARTTLS) {
		smtpc_enter(s, SMTPC_S_STARTTLS);
		return true;
	}
	if (s->tls_mode == SMTPC_TLS_REQUIRE) {
		smtpc_tls_fail(s, "STARTTLS not offered (TLS required)", NULL);
		return true;
	}
	return false;
}

/* State STARTTLS: send the command. */
void smtpc_starttls_enter(struct smtpc *s)
{
	smtpc_io_outf(s, "STARTTLS\r\n");
	smtpc_io_kick(s);
}

/* Start the handshake on the transport (no send or recv of ours is running). */
static void smtpc_tls_begin(struct smtpc *s)
{
	struct tls *t;

	s->tls_start = false;
	if (tls_new(s->tls_ctx, s->tls_host, s->tls_key, &t) < 0) {
		smtpc_tls_fail(s, "TLS handshake failed: cannot create a TLS connection", NULL);
		return;
	}
	BUG_ON(xport_start_tls(s->x, t, smtpc_state_timeout(s, SMTPC_S_STARTTLS)) < 0);
	s->tls_hs = true;
	s->inflight++;
}

/* The reply to STARTTLS. 220: refuse anything that came behind it, then hand over to TLS once
 * the STARTTLS line's send has completed. Else: REQUIRE closes, TRY goes on in plaintext. */
void smtpc_starttls_reply(struct smtpc *s, const struct smtp_reply *r)
{
	if (r->code != 220) {
		if (s->tls_mode == SMTPC_TLS_REQUIRE)
			smtpc_tls_fail(s, "STARTTLS refused (TLS required)", r);
		else
			smtpc_enter(s, SMTPC_S_READY);
		return;
	}
	if (s->rest) {
		smtpc_tls_fail(s, "STARTTLS response injection: plaintext after the 220", NULL);
		return;
	}
	s->tls_start = true;
	if (!s->send_busy)
		smtpc_tls_begin(s);
}

/* smtpc_tls_send_idle: the session's send completed and none is pending: a handshake that
 * waited for it starts now. */
void smtpc_tls_send_idle(struct smtpc *s)
{
	if (s->tls_start && !s->closing)
		smtpc_tls_begin(s);
}

/* smtpc_tls_connected: the TCP connect completed. With implicit TLS the handshake runs first;
 * else the greeting is read. */
void smtpc_tls_connected(struct smtpc *s)
{
	if (s->tls_mode != SMTPC_TLS_IMPLICIT) {
		smtpc_enter(s, SMTPC_S_GREETING);
		smtpc_io_recv(s);
		return;
	}
	smtpc_tls_begin(s);
}

/* smtpc_tls_done: the transport's handshake result. Success: the EHLO answer is forgotten
 * and EHLO sent again (or, for implicit TLS, the greeting read). */
void smtpc_tls_done(void *user, int res)
{
	struct smtpc *s = user;
	const char *why;

	s->inflight--;
	s->tls_hs = false;
	if (s->closing) {
		smtpc_op_done(s);
		return;
	}
	if (res < 0) {
		why = res == -EPROTO	  ? xport_error(s->x)
		      : res == -ETIMEDOUT ? "timeout"
					  : strerrordesc_np(-res);
		if (why && strncmp(why, "handshake failed: ", 18) == 0)
			why += 18; /* tls/ says it already */
		snprintf(s->tls_err, sizeof(s->tls_err), "TLS handshake failed: %s",
			 why && why[0] ? why : "error");
		smtpc_tls_fail(s, s->tls_err, NULL);
		return;
	}
	s->tls_on = true;
	s->ext = 0;
	s->size_limit = 0;
	smtpc_trace(s, "TLS on");
	smtpc_enter(s, s->state == SMTPC_S_STARTTLS ? SMTPC_S_EHLO : SMTPC_S_GREETING);
	smtpc_io_recv(s);
}

/* smtpc_tls_info: see smtpc.h. */
bool smtpc_tls_info(const struct smtpc *s, struct tls_info *i)
{
	if (i)
		xport_tls_info(s->x, i);
	return s->tls_on;
}

/* smtpc_tls_free: release the TLS settings' copies. */
void smtpc_tls_free(struct smtpc *s)
{
	free(s->tls_host);
	free(s->tls_key);
}
