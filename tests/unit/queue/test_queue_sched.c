/* test_queue_sched — destination groups in the store: several sched entries per message,
 * keyed (due, id, group index), against every backend; plus the all-or-nothing rule for a
 * mixed batch under the memory backend's injected write failures.
 *
 * Why: since the queue keeps one sched entry per (message, destination group), the engine
 * relies on the store to keep each group's entry apart: ordered by due, then id, then group;
 * removed or moved one at a time; left alone by a meta rewrite or a message delete; and not
 * counted as messages. The memory backend stands in for RocksDB in engine tests, so both run
 * the same table (fixture in store_fx.c).
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

/* One message with entries for several groups (same and different dues), and a second
 * message: scanned in key order (due, id, group as a big-endian u16: 255 < 256 < 65534) with
 * each entry's own group and value; queue_count counts the two messages, not the entries. */
static void test_groups_scan_order(void **state)
{
	struct qfx *f = *state;
	static const struct qfx_want all[] = {
	    {1, 50, 7, "g7"},	   {1, 100, 0, "g0"},	  {1, 100, 2, "g2"},
	    {1, 100, 255, "g255"}, {1, 100, 256, "g256"}, {1, 100, 65534, "gmax"},
	    {2, 100, 0, "m2g0"},   {1, 200, 1, "g1"},
	};
	static const size_t order[] = {7, 3, 6, 0, 5, 1, 4, 2}; /* insertion order */

	qfx_put(f, 1, 100); /* also puts (100, 1, 0) = "s1", replaced below */
	qfx_put(f, 2, 100);
	qfx_write(f, true);
	for (size_t i = 0; i < 8; i++) {
		const struct qfx_want *w = &all[order[i]];

		qfx_sched_put(f, w->n, w->due, w->dest, w->sval);
		if (i % 3 == 2)
			qfx_write(f, i % 2);
	}
	qfx_write(f, false);
	qfx_assert_scan(f, 0, UINT64_MAX, all, 8);
	qfx_assert_scan(f, 100, 100, all + 1, 6);
	qfx_assert_scan(f, 101, UINT64_MAX, all + 7, 1);
	assert_int_equal(qfx_count(f), 2);
}

/* sched_del of one group removes exactly that (due, id, group) key: a wrong due or group
 * removes nothing, and the message's meta, body and other groups stay. */
static void test_groups_sched_del_one(void **state)
{
	struct qfx *f = *state;
	static const struct qfx_want rest[] = {{3, 100, 0, "a"}, {3, 200, 2, "c"}};

	qfx_put(f, 3, 100);
	qfx_sched_put(f, 3, 100, 0, "a");
	qfx_sched_put(f, 3, 100, 1, "b");
	qfx_sched_put(f, 3, 200, 2, "c");
	qfx_write(f, true);
	qfx_sched_del(f, 3, 100, 1);
	qfx_sched_del(f, 3, 200, 0); /* no such key: group 0 is due at 100 */
	qfx_sched_del(f, 3, 100, 3); /* no such group */
	qfx_sched_del(f, 4, 100, 0); /* no such message */
	qfx_write(f, false);
	qfx_assert_scan(f, 0, UINT64_MAX, rest, 2);
	qfx_assert_get(f, 3, "meta-3", "body-3\r\n.\r\n");
	assert_int_equal(qfx_count(f), 1);
	/* moving one group leaves the other where it is */
	qfx_sched_del(f, 3, 200, 2);
	qfx_sched_put(f, 3, 50, 2, "c2");
	qfx_write(f, false);
	qfx_assert_scan(f, 0, UINT64_MAX,
			(const struct qfx_want[]){{3, 50, 2, "c2"}, {3, 100, 0, "a"}}, 2);
}

/* queue_batch_meta replaces the meta only: body and sched entries are untouched, and the
 * last of several rewrites in one batch wins. */
static void test_meta_rewrite(void **state)
{
	struct qfx *f = *state;
	struct queue_id id = qfx_id(6);
	static const struct qfx_want w[] = {{6, 60, 0, "s6"}, {6, 70, 1, "x"}};

	qfx_put(f, 6, 60);
	qfx_sched_put(f, 6, 70, 1, "x");
	qfx_write(f, true);
	queue_batch_meta(f->b, &id, "meta-6-v2", 9);
	queue_batch_meta(f->b, &id, "meta-6-v3-longer", 16);
	assert_int_equal(queue_batch_count(f->b), 2);
	qfx_write(f, true);
	qfx_assert_get(f, 6, "meta-6-v3-longer", "body-6\r\n.\r\n");
	qfx_assert_scan(f, 0, UINT64_MAX, w, 2);
	assert_int_equal(qfx_count(f), 1);
	queue_batch_meta(f->b, &id, "", 0); /* empty meta is a value too */
	qfx_write(f, false);
	qfx_assert_get(f, 6, "", "body-6\r\n.\r\n");
}

/* queue_batch_delete removes meta and body only: the sched entries stay until the caller
 * deletes them (and stray sched entries do not count as messages). */
static void test_delete_leaves_sched(void **state)
{
	struct qfx *f = *state;
	struct queue_id id = qfx_id(7);
	static const struct qfx_want w[] = {{7, 70, 0, "s7"}, {7, 80, 4, "g4"}};

	qfx_put(f, 7, 70);
	qfx_sched_put(f, 7, 80, 4, "g4");
	qfx_write(f, true);
	queue_batch_delete(f->b, &id);
	qfx_write(f, true);
	qfx_assert_absent(f, 7);
	assert_int_equal(qfx_count(f), 0);
	qfx_assert_scan(f, 0, UINT64_MAX, w, 2);
	qfx_sched_del(f, 7, 70, 0);
	qfx_sched_del(f, 7, 80, 4);
	qfx_write(f, true);
	assert_int_equal(qfx_scan(f, 0, UINT64_MAX).n, 0);
	assert_int_equal(qfx_count(f), 0);
}

/* queue_count is the number of messages (meta entries): messages with 0, 1 and 5 sched entries,
 * and sched entries without a message, give 3. */
static void test_count_messages(void **state)
{
	struct qfx *f = *state;
	struct queue_id id = qfx_id(12);

	qfx_put(f, 10, 5);
	qfx_put(f, 11, 5);
	for (unsigned g = 1; g < 5; g++)
		qfx_sched_put(f, 11, 5 + g, g, "g");
	queue_batch_put(f->b, &id, "m", 1, "b", 1);
	qfx_sched_put(f, 13, 5, 0, "orphan");
	qfx_write(f, true);
	assert_int_equal(qfx_count(f), 3);
	assert_int_equal(qfx_scan(f, 0, UINT64_MAX).n, 7);
}

/* A mixed batch over messages 1 and 2 of test_fail_writes_atomic: put, meta rewrite, delete,
 * sched puts and dels of several groups. */
static void mix_batch(struct qfx *f)
{
	struct queue_id id1 = qfx_id(1), id2 = qfx_id(2);

	qfx_put(f, 3, 30);		  /* a new message, group 0 */
	qfx_sched_put(f, 3, 31, 1, "n1"); /* and its group 1 */
	queue_batch_meta(f->b, &id1, "meta-1-v2", 9);
	qfx_sched_del(f, 1, 10, 0); /* message 1, group 0 retried later */
	qfx_sched_put(f, 1, 40, 0, "r0");
	queue_batch_delete(f->b, &id2); /* message 2 done */
	qfx_sched_del(f, 2, 20, 0);
	qfx_sched_del(f, 2, 21, 1);
}

/* Memory backend with injected failures: the mixed batch, refused, changes nothing at all
 * and stays as it was; written again once writes work, it applies in full. */
static void test_fail_writes_atomic(void **state)
{
	struct qfx *f = *state;
	static const struct qfx_want before[] = {
	    {1, 10, 0, "s1"}, {1, 11, 1, "g1"}, {2, 20, 0, "s2"}, {2, 21, 1, "g1"}};
	static const struct qfx_want after[] = {
	    {1, 11, 1, "g1"}, {3, 30, 0, "s3"}, {3, 31, 1, "n1"}, {1, 40, 0, "r0"}};
	static const int errs[] = {-ENOSPC, -EIO};

	qfx_put(f, 1, 10);
	qfx_sched_put(f, 1, 11, 1, "g1");
	qfx_put(f, 2, 20);
	qfx_sched_put(f, 2, 21, 1, "g1");
	qfx_write(f, true);
	mix_batch(f);
	for (size_t i = 0; i < 2; i++) {
		__atomic_store_n(&qfx_fail_writes, errs[i], __ATOMIC_RELAXED);
		assert_int_equal(queue_write(f->q, f->b, true, f->err, sizeof(f->err)), errs[i]);
		assert_true(strlen(f->err) > 0);
		assert_int_equal(queue_batch_count(f->b), 9);
		qfx_assert_scan(f, 0, UINT64_MAX, before, 4);
		qfx_assert_get(f, 1, "meta-1", "body-1\r\n.\r\n");
		qfx_assert_get(f, 2, "meta-2", "body-2\r\n.\r\n");
		qfx_assert_absent(f, 3);
		assert_int_equal(qfx_count(f), 2);
	}
	__atomic_store_n(&qfx_fail_writes, 0, __ATOMIC_RELAXED);
	qfx_write(f, true);
	qfx_assert_scan(f, 0, UINT64_MAX, after, 4);
	qfx_assert_get(f, 1, "meta-1-v2", "body-1\r\n.\r\n");
	qfx_assert_absent(f, 2);
	qfx_assert_get(f, 3, "meta-3", "body-3\r\n.\r\n");
	assert_int_equal(qfx_count(f), 2);
}

/* RocksDB: every group's entry (dest index and value) survives close + reopen, in key
 * order, and the message count is unchanged. */
static void test_groups_survive_reopen(void **state)
{
	struct qfx *f = *state;
	static const struct qfx_want w[] = {
	    {1, 10, 0, "s1"},	 {1, 10, 513, "a"}, {2, 20, 0, "s2"},
	    {1, 30, 65534, "b"}, {2, 30, 1, "c"},
	};

	qfx_put(f, 1, 10);
	qfx_put(f, 2, 20);
	qfx_sched_put(f, 1, 10, 513, "a");
	qfx_sched_put(f, 1, 30, 65534, "b");
	qfx_sched_put(f, 2, 30, 1, "c");
	qfx_sched_put(f, 2, 40, 2, "gone");
	qfx_write(f, true);
	qfx_sched_del(f, 2, 40, 2);
	qfx_write(f, true);
	qfx_reopen(f, false);
	qfx_assert_scan(f, 0, UINT64_MAX, w, 5);
	assert_int_equal(qfx_count(f), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    QFX_BOTH(test_groups_scan_order),	  QFX_BOTH(test_groups_sched_del_one),
	    QFX_BOTH(test_meta_rewrite),	  QFX_BOTH(test_delete_leaves_sched),
	    QFX_BOTH(test_count_messages),	  QFX_ROCKS(test_groups_survive_reopen),
	    QFX_MEMFAIL(test_fail_writes_atomic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
