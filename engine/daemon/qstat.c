/* qstat — queue counters (see qstat.h).
 *
 * A chained hash of destinations under one mutex (written by the commit thread once per
 * written entry, read by the control thread now and then); the totals are atomics the shards
 * read for every injected message. Counts are signed: while the rebuild runs, a change to an
 * entry of the snapshot may arrive before the rebuild has counted that entry.
 */
#include "engine/daemon/qstat.h"
#include "engine/daemon/msg.h"
#include "engine/route/route.h"
#include "engine/util/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define QS_MINUTE 60000ull

struct qs_bucket {
	uint64_t minute;
	int64_t count;
	uint64_t min_ms; /* the earliest time added to it (exact while that entry is there) */
};

/* Counts per minute, sorted by minute; empty buckets are removed. */
struct qs_hist {
	struct qs_bucket *b;
	unsigned n, cap;
};

struct qs_dest {
	struct qs_dest *next;
	int64_t messages, recipients, bytes;
	struct qs_hist created, due;
	char name[];
};

struct qstat {
	pthread_mutex_t lock;
	struct qs_dest **tab;
	unsigned ntab, ndest;
	atomic_int_fast64_t messages, recipients, bytes;
	atomic_bool counting, stop;
	bool started;
	pthread_t th;
	struct queue *q;
	struct queue_snap *snap;
};

struct qstat *qstat_new(void)
{
	struct qstat *s = util_xcalloc(1, sizeof(*s));

	pthread_mutex_init(&s->lock, NULL);
	s->ntab = 256;
	s->tab = util_xcalloc(s->ntab, sizeof(*s->tab));
	return s;
}

static void qs_dest_free(struct qs_dest *d)
{
	free(d->created.b);
	free(d->due.b);
	free(d);
}

void qstat_free(struct qstat *s)
{
	if (!s)
		return;
	qstat_join(s);
	for (unsigned i = 0; i < s->ntab; i++)
		for (struct qs_dest *d = s->tab[i], *next; d; d = next) {
			next = d->next;
			qs_dest_free(d);
		}
	free(s->tab);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- per-minute histograms ---- */

/* Index of the first bucket with minute >= m. */
static unsigned qs_find(const struct qs_hist *h, uint64_t m)
{
	unsigned lo = 0, hi = h->n;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (h->b[mid].minute < m)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void qs_hist_add(struct qs_hist *h, uint64_t ms, int sign)
{
	uint64_t m = ms / QS_MINUTE;
	unsigned i = qs_find(h, m);

	if (i < h->n && h->b[i].minute == m) {
		if (sign > 0 && ms < h->b[i].min_ms)
			h->b[i].min_ms = ms;
		if ((h->b[i].count += sign) == 0) {
			memmove(&h->b[i], &h->b[i + 1], (h->n - i - 1) * sizeof(h->b[0]));
			h->n--;
		}
		return;
	}
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 4;
		h->b = util_xrealloc(h->b, h->cap * sizeof(h->b[0]));
	}
	memmove(&h->b[i + 1], &h->b[i], (h->n - i) * sizeof(h->b[0]));
	h->b[i] = (struct qs_bucket){m, sign, ms};
	h->n++;
}

/* The earliest time of the first minute with a positive count (0 if none). */
static uint64_t qs_hist_first(const struct qs_hist *h)
{
	for (unsigned i = 0; i < h->n; i++)
		if (h->b[i].count > 0)
			return h->b[i].min_ms;
	return 0;
}

/* ---- destinations ---- */

static void qs_grow(struct qstat *s)
{
	unsigned n = s->ntab * 2;
	struct qs_dest **t = util_xcalloc(n, sizeof(*t));

	for (unsigned i = 0; i < s->ntab; i++)
		for (struct qs_dest *d = s->tab[i], *next; d; d = next) {
			unsigned k = route_name_hash(d->name) & (n - 1);
			next = d->next;
			d->next = t[k];
			t[k] = d;
		}
	free(s->tab);
	s->tab = t;
	s->ntab = n;
}

/* The destination's slot (case-insensitive name), created if missing. Lock held. */
static struct qs_dest **qs_slot(struct qstat *s, const char *name)
{
	struct qs_dest **pp = &s->tab[route_name_hash(name) & (s->ntab - 1)];
	struct qs_dest *d;

	for (; *pp; pp = &(*pp)->next)
		if (strcasecmp((*pp)->name, name) == 0)
			return pp;
	if (s->ndest >= s->ntab) {
		qs_grow(s);
		return qs_slot(s, name);
	}
	d = util_xcalloc(1, sizeof(*d) + strlen(name) + 1);
	strcpy(d->name, name);
	*pp = d;
	s->ndest++;
	return pp;
}

static bool qs_empty(const struct qs_dest *d)
{
	return d->messages == 0 && d->recipients == 0 && d->bytes == 0 && d->created.n == 0 &&
	       d->due.n == 0;
}

void qstat_entry(struct qstat *s, const struct qstat_entry *e, int sign)
{
	struct qs_dest **pp, *d;

	if (e->primary) {
		atomic_fetch_add(&s->messages, sign);
		atomic_fetch_add(&s->bytes, sign * (int64_t)e->bytes);
	}
	atomic_fetch_add(&s->recipients, sign * (int64_t)e->pending);
	pthread_mutex_lock(&s->lock);
	pp = qs_slot(s, e->dest);
	d = *pp;
	d->messages += sign;
	d->recipients += sign * (int64_t)e->pending;
	d->bytes += sign * (int64_t)e->bytes;
	qs_hist_add(&d->created, e->created_ms, sign);
	qs_hist_add(&d->due, e->due_ms, sign);
	if (qs_empty(d)) {
		*pp = d->next;
		s->ndest--;
		qs_dest_free(d);
	}
	pthread_mutex_unlock(&s->lock);
}

static uint64_t qs_pos(int64_t v)
{
	return v > 0 ? (uint64_t)v : 0;
}

void qstat_totals(const struct qstat *s, uint64_t *messages, uint64_t *recipients, uint64_t *bytes)
{
	if (messages)
		*messages = qs_pos(atomic_load(&s->messages));
	if (recipients)
		*recipients = qs_pos(atomic_load(&s->recipients));
	if (bytes)
		*bytes = qs_pos(atomic_load(&s->bytes));
}

bool qstat_counting(const struct qstat *s)
{
	return atomic_load(&s->counting);
}

void qstat_each(struct qstat *s, int (*fn)(void *arg, const struct qstat_dest *d), void *arg)
{
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->ntab; i++)
		for (struct qs_dest *d = s->tab[i]; d; d = d->next) {
			struct qstat_dest v = {
			    d->name,	      qs_pos(d->messages),	  qs_pos(d->recipients),
			    qs_pos(d->bytes), qs_hist_first(&d->created), qs_hist_first(&d->due)};
			if (v.messages && fn(arg, &v)) {
				pthread_mutex_unlock(&s->lock);
				return;
			}
		}
	pthread_mutex_unlock(&s->lock);
}

/* ---- the rebuild after start-up ---- */

/* An entry written before #5 (attempts + name only): its counts from the stored envelope
 * (read now, not from the snapshot: such entries exist only in the first start after an
 * upgrade). */
static void qs_old_entry(struct qstat *s, const struct queue_id *id, unsigned group,
			 struct qstat_entry *e)
{
	struct queue_env *env = NULL;
	void *meta = NULL;
	size_t len = 0;
	unsigned prim = UINT32_MAX;

	e->created_ms = queue_id_ms(id);
	if (queue_get(s->q, id, &meta, &len, NULL, NULL) < 0 ||
	    queue_env_decode(meta, len, &env) < 0 || group >= env->ndest) {
		free(meta);
		queue_env_free(env);
		return;
	}
	for (uint32_t i = 0; i < env->nrcpt; i++)
		e->pending +=
		    env->rcpts[i].dest == group && env->rcpts[i].state == QUEUE_RCPT_PENDING;
	for (uint32_t g = 0; g < env->ndest && prim == UINT32_MAX; g++)
		prim = env->dests[g].due ? g : prim;
	e->primary = prim == group;
	e->bytes = env->body_len;
	e->created_ms = env->created_ms;
	free(meta);
	queue_env_free(env);
}

static int qs_rebuild_entry(void *arg, uint64_t due, const struct queue_id *id, unsigned group,
			    const void *sval, size_t len)
{
	struct qstat *s = arg;
	char name[ROUTE_NAME_MAX];
	struct msg_sval v;
	struct qstat_entry e;

	if (atomic_load(&s->stop))
		return 1;
	msg_sval_parse(sval, len, &v, name, sizeof(name));
	e = (struct qstat_entry){.dest = name,
				 .pending = v.pending,
				 .bytes = v.bytes,
				 .created_ms = v.created_ms,
				 .due_ms = due,
				 .primary = v.primary};
	if (v.old)
		qs_old_entry(s, id, group, &e);
	qstat_entry(s, &e, +1);
	return 0;
}

static void *qs_rebuild_main(void *arg)
{
	struct qstat *s = arg;

	queue_scan_snap(s->q, s->snap, 0, UINT64_MAX, qs_rebuild_entry, s);
	queue_snap_free(s->q, s->snap);
	s->snap = NULL;
	atomic_store(&s->counting, false);
	return NULL;
}

int qstat_rebuild(struct qstat *s, struct queue *q, struct queue_snap *snap)
{
	int ret;

	s->q = q;
	s->snap = snap;
	atomic_store(&s->counting, true);
	ret = -pthread_create(&s->th, NULL, qs_rebuild_main, s);
	if (ret < 0) {
		queue_snap_free(q, snap);
		atomic_store(&s->counting, false);
		return ret;
	}
	pthread_setname_np(s->th, "rt-qstat");
	s->started = true;
	return 0;
}

void qstat_join(struct qstat *s)
{
	if (!s->started)
		return;
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	s->started = false;
}
