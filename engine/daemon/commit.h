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

enum commit_op {
	COMMIT_PUT,    /* new message: meta + body + sched(new_due) */
	COMMIT_UPDATE, /* meta rewrite + sched move old_due -> new_due */
	COMMIT_DELETE, /* meta + body + sched(old_due) removed */
};

/* A request. The poster owns it and every buffer it points to until `done.fn` runs on `loop`
 * (the completion is always posted, with `result` set to 0 or -EIO). */
struct commit_req {
	struct commit_req *next;
	enum commit_op op;
	bool sync;
	struct queue_id id;
	const void *meta;
	size_t meta_len;
	const void *body;
	size_t body_len;
	uint64_t old_due;
	uint64_t new_due;
	uint32_t attempts; /* stored as the sched value */
	int result;
	struct loop *loop;
	struct loop_msg done;
};

struct commit;

/* commit_start: start the commit thread over q. Returns 0 or -errno. */
int commit_start(struct queue *q, struct commit **out);

/* commit_post: queue a request (any thread). */
void commit_post(struct commit *c, struct commit_req *r);

/* commit_halt: write everything already posted, stop and join the thread. c stays valid until
 * commit_free; a request posted after the halt is never written nor completed. Idempotent. */
void commit_halt(struct commit *c);

/* commit_free: halt if needed and free c. NULL is fine. */
void commit_free(struct commit *c);

/* commit_stats: number of synced writes and requests so far (for the shutdown log line). */
void commit_stats(struct commit *c, uint64_t *writes, uint64_t *reqs);

#endif
