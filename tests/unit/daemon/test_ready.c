/* test_ready — the per-destination unit counts the runner uses to leave a full destination's
 * due mail on disk (engine/daemon/ready.c).
 *
 * What must hold: a destination takes at most max units from the runner (fresh mail is always
 * counted); the earliest due the runner had to skip is kept, and handed back exactly once, when
 * the destination drains below half of max; destinations are independent; counts stay exact
 * under concurrent use from several threads.
 */
#include "engine/daemon/ready.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

/* The runner's admissions stop at max; fresh mail goes beyond it and is still counted. */
static void test_admit_bound(void **state)
{
	struct ready *r = ready_new(4);
	struct ready_dest *a = ready_get(r, "a.example");

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_true(ready_admit(r, a, 100 + (uint64_t)i, false));
	assert_false(ready_admit(r, a, 200, false));
	assert_int_equal(ready_count(a), 4);
	ready_add(a);
	assert_int_equal(ready_count(a), 5);
	assert_false(ready_admit(r, a, 150, false));
	assert_false(ready_admit(r, a, 120, false)); /* left on disk, due noted */
	for (int i = 0; i < 2; i++)
		assert_int_equal(ready_release(r, a), 0);
	assert_int_equal(ready_release(r, a), 120); /* 2 left of max 4 */
	assert_true(ready_admit(r, a, 130, false));
	ready_free(r);
}

/* Fresh mail has a share of its own: admitted up to 2 * max while the runner is refused at
 * max (a loaded backlog never keeps new mail on disk behind it), and refused beyond. */
static void test_fresh_share(void **state)
{
	struct ready *r = ready_new(3);
	struct ready_dest *a = ready_get(r, "a.example");

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_true(ready_admit(r, a, 1, false));
	assert_false(ready_admit(r, a, 2, false));
	for (int i = 0; i < 3; i++)
		assert_true(ready_admit(r, a, 3, true));
	assert_false(ready_admit(r, a, 4, true));
	assert_int_equal(ready_count(a), 6);
	ready_free(r);
}

/* The earliest skipped due comes back once, only when the count drops below half of max. */
static void test_skip_and_rewind(void **state)
{
	struct ready *r = ready_new(4);
	struct ready_dest *a = ready_get(r, "a.example");

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_true(ready_admit(r, a, 10, false));
	assert_false(ready_admit(r, a, 300, false));
	assert_false(ready_admit(r, a, 250, false)); /* earlier: kept */
	assert_false(ready_admit(r, a, 400, false)); /* later: not */
	assert_int_equal(ready_release(r, a), 0);    /* 3 left: not below half */
	assert_int_equal(ready_release(r, a), 250);  /* 2 left: below half (of 4 -> 2) */
	assert_int_equal(ready_release(r, a), 0);    /* given back once */
	assert_int_equal(ready_release(r, a), 0);
	assert_int_equal(ready_count(a), 0);
	ready_free(r);
}

/* One full destination does not stop another; the same name is the same entry. */
static void test_destinations_independent(void **state)
{
	struct ready *r = ready_new(2);
	struct ready_dest *a = ready_get(r, "dead.example"), *b = ready_get(r, "ok.example");

	(void)state;
	assert_ptr_equal(ready_get(r, "dead.example"), a);
	assert_ptr_not_equal(a, b);
	assert_true(ready_admit(r, a, 1, false));
	assert_true(ready_admit(r, a, 1, false));
	assert_false(ready_admit(r, a, 1, false));
	for (int i = 0; i < 2; i++) {
		assert_true(ready_admit(r, b, 1, false));
		assert_int_equal(ready_release(r, b), 0); /* nothing skipped at b */
	}
	assert_int_equal(ready_count(a), 2);
	ready_free(r);
}

/* Many destinations (more than the stripes) keep their own counts. */
static void test_many_destinations(void **state)
{
	struct ready *r = ready_new(3);
	char name[32];

	(void)state;
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "d%d.example", i);
		for (int k = 0; k <= i % 3; k++)
			assert_true(ready_admit(r, ready_get(r, name), 1, false));
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "d%d.example", i);
		assert_int_equal(ready_count(ready_get(r, name)), (unsigned)(i % 3 + 1));
	}
	ready_free(r);
}

struct race {
	struct ready *r;
	struct ready_dest *d;
	unsigned admitted;
};

static void *race_thread(void *arg)
{
	struct race *x = arg;

	for (int i = 0; i < 100000; i++) {
		if (ready_admit(x->r, x->d, 1, false)) {
			x->admitted++;
			ready_release(x->r, x->d);
		}
		ready_add(x->d);
		ready_release(x->r, x->d);
	}
	return NULL;
}

/* Four threads admitting, adding and releasing: the count ends at 0 and never passes max from
 * admissions alone (each thread holds at most one admitted unit and one added unit). */
static void test_concurrent(void **state)
{
	struct ready *r = ready_new(8);
	struct race x[4];
	pthread_t t[4];

	(void)state;
	for (int i = 0; i < 4; i++) {
		x[i] = (struct race){r, ready_get(r, "busy.example"), 0};
		pthread_create(&t[i], NULL, race_thread, &x[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_true(x[i].admitted > 0);
	}
	assert_int_equal(ready_count(ready_get(r, "busy.example")), 0);
	ready_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_admit_bound),
	    cmocka_unit_test(test_fresh_share),
	    cmocka_unit_test(test_skip_and_rewind),
	    cmocka_unit_test(test_destinations_independent),
	    cmocka_unit_test(test_many_destinations),
	    cmocka_unit_test(test_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
