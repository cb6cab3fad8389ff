/* inject — a message at the end of DATA becomes a struct msg: egress pool, header rewrite,
 * recipients grouped by destination (see inject.c).
 */
#ifndef RIPTIDE_INJECT_H
#define RIPTIDE_INJECT_H

#include "engine/daemon/msg.h"
#include "engine/daemon/snap.h"
#include "engine/smtpd/smtpd.h"

/* inject_msg: the message of envelope e and *body (*len bytes, malloc'ed, NUL-terminated)
 * under snapshot s, with id. The X-Riptide-Pool: field is removed and selects the pool (else
 * [delivery] default_pool); [rewrite] rules apply to From/Sender/Reply-To (*body and *len may
 * be replaced). Returns the message, which owns *body; or NULL with the reply to send in *code
 * and why (wl bytes: "5.6.0 ..." for an unknown pool, "5.3.4 ..." for an envelope too large),
 * the caller then still owning *body. */
struct msg *inject_msg(const struct snap *s, const struct queue_id *id,
		       const struct smtpd_envelope *e, char **body, size_t *len, int *code,
		       char *why, size_t wl);

#endif
