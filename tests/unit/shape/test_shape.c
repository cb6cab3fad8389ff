/* test_shape — single-threaded unit tests for engine/shape: GCRA exactness over every window,
 * unlimited rates, the factor's effect, connection caps, rule matching, suspension, reduction
 * with stepwise recovery and its reporting, and the state table's refcounts and sweep.
 *
 * Why: the daemon trusts these numbers to keep Gmail and Outlook from blocking a sender; a
 * limiter that lets two through at a window's edge, a recovery that jumps, or a rule that
 * matches the wrong reply would each show up only as a reputation problem in production. All
 * time is injected, so every expectation is exact.
 */
#include "engine/shape/shape.h"
#include "engine/shape/shape_int.h"
#include "tests/unit/shape/shape_fx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define MS 1000000ull /* ns */
#define S  1000000000ull

/* ---- GCRA ---- */

/* Attempts at pseudo-random gaps (mean T/8) over `periods` windows: every window of length
 * per holds at most n passes (n + 1 closed), and the limiter lets nearly the full rate by. */
static void check_rate(uint32_t n, uint64_t per_ms, unsigned periods)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *s = shape_table_get(t, "x|rate.example");
	struct config_rate r = {n, per_ms};
	uint64_t per = per_ms * MS, T = per / n, now = 12345, end = now + periods * per;
	size_t cap = (size_t)n * periods + 2, np = 0, open, closed;
	uint64_t *ts = malloc(cap * sizeof(*ts));
	uint32_t x = 1;

	while (now < end) {
		uint64_t wait = 77;

		if (shape_take_msg(s, &r, now, &wait)) {
			assert_true(np < cap);
			assert_int_equal(wait, 0);
			ts[np++] = now;
		} else {
			assert_true(wait > 0 && wait <= T + 1);
		}
		x = x * 1103515245u + 12345u;
		now += 1 + (x >> 8) % (T / 4 + 1);
	}
	fx_max_window(ts, np, per, &open, &closed);
	assert_true(open <= n);
	assert_true(closed <= n + 1);
	assert_true(np >= (size_t)n * periods * 8 / 10); /* not over-restrictive */
	free(ts);
	shape_state_put(s);
	shape_table_free(t);
}

static void test_rate_windows(void **state)
{
	(void)state;
	check_rate(500, 3600000, 3); /* 500/h */
	check_rate(60, 60000, 5);    /* 60/m */
	check_rate(10, 1000, 50);    /* 10/s */
	check_rate(7, 1000, 50);     /* interval not a whole number of ns */
	check_rate(1, 1000, 20);
	check_rate(100000, 1000, 3);
}

/* 60/m is one per second, and wait_ns says exactly when the next one passes. */
static void test_rate_60m_paced(void **state)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *s = shape_table_get(t, "");
	struct config_rate r = {60, 60000};
	uint64_t wait;

	(void)state;
	assert_true(shape_take_msg(s, &r, 5 * S, &wait));
	assert_false(shape_take_msg(s, &r, 5 * S, &wait));
	assert_int_equal(wait, 1 * S);
	assert_false(shape_take_msg(s, &r, 6 * S - 1, &wait));
	assert_int_equal(wait, 1);
	assert_true(shape_take_msg(s, &r, 6 * S, NULL));
	/* idle for a minute: still only one, no burst saved up */
	assert_true(shape_take_msg(s, &r, 66 * S, NULL));
	assert_false(shape_take_msg(s, &r, 66 * S + 1, NULL));
	/* the connection limiter is independent of the message limiter */
	assert_true(shape_take_conn(s, &r, 66 * S + 1, NULL));
	assert_false(shape_take_conn(s, &r, 66 * S + 2, NULL));
	shape_state_put(s);
	shape_table_free(t);
}

/* n = 0 (or per 0): always yes, and nothing written. */
static void test_rate_unlimited(void **state)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *s = shape_table_get(t, "a|b");
	struct config_rate r0 = {0, 1000}, rp = {5, 0};
	uint64_t wait = 9;

	(void)state;
	for (uint64_t i = 0; i < 100000; i++) {
		assert_true(shape_take_msg(s, &r0, 1000 + i, &wait));
		assert_true(shape_take_conn(s, &rp, 1000 + i, NULL));
	}
	assert_int_equal(wait, 0);
	assert_int_equal(atomic_load(&s->tat_msg), 0);
	assert_int_equal(atomic_load(&s->tat_conn), 0);
	shape_state_put(s);
	shape_table_free(t);
}

/* A reduction to 0.5 halves the rate while held, and the recovery speeds it up again. */
static void test_rate_scaled_by_factor(void **state)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *s = shape_table_get(t, "a|b");
	struct config_rate r = {10, 1000};
	struct config_backoff b = fx_rule("slow", 421, "", "", CONFIG_BACKOFF_REDUCE);
	uint64_t wait;

	(void)state;
	b.duration_ms = 10000;
	b.recover_steps = 1;
	shape_apply(s, &b, 0);
	assert_true(shape_take_msg(s, &r, 1 * S, NULL));
	assert_false(shape_take_msg(s, &r, 1 * S + 100 * MS, &wait));
	assert_int_equal(wait, 100 * MS); /* 200 ms apart: 5/s */
	assert_true(shape_take_msg(s, &r, 1 * S + 200 * MS, NULL));
	/* after 10 s, back to 10/s */
	assert_true(shape_take_msg(s, &r, 10 * S, NULL));
	assert_true(shape_take_msg(s, &r, 10 * S + 100 * MS, NULL));
	shape_state_put(s);
	shape_table_free(t);
}

/* ---- connections ---- */

static void test_conn_cap(void **state)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *s = shape_table_get(t, "a|b");
	struct config_backoff b = fx_rule("r", 0, "", "", CONFIG_BACKOFF_REDUCE);

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_true(shape_conn_acquire(s, 3, 0));
	assert_false(shape_conn_acquire(s, 3, 0));
	assert_int_equal(shape_conns(s), 3);
	shape_conn_release(s);
	assert_true(shape_conn_acquire(s, 3, 0));
	for (int i = 0; i < 3; i++)
		shape_conn_release(s);
	/* 0: no cap */
	for (int i = 0; i < 1000; i++)
		assert_true(shape_conn_acquire(s, 0, 0));
	for (int i = 0; i < 1000; i++)
		shape_conn_release(s);
	/* factor 0.5: 5 -> 2; factor 0.1 on 3: still 1 */
	shape_apply(s, &b, 0);
	assert_true(shape_conn_acquire(s, 5, 1));
	assert_true(shape_conn_acquire(s, 5, 1));
	assert_false(shape_conn_acquire(s, 5, 1));
	shape_conn_release(s);
	b.factor = 0.1;
	shape_apply(s, &b, 2);
	assert_false(shape_conn_acquire(s, 3, 3));
	shape_conn_release(s);
	assert_true(shape_conn_acquire(s, 3, 3));
	assert_false(shape_conn_acquire(s, 3, 3));
	shape_conn_release(s);
	assert_int_equal(shape_conns(s), 0);
	shape_state_put(s);
	shape_table_free(t);
}

/* ---- rules ---- */

static const int ENH_NONE[3] = {0, 0, 0};

static struct shape_rules *builtin_like(void)
{
	struct config_backoff b[3] = {
	    fx_rule("gmail", 421, "4.7.28", "", CONFIG_BACKOFF_SUSPEND),
	    fx_rule("outlook", 451, "4.7.650", "", CONFIG_BACKOFF_REDUCE),
	    fx_rule("yahoo", 421, "4.7.0", "\\[TS[S0-9]+\\]", CONFIG_BACKOFF_SUSPEND),
	};
	char err[256];
	struct shape_rules *r = shape_rules_new(b, 3, err, sizeof(err));

	assert_non_null(r);
	return r;
}

static const char *match(const struct shape_rules *r, int code, const int enh[3], const char *text)
{
	const struct config_backoff *b = shape_rules_match(r, code, enh, text, strlen(text));

	return b ? b->name : "-";
}

static void test_rules_builtin_like(void **state)
{
	struct shape_rules *r = builtin_like();
	static const int e4728[3] = {4, 7, 28}, e47650[3] = {4, 7, 650}, e470[3] = {4, 7, 0};

	(void)state;
	assert_string_equal(match(r, 421, e4728, "Our system has detected an unusual rate"),
			    "gmail");
	assert_string_equal(match(r, 451, e47650,
				  "The mail server has been temporarily rate "
				  "limited due to IP reputation."),
			    "outlook");
	assert_string_equal(
	    match(r, 421, e470, "[TSS04] Messages from 1.2.3.4 temporarily deferred"), "yahoo");
	assert_string_equal(match(r, 421, e470, "deferred\n[ts03] due to user complaints"),
			    "yahoo");
	assert_string_equal(match(r, 421, e470, "try again later"), "-");
	assert_string_equal(match(r, 450, e4728, "unusual rate"), "-");
	assert_string_equal(match(r, 421, ENH_NONE, "4.7.28 unusual rate"), "-");
	assert_string_equal(match(r, 250, (const int[3]){2, 0, 0}, "ok"), "-");
	assert_null(shape_rules_match(r, 421, NULL, NULL, 0));
	shape_rules_free(r);
}

/* code only, text only (case-insensitive, multi-line, in place without NUL), first match
 * wins, disabled rules skipped even when their regex is broken. */
static void test_rules_fields(void **state)
{
	struct config_backoff b[4] = {
	    fx_rule("off", 0, "", "([", CONFIG_BACKOFF_BOUNCE),
	    fx_rule("spam", 0, "", "^550.*spam|blocked line$", CONFIG_BACKOFF_BOUNCE),
	    fx_rule("any421", 421, "", "", CONFIG_BACKOFF_SUSPEND),
	    fx_rule("late421", 421, "", "", CONFIG_BACKOFF_REDUCE),
	};
	char err[256];
	struct shape_rules *r;
	const char buf[] = "first line\nBLOCKED LINEXYZ";

	(void)state;
	b[0].enabled = false;
	r = shape_rules_new(b, 4, err, sizeof(err));
	assert_non_null(r);
	assert_string_equal(match(r, 421, ENH_NONE, "whatever"), "any421");
	assert_string_equal(match(r, 452, ENH_NONE, "whatever"), "-");
	assert_string_equal(match(r, 550, ENH_NONE, "550 This is SPAM"), "spam");
	assert_string_equal(match(r, 421, ENH_NONE, "first line\nblocked line"), "spam");
	/* len stops before "XYZ", so `$` matches at "LINE" */
	assert_string_equal(shape_rules_match(r, 451, ENH_NONE, buf, strlen(buf) - 3)->name,
			    "spam");
	assert_null(shape_rules_match(r, 451, ENH_NONE, buf, strlen(buf)));
	shape_rules_free(r);
}

static void test_rules_errors(void **state)
{
	struct config_backoff b = fx_rule("bad", 421, "", "([", CONFIG_BACKOFF_SUSPEND);
	char err[256] = "";

	(void)state;
	assert_null(shape_rules_new(&b, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "backoff bad: bad text regex"));
	b = fx_rule("enh", 421, "4.7", "", CONFIG_BACKOFF_SUSPEND);
	assert_null(shape_rules_new(&b, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "backoff enh: bad enhanced code '4.7'"));
	strcpy(b.enhanced, "3.1.1");
	assert_null(shape_rules_new(&b, 1, err, sizeof(err)));
	strcpy(b.enhanced, "4.7.1000");
	assert_null(shape_rules_new(&b, 1, err, sizeof(err)));
	b = fx_rule("f", 421, "", "", CONFIG_BACKOFF_REDUCE);
	b.factor = 0;
	assert_null(shape_rules_new(&b, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "backoff f: factor"));
	b.factor = 1.5;
	assert_null(shape_rules_new(&b, 1, err, sizeof(err)));
	struct shape_rules *r = shape_rules_new(NULL, 0, err, sizeof(err));
	assert_non_null(r);
	assert_null(shape_rules_match(r, 421, ENH_NONE, "x", 1));
	shape_rules_free(r);
	shape_rules_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rate_windows),   cmocka_unit_test(test_rate_60m_paced),
	    cmocka_unit_test(test_rate_unlimited), cmocka_unit_test(test_rate_scaled_by_factor),
	    cmocka_unit_test(test_conn_cap),	   cmocka_unit_test(test_rules_builtin_like),
	    cmocka_unit_test(test_rules_fields),   cmocka_unit_test(test_rules_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
