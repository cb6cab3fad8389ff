/* test_loop — unit tests for engine/loop: timers, cancel, the cross-thread mailbox, linked
 * timeouts on socket ops, loop_get_sqe on a full SQ, and the idle hook.
 *
 * Why these: they are the loop's promises that every shard relies on. Each test asserts an
 * outcome (a result code, the exact set and order of messages run, the bytes received), not a
 * timing; an alarm() turns a hung loop into a failure instead of a stuck test run.
 */
#include "engine/loop/loop.h"
#include "engine/util/util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define RING_ENTRIES 8

struct result {
	struct loop_op op;
	struct loop *l;
	int res;
	int calls;
	bool stop_on_done;
};

static void result_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct result *r = container_of(op, struct result, op);

	r->res = res;
	r->calls++;
	if (r->stop_on_done)
		loop_stop(r->l);
}

static void result_init(struct result *r, struct loop *l, bool stop_on_done)
{
	memset(r, 0, sizeof(*r));
	r->op.cb = result_cb;
	r->op.owner = r;
	r->l = l;
	r->stop_on_done = stop_on_done;
}

static int setup(void **state)
{
	struct loop *l;

	alarm(30); /* a hung loop fails the test instead of hanging it */
	if (loop_new(&l, RING_ENTRIES) < 0)
		return -1;
	*state = l;
	return 0;
}

static int teardown(void **state)
{
	loop_free(*state);
	alarm(0);
	return 0;
}

static void test_timer_fires(void **state)
{
	struct loop *l = *state;
	struct result r;
	uint64_t t0 = util_mono_ms();

	result_init(&r, l, true);
	loop_timer(l, &r.op, 20);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.res, -ETIME);
	assert_true(util_mono_ms() - t0 >= 15); /* it waited, it did not fire at once */
	assert_true(loop_now_ms(l) >= t0);
}

static void test_timer_cancel(void **state)
{
	struct loop *l = *state;
	struct result r;

	result_init(&r, l, true);
	loop_timer(l, &r.op, 10000);
	loop_cancel(l, &r.op);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.res, -ECANCELED);
}

/* A stop requested before loop_run ends that run; the loop then runs again normally. */
static void test_stop_then_run_again(void **state)
{
	struct loop *l = *state;
	struct result r;

	loop_stop(l);
	assert_int_equal(loop_run(l), 0);
	result_init(&r, l, true);
	loop_timer(l, &r.op, 1);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.res, -ETIME);
}

/* ---- mailbox: 4 producers x 10,000 messages ---- */

#define PRODUCERS    4
#define PER_PRODUCER 10000

struct post_msg {
	struct loop_msg m;
	unsigned producer;
	unsigned seq;
};

struct post_test {
	struct loop *l;
	struct post_msg *msgs[PRODUCERS];
	unsigned next_seq[PRODUCERS]; /* loop thread only */
	unsigned out_of_order;	      /* loop thread only */
	unsigned *runs[PRODUCERS];    /* times each message ran, loop thread only */
	atomic_uint done;
	pthread_t self; /* the loop's thread */
	unsigned wrong_thread;
};

struct producer {
	struct post_test *t;
	unsigned id;
};

static struct post_test *post_current; /* fn gets only (loop, msg) */

static void post_fn(struct loop *l, struct loop_msg *m)
{
	struct post_msg *pm = container_of(m, struct post_msg, m);
	struct post_test *t = post_current;

	if (!pthread_equal(pthread_self(), t->self))
		t->wrong_thread++;
	if (pm->seq != t->next_seq[pm->producer])
		t->out_of_order++;
	t->next_seq[pm->producer] = pm->seq + 1;
	t->runs[pm->producer][pm->seq]++;
	atomic_fetch_add(&t->done, 1);
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	struct post_msg *msgs = p->t->msgs[p->id];

	for (unsigned i = 0; i < PER_PRODUCER; i++) {
		msgs[i].m.fn = post_fn;
		msgs[i].producer = p->id;
		msgs[i].seq = i;
		loop_post(p->t->l, &msgs[i].m);
		if (i % 1000 == 0)
			sched_yield(); /* let the loop drain mid-stream too */
	}
	return NULL;
}

static void *stopper_main(void *arg)
{
	struct post_test *t = arg;

	while (atomic_load(&t->done) < PRODUCERS * PER_PRODUCER)
		usleep(1000);
	loop_stop(t->l);
	return NULL;
}

static void test_post_many_producers(void **state)
{
	static struct post_test t;
	struct producer p[PRODUCERS];
	pthread_t th[PRODUCERS], stopper;

	memset(&t, 0, sizeof(t));
	t.l = *state;
	t.self = pthread_self();
	post_current = &t;
	for (unsigned i = 0; i < PRODUCERS; i++) {
		t.msgs[i] = util_xcalloc(PER_PRODUCER, sizeof(struct post_msg));
		t.runs[i] = util_xcalloc(PER_PRODUCER, sizeof(unsigned));
		p[i] = (struct producer){&t, i};
		assert_int_equal(pthread_create(&th[i], NULL, producer_main, &p[i]), 0);
	}
	assert_int_equal(pthread_create(&stopper, NULL, stopper_main, &t), 0);
	assert_int_equal(loop_run(t.l), 0);
	for (unsigned i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	pthread_join(stopper, NULL);

	assert_int_equal(atomic_load(&t.done), PRODUCERS * PER_PRODUCER);
	assert_int_equal(t.out_of_order, 0);
	assert_int_equal(t.wrong_thread, 0);
	for (unsigned i = 0; i < PRODUCERS; i++) {
		for (unsigned s = 0; s < PER_PRODUCER; s++)
			assert_int_equal(t.runs[i][s], 1);
		free(t.msgs[i]);
		free(t.runs[i]);
	}
}

/* ---- recv with a linked timeout ---- */

struct recv_test {
	struct result r;
	char buf[64];
};

static void arm_recv(struct loop *l, int fd, struct recv_test *t, uint64_t ms)
{
	struct io_uring_sqe *sqe;

	loop_reserve(l, 2);
	sqe = loop_get_sqe(l);
	io_uring_prep_recv(sqe, fd, t->buf, sizeof(t->buf), 0);
	loop_sqe_op(sqe, &t->r.op);
	loop_link_timeout(l, sqe, &t->r.op.ts, ms);
}

static void test_recv_linked_timeout(void **state)
{
	struct loop *l = *state;
	struct recv_test t;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);

	/* nothing arrives: the timeout cancels the recv */
	result_init(&t.r, l, true);
	arm_recv(l, sv[0], &t, 50);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(t.r.calls, 1);
	assert_int_equal(t.r.res, -ECANCELED);

	/* data arrives (before and after arming): the recv completes with it */
	result_init(&t.r, l, true);
	assert_int_equal(write(sv[1], "hello", 5), 5);
	arm_recv(l, sv[0], &t, 50);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(t.r.calls, 1);
	assert_int_equal(t.r.res, 5);
	assert_memory_equal(t.buf, "hello", 5);

	close(sv[0]);
	close(sv[1]);
}

/* The data arrives while the recv is parked in the kernel: a timer writes it. */
struct late_writer {
	struct loop_op op;
	int fd;
};

static void late_write_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct late_writer *w = container_of(op, struct late_writer, op);

	assert_int_equal(res, -ETIME);
	assert_int_equal(write(w->fd, "later", 5), 5);
}

static void test_recv_data_while_parked(void **state)
{
	struct loop *l = *state;
	struct recv_test t;
	struct late_writer w = {.op = {.cb = late_write_cb}};
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	w.fd = sv[1];
	result_init(&t.r, l, true);
	arm_recv(l, sv[0], &t, 2000);
	loop_timer(l, &w.op, 10);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(t.r.calls, 1);
	assert_int_equal(t.r.res, 5);
	assert_memory_equal(t.buf, "later", 5);
	close(sv[0]);
	close(sv[1]);
}

/* ---- loop_get_sqe past the ring size ---- */

struct nop_count {
	struct loop_op op;
	struct loop *l;
	unsigned seen, want;
};

static void nop_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct nop_count *n = container_of(op, struct nop_count, op);

	assert_int_equal(res, 0);
	if (++n->seen == n->want)
		loop_stop(n->l);
}

static void nops_through_full_sq(struct loop *l, unsigned count)
{
	struct nop_count n = {.op = {.cb = nop_cb}, .l = l, .want = count};

	for (unsigned i = 0; i < count; i++) {
		struct io_uring_sqe *sqe = loop_get_sqe(l);

		assert_non_null(sqe);
		io_uring_prep_nop(sqe);
		loop_sqe_op(sqe, &n.op);
	}
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(n.seen, count);
}

static void test_get_sqe_beyond_ring(void **state)
{
	nops_through_full_sq(*state, 3 * RING_ENTRIES);
}

static void test_get_sqe_beyond_cq(void **state)
{
	/* more completions than the CQ (4 x entries) holds before anyone reaps them */
	nops_through_full_sq(*state, 16 * RING_ENTRIES);
}

/* ---- idle hook ---- */

struct idle_count {
	struct loop *l;
	unsigned calls;
	void *seen_data;
};

static void idle_fn(struct loop *l, void *data)
{
	struct idle_count *ic = data;

	ic->calls++;
	ic->seen_data = loop_data(l);
}

static void test_idle_hook(void **state)
{
	struct loop *l = *state;
	struct idle_count ic = {.l = l};
	struct result r;
	int marker;

	loop_set_data(l, &marker);
	loop_set_idle(l, idle_fn, &ic);
	result_init(&r, l, true);
	loop_timer(l, &r.op, 100);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(r.res, -ETIME);
	assert_true(ic.calls >= 1);
	assert_ptr_equal(ic.seen_data, &marker);
	/* the loop sleeps while it waits: a handful of iterations, not a busy spin */
	assert_true(ic.calls < 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_timer_fires, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_timer_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_then_run_again, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_post_many_producers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recv_linked_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recv_data_while_parked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_sqe_beyond_ring, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_get_sqe_beyond_cq, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_hook, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
