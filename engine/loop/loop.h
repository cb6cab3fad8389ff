/* loop — one io_uring event loop per thread, with operation objects and a cross-thread mailbox.
 *
 * Why: every riptide thread that does I/O (shards, riptide-sink, riptide-blast workers) runs the
 * same loop. Each submitted SQE carries a pointer to a `struct loop_op` (callback + owner +
 * generation), never a raw fd. `loop_get_sqe` never fails: a full SQ is submitted and retried.
 * Socket ops get a linked timeout through `loop_link_timeout`. Other threads hand work to a loop
 * through `loop_post` (lock-free MPSC stack, woken by an eventfd read armed on the ring).
 *
 * Threading: everything except loop_post/loop_stop must be called on the loop's own thread.
 */
#ifndef RIPTIDE_LOOP_H
#define RIPTIDE_LOOP_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_op;

/* Completion callback: res is the CQE result (>= 0 or -errno), flags the CQE flags. */
typedef void (*loop_cb)(struct loop_op *op, int res, uint32_t flags);

/* An in-flight operation. Embed it in the object that owns the I/O; keep it alive (and its
 * `ts`, for timeouts) until its callback has run. `owner` and `gen` are for the owner's use
 * (e.g. to detect a completion that belongs to a recycled session). */
struct loop_op {
	loop_cb cb;
	void *owner;
	uint32_t gen;
	struct __kernel_timespec ts;
};

/* A message handed to a loop from any thread; `fn` runs on the loop's thread. The poster owns
 * the memory until fn runs; fn takes ownership. */
struct loop_msg {
	struct loop_msg *next;
	void (*fn)(struct loop *l, struct loop_msg *m);
};

/* loop_new: create a loop with an io_uring of `entries` SQEs (SINGLE_ISSUER + DEFER_TASKRUN
 * when the kernel has them). Call from the thread that will run it. Returns 0 or -errno. */
int loop_new(struct loop **out, unsigned entries);

/* loop_free: close the ring and eventfd. Pending mailbox messages are dropped (not run). */
void loop_free(struct loop *l);

/* loop_get_sqe: an SQE, submitting the queue first if it is full. Never NULL. */
struct io_uring_sqe *loop_get_sqe(struct loop *l);

/* loop_reserve: make sure `n` SQEs can be taken without an intermediate submit (so linked
 * chains are never split). */
void loop_reserve(struct loop *l, unsigned n);

/* loop_sqe_op: attach op as the SQE's user data. */
static inline void loop_sqe_op(struct io_uring_sqe *sqe, struct loop_op *op)
{
	io_uring_sqe_set_data(sqe, op);
}

/* loop_link_timeout: link a timeout of `ms` to `sqe` (which must be the last SQE taken and must
 * have been preceded by loop_reserve(l, 2)). When it fires, the linked op completes with
 * -ECANCELED. The timeout's own CQE is consumed by the loop. `ts` must stay valid until submit;
 * pass the op's `ts`. */
void loop_link_timeout(struct loop *l, struct io_uring_sqe *sqe, struct __kernel_timespec *ts,
		       uint64_t ms);

/* loop_timer: arm a one-shot timer; op->cb runs with res = -ETIME after ms (or -ECANCELED if
 * cancelled with loop_cancel). */
void loop_timer(struct loop *l, struct loop_op *op, uint64_t ms);

/* loop_cancel: ask the kernel to cancel the in-flight op (its callback still runs, with
 * -ECANCELED or its real result if it raced). */
void loop_cancel(struct loop *l, struct loop_op *op);

/* loop_post: from any thread, queue m for the loop's thread and wake it. */
void loop_post(struct loop *l, struct loop_msg *m);

/* loop_run: process completions and mailbox messages until loop_stop. Returns 0 or -errno. */
int loop_run(struct loop *l);

/* loop_stop: make loop_run return after the current iteration (any thread). */
void loop_stop(struct loop *l);

/* loop_now_ms: monotonic milliseconds, cached once per loop iteration. */
uint64_t loop_now_ms(const struct loop *l);

/* loop_set_data / loop_data: one user pointer per loop (the shard, the sink worker...). */
void loop_set_data(struct loop *l, void *data);
void *loop_data(const struct loop *l);

/* loop_set_idle: fn(data) runs once per loop iteration after completions are handled (used to
 * flush batched work such as pending replies or commit requests). */
void loop_set_idle(struct loop *l, void (*fn)(struct loop *l, void *data), void *data);

#endif
