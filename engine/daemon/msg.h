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
#include "engine/daemon/qstat.h"
#include "engine/loop/loop.h"
#include "engine/route/route.h"
#include "queue/queue.h"

#include <stdint.h>

struct ready_dest;
struct home_ctl;

/* A sched entry of a notice the message's write carries (counted once written). */
struct msg_nent {
	struct qstat_entry e;
	char name[ROUTE_NAME_MAX];
};

/* A destination group's state in RAM (its persistent part is env->dests[g]). */
struct msg_group {
	uint64_t disk_due;     /* due of the group's sched entry in the queue; 0 = none */
	uint32_t disk_pending; /* its pending recipients, as that entry counts them */
	bool disk_primary;     /* that entry counts the message (qstat.h) */
	bool out;	       /* a unit of the group is out in this round */
	bool decided;	       /* some recipient of the group got an outcome in this round */
	uint64_t retry_at;     /* wall ms: its destination asked for no retry before (a
				* backoff suspension's end); 0 = the retry schedule decides */
};

struct msg {
	struct queue_id id;
	char idstr[QUEUE_ID_STRLEN + 1];
	struct queue_env *env; /* decoded envelope; rcpt and group states updated in place */
	char **replies;	       /* per-rcpt reply strings set this run (owned), NULL entries */
	char **mtas;	       /* per-rcpt last MTA strings set this run (owned), NULL entries */
	uint8_t *fresh;	       /* per-rcpt MSG_FRESH_*: a notice is due for its new outcome */
	char *notices[3];      /* notice bytes of its last final write (notice.h), owned */
	size_t notice_len[3];
	struct msg_nent *notice_ents; /* the sched entries of those notices (owned) */
	unsigned notice_nents;
	struct msg_group *groups; /* env->ndest entries */
	uint8_t *meta;		  /* current encoded envelope (owned) */
	size_t meta_len;
	char *body; /* CRLF-normalised body (owned; read-only while units are out) */
	size_t body_len;
	uint64_t accepted_us;	       /* wall clock µs when accepted (log: delay) */
	unsigned units_out;	       /* delivery units not back yet */
	bool unrecorded;	       /* its finalising queue write failed (logged once) */
	bool delete;		       /* the pending final write deletes it */
	bool dirty;		       /* the envelope changed outside the round's outcomes */
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
	struct home_ctl *ctl;	 /* home: the operator's action being written, NULL = none */
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

/* What a recipient's new outcome asks for (msg.fresh), until the round's end makes it. */
enum { MSG_FRESH_FAILED = 1, MSG_FRESH_RELAYED = 2, MSG_FRESH_DELAYED = 3, MSG_NOTICES = 3 };

/* One recipient outcome as the home shard records it (from the unit's event record). */
struct msg_outcome {
	uint8_t state; /* enum queue_rcpt_state */
	int code;      /* SMTP code, 0 = local */
	uint8_t enh[3];
	const char *reply; /* text (need not be NUL-terminated), copied */
	size_t reply_len;
	const char *mta; /* host that answered, NULL = none; copied */
	bool tried;	 /* a connection was tried: one more attempt */
	bool peer_dsn;	 /* delivered to a hop that offered DSN */
	uint64_t at_ms;	 /* wall clock of the outcome */
};

/* msg_record: record outcome o for rcpt i (attempts + 1 when o->tried, saturating), mark
 * whether a notice is due for it (a failure, or a delivery with NOTIFY=SUCCESS to a hop without
 * DSN) and mark its group decided for this round. */
void msg_record(struct msg *m, unsigned i, const struct msg_outcome *o);

/* msg_set_result: msg_record with a tried attempt, no enhanced code and no MTA, now (tests
 * and simple callers). */
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

/* The retry schedule and expiry limits ([delivery] keys). */
struct msg_sched {
	uint64_t retry_ms;     /* retry_delay: after the first deferred round */
	double backoff;	       /* retry_backoff: factor per further deferred round (>= 1) */
	uint64_t max_ms;       /* retry_max_delay: ceiling (ignored when below retry_ms) */
	uint64_t lifetime_ms;  /* lifetime: recipients older than this fail (0 = never) */
	unsigned max_attempts; /* a recipient with this many attempts fails (0 = no limit) */
	uint64_t *rng;	       /* jitter state (xorshift64, nonzero), NULL = no jitter */
	/* per destination (a route's own schedule): fill *out for destination `dest` (out's
	 * rng is left as it is); NULL: this schedule for every destination */
	void (*of_dest)(void *arg, const char *dest, struct msg_sched *out);
	void *of_dest_arg;
};

/* msg_retry_delay: the delay before the next attempt after `rounds` deferred rounds (1 = the
 * first): retry_ms * backoff^(rounds-1), at most max_ms, +-5 % jitter when rng is set. */
uint64_t msg_retry_delay(const struct msg_sched *s, uint32_t rounds, uint64_t *rng);

/* msg_plan: end the round: every decided group with pending recipients gets one more deferred
 * round and its next due (msg_retry_delay after now, but never past created + lifetime); a
 * group left without pending recipients loses its sched entry. Re-encodes msg->meta for an
 * update (also when msg_warn or an operator changed the envelope: msg.dirty). Clears the round
 * (out/decided flags). Returns the plan (MSG_PLAN_NONE also when the envelope cannot be
 * re-encoded: nothing is written then and the message is retried as it was). */
enum msg_plan msg_plan(struct msg *m, uint64_t now, const struct msg_sched *s);

/* Called for each recipient msg_expire fails, with the reason (valid during the call). */
typedef void (*msg_expired_fn)(void *arg, struct msg *m, unsigned i, const char *reason);

/* msg_expire: before msg_plan: every pending recipient of a group decided this round that is
 * older than the lifetime or has max_attempts attempts fails now (enhanced code 5.4.7, its last
 * reply kept as the diagnostic, a failure notice due). Returns how many. */
unsigned msg_expire(struct msg *m, uint64_t now, const struct msg_sched *s, msg_expired_fn fn,
		    void *arg);

/* msg_local_reason: recipient i failed by riptide's own decision (expiry, an operator's
 * bounce): its stored reply becomes "<reason>; last reply: <code> <text>" with code 0, so the
 * notice's Diagnostic-Code and text say why (the last MTA is kept for Remote-MTA). */
void msg_local_reason(struct msg *m, unsigned i, const char *reason);

/* msg_warn: before msg_plan: once per message (QUEUE_ENV_WARNED), when it has waited longer
 * than warn_after_ms (0 = never), every pending recipient of a decided group that did not
 * refuse delay notices gets a delay notice due. Returns how many. */
unsigned msg_warn(struct msg *m, uint64_t now, uint64_t warn_after_ms);

/* msg_fill_put / msg_fill_final: commit_req.fill for a new message (meta, body, one sched
 * entry per group) and for the write msg_plan decided (msg->delete says which). Run on the
 * commit thread while the home shard leaves the message alone. */
void msg_fill_put(struct commit_req *r, struct queue_batch *b);
void msg_fill_final(struct commit_req *r, struct queue_batch *b);

/* A sched value: what the runner (destination) and the queue counters rebuilt at start-up
 * (messages, recipients, bytes per destination) need without reading `meta`. */
struct msg_sval {
	const char *name;    /* destination */
	uint32_t attempts;   /* deferred rounds of the group */
	uint64_t created_ms; /* the message's creation */
	uint64_t bytes;	     /* its body length */
	uint32_t pending;    /* the group's pending recipients */
	bool primary;	     /* the message's lowest group with an entry: it counts the message */
	bool old;	     /* written before #5 (attempts + name only) */
};

#define MSG_SVAL_MAX (26 + 256)

/* msg_sval_make: encode v into buf (cap > 26; a longer name is cut). Returns the length. */
size_t msg_sval_make(const struct msg_sval *v, uint8_t *buf, size_t cap);

/* msg_sval_parse: decode a sched value (either format); v->name points to name (namecap
 * bytes, NUL-terminated, cut if longer). Never fails: garbage gives zeros and a short name. */
void msg_sval_parse(const void *p, size_t len, struct msg_sval *v, char *name, size_t namecap);

/* msg_count_written: (commit thread) a write of m (msg_fill_put or msg_fill_final, with the
 * notices it carried) is on disk: move the queue counters from the entries m had there to the
 * ones it has now, and remember those as on disk. */
void msg_count_written(struct msg *m, struct qstat *qs);

/* msg_written_cb / msg_written_put_cb: commit_req.written for the requests of msg_fill_final
 * and msg_fill_put (arg: the struct qstat, NULL = none). */
void msg_written_cb(struct commit_req *r, void *arg);
void msg_written_put_cb(struct commit_req *r, void *arg);

/* msg_next_due: the earliest due time among the message's sched entries (0 if none). */
uint64_t msg_next_due(const struct msg *m);

/* msg_pending: number of recipients still pending. */
unsigned msg_pending(const struct msg *m);

/* msg_free: free everything the message owns. NULL is fine. */
void msg_free(struct msg *m);

#endif
