/* msg — a queued message while it is in RAM on its home shard: envelope, body, destination
 * groups and the bookkeeping of one delivery round.
 *
 * Why: a freshly accepted message goes straight to its destinations with its body (the hot path
 * never re-reads RocksDB); a group loaded by the runner from `sched` looks the same. The home
 * shard owns the message: only it writes the envelope, posts its commit and frees it. Delivery
 * units (unit.h) carry recipient subsets to the destinations' shards and outcomes back.
 * A round is the set of groups with a unit out; when the last unit is back, msg_plan decides
 * what the queue must record and msg_fill_final writes it (as a commit request's fill).
 * The resident set (resident.h) records which ids are in RAM so the runner never loads one
 * twice.
 */
#ifndef RIPTIDE_MSG_H
#define RIPTIDE_MSG_H

#include "engine/daemon/commit.h"
#include "engine/loop/loop.h"
#include "queue/queue.h"

#include <stdint.h>

struct ready_dest;

/* A destination group's state in RAM (its persistent part is env->dests[g]). */
struct msg_group {
	uint64_t disk_due; /* due of the group's sched entry in the queue; 0 = none */
	bool out;	   /* a unit of the group is out in this round */
	bool decided;	   /* some recipient of the group got an outcome in this round */
};

struct msg {
	struct queue_id id;
	char idstr[QUEUE_ID_STRLEN + 1];
	struct queue_env *env;	  /* decoded envelope; rcpt and group states updated in place */
	char **replies;		  /* per-rcpt reply strings set this run (owned), NULL entries */
	struct msg_group *groups; /* env->ndest entries */
	uint8_t *meta;		  /* current encoded envelope (owned) */
	size_t meta_len;
	char *body; /* CRLF-normalised body (owned; read-only while units are out) */
	size_t body_len;
	uint64_t accepted_us;	       /* wall clock µs when accepted (log: delay) */
	unsigned units_out;	       /* delivery units not back yet */
	bool unrecorded;	       /* its finalising queue write failed (logged once) */
	bool delete;		       /* the pending final write deletes it */
	unsigned hops;		       /* Received: fields it arrived with (loop detection) */
	unsigned shard;		       /* home shard index */
	uint16_t load_group;	       /* runner hand-over: the group that is due */
	struct ready_dest *load_ready; /* runner hand-over: the unit count it reserved */
	void *cookie;		 /* owner's use while committing (e.g. the injecting session) */
	struct commit_req req;	 /* embedded: one commit at a time */
	struct loop_msg handoff; /* runner -> home shard hand-over */
	struct msg *res_next;	 /* resident set chain */
	uint64_t res_bytes;	 /* bytes the resident set counted for it */
	struct msg *retry_next;	 /* home: list of messages whose queue write failed */
};

/* msg_new: build a message from its parts; takes ownership of `body` (malloc'ed). The envelope
 * (with its groups: env->dests[g].due is the due of each group's first sched entry) is encoded
 * once (msg->meta) and decoded into msg->env. Returns NULL if the envelope does not encode —
 * the caller then still owns body. */
struct msg *msg_new(const struct queue_id *id, const struct queue_env *env, char *body,
		    size_t body_len);

/* msg_from_disk: build a message from stored meta (copied) and body (taken, malloc'ed).
 * Returns NULL with *err set on a corrupt envelope (body is then freed). */
struct msg *msg_from_disk(const struct queue_id *id, const void *meta, size_t meta_len, void *body,
			  size_t body_len, int *err);

/* msg_set_result: record an outcome for rcpt i (state, code, reply text copied) and mark its
 * group decided for this round. */
void msg_set_result(struct msg *m, unsigned i, enum queue_rcpt_state st, int code,
		    const char *reply, size_t reply_len);

/* msg_group_rcpts: the indexes of group g's pending recipients into idx (nrcpt entries).
 * Returns how many. */
unsigned msg_group_rcpts(const struct msg *m, unsigned g, unsigned *idx);

/* What a round's end must write. */
enum msg_plan {
	MSG_PLAN_NONE,	 /* nothing was decided: the queue already holds the message as it is */
	MSG_PLAN_UPDATE, /* meta rewritten, the decided groups' sched entries moved or removed */
	MSG_PLAN_DELETE, /* no recipient is pending: meta, body and every sched entry removed */
};

/* msg_plan: end the round: every decided group with pending recipients gets one more attempt
 * and the due time now + retry_ms; a group left without pending recipients loses its sched
 * entry. Re-encodes msg->meta for an update. Clears the round (out/decided flags). Returns the
 * plan (MSG_PLAN_NONE also when the envelope cannot be re-encoded: nothing is written then and
 * the message is retried as it was). */
enum msg_plan msg_plan(struct msg *m, uint64_t now, uint64_t retry_ms);

/* msg_fill_put / msg_fill_final: commit_req.fill for a new message (meta, body, one sched
 * entry per group) and for the write msg_plan decided (msg->delete says which). Run on the
 * commit thread while the home shard leaves the message alone. */
void msg_fill_put(struct commit_req *r, struct queue_batch *b);
void msg_fill_final(struct commit_req *r, struct queue_batch *b);

/* msg_next_due: the earliest due time among the message's sched entries (0 if none). */
uint64_t msg_next_due(const struct msg *m);

/* msg_pending: number of recipients still pending. */
unsigned msg_pending(const struct msg *m);

/* msg_free: free everything the message owns. NULL is fine. */
void msg_free(struct msg *m);

#endif
