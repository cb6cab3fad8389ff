/* runner — the queue runner thread: finds due (message, destination group) entries in `sched`
 * and hands the messages to their home shards.
 *
 * Why: RAM holds only what is due now, within a budget. Everything else waits in RocksDB. The
 * runner scans the schedule index in time order from a cursor up to "now", skips ids that are
 * already resident (their home shard rewinds the runner to their other groups' due times when
 * they leave RAM), loads the rest (meta + body: blocking reads are fine on this thread) while
 * the resident-bytes budget allows, and dispatches each one, with the group that is due, to its
 * home shard. After a restart the
 * cursor starts at 0, so the whole backlog is recovered in time order while new mail is served
 * at once by the shards.
 */
#ifndef RIPTIDE_RUNNER_H
#define RIPTIDE_RUNNER_H

#include "engine/daemon/msg.h"
#include "engine/daemon/ready.h"
#include "engine/daemon/resident.h"
#include "engine/daemon/susp.h"
#include "queue/queue.h"

struct runner;

/* Called on the runner thread for each loaded message (already in the resident set); must hand
 * it to its shard (loop_post) and return. */
typedef void (*runner_dispatch_fn)(void *arg, struct msg *m);

struct runner_opts {
	struct queue *q;
	struct resident *res;
	struct ready *ready;   /* per-destination unit counts (ready.h) */
	struct susp *susp;     /* suspended destinations (susp.h), NULL = none */
	uint64_t budget_bytes; /* stop loading while resident bytes >= this */
	uint64_t interval_ms;  /* scan period */
	runner_dispatch_fn dispatch;
	void *arg;
	bool paused; /* start paused (outgoing off, or shards not up yet) */
};

/* runner_start: start the thread (first scan at once, from time 0). Returns 0 or -errno. */
int runner_start(const struct runner_opts *o, struct runner **out);

/* runner_set_paused: (any thread) stop loading messages, or resume (which scans at once). A
 * paused runner still records rewinds, so nothing queued meanwhile is passed over. */
void runner_set_paused(struct runner *r, bool paused);

/* runner_set_held: (any thread) like runner_set_paused, but a separate switch for the queue's
 * health: while the queue cannot be written (disk full) nothing is loaded, so no delivery is
 * started whose outcome could not be recorded. The runner scans when neither is set. */
void runner_set_held(struct runner *r, bool held);

/* runner_kick: scan again now (any thread), e.g. after a retry was scheduled or RAM freed. */
void runner_kick(struct runner *r);

/* runner_rewind: make the next scan start no later than due_ms (any thread): used when a
 * message is dropped from RAM with its sched key still at an earlier time than the cursor. */
void runner_rewind(struct runner *r, uint64_t due_ms);

/* runner_halt: stop scanning and join the thread. r stays valid (runner_rewind/kick become
 * no-ops) until runner_free, so shards may still call them. Idempotent. */
void runner_halt(struct runner *r);

/* runner_free: halt if needed, then free r. NULL is fine. */
void runner_free(struct runner *r);

#endif
