/* commit — the commit thread: group-commits queue writes so many messages share one fsync.
 *
 * Why: RocksDB writes with sync=true block for an fsync (~5,000/s on this disk). Shards never
 * block: they post commit requests here; the thread drains every pending request into one
 * WriteBatch, writes it once (synced if any request asked for sync) and posts each request's
 * completion back to the requesting loop. One fsync then covers hundreds of messages.
 */
#ifndef RIPTIDE_COMMIT_H
#define RIPTIDE_COMMIT_H

#include "engine/loop/loop.h"
#include "queue/queue.h"

/* A request. The poster owns it and every buffer it points to until `done.fn` runs on `loop`
 * (the completion is always posted, with `result` set to 0, -ENOSPC when the spool's file
 * system is full, or -EIO / -ENOMEM for any other failure). */
struct commit_req {
	struct commit_req *next;
	/* Adds the request's writes to the batch; runs on the commit thread (the poster leaves
	 * what it reads alone until the completion). */
	void (*fill)(struct commit_req *r, struct queue_batch *b);
	size_t bytes; /* about how many bytes fill adds (bounds one WriteBatch) */
	bool sync;
	/* A new message (its client is told the result): if its write fails, RocksDB may still
	 * replay it, so it is deleted before degraded mode ends: meta, body and the sched
	 * entries (put_due, group 0..put_ngroups-1). */
	bool put;
	struct queue_id id;
	uint64_t put_due;
	unsigned put_ngroups;
	/* Optional: called on the commit thread once the batch holding the request is written
	 * (before the completion), with the argument given to commit_set_written_arg: the queue
	 * counters follow what is on disk (qstat.h). */
	void (*written)(struct commit_req *r, void *arg);
	int result;
	struct loop *loop;
	struct loop_msg done;
};

struct commit;

/* Called on the commit thread when the queue stops being writable (degraded = true: a write
 * failed) and when it is writable again (false). */
typedef void (*commit_state_fn)(void *arg, bool degraded);

/* commit_start: start the commit thread over q; on_state (may be NULL) with arg is told about
 * the queue's health. Returns 0 or -errno.
 *
 * Degraded mode (disk full, or any write error): the failed batch's requests complete with the
 * error; from then on every request completes at once with that error without touching the
 * store, while the thread probes the store every second (a tiny synced write) and, when the
 * probe fails, closes and reopens it (queue_recover) at most every COMMIT_REOPEN_MS. The first
 * probe that succeeds ends degraded mode. Nothing acknowledged is lost: a write either
 * completed with 0 or the poster still holds its data. */
int commit_start(struct queue *q, commit_state_fn on_state, void *arg, struct commit **out);

/* commit_set_written_arg: the argument of every request's `written` callback (set before the
 * first post). */
void commit_set_written_arg(struct commit *c, void *arg);

/* commit_degraded: (any thread) true while the queue is not writable. */
bool commit_degraded(const struct commit *c);

/* commit_post: queue a request (any thread). After commit_halt it completes at once with
 * -ESHUTDOWN. */
void commit_post(struct commit *c, struct commit_req *r);

/* commit_halt: write everything already posted, stop and join the thread. c stays valid until
 * commit_free; a request posted after the halt completes with -ESHUTDOWN, unwritten.
 * Idempotent. */
void commit_halt(struct commit *c);

/* commit_free: halt if needed and free c. NULL is fine. */
void commit_free(struct commit *c);

/* commit_stats: number of synced writes and requests so far (for the shutdown log line). */
void commit_stats(struct commit *c, uint64_t *writes, uint64_t *reqs);

#endif
