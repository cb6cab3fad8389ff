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

void event_log(struct dlog_buf *b, const struct event *e)
{
	char q[400], rq[200] = "", dsn[16] = "-";

	if (e->enh[0])
		snprintf(dsn, sizeof(dsn), "%d.%d.%d", e->enh[0], e->enh[1], e->enh[2]);
	if (e->reason) {
		char tmp[160];
		snprintf(rq, sizeof(rq), " reason=\"%s\"",
			 dlog_quote(e->reason, strlen(e->reason), tmp, sizeof(tmp)));
	}
	dlog_line(b, e->id,
		  "status=%s to=<%s> dest=%s mx=%s relay=%s%s code=%d dsn=%s attempts=%u "
		  "delay=%.3f%s reply=\"%s\"",
		  event_status_name(e->state), e->rcpt, e->dest, e->mx ? e->mx : "-",
		  e->ip ? e->ip : "-", e->fallback ? " via=fallback-relay" : "", e->code, dsn,
		  e->attempts, e->delay_s < 0 ? 0.0 : e->delay_s, rq,
		  dlog_quote(e->reply ? e->reply : "", e->reply ? e->reply_len : 0, q, sizeof(q)));
}
