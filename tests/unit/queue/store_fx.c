/* store_fx.c — the queue store tests' fixture and helpers (see store_fx.h).
 *
 * Why: test_queue_store.c and test_queue_sched.c share one fixture so every backend is held to
 * the same checks in both.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <ftw.h>
#include <string.h>
#include <cmocka.h>

#include "tests/unit/queue/store_fx.h"

int qfx_fail_writes;
struct qfx qfx_rocksdb = {.backend = QUEUE_BACKEND_ROCKSDB};
struct qfx qfx_memory = {.backend = QUEUE_BACKEND_MEMORY};
struct qfx qfx_memfail = {.backend = QUEUE_BACKEND_MEMORY, .fail_writes = &qfx_fail_writes};

static void fx_open(struct qfx *f, bool blob)
{
	struct queue_opts o = {.backend = f->backend,
			       .path = f->dir,
			       .write_buffer_size = 4 << 20,
			       .blob_bodies = blob,
			       .fail_writes = f->fail_writes};
	int rc = queue_open(&o, &f->q, f->err, sizeof(f->err));

	if (rc)
		fail_msg("queue_open: %d %s", rc, f->err);
}

/* qfx_setup: see store_fx.h. Returns 0, or -1 (temp dir or batch not created). */
int qfx_setup(void **state)
{
	struct qfx *f = *state;

	f->dir[0] = '\0';
	__atomic_store_n(&qfx_fail_writes, 0, __ATOMIC_RELAXED);
	if (f->backend == QUEUE_BACKEND_ROCKSDB) {
		snprintf(f->dir, sizeof(f->dir), "/tmp/riptide-qtest-XXXXXX");
		if (!mkdtemp(f->dir))
			return -1;
	}
	fx_open(f, false);
	f->b = queue_batch_new();
	return f->b ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* qfx_teardown: see store_fx.h. Returns 0. */
int qfx_teardown(void **state)
{
	struct qfx *f = *state;

	queue_batch_free(f->b);
	queue_close(f->q);
	f->b = NULL;
	f->q = NULL;
	if (f->dir[0])
		nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	__atomic_store_n(&qfx_fail_writes, 0, __ATOMIC_RELAXED);
	return 0;
}

/* qfx_reopen: see store_fx.h. */
void qfx_reopen(struct qfx *f, bool blob)
{
	queue_close(f->q);
	f->q = NULL;
	fx_open(f, blob);
}

/* qfx_id: see store_fx.h. */
struct queue_id qfx_id(uint64_t n)
{
	struct queue_id id;

	queue_id_make(&id, 1700000000000ull + n, (uint16_t)(n % 3), n);
	return id;
}

/* qfx_write: see store_fx.h. */
void qfx_write(struct qfx *f, bool sync)
{
	int rc = queue_write(f->q, f->b, sync, f->err, sizeof(f->err));

	if (rc)
		fail_msg("queue_write: %d %s", rc, f->err);
	queue_batch_clear(f->b);
}

/* Bodies are referenced by the batch until the write: keep them in a ring that outlives it. */
static char bodies[4096][64];

/* qfx_put: see store_fx.h. */
void qfx_put(struct qfx *f, uint64_t n, uint64_t due)
{
	char meta[32], *body = bodies[n % 4096], sval[16];
	struct queue_id id = qfx_id(n);

	snprintf(meta, sizeof(meta), "meta-%llu", (unsigned long long)n);
	snprintf(body, sizeof(bodies[0]), "body-%llu\r\n.\r\n", (unsigned long long)n);
	snprintf(sval, sizeof(sval), "s%llu", (unsigned long long)n);
	queue_batch_put(f->b, &id, meta, strlen(meta), body, strlen(body));
	queue_batch_sched_put(f->b, due, &id, 0, sval, strlen(sval));
}

/* qfx_del: see store_fx.h. */
void qfx_del(struct qfx *f, uint64_t n, uint64_t due)
{
	struct queue_id id = qfx_id(n);

	queue_batch_delete(f->b, &id);
	queue_batch_sched_del(f->b, due, &id, 0);
}

/* qfx_sched_put: see store_fx.h. */
void qfx_sched_put(struct qfx *f, uint64_t n, uint64_t due, unsigned dest, const char *sval)
{
	struct queue_id id = qfx_id(n);

	queue_batch_sched_put(f->b, due, &id, dest, sval, strlen(sval));
}

/* qfx_sched_del: see store_fx.h. */
void qfx_sched_del(struct qfx *f, uint64_t n, uint64_t due, unsigned dest)
{
	struct queue_id id = qfx_id(n);

	queue_batch_sched_del(f->b, due, &id, dest);
}

/* qfx_count: see store_fx.h. */
uint64_t qfx_count(struct qfx *f)
{
	uint64_t n = 12345;

	assert_int_equal(queue_count(f->q, &n), 0);
	return n;
}

/* qfx_assert_get: see store_fx.h. */
void qfx_assert_get(struct qfx *f, uint64_t n, const char *meta, const char *body)
{
	struct queue_id id = qfx_id(n);
	void *m = NULL, *b = NULL;
	size_t ml = 0, bl = 0;

	assert_int_equal(queue_get(f->q, &id, &m, &ml, &b, &bl), 0);
	assert_int_equal(ml, strlen(meta));
	assert_memory_equal(m, meta, ml);
	assert_int_equal(bl, strlen(body));
	assert_memory_equal(b, body, bl);
	free(m);
	free(b);
}

/* qfx_assert_absent: see store_fx.h. */
void qfx_assert_absent(struct qfx *f, uint64_t n)
{
	struct queue_id id = qfx_id(n);
	void *m = (void *)1, *b = (void *)1;
	size_t ml, bl;

	assert_int_equal(queue_get(f->q, &id, &m, &ml, &b, &bl), -ENOENT);
	assert_null(m);
	assert_null(b);
	assert_int_equal(queue_get(f->q, &id, NULL, NULL, NULL, NULL), -ENOENT);
}

/* qfx_collect: see store_fx.h. Returns 0, or s->ret after s->stop_after entries. */
int qfx_collect(void *arg, uint64_t due, const struct queue_id *id, unsigned dest, const void *sval,
		size_t sval_len)
{
	struct qfx_seen *s = arg;

	assert_true(s->n < 64);
	assert_true(sval_len < 16);
	s->due[s->n] = due;
	s->id[s->n] = *id;
	s->dest[s->n] = dest;
	memcpy(s->sval[s->n], sval, sval_len);
	s->sval[s->n][sval_len] = '\0';
	s->n++;
	if (s->stop_after && s->n == s->stop_after)
		return s->ret;
	return 0;
}

/* qfx_scan: see store_fx.h. */
struct qfx_seen qfx_scan(struct qfx *f, uint64_t from, uint64_t until)
{
	struct qfx_seen s = {0};

	assert_int_equal(queue_scan(f->q, from, until, qfx_collect, &s), 0);
	return s;
}

/* qfx_assert_scan: see store_fx.h. */
void qfx_assert_scan(struct qfx *f, uint64_t from, uint64_t until, const struct qfx_want *w,
		     size_t nw)
{
	struct qfx_seen s = qfx_scan(f, from, until);

	assert_int_equal(s.n, nw);
	for (size_t i = 0; i < nw; i++) {
		struct queue_id id = qfx_id(w[i].n);

		assert_int_equal(s.due[i], w[i].due);
		assert_memory_equal(s.id[i].b, id.b, QUEUE_ID_LEN);
		assert_int_equal(s.dest[i], w[i].dest);
		assert_string_equal(s.sval[i], w[i].sval);
	}
}
