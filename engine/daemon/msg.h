/* msg — a queued message while it is in RAM: envelope, body, schedule key and delivery state.
 *
 * Why: a freshly accepted message goes straight to its destination with its body (the hot path
 * never re-reads RocksDB); a message loaded by the runner from `sched` looks the same. The
 * resident set (resident.h) records which ids are in RAM so the runner never loads one twice.
 * A msg belongs to one shard thread at a time; it is handed over with `handoff` (loop_post).
 */
#ifndef RIPTIDE_MSG_H
#define RIPTIDE_MSG_H

#include "engine/daemon/commit.h"
#include "engine/loop/loop.h"
#include "queue/queue.h"

#include <stdint.h>

struct msg {
	struct queue_id id;
	char idstr[QUEUE_ID_STRLEN + 1];
	struct queue_env *env; /* decoded envelope; rcpt states are updated in place */
	char **replies;	       /* per-rcpt reply strings set this run (owned), NULL entries */
	uint8_t *meta;	       /* current encoded envelope (owned) */
	size_t meta_len;
	char *body; /* CRLF-normalised body (owned) */
	size_t body_len;
	uint64_t due;		 /* due time of the sched key currently in the queue */
	uint64_t accepted_us;	 /* wall clock µs when accepted / loaded (log: delay) */
	unsigned jobs_out;	 /* delivery jobs not finished yet */
	bool round_decided;	 /* some rcpt outcome was recorded this delivery round */
	bool unrecorded;	 /* its finalising queue write failed (logged once) */
	unsigned hops;		 /* Received: fields it arrived with (loop detection) */
	unsigned shard;		 /* owning shard index */
	void *cookie;		 /* owner's use while committing (e.g. the injecting session) */
	struct commit_req req;	 /* embedded: one commit at a time */
	struct loop_msg handoff; /* runner -> shard hand-over */
	struct msg *res_next;	 /* resident set chain */
	struct msg *retry_next;	 /* dest: list of messages whose queue write failed */
};

/* msg_new: build a message from its parts; takes ownership of `body` (malloc'ed). The
 * envelope is encoded once (msg->meta) and decoded into msg->env. Returns NULL if the envelope
 * does not encode (cannot happen for sane sizes) — caller then still owns body. */
struct msg *msg_new(const struct queue_id *id, const struct queue_env *env, char *body,
		    size_t body_len, uint64_t due);

/* msg_from_disk: build a message from stored meta (copied) and body (taken, malloc'ed).
 * Returns NULL with *err set on a corrupt envelope (body is then freed). */
struct msg *msg_from_disk(const struct queue_id *id, uint64_t due, const void *meta,
			  size_t meta_len, void *body, size_t body_len, int *err);

/* msg_set_result: record an outcome for rcpt i (state, code, reply text copied). */
void msg_set_result(struct msg *m, unsigned i, enum queue_rcpt_state st, int code,
		    const char *reply, size_t reply_len);

/* msg_reencode: re-encode msg->env (after results) into msg->meta. Returns 0, or -EINVAL if
 * the envelope cannot be encoded (msg->meta then keeps the previous encoding). */
int msg_reencode(struct msg *m);

/* msg_pending: number of recipients still pending. */
unsigned msg_pending(const struct msg *m);

/* msg_free: free everything the message owns. NULL is fine. */
void msg_free(struct msg *m);

#endif
