/* dest — one delivery destination on one shard: a FIFO of jobs, a pool of SMTP client sessions
 * (engine/smtpc) and the outcome bookkeeping that turns replies into queue updates.
 *
 * Why: a destination is the unit of throttling and failure. One slow or failing destination
 * must never hold up another, so each has its own queue, sessions and "dead" back-off. In relay
 * mode every shard owns its own instance of the smarthost destination (the global connection cap
 * is shared through an atomic in struct rt), so both cores deliver.
 *
 * Jobs: a message's pending recipients are split into jobs of at most
 * max_recipients_per_transaction; each job is one SMTP transaction. When a message's last job
 * ends, the message is finalised: all recipients final -> delete; some deferred -> envelope
 * update + sched moved to now + retry_delay (synced); either way it leaves RAM.
 */
#ifndef RIPTIDE_DEST_H
#define RIPTIDE_DEST_H

#include "engine/daemon/msg.h"
#include "engine/daemon/rt.h"

struct dest;

/* What a destination needs from its shard. */
struct dest_env {
	struct rt *rt;
	struct loop *loop;
	struct dlog_buf *log;
	unsigned shard;
};

/* dest_new: a destination delivering to addr (printable name for logs). */
struct dest *dest_new(const struct dest_env *env, const struct util_addr *addr, const char *name);

/* dest_enqueue: take m (resident, owned by this shard) and deliver its pending recipients. */
void dest_enqueue(struct dest *d, struct msg *m);

/* dest_shutdown: stop starting transactions; queued messages leave RAM (they stay queued on
 * disk); sessions QUIT after their running transaction, or close now with `abort`. */
void dest_shutdown(struct dest *d, bool abort);

/* dest_busy: sessions open + queue commits in flight. */
unsigned dest_busy(const struct dest *d);

/* dest_free: free a destination that is no longer busy; remaining messages leave RAM. */
void dest_free(struct dest *d);

#endif
