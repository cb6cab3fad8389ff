/* test_shape_backoff — unit tests for engine/shape's backoff state and table: suspension
 * expiry and extension, reduction with stepwise recovery, merging of actions, change reports
 * (once each, coalesced), the summary status, and the table's refcounts and sweep.
 *
 * Why: a suspension that ends early hammers a receiver that asked for quiet; one that never
 * ends stalls a destination forever; a report missed or doubled makes the log lie. Times are
 * injected, so each boundary is checked at the exact millisecond.
 */
#include "engine/shape/shape.h"
#include "tests/unit/shape/shape_fx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define MIN 60000ull /* ms */

struct fx {
	struct shape_table *t;
	struct shape_state *s;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->t = shape_table_new();
	f->s = shape_table_get(f->t, "127.0.0.2|example.com");
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	shape_state_put(f->s);
	shape_table_free(f->t);
	free(f);
	return 0;
}

/* Suspended for exactly duration; a shorter later suspension does not shorten it, a longer
 * one extends it; the end is reported once. */
static void test_suspend_expiry(void **state)
{
	struct fx *f = *state;
	struct config_backoff g = fx_rule("gmail", 421, "4.7.28", "", CONFIG_BACKOFF_SUSPEND);
	struct shape_status st;
	uint64_t until = 0;

	assert_false(shape_suspended(f->s, 0, NULL));
	assert_false(shape_poll_change(f->s, 0, &st));
	assert_int_equal(shape_apply(f->s, &g, 1000), SHAPE_SUSPEND);
	assert_true(shape_suspended(f->s, 1000, &until));
	assert_int_equal(until, 1000 + 10 * MIN);
	assert_true(shape_suspended(f->s, 1000 + 10 * MIN - 1, NULL));
	g.duration_ms = MIN;
	shape_apply(f->s, &g, 2000); /* earlier end: the later one stays */
	assert_true(shape_suspended(f->s, 1000 + 10 * MIN - 1, &until));
	assert_int_equal(until, 1000 + 10 * MIN);
	assert_false(shape_poll_change(f->s, 1000 + 10 * MIN - 1, &st));
	assert_false(shape_suspended(f->s, 1000 + 10 * MIN, NULL));
	assert_true(shape_poll_change(f->s, 1000 + 10 * MIN, &st));
	assert_int_equal(st.action, SHAPE_SUSPEND);
	assert_int_equal(st.change, SHAPE_CHANGE_ENDED);
	assert_string_equal(st.rule, "gmail");
	assert_true(st.factor == 1.0);
	assert_false(shape_poll_change(f->s, 1000 + 20 * MIN, &st));
	/* a new one, extended by a longer one */
	shape_apply(f->s, &g, 30 * MIN);
	g.duration_ms = 5 * MIN;
	shape_apply(f->s, &g, 30 * MIN + 1);
	assert_true(shape_suspended(f->s, 35 * MIN, &until));
	assert_int_equal(until, 35 * MIN + 1);
	assert_true(shape_poll_change(f->s, 40 * MIN, &st));
	assert_false(shape_poll_change(f->s, 40 * MIN, &st));
	/* bounce changes nothing */
	g.action = CONFIG_BACKOFF_BOUNCE;
	assert_int_equal(shape_apply(f->s, &g, 41 * MIN), SHAPE_NONE);
	assert_false(shape_suspended(f->s, 41 * MIN, NULL));
	assert_true(shape_factor(f->s, 41 * MIN) == 1.0);
}

/* 0.5 for 10 min, then 0.625, 0.75, 0.875 one minute apart, 1.0 at 13 min; each step
 * reported once, skipped steps coalesced, the end reported once. */
static void test_reduce_recovery(void **state)
{
	struct fx *f = *state;
	struct config_backoff o = fx_rule("outlook", 451, "4.7.650", "", CONFIG_BACKOFF_REDUCE);
	struct shape_status st;
	const uint64_t t0 = 5000;

	assert_int_equal(shape_apply(f->s, &o, t0), SHAPE_REDUCE);
	assert_true(shape_factor(f->s, t0) == 0.5);
	assert_true(shape_factor(f->s, t0 + 10 * MIN - 1) == 0.5);
	assert_false(shape_poll_change(f->s, t0 + 5 * MIN, &st));
	assert_true(shape_factor(f->s, t0 + 10 * MIN) == 0.625);
	assert_true(shape_factor(f->s, t0 + 11 * MIN - 1) == 0.625);
	assert_true(shape_factor(f->s, t0 + 11 * MIN) == 0.75);
	assert_true(shape_factor(f->s, t0 + 12 * MIN) == 0.875);
	assert_true(shape_factor(f->s, t0 + 13 * MIN - 1) == 0.875);
	assert_true(shape_factor(f->s, t0 + 13 * MIN) == 1.0);
	assert_false(shape_suspended(f->s, t0, NULL));

	assert_true(shape_poll_change(f->s, t0 + 10 * MIN, &st));
	assert_int_equal(st.action, SHAPE_REDUCE);
	assert_int_equal(st.change, SHAPE_CHANGE_STEP);
	assert_true(st.factor == 0.625);
	assert_string_equal(st.rule, "outlook");
	assert_int_equal(st.until_ms, t0 + 13 * MIN);
	assert_false(shape_poll_change(f->s, t0 + 10 * MIN + 30000, &st));
	/* a caller with an older clock reports nothing */
	assert_false(shape_poll_change(f->s, t0 + 9 * MIN, &st));
	assert_true(shape_poll_change(f->s, t0 + 12 * MIN + 1, &st)); /* steps 2 and 3 at once */
	assert_true(st.factor == 0.875);
	assert_false(shape_poll_change(f->s, t0 + 12 * MIN + 2, &st));
	assert_true(shape_poll_change(f->s, t0 + 20 * MIN, &st));
	assert_int_equal(st.change, SHAPE_CHANGE_ENDED);
	assert_true(st.factor == 1.0);
	assert_false(shape_poll_change(f->s, t0 + 30 * MIN, &st));
}

/* Over a running reduction: the lower factor and the later end of the hold win. */
static void test_reduce_merge(void **state)
{
	struct fx *f = *state;
	struct config_backoff a = fx_rule("a", 0, "", "", CONFIG_BACKOFF_REDUCE);
	struct config_backoff b = fx_rule("b", 0, "", "", CONFIG_BACKOFF_REDUCE);
	struct shape_status st;

	a.factor = 0.25;
	a.duration_ms = 10 * MIN;
	b.factor = 0.5;
	b.duration_ms = 20 * MIN;
	b.recover_steps = 2;
	shape_apply(f->s, &a, 0);
	shape_apply(f->s, &b, MIN);
	/* 0.25 (lower) until 21 min (later), then b's 2 steps: 0.625 at 21, 1.0 at 22 */
	assert_true(shape_factor(f->s, 21 * MIN - 1) == 0.25);
	assert_true(shape_factor(f->s, 21 * MIN) == 0.625);
	assert_true(shape_factor(f->s, 22 * MIN) == 1.0);
	shape_status_get(f->s, 2 * MIN, &st);
	assert_int_equal(st.action, SHAPE_REDUCE);
	assert_string_equal(st.rule, "b");
	assert_int_equal(st.until_ms, 22 * MIN);
	/* while recovering (0.625), a 0.75 reduction keeps 0.625 and holds it for its duration */
	b.factor = 0.75;
	b.duration_ms = MIN;
	shape_apply(f->s, &b, 21 * MIN);
	assert_true(shape_factor(f->s, 22 * MIN - 1) == 0.625);
	assert_true(shape_factor(f->s, 22 * MIN) == 0.8125);
	assert_true(shape_factor(f->s, 23 * MIN) == 1.0);
}

/* Suspension and reduction run side by side; the summary shows the suspension first, and
 * the reports come one per poll, suspension first. */
static void test_suspend_and_reduce(void **state)
{
	struct fx *f = *state;
	struct config_backoff sp = fx_rule("yahoo", 421, "4.7.0", "", CONFIG_BACKOFF_SUSPEND);
	struct config_backoff rd = fx_rule("outlook", 451, "4.7.650", "", CONFIG_BACKOFF_REDUCE);
	struct shape_status st;

	sp.duration_ms = 5 * MIN;
	rd.duration_ms = 5 * MIN;
	rd.recover_steps = 1;
	shape_status_get(f->s, 0, &st);
	assert_int_equal(st.action, SHAPE_NONE);
	assert_string_equal(st.rule, "");
	assert_true(st.factor == 1.0);
	shape_apply(f->s, &rd, 0);
	shape_apply(f->s, &sp, 0);
	assert_true(shape_conn_acquire(f->s, 4, 0));
	shape_status_get(f->s, MIN, &st);
	assert_int_equal(st.action, SHAPE_SUSPEND);
	assert_string_equal(st.rule, "yahoo");
	assert_int_equal(st.until_ms, 5 * MIN);
	assert_true(st.factor == 0.5);
	assert_int_equal(st.conns, 1);
	shape_conn_release(f->s);
	assert_true(shape_poll_change(f->s, 6 * MIN, &st));
	assert_int_equal(st.action, SHAPE_SUSPEND);
	assert_int_equal(st.change, SHAPE_CHANGE_ENDED);
	assert_true(shape_poll_change(f->s, 6 * MIN, &st));
	assert_int_equal(st.action, SHAPE_REDUCE);
	assert_int_equal(st.change, SHAPE_CHANGE_ENDED);
	assert_string_equal(st.rule, "outlook");
	assert_false(shape_poll_change(f->s, 6 * MIN, &st));
	shape_status_get(f->s, 6 * MIN, &st);
	assert_int_equal(st.action, SHAPE_NONE);
}

/* One state per key, refcounted; the sweep frees only unreferenced idle states. */
static void test_table(void **state)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *a = shape_table_get(t, "127.0.0.2|example.com");
	struct shape_state *a2 = shape_table_get(t, "127.0.0.2|example.com");
	struct shape_state *b = shape_table_get(t, "|example.com");
	struct config_backoff g = fx_rule("gmail", 421, "", "", CONFIG_BACKOFF_SUSPEND);
	struct config_rate r = {1, 1000};
	char key[64];

	(void)state;
	assert_ptr_equal(a, a2);
	assert_ptr_not_equal(a, b);
	assert_string_equal(shape_state_key(b), "|example.com");
	assert_int_equal(shape_table_count(t), 2);
	shape_apply(a, &g, 0);
	assert_true(shape_take_msg(b, &r, 0, NULL));
	shape_state_put(a);
	shape_state_put(a2);
	shape_state_put(b);
	assert_int_equal(shape_table_sweep(t, 1), 0);	 /* a suspended, b's limiter busy */
	assert_int_equal(shape_table_sweep(t, 1000), 1); /* b idle again */
	a = shape_table_get(t, "127.0.0.2|example.com"); /* kept: still suspended */
	assert_true(shape_suspended(a, 1000, NULL));
	assert_int_equal(shape_table_sweep(t, 10 * MIN), 0); /* referenced */
	shape_state_put(a);
	assert_int_equal(shape_table_sweep(t, 10 * MIN), 1);
	assert_int_equal(shape_table_count(t), 0);
	for (int i = 0; i < 1000; i++) { /* growth, and states left to shape_table_free */
		snprintf(key, sizeof(key), "|d%d.example", i);
		shape_state_put(shape_table_get(t, key));
	}
	assert_int_equal(shape_table_count(t), 1000);
	a = shape_table_get(t, "|d500.example");
	assert_string_equal(shape_state_key(a), "|d500.example");
	shape_state_put(a);
	shape_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_suspend_expiry, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_reduce_recovery, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_reduce_merge, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_suspend_and_reduce, fx_setup, fx_teardown),
	    cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
