/* test_queue_scan_meta — queue_scan_meta against every backend: id order, the `from` start,
 * early stop, errors from the callback, and snapshot semantics while the callback writes.
 *
 * Why: `riptidectl queue list` streams the whole queue through queue_scan_meta while the
 * daemon keeps writing; it relies on the store to hand each message once, in creation order,
 * from a consistent snapshot, and to resume exactly from an id. The memory backend stands in
 * for RocksDB in engine tests, so both run the same table (fixture in store_fx.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "queue/queue.h"
#include "tests/unit/queue/store_fx.h"

/* What a scan saw: message numbers (from the meta text "meta-N[...]"), metas, and an
 * optional action run at the first call. */
struct seen {
	size_t n, stop_after;
	int ret;
	uint64_t num[64];
	char meta[64][24];
	struct queue_id id[64];
	void (*at_first)(struct seen *s);
	struct qfx *f;
};

static int collect(void *arg, const struct queue_id *id, const void *meta, size_t len)
{
	struct seen *s = arg;

	assert_true(s->n < 64);
	assert_true(len < sizeof(s->meta[0]));
	memcpy(s->meta[s->n], meta, len);
	s->meta[s->n][len] = '\0';
	s->id[s->n] = *id;
	assert_int_equal(sscanf(s->meta[s->n], "meta-%llu", (unsigned long long *)&s->num[s->n]),
			 1);
	if (s->n == 0 && s->at_first)
		s->at_first(s);
	s->n++;
	if (s->stop_after && s->n == s->stop_after)
		return s->ret;
	return 0;
}

/* Scan from `from` (NULL: all) and check the message numbers seen are exactly want[0..nw). */
static void assert_meta_scan(struct qfx *f, const struct queue_id *from, const uint64_t *want,
			     size_t nw)
{
	struct seen s = {0};

	assert_int_equal(queue_scan_meta(f->q, from, collect, &s), 0);
	assert_int_equal(s.n, nw);
	for (size_t i = 0; i < nw; i++) {
		struct queue_id id = qfx_id(want[i]);

		assert_int_equal(s.num[i], want[i]);
		assert_memory_equal(s.id[i].b, id.b, QUEUE_ID_LEN);
	}
}

/* Messages written out of order come back in id (creation) order, one call each, sched
 * entries and deleted messages not among them; an empty queue calls nothing. */
static void test_meta_order(void **state)
{
	struct qfx *f = *state;
	static const uint64_t put[] = {5, 1, 9, 3, 7, 2};
	static const uint64_t want[] = {1, 3, 5, 7, 9};

	assert_meta_scan(f, NULL, NULL, 0);
	for (size_t i = 0; i < 6; i++) {
		qfx_put(f, put[i], 1000 - put[i]);
		if (i % 2)
			qfx_write(f, false);
	}
	qfx_sched_put(f, 9, 5, 3, "extra");
	qfx_write(f, true);
	qfx_del(f, 2, 998);
	qfx_write(f, true);
	assert_meta_scan(f, NULL, want, 5);
}

/* `from` is inclusive: an existing id starts there, an id between two messages starts at the
 * next one, an id past the last calls nothing. */
static void test_meta_from(void **state)
{
	struct qfx *f = *state;
	static const uint64_t all[] = {10, 20, 30, 40};
	struct queue_id from = qfx_id(20), mid = qfx_id(25), past = qfx_id(41);

	for (size_t i = 0; i < 4; i++)
		qfx_put(f, all[i], 100);
	qfx_write(f, true);
	assert_meta_scan(f, &from, all + 1, 3);
	assert_meta_scan(f, &mid, all + 2, 2);
	assert_meta_scan(f, &past, NULL, 0);
	from = qfx_id(0);
	assert_meta_scan(f, &from, all, 4);
}

/* A callback returning > 0 stops the scan with 0; a negative value stops it and is returned
 * as is. */
static void test_meta_stop(void **state)
{
	struct qfx *f = *state;
	struct seen s = {.stop_after = 2, .ret = 1};

	for (uint64_t n = 1; n <= 5; n++)
		qfx_put(f, n, 100);
	qfx_write(f, true);
	assert_int_equal(queue_scan_meta(f->q, NULL, collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.num[1], 2);
	s = (struct seen){.stop_after = 3, .ret = -ECANCELED};
	assert_int_equal(queue_scan_meta(f->q, NULL, collect, &s), -ECANCELED);
	assert_int_equal(s.n, 3);
}

/* Run at the first callback: rewrite message 2's meta, delete message 3, add message 100. */
static void write_during_scan(struct seen *s)
{
	struct queue_id two = qfx_id(2);

	queue_batch_meta(s->f->b, &two, "meta-2-v2", 9);
	qfx_del(s->f, 3, 100);
	qfx_put(s->f, 100, 100);
	qfx_write(s->f, true);
}

/* The scan reads a snapshot taken at its start: writes made by the callback are not seen (the
 * old meta of 2, the deleted 3, not the new 100); the next scan sees them. */
static void test_meta_snapshot(void **state)
{
	struct qfx *f = *state;
	static const uint64_t before[] = {1, 2, 3, 4}, after[] = {1, 2, 4, 100};
	struct seen s = {.at_first = write_during_scan, .f = f};

	for (uint64_t n = 1; n <= 4; n++)
		qfx_put(f, n, 100);
	qfx_write(f, true);
	assert_int_equal(queue_scan_meta(f->q, NULL, collect, &s), 0);
	assert_int_equal(s.n, 4);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(s.num[i], before[i]);
	assert_string_equal(s.meta[1], "meta-2");
	assert_meta_scan(f, NULL, after, 4);
	s = (struct seen){0};
	assert_int_equal(queue_scan_meta(f->q, NULL, collect, &s), 0);
	assert_string_equal(s.meta[1], "meta-2-v2");
}

/* RocksDB: the messages come back in order, from any start, after close + reopen (the store
 * rebuilt from its files and WAL). */
static void test_meta_reopen(void **state)
{
	struct qfx *f = *state;
	static const uint64_t want[] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct queue_id from = qfx_id(4);

	for (uint64_t n = 8; n >= 1; n--)
		qfx_put(f, n, 100);
	qfx_write(f, true);
	qfx_reopen(f, false);
	assert_meta_scan(f, NULL, want, 8);
	assert_meta_scan(f, &from, want + 3, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    QFX_BOTH(test_meta_order),	  QFX_BOTH(test_meta_from),    QFX_BOTH(test_meta_stop),
	    QFX_BOTH(test_meta_snapshot), QFX_ROCKS(test_meta_reopen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
