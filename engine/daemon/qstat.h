/* qstat — the queue's counters: messages, recipients and bytes, in total and per destination,
 * with each destination's oldest message and next attempt.
 *
 * Why: injection limits (max_queue_messages / max_queue_bytes) are checked for every message
 * and `riptidectl queue summary` must answer at once with a million messages queued, so
 * neither may scan the spool. The counters follow the `sched` entries, one per (message,
 * destination group): whatever adds or removes an entry adds or removes its values here, on
 * the commit thread, after the batch holding it was written (qstat_entry). A message counts
 * once, through its "primary" entry (its lowest group with an entry). After a restart the
 * counters are rebuilt from a snapshot of `sched` taken before the first write, by a
 * background thread, while mail flows (qstat_counting says so meanwhile): the snapshot's
 * entries plus every change after it is exactly the queue.
 * Oldest and next times are kept as per-destination counts per minute (so removals are exact)
 * with the earliest time seen in each minute: exact while that message is queued, within the
 * minute after it left.
 * Readers (shards, the control thread) take a lock only for per-destination reads; the totals
 * are atomics.
 */
#ifndef RIPTIDE_QSTAT_H
#define RIPTIDE_QSTAT_H

#include "queue/queue.h"

#include <stdbool.h>
#include <stdint.h>

struct qstat;

/* The values one sched entry carries (what its sched value says: msg.h struct msg_sval). */
struct qstat_entry {
	const char *dest;
	uint32_t pending;    /* recipients of the group still pending */
	uint64_t bytes;	     /* the message's body bytes */
	uint64_t created_ms; /* the message's creation */
	uint64_t due_ms;     /* the entry's due time */
	bool primary;	     /* counts the message (and its bytes) */
};

struct qstat *qstat_new(void);
void qstat_free(struct qstat *s);

/* qstat_entry: (commit thread, stats thread) an entry appeared (sign +1) or went (-1). */
void qstat_entry(struct qstat *s, const struct qstat_entry *e, int sign);

/* qstat_totals: (any thread) messages, recipients and bytes queued now. */
void qstat_totals(const struct qstat *s, uint64_t *messages, uint64_t *recipients, uint64_t *bytes);

/* qstat_counting: (any thread) the rebuild after start-up is still running. */
bool qstat_counting(const struct qstat *s);

/* One destination's counters for qstat_each. */
struct qstat_dest {
	const char *name;
	uint64_t messages, recipients, bytes;
	uint64_t oldest_ms; /* creation of its oldest message (within a minute; 0 = none) */
	uint64_t next_ms;   /* its earliest due entry (within a minute; 0 = none) */
};

/* qstat_each: (any thread) call fn for every destination with something queued, under the
 * counters' lock (fn must not call qstat_*); fn returns nonzero to stop. */
void qstat_each(struct qstat *s, int (*fn)(void *arg, const struct qstat_dest *d), void *arg);

/* qstat_rebuild: start the background count of a queue snapshot (queue_snap_new, taken by the
 * caller on the commit thread before its first write; the thread frees it). The counters
 * include it once qstat_counting turns false. Returns 0 or -errno. */
int qstat_rebuild(struct qstat *s, struct queue *q, struct queue_snap *snap);

/* qstat_join: wait for the rebuild thread (at shutdown; it stops early). */
void qstat_join(struct qstat *s);

#endif
