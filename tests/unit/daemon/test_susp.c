/* test_susp — unit tests for engine/daemon/susp.c: the destinations an operator suspended.
 *
 * Why: the runner asks susp_has_sval for every sched entry it passes and the shards ask
 * susp_has for every fresh group, from several threads, while the control thread suspends and
 * resumes. A wrong answer either delivers to a destination the operator stopped or holds mail
 * back forever; a race in the list corrupts it. So the tests check each answer after set and
 * resume (with case differences, as operators type names), both sched value formats the queue
 * may hold, and four reader threads hammering the set while it changes: names that never change
 * must always read the same, and the final state must be exactly the last writes.
 */
#include "engine/daemon/susp.h"
#include "engine/daemon/msg.h"
#include "tests/unit/daemon/daemon_test.h"

#include <pthread.h>
#include <stdatomic.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

/* Suspend, suspend again (no change), resume, resume again (no change): each answer and what
 * susp_set reports. */
static void test_set_has_resume(void **state)
{
	struct susp *s = susp_new();

	(void)state;
	assert_false(susp_has(s, "example.org"));
	assert_true(susp_set(s, "example.org", true));
	assert_true(susp_has(s, "example.org"));
	assert_false(susp_has(s, "example.net"));
	assert_false(susp_set(s, "example.org", true));
	assert_true(susp_has(s, "example.org"));
	assert_true(susp_set(s, "example.org", false));
	assert_false(susp_has(s, "example.org"));
	assert_false(susp_set(s, "example.org", false));
	assert_false(susp_has(s, "example.org"));
	assert_false(susp_set(s, "never.example", false));
	susp_free(s);
}

/* Several names: resuming one leaves the others (first, middle and last of the list). */
static void test_several(void **state)
{
	static const char *names[] = {"a.example", "b.example", "c.example", "d.example"};
	struct susp *s = susp_new();

	(void)state;
	for (unsigned i = 0; i < 4; i++)
		assert_true(susp_set(s, names[i], true));
	assert_true(susp_set(s, "b.example", false));
	assert_true(susp_has(s, "a.example"));
	assert_false(susp_has(s, "b.example"));
	assert_true(susp_has(s, "c.example"));
	assert_true(susp_has(s, "d.example"));
	assert_true(susp_set(s, "d.example", false));
	assert_true(susp_set(s, "a.example", false));
	assert_false(susp_has(s, "a.example"));
	assert_true(susp_has(s, "c.example"));
	assert_false(susp_has(s, "d.example"));
	assert_true(susp_set(s, "c.example", false));
	for (unsigned i = 0; i < 4; i++)
		assert_false(susp_has(s, names[i]));
	susp_free(s); /* ASan: nothing left behind; free with entries is tested below */
}

/* Names compare without regard to ASCII case: set, has and resume. */
static void test_case_insensitive(void **state)
{
	struct susp *s = susp_new();

	(void)state;
	assert_true(susp_set(s, "MX.Example.ORG", true));
	assert_true(susp_has(s, "mx.example.org"));
	assert_true(susp_has(s, "MX.EXAMPLE.ORG"));
	assert_false(susp_set(s, "mx.example.org", true));
	assert_false(susp_has(s, "mx.example.or"));
	assert_false(susp_has(s, "mx.example.orgx"));
	assert_true(susp_set(s, "mx.EXAMPLE.org", false));
	assert_false(susp_has(s, "MX.Example.ORG"));
	assert_true(susp_set(s, "left.example", true));
	susp_free(s); /* with an entry still set: ASan sees it freed */
}

/* The longest destination name (255 bytes) is kept whole. */
static void test_longest_name(void **state)
{
	char name[ROUTE_NAME_MAX], other[ROUTE_NAME_MAX];
	struct susp *s = susp_new();

	(void)state;
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	memcpy(other, name, sizeof(other));
	other[sizeof(other) - 2] = 'b';
	assert_true(susp_set(s, name, true));
	assert_true(susp_has(s, name));
	assert_false(susp_has(s, other));
	assert_true(susp_set(s, name, false));
	assert_false(susp_has(s, name));
	susp_free(s);
}

/* susp_has_sval reads the destination from a sched value in the current format (msg_sval_make)
 * and in the one before #5 (4-byte attempts + name), case-insensitively; nothing suspended:
 * false at once, whatever the value. */
static void test_has_sval(void **state)
{
	struct msg_sval v = {.name = "Example.ORG",
			     .attempts = 3,
			     .created_ms = DT_CREATED,
			     .bytes = 1000,
			     .pending = 2,
			     .primary = true};
	uint8_t v2[MSG_SVAL_MAX], old[64], other[MSG_SVAL_MAX];
	size_t v2len = msg_sval_make(&v, v2, sizeof(v2)), oldlen = dt_sval(7, "EXAMPLE.org", old),
	       olen;
	struct susp *s = susp_new();

	(void)state;
	v.name = "example.net";
	olen = msg_sval_make(&v, other, sizeof(other));
	assert_false(susp_has_sval(s, v2, v2len));
	assert_false(susp_has_sval(s, old, oldlen));
	assert_false(susp_has_sval(s, "", 0));
	assert_true(susp_set(s, "example.org", true));
	assert_true(susp_has_sval(s, v2, v2len));
	assert_true(susp_has_sval(s, old, oldlen));
	assert_false(susp_has_sval(s, other, olen));
	assert_false(susp_has_sval(s, "ab", 2)); /* garbage: an empty name */
	assert_true(susp_set(s, "example.net", true));
	assert_true(susp_has_sval(s, other, olen));
	assert_true(susp_set(s, "example.org", false));
	assert_false(susp_has_sval(s, v2, v2len));
	assert_false(susp_has_sval(s, old, oldlen));
	assert_true(susp_has_sval(s, other, olen));
	susp_free(s);
}

#define RD_THREADS 4
#define TOGGLES	   20000
#define MIN_READS  100000ul

struct race {
	struct susp *s;
	atomic_bool stop;
	atomic_uint wrong; /* answers that contradict a name that never changes */
	atomic_ulong reads;
	uint8_t fixed_sval[MSG_SVAL_MAX], never_sval[64];
	size_t fixed_len, never_len;
};

/* Reader: "fixed.example" is suspended for the whole run, "never.example" never; the toggled
 * names may read either way. */
static void *reader(void *arg)
{
	struct race *r = arg;
	unsigned long n = 0;
	char name[32];

	while (!atomic_load(&r->stop)) {
		atomic_fetch_add(&r->reads, 1);
		snprintf(name, sizeof(name), "t%lu.example", n % 8);
		(void)susp_has(r->s, name);
		if (!susp_has(r->s, "FIXED.example") || susp_has(r->s, "never.example") ||
		    !susp_has_sval(r->s, r->fixed_sval, r->fixed_len) ||
		    susp_has_sval(r->s, r->never_sval, r->never_len))
			atomic_fetch_add(&r->wrong, 1);
		n++;
	}
	return NULL;
}

/* Four readers while the main thread suspends and resumes eight other names 20000 times
 * (inserting at and removing from every position of the list): no wrong answer about the
 * names that do not change, and at the end exactly the names whose last write was "on". */
static void test_concurrent_readers(void **state)
{
	struct msg_sval v = {.name = "fixed.EXAMPLE", .primary = true};
	struct race r = {.s = susp_new()};
	pthread_t th[RD_THREADS];
	bool last[8] = {false};
	char name[32];

	(void)state;
	r.fixed_len = msg_sval_make(&v, r.fixed_sval, sizeof(r.fixed_sval));
	r.never_len = dt_sval(1, "never.example", r.never_sval);
	assert_true(susp_set(r.s, "fixed.example", true));
	for (unsigned t = 0; t < RD_THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, reader, &r), 0);
	/* at least TOGGLES changes, and on until the readers have read a while */
	for (unsigned k = 0; k < TOGGLES || atomic_load(&r.reads) < MIN_READS; k++) {
		unsigned i = (k * 5u + k / 8u) % 8u;
		bool on = (k / 3u) % 2u == 0;
		snprintf(name, sizeof(name), "T%u.example", i);
		assert_int_equal(susp_set(r.s, name, on), last[i] != on);
		last[i] = on;
	}
	atomic_store(&r.stop, true);
	for (unsigned t = 0; t < RD_THREADS; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(atomic_load(&r.wrong), 0);
	assert_true(atomic_load(&r.reads) >= MIN_READS);
	for (unsigned i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "t%u.example", i);
		assert_int_equal(susp_has(r.s, name), last[i]);
	}
	assert_true(susp_has(r.s, "fixed.example"));
	susp_free(r.s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_set_has_resume),   cmocka_unit_test(test_several),
	    cmocka_unit_test(test_case_insensitive), cmocka_unit_test(test_longest_name),
	    cmocka_unit_test(test_has_sval),	     cmocka_unit_test(test_concurrent_readers),
	};

	return cmocka_run_group_tests_name("susp", tests, NULL, NULL);
}
