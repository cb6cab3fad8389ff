/* test_runner — unit tests for engine/daemon/runner.c over the in-memory queue backend.
 *
 * Why: the runner decides which queued (message, destination group) entries come back into
 * RAM, and hands each message over with the group that is due (m->load_group). A bug here
 * either loses mail (an entry passed by the cursor and never seen again), sends it twice (a
 * resident or stale entry loaded again: staleness is judged by the group's due in the freshly
 * read envelope), dispatches the wrong group, or blows the RAM budget. The queue contents are
 * written with msg.c's own fill functions (daemon_test.h). runner.c is included so the scan can be
 * driven directly (runner_scan / runner_entry on a struct runner set up by the test): the
 * outcome then depends on the queue contents only, not on thread timing. One test runs the
 * real thread, bounded by alarm(), for dispatch and runner_rewind.
 */
#include "engine/daemon/runner.c"
#include "tests/unit/daemon/daemon_test.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define MAX_GOT 16
#define HOUR_MS (3600u * 1000u)

/* Messages dispatched, in order; shared with the runner thread in the threaded test. */
struct got {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct msg *m[MAX_GOT];
	unsigned n;
};

struct fix {
	struct queue *q;
	struct resident *res;
	struct ready *ready;
	struct runner r; /* driven directly by the test */
	struct got got;
	uint64_t now;	  /* wall clock at setup */
	struct msg *held; /* a message the test made resident itself, or NULL */
};

static void collect(void *arg, struct msg *m)
{
	struct got *g = arg;

	pthread_mutex_lock(&g->lock);
	if (g->n < MAX_GOT)
		g->m[g->n++] = m;
	pthread_mutex_unlock(&g->lock);
	pthread_cond_broadcast(&g->cond);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	alarm(20); /* a hung runner fails the test instead of hanging it */
	if (!f || !(f->q = dt_queue_open()))
		return -1;
	f->res = resident_new();
	f->ready = ready_new(1000);
	pthread_mutex_init(&f->got.lock, NULL);
	pthread_cond_init(&f->got.cond, NULL);
	f->now = util_wall_ms();
	f->r.o = (struct runner_opts){.q = f->q,
				      .res = f->res,
				      .ready = f->ready,
				      .budget_bytes = UINT64_MAX,
				      .interval_ms = 20,
				      .dispatch = collect,
				      .arg = &f->got};
	f->r.last_full_ms = f->now;
	f->r.rewind_to = UINT64_MAX;
	*state = f;
	return 0;
}

/* Drop message i of got from RAM (as a shard does when done with it). */
static void got_drop(struct fix *f, unsigned i)
{
	resident_del(f->res, f->got.m[i]);
	msg_free(f->got.m[i]);
	f->got.m[i] = NULL;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	for (unsigned i = 0; i < f->got.n; i++)
		if (f->got.m[i])
			got_drop(f, i);
	if (f->held) {
		resident_del(f->res, f->held);
		msg_free(f->held);
	}
	assert_int_equal(resident_count(f->res), 0);
	resident_free(f->res);
	ready_free(f->ready);
	queue_close(f->q);
	pthread_mutex_destroy(&f->got.lock);
	pthread_cond_destroy(&f->got.cond);
	free(f);
	alarm(0);
	return 0;
}

static void id_of(struct queue_id *id, uint64_t seq)
{
	queue_id_make(id, DT_CREATED, 1, seq);
}

/* A one-group message seq due at due, with a body of body_len bytes. */
static void put(struct fix *f, uint64_t seq, uint64_t due, size_t body_len)
{
	assert_int_equal(dt_put(f->q, seq, 1, 1, &due, body_len), 0);
}

/* Dispatch i is message seq, resident, handed over for group `group` whose due (in the envelope
 * it was loaded with) is due. */
static void assert_got_group(struct fix *f, unsigned i, uint64_t seq, unsigned group, uint64_t due)
{
	struct queue_id id;

	id_of(&id, seq);
	assert_true(i < f->got.n);
	assert_non_null(f->got.m[i]);
	assert_memory_equal(f->got.m[i]->id.b, id.b, QUEUE_ID_LEN);
	assert_int_equal(f->got.m[i]->load_group, group);
	assert_true(group < f->got.m[i]->env->ndest);
	assert_int_equal(f->got.m[i]->env->dests[group].due, due);
	assert_int_equal(f->got.m[i]->groups[group].disk_due, due);
	assert_true(resident_has(f->res, &id));
}

static void assert_got(struct fix *f, unsigned i, uint64_t seq, uint64_t due)
{
	assert_got_group(f, i, seq, 0, due);
}

/* Make message seq resident without the runner (a shard holding it). */
static void hold(struct fix *f, uint64_t seq)
{
	struct queue_env env = {.sender = "", .nrcpt = 0};
	struct queue_id id;

	id_of(&id, seq);
	f->held = msg_new(&id, &env, NULL, 0);
	assert_non_null(f->held);
	resident_add(f->res, f->held);
}

/* End the round of dispatched message i as its home shard would: every recipient of the due
 * group gets code (250 delivered, 451 deferred by retry_ms), the outcome is written with
 * msg_fill_final, and the message leaves RAM. Returns the due time the home would rewind the
 * runner to (the earliest due of the groups not in the round, 0 if none). */
static uint64_t got_round_end(struct fix *f, unsigned i, int code, uint64_t now, uint64_t retry)
{
	struct msg *m = f->got.m[i];
	unsigned g = m->load_group, idx[DT_MAX_RCPTS], n = msg_group_rcpts(m, g, idx);
	uint64_t idle = 0;

	m->groups[g].out = true;
	for (unsigned k = 0; k < n; k++)
		msg_set_result(m, idx[k], code == 250 ? QUEUE_RCPT_DELIVERED : QUEUE_RCPT_PENDING,
			       code, "reply", 5);
	for (uint32_t o = 0; o < m->env->ndest; o++)
		if (o != g && m->env->dests[o].due && (!idle || m->env->dests[o].due < idle))
			idle = m->env->dests[o].due;
	assert_int_not_equal(msg_plan(m, now, dt_sched(retry)), MSG_PLAN_NONE);
	assert_int_equal(dt_write_fill(f->q, m, msg_fill_final), 0);
	got_drop(f, i);
	return idle;
}

/* Feed runner_entry the entry (due, id, group) with the value the daemon writes for it. */
static int entry(struct fix *f, uint64_t due, const struct queue_id *id, unsigned group)
{
	uint8_t sval[64];
	char name[32];

	snprintf(name, sizeof(name), "d%u.example", group);
	return runner_entry(&f->r, due, id, group, sval, dt_sval(0, name, sval));
}

/* Due entries come out in due-time order (not id order), each loaded with its body and made
 * resident; a future entry does not; the cursor stops at the last due entry. A second scan
 * loads nothing again. */
static void test_due_in_time_order(void **state)
{
	struct fix *f = *state;

	put(f, 1, f->now - 1000, 5);
	put(f, 2, f->now - 3000, 6);
	put(f, 3, f->now - 2000, 7);
	put(f, 4, f->now + HOUR_MS, 8);
	runner_scan(&f->r);
	assert_int_equal(f->got.n, 3);
	assert_got(f, 0, 2, f->now - 3000);
	assert_got(f, 1, 3, f->now - 2000);
	assert_got(f, 2, 1, f->now - 1000);
	/* envelopes only: a body is read when a session is about to send it (fetch.h) */
	assert_null(f->got.m[0]->body);
	assert_int_equal(f->got.m[0]->env->body_len, 6);
	assert_int_equal(f->r.cursor, f->now - 1000);
	assert_int_equal(resident_count(f->res), 3);
	assert_int_equal(resident_bytes(f->res), resident_cost(f->got.m[0]) +
						     resident_cost(f->got.m[1]) +
						     resident_cost(f->got.m[2]));
	assert_int_equal(f->r.loaded, 3);

	runner_scan(&f->r);
	assert_int_equal(f->got.n, 3);
}

/* A resident id is not loaded again, but the cursor passes it. */
static void test_resident_skipped_cursor_passes(void **state)
{
	struct fix *f = *state;

	put(f, 1, f->now - 2000, 4);
	put(f, 2, f->now - 1000, 4);
	hold(f, 2);
	runner_scan(&f->r);
	assert_int_equal(f->got.n, 1);
	assert_got(f, 0, 1, f->now - 2000);
	assert_int_equal(f->r.cursor, f->now - 1000);
	assert_int_equal(resident_count(f->res), 2);
}

/* With the budget used up the scan stops at the first entry it cannot load, without passing
 * it; once RAM is freed a later scan loads it. (The budget counts envelopes here: a budget of
 * 1 byte is full after one message.) */
static void test_budget_stops_without_passing(void **state)
{
	struct fix *f = *state;

	f->r.o.budget_bytes = 1;
	put(f, 1, f->now - 3000, 100);
	put(f, 2, f->now - 2000, 10);
	put(f, 3, f->now - 1000, 10);
	runner_scan(&f->r);
	assert_int_equal(f->got.n, 1);
	assert_got(f, 0, 1, f->now - 3000);
	assert_int_equal(f->r.cursor, f->now - 3000);

	runner_scan(&f->r); /* still full: nothing, cursor unchanged */
	assert_int_equal(f->got.n, 1);
	assert_int_equal(f->r.cursor, f->now - 3000);

	got_round_end(f, 0, 250, f->now, 60000);
	runner_scan(&f->r);
	assert_int_equal(f->got.n, 2);
	assert_got(f, 1, 2, f->now - 2000);
	assert_int_equal(f->r.cursor, f->now - 2000);
}

/* runner_entry returns "stop" (> 0) at a full budget and leaves the cursor alone. */
static void test_budget_full_entry_returns_stop(void **state)
{
	struct fix *f = *state;
	struct queue_id id;
	uint8_t sval[64];
	size_t len = dt_sval(0, "d0.example", sval);

	f->r.o.budget_bytes = 0;
	f->r.cursor = 5;
	put(f, 1, f->now - 1000, 1);
	id_of(&id, 1);
	assert_true(runner_entry(&f->r, f->now - 1000, &id, 0, sval, len) > 0);
	assert_int_equal(f->got.n, 0);
	assert_int_equal(f->r.cursor, 5);
}

/* The scan saw group 0 at T, but the home shard has since retried the group: meta holds its
 * new due T2 and the sched entry moved there. The entry at T is skipped (cursor passes it,
 * nothing loaded); the one at T2 loads with the attempt recorded. */
static void test_stale_entry_skipped(void **state)
{
	struct fix *f = *state;
	uint64_t t = f->now - 3000, t2;
	struct queue_id id;

	put(f, 1, t, 3);
	runner_scan(&f->r);
	assert_int_equal(f->got.n, 1);
	got_round_end(f, 0, 451, f->now - 2000, 500); /* now due at t2 = now - 1500 */
	t2 = f->now - 1500;
	id_of(&id, 1);
	assert_int_equal(entry(f, t, &id, 0), 0);
	assert_int_equal(f->got.n, 1);
	assert_int_equal(resident_count(f->res), 0);
	assert_int_equal(f->r.cursor, t);

	assert_int_equal(entry(f, t2, &id, 0), 0);
	assert_int_equal(f->got.n, 2);
	assert_got(f, 1, 1, t2);
	assert_int_equal(f->got.m[1]->env->dests[0].attempts, 1);
	assert_int_equal(f->got.m[1]->env->rcpts[0].last_code, 451);
}

/* An entry naming a group the envelope does not have, or a due that is not the group's, is
 * stale and not loaded. */
static void test_stale_unknown_group(void **state)
{
	struct fix *f = *state;
	uint64_t t = f->now - 1000;
	struct queue_id id;

	put(f, 1, t, 3);
	id_of(&id, 1);
	assert_int_equal(entry(f, t, &id, 1), 0);
	assert_int_equal(entry(f, t, &id, 65535), 0);
	assert_int_equal(entry(f, t - 1, &id, 0), 0);
	assert_int_equal(f->got.n, 0);
	assert_int_equal(resident_count(f->res), 0);
	assert_int_equal(entry(f, t, &id, 0), 0);
	assert_int_equal(f->got.n, 1);
}

/* Within one scan, a destination found full stays full: a unit leaving it mid-scan does not let
 * a later entry of it in ahead of the earlier one left on disk (the drain keeps due order);
 * the next scan (the rewind) loads again. */
static void test_full_destination_blocked_for_the_scan(void **state)
{
	struct fix *f = *state;
	uint64_t t = f->now - 1000;
	struct ready_dest *rd = ready_get(f->ready, "d0.example");
	struct queue_id id;
	unsigned i = 0;

	while (ready_count(rd) < 1000) /* fill d0 to its max */
		ready_add(rd);
	f->r.scan = 5;
	put(f, 1, t, 1);
	put(f, 2, t + 1, 1);
	id_of(&id, 1);
	assert_int_equal(entry(f, t, &id, 0), 0); /* full: left on disk, d0 blocked */
	assert_int_equal(f->got.n, 0);
	ready_release(f->ready, rd); /* a unit leaves mid-scan */
	id_of(&id, 2);
	assert_int_equal(entry(f, t + 1, &id, 0), 0); /* still blocked in this scan */
	assert_int_equal(f->got.n, 0);
	f->r.scan = 6; /* the next scan (the rewind to t) loads in due order */
	id_of(&id, 1);
	assert_int_equal(entry(f, t, &id, 0), 0);
	assert_int_equal(f->got.n, 1);
	while (i++ < 999)
		ready_release(f->ready, rd);
}

/* runner_stale compares the entry's due with the group's due in the envelope. */
static void test_stale_by_group_due(void **state)
{
	struct queue_dest dests[2] = {{.name = "a", .due = 100}, {.name = "b", .due = 0}};
	struct queue_env env = {.sender = "", .ndest = 2, .dests = dests};
	struct msg m = {.env = &env};

	(void)state;
	assert_false(runner_stale(0, 100, &m));
	assert_true(runner_stale(0, 101, &m));
	assert_true(runner_stale(1, 100, &m)); /* group 1 has no entry any more */
	assert_true(runner_stale(2, 100, &m));
}

/* Two groups of one message due at different times: the first is dispatched with load_group 0;
 * the second's entry is passed while the message is resident (same id); when the round of
 * group 0 ends (delivered: its entry removed) the home rewinds the runner to group 1's due, and
 * the next scan dispatches the message again with load_group 1, loaded from what the first
 * round wrote. */
static void test_groups_dispatched_separately(void **state)
{
	struct fix *f = *state;
	uint64_t t0 = f->now - 3000, t1 = f->now - 2000;
	const uint64_t dues[2] = {t0, t1};

	assert_int_equal(dt_put(f->q, 1, 4, 2, dues, 5), 0);
	put(f, 2, f->now - 1000, 5);
	runner_scan(&f->r);
	assert_int_equal(f->got.n, 2);
	assert_got_group(f, 0, 1, 0, t0);
	assert_got(f, 1, 2, f->now - 1000);
	assert_int_equal(f->r.cursor, f->now - 1000);

	assert_int_equal(got_round_end(f, 0, 250, f->now, 60000), t1);
	runner_scan(&f->r); /* the cursor is past t1: nothing without the rewind */
	assert_int_equal(f->got.n, 2);
	f->r.cursor = t1; /* what runner_rewind(t1) does at the next scan */
	runner_scan(&f->r);
	assert_int_equal(f->got.n, 3);
	assert_got_group(f, 2, 1, 1, t1);
	assert_int_equal(f->got.m[2]->env->dests[0].due, 0);
	assert_int_equal(msg_pending(f->got.m[2]), 2);
}

/* A message with two groups due at the same time is dispatched once (for the first group in
 * key order), not twice. */
static void test_same_due_groups_dispatched_once(void **state)
{
	struct fix *f = *state;
	uint64_t t = f->now - 1000;
	const uint64_t dues[3] = {t, t, t};

	assert_int_equal(dt_put(f->q, 1, 3, 3, dues, 5), 0);
	runner_scan(&f->r);
	assert_int_equal(f->got.n, 1);
	assert_got_group(f, 0, 1, 0, t);
	assert_int_equal(resident_count(f->res), 1);
	assert_int_equal(f->r.cursor, t);
}

/* Run fn(f) with stderr redirected to a temp file (no assertions in there: stderr must be
 * restored); *ret gets fn's result; returns how many bytes were written to stderr. */
static long stderr_bytes_during(int (*fn)(struct fix *), struct fix *f, int *ret)
{
	char path[] = "/tmp/riptide-runner-stderr-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	long n;

	assert_true(fd >= 0 && saved >= 0);
	unlink(path);
	fflush(stderr);
	dup2(fd, 2);
	*ret = fn(f);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = lseek(fd, 0, SEEK_END);
	close(fd);
	return n;
}

static int entry_for_missing(struct fix *f)
{
	struct queue_id id;
	uint8_t sval[64];
	size_t len = dt_sval(0, "d0.example", sval);

	id_of(&id, 9);
	return runner_entry(&f->r, f->now - 500, &id, 0, sval, len);
}

/* A message deleted since the snapshot (queue_get -> ENOENT) is skipped without a word. */
static void test_deleted_skipped_silently(void **state)
{
	struct fix *f = *state;
	int ret = -1;

	assert_int_equal(stderr_bytes_during(entry_for_missing, f, &ret), 0);
	assert_int_equal(ret, 0);
	assert_int_equal(f->got.n, 0);
	assert_int_equal(resident_count(f->res), 0);
	assert_int_equal(f->r.cursor, f->now - 500);
}

/* Every RUNNER_RESCAN_MS, or when the wall clock stepped back, the scan starts from 0 again:
 * an entry behind the cursor is found. */
static void test_periodic_full_rescan(void **state)
{
	struct fix *f = *state;

	put(f, 1, f->now - 2000, 1);
	f->r.cursor = f->now - 1000; /* passed it earlier */
	runner_scan(&f->r);
	assert_int_equal(f->got.n, 0);

	f->r.last_full_ms = util_wall_ms() - RUNNER_RESCAN_MS;
	runner_scan(&f->r);
	assert_int_equal(f->got.n, 1);
	assert_got(f, 0, 1, f->now - 2000);
	assert_true(f->r.last_full_ms >= f->now);

	put(f, 2, f->now - 3000, 1);
	f->r.cursor = f->now - 1000;
	f->r.last_full_ms = util_wall_ms() + HOUR_MS; /* clock stepped back */
	runner_scan(&f->r);
	assert_int_equal(f->got.n, 2);
	assert_got(f, 1, 2, f->now - 3000);
}

/* ---- the real thread ---- */

/* Wait (bounded) until at least n messages were dispatched; returns the count. */
static unsigned got_wait(struct got *g, unsigned n, unsigned ms)
{
	struct timespec until;
	unsigned have;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&g->lock);
	while (g->n < n && pthread_cond_timedwait(&g->cond, &g->lock, &until) != ETIMEDOUT)
		;
	have = g->n;
	pthread_mutex_unlock(&g->lock);
	return have;
}

/* The thread dispatches a due message at once; a second one put later comes with a kick. When
 * the first is dropped from RAM behind the cursor, scans do not find it again until
 * runner_rewind moves the cursor back to its due time. */
static void test_thread_dispatch_and_rewind(void **state)
{
	struct fix *f = *state;
	struct runner *r = NULL;
	uint64_t ta = f->now - 2000, tb = f->now - 1000;

	put(f, 1, ta, 3);
	assert_int_equal(runner_start(&f->r.o, &r), 0);
	assert_int_equal(got_wait(&f->got, 1, 5000), 1);
	assert_got(f, 0, 1, ta);

	put(f, 2, tb, 3);
	runner_kick(r);
	assert_int_equal(got_wait(&f->got, 2, 5000), 2); /* scan passed resident 1, loaded 2 */
	assert_got(f, 1, 2, tb);

	got_drop(f, 0); /* 1 leaves RAM; its sched key (ta) is behind the cursor (tb) */
	runner_kick(r);
	usleep(100 * 1000); /* several scans at 20 ms */
	assert_int_equal(got_wait(&f->got, 3, 1), 2);

	runner_rewind(r, ta);
	assert_int_equal(got_wait(&f->got, 3, 5000), 3);
	runner_free(r);
	assert_got(f, 2, 1, ta);
	assert_int_equal(f->got.n, 3);
}

/* runner_halt is idempotent; kick and rewind after it are harmless no-ops. */
static void test_halt_then_kick(void **state)
{
	struct fix *f = *state;
	struct runner *r = NULL;

	assert_int_equal(runner_start(&f->r.o, &r), 0);
	runner_halt(r);
	runner_halt(r);
	runner_kick(r);
	runner_rewind(r, 0);
	runner_free(r);
	runner_free(NULL);
	assert_int_equal(f->got.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_due_in_time_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resident_skipped_cursor_passes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_budget_stops_without_passing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_budget_full_entry_returns_stop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_entry_skipped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_unknown_group, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_destination_blocked_for_the_scan, setup,
					    teardown),
	    cmocka_unit_test(test_stale_by_group_due),
	    cmocka_unit_test_setup_teardown(test_groups_dispatched_separately, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_same_due_groups_dispatched_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deleted_skipped_silently, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_periodic_full_rescan, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thread_dispatch_and_rewind, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_halt_then_kick, setup, teardown),
	};

	return cmocka_run_group_tests_name("runner", tests, NULL, NULL);
}
