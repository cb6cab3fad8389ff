/* test_queue_store — put/meta/delete/sched_put/sched_del/get/scan/count with one sched entry
 * per message, the same table against every backend, plus RocksDB-only recovery and
 * open-error tests.
 *
 * Why: the in-memory backend stands in for RocksDB in engine tests, so both must agree on
 * every observable behaviour; running one table over both is what keeps them honest. The
 * RocksDB runs use a mkdtemp directory removed in teardown (store_fx.c). Several sched entries
 * per message (destination groups) are tested in test_queue_sched.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <cmocka.h>

#include "queue/queue.h"
#include "tests/unit/queue/store_fx.h"

/* ---- the table ---- */

static void test_put_get(void **state)
{
	struct qfx *f = *state;
	struct queue_id id = qfx_id(1);
	void *m = NULL;
	size_t ml = 0;

	struct qfx_seen s;

	qfx_put(f, 1, 500);
	assert_int_equal(queue_batch_count(f->b), 2);
	qfx_write(f, true);
	qfx_assert_get(f, 1, "meta-1", "body-1\r\n.\r\n");
	/* parts on their own */
	assert_int_equal(queue_get(f->q, &id, &m, &ml, NULL, NULL), 0);
	assert_memory_equal(m, "meta-1", ml);
	free(m);
	assert_int_equal(queue_get(f->q, &id, NULL, NULL, &m, &ml), 0);
	assert_memory_equal(m, "body-1\r\n.\r\n", ml);
	free(m);
	assert_int_equal(queue_get(f->q, &id, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(qfx_count(f), 1);
	qfx_assert_absent(f, 2);
	s = qfx_scan(f, 0, UINT64_MAX);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.due[0], 500);
	assert_memory_equal(s.id[0].b, id.b, QUEUE_ID_LEN);
	assert_int_equal(s.dest[0], 0);
	assert_string_equal(s.sval[0], "s1");
}

static void test_empty_values(void **state)
{
	struct qfx *f = *state;
	struct queue_id id = qfx_id(9);
	void *m = NULL, *b = NULL;
	size_t ml = 7, bl = 7;
	struct qfx_seen s;

	queue_batch_put(f->b, &id, "", 0, "", 0);
	queue_batch_sched_put(f->b, 10, &id, 0, "", 0);
	qfx_write(f, false);
	assert_int_equal(queue_get(f->q, &id, &m, &ml, &b, &bl), 0);
	assert_non_null(m);
	assert_non_null(b);
	assert_int_equal(ml, 0);
	assert_int_equal(bl, 0);
	free(m);
	free(b);
	s = qfx_scan(f, 0, UINT64_MAX);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.sval[0], "");
}

static void test_large_body(void **state)
{
	struct qfx *f = *state;
	size_t n = 3u << 20;
	uint8_t *big = malloc(n);
	struct queue_id id = qfx_id(77);
	void *b = NULL;
	size_t bl = 0;

	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 31 + (i >> 8));
	queue_batch_put(f->b, &id, "m", 1, big, n);
	assert_true(queue_batch_mem(f->b) < 64 * 1024); /* the body is referenced, not copied */
	qfx_write(f, true);
	assert_int_equal(queue_get(f->q, &id, NULL, NULL, &b, &bl), 0);
	assert_int_equal(bl, n);
	assert_memory_equal(b, big, n);
	free(b);
	free(big);
}

static void test_delete(void **state)
{
	struct qfx *f = *state;

	qfx_put(f, 3, 100);
	qfx_put(f, 4, 100);
	qfx_write(f, true);
	qfx_del(f, 3, 100);
	qfx_write(f, false);
	qfx_assert_absent(f, 3);
	qfx_assert_get(f, 4, "meta-4", "body-4\r\n.\r\n");
	assert_int_equal(qfx_count(f), 1);
	assert_int_equal(qfx_scan(f, 0, UINT64_MAX).n, 1);
	/* deleting what is not there is not an error */
	qfx_del(f, 3, 100);
	qfx_write(f, false);
	assert_int_equal(qfx_count(f), 1);
}

/* A retry as the engine writes it: meta rewritten, the group's sched entry moved from its old
 * due to the new one. */
static void test_reschedule(void **state)
{
	struct qfx *f = *state;
	struct queue_id id = qfx_id(5);
	struct qfx_seen s;

	qfx_put(f, 5, 1000);
	qfx_write(f, true);
	queue_batch_meta(f->b, &id, "meta-5-v2", 9);
	queue_batch_sched_del(f->b, 1000, &id, 0);
	queue_batch_sched_put(f->b, 61000, &id, 0, "retry1", 6);
	qfx_write(f, true);
	qfx_assert_get(f, 5, "meta-5-v2", "body-5\r\n.\r\n");
	assert_int_equal(qfx_count(f), 1);
	assert_int_equal(qfx_scan(f, 0, 60999).n, 0); /* old key gone */
	s = qfx_scan(f, 61000, 61000);		      /* new key present */
	assert_int_equal(s.n, 1);
	assert_int_equal(s.due[0], 61000);
	assert_memory_equal(s.id[0].b, id.b, QUEUE_ID_LEN);
	assert_int_equal(s.dest[0], 0);
	assert_string_equal(s.sval[0], "retry1");
	/* the same key put again: the value is replaced, not doubled */
	queue_batch_meta(f->b, &id, "meta-5-v3", 9);
	queue_batch_sched_put(f->b, 61000, &id, 0, "retry2", 6);
	qfx_write(f, false);
	s = qfx_scan(f, 0, UINT64_MAX);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.sval[0], "retry2");
	qfx_assert_get(f, 5, "meta-5-v3", "body-5\r\n.\r\n");
	qfx_del(f, 5, 61000);
	qfx_write(f, false);
	assert_int_equal(qfx_count(f), 0);
	assert_int_equal(qfx_scan(f, 0, UINT64_MAX).n, 0);
	qfx_assert_absent(f, 5);
}

static void test_batch_atomic_mix(void **state)
{
	struct qfx *f = *state;
	struct queue_id id1 = qfx_id(1);

	for (uint64_t n = 1; n <= 5; n++)
		qfx_put(f, n, n * 10);
	queue_batch_delete(f->b, &id1); /* put and delete of one id in one batch */
	queue_batch_sched_del(f->b, 10, &id1, 0);
	assert_int_equal(queue_batch_count(f->b), 12);
	qfx_write(f, true);
	assert_int_equal(queue_batch_count(f->b), 0);
	qfx_assert_absent(f, 1);
	assert_int_equal(qfx_count(f), 4);
	assert_int_equal(qfx_scan(f, 0, UINT64_MAX).n, 4);
	assert_int_equal(qfx_scan(f, 10, 10).n, 0);
	/* an empty batch is a no-op */
	qfx_write(f, true);
	assert_int_equal(qfx_count(f), 4);
}

/* queue_write leaves the batch as it was: writing it twice is idempotent. */
static void test_batch_unchanged_by_write(void **state)
{
	struct qfx *f = *state;

	qfx_put(f, 8, 80);
	assert_int_equal(queue_write(f->q, f->b, false, f->err, sizeof(f->err)), 0);
	assert_int_equal(queue_batch_count(f->b), 2);
	assert_int_equal(queue_write(f->q, f->b, false, f->err, sizeof(f->err)), 0);
	assert_int_equal(qfx_count(f), 1);
	assert_int_equal(qfx_scan(f, 0, UINT64_MAX).n, 1);
	queue_batch_clear(f->b);
}

static void test_scan_order(void **state)
{
	struct qfx *f = *state;
	/* (n, due) inserted out of order; equal dues sort by id */
	static const uint64_t ins[][2] = {{7, 300}, {2, 100}, {9, 200}, {1, 300},
					  {4, 100}, {3, 0},   {8, 50}};
	static const uint64_t want[] = {3, 8, 2, 4, 9, 1, 7};
	struct qfx_seen s;

	for (size_t i = 0; i < 7; i++) {
		qfx_put(f, ins[i][0], ins[i][1]);
		qfx_write(f, i % 2 == 0);
	}
	s = qfx_scan(f, 0, UINT64_MAX);
	assert_int_equal(s.n, 7);
	for (size_t i = 0; i < 7; i++) {
		struct queue_id id = qfx_id(want[i]);

		assert_memory_equal(s.id[i].b, id.b, QUEUE_ID_LEN);
		if (i)
			assert_true(s.due[i - 1] <= s.due[i]);
	}
}

static void test_scan_bounds_inclusive(void **state)
{
	struct qfx *f = *state;

	qfx_put(f, 1, 0);
	qfx_put(f, 2, 10);
	qfx_put(f, 3, 20);
	qfx_put(f, 4, 30);
	qfx_put(f, 5, 255);
	qfx_put(f, 6, 256);
	qfx_put(f, 7, UINT64_MAX);
	qfx_write(f, true);
	assert_int_equal(qfx_scan(f, 10, 20).n, 2);
	assert_int_equal(qfx_scan(f, 11, 19).n, 0);
	assert_int_equal(qfx_scan(f, 20, 20).n, 1);
	assert_int_equal(qfx_scan(f, 0, 0).n, 1);
	assert_int_equal(qfx_scan(f, 0, 9).n, 1);
	assert_int_equal(qfx_scan(f, 255, 255).n, 1); /* carry across a byte boundary */
	assert_int_equal(qfx_scan(f, 256, 256).n, 1);
	assert_int_equal(qfx_scan(f, 31, UINT64_MAX - 1).n, 2);
	assert_int_equal(qfx_scan(f, UINT64_MAX, UINT64_MAX).n, 1);
	assert_int_equal(qfx_scan(f, 0, UINT64_MAX).n, 7);
	assert_int_equal(qfx_scan(f, 30, 10).n, 0); /* empty range */
	assert_int_equal(qfx_scan(f, 20, 30).due[1], 30);
}

static void test_scan_early_stop(void **state)
{
	struct qfx *f = *state;
	struct qfx_seen s = {.stop_after = 2, .ret = 1};

	for (uint64_t n = 1; n <= 6; n++)
		qfx_put(f, n, n);
	qfx_write(f, true);
	assert_int_equal(queue_scan(f->q, 0, UINT64_MAX, qfx_collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.due[1], 2);
	/* a negative callback result stops the scan and is returned */
	memset(&s, 0, sizeof(s));
	s.stop_after = 3;
	s.ret = -ECANCELED;
	assert_int_equal(queue_scan(f->q, 0, UINT64_MAX, qfx_collect, &s), -ECANCELED);
	assert_int_equal(s.n, 3);
}

/* A callback that reschedules what it sees into the scanned range must not see it again. */
struct resched {
	struct qfx *f;
	size_t calls;
};

static int resched_cb(void *arg, uint64_t due, const struct queue_id *id, unsigned dest,
		      const void *sval, size_t sval_len)
{
	struct resched *r = arg;
	struct queue_batch *b = queue_batch_new();
	char err[128];

	assert_non_null(b);
	queue_batch_meta(b, id, "m2", 2);
	queue_batch_sched_del(b, due, id, dest);
	queue_batch_sched_put(b, due + 1000, id, dest, "r", 1);
	assert_int_equal(queue_write(r->f->q, b, false, err, sizeof(err)), 0);
	queue_batch_free(b);
	r->calls++;
	return r->calls > 100; /* a safety stop if the backend loops */
}

static void test_scan_callback_writes(void **state)
{
	struct qfx *f = *state;
	struct resched r = {f, 0};

	for (uint64_t n = 1; n <= 5; n++)
		qfx_put(f, n, n);
	qfx_write(f, true);
	assert_int_equal(queue_scan(f->q, 0, UINT64_MAX, resched_cb, &r), 0);
	assert_int_equal(r.calls, 5);
	assert_int_equal(qfx_scan(f, 0, 999).n, 0);
	assert_int_equal(qfx_scan(f, 1000, 2000).n, 5);
	assert_int_equal(qfx_count(f), 5);
}

/* Several threads writing and reading one queue at once. */
enum { THREADS = 4, PER_THREAD = 200 };

struct thr {
	struct queue *q;
	uint64_t base;
	int rc;
};

static void *writer(void *arg)
{
	struct thr *t = arg;
	struct queue_batch *b = queue_batch_new();
	char err[128];

	for (uint64_t i = 0; b && i < PER_THREAD && t->rc == 0; i++) {
		struct queue_id id = qfx_id(t->base + i);

		queue_batch_clear(b);
		queue_batch_put(b, &id, "m", 1, "body", 4);
		queue_batch_sched_put(b, t->base + i, &id, (unsigned)(i % 3), "s", 1);
		t->rc = queue_write(t->q, b, i % 50 == 0, err, sizeof(err));
		if (t->rc == 0)
			t->rc = queue_get(t->q, &id, NULL, NULL, NULL, NULL);
	}
	queue_batch_free(b);
	return NULL;
}

static int count_cb(void *arg, uint64_t due, const struct queue_id *id, unsigned dest,
		    const void *sval, size_t sval_len)
{
	++*(size_t *)arg;
	return 0;
}

static void test_threads(void **state)
{
	struct qfx *f = *state;
	size_t n = 0;
	pthread_t th[THREADS];
	struct thr t[THREADS];

	for (int i = 0; i < THREADS; i++) {
		t[i] = (struct thr){f->q, (uint64_t)i * 100000, 0};
		assert_int_equal(pthread_create(&th[i], NULL, writer, &t[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].rc, 0);
	}
	assert_int_equal(qfx_count(f), THREADS * PER_THREAD);
	assert_int_equal(queue_scan(f->q, 0, UINT64_MAX, count_cb, &n), 0);
	assert_int_equal(n, THREADS * PER_THREAD);
}

/* ---- RocksDB only ---- */

/* Synced writes survive close + reopen; scan order after recovery is time order. */
static void test_recovery(void **state)
{
	struct qfx *f = *state;
	struct qfx_seen s;

	for (uint64_t n = 1; n <= 40; n++)
		qfx_put(f, n, (n * 7919) % 41 * 1000); /* a permutation of due times */
	qfx_write(f, true);
	for (uint64_t n = 1; n <= 40; n += 4)
		qfx_del(f, n, (n * 7919) % 41 * 1000);
	qfx_write(f, true);
	qfx_reopen(f, false);
	assert_int_equal(qfx_count(f), 30);
	for (uint64_t n = 1; n <= 40; n++) {
		char meta[32], body[64];

		if (n % 4 == 1) {
			qfx_assert_absent(f, n);
			continue;
		}
		snprintf(meta, sizeof(meta), "meta-%llu", (unsigned long long)n);
		snprintf(body, sizeof(body), "body-%llu\r\n.\r\n", (unsigned long long)n);
		qfx_assert_get(f, n, meta, body);
	}
	s = qfx_scan(f, 0, UINT64_MAX);
	assert_int_equal(s.n, 30);
	for (size_t i = 1; i < s.n; i++)
		assert_true(s.due[i - 1] < s.due[i]);
	/* reopening with blob bodies on is compatible with data written without */
	qfx_reopen(f, true);
	assert_int_equal(qfx_count(f), 30);
	qfx_put(f, 100, 5);
	qfx_write(f, true);
	qfx_reopen(f, true);
	qfx_assert_get(f, 100, "meta-100", "body-100\r\n.\r\n");
	qfx_assert_get(f, 2, "meta-2", "body-2\r\n.\r\n");
}

static void test_open_errors(void **state)
{
	struct qfx *f = *state;
	struct queue *q = (struct queue *)1;
	char err[256] = "";
	char path[128];
	struct queue_opts o = {.backend = QUEUE_BACKEND_ROCKSDB, .path = NULL};

	assert_int_equal(queue_open(&o, &q, err, sizeof(err)), -EINVAL);
	assert_null(q);
	assert_true(strlen(err) > 0);
	/* the directory is locked by the fixture's open queue */
	o.path = f->dir;
	err[0] = '\0';
	assert_int_equal(queue_open(&o, &q, err, sizeof(err)), -EIO);
	assert_null(q);
	assert_non_null(strstr(err, f->dir));
	/* parent directory missing */
	snprintf(path, sizeof(path), "%s/no/such/dir", f->dir);
	o.path = path;
	assert_int_equal(queue_open(&o, &q, err, sizeof(err)), -EIO);
	o.backend = (enum queue_backend)99;
	assert_int_equal(queue_open(&o, &q, err, sizeof(err)), -EINVAL);
	queue_close(NULL);
}

/* queue_recover (close + reopen for RocksDB, nothing for the memory backend) keeps every
 * acknowledged write, and the store takes writes and reads afterwards. */
static void test_recover_keeps_data(void **state)
{
	struct qfx *f = *state;
	void *meta = NULL;
	size_t ml = 0;
	struct queue_id id = qfx_id(5);

	qfx_put(f, 5, 50);
	qfx_write(f, true);
	assert_int_equal(queue_recover(f->q, f->err, sizeof(f->err)), 0);
	assert_int_equal(qfx_count(f), 1);
	qfx_put(f, 6, 60);
	qfx_write(f, true);
	assert_int_equal(qfx_count(f), 2);
	assert_int_equal(queue_get(f->q, &id, &meta, &ml, NULL, NULL), 0);
	assert_memory_equal(meta, "meta-5", 6);
	free(meta);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    QFX_BOTH(test_put_get),
	    QFX_BOTH(test_empty_values),
	    QFX_BOTH(test_large_body),
	    QFX_BOTH(test_delete),
	    QFX_BOTH(test_reschedule),
	    QFX_BOTH(test_batch_atomic_mix),
	    QFX_BOTH(test_batch_unchanged_by_write),
	    QFX_BOTH(test_scan_order),
	    QFX_BOTH(test_scan_bounds_inclusive),
	    QFX_BOTH(test_scan_early_stop),
	    QFX_BOTH(test_scan_callback_writes),
	    QFX_BOTH(test_threads),
	    QFX_BOTH(test_recover_keeps_data),
	    QFX_ROCKS(test_recovery),
	    QFX_ROCKS(test_open_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
