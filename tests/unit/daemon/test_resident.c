/* test_resident — unit tests for engine/daemon/resident.c: the striped hash set of in-RAM
 * message ids and its byte / count totals.
 *
 * Why: the runner trusts resident_has to never load a message twice and resident_bytes to
 * enforce the RAM budget. Shards and the runner touch the set at once, so the totals must be
 * exact after concurrent add / del from several threads, and a delete in the middle of a hash
 * chain must keep its neighbours. resident.c is included to reach res_hash and craft collisions.
 */
#include "engine/daemon/resident.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define NTHREADS   4
#define PER_THREAD 10000

struct worker {
	pthread_t th;
	struct resident *res;
	struct msg *msgs; /* PER_THREAD of them, ids (t, i) */
	unsigned t;
	bool del_even;	 /* phase: delete even i (else add all) */
	unsigned misses; /* has() answers that were wrong (checked on the main thread) */
};

static uint64_t body_len_of(unsigned t, unsigned i)
{
	return (uint64_t)(i % 97) + t + 1;
}

static void make_id(struct queue_id *id, unsigned t, unsigned i)
{
	queue_id_make(id, 1700000000000ull + i, (uint16_t)t, i);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (unsigned i = 0; i < PER_THREAD; i++) {
		struct msg *m = &w->msgs[i];

		if (!w->del_even) {
			resident_add(w->res, m);
			w->misses += !resident_has(w->res, &m->id);
		} else if (i % 2 == 0) {
			resident_del(w->res, m);
			w->misses += resident_has(w->res, &m->id);
		} else {
			w->misses += !resident_has(w->res, &m->id);
		}
	}
	return NULL;
}

static void run_phase(struct worker *w, bool del_even)
{
	for (unsigned t = 0; t < NTHREADS; t++) {
		w[t].del_even = del_even;
		assert_int_equal(pthread_create(&w[t].th, NULL, worker_main, &w[t]), 0);
	}
	for (unsigned t = 0; t < NTHREADS; t++) {
		assert_int_equal(pthread_join(w[t].th, NULL), 0);
		assert_int_equal(w[t].misses, 0);
	}
}

static void workers_init(struct worker *w, struct resident *res)
{
	for (unsigned t = 0; t < NTHREADS; t++) {
		w[t].res = res;
		w[t].t = t;
		w[t].misses = 0;
		w[t].msgs = calloc(PER_THREAD, sizeof(struct msg));
		assert_non_null(w[t].msgs);
		for (unsigned i = 0; i < PER_THREAD; i++) {
			make_id(&w[t].msgs[i].id, t, i);
			w[t].msgs[i].body_len = body_len_of(t, i);
		}
	}
}

/* Sum of body lengths over (t, i) with i of the given parity (2 = all). */
static uint64_t expected_bytes(int parity)
{
	uint64_t sum = 0;

	for (unsigned t = 0; t < NTHREADS; t++)
		for (unsigned i = 0; i < PER_THREAD; i++)
			if (parity == 2 || (int)(i % 2) == parity)
				sum += body_len_of(t, i) + sizeof(struct msg);
	return sum;
}

/* 4 threads add 10k ids each, then delete the even half while checking the odd half; totals
 * are exact after each phase and has() agrees with what the main thread expects. */
static void test_threads_add_has_del(void **state)
{
	struct resident *res = resident_new();
	struct worker w[NTHREADS];
	struct queue_id other;

	workers_init(w, res);
	run_phase(w, false);
	assert_int_equal(resident_count(res), NTHREADS * PER_THREAD);
	assert_int_equal(resident_bytes(res), expected_bytes(2));
	make_id(&other, NTHREADS, 0);
	assert_false(resident_has(res, &other));

	run_phase(w, true);
	assert_int_equal(resident_count(res), NTHREADS * PER_THREAD / 2);
	assert_int_equal(resident_bytes(res), expected_bytes(1));
	for (unsigned t = 0; t < NTHREADS; t++)
		for (unsigned i = 0; i < PER_THREAD; i++)
			assert_int_equal(resident_has(res, &w[t].msgs[i].id), i % 2 == 1);

	for (unsigned t = 0; t < NTHREADS; t++) {
		for (unsigned i = 1; i < PER_THREAD; i += 2)
			resident_del(res, &w[t].msgs[i]);
		free(w[t].msgs);
	}
	assert_int_equal(resident_count(res), 0);
	assert_int_equal(resident_bytes(res), 0);
	resident_free(res);
}

/* Find n ids (seq values) that hash to the same bucket as seq 0. */
static void find_colliding(struct msg *m, unsigned n)
{
	uint32_t h;
	unsigned found = 1;

	queue_id_make(&m[0].id, 42, 7, 0);
	h = res_hash(&m[0].id);
	for (uint64_t seq = 1; found < n; seq++) {
		queue_id_make(&m[found].id, 42, 7, seq);
		if (res_hash(&m[found].id) == h)
			found++;
	}
}

/* Three ids in one bucket chain: deleting the middle one, then the head, keeps the others. */
static void test_chain_delete_middle(void **state)
{
	struct resident *res = resident_new();
	struct msg m[3];

	memset(m, 0, sizeof(m));
	find_colliding(m, 3);
	for (unsigned i = 0; i < 3; i++) {
		m[i].body_len = 10u << i;
		resident_add(res, &m[i]);
	}
	assert_int_equal(resident_bytes(res), 70 + 3 * sizeof(struct msg));
	resident_del(res, &m[1]); /* middle of the chain (added second) */
	assert_true(resident_has(res, &m[0].id));
	assert_false(resident_has(res, &m[1].id));
	assert_true(resident_has(res, &m[2].id));
	assert_null(m[1].res_next);
	resident_del(res, &m[2]); /* head */
	assert_true(resident_has(res, &m[0].id));
	assert_false(resident_has(res, &m[2].id));
	assert_int_equal(resident_bytes(res), 10 + sizeof(struct msg));
	assert_int_equal(resident_count(res), 1);
	resident_del(res, &m[0]);
	assert_int_equal(resident_count(res), 0);
	resident_free(res);
	resident_free(NULL);
}

/* has() compares the whole id: an id differing in one byte is not resident. */
static void test_has_compares_whole_id(void **state)
{
	struct resident *res = resident_new();
	struct msg m;
	struct queue_id near;

	memset(&m, 0, sizeof(m));
	queue_id_make(&m.id, 1000, 1, 1);
	resident_add(res, &m);
	for (unsigned b = 0; b < QUEUE_ID_LEN; b++) {
		near = m.id;
		near.b[b] ^= 1;
		assert_false(resident_has(res, &near));
	}
	assert_true(resident_has(res, &m.id));
	resident_del(res, &m);
	resident_free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_threads_add_has_del),
	    cmocka_unit_test(test_chain_delete_middle),
	    cmocka_unit_test(test_has_compares_whole_id),
	};

	return cmocka_run_group_tests_name("resident", tests, NULL, NULL);
}
