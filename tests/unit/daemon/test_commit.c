/* test_commit — unit tests for engine/daemon/commit.c: the group-commit thread over the
 * in-memory queue, with real loops (engine/loop) receiving the completions.
 *
 * Why: a shard answers 250 to its client only when its request's completion arrives; a lost
 * completion hangs a session, a doubled one frees a message twice, a request never written
 * loses mail. So the tests count, on the loop threads, that every request posted from several
 * threads completes exactly once, on the loop it named, with result 0, and that the queue then
 * holds every message. commit.c is included so the batch bounds (COMMIT_MAX_REQS / BYTES) can be
 * checked on commit_batch itself, deterministically, besides a burst through commit_post.
 */
#include "engine/daemon/commit.c"
#include "tests/unit/daemon/daemon_test.h"

#include <signal.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define POSTERS	   4
#define PER_POSTER 2500
#define NLOOPS	   2
#define BURST	   (2 * COMMIT_MAX_REQS + 1)

static const char test_meta[] = "meta";
static const char test_body[] = "body\r\n";

/* A request plus what the completion saw (written on the loop thread only). */
struct treq {
	struct commit_req req;
	struct loop *want; /* the loop the completion must run on */
	int calls;
	int result;
	bool wrong_loop;
};

/* A loop and how many completions it ran; it stops once it has seen `expect`. */
struct lthread {
	pthread_t th;
	struct loop *l;
	unsigned expect;
	unsigned seen;
	pthread_barrier_t *ready;
};

static void req_done(struct loop *l, struct loop_msg *m)
{
	struct commit_req *cr = container_of(m, struct commit_req, done);
	struct treq *t = container_of(cr, struct treq, req);
	struct lthread *lt = loop_data(l);

	t->calls++;
	t->result = cr->result;
	t->wrong_loop |= l != t->want;
	if (++lt->seen == lt->expect)
		loop_stop(l);
}

static void treq_init(struct treq *t, struct loop *l, uint16_t who, uint64_t seq)
{
	memset(t, 0, sizeof(*t));
	t->want = l;
	t->req.op = COMMIT_PUT;
	queue_id_make(&t->req.id, 1700000000000ull, who, seq);
	t->req.meta = test_meta;
	t->req.meta_len = sizeof(test_meta) - 1;
	t->req.body = test_body;
	t->req.body_len = sizeof(test_body) - 1;
	t->req.new_due = 1000 + seq;
	t->req.attempts = who;
	t->req.loop = l;
	t->req.done.fn = req_done;
}

static void assert_all_done_once(const struct treq *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(t[i].calls, 1);
		assert_int_equal(t[i].result, 0);
		assert_false(t[i].wrong_loop);
	}
}

/* Run loop l on this thread until lt->expect completions have run there. */
static void run_until_seen(struct lthread *lt)
{
	loop_set_data(lt->l, lt);
	if (lt->seen < lt->expect)
		assert_int_equal(loop_run(lt->l), 0);
	assert_int_equal(lt->seen, lt->expect);
}

static void assert_stored(struct queue *q, const struct treq *t)
{
	void *meta = NULL, *body = NULL;
	size_t mlen = 0, blen = 0;

	assert_int_equal(queue_get(q, &t->req.id, &meta, &mlen, &body, &blen), 0);
	assert_memory_equal(meta, test_meta, mlen);
	assert_memory_equal(body, test_body, blen);
	assert_int_equal(blen, sizeof(test_body) - 1);
	free(meta);
	free(body);
}

static int setup(void **state)
{
	alarm(20); /* a lost completion fails the test instead of hanging it */
	*state = dt_queue_open();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	queue_close(*state);
	alarm(0);
	return 0;
}

/* ---- several posters, two loop threads ---- */

static void *loop_main(void *arg)
{
	struct lthread *lt = arg;
	int ret = loop_new(&lt->l, 64);

	pthread_barrier_wait(lt->ready);
	if (ret < 0)
		return NULL;
	loop_set_data(lt->l, lt);
	loop_run(lt->l);
	loop_free(lt->l); /* on its own thread, as a shard does */
	return NULL;
}

struct poster {
	pthread_t th;
	struct commit *c;
	struct treq *reqs; /* PER_POSTER */
};

static void *poster_main(void *arg)
{
	struct poster *p = arg;

	for (unsigned i = 0; i < PER_POSTER; i++)
		commit_post(p->c, &p->reqs[i].req);
	return NULL;
}

static void start_loops(struct lthread *lt, pthread_barrier_t *ready)
{
	pthread_barrier_init(ready, NULL, NLOOPS + 1);
	for (unsigned i = 0; i < NLOOPS; i++) {
		lt[i] = (struct lthread){.expect = POSTERS * PER_POSTER / NLOOPS, .ready = ready};
		assert_int_equal(pthread_create(&lt[i].th, NULL, loop_main, &lt[i]), 0);
	}
	pthread_barrier_wait(ready);
	for (unsigned i = 0; i < NLOOPS; i++)
		assert_non_null(lt[i].l);
}

static void run_posters(struct commit *c, struct treq *reqs, struct lthread *lt)
{
	struct poster p[POSTERS];

	for (unsigned i = 0; i < POSTERS * PER_POSTER; i++)
		treq_init(&reqs[i], lt[i % NLOOPS].l, (uint16_t)(i / PER_POSTER), i);
	for (unsigned k = 0; k < POSTERS; k++) {
		p[k] = (struct poster){.c = c, .reqs = &reqs[k * PER_POSTER]};
		assert_int_equal(pthread_create(&p[k].th, NULL, poster_main, &p[k]), 0);
	}
	for (unsigned k = 0; k < POSTERS; k++)
		assert_int_equal(pthread_join(p[k].th, NULL), 0);
}

/* 4 threads x 2,500 requests, completions alternating between two loop threads: each one
 * completes once with 0 on its loop, every message is stored, and the stats add up. */
static void test_posts_from_threads(void **state)
{
	struct queue *q = *state;
	const unsigned n = POSTERS * PER_POSTER;
	struct treq *reqs = calloc(n, sizeof(*reqs));
	struct lthread lt[NLOOPS];
	pthread_barrier_t ready;
	struct commit *c = NULL;
	uint64_t writes, nreqs, count = 0;

	assert_non_null(reqs);
	start_loops(lt, &ready);
	assert_int_equal(commit_start(q, NULL, NULL, &c), 0);
	run_posters(c, reqs, lt);
	for (unsigned i = 0; i < NLOOPS; i++) {
		assert_int_equal(pthread_join(lt[i].th, NULL), 0);
		assert_int_equal(lt[i].seen, lt[i].expect);
	}
	pthread_barrier_destroy(&ready);
	assert_all_done_once(reqs, n);
	commit_stats(c, &writes, &nreqs);
	assert_int_equal(nreqs, n);
	assert_true(writes >= 1 && writes <= n);
	commit_free(c);
	assert_int_equal(queue_count(q, &count), 0);
	assert_int_equal(count, n);
	assert_stored(q, &reqs[0]);
	assert_stored(q, &reqs[n - 1]);
	free(reqs);
}

/* ---- bursts ---- */

/* A burst above COMMIT_MAX_REQS through commit_post: all complete, and since one write holds
 * at most COMMIT_MAX_REQS requests there were at least ceil(BURST / max) = 3 writes. */
static void test_burst_split(void **state)
{
	struct queue *q = *state;
	struct treq *reqs = calloc(BURST, sizeof(*reqs));
	struct lthread lt = {.expect = BURST};
	struct commit *c = NULL;
	uint64_t writes, nreqs, count = 0;

	assert_non_null(reqs);
	assert_int_equal(loop_new(&lt.l, 64), 0);
	assert_int_equal(commit_start(q, NULL, NULL, &c), 0);
	for (unsigned i = 0; i < BURST; i++) {
		treq_init(&reqs[i], lt.l, 9, i);
		commit_post(c, &reqs[i].req);
	}
	run_until_seen(&lt);
	assert_all_done_once(reqs, BURST);
	commit_stats(c, &writes, &nreqs);
	assert_true(writes >= 3);
	assert_int_equal(nreqs, BURST);
	commit_free(c);
	loop_free(lt.l);
	assert_int_equal(queue_count(q, &count), 0);
	assert_int_equal(count, BURST);
	free(reqs);
}

static struct commit_req *link_reqs(struct treq *reqs, unsigned n)
{
	for (unsigned i = 0; i + 1 < n; i++)
		reqs[i].req.next = &reqs[i + 1].req;
	reqs[n - 1].req.next = NULL;
	return &reqs[0].req;
}

/* commit_batch on a list of BURST requests writes exactly 4096, 4096, then 1. The commit
 * thread is idle (nothing was posted), so this thread may drive commit_batch itself. */
static void test_batch_request_bound(void **state)
{
	struct queue *q = *state;
	struct treq *reqs = calloc(BURST, sizeof(*reqs));
	struct lthread lt = {.expect = BURST};
	struct commit *c = NULL;
	struct commit_req *rest;
	uint64_t writes, nreqs;

	assert_non_null(reqs);
	assert_int_equal(loop_new(&lt.l, 64), 0);
	assert_int_equal(commit_start(q, NULL, NULL, &c), 0);
	for (unsigned i = 0; i < BURST; i++)
		treq_init(&reqs[i], lt.l, 5, i);
	rest = commit_batch(c, link_reqs(reqs, BURST));
	assert_ptr_equal(rest, &reqs[COMMIT_MAX_REQS].req);
	commit_stats(c, &writes, &nreqs);
	assert_int_equal(writes, 1);
	assert_int_equal(nreqs, COMMIT_MAX_REQS);
	rest = commit_batch(c, rest);
	assert_ptr_equal(rest, &reqs[2 * COMMIT_MAX_REQS].req);
	assert_null(commit_batch(c, rest));
	commit_stats(c, &writes, &nreqs);
	assert_int_equal(writes, 3);
	assert_int_equal(nreqs, BURST);
	run_until_seen(&lt);
	assert_all_done_once(reqs, BURST);
	commit_free(c);
	loop_free(lt.l);
	free(reqs);
}

/* The byte bound: with bodies of a bit over half of COMMIT_MAX_BYTES, the first write takes
 * two (it stops only once the bound is reached), the second the third. */
static void test_batch_byte_bound(void **state)
{
	struct queue *q = *state;
	const size_t big = COMMIT_MAX_BYTES / 2 + 1;
	char *body = calloc(1, big);
	struct treq reqs[3];
	struct lthread lt = {.expect = 3};
	struct commit *c = NULL;
	struct commit_req *rest;

	assert_non_null(body);
	assert_int_equal(loop_new(&lt.l, 64), 0);
	assert_int_equal(commit_start(q, NULL, NULL, &c), 0);
	for (unsigned i = 0; i < 3; i++) {
		treq_init(&reqs[i], lt.l, 6, i);
		reqs[i].req.body = body;
		reqs[i].req.body_len = big;
	}
	rest = commit_batch(c, link_reqs(reqs, 3));
	assert_ptr_equal(rest, &reqs[2].req);
	assert_null(commit_batch(c, rest));
	run_until_seen(&lt);
	assert_all_done_once(reqs, 3);
	commit_free(c);
	loop_free(lt.l);
	free(body);
}

/* commit_halt writes and completes everything posted before it; a request posted after it
 * is neither written nor completed; halt is idempotent. */
static void test_halt_drains(void **state)
{
	struct queue *q = *state;
	struct treq reqs[101];
	struct lthread lt = {.expect = 100};
	struct commit *c = NULL;
	uint64_t writes, nreqs;

	assert_int_equal(loop_new(&lt.l, 64), 0);
	assert_int_equal(commit_start(q, NULL, NULL, &c), 0);
	for (unsigned i = 0; i < 101; i++)
		treq_init(&reqs[i], lt.l, 7, i);
	for (unsigned i = 0; i < 100; i++)
		commit_post(c, &reqs[i].req);
	commit_halt(c);
	commit_stats(c, &writes, &nreqs);
	assert_int_equal(nreqs, 100);
	commit_halt(c);
	commit_post(c, &reqs[100].req);
	run_until_seen(&lt);
	assert_all_done_once(reqs, 100);
	assert_int_equal(reqs[100].calls, 0);
	assert_int_equal(queue_get(q, &reqs[100].req.id, NULL, NULL, NULL, NULL), -ENOENT);
	commit_stats(c, &writes, &nreqs);
	assert_int_equal(nreqs, 100);
	commit_free(c);
	commit_free(NULL);
	loop_free(lt.l);
}

/* Scan callback: the only entry is message (8, 0) at due 200 with sched value 3 (BE). */
static int check_one_entry(void *arg, uint64_t due, const struct queue_id *id, const void *sval,
			   size_t sval_len)
{
	uint8_t want[4];

	dt_sval(3, want);
	assert_memory_equal(id->b, ((const struct queue_id *)arg)->b, QUEUE_ID_LEN);
	assert_int_equal(due, 200);
	assert_int_equal(sval_len, 4);
	assert_memory_equal(sval, want, 4);
	return 0;
}

/* UPDATE moves the sched key and stores the attempt count as the sched value; DELETE removes
 * the message: what the runner later reads is what the shard asked for. */
static void test_update_and_delete(void **state)
{
	struct queue *q = *state;
	struct treq reqs[3];
	struct lthread lt = {.expect = 3};
	struct commit *c = NULL;
	uint64_t count = 9;

	assert_int_equal(loop_new(&lt.l, 64), 0);
	assert_int_equal(commit_start(q, NULL, NULL, &c), 0);
	for (unsigned i = 0; i < 3; i++)
		treq_init(&reqs[i], lt.l, 8, i % 2); /* 0 and 2 name the same message */
	reqs[0].req.new_due = 100;
	reqs[0].req.sync = true;
	reqs[2].req.op = COMMIT_UPDATE;
	reqs[2].req.old_due = 100;
	reqs[2].req.new_due = 200;
	reqs[2].req.attempts = 3;
	reqs[1].req.op = COMMIT_DELETE;
	reqs[1].req.old_due = 1001;
	for (unsigned i = 0; i < 3; i++) /* put 0, delete 1 (never put: harmless), update 0 */
		commit_post(c, &reqs[i].req);
	run_until_seen(&lt);
	assert_all_done_once(reqs, 3);
	commit_free(c);
	loop_free(lt.l);
	assert_int_equal(queue_count(q, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(queue_scan(q, 0, UINT64_MAX, check_one_entry, &reqs[0].req.id), 0);
}

/* ---- degraded mode (disk full) ---- */

static int fail_writes; /* read by the memory backend with __atomic_load_n */

struct state_log {
	_Atomic int degraded_calls, healthy_calls;
};

static void on_state(void *arg, bool degraded)
{
	struct state_log *sl = arg;

	if (degraded)
		sl->degraded_calls++;
	else
		sl->healthy_calls++;
}

/* Post one request and run its loop until the completion; returns its result. */
static int post_one(struct commit *c, struct loop *l, struct treq *t, uint64_t seq)
{
	struct lthread lt = {.l = l, .expect = 1};

	treq_init(t, l, 3, seq);
	commit_post(c, &t->req);
	run_until_seen(&lt);
	assert_int_equal(t->calls, 1);
	return t->result;
}

/* A failed write (ENOSPC) fails its request with -ENOSPC and puts the thread in degraded mode
 * (on_state(true) once); later requests fail at once with the same error and nothing reaches
 * the store; once writes work again the probe ends degraded mode within a few probe periods
 * (on_state(false) once), after deleting what the failed PUT may have left in the store, and
 * requests are written again. */
static void test_degraded_and_recovery(void **state)
{
	struct queue_opts qo = {.backend = QUEUE_BACKEND_MEMORY, .fail_writes = &fail_writes};
	struct state_log sl = {0};
	struct queue *q = NULL;
	struct commit *c = NULL;
	struct loop *l = NULL;
	struct treq t[4];
	uint64_t count = 9, t0;
	char err[128];

	(void)state;
	assert_int_equal(queue_open(&qo, &q, err, sizeof(err)), 0);
	assert_int_equal(loop_new(&l, 64), 0);
	assert_int_equal(commit_start(q, on_state, &sl, &c), 0);
	assert_int_equal(post_one(c, l, &t[0], 0), 0);
	/* request 1's write will fail, yet (as RocksDB may, when a sync fails after the append)
	 * the store has it: put it there directly, as if its WAL record had survived */
	treq_init(&t[1], l, 3, 1);
	queue_batch_put(c->batch, &t[1].req.id, test_meta, 4, test_body, 6, t[1].req.new_due, "x",
			1);
	assert_int_equal(queue_write(q, c->batch, true, err, sizeof(err)), 0);
	queue_batch_clear(c->batch);
	__atomic_store_n(&fail_writes, -ENOSPC, __ATOMIC_RELAXED);
	assert_int_equal(post_one(c, l, &t[1], 1), -ENOSPC);
	assert_true(commit_degraded(c));
	assert_int_equal(sl.degraded_calls, 1);
	__atomic_store_n(
	    &fail_writes, -EIO,
	    __ATOMIC_RELAXED); /* while degraded requests fail fast with the degraded error */
	assert_int_equal(post_one(c, l, &t[2], 2), -ENOSPC);
	__atomic_store_n(&fail_writes, 0, __ATOMIC_RELAXED);
	t0 = util_mono_ms();
	while (commit_degraded(c) && util_mono_ms() - t0 < 5000)
		usleep(10000);
	assert_false(commit_degraded(c));
	assert_true(util_mono_ms() - t0 <= 4 * COMMIT_PROBE_MS); /* (loose: a busy CI machine) */
	assert_int_equal(sl.healthy_calls, 1);
	assert_int_equal(sl.degraded_calls, 1);
	assert_int_equal(post_one(c, l, &t[3], 3), 0);
	commit_free(c);
	loop_free(l);
	assert_int_equal(queue_count(q, &count), 0);
	assert_int_equal(count, 2); /* requests 0 and 3: 1 and 2 were refused, and the copy of 1
				       the store had is deleted before degraded mode ended */
	queue_close(q);
}

/* The commit thread's batch gives a burst's memory back after the write. */
static void test_batch_released(void **state)
{
	struct commit c = {.batch = queue_batch_new()};
	struct queue_id id = {{0}};
	static char meta[1024];

	(void)state;
	for (unsigned i = 0; i < 2000; i++)
		queue_batch_update(c.batch, &id, meta, sizeof(meta), 1, 2, "abcd", 4);
	assert_true(queue_batch_mem(c.batch) > 2000 * sizeof(meta));
	queue_batch_clear(c.batch);
	assert_true(queue_batch_mem(c.batch) <= (512u << 10));
	queue_batch_free(c.batch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_posts_from_threads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_burst_split, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_request_bound, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_byte_bound, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_halt_drains, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_update_and_delete, setup, teardown),
	    cmocka_unit_test(test_degraded_and_recovery),
	    cmocka_unit_test(test_batch_released),
	};

	return cmocka_run_group_tests_name("commit", tests, NULL, NULL);
}
