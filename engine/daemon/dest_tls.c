/* dest_tls — what a new outbound session is told (its timeouts, its TLS settings) and what
 * the destination does when opportunistic TLS fails with a host.
 *
 * Why a file of its own: the TLS policy of delivery reads best in one place: the configured
 * mode per session, the name the certificate must carry (the MX host or the relay's host,
 * never the address), resumption per address:port, and the classic servers' "TLS if possible":
 * a host whose handshake failed gets plaintext for DEST_TLS_BAD_MS and the failure is logged
 * once. tls = required never falls back: its failures are the host's (dest.c, dest_mx.c).
 */
#include "engine/daemon/dest_int.h"
#include "engine/daemon/rt.h"
#include "engine/daemon/snap.h"

#include <stdio.h>
#include <string.h>

#define DEST_TLS_BAD_MS 3600000u /* plaintext to a host whose TLS failed: 1 h */

/* dest_timeouts: the per-state timeouts of a session, from the configuration. */
void dest_timeouts(const struct config *cfg, struct smtpc_timeouts *to)
{
	smtpc_timeouts_default(to);
	to->connect_ms = (uint32_t)cfg->connect_timeout_ms;
	to->greeting_ms = (uint32_t)cfg->greeting_timeout_ms;
	to->helo_ms = (uint32_t)cfg->helo_timeout_ms;
	to->mail_ms = (uint32_t)cfg->mail_timeout_ms;
	to->rcpt_ms = (uint32_t)cfg->rcpt_timeout_ms;
	to->data_ms = (uint32_t)cfg->data_timeout_ms;
	to->data_block_ms = (uint32_t)cfg->data_block_timeout_ms;
	to->data_done_ms = (uint32_t)cfg->data_done_timeout_ms;
	to->idle_ms = (uint32_t)cfg->idle_timeout_ms;
}

/* The TLS settings of a session to o's target: the configured mode, except that opportunistic
 * TLS is skipped (plaintext) for a host whose handshake failed lately (tls_bad_until). The
 * name checked against the certificate (and sent as SNI) is the MX host name or the relay's
 * host; TLS sessions are resumed per address:port. */
void dest_tls(struct dest *d, struct osess *o, struct smtpc_config *sc)
{
	static const enum smtpc_tls mode[] = {
	    [CONFIG_TLS_NONE] = SMTPC_TLS_NONE,
	    [CONFIG_TLS_OPPORTUNISTIC] = SMTPC_TLS_TRY,
	    [CONFIG_TLS_REQUIRED] = SMTPC_TLS_REQUIRE,
	    [CONFIG_TLS_SMTPS] = SMTPC_TLS_IMPLICIT,
	};
	uint16_t port;

	sc->tls_ctx = snap_tls_ctx(o->snap, d->cfg, d->lim.tls);
	sc->tls = sc->tls_ctx ? mode[d->lim.tls] : SMTPC_TLS_NONE;
	if (sc->tls == SMTPC_TLS_TRY && o->tg.tls_bad_until > loop_now_ms(d->env.loop))
		sc->tls = SMTPC_TLS_NONE;
	if (util_hostport_parse(o->tg.host, o->tls_name, sizeof(o->tls_name), &port, 25) < 0)
		snprintf(o->tls_name, sizeof(o->tls_name), "%s", o->tg.host);
	sc->tls_host = o->tls_name;
	sc->tls_cache_key = o->tg.ip;
}

/* Opportunistic TLS failed with o's host (no handshake, or no usable one): log it and use
 * plaintext with that host for DEST_TLS_BAD_MS (the classic servers' "TLS if possible"). */
void dest_tls_fallback(struct dest *d, struct osess *o, uint64_t sess_id, const char *why)
{
	uint64_t until = loop_now_ms(d->env.loop) + DEST_TLS_BAD_MS;
	char sid[24];

	for (unsigned i = 0; o->gen == d->tgen && i < d->ntargets; i++)
		if (strcmp(d->targets[i].ip, o->tg.ip) == 0)
			d->targets[i].tls_bad_until = until;
	snprintf(sid, sizeof(sid), "session-%llx", (unsigned long long)sess_id);
	dlog_line(d->env.log, sid, "event=tls-fallback dest=%s mx=%s relay=%s reason=\"%s\"",
		  d->name, o->tg.host, o->tg.ip, why ? why : "TLS failed");
}
