/* dest_rec — a recipient's outcome as the destination layer records it: one event record
 * (engine/daemon/event.h), stored in the unit and written as the delivery line.
 *
 * Why a file of its own: dest.c runs jobs and sessions; turning a reply, a local error or a
 * configuration verdict into an event is the same few steps for all of them (the state the
 * code implies, the host and its TLS, the attempt count) and reads best apart.
 */
#include "engine/daemon/dest_int.h"
#include "engine/daemon/event.h"
#include "engine/daemon/msg.h"

#include <stdio.h>
#include <string.h>

static enum queue_rcpt_state dest_state(int code)
{
	return code >= 200 && code < 300 ? QUEUE_RCPT_DELIVERED
	       : code >= 500		 ? QUEUE_RCPT_FAILED
					 : QUEUE_RCPT_PENDING;
}

void dest_record_ev(struct dest *d, struct unit *u, unsigned k, const struct dest_target *t,
		    struct event *ev)
{
	struct unit_rcpt *r = &u->r[k];
	const struct msg *m = u->m;

	ev->id = m->idstr;
	ev->rcpt = m->env->rcpts[r->idx].addr;
	ev->dest = u->dest;
	ev->mx = t ? t->host : NULL;
	ev->ip = t ? t->ip : NULL;
	ev->source = t && t->src[0] ? t->src : NULL;
	ev->fallback = d->is_fallback;
	ev->remote = t != NULL;
	ev->delay_s = (double)(util_wall_ms() * 1000 - m->accepted_us) / 1e6;
	r->tried |= t != NULL;
	ev->attempts = r->attempts + (r->tried && r->attempts < UINT16_MAX ? 1u : 0u);
	unit_set_event(u, k, ev);
	event_log(d->env.log, ev);
}

/* dest_record_tls: record recipient k's reply (the state its code implies) from target t
 * (NULL: a local outcome), over a connection encrypted as tls says (NULL: plaintext). */
void dest_record_tls(struct dest *d, struct unit *u, unsigned k, const struct dest_target *t,
		     const struct tls_info *tls, int code, const int enh[3], const char *text,
		     size_t text_len)
{
	struct event ev = {.state = (uint8_t)dest_state(code),
			   .code = code,
			   .enh = {enh[0], enh[1], enh[2]},
			   .reply = text,
			   .reply_len = text_len,
			   .tls = tls};

	dest_record_ev(d, u, k, t, &ev);
}

/* dest_record: dest_record_tls without TLS details. */
void dest_record(struct dest *d, struct unit *u, unsigned k, const struct dest_target *t, int code,
		 const int enh[3], const char *text, size_t text_len)
{
	dest_record_tls(d, u, k, t, NULL, code, enh, text, text_len);
}

void dest_record_err(struct dest *d, struct unit *u, unsigned k, const char *err)
{
	int enh[3] = {4, 4, 1};

	dest_record(d, u, k, NULL, 0, enh, err, strlen(err));
}

void dest_record_bounce(struct dest *d, struct unit *u, unsigned k, const struct dest_target *t,
			const struct tls_info *tls, const struct smtpc_reply *r, const char *rule)
{
	char why[CONFIG_STR + 32];
	struct event ev = {.state = QUEUE_RCPT_FAILED,
			   .code = r->code,
			   .enh = {r->enh_class, r->enh_subject, r->enh_detail},
			   .reply = r->text,
			   .reply_len = r->text_len,
			   .reason = why,
			   .tls = tls};

	snprintf(why, sizeof(why), "bounced by backoff rule %s", rule);
	dest_record_ev(d, u, k, t, &ev);
}
