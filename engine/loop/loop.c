/* loop — io_uring event loop: op-object completions, never-failing SQE getter, linked
 * timeouts, one-shot timers and a lock-free MPSC mailbox woken through an eventfd.
 *
 * Why this shape: completions are copied out of the CQ ring before any callback runs, so a
 * callback may submit (and even force a submit on a full SQ) without invalidating the batch.
 * The mailbox is a Treiber stack: producers push with a CAS and write the eventfd only when the
 * stack was empty; the consumer takes the whole stack with one exchange and reverses it, so
 * messages run in posting order and no wake-up is ever lost.
 */
#include "engine/loop/loop.h"
#include "engine/util/util.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define LOOP_BATCH 256

struct loop {
	struct io_uring ring;
	int efd;
	uint64_t efd_val;
	struct loop_op efd_op;
	_Atomic(struct loop_msg *) mbox;
	atomic_bool stop;
	uint64_t now_ms;
	void *data;
	void (*idle_fn)(struct loop *l, void *data);
	void *idle_data;
};

static void loop_arm_eventfd(struct loop *l);

static int loop_ring_init(struct loop *l, unsigned entries)
{
	struct io_uring_params p;
	unsigned flag_sets[] = {
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE,
	    IORING_SETUP_CQSIZE,
	};
	int ret = -EINVAL;

	for (size_t i = 0; i < ARRAY_SIZE(flag_sets); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = flag_sets[i];
		p.cq_entries = entries * 4;
		ret = io_uring_queue_init_params(entries, &l->ring, &p);
		if (ret == 0)
			return 0;
	}
	return ret;
}

static void loop_drain_mbox(struct loop *l)
{
	struct loop_msg *m = atomic_exchange_explicit(&l->mbox, NULL, memory_order_acquire);
	struct loop_msg *rev = NULL;

	while (m) {
		struct loop_msg *next = m->next;
		m->next = rev;
		rev = m;
		m = next;
	}
	while (rev) {
		struct loop_msg *next = rev->next;
		rev->fn(l, rev);
		rev = next;
	}
}

static void loop_eventfd_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct loop *l = op->owner;
	(void)flags;
	(void)res;
	loop_drain_mbox(l);
	loop_arm_eventfd(l);
}

static void loop_arm_eventfd(struct loop *l)
{
	struct io_uring_sqe *sqe = loop_get_sqe(l);
	io_uring_prep_read(sqe, l->efd, &l->efd_val, sizeof(l->efd_val), 0);
	loop_sqe_op(sqe, &l->efd_op);
}

int loop_new(struct loop **out, unsigned entries)
{
	struct loop *l = util_xcalloc(1, sizeof(*l));
	int ret;

	ret = loop_ring_init(l, entries);
	if (ret < 0)
		goto fail;
	l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->efd < 0) {
		ret = -errno;
		io_uring_queue_exit(&l->ring);
		goto fail;
	}
	l->efd_op.cb = loop_eventfd_cb;
	l->efd_op.owner = l;
	l->now_ms = util_mono_ms();
	loop_arm_eventfd(l);
	*out = l;
	return 0;
fail:
	free(l);
	return ret;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	io_uring_queue_exit(&l->ring);
	close(l->efd);
	free(l);
}

struct io_uring_sqe *loop_get_sqe(struct loop *l)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&l->ring)))
		io_uring_submit(&l->ring);
	return sqe;
}

void loop_reserve(struct loop *l, unsigned n)
{
	if (io_uring_sq_space_left(&l->ring) < n)
		io_uring_submit(&l->ring);
}

void loop_link_timeout(struct loop *l, struct io_uring_sqe *sqe, struct __kernel_timespec *ts,
		       uint64_t ms)
{
	struct io_uring_sqe *t;

	ts->tv_sec = (long long)(ms / 1000);
	ts->tv_nsec = (long long)(ms % 1000) * 1000000;
	sqe->flags |= IOSQE_IO_LINK;
	t = io_uring_get_sqe(&l->ring);
	BUG_ON(!t); /* caller must loop_reserve(l, 2) before taking sqe */
	io_uring_prep_link_timeout(t, ts, 0);
	io_uring_sqe_set_data(t, NULL);
}

void loop_timer(struct loop *l, struct loop_op *op, uint64_t ms)
{
	struct io_uring_sqe *sqe = loop_get_sqe(l);

	op->ts.tv_sec = (long long)(ms / 1000);
	op->ts.tv_nsec = (long long)(ms % 1000) * 1000000;
	io_uring_prep_timeout(sqe, &op->ts, 0, 0);
	loop_sqe_op(sqe, op);
}

void loop_cancel(struct loop *l, struct loop_op *op)
{
	struct io_uring_sqe *sqe = loop_get_sqe(l);

	io_uring_prep_cancel(sqe, op, 0);
	io_uring_sqe_set_data(sqe, NULL);
}

void loop_post(struct loop *l, struct loop_msg *m)
{
	struct loop_msg *head = atomic_load_explicit(&l->mbox, memory_order_relaxed);
	uint64_t one = 1;

	do {
		m->next = head;
	} while (!atomic_compare_exchange_weak_explicit(&l->mbox, &head, m, memory_order_release,
							memory_order_relaxed));
	if (head == NULL && write(l->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN means the counter is saturated: a wake-up is pending anyway. */
	}
}

static void loop_dispatch(struct loop *l)
{
	struct io_uring_cqe *cqes[LOOP_BATCH];
	struct {
		struct loop_op *op;
		int res;
		uint32_t flags;
	} done[LOOP_BATCH];
	unsigned n = io_uring_peek_batch_cqe(&l->ring, cqes, LOOP_BATCH);

	for (unsigned i = 0; i < n; i++) {
		done[i].op = io_uring_cqe_get_data(cqes[i]);
		done[i].res = cqes[i]->res;
		done[i].flags = cqes[i]->flags;
	}
	io_uring_cq_advance(&l->ring, n);
	l->now_ms = util_mono_ms();
	for (unsigned i = 0; i < n; i++)
		if (done[i].op)
			done[i].op->cb(done[i].op, done[i].res, done[i].flags);
}

int loop_run(struct loop *l)
{
	int ret;

	while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
		ret = io_uring_submit_and_wait(&l->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			return ret;
		loop_dispatch(l);
		while (io_uring_cq_ready(&l->ring))
			loop_dispatch(l);
		if (atomic_load_explicit(&l->mbox, memory_order_relaxed))
			loop_drain_mbox(l);
		if (l->idle_fn)
			l->idle_fn(l, l->idle_data);
	}
	/* A stop ends one loop_run: clear it so the loop can be run again (e.g. to drain in-flight
	 * ops after a shutdown request); a stop posted before loop_run still ends that run. */
	atomic_store(&l->stop, false);
	return 0;
}

void loop_stop(struct loop *l)
{
	uint64_t one = 1;

	atomic_store(&l->stop, true);
	if (write(l->efd, &one, sizeof(one)) < 0) {
		/* saturated counter: the loop is being woken anyway */
	}
}

uint64_t loop_now_ms(const struct loop *l)
{
	return l->now_ms;
}

void loop_set_data(struct loop *l, void *data)
{
	l->data = data;
}

void *loop_data(const struct loop *l)
{
	return l->data;
}

void loop_set_idle(struct loop *l, void (*fn)(struct loop *l, void *data), void *data)
{
	l->idle_fn = fn;
	l->idle_data = data;
}
