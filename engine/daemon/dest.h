/* dest — one delivery destination on one shard: a FIFO of jobs, a pool of SMTP client sessions
 * (engine/smtpc) and the outcome bookkeeping that turns replies into recipient outcomes.
 *
 * Why: a destination is the unit of throttling and failure. One slow or failing destination
 * must never hold up another, so each has its own queue, sessions and "dead" back-off. In relay
 * mode every shard owns its own instance of the smarthost destination (the global connection cap
 * is shared through an atomic in struct rt), so both cores deliver.
 *
 * Jobs: a delivery unit's recipients (unit.h) are split into jobs of at most
 * max_recipients_per_transaction; each job is one SMTP transaction. When a unit's last job
 * ends, the unit goes back to its home shard with one outcome per recipient it decided; the
 * home shard writes the queue.
 */
#ifndef RIPTIDE_DEST_H
#define RIPTIDE_DEST_H

#include "engine/daemon/rt.h"
#include "engine/daemon/unit.h"

struct dest;

/* What a destination needs from its shard. */
struct dest_env {
	struct rt *rt;
	struct loop *loop;
	struct dlog_buf *log;
	unsigned shard;
	/* a unit's outcomes are in: hand it back to its home shard (on this shard's thread) */
	void (*unit_done)(void *arg, struct unit *u);
	void *unit_done_arg;
};

/* dest_new: a destination delivering to addr (printable name for logs). */
struct dest *dest_new(const struct dest_env *env, const struct util_addr *addr, const char *name);

/* dest_enqueue: take u and deliver its recipients; u goes back through env.unit_done (at once
 * if there is nothing to send or the destination is shutting down). */
void dest_enqueue(struct dest *d, struct unit *u);

/* dest_shutdown: stop starting transactions; queued units go home undecided (their messages
 * stay queued on disk); sessions QUIT after their running transaction, or close now with
 * `abort`. */
void dest_shutdown(struct dest *d, bool abort);

/* dest_busy: sessions open + jobs queued + timers armed. */
unsigned dest_busy(const struct dest *d);

/* dest_free: free a destination that is no longer busy (remaining jobs go home undecided). */
void dest_free(struct dest *d);

#endif
