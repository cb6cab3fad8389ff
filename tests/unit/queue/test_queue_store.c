/* test_queue_store — put/update/delete/get/scan/count, the same table against every backend,
 * plus RocksDB-only recovery and open-error tests.
 *
 * Why: the in-memory backend stands in for RocksDB in engine tests, so both must agree on
 * every observable behaviour; running one table over both is what keeps them honest. The
 * RocksDB runs use a mkdtemp directory removed in teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "queue/queue.h"

struct fix {
	enum queue_backend backend;
	char dir[64];
	struct queue *q;
	struct queue_batch *b;
	char err[256];
};

static struct fix fix_rocksdb = {.backend = QUEUE_BACKEND_ROCKSDB};
static struct fix fix_memory = {.backend = QUEUE_BACKEND_MEMORY};

static void fix_open(struct fix *f, bool blob)
{
	struct queue_opts o = {.backend = f->backend,
			       .path = f->dir,
			       .write_buffer_size = 4 << 20,
			       .blob_bodies = blob};
	int rc = queue_open(&o, &f->q, f->err, sizeof(f->err));

	if (rc)
		fail_msg("queue_open: %d %s", rc, f->err);
}

static int setup(void **state)
{
	struct fix *f = *state;

	f->dir[0] = '\0';
	if (f->backend == QUEUE_BACKEND_ROCKSDB) {
		snprintf(f->dir, sizeof(f->dir), "/tmp/riptide-qtest-XXXXXX");
		if (!mkdtemp(f->dir))
			return -1;
	}
	fix_open(f, false);
	f->b = queue_batch_new();
	return f->b ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fix *f = *state;

	queue_batch_free(f->b);
	queue_close(f->q);
	f->b = NULL;
	f->q = NULL;
	if (f->dir[0])
		nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* ---- helpers ---- */

static struct queue_id mkid(uint64_t n)
{
	struct queue_id id;

	queue_id_make(&id, 1700000000000ull + n, (uint16_t)(n % 3), n);
	return id;
}

static void write_ok(struct fix *f, bool sync)
{
	int rc = queue_write(f->q, f->b, sync, f->err, sizeof(f->err));

	if (rc)
		fail_msg("queue_write: %d %s", rc, f->err);
	queue_batch_clear(f->b);
}

/* Bodies are referenced by the batch until the write: keep them in a ring that outlives it. */
static char bodies[4096][64];

static void put_msg(struct fix *f, uint64_t n, uint64_t due)
{
	char meta[32], *body = bodies[n % 4096], sval[16];
	struct queue_id id = mkid(n);

	snprintf(meta, sizeof(meta), "meta-%llu", (unsigned long long)n);
	snprintf(body, sizeof(bodies[0]), "body-%llu\r\n.\r\n", (unsigned long long)n);
	snprintf(sval, sizeof(sval), "s%llu", (unsigned long long)n);
	queue_batch_put(f->b, &id, meta, strlen(meta), body, strlen(body), due, sval, strlen(sval));
}

static uint64_t count(struct fix *f)
{
	uint64_t n = 12345;

	assert_int_equal(queue_count(f->q, &n), 0);
	return n;
}

static void assert_get(struct fix *f, uint64_t n, const char *meta, const char *body)
{
	struct queue_id id = mkid(n);
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

static void assert_absent(struct fix *f, uint64_t n)
{
	struct queue_id id = mkid(n);
	void *m = (void *)1, *b = (void *)1;
	size_t ml, bl;

	assert_int_equal(queue_get(f->q, &id, &m, &ml, &b, &bl), -ENOENT);
	assert_null(m);
	assert_null(b);
	assert_int_equal(queue_get(f->q, &id, NULL, NULL, NULL, NULL), -ENOENT);
}

/* Scan collector: records up to 64 entries; stops after `stop_after` if non-zero. */
struct seen {
	size_t n, stop_after;
	int ret;
	uint64_t due[64];
	struct queue_id id[64];
	char sval[64][16];
};

static int collect(void *arg, uint64_t due, const struct queue_id *id, const void *sval,
		   size_t sval_len)
{
	struct seen *s = arg;

	assert_true(s->n < 64);
	assert_true(sval_len < 16);
	s->due[s->n] = due;
	s->id[s->n] = *id;
	memcpy(s->sval[s->n], sval, sval_len);
	s->sval[s->n][sval_len] = '\0';
	s->n++;
	if (s->stop_after && s->n == s->stop_after)
		return s->ret;
	return 0;
}

static struct seen scan(struct fix *f, uint64_t from, uint64_t until)
{
	struct seen s = {0};

	assert_int_equal(queue_scan(f->q, from, until, collect, &s), 0);
	return s;
}

/* ---- the table ---- */

static void test_put_get(void **state)
{
	struct fix *f = *state;
	struct queue_id id = mkid(1);
	void *m = NULL;
	size_t ml = 0;

	put_msg(f, 1, 500);
	assert_int_equal(queue_batch_count(f->b), 1);
	write_ok(f, true);
	assert_get(f, 1, "meta-1", "body-1\r\n.\r\n");
	/* parts on their own */
	assert_int_equal(queue_get(f->q, &id, &m, &ml, NULL, NULL), 0);
	assert_memory_equal(m, "meta-1", ml);
	free(m);
	assert_int_equal(queue_get(f->q, &id, NULL, NULL, &m, &ml), 0);
	assert_memory_equal(m, "body-1\r\n.\r\n", ml);
	free(m);
	assert_int_equal(queue_get(f->q, &id, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(count(f), 1);
	assert_absent(f, 2);
}

static void test_empty_values(void **state)
{
	struct fix *f = *state;
	struct queue_id id = mkid(9);
	void *m = NULL, *b = NULL;
	size_t ml = 7, bl = 7;
	struct seen s;

	queue_batch_put(f->b, &id, "", 0, "", 0, 10, "", 0);
	write_ok(f, false);
	assert_int_equal(queue_get(f->q, &id, &m, &ml, &b, &bl), 0);
	assert_non_null(m);
	assert_non_null(b);
	assert_int_equal(ml, 0);
	assert_int_equal(bl, 0);
	free(m);
	free(b);
	s = scan(f, 0, UINT64_MAX);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.sval[0], "");
}

static void test_large_body(void **state)
{
	struct fix *f = *state;
	size_t n = 3u << 20;
	uint8_t *big = malloc(n);
	struct queue_id id = mkid(77);
	void *b = NULL;
	size_t bl = 0;

	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 31 + (i >> 8));
	queue_batch_put(f->b, &id, "m", 1, big, n, 1, "s", 1);
	assert_true(queue_batch_mem(f->b) < 64 * 1024); /* the body is referenced, not copied */
	write_ok(f, true);
	assert_int_equal(queue_get(f->q, &id, NULL, NULL, &b, &bl), 0);
	assert_int_equal(bl, n);
	assert_memory_equal(b, big, n);
	free(b);
	free(big);
}

static void test_delete(void **state)
{
	struct fix *f = *state;
	struct queue_id id = mkid(3);

	put_msg(f, 3, 100);
	put_msg(f, 4, 100);
	write_ok(f, true);
	queue_batch_delete(f->b, &id, 100);
	write_ok(f, false);
	assert_absent(f, 3);
	assert_get(f, 4, "meta-4", "body-4\r\n.\r\n");
	assert_int_equal(count(f), 1);
	assert_int_equal(scan(f, 0, UINT64_MAX).n, 1);
	/* deleting what is not there is not an error */
	queue_batch_delete(f->b, &id, 100);
	write_ok(f, false);
	assert_int_equal(count(f), 1);
}

static void test_update_moves_sched(void **state)
{
	struct fix *f = *state;
	struct queue_id id = mkid(5);
	struct seen s;

	put_msg(f, 5, 1000);
	write_ok(f, true);
	queue_batch_update(f->b, &id, "meta-5-v2", 9, 1000, 61000, "retry1", 6);
	write_ok(f, true);
	assert_get(f, 5, "meta-5-v2", "body-5\r\n.\r\n");
	assert_int_equal(count(f), 1);
	assert_int_equal(scan(f, 0, 60999).n, 0); /* old key gone */
	s = scan(f, 61000, 61000);		  /* new key present */
	assert_int_equal(s.n, 1);
	assert_int_equal(s.due[0], 61000);
	assert_memory_equal(s.id[0].b, id.b, QUEUE_ID_LEN);
	assert_string_equal(s.sval[0], "retry1");
	/* same due: the sched value is replaced, not lost */
	queue_batch_update(f->b, &id, "meta-5-v3", 9, 61000, 61000, "retry2", 6);
	write_ok(f, false);
	s = scan(f, 0, UINT64_MAX);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.sval[0], "retry2");
	/* and the delete after the move uses the new due */
	queue_batch_delete(f->b, &id, 61000);
	write_ok(f, false);
	assert_int_equal(count(f), 0);
	assert_absent(f, 5);
}

static void test_batch_atomic_mix(void **state)
{
	struct fix *f = *state;
	struct queue_id id1 = mkid(1);

	for (uint64_t n = 1; n <= 5; n++)
		put_msg(f, n, n * 10);
	queue_batch_delete(f->b, &id1, 10); /* put and delete of one id in one batch */
	assert_int_equal(queue_batch_count(f->b), 6);
	write_ok(f, true);
	assert_int_equal(queue_batch_count(f->b), 0);
	assert_absent(f, 1);
	assert_int_equal(count(f), 4);
	/* an empty batch is a no-op */
	write_ok(f, true);
	assert_int_equal(count(f), 4);
}

/* queue_write leaves the batch as it was: writing it twice is idempotent. */
static void test_batch_unchanged_by_write(void **state)
{
	struct fix *f = *state;

	put_msg(f, 8, 80);
	assert_int_equal(queue_write(f->q, f->b, false, f->err, sizeof(f->err)), 0);
	assert_int_equal(queue_batch_count(f->b), 1);
	assert_int_equal(queue_write(f->q, f->b, false, f->err, sizeof(f->err)), 0);
	assert_int_equal(count(f), 1);
	queue_batch_clear(f->b);
}

static void test_scan_order(void **state)
{
	struct fix *f = *state;
	/* (n, due) inserted out of order; equal dues sort by id */
	static const uint64_t ins[][2] = {{7, 300}, {2, 100}, {9, 200}, {1, 300},
					  {4, 100}, {3, 0},   {8, 50}};
	static const uint64_t want[] = {3, 8, 2, 4, 9, 1, 7};
	struct seen s;

	for (size_t i = 0; i < 7; i++) {
		put_msg(f, ins[i][0], ins[i][1]);
		write_ok(f, i % 2 == 0);
	}
	s = scan(f, 0, UINT64_MAX);
	assert_int_equal(s.n, 7);
	for (size_t i = 0; i < 7; i++) {
		struct queue_id id = mkid(want[i]);

		assert_memory_equal(s.id[i].b, id.b, QUEUE_ID_LEN);
		if (i)
			assert_true(s.due[i - 1] <= s.due[i]);
	}
}

static void test_scan_bounds_inclusive(void **state)
{
	struct fix *f = *state;

	put_msg(f, 1, 0);
	put_msg(f, 2, 10);
	put_msg(f, 3, 20);
	put_msg(f, 4, 30);
	put_msg(f, 5, 255);
	put_msg(f, 6, 256);
	put_msg(f, 7, UINT64_MAX);
	write_ok(f, true);
	assert_int_equal(scan(f, 10, 20).n, 2);
	assert_int_equal(scan(f, 11, 19).n, 0);
	assert_int_equal(scan(f, 20, 20).n, 1);
	assert_int_equal(scan(f, 0, 0).n, 1);
	assert_int_equal(scan(f, 0, 9).n, 1);
	assert_int_equal(scan(f, 255, 255).n, 1); /* carry across a byte boundary */
	assert_int_equal(scan(f, 256, 256).n, 1);
	assert_int_equal(scan(f, 31, UINT64_MAX - 1).n, 2);
	assert_int_equal(scan(f, UINT64_MAX, UINT64_MAX).n, 1);
	assert_int_equal(scan(f, 0, UINT64_MAX).n, 7);
	assert_int_equal(scan(f, 30, 10).n, 0); /* empty range */
	assert_int_equal(scan(f, 20, 30).due[1], 30);
}

static void test_scan_early_stop(void **state)
{
	struct fix *f = *state;
	struct seen s = {.stop_after = 2, .ret = 1};

	for (uint64_t n = 1; n <= 6; n++)
		put_msg(f, n, n);
	write_ok(f, true);
	assert_int_equal(queue_scan(f->q, 0, UINT64_MAX, collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.due[1], 2);
	/* a negative callback result stops the scan and is returned */
	memset(&s, 0, sizeof(s));
	s.stop_after = 3;
	s.ret = -ECANCELED;
	assert_int_equal(queue_scan(f->q, 0, UINT64_MAX, collect, &s), -ECANCELED);
	assert_int_equal(s.n, 3);
}

/* A callback that reschedules what it sees into the scanned range must not see it again. */
struct resched {
	struct fix *f;
	size_t calls;
};

static int resched_cb(void *arg, uint64_t due, const struct queue_id *id, const void *sval,
		      size_t sval_len)
{
	struct resched *r = arg;
	struct queue_batch *b = queue_batch_new();
	char err[128];

	assert_non_null(b);
	queue_batch_update(b, id, "m2", 2, due, due + 1000, "r", 1);
	assert_int_equal(queue_write(r->f->q, b, false, err, sizeof(err)), 0);
	queue_batch_free(b);
	r->calls++;
	return r->calls > 100; /* a safety stop if the backend loops */
}

static void test_scan_callback_writes(void **state)
{
	struct fix *f = *state;
	struct resched r = {f, 0};

	for (uint64_t n = 1; n <= 5; n++)
		put_msg(f, n, n);
	write_ok(f, true);
	assert_int_equal(queue_scan(f->q, 0, UINT64_MAX, resched_cb, &r), 0);
	assert_int_equal(r.calls, 5);
	assert_int_equal(scan(f, 0, 999).n, 0);
	assert_int_equal(scan(f, 1000, 2000).n, 5);
	assert_int_equal(count(f), 5);
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
		struct queue_id id = mkid(t->base + i);

		queue_batch_clear(b);
		queue_batch_put(b, &id, "m", 1, "body", 4, t->base + i, "s", 1);
		t->rc = queue_write(t->q, b, i % 50 == 0, err, sizeof(err));
		if (t->rc == 0)
			t->rc = queue_get(t->q, &id, NULL, NULL, NULL, NULL);
	}
	queue_batch_free(b);
	return NULL;
}

static void test_threads(void **state)
{
	struct fix *f = *state;
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
	assert_int_equal(count(f), THREADS * PER_THREAD);
}

/* ---- RocksDB only ---- */

static void reopen(struct fix *f, bool blob)
{
	queue_close(f->q);
	f->q = NULL;
	fix_open(f, blob);
}

/* Synced writes survive close + reopen; scan order after recovery is time order. */
static void test_recovery(void **state)
{
	struct fix *f = *state;
	struct seen s;

	for (uint64_t n = 1; n <= 40; n++)
		put_msg(f, n, (n * 7919) % 41 * 1000); /* a permutation of due times */
	write_ok(f, true);
	for (uint64_t n = 1; n <= 40; n += 4) {
		struct queue_id id = mkid(n);

		queue_batch_delete(f->b, &id, (n * 7919) % 41 * 1000);
	}
	write_ok(f, true);
	reopen(f, false);
	assert_int_equal(count(f), 30);
	for (uint64_t n = 1; n <= 40; n++) {
		char meta[32], body[64];

		if (n % 4 == 1) {
			assert_absent(f, n);
			continue;
		}
		snprintf(meta, sizeof(meta), "meta-%llu", (unsigned long long)n);
		snprintf(body, sizeof(bodies[0]), "body-%llu\r\n.\r\n", (unsigned long long)n);
		assert_get(f, n, meta, body);
	}
	s = scan(f, 0, UINT64_MAX);
	assert_int_equal(s.n, 30);
	for (size_t i = 1; i < s.n; i++)
		assert_true(s.due[i - 1] < s.due[i]);
	/* reopening with blob bodies on is compatible with data written without */
	reopen(f, true);
	assert_int_equal(count(f), 30);
	put_msg(f, 100, 5);
	write_ok(f, true);
	reopen(f, true);
	assert_get(f, 100, "meta-100", "body-100\r\n.\r\n");
	assert_get(f, 2, "meta-2", "body-2\r\n.\r\n");
}

static void test_open_errors(void **state)
{
	struct fix *f = *state;
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

/* Each table entry runs once per backend, named "<backend>/<test>". */
#define BOTH(t)                                                                                    \
	{"memory/" #t, t, setup, teardown, &fix_memory},                                           \
	{                                                                                          \
		"rocksdb/" #t, t, setup, teardown, &fix_rocksdb                                    \
	}
#define ROCKS(t)                                                                                   \
	{                                                                                          \
		"rocksdb/" #t, t, setup, teardown, &fix_rocksdb                                    \
	}

/* queue_recover (close + reopen for RocksDB, nothing for the memory backend) keeps every
 * acknowledged write, and the store takes writes and reads afterwards. */
static void test_recover_keeps_data(void **state)
{
	struct fix *f = *state;
	void *meta = NULL;
	size_t ml = 0;
	struct queue_id id = mkid(5);

	put_msg(f, 5, 50);
	write_ok(f, true);
	assert_int_equal(queue_recover(f->q, f->err, sizeof(f->err)), 0);
	assert_int_equal(count(f), 1);
	put_msg(f, 6, 60);
	write_ok(f, true);
	assert_int_equal(count(f), 2);
	assert_int_equal(queue_get(f->q, &id, &meta, &ml, NULL, NULL), 0);
	assert_memory_equal(meta, "meta-5", 6);
	free(meta);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_put_get),
	    BOTH(test_empty_values),
	    BOTH(test_large_body),
	    BOTH(test_delete),
	    BOTH(test_update_moves_sched),
	    BOTH(test_batch_atomic_mix),
	    BOTH(test_batch_unchanged_by_write),
	    BOTH(test_scan_order),
	    BOTH(test_scan_bounds_inclusive),
	    BOTH(test_scan_early_stop),
	    BOTH(test_scan_callback_writes),
	    BOTH(test_threads),
	    BOTH(test_recover_keeps_data),
	    ROCKS(test_recovery),
	    ROCKS(test_open_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
