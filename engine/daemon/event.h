/* event — the delivery event record: one per recipient outcome.
 *
 * Why: an outcome is reported in several places — the delivery log now, the envelope (what
 * `queue show` and the DSN builder read), metrics later. Each used to be formatted where the
 * outcome happened; now the place that decides an outcome fills one struct event and hands it
 * to event_log (the text line) and to the unit / message (the stored state). No module formats
 * its own delivery line.
 */
#ifndef RIPTIDE_EVENT_H
#define RIPTIDE_EVENT_H

#include "engine/daemon/dlog.h"
#include "queue/queue.h"
#include "tls/tls.h"

#include <stdbool.h>
#include <stddef.h>

struct event {
	const char *id;	    /* message id (32 hex) */
	uint8_t state;	    /* enum queue_rcpt_state: delivered, deferred (pending) or failed */
	const char *rcpt;   /* recipient address */
	const char *dest;   /* destination name (domain or relay) */
	const char *mx;	    /* host name that answered, NULL = none (local outcome) */
	const char *ip;	    /* its address:port, NULL = none */
	const char *source; /* the egress pool source address bound, NULL = the default */
	bool fallback;	    /* through the fallback relay */
	int code;	    /* SMTP reply code, 0 = local */
	int enh[3];	    /* enhanced status code, {0,0,0} = none */
	unsigned attempts;  /* connection attempts for this recipient, this one included */
	double delay_s;	    /* seconds since the message was accepted */
	const char *reply;  /* reply text or local reason (need not be NUL-terminated) */
	size_t reply_len;
	const char *reason; /* why riptide decided it (expired, operator), NULL = the reply's */
	bool remote;	    /* a remote host answered (the line says tls=...) */
	const struct tls_info *tls; /* how that connection was encrypted, NULL = plaintext */
};

/* event_status_name: "delivered", "deferred" or "failed". */
const char *event_status_name(uint8_t state);

/* event_log: append e's delivery line to b:
 *   status=S to=<rcpt> dest=D mx=H relay=IP[:port] [source=ADDR] [via=fallback-relay]
 *   code=C dsn=X.Y.Z
 *   attempts=N delay=SECONDS [tls=no | tls=VERSION cipher=C verified=yes|no] [reason="..."]
 *   reply="..."
 * (tls=... only when a remote host answered)
 * (dlog.h documents the format). */
void event_log(struct dlog_buf *b, const struct event *e);

#endif
