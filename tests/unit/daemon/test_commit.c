/* test_commit — unit tests for engine/daemon/commit.c: the group-commit thread over the
 * in-memory queue, with real loops (engine/loop) receiving the completions and real messages
 * (msg.c) whose requests fill the batch with msg_fill_put / msg_fill_final, as the daemon's do.
 *
 * Why: a shard answers 250 to its client only when its request's completion arrives; a lost
 * completion hangs a session, a doubled one frees a message twice, a request never written
 * loses mail. So the tests count, on the loop threads, that every request posted from several
 * threads completes exactly once, on the loop it named, with result 0, and that the queue then
 * holds every message with one sched entry per destination group. commit.c is included so the
 * batch bounds (COMMIT_MAX_REQS, and COMMIT_MAX_BYTES counted from each request's `bytes`) can
 * be checked on commit_batch itself, deterministically, besides a burst through commit_post.
 * A PUT whose write failed must leave nothing of any of its groups once degraded mode ends.
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

/* A request (the message's embedded m->req) plus what the completion saw (written on the loop
 * thread only; m->cookie points back here). */
struct treq {
	struct msg *m;
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

static void req_done(struct loop *l, struct loop_msg *lm)
{
	struct commit_req *cr = container_of(lm, struct commit_req, done);
	struct treq *t = container_of(cr, struct msg, req)->cookie;
	struct lthread *lt = loop_data(l);

	t->calls++;
	t->result = cr->result;
	t->wrong_loop |= l != t->want;
	if (++lt->seen == lt->expect)
		loop_stop(l);
}

/* Point m's request at loop l with fill, as shard.c / home.c do. */
static void treq_arm(struct treq *t, struct loop *l,
		     void (*fill)(struct commit_req *, struct queue_batch *))
{
	struct commit_req *r = &t->m->req;

	memset(r, 0, sizeof(*r));
	r->fill = fill;
	r->bytes = t->m->meta_len + 64u * t->m->env->ndest;
	r->id = t->m->id;
	r->loop = l;
	r->done.fn = req_done;
	t->want = l;
	t->m->cookie = t;
}

/* A new message seq with ngroups groups (one recipient each), every group due at 1000 + seq,
 * whose request is the PUT the shard posts at acceptance. */
static void treq_init(struct treq *t, struct loop *l, uint64_t seq, unsigned ngroups)
{
	uint64_t dues[DT_MAX_DESTS];
	struct commit_req *r;

	for (unsigned g = 0; g < ngroups; g++)
		dues[g] = 1000 + seq;
	memset(t, 0, sizeof(*t));
	t->m = dt_msg_new(seq, ngroups, ngroups, dues, 6);
	assert_non_null(t->m);
	treq_arm(t, l, msg_fill_put);
	r = &t->m->req;
	r->bytes += t->m->body_len;
	r->put = true;
	r->put_due = 1000 + seq;
	r->put_ngroups = ngroups;
}

static void treq_free(struct treq *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		msg_free(t[i].m);
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

/* Scan callback: count the entries of one id and check each is at its due, group < ngroups,
 * and no group twice. */
struct id_entries {
	const struct msg *m;
	unsigned n;
	uint32_t seen; /* bit per group */
	bool bad;
};

static int count_id_entries(void *arg, uint64_t due, const struct queue_id *id, unsigned group,
			    const void *sval, size_t sval_len)
{
	struct id_entries *ie = arg;

	(void)sval;
	(void)sval_len;
	if (memcmp(id->b, ie->m->id.b, QUEUE_ID_LEN) != 0)
		return 0;
	ie->n++;
	ie->bad |= group >= ie->m->env->ndest || due != ie->m->env->dests[group].due ||
		   (ie->seen & (1u << group));
	ie->seen |= 1u << (group & 31);
	return 0;
}

/* The queue holds t's message as its fills wrote it: meta, body, and exactly one sched entry
 * per group that has a due, at that due. */
static void assert_stored(struct queue *q, const struct treq *t)
{
	struct id_entries ie = {.m = t->m};
	void *meta = NULL, *body = NULL;
	size_t mlen = 0, blen = 0;
	unsigned want = 0;

	assert_int_equal(queue_get(q, &t->m->id, &meta, &mlen, &body, &blen), 0);
	assert_int_equal(mlen, t->m->meta_len);
	assert_memory_equal(meta, t->m->meta, mlen);
	assert_int_equal(blen, t->m->body_len);
	assert_memory_equal(body, t->m->body, blen);
	free(meta);
	free(body);
	assert_int_equal(queue_scan(q, 0, UINT64_MAX, count_id_entries, &ie), 0);
	for (uint32_t g = 0; g < t->m->env->ndest; g++)
		want += t->m->env->dests[g].due != 0;
	assert_int_equal(ie.n, want);
	assert_false(ie.bad);
}

/* Nothing of message id is left: no meta, no body, no sched entry of any group. */
static void assert_gone(struct queue *q, const struct queue_id *id)
{
	struct dt_dump d;
	void *body = NULL;
	size_t blen = 0;
	int at;

	assert_int_equal(queue_get(q, id, NULL, NULL, NULL, NULL), -ENOENT);
	assert_int_equal(queue_get(q, id, NULL, NULL, &body, &blen), -ENOENT);
	assert_int_equal(dt_dump_sched(q, &d), 0);
	assert_false(d.overflow);
	assert_int_equal(dt_dump_find(&d, id, 0, &at), 0);
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
		commit_post(p->c, &p->reqs[i].m->req);
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
		treq_init(&reqs[i], lt[i % NLOOPS].l, i, 1 + i % 3);
	for (unsigned k = 0; k < POSTERS; k++) {
		p[k] = (struct poster){.c = c, .reqs = &reqs[k * PER_POSTER]};
		assert_int_equal(pthread_create(&p[k].th, NULL, poster_main, &p[k]), 0);
	}
	for (unsigned k = 0; k < POSTERS; k++)
		assert_int_equal(pthread_join(p[k].th, NULL), 0);
}

/* 4 threads x 2,500 requests (messages of 1, 2 or 3 groups), completions alternating between
 * two loop threads: each one completes once with 0 on its loop, every message is stored with
 * one sched entry per group, and the stats add up. */
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
	assert_stored(q, &reqs[1]);
	assert_stored(q, &reqs[2]);
	assert_stored(q, &reqs[n - 1]);
	treq_free(reqs, n);
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
		treq_init(&reqs[i], lt.l, i, 2);
		commit_post(c, &reqs[i].m->req);
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
	assert_stored(q, &reqs[BURST - 1]);
	treq_free(reqs, BURST);
	free(reqs);
}

static struct commit_req *link_reqs(struct treq *reqs, unsigned n)
{
	for (unsigned i = 0; i + 1 < n; i++)
		reqs[i].m->req.next = &reqs[i + 1].m->req;
	reqs[n - 1].m->req.next = NULL;
	return &reqs[0].m->req;
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
		treq_init(&reqs[i], lt.l, i, 1);
	rest = commit_batch(c, link_reqs(reqs, BURST));
	assert_ptr_equal(rest, &reqs[COMMIT_MAX_REQS].m->req);
	commit_stats(c, &writes, &nreqs);
	assert_int_equal(writes, 1);
	assert_int_equal(nreqs, COMMIT_MAX_REQS);
	rest = commit_batch(c, rest);
	assert_ptr_equal(rest, &reqs[2 * COMMIT_MAX_REQS].m->req);
	assert_null(commit_batch(c, rest));
	commit_stats(c, &writes, &nreqs);
	assert_int_equal(writes, 3);
	assert_int_equal(nreqs, BURST);
	run_until_seen(&lt);
	assert_all_done_once(reqs, BURST);
	commit_free(c);
	loop_free(lt.l);
	treq_free(reqs, BURST);
	free(reqs);
}

/* The byte bound, counted from each request's `bytes` (what its fill is about to add): with
 * requests of a bit over half of COMMIT_MAX_BYTES, the first write takes two (it stops only
 * once the bound is reached), the second the third; all three messages are stored. */
static void test_batch_byte_bound(void **state)
{
	struct queue *q = *state;
	struct treq reqs[3];
	struct lthread lt = {.expect = 3};
	struct commit *c = NULL;
	struct commit_req *rest;
	uint64_t writes, nreqs;

	assert_int_equal(loop_new(&lt.l, 64), 0);
	assert_int_equal(commit_start(q, NULL, NULL, &c), 0);
	for (unsigned i = 0; i < 3; i++) {
		treq_init(&reqs[i], lt.l, i, 1);
		reqs[i].m->req.bytes = COMMIT_MAX_BYTES / 2 + 1;
	}
	rest = commit_batch(c, link_reqs(reqs, 3));
	assert_ptr_equal(rest, &reqs[2].m->req);
	commit_stats(c, &writes, &nreqs);
	assert_int_equal(writes, 1);
	assert_int_equal(nreqs, 2);
	assert_null(commit_batch(c, rest));
	run_until_seen(&lt);
	assert_all_done_once(reqs, 3);
	commit_free(c);
	loop_free(lt.l);
	for (unsigned i = 0; i < 3; i++)
		assert_stored(q, &reqs[i]);
	treq_free(reqs, 3);
}

/* Requests whose bytes stay below the bound all go into one write. */
static void test_batch_small_bytes_one_write(void **state)
{
	struct queue *q = *state;
	struct treq reqs[3];
	struct lthread lt = {.expect = 3};
	struct commit *c = NULL;
	uint64_t writes, nreqs;

	assert_int_equal(loop_new(&lt.l, 64), 0);
	assert_int_equal(commit_start(q, NULL, NULL, &c), 0);
	for (unsigned i = 0; i < 3; i++) {
		treq_init(&reqs[i], lt.l, i, 1);
		reqs[i].m->req.bytes = COMMIT_MAX_BYTES / 4;
	}
	assert_null(commit_batch(c, link_reqs(reqs, 3)));
	commit_stats(c, &writes, &nreqs);
	assert_int_equal(writes, 1);
	assert_int_equal(nreqs, 3);
	run_until_seen(&lt);
	assert_all_done_once(reqs, 3);
	commit_free(c);
	loop_free(lt.l);
	treq_free(reqs, 3);
}

/* commit_halt writes and completes everything posted before it; a request posted after it
 * is not written and completes at once with -ESHUTDOWN; halt is idempotent. */
static void test_halt_drains(void **state)
{
	struct queue *q = *state;
	struct treq reqs[101];
	struct lthread lt = {.expect = 101};
	struct commit *c = NULL;
	uint64_t writes, nreqs;

	assert_int_equal(loop_new(&lt.l, 64), 0);
	assert_int_equal(commit_start(q, NULL, NULL, &c), 0);
	for (unsigned i = 0; i < 101; i++)
		treq_init(&reqs[i], lt.l, i, 1);
	for (unsigned i = 0; i < 100; i++)
		commit_post(c, &reqs[i].m->req);
	commit_halt(c);
	commit_stats(c, &writes, &nreqs);
	assert_int_equal(nreqs, 100);
	commit_halt(c);
	commit_post(c, &reqs[100].m->req);
	run_until_seen(&lt);
	assert_all_done_once(reqs, 100);
	assert_int_equal(reqs[100].calls, 1);
	assert_int_equal(reqs[100].m->req.result, -ESHUTDOWN);
	assert_int_equal(queue_get(q, &reqs[100].m->id, NULL, NULL, NULL, NULL), -ENOENT);
	commit_stats(c, &writes, &nreqs);
	assert_int_equal(nreqs, 100);
	commit_free(c);
	commit_free(NULL);
	loop_free(lt.l);
	treq_free(reqs, 101);
}

/* Record outcome code for rcpt i of t's message (250 delivered, 5xx failed, 4xx pending). */
static void result(struct treq *t, unsigned i, int code)
{
	enum queue_rcpt_state st = code == 250	 ? QUEUE_RCPT_DELIVERED
				   : code >= 500 ? QUEUE_RCPT_FAILED
						 : QUEUE_RCPT_PENDING;

	t->m->groups[t->m->env->rcpts[i].dest].out = true;
	msg_set_result(t->m, i, st, code, "reply", 5);
}

/* After test_final_update_and_delete's final writes: A (t[0]) alone is left, with meta the
 * re-encoded one, group 0's entry at 5100 valued (1 attempt, its name), group 2's at 1000 and
 * none for group 1; nothing of B (t[1]). */
static void assert_after_final(struct queue *q, const struct treq *t)
{
	struct dt_dump d;
	uint64_t count = 9;
	int at;

	assert_int_equal(queue_count(q, &count), 0);
	assert_int_equal(count, 1);
	assert_stored(q, &t[0]);
	assert_int_equal(dt_dump_sched(q, &d), 0);
	assert_int_equal(d.n, 2);
	assert_int_equal(dt_dump_find(&d, &t[0].m->id, 0, &at), 2);
	assert_int_equal(d.e[at].due, 5100);
	assert_true(dt_sval_is(d.e[at].sval, d.e[at].sval_len, 1, "d0.example"));
	dt_dump_find(&d, &t[0].m->id, 2, &at);
	assert_int_equal(d.e[at].due, 1000);
	assert_gone(q, &t[1].m->id);
}

/* The end of a round through the commit thread with msg_fill_final: message A (3 groups)
 * retries group 0, finishes group 1, leaves group 2 alone: its group 0 entry moves with the new
 * attempt count in its value, group 1's goes, group 2's stays; message B (2 groups) ends all
 * final and is deleted with both entries. */
static void test_final_update_and_delete(void **state)
{
	struct queue *q = *state;
	struct treq t[2];
	struct lthread lt = {.expect = 2};
	struct commit *c = NULL;

	assert_int_equal(loop_new(&lt.l, 64), 0);
	assert_int_equal(commit_start(q, NULL, NULL, &c), 0);
	treq_init(&t[0], lt.l, 0, 3);
	treq_init(&t[1], lt.l, 1, 2);
	commit_post(c, &t[0].m->req);
	commit_post(c, &t[1].m->req);
	run_until_seen(&lt);
	assert_stored(q, &t[0]);
	assert_stored(q, &t[1]);

	result(&t[0], 0, 451);
	result(&t[0], 1, 250);
	assert_int_equal(msg_plan(t[0].m, 5000, dt_sched(100)), MSG_PLAN_UPDATE);
	result(&t[1], 0, 250);
	result(&t[1], 1, 550);
	assert_int_equal(msg_plan(t[1].m, 5000, dt_sched(100)), MSG_PLAN_DELETE);
	for (unsigned i = 0; i < 2; i++) {
		treq_arm(&t[i], lt.l, msg_fill_final);
		t[i].m->req.sync = true;
		commit_post(c, &t[i].m->req);
	}
	lt.expect = 4;
	run_until_seen(&lt);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(t[i].calls, 2);
		assert_int_equal(t[i].result, 0);
	}
	commit_free(c);
	loop_free(lt.l);
	assert_after_final(q, t);
	treq_free(t, 2);
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

/* Post t's request and run its loop until the completion; returns its result. */
static int post_one(struct commit *c, struct loop *l, struct treq *t)
{
	struct lthread lt = {.l = l, .expect = 1};

	commit_post(c, &t->m->req);
	run_until_seen(&lt);
	assert_int_equal(t->calls, 1);
	return t->result;
}

/* Make the store hold what t's PUT writes, as if the WAL record of a write that reported a
 * failure had survived (RocksDB may, when the sync fails after the append). */
static void store_behind_the_failure(struct commit *c, struct queue *q, struct treq *t)
{
	char err[128];

	queue_batch_clear(c->batch);
	t->m->req.fill(&t->m->req, c->batch);
	assert_int_equal(queue_write(q, c->batch, true, err, sizeof(err)), 0);
	queue_batch_clear(c->batch);
	assert_stored(q, t);
}

/* Writes work again: the probe ends degraded mode within a few probe periods, and the state
 * callback was told once each way. */
static void wait_recovered(struct commit *c, const struct state_log *sl)
{
	uint64_t t0 = util_mono_ms();

	while (commit_degraded(c) && util_mono_ms() - t0 < 5000)
		usleep(10000);
	assert_false(commit_degraded(c));
	assert_true(util_mono_ms() - t0 <= 4 * COMMIT_PROBE_MS); /* (loose: a busy CI machine) */
	assert_int_equal(sl->healthy_calls, 1);
	assert_int_equal(sl->degraded_calls, 1);
}

/* Requests 0 and 3 are stored (3 groups each); 1 and 2 were refused, and the copy of 1 the
 * store had is gone, entries of every group included. */
static void assert_after_recovery(struct queue *q, const struct treq *t)
{
	struct dt_dump d;
	uint64_t count = 9;

	assert_int_equal(queue_count(q, &count), 0);
	assert_int_equal(count, 2);
	assert_stored(q, &t[0]);
	assert_stored(q, &t[3]);
	assert_gone(q, &t[1].m->id);
	assert_gone(q, &t[2].m->id);
	assert_int_equal(dt_dump_sched(q, &d), 0);
	assert_int_equal(d.n, 6);
}

/* A failed write (ENOSPC) fails its request with -ENOSPC and puts the thread in degraded mode
 * (on_state(true) once); later requests fail at once with the same error and nothing reaches
 * the store; once writes work again the probe ends degraded mode within a few probe periods
 * (on_state(false) once), after deleting what the failed PUT (3 groups) may have left in the
 * store: its meta, body and the sched entries of all three groups; then requests are written
 * again. */
static void test_degraded_and_recovery(void **state)
{
	struct queue_opts qo = {.backend = QUEUE_BACKEND_MEMORY, .fail_writes = &fail_writes};
	struct state_log sl = {0};
	struct queue *q = NULL;
	struct commit *c = NULL;
	struct loop *l = NULL;
	struct treq t[4];
	char err[128];

	(void)state;
	assert_int_equal(queue_open(&qo, &q, err, sizeof(err)), 0);
	assert_int_equal(loop_new(&l, 64), 0);
	assert_int_equal(commit_start(q, on_state, &sl, &c), 0);
	for (unsigned i = 0; i < 4; i++)
		treq_init(&t[i], l, i, 3);
	assert_int_equal(post_one(c, l, &t[0]), 0);
	store_behind_the_failure(c, q, &t[1]);
	__atomic_store_n(&fail_writes, -ENOSPC, __ATOMIC_RELAXED);
	assert_int_equal(post_one(c, l, &t[1]), -ENOSPC);
	assert_true(commit_degraded(c));
	assert_int_equal(sl.degraded_calls, 1);
	/* while degraded requests fail fast with the degraded error */
	__atomic_store_n(&fail_writes, -EIO, __ATOMIC_RELAXED);
	assert_int_equal(post_one(c, l, &t[2]), -ENOSPC);
	__atomic_store_n(&fail_writes, 0, __ATOMIC_RELAXED);
	wait_recovered(c, &sl);
	assert_int_equal(post_one(c, l, &t[3]), 0);
	commit_free(c);
	loop_free(l);
	assert_after_recovery(q, t);
	treq_free(t, 4);
	queue_close(q);
}

/* The commit thread's batch gives a burst's memory back after the write. */
static void test_batch_released(void **state)
{
	struct commit c = {.batch = queue_batch_new()};
	struct queue_id id = {{0}};
	static char meta[1024];

	(void)state;
	for (unsigned i = 0; i < 2000; i++) {
		queue_batch_meta(c.batch, &id, meta, sizeof(meta));
		queue_batch_sched_del(c.batch, 1, &id, 0);
		queue_batch_sched_put(c.batch, 2, &id, 0, "abcd", 4);
	}
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
	    cmocka_unit_test_setup_teardown(test_batch_small_bytes_one_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_halt_drains, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_final_update_and_delete, setup, teardown),
	    cmocka_unit_test(test_degraded_and_recovery),
	    cmocka_unit_test(test_batch_released),
	};

	return cmocka_run_group_tests_name("commit", tests, NULL, NULL);
}
