/* shape_rate — GCRA rate limiters and the connection cap of a shaping state.
 *
 * Why GCRA with no burst: the rates must hold over ANY window, across every shard, and
 * "60/m" must mean one per second, not 60 at the top of each minute. GCRA keeps one number, the
 * theoretical arrival time (TAT): an event at t passes iff t >= TAT, and then TAT = t + T with
 * T = ceil(per / (n * factor)). Passing events are therefore at least T apart in the order of
 * their successful CAS, whatever the thread, so any half-open window of length per holds at
 * most n of them (n + 1 for a closed one). One CAS per passing event, none for a refusal, and
 * none at all for an unlimited rate.
 */
#include "engine/shape/shape_int.h"

#include "engine/util/util.h"

/* The emission interval of r scaled by factor f (0 < f <= 1), in ns, rounded up so that the
 * rate is never exceeded; at least 1. */
static uint64_t rate_interval_ns(const struct config_rate *r, double f)
{
	uint64_t per = r->per_ms * SHAPE_NS_PER_MS;
	uint64_t t;
	double x;

	if (f >= 1.0)
		return per / r->n + (per % r->n != 0);
	x = (double)per / ((double)r->n * f);
	t = (uint64_t)x;
	if ((double)t < x)
		t++;
	return t ? t : 1;
}

/* One GCRA decision on tat at now with interval T. */
static bool rate_take(_Atomic uint64_t *tat, uint64_t T, uint64_t now, uint64_t *wait_ns)
{
	uint64_t t = atomic_load_explicit(tat, memory_order_relaxed);

	do {
		if (now < t) {
			if (wait_ns)
				*wait_ns = t - now;
			return false;
		}
	} while (!atomic_compare_exchange_weak_explicit(tat, &t, now + T, memory_order_relaxed,
							memory_order_relaxed));
	if (wait_ns)
		*wait_ns = 0;
	return true;
}

/* Shared body of shape_take_msg and shape_take_conn. */
static bool rate_check(struct shape_state *s, _Atomic uint64_t *tat, const struct config_rate *r,
		       uint64_t now_ns, uint64_t *wait_ns)
{
	if (r->n == 0 || r->per_ms == 0) {
		if (wait_ns)
			*wait_ns = 0;
		return true;
	}
	return rate_take(tat, rate_interval_ns(r, shape_factor(s, now_ns / SHAPE_NS_PER_MS)),
			 now_ns, wait_ns);
}

/* shape_take_msg: see shape.h. */
bool shape_take_msg(struct shape_state *s, const struct config_rate *r, uint64_t now_ns,
		    uint64_t *wait_ns)
{
	return rate_check(s, &s->tat_msg, r, now_ns, wait_ns);
}

/* shape_take_conn: see shape.h. */
bool shape_take_conn(struct shape_state *s, const struct config_rate *r, uint64_t now_ns,
		     uint64_t *wait_ns)
{
	return rate_check(s, &s->tat_conn, r, now_ns, wait_ns);
}

/* shape_conn_acquire: see shape.h. */
bool shape_conn_acquire(struct shape_state *s, unsigned max, uint64_t now_ms)
{
	unsigned cap = max, c;

	if (max) {
		double f = shape_factor(s, now_ms);

		if (f < 1.0)
			cap = (unsigned)((double)max * f);
		if (cap < 1)
			cap = 1;
	}
	c = atomic_load_explicit(&s->conns, memory_order_relaxed);
	do {
		if (max && c >= cap)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&s->conns, &c, c + 1, memory_order_relaxed,
							memory_order_relaxed));
	return true;
}

/* shape_conn_release: see shape.h. */
void shape_conn_release(struct shape_state *s)
{
	unsigned old = atomic_fetch_sub_explicit(&s->conns, 1, memory_order_relaxed);

	BUG_ON(old == 0);
}

/* shape_conns: see shape.h. */
unsigned shape_conns(const struct shape_state *s)
{
	return atomic_load_explicit(&s->conns, memory_order_relaxed);
}

/* shape_idle: see shape_int.h. */
bool shape_idle(const struct shape_state *s, uint64_t now_ms)
{
	uint64_t now_ns = now_ms * SHAPE_NS_PER_MS;

	return atomic_load(&s->conns) == 0 && atomic_load(&s->tat_msg) <= now_ns &&
	       atomic_load(&s->tat_conn) <= now_ns && !shape_suspended(s, now_ms, NULL) &&
	       shape_factor(s, now_ms) >= 1.0;
}
