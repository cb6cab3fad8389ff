/* queue_mem.c — in-memory queue backend for unit tests (the queue_ram of OpenSMTPD).
 *
 * Why: engine tests want a queue with exactly the RocksDB backend's semantics (atomic batches
 * applied in order, sorted sched keys, snapshot scans) without a disk. Each column family is a
 * sorted array searched by bisection: O(n) inserts are fine at test sizes and the code stays
 * obviously correct. Atomicity: every allocation a batch needs is made before the first change,
 * so a batch either applies fully or (on -ENOMEM) not at all. One mutex serialises everything;
 * scans copy the matching entries under it and call back without it, so a callback may use the
 * queue (as with RocksDB, it then does not see its own changes in this scan). Nothing persists.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "queue/queue.h"
#include "queue/queue_types.h"

enum { CF_META, CF_BODY, CF_SCHED, CF_COUNT };

struct mem_ent {
	uint8_t key[QUEUE_SCHED_KEY_LEN];
	uint8_t *val; /* malloc'ed, never NULL */
	size_t vlen;
};

struct mem_map {
	struct mem_ent *e;
	size_t n, cap;
	size_t klen;
};

struct mem_q {
	pthread_mutex_t lock;
	struct mem_map cf[CF_COUNT];
	const int *fail_writes; /* see queue_opts */
};

/* ---- sorted map ---- */

/* Index of the first entry with key >= key (n if none). */
static size_t map_lower(const struct mem_map *m, const uint8_t *key)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(m->e[mid].key, key, m->klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct mem_ent *map_find(const struct mem_map *m, const uint8_t *key)
{
	size_t i = map_lower(m, key);

	if (i < m->n && memcmp(m->e[i].key, key, m->klen) == 0)
		return &m->e[i];
	return NULL;
}

/* Make room for extra more entries. Returns 0 or -ENOMEM. */
static int map_reserve(struct mem_map *m, size_t extra)
{
	size_t cap = m->cap ? m->cap : 64;
	struct mem_ent *e;

	if (extra <= m->cap - m->n)
		return 0;
	while (cap - m->n < extra)
		cap *= 2;
	e = realloc(m->e, cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	m->e = e;
	m->cap = cap;
	return 0;
}

/* Insert or replace key -> val (takes ownership of val). Capacity must be reserved. */
static void map_put(struct mem_map *m, const uint8_t *key, uint8_t *val, size_t vlen)
{
	size_t i = map_lower(m, key);
	struct mem_ent *e;

	if (i < m->n && memcmp(m->e[i].key, key, m->klen) == 0) {
		free(m->e[i].val);
	} else {
		QUEUE_BUG_ON(m->n == m->cap);
		memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof(*e));
		m->n++;
	}
	e = &m->e[i];
	memcpy(e->key, key, m->klen);
	e->val = val;
	e->vlen = vlen;
}

static void map_del(struct mem_map *m, const uint8_t *key)
{
	struct mem_ent *e = map_find(m, key);

	if (!e)
		return;
	free(e->val);
	memmove(e, e + 1, (size_t)(&m->e[m->n] - (e + 1)) * sizeof(*e));
	m->n--;
}

static void map_free(struct mem_map *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->e[i].val);
	free(m->e);
}

/* A malloc'ed copy of len bytes (at least 1 byte allocated), or NULL. */
static uint8_t *dup_bytes(const void *p, size_t len)
{
	uint8_t *d = malloc(len ? len : 1);

	if (d && len)
		memcpy(d, p, len);
	return d;
}

/* ---- backend ops ---- */

static int mem_open(const struct queue_opts *opts, void **state, char *err, size_t errlen)
{
	struct mem_q *m = calloc(1, sizeof(*m));

	if (!m) {
		queue_errf(err, errlen, "queue memory backend: out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	m->fail_writes = opts->fail_writes;
	m->cf[CF_META].klen = QUEUE_ID_LEN;
	m->cf[CF_BODY].klen = QUEUE_ID_LEN;
	m->cf[CF_SCHED].klen = QUEUE_SCHED_KEY_LEN;
	*state = m;
	return 0;
}

static void mem_close(void *state)
{
	struct mem_q *m = state;

	if (!m)
		return;
	for (int i = 0; i < CF_COUNT; i++)
		map_free(&m->cf[i]);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* The column family an op stores into or deletes from (DELETE: meta, and body too). */
static int mem_op_cf(const struct queue_op *op)
{
	return op->kind == QUEUE_OP_SCHED_PUT || op->kind == QUEUE_OP_SCHED_DEL ? CF_SCHED
										: CF_META;
}

/* Phase 1 of a write: copy every value the batch stores (3 slots per op: meta, body, sval)
 * and reserve map capacity. Returns 0 or -ENOMEM (nothing changed, vals freed by caller). */
static int mem_prepare(struct mem_q *m, const struct queue_batch *b, uint8_t **vals)
{
	size_t nput[CF_COUNT] = {0};

	for (size_t i = 0; i < b->nops; i++) {
		const struct queue_op *op = &b->ops[i];
		uint8_t **v = &vals[3 * i];

		if (op->kind == QUEUE_OP_DELETE || op->kind == QUEUE_OP_SCHED_DEL)
			continue;
		if (op->kind == QUEUE_OP_SCHED_PUT)
			v[2] = dup_bytes(queue_batch_at(b, op->sval_off), op->sval_len);
		else
			v[0] = dup_bytes(queue_batch_at(b, op->meta_off), op->meta_len);
		if (op->kind == QUEUE_OP_PUT)
			v[1] = dup_bytes(op->body, op->body_len);
		if (!(v[0] || v[2]) || (op->kind == QUEUE_OP_PUT && !v[1]))
			return -ENOMEM;
		nput[mem_op_cf(op)]++;
		nput[CF_BODY] += op->kind == QUEUE_OP_PUT;
	}
	for (int c = 0; c < CF_COUNT; c++)
		if (map_reserve(&m->cf[c], nput[c]) < 0)
			return -ENOMEM;
	return 0;
}

/* Phase 2: apply one op; cannot fail. Takes ownership of the vals it stores. */
static void mem_apply(struct mem_q *m, const struct queue_op *op, uint8_t **v)
{
	uint8_t skey[QUEUE_SCHED_KEY_LEN];

	switch (op->kind) {
	case QUEUE_OP_PUT:
		map_put(&m->cf[CF_BODY], op->id.b, v[1], op->body_len);
		/* fall through */
	case QUEUE_OP_META:
		map_put(&m->cf[CF_META], op->id.b, v[0], op->meta_len);
		break;
	case QUEUE_OP_DELETE:
		map_del(&m->cf[CF_META], op->id.b);
		map_del(&m->cf[CF_BODY], op->id.b);
		break;
	case QUEUE_OP_SCHED_PUT:
		queue_sched_key(skey, op->due_ms, &op->id, op->dest);
		map_put(&m->cf[CF_SCHED], skey, v[2], op->sval_len);
		break;
	case QUEUE_OP_SCHED_DEL:
		queue_sched_key(skey, op->due_ms, &op->id, op->dest);
		map_del(&m->cf[CF_SCHED], skey);
		break;
	}
}

static int mem_write(void *state, const struct queue_batch *b, bool sync, char *err, size_t errlen)
{
	struct mem_q *m = state;
	uint8_t **vals;
	int rc = -ENOMEM;

	rc = m->fail_writes ? __atomic_load_n(m->fail_writes, __ATOMIC_RELAXED) : 0;
	if (rc < 0) {
		queue_errf(err, errlen, "queue memory backend: injected failure %d", rc);
		return rc;
	}
	vals = calloc(b->nops * 3, sizeof(*vals));
	if (!vals)
		goto out;
	pthread_mutex_lock(&m->lock);
	rc = mem_prepare(m, b, vals);
	if (rc == 0)
		for (size_t i = 0; i < b->nops; i++)
			mem_apply(m, &b->ops[i], &vals[3 * i]);
	pthread_mutex_unlock(&m->lock);
	if (rc < 0)
		for (size_t i = 0; i < b->nops * 3; i++)
			free(vals[i]);
out:
	if (rc < 0)
		queue_errf(err, errlen, "queue memory backend: out of memory");
	free(vals);
	return rc;
}

/* Copy the value of key in map c to *out / *len (when out is non-NULL). */
static int mem_get_one(struct mem_q *m, int c, const struct queue_id *id, void **out, size_t *len)
{
	const struct mem_ent *e = map_find(&m->cf[c], id->b);

	if (!e)
		return -ENOENT;
	if (!out)
		return 0;
	*out = dup_bytes(e->val, e->vlen);
	if (!*out)
		return -ENOMEM;
	if (len)
		*len = e->vlen;
	return 0;
}

static int mem_get(void *state, const struct queue_id *id, void **meta, size_t *meta_len,
		   void **body, size_t *body_len)
{
	struct mem_q *m = state;
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (meta || !body)
		rc = mem_get_one(m, CF_META, id, meta, meta_len);
	if (rc == 0 && body)
		rc = mem_get_one(m, CF_BODY, id, body, body_len);
	pthread_mutex_unlock(&m->lock);
	if (rc < 0 && meta) {
		free(*meta);
		*meta = NULL;
	}
	return rc;
}

/* Snapshot of the sched entries in [from_ms, until_ms], copied under the lock. */
static int mem_snapshot(struct mem_q *m, uint64_t from_ms, uint64_t until_ms, struct mem_ent **out,
			size_t *n)
{
	const struct mem_map *s = &m->cf[CF_SCHED];
	uint8_t lo[QUEUE_SCHED_KEY_LEN] = {0};
	size_t first, last;

	queue_be64_put(lo, from_ms);
	first = map_lower(s, lo);
	for (last = first; last < s->n; last++)
		if (queue_be64_get(s->e[last].key) > until_ms)
			break;
	*n = last - first;
	*out = calloc(*n ? *n : 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < *n; i++) {
		(*out)[i] = s->e[first + i];
		(*out)[i].val = dup_bytes(s->e[first + i].val, s->e[first + i].vlen);
		if (!(*out)[i].val)
			return -ENOMEM;
	}
	return 0;
}

/* Call cb for the copied entries e[0..n) whose due is in [from_ms, until_ms], in order.
 * Returns 0 (also when cb stopped it with > 0) or cb's negative value. */
static int mem_ents_scan(const struct mem_ent *e, size_t n, uint64_t from_ms, uint64_t until_ms,
			 queue_scan_cb cb, void *arg)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t due;
		struct queue_id id;
		unsigned dest;
		int r;

		queue_sched_key_split(e[i].key, &due, &id, &dest);
		if (due < from_ms || due > until_ms)
			continue;
		r = cb(arg, due, &id, dest, e[i].val, e[i].vlen);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	return 0;
}

static int mem_scan(void *state, uint64_t from_ms, uint64_t until_ms, queue_scan_cb cb, void *arg)
{
	struct mem_q *m = state;
	struct mem_ent *snap = NULL;
	size_t n = 0;
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = mem_snapshot(m, from_ms, until_ms, &snap, &n);
	pthread_mutex_unlock(&m->lock);
	if (rc == 0)
		rc = mem_ents_scan(snap, n, from_ms, until_ms, cb, arg);
	for (size_t i = 0; snap && i < n; i++)
		free(snap[i].val);
	free(snap);
	return rc;
}

/* A read view: a copy of every sched entry. */
struct mem_view {
	struct mem_ent *e;
	size_t n;
};

static void mem_snap_free(void *state, void *snap)
{
	struct mem_view *v = snap;

	(void)state;
	for (size_t i = 0; v->e && i < v->n; i++)
		free(v->e[i].val);
	free(v->e);
	free(v);
}

static void *mem_snap_new(void *state)
{
	struct mem_q *m = state;
	struct mem_view *v = calloc(1, sizeof(*v));
	int rc;

	if (!v)
		return NULL;
	pthread_mutex_lock(&m->lock);
	rc = mem_snapshot(m, 0, UINT64_MAX, &v->e, &v->n);
	pthread_mutex_unlock(&m->lock);
	if (rc < 0) {
		mem_snap_free(state, v);
		return NULL;
	}
	return v;
}

static int mem_scan_snap(void *state, const void *snap, uint64_t from_ms, uint64_t until_ms,
			 queue_scan_cb cb, void *arg)
{
	const struct mem_view *v = snap;

	(void)state;
	return mem_ents_scan(v->e, v->n, from_ms, until_ms, cb, arg);
}

/* Snapshot of the meta entries from key `from` on (NULL: all), copied under the lock. The
 * memory backend holds the whole queue in RAM anyway; the copy is what gives a callback the
 * RocksDB iterator's snapshot semantics. On -ENOMEM the entries copied so far are in *out. */
static int mem_meta_snapshot(struct mem_q *m, const struct queue_id *from, struct mem_ent **out,
			     size_t *n)
{
	const struct mem_map *mm = &m->cf[CF_META];
	size_t first = from ? map_lower(mm, from->b) : 0;

	*n = mm->n - first;
	*out = calloc(*n ? *n : 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < *n; i++) {
		(*out)[i] = mm->e[first + i];
		(*out)[i].val = dup_bytes(mm->e[first + i].val, mm->e[first + i].vlen);
		if (!(*out)[i].val)
			return -ENOMEM;
	}
	return 0;
}

static int mem_scan_meta(void *state, const struct queue_id *from, queue_meta_cb cb, void *arg)
{
	struct mem_q *m = state;
	struct mem_ent *snap = NULL;
	size_t n = 0;
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = mem_meta_snapshot(m, from, &snap, &n);
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct queue_id id;
		int r;

		memcpy(id.b, snap[i].key, QUEUE_ID_LEN);
		r = cb(arg, &id, snap[i].val, snap[i].vlen);
		if (r != 0)
			rc = r < 0 ? r : 1;
	}
	for (size_t i = 0; snap && i < n; i++)
		free(snap[i].val);
	free(snap);
	return rc > 0 ? 0 : rc;
}

static int mem_count(void *state, uint64_t *out)
{
	struct mem_q *m = state;

	pthread_mutex_lock(&m->lock);
	*out = m->cf[CF_META].n;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

const struct queue_backend_ops queue_mem_ops = {
    .name = "memory",
    .open = mem_open,
    .close = mem_close,
    .write = mem_write,
    .get = mem_get,
    .scan = mem_scan,
    .scan_meta = mem_scan_meta,
    .count = mem_count,
    .snap_new = mem_snap_new,
    .snap_free = mem_snap_free,
    .scan_snap = mem_scan_snap,
};
