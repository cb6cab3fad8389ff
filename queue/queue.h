/* queue — riptide's persistent message queue: envelopes, bodies and a schedule index.
 *
 * Why: the queue is the one thing that must survive kill -9. It is a thin, synchronous layer
 * over a backend (RocksDB in production, an in-memory map for unit tests) behind an ops table,
 * with three column families whose keys sort in time order:
 *
 *   meta   id (16 B)                 -> versioned binary envelope (struct queue_env encoded)
 *   body   id                        -> message bytes, CRLF-normalised, as received
 *   sched  due_ms (8 B BE) + id + destination index (2 B BE)
 *                                    -> small opaque value (destination name, attempt info)
 *
 * Writes go through a batch applied atomically (one WriteBatch); sync is per write. The engine
 * calls queue_write only from its commit thread and runner (blocking calls are fine there). This
 * module never includes engine/ headers. Thread-safety: all functions on one struct queue may be
 * called from several threads at once; a queue_batch belongs to one thread at a time.
 */
#ifndef RIPTIDE_QUEUE_H
#define RIPTIDE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define QUEUE_ID_LEN	16
#define QUEUE_ID_STRLEN 32 /* hex, without NUL */

/* Message id: 8 B wall-clock ms, 2 B shard, 6 B per-shard sequence; big-endian so ids sort by
 * creation time. */
struct queue_id {
	uint8_t b[QUEUE_ID_LEN];
};

/* queue_id_make: build an id from its parts. */
void queue_id_make(struct queue_id *id, uint64_t ms, uint16_t shard, uint64_t seq);

/* queue_id_ms: the creation time in an id. */
uint64_t queue_id_ms(const struct queue_id *id);

/* queue_id_format: 32 lowercase hex chars + NUL into out. */
void queue_id_format(const struct queue_id *id, char out[QUEUE_ID_STRLEN + 1]);

/* queue_id_parse: inverse of queue_id_format (exactly 32 hex digits; upper case accepted).
 * Returns 0 or -EINVAL (then *id is unchanged). */
int queue_id_parse(const char *s, struct queue_id *id);

/* ---- envelope ---- */

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING = 0,
	QUEUE_RCPT_DELIVERED = 1,
	QUEUE_RCPT_FAILED = 2,
};

/* DSN notification request of a recipient (RFC 3461 NOTIFY=); 0 = not given (the default:
 * failure and delay notices, RFC 3461 4.1). */
enum {
	QUEUE_NOTIFY_SUCCESS = 1u << 0,
	QUEUE_NOTIFY_FAILURE = 1u << 1,
	QUEUE_NOTIFY_DELAY = 1u << 2,
	QUEUE_NOTIFY_NEVER = 1u << 3,
};

/* RET= of the message (RFC 3461 4.3). */
enum queue_ret { QUEUE_RET_NONE = 0, QUEUE_RET_FULL = 1, QUEUE_RET_HDRS = 2 };

struct queue_rcpt {
	char *addr;	    /* NUL-terminated */
	uint8_t state;	    /* enum queue_rcpt_state */
	uint16_t dest;	    /* index into queue_env.dests: the destination group it belongs to */
	uint16_t attempts;  /* connections to a remote host tried for it (saturates at 65535) */
	uint16_t last_code; /* last SMTP reply code, 0 if none */
	char *last_reply;   /* NUL-terminated, "" if none */
	uint8_t notify;	    /* QUEUE_NOTIFY_* bits, 0 = not given */
	uint8_t enh[3];	    /* enhanced status code of the last outcome, {0,0,0} if none */
	uint64_t last_ms;   /* wall clock of the last outcome, 0 if none */
	char *orcpt;	    /* ORCPT= "addr-type;address" (decoded), "" if none */
	char *last_mta;	    /* host that gave the last reply, "" if none (local outcome) */
};

enum {
	QUEUE_ENV_8BITMIME = 1u << 0,
	QUEUE_ENV_BOUNCE = 1u << 1,   /* a DSN: never bounced */
	QUEUE_ENV_SMTPUTF8 = 1u << 2, /* injected with MAIL ... SMTPUTF8 (RFC 6531) */
	QUEUE_ENV_WARNED = 1u << 3,   /* its delay warning was made (at most one per message) */
};

/* A destination group of a message: the recipients routed to one destination when the message
 * was accepted. Each group has its own sched entry (due, index) and retries on its own
 * schedule; due == 0 means it has none (every recipient of the group is final). */
struct queue_dest {
	char *name;	   /* destination key at acceptance (recipient domain, or the relay) */
	uint64_t due;	   /* due time of its sched entry, 0 = none */
	uint32_t attempts; /* delivery rounds of this group that ended deferred */
};

/* At most this many destination groups per message (sched keys carry a 2-byte index). */
#define QUEUE_MAX_DESTS 65535u

struct queue_env {
	char *sender;	     /* "" for the null sender */
	uint64_t created_ms; /* wall clock */
	uint64_t body_len;
	uint32_t flags; /* QUEUE_ENV_* */
	char *envid;	/* ENVID= (RFC 3461, decoded), "" if none */
	uint8_t ret;	/* enum queue_ret */
	uint32_t nrcpt;
	struct queue_rcpt *rcpts;
	uint32_t ndest;
	struct queue_dest *dests;
};

/* queue_env_encoded_len: bytes queue_env_encode will write for e. */
size_t queue_env_encoded_len(const struct queue_env *e);

/* queue_env_encode: write the versioned binary form of e into buf (cap bytes). NULL strings
 * are written as "". Returns bytes written, or -ENOSPC if cap is too small (-EINVAL if a string
 * exceeds 4 GiB). */
ssize_t queue_env_encode(const struct queue_env *e, uint8_t *buf, size_t cap);

/* queue_env_decode: parse buf into a newly allocated envelope (one allocation holding all
 * strings; free with queue_env_free). Returns 0, -EBADMSG for corrupt/truncated input or
 * -EPROTO for an unknown version (-ENOMEM if out of memory); on error *out is NULL. */
int queue_env_decode(const uint8_t *buf, size_t len, struct queue_env **out);

/* queue_env_free: free an envelope from queue_env_decode. NULL is fine. */
void queue_env_free(struct queue_env *e);

/* ---- the store ---- */

enum queue_backend {
	QUEUE_BACKEND_ROCKSDB = 0,
	QUEUE_BACKEND_MEMORY = 1,
};

struct queue_opts {
	enum queue_backend backend;
	const char *path;	  /* directory (RocksDB); created if missing */
	size_t write_buffer_size; /* bytes per memtable, 0 = default (64 MiB) */
	bool blob_bodies;	  /* store body CF values in BlobDB files */
	/* Memory backend only (tests of the callers' error paths): while *fail_writes is a
	 * negative errno, every write fails with it and changes nothing. NULL: never. */
	const int *fail_writes; /* read with __atomic_load_n */
};

struct queue;

/* queue_open: open (creating if needed) the queue. Returns 0 or a negative errno; on error a
 * message naming the cause is written to err (errlen bytes). */
int queue_open(const struct queue_opts *opts, struct queue **out, char *err, size_t errlen);

/* queue_close: flush nothing extra (the WAL is the durability), close, free. NULL is fine. */
void queue_close(struct queue *q);

/* A batch of writes applied atomically by queue_write. */
struct queue_batch;

struct queue_batch *queue_batch_new(void);
void queue_batch_free(struct queue_batch *b);
void queue_batch_clear(struct queue_batch *b);
/* queue_batch_count: number of operations added since the last clear. */
size_t queue_batch_count(const struct queue_batch *b);

/* queue_batch_put: a new message: meta + body (its sched entries are added separately with
 * queue_batch_sched_put). meta is copied; the body is NOT copied (it can be megabytes): it must
 * stay valid and unchanged until queue_write has returned or the batch is cleared. */
void queue_batch_put(struct queue_batch *b, const struct queue_id *id, const void *meta,
		     size_t meta_len, const void *body, size_t body_len);

/* queue_batch_meta: rewrite a message's meta (copied). */
void queue_batch_meta(struct queue_batch *b, const struct queue_id *id, const void *meta,
		      size_t meta_len);

/* queue_batch_delete: remove a message's meta and body (its sched entries are removed
 * separately with queue_batch_sched_del). */
void queue_batch_delete(struct queue_batch *b, const struct queue_id *id);

/* queue_batch_sched_put: add the sched entry (due_ms, id, dest) with value sval (copied).
 * dest < QUEUE_MAX_DESTS (an invariant: aborts otherwise). */
void queue_batch_sched_put(struct queue_batch *b, uint64_t due_ms, const struct queue_id *id,
			   unsigned dest, const void *sval, size_t sval_len);

/* queue_batch_sched_del: remove the sched entry (due_ms, id, dest); dest < QUEUE_MAX_DESTS. */
void queue_batch_sched_del(struct queue_batch *b, uint64_t due_ms, const struct queue_id *id,
			   unsigned dest);

/* queue_batch_mem: bytes the batch holds allocated (for tests of the release bound). */
size_t queue_batch_mem(const struct queue_batch *b);

/* queue_write: apply b atomically; with sync the call returns only once it is on stable
 * storage. Returns 0, -ENOSPC when the store's file system is full, or -EIO for any other
 * failure (message in err). The batch is left unchanged. If a queue_batch_* add ran out of
 * memory, the batch is refused with -ENOMEM until cleared. After a failed write the store may
 * refuse every later write (RocksDB's background-error state) until queue_recover succeeds. */
int queue_write(struct queue *q, struct queue_batch *b, bool sync, char *err, size_t errlen);

/* queue_get: read a message. *meta / *body are malloc'ed copies the caller frees (pass NULL to
 * skip either; both NULL = existence check on meta). Returns 0, -ENOENT (a requested part is
 * missing; nothing allocated), -ENOMEM, or -EIO. */
int queue_get(struct queue *q, const struct queue_id *id, void **meta, size_t *meta_len,
	      void **body, size_t *body_len);

/* Scan callback: return 0 to go on, > 0 to stop the scan early (not an error). */
typedef int (*queue_scan_cb)(void *arg, uint64_t due_ms, const struct queue_id *id, unsigned dest,
			     const void *sval, size_t sval_len);

/* queue_scan: call cb for every sched entry with from_ms <= due <= until_ms, in key order (time,
 * then id, then group index), over a snapshot taken at the start (cb may write to the queue; it
 * does not see its own changes in this scan). Returns 0 (also when cb stopped it) or -EIO; a
 * negative value returned by cb stops the scan and is returned as is. */
int queue_scan(struct queue *q, uint64_t from_ms, uint64_t until_ms, queue_scan_cb cb, void *arg);

/* A consistent read view of the queue (a RocksDB snapshot). */
struct queue_snap;

/* queue_snap_new: take a snapshot now (any thread). Returns NULL if out of memory.
 * queue_snap_free: release it (NULL is fine). */
struct queue_snap *queue_snap_new(struct queue *q);
void queue_snap_free(struct queue *q, struct queue_snap *s);

/* queue_scan_snap: queue_scan over the snapshot s instead of one taken at the call. */
int queue_scan_snap(struct queue *q, const struct queue_snap *s, uint64_t from_ms,
		    uint64_t until_ms, queue_scan_cb cb, void *arg);

/* Meta scan callback: a message id and its encoded envelope (valid during the call). Return 0
 * to go on, > 0 to stop the scan early (not an error). */
typedef int (*queue_meta_cb)(void *arg, const struct queue_id *id, const void *meta,
			     size_t meta_len);

/* queue_scan_meta: call cb for every message with id >= *from (from NULL: from the first), in
 * id order (creation time), over a snapshot taken at the start; one message in RAM at a time.
 * Returns 0 (also when cb stopped it) or -EIO; a negative value returned by cb stops the scan
 * and is returned as is. */
int queue_scan_meta(struct queue *q, const struct queue_id *from, queue_meta_cb cb, void *arg);

/* queue_recover: after failed writes, bring the store back to a writable state: RocksDB is
 * closed and reopened (replaying its WAL; a torn last record is dropped), which clears its
 * background error once space is available again. Blocks until no other call is inside the
 * queue; never call it from a queue_scan callback. Returns 0, or a negative errno with a
 * message in err (the store then refuses every call with -EIO until a later recover works). */
int queue_recover(struct queue *q, char *err, size_t errlen);

/* queue_count: number of messages queued (meta entries). Exact, by iteration: for tools and
 * tests, not the hot path. Returns 0 or -EIO. */
int queue_count(struct queue *q, uint64_t *out);

#endif
