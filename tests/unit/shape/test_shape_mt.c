/* test_shape_mt — engine/shape under several threads at once: one state hammered by 4 threads
 * never lets more than the rate through (simulated and real clock), the connection cap holds
 * across threads, each backoff change is reported exactly once, and readers racing shape_apply
 * only ever see consistent actions.
 *
 * Why: the daemon's shards share a destination's state with no lock on the hot path; a lost
 * CAS, a torn seqlock read or a doubled report would only show under contention, so these
 * tests create it.
 */
#include "engine/shape/shape.h"
#include "tests/unit/shape/shape_fx.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define NT 4
#define MS 1000000ull

struct hammer {
	struct shape_state *s;
	struct config_rate r;
	_Atomic uint64_t *clock; /* simulated ns; NULL: CLOCK_MONOTONIC */
	uint64_t step, end;
	uint64_t *ts; /* passes */
	size_t n, cap;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;

	for (;;) {
		uint64_t now = h->clock ? atomic_fetch_add(h->clock, h->step) : mono_ns();

		if (now >= h->end)
			break;
		if (shape_take_msg(h->s, &h->r, now, NULL)) {
			if (h->n == h->cap)
				break; /* more than the rate allows: caught below */
			h->ts[h->n++] = now;
		}
	}
	return NULL;
}

/* Run NT hammers; returns all passes, sorted, in *out (caller frees) and their count. */
static size_t hammer_all(struct shape_state *s, struct config_rate r, _Atomic uint64_t *clock,
			 uint64_t step, uint64_t end, size_t cap, uint64_t **out)
{
	struct hammer h[NT];
	pthread_t th[NT];
	size_t n = 0;

	*out = malloc(NT * cap * sizeof(**out));
	for (int i = 0; i < NT; i++) {
		h[i] =
		    (struct hammer){s, r, clock, step, end, malloc(cap * sizeof(uint64_t)), 0, cap};
		assert_int_equal(pthread_create(&th[i], NULL, hammer_run, &h[i]), 0);
	}
	for (int i = 0; i < NT; i++) {
		pthread_join(th[i], NULL);
		memcpy(*out + n, h[i].ts, h[i].n * sizeof(uint64_t));
		n += h[i].n;
		free(h[i].ts);
	}
	qsort(*out, n, sizeof(**out), fx_cmp_u64);
	return n;
}

/* Simulated clock shared by 4 threads (every attempt a distinct instant, 5 us apart): at
 * 1000/s over 2 s, no window of 1 s holds more than 1000 passes (1001 closed). */
static void test_mt_rate_simulated(void **state)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *s = shape_table_get(t, "a|b");
	_Atomic uint64_t clock = 1;
	uint64_t *ts;
	size_t n, open, closed;

	(void)state;
	n = hammer_all(s, (struct config_rate){1000, 1000}, &clock, 5000, 2000 * MS, 4000, &ts);
	fx_max_window(ts, n, 1000 * MS, &open, &closed);
	assert_true(open <= 1000);
	assert_true(closed <= 1001);
	assert_true(n >= 1990 && n <= 2001);
	free(ts);
	shape_state_put(s);
	shape_table_free(t);
}

/* The real clock, 4 threads for 300 ms at 100/s: at most 31 pass. */
static void test_mt_rate_real(void **state)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *s = shape_table_get(t, "a|b");
	uint64_t *ts, end = mono_ns() + 300 * MS;
	size_t n, open, closed;

	(void)state;
	n = hammer_all(s, (struct config_rate){100, 1000}, NULL, 0, end, 100, &ts);
	fx_max_window(ts, n, 1000 * MS, &open, &closed);
	assert_true(n <= 31);
	assert_true(n >= 20);
	free(ts);
	shape_state_put(s);
	shape_table_free(t);
}

struct conn_arg {
	struct shape_state *s;
	_Atomic unsigned *open, *peak;
	unsigned got;
};

static void *conn_run(void *arg)
{
	struct conn_arg *c = arg;

	/* until 50000 connections were had: a thread may find the cap full for a whole time
	 * slice while the others sleep holding theirs (2 CPUs, 4 threads) */
	for (long i = 0; c->got < 50000 && i < 200000000; i++) {
		if (!shape_conn_acquire(c->s, 3, 0))
			continue;
		unsigned o = atomic_fetch_add(c->open, 1) + 1, p = atomic_load(c->peak);

		while (o > p && !atomic_compare_exchange_weak(c->peak, &p, o))
			;
		c->got++;
		atomic_fetch_sub(c->open, 1);
		shape_conn_release(c->s);
	}
	return NULL;
}

/* 4 threads acquiring and releasing with a cap of 3: never more than 3 open at once. */
static void test_mt_conn_cap(void **state)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *s = shape_table_get(t, "a|b");
	_Atomic unsigned open = 0, peak = 0;
	struct conn_arg c[NT];
	pthread_t th[NT];

	(void)state;
	for (int i = 0; i < NT; i++) {
		c[i] = (struct conn_arg){s, &open, &peak, 0};
		pthread_create(&th[i], NULL, conn_run, &c[i]);
	}
	for (int i = 0; i < NT; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(c[i].got, 50000);
	}
	assert_true(atomic_load(&peak) >= 1 && atomic_load(&peak) <= 3);
	assert_int_equal(shape_conns(s), 0);
	shape_state_put(s);
	shape_table_free(t);
}

struct poll_arg {
	struct shape_state *s;
	pthread_barrier_t *bar;
	unsigned reports[64]; /* per time slot */
};

/* Every thread polls at the same instants (30 s apart, in lock step). */
static void *poll_run(void *arg)
{
	struct poll_arg *p = arg;
	struct shape_status st;

	for (unsigned k = 0; k < 64; k++) {
		pthread_barrier_wait(p->bar);
		for (int rep = 0; rep < 3; rep++)
			p->reports[k] += shape_poll_change(p->s, (uint64_t)k * 30000, &st);
	}
	return NULL;
}

/* A suspension ending at 5 min and a reduction stepping at 10, 11, 12 and ending at 13 min:
 * 5 reports in all, one per change instant, whichever thread wins. */
static void test_mt_poll_once(void **state)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *s = shape_table_get(t, "a|b");
	struct config_backoff sp = fx_rule("sp", 0, "", "", CONFIG_BACKOFF_SUSPEND);
	struct config_backoff rd = fx_rule("rd", 0, "", "", CONFIG_BACKOFF_REDUCE);
	struct poll_arg p[NT];
	pthread_t th[NT];
	pthread_barrier_t bar;

	(void)state;
	sp.duration_ms = 5 * 60000;
	shape_apply(s, &sp, 0);
	shape_apply(s, &rd, 0);
	pthread_barrier_init(&bar, NULL, NT);
	for (int i = 0; i < NT; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		p[i].s = s;
		p[i].bar = &bar;
		pthread_create(&th[i], NULL, poll_run, &p[i]);
	}
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	for (unsigned k = 0; k < 64; k++) {
		unsigned sum = 0;

		for (int i = 0; i < NT; i++)
			sum += p[i].reports[k];
		assert_int_equal(sum, k == 10 || (k >= 20 && k <= 26 && k % 2 == 0) ? 1 : 0);
	}
	pthread_barrier_destroy(&bar);
	shape_state_put(s);
	shape_table_free(t);
}

struct race_arg {
	struct shape_state *s;
	_Atomic int *stop;
	bool writer;
	unsigned bad;
};

/* Writers re-apply "w1" (0.5, suspend 1 min) or "w2" (0.25); readers check every snapshot is
 * one of the written ones: rule name and factor never torn. */
static void *race_run(void *arg)
{
	struct race_arg *r = arg;
	struct config_backoff w1 = fx_rule("w1", 0, "", "", CONFIG_BACKOFF_REDUCE);
	struct config_backoff w2 = fx_rule("w2-a-longer-name", 0, "", "", CONFIG_BACKOFF_REDUCE);
	struct shape_status st;

	w2.factor = 0.25;
	for (uint64_t i = 0; !atomic_load(r->stop); i++) {
		if (r->writer) {
			shape_apply(r->s, i & 1 ? &w1 : &w2, 0);
			continue;
		}
		shape_status_get(r->s, 1, &st);
		if (strcmp(st.rule, "w1") != 0 && strcmp(st.rule, "w2-a-longer-name") != 0)
			r->bad++;
		if (st.factor != 0.25 || st.action != SHAPE_REDUCE)
			r->bad++;
	}
	return NULL;
}

static void test_mt_apply_vs_readers(void **state)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *s = shape_table_get(t, "a|b");
	struct config_backoff w2 = fx_rule("w2-a-longer-name", 0, "", "", CONFIG_BACKOFF_REDUCE);
	_Atomic int stop = 0;
	struct race_arg r[NT];
	pthread_t th[NT];
	struct timespec d = {0, 200 * 1000000};

	(void)state;
	w2.factor = 0.25;
	shape_apply(s, &w2, 0);
	for (int i = 0; i < NT; i++) {
		r[i] = (struct race_arg){s, &stop, i < 2, 0};
		pthread_create(&th[i], NULL, race_run, &r[i]);
	}
	nanosleep(&d, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < NT; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].bad, 0);
	}
	shape_state_put(s);
	shape_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mt_rate_simulated),	cmocka_unit_test(test_mt_rate_real),
	    cmocka_unit_test(test_mt_conn_cap),		cmocka_unit_test(test_mt_poll_once),
	    cmocka_unit_test(test_mt_apply_vs_readers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
