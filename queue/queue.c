/* queue.c — the public queue API: message ids, write batches, and dispatch to a backend.
 *
 * Why: the engine must not care whether the store is RocksDB (production) or an in-memory map
 * (unit tests), so everything backend-independent lives here once — id layout, batch building,
 * argument checks — and the backends behind struct queue_backend_ops only apply, read and scan.
 * A batch is backend-neutral (a list of ops over one byte arena) because queue_batch_new() has no
 * queue to ask; the backend translates it at write time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>

#include "queue/queue.h"
#include "queue/queue_types.h"

/* The rwlock lets queue_recover close and reopen the backend while no other call is inside it;
 * every other call takes it shared (glibc's default rwlock prefers readers, so a scan callback
 * may call queue_get). */
struct queue_snap {
	struct queue_snap *next;
	void *b; /* the backend's view; NULL once queue_recover released it */
};

struct queue {
	const struct queue_backend_ops *ops;
	void *state;
	pthread_rwlock_t lock;
	struct queue_snap *snaps; /* live views (under the write lock or with lock + snap_lock) */
	pthread_mutex_t snap_lock;
};

static void queue_snaps_release(struct queue *q);

/* queue_errf: see queue_types.h. */
void queue_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- ids ---- */

/* queue_id_make: ms (8 B BE), shard (2 B BE), seq (low 48 bits, 6 B BE). seq wraps mod 2^48. */
void queue_id_make(struct queue_id *id, uint64_t ms, uint16_t shard, uint64_t seq)
{
	queue_be64_put(id->b, ms);
	id->b[8] = (uint8_t)(shard >> 8);
	id->b[9] = (uint8_t)shard;
	for (int i = 15; i >= 10; i--) {
		id->b[i] = (uint8_t)seq;
		seq >>= 8;
	}
}

/* queue_id_ms: the creation time (first 8 bytes, big-endian). */
uint64_t queue_id_ms(const struct queue_id *id)
{
	return queue_be64_get(id->b);
}

/* queue_id_format: 32 lowercase hex digits + NUL into out. */
void queue_id_format(const struct queue_id *id, char out[QUEUE_ID_STRLEN + 1])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < QUEUE_ID_LEN; i++) {
		out[2 * i] = hex[id->b[i] >> 4];
		out[2 * i + 1] = hex[id->b[i] & 15];
	}
	out[QUEUE_ID_STRLEN] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* queue_id_parse: exactly 32 hex digits (either case), nothing after. On error *id is left
 * unchanged. Returns 0 or -EINVAL. */
int queue_id_parse(const char *s, struct queue_id *id)
{
	struct queue_id tmp;

	if (!s)
		return -EINVAL;
	for (int i = 0; i < QUEUE_ID_LEN; i++) {
		int hi = hexval(s[2 * i]), lo;

		if (hi < 0)
			return -EINVAL;
		lo = hexval(s[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		tmp.b[i] = (uint8_t)(hi << 4 | lo);
	}
	if (s[QUEUE_ID_STRLEN] != '\0')
		return -EINVAL;
	*id = tmp;
	return 0;
}

/* ---- batches ---- */

/* queue_batch_new: an empty batch, or NULL when out of memory. Free with queue_batch_free. */
struct queue_batch *queue_batch_new(void)
{
	return calloc(1, sizeof(struct queue_batch));
}

/* queue_batch_free: free b and everything it copied. NULL is fine. */
void queue_batch_free(struct queue_batch *b)
{
	if (!b)
		return;
	free(b->ops);
	free(b->arena);
	free(b);
}

/* A batch keeps at most this much memory across clears: a burst (a restart's backlog, thousands
 * of sessions finishing at once) does not pin its peak size for the life of the process. */
#define BATCH_KEEP_ARENA (256u << 10)
#define BATCH_KEEP_OPS	 1024u

/* queue_batch_clear: forget all operations (and a pending -ENOMEM); keep the memory up to the
 * bounds above, release the rest. */
void queue_batch_clear(struct queue_batch *b)
{
	b->nops = 0;
	b->arena_len = 0;
	b->err = 0;
	if (b->arena_cap > BATCH_KEEP_ARENA) {
		free(b->arena);
		b->arena = NULL;
		b->arena_cap = 0;
	}
	if (b->ops_cap > BATCH_KEEP_OPS) {
		free(b->ops);
		b->ops = NULL;
		b->ops_cap = 0;
	}
}

/* queue_batch_mem: see queue.h. */
size_t queue_batch_mem(const struct queue_batch *b)
{
	return b->arena_cap + b->ops_cap * sizeof(*b->ops);
}

/* queue_batch_count: see queue.h. */
size_t queue_batch_count(const struct queue_batch *b)
{
	return b->nops;
}

/* Grow the arena to hold need more bytes. Returns 0 or -ENOMEM. */
static int arena_reserve(struct queue_batch *b, size_t need)
{
	size_t cap = b->arena_cap ? b->arena_cap : 4096;
	uint8_t *p;

	if (need <= b->arena_cap - b->arena_len)
		return 0;
	if (need > SIZE_MAX / 2 - b->arena_len)
		return -ENOMEM;
	while (cap - b->arena_len < need)
		cap *= 2;
	p = realloc(b->arena, cap);
	if (!p)
		return -ENOMEM;
	b->arena = p;
	b->arena_cap = cap;
	return 0;
}

/* Copy len bytes into the arena (space already reserved); returns the offset. */
static size_t arena_copy(struct queue_batch *b, const void *p, size_t len)
{
	size_t off = b->arena_len;

	if (len)
		memcpy(b->arena + off, p, len);
	b->arena_len += len;
	return off;
}

/* Reserve room for one op holding `bytes` of data; returns the op to fill, or NULL after
 * recording -ENOMEM in the batch. */
static struct queue_op *op_reserve(struct queue_batch *b, size_t bytes)
{
	if (b->err)
		return NULL;
	if (b->nops == b->ops_cap) {
		size_t cap = b->ops_cap ? b->ops_cap * 2 : 16;
		struct queue_op *ops = realloc(b->ops, cap * sizeof(*ops));

		if (!ops)
			goto nomem;
		b->ops = ops;
		b->ops_cap = cap;
	}
	if (arena_reserve(b, bytes) < 0)
		goto nomem;
	memset(&b->ops[b->nops], 0, sizeof(b->ops[0]));
	return &b->ops[b->nops++];
nomem:
	b->err = -ENOMEM;
	return NULL;
}

/* Reserve an op of `kind` for id holding `bytes` of copied data (sizes checked first); NULL
 * after recording -ENOMEM in the batch. */
static struct queue_op *op_new(struct queue_batch *b, enum queue_op_kind kind,
			       const struct queue_id *id, size_t bytes)
{
	struct queue_op *op;

	if (bytes > SIZE_MAX / 4) {
		b->err = -ENOMEM;
		return NULL;
	}
	op = op_reserve(b, bytes);
	if (op) {
		op->kind = kind;
		op->id = *id;
	}
	return op;
}

/* queue_batch_put: see queue.h. meta is copied, the body is referenced. On allocation failure
 * the batch remembers -ENOMEM and queue_write refuses it until queue_batch_clear. */
void queue_batch_put(struct queue_batch *b, const struct queue_id *id, const void *meta,
		     size_t meta_len, const void *body, size_t body_len)
{
	struct queue_op *op = op_new(b, QUEUE_OP_PUT, id, meta_len);

	if (!op)
		return;
	op->meta_len = meta_len;
	op->meta_off = arena_copy(b, meta, meta_len);
	op->body_len = body_len;
	op->body = body_len ? body : "";
}

/* queue_batch_meta: see queue.h. Same allocation-failure rule as queue_batch_put. */
void queue_batch_meta(struct queue_batch *b, const struct queue_id *id, const void *meta,
		      size_t meta_len)
{
	struct queue_op *op = op_new(b, QUEUE_OP_META, id, meta_len);

	if (!op)
		return;
	op->meta_len = meta_len;
	op->meta_off = arena_copy(b, meta, meta_len);
}

/* queue_batch_delete: see queue.h. */
void queue_batch_delete(struct queue_batch *b, const struct queue_id *id)
{
	op_new(b, QUEUE_OP_DELETE, id, 0);
}

/* queue_batch_sched_put: see queue.h. Same allocation-failure rule as queue_batch_put. */
void queue_batch_sched_put(struct queue_batch *b, uint64_t due_ms, const struct queue_id *id,
			   unsigned dest, const void *sval, size_t sval_len)
{
	struct queue_op *op;

	QUEUE_BUG_ON(dest > QUEUE_MAX_DESTS - 1);
	op = op_new(b, QUEUE_OP_SCHED_PUT, id, sval_len);
	if (!op)
		return;
	op->due_ms = due_ms;
	op->dest = (uint16_t)dest;
	op->sval_len = sval_len;
	op->sval_off = arena_copy(b, sval, sval_len);
}

/* queue_batch_sched_del: see queue.h. */
void queue_batch_sched_del(struct queue_batch *b, uint64_t due_ms, const struct queue_id *id,
			   unsigned dest)
{
	struct queue_op *op;

	QUEUE_BUG_ON(dest > QUEUE_MAX_DESTS - 1);
	op = op_new(b, QUEUE_OP_SCHED_DEL, id, 0);
	if (!op)
		return;
	op->due_ms = due_ms;
	op->dest = (uint16_t)dest;
}

/* ---- the store ---- */

/* queue_open: pick the backend from opts, open it, and hand back a queue the caller closes
 * with queue_close. Returns 0, -EINVAL (bad opts), -ENOMEM, or the backend's error (-EIO for
 * RocksDB), with a message in err. */
int queue_open(const struct queue_opts *opts, struct queue **out, char *err, size_t errlen)
{
	struct queue *q = NULL;
	int rc;

	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (!q) {
		rc = -ENOMEM;
		queue_errf(err, errlen, "queue_open: out of memory");
		goto out;
	}
	switch (opts->backend) {
	case QUEUE_BACKEND_ROCKSDB:
		q->ops = &queue_rocksdb_ops;
		break;
	case QUEUE_BACKEND_MEMORY:
		q->ops = &queue_mem_ops;
		break;
	default:
		rc = -EINVAL;
		queue_errf(err, errlen, "queue_open: unknown backend %d", (int)opts->backend);
		goto out;
	}
	rc = q->ops->open(opts, &q->state, err, errlen);
	if (rc < 0)
		goto out;
	pthread_rwlock_init(&q->lock, NULL);
	pthread_mutex_init(&q->snap_lock, NULL);
	*out = q;
	q = NULL;
out:
	free(q);
	return rc;
}

/* queue_close: close the backend and free q. NULL is fine. */
void queue_close(struct queue *q)
{
	if (!q)
		return;
	queue_snaps_release(q); /* a view still held is a caller's bug: it scans as -EIO */
	q->ops->close(q->state);
	pthread_rwlock_destroy(&q->lock);
	pthread_mutex_destroy(&q->snap_lock);
	free(q);
}

/* queue_write: apply b atomically (see queue.h). An empty batch is a no-op returning 0.
 * Returns 0, -ENOMEM when building b ran out of memory, or -EIO, with a message in err. */
int queue_write(struct queue *q, struct queue_batch *b, bool sync, char *err, size_t errlen)
{
	int rc;

	if (b->err) {
		queue_errf(err, errlen, "queue_write: batch incomplete (out of memory)");
		return b->err;
	}
	if (b->nops == 0)
		return 0;
	pthread_rwlock_rdlock(&q->lock);
	rc = q->ops->write(q->state, b, sync, err, errlen);
	pthread_rwlock_unlock(&q->lock);
	return rc;
}

/* queue_get: see queue.h. -ENOENT when any requested part (or, with meta and body both NULL,
 * the meta record) is missing; nothing is allocated then. Zero-length values come back as a
 * non-NULL buffer of length 0. */
int queue_get(struct queue *q, const struct queue_id *id, void **meta, size_t *meta_len,
	      void **body, size_t *body_len)
{
	int rc;

	if (meta)
		*meta = NULL;
	if (body)
		*body = NULL;
	pthread_rwlock_rdlock(&q->lock);
	rc = q->ops->get(q->state, id, meta, meta_len, body, body_len);
	pthread_rwlock_unlock(&q->lock);
	return rc;
}

/* queue_scan: see queue.h. An empty range (from_ms > until_ms) calls nothing. A negative
 * return from cb stops the scan and is returned as is. */
int queue_scan(struct queue *q, uint64_t from_ms, uint64_t until_ms, queue_scan_cb cb, void *arg)
{
	int rc;

	if (from_ms > until_ms)
		return 0;
	pthread_rwlock_rdlock(&q->lock);
	rc = q->ops->scan(q->state, from_ms, until_ms, cb, arg);
	pthread_rwlock_unlock(&q->lock);
	return rc;
}

/* queue_scan_meta: see queue.h. The queue lock is held shared for the whole scan (a slow
 * callback delays queue_recover, not other calls): a caller that pauses for I/O should stop
 * the scan and resume it from the next id. */
int queue_scan_meta(struct queue *q, const struct queue_id *from, queue_meta_cb cb, void *arg)
{
	int rc;

	pthread_rwlock_rdlock(&q->lock);
	rc = q->ops->scan_meta(q->state, from, cb, arg);
	pthread_rwlock_unlock(&q->lock);
	return rc;
}

/* queue_count: see queue.h. */
int queue_count(struct queue *q, uint64_t *out)
{
	int rc;

	*out = 0;
	pthread_rwlock_rdlock(&q->lock);
	rc = q->ops->count(q->state, out);
	pthread_rwlock_unlock(&q->lock);
	return rc;
}

/* queue_recover: see queue.h. Waits until no other call is inside the backend. */
/* queue_snap_new: see queue.h. */
struct queue_snap *queue_snap_new(struct queue *q)
{
	struct queue_snap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_rwlock_rdlock(&q->lock);
	s->b = q->ops->snap_new(q->state);
	if (s->b) {
		pthread_mutex_lock(&q->snap_lock);
		s->next = q->snaps;
		q->snaps = s;
		pthread_mutex_unlock(&q->snap_lock);
	}
	pthread_rwlock_unlock(&q->lock);
	if (!s->b) {
		free(s);
		return NULL;
	}
	return s;
}

/* queue_snap_free: see queue.h. */
void queue_snap_free(struct queue *q, struct queue_snap *s)
{
	struct queue_snap **pp;

	if (!s)
		return;
	pthread_rwlock_rdlock(&q->lock);
	pthread_mutex_lock(&q->snap_lock);
	for (pp = &q->snaps; *pp && *pp != s; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = s->next;
	pthread_mutex_unlock(&q->snap_lock);
	if (s->b)
		q->ops->snap_free(q->state, s->b);
	pthread_rwlock_unlock(&q->lock);
	free(s);
}

/* queue_scan_snap: see queue.h. A view released by queue_recover scans as -EIO. */
int queue_scan_snap(struct queue *q, const struct queue_snap *s, uint64_t from_ms,
		    uint64_t until_ms, queue_scan_cb cb, void *arg)
{
	int rc;

	if (from_ms > until_ms)
		return 0;
	pthread_rwlock_rdlock(&q->lock);
	rc = s->b ? q->ops->scan_snap(q->state, s->b, from_ms, until_ms, cb, arg) : -EIO;
	pthread_rwlock_unlock(&q->lock);
	return rc;
}

/* Before a reopen: views of the old store die with it. Write lock held. */
static void queue_snaps_release(struct queue *q)
{
	for (struct queue_snap *s = q->snaps; s; s = s->next) {
		q->ops->snap_free(q->state, s->b);
		s->b = NULL;
	}
	q->snaps = NULL;
}

int queue_recover(struct queue *q, char *err, size_t errlen)
{
	int rc = 0;

	if (!q->ops->recover)
		return 0;
	pthread_rwlock_wrlock(&q->lock);
	queue_snaps_release(q);
	rc = q->ops->recover(q->state, err, errlen);
	pthread_rwlock_unlock(&q->lock);
	return rc;
}
