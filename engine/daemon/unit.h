/* unit — a delivery unit: the recipients of one message that go to one destination.
 *
 * Why: the home shard owns a message (envelope, recipient states, commit, finalisation); the
 * destination it must go to is owned by a shard chosen by route_owner. A unit is what travels
 * between the two by mailbox: out to the destination's shard with the recipient subset, back to
 * the home shard with one outcome per recipient. The message itself is only read on the
 * destination's shard (sender, flags, body, the recipients' addresses: none of which change
 * while a unit is out); every write to it happens at home when the unit is back. The message
 * outlives its units (home frees it only when units_out is 0), which is what keeps the shared
 * read-only body alive: the unit count is the body's reference count.
 */
#ifndef RIPTIDE_UNIT_H
#define RIPTIDE_UNIT_H

#include "engine/daemon/event.h"
#include "engine/daemon/fetch.h"
#include "engine/daemon/msg.h"
#include "engine/route/route.h"

struct home;
struct dest;

/* Where a unit's body is: the message's (injected mail, home's read-only copy), or read from the
 * queue for this unit when a session is about to send it (mail the runner loaded). */
enum unit_body {
	UNIT_BODY_HOME,	    /* m->body */
	UNIT_BODY_NONE,	    /* not read yet */
	UNIT_BODY_FETCHING, /* a read is in flight */
	UNIT_BODY_READY,    /* u->body */
	UNIT_BODY_FAILED,   /* the read failed: its jobs end deferred */
};

/* The outcome of one recipient of a unit, filled on the destination's shard. */
struct unit_rcpt {
	unsigned idx;	   /* index in m->env->rcpts */
	uint16_t attempts; /* the recipient's attempts before this round (read-only copy) */
	bool decided;	   /* an outcome was recorded */
	uint8_t state;	   /* enum queue_rcpt_state, when decided */
	uint16_t code;	   /* SMTP reply code, 0 for a local error */
	uint8_t enh[3];	   /* enhanced status code (also of a provisional outcome: MX walk) */
	char *reply;	   /* reply text (owned), when decided */
	char *mta;	   /* host that gave the outcome (owned), NULL: a local outcome */
	bool tried;	   /* a connection to a remote host was tried for it (counts an attempt) */
	bool peer_dsn;	   /* delivered to a next hop that offered DSN (RFC 3461 passed on) */
};

struct unit {
	struct loop_msg lm; /* out: to the owner shard; back: to the home shard */
	struct msg *m;	    /* the home's message: read-only away from home */
	struct home *home;  /* where outcomes go back */
	struct loop *home_loop;
	unsigned owner;		  /* the destination's shard */
	uint16_t group;		  /* the message's destination group this unit serves */
	unsigned jobs_out;	  /* destination's bookkeeping: transactions not ended */
	struct ready_dest *ready; /* counted there until it leaves its destination (ready.h) */
	uint8_t body_state;	  /* enum unit_body */
	char *body;		  /* UNIT_BODY_READY: read for this unit (owned) */
	size_t body_len;
	struct fetch_req freq;	 /* the read */
	struct dest *fetch_dest; /* the destination waiting for it */
	char dest[ROUTE_NAME_MAX];
	uint64_t retry_at; /* wall ms: no retry before (a backoff suspension), 0 = none */
	unsigned n;
	struct unit_rcpt r[];
};

/* unit_new: a unit for group g of m holding the n recipients idx[0..n) (their attempts are
 * copied now, on the home shard). */
struct unit *unit_new(struct msg *m, uint16_t g, const char *dest, const unsigned *idx, unsigned n);

/* unit_body: the bytes to send (m->body or the unit's own copy), or NULL if not read yet. */
const char *unit_body(const struct unit *u, size_t *len);

/* unit_set: record recipient k's outcome (reply text copied; a later call replaces it). */
void unit_set(struct unit *u, unsigned k, enum queue_rcpt_state st, int code, const char *text,
	      size_t len);

/* unit_set_event: record recipient k's outcome from its event record (state, code, enhanced
 * code, reply and host copied). */
void unit_set_event(struct unit *u, unsigned k, const struct event *e);

/* unit_set_enh: remember the enhanced status code of recipient k's (provisional) outcome. */
void unit_set_enh(struct unit *u, unsigned k, const int enh[3]);

/* unit_free: free u and its reply strings (not the message). NULL is fine. */
void unit_free(struct unit *u);

#endif
