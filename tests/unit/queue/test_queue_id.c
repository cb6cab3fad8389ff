/* test_queue_id — message ids: layout, hex format/parse, and that byte order is time order.
 *
 * Why: ids are RocksDB keys and appear in every log line and admin command; a wrong byte order
 * would silently break recovery order, a lax parser would let riptidectl act on the wrong id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "queue/queue.h"

static void test_id_make_layout(void **state)
{
	struct queue_id id;
	static const uint8_t want[QUEUE_ID_LEN] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
						   0xab, 0xcd, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66};

	queue_id_make(&id, 0x0102030405060708ull, 0xabcd, 0x112233445566ull);
	assert_memory_equal(id.b, want, QUEUE_ID_LEN);
	assert_int_equal(queue_id_ms(&id), 0x0102030405060708ull);
}

static void test_id_seq_wraps_48_bits(void **state)
{
	struct queue_id a, b;

	queue_id_make(&a, 5, 1, 0xffff000000000007ull);
	queue_id_make(&b, 5, 1, 7);
	assert_memory_equal(a.b, b.b, QUEUE_ID_LEN);
}

static void test_id_format(void **state)
{
	struct queue_id id;
	char s[QUEUE_ID_STRLEN + 1];

	queue_id_make(&id, 0x0000018c1f2e3d4cull, 3, 0xfeull);
	queue_id_format(&id, s);
	assert_string_equal(s, "0000018c1f2e3d4c00030000000000fe");
	assert_int_equal(strlen(s), QUEUE_ID_STRLEN);
}

static void test_id_parse_roundtrip(void **state)
{
	struct queue_id id, back;
	char s[QUEUE_ID_STRLEN + 1];

	for (uint64_t i = 0; i < 1000; i++) {
		queue_id_make(&id, i * 0x9e3779b97f4a7c15ull, (uint16_t)(i * 7919), i * 104729);
		queue_id_format(&id, s);
		assert_int_equal(queue_id_parse(s, &back), 0);
		assert_memory_equal(id.b, back.b, QUEUE_ID_LEN);
	}
}

static void test_id_parse_uppercase(void **state)
{
	struct queue_id id;
	char s[QUEUE_ID_STRLEN + 1];

	assert_int_equal(queue_id_parse("0000018C1F2E3D4C00030000000000FE", &id), 0);
	queue_id_format(&id, s);
	assert_string_equal(s, "0000018c1f2e3d4c00030000000000fe");
}

static void test_id_parse_rejects(void **state)
{
	static const char *const bad[] = {
	    "",
	    "0000018c1f2e3d4c00030000000000f",	 /* 31 digits */
	    "0000018c1f2e3d4c00030000000000fe0", /* 33 digits */
	    "0000018c1f2e3d4c00030000000000fg",	 /* not hex */
	    "0000018c1f2e3d4c0003000000000 fe",	 /* space */
	    "x000018c1f2e3d4c00030000000000fe",
	    "0000018c1f2e3d4c00030000000000fe\n",
	    "-000018c1f2e3d4c00030000000000fe",
	};
	struct queue_id id, orig;

	queue_id_make(&orig, 42, 42, 42);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		id = orig;
		assert_int_equal(queue_id_parse(bad[i], &id), -EINVAL);
		assert_memory_equal(id.b, orig.b, QUEUE_ID_LEN); /* untouched on error */
	}
	assert_int_equal(queue_id_parse(NULL, &id), -EINVAL);
}

/* memcmp order of ids = (ms, shard, seq) order: what makes key order time order. */
static void test_id_order(void **state)
{
	static const struct {
		uint64_t ms;
		uint16_t shard;
		uint64_t seq;
	} sorted[] = {
	    {0, 0, 0},
	    {0, 0, 1},
	    {0, 0, 0xffffffffffffull},
	    {0, 1, 0},
	    {0, 0xffff, 0},
	    {1, 0, 0},
	    {255, 0, 0},
	    {256, 0, 0},
	    {1700000000000ull, 2, 5},
	    {1700000000001ull, 0, 0},
	    {UINT64_MAX, 0xffff, 0xffffffffffffull},
	};
	size_t n = sizeof(sorted) / sizeof(sorted[0]);

	for (size_t i = 0; i + 1 < n; i++) {
		struct queue_id a, b;

		queue_id_make(&a, sorted[i].ms, sorted[i].shard, sorted[i].seq);
		queue_id_make(&b, sorted[i + 1].ms, sorted[i + 1].shard, sorted[i + 1].seq);
		assert_true(memcmp(a.b, b.b, QUEUE_ID_LEN) < 0);
		assert_true(queue_id_ms(&a) <= queue_id_ms(&b));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_id_make_layout),     cmocka_unit_test(test_id_seq_wraps_48_bits),
	    cmocka_unit_test(test_id_format),	       cmocka_unit_test(test_id_parse_roundtrip),
	    cmocka_unit_test(test_id_parse_uppercase), cmocka_unit_test(test_id_parse_rejects),
	    cmocka_unit_test(test_id_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
