/* event — the delivery event record's text form (see event.h). */
#include "engine/daemon/event.h"

#include <stdio.h>
#include <string.h>

const char *event_status_name(uint8_t state)
{
	return state == QUEUE_RCPT_DELIVERED ? "delivered"
	       : state == QUEUE_RCPT_FAILED  ? "failed"
					     : "deferred";
}

/* The TLS fields of a remote outcome ("" for a local one). */
static void event_tls(const struct event *e, char *buf, size_t len)
{
	buf[0] = '\0';
	if (e->remote && !e->tls)
		snprintf(buf, len, " tls=no");
	else if (e->remote)
		snprintf(buf, len, " tls=%s cipher=%s verified=%s", e->tls->version,
			 e->tls->cipher[0] ? e->tls->cipher : "-", e->tls->verified ? "yes" : "no");
}

void event_log(struct dlog_buf *b, const struct event *e)
{
	char q[400], rq[200] = "", dsn[16] = "-", tls[128];

	if (e->enh[0])
		snprintf(dsn, sizeof(dsn), "%d.%d.%d", e->enh[0], e->enh[1], e->enh[2]);
	if (e->reason) {
		char tmp[160];
		snprintf(rq, sizeof(rq), " reason=\"%s\"",
			 dlog_quote(e->reason, strlen(e->reason), tmp, sizeof(tmp)));
	}
	event_tls(e, tls, sizeof(tls));
	dlog_line(b, e->id,
		  "status=%s to=<%s> dest=%s mx=%s relay=%s%s%s%s code=%d dsn=%s attempts=%u "
		  "delay=%.3f%s%s reply=\"%s\"",
		  event_status_name(e->state), e->rcpt, e->dest, e->mx ? e->mx : "-",
		  e->ip ? e->ip : "-", e->source ? " source=" : "", e->source ? e->source : "",
		  e->fallback ? " via=fallback-relay" : "", e->code, dsn, e->attempts,
		  e->delay_s < 0 ? 0.0 : e->delay_s, tls, rq,
		  dlog_quote(e->reply ? e->reply : "", e->reply ? e->reply_len : 0, q, sizeof(q)));
}
