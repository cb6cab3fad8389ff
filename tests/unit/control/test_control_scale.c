/* test_control_scale — `queue list` of 100,000 messages streams: the server never holds more
 * than one decoded envelope and a bounded amount of heap while it lists, and the client's peak
 * RSS does not grow with the size of the answer.
 *
 * Why: an operator lists a queue of a million messages on a daemon that must keep its memory
 * budget. How it is proven: this binary is linked with -Wl,--wrap for queue_env_decode /
 * queue_env_free (every envelope the server decodes is counted while alive) and for malloc,
 * calloc, realloc and free (the heap the C code of the server holds is measured, with
 * malloc_usable_size, on every thread but the test's own while the listing runs).
 * RocksDB's own C++ allocations (its iterator and blocks) are not counted: they are bounded by
 * RocksDB, independent of the queue length. The client is the real riptidectl; its peak RSS
 * (wait4) for the whole listing (~12 MB of output) is compared with that of a 10-line one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <string.h>
#include <cmocka.h>

#include "tests/unit/control/ctl_fx.h"

#define NMSG 100000u

/* ---- the wraps ---- */

int __real_queue_scan_meta(struct queue *q, const struct queue_id *from, queue_meta_cb cb,
			   void *arg);
int __wrap_queue_scan_meta(struct queue *q, const struct queue_id *from, queue_meta_cb cb,
			   void *arg);
int __real_queue_env_decode(const uint8_t *buf, size_t len, struct queue_env **out);
void __real_queue_env_free(struct queue_env *e);
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __wrap_queue_env_decode(const uint8_t *buf, size_t len, struct queue_env **out);
void __wrap_queue_env_free(struct queue_env *e);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static atomic_long env_live, env_peak, env_decodes, scans;
static atomic_bool heap_on;
static _Thread_local bool heap_skip; /* set on the test's own thread: not the server's heap */
static atomic_long heap_live, heap_peak;

/* Every scan of the meta column family (the server's chunks; the fixture's own scans are not
 * made during the listings). */
int __wrap_queue_scan_meta(struct queue *q, const struct queue_id *from, queue_meta_cb cb,
			   void *arg)
{
	atomic_fetch_add(&scans, 1);
	return __real_queue_scan_meta(q, from, cb, arg);
}

int __wrap_queue_env_decode(const uint8_t *buf, size_t len, struct queue_env **out)
{
	int rc = __real_queue_env_decode(buf, len, out);

	if (rc == 0) {
		long n = atomic_fetch_add(&env_live, 1) + 1;

		atomic_fetch_add(&env_decodes, 1);
		if (n > atomic_load(&env_peak))
			atomic_store(&env_peak, n);
	}
	return rc;
}

void __wrap_queue_env_free(struct queue_env *e)
{
	if (e)
		atomic_fetch_sub(&env_live, 1);
	__real_queue_env_free(e);
}

/* Account size bytes more (or less) of heap while heap_on. */
static void heap_add(long size)
{
	long n;

	if (!atomic_load(&heap_on) || heap_skip)
		return;
	n = atomic_fetch_add(&heap_live, size) + size;
	if (n > atomic_load(&heap_peak))
		atomic_store(&heap_peak, n);
}

void *__wrap_malloc(size_t n)
{
	void *p = __real_malloc(n);

	if (p)
		heap_add((long)malloc_usable_size(p));
	return p;
}

void *__wrap_calloc(size_t n, size_t m)
{
	void *p = __real_calloc(n, m);

	if (p)
		heap_add((long)malloc_usable_size(p));
	return p;
}

void *__wrap_realloc(void *p, size_t n)
{
	long old = p ? (long)malloc_usable_size(p) : 0;
	void *q = __real_realloc(p, n);

	if (q || n == 0)
		heap_add(-old);
	if (q)
		heap_add((long)malloc_usable_size(q));
	return q;
}

void __wrap_free(void *p)
{
	if (p)
		heap_add(-(long)malloc_usable_size(p));
	__real_free(p);
}

/* ---- the queue ---- */

/* Run the whole text listing with the counters on; checks every message is in it. Returns
 * the server's heap peak (bytes); *rss gets riptidectl's peak RSS (kB). */
static long list_measured(struct cfx *f, long *rss)
{
	long peak;

	atomic_store(&env_peak, 0);
	atomic_store(&env_decodes, 0);
	atomic_store(&scans, 0);
	atomic_store(&heap_live, 0);
	atomic_store(&heap_peak, 0);
	atomic_store(&heap_on, true);
	assert_int_equal(cfx_run(f, (const char *const[]){"queue", "list", NULL}), 0);
	atomic_store(&heap_on, false);
	*rss = f->maxrss_kb;
	peak = atomic_load(&heap_peak);
	assert_int_equal(cfx_lines(f->out), NMSG + 2);
	assert_non_null(strstr(f->out, "\n100000 messages\n"));
	return peak;
}

/* The whole queue is listed (every message, in order, text and JSON) while the server holds
 * one envelope at most and less than 1 MiB of heap; riptidectl's peak RSS for the whole
 * listing exceeds that of a 10-message listing by less than 4 MiB. */
static void test_list_100k_bounded(void **state)
{
	struct cfx *f = *state;
	long rss_small, rss_full, peak;
	char py[512];

	heap_skip = true;
	cfx_bulk(f, NMSG);
	assert_int_equal(cfx_count(f), NMSG);
	assert_int_equal(cfx_run(f, (const char *const[]){"queue", "list", "--limit", "10", NULL}),
			 0);
	assert_int_equal(cfx_lines(f->out), 12);
	rss_small = f->maxrss_kb;
	peak = list_measured(f, &rss_full);
	fprintf(stderr,
		"list of %u: %ld envelopes decoded, at most %ld alive, in %ld scans; server heap "
		"peak %ld B; riptidectl maxrss %ld kB (10 lines: %ld kB); output %zu bytes\n",
		NMSG, atomic_load(&env_decodes), atomic_load(&env_peak), atomic_load(&scans), peak,
		rss_full, rss_small, strlen(f->out));
	assert_int_equal(atomic_load(&env_decodes), NMSG);
	assert_int_equal(atomic_load(&env_peak), 1);
	assert_true(peak < (1l << 20));
	assert_true(rss_full - rss_small < 4096);
	assert_true(atomic_load(&scans) >= (long)(strlen(f->out) / (40u << 10)));
	assert_int_equal(cfx_run(f, (const char *const[]){"queue", "list", "--json", NULL}), 0);
	snprintf(py, sizeof(py),
		 "import json,sys\n"
		 "n=0;prev=''\n"
		 "for l in open(sys.argv[1]):\n"
		 "  m=json.loads(l); assert m['id']>prev and m['pending']==2; prev=m['id']; n+=1\n"
		 "assert n==%u, n\n",
		 NMSG);
	assert_int_equal(cfx_python(f, py), 0);
}

/* A filter that matches nothing still reads the queue in chunks of at most 4096 messages (so
 * a stop of the server is seen between them) and answers "0 messages". */
static void test_list_nomatch_chunked(void **state)
{
	struct cfx *f = *state;

	heap_skip = true;
	cfx_bulk(f, NMSG);
	atomic_store(&scans, 0);
	atomic_store(&env_decodes, 0);
	assert_int_equal(cfx_run(f, (const char *const[]){"queue", "list", "--sender",
							  "nobody@nowhere.example", NULL}),
			 0);
	assert_non_null(strstr(f->out, "\n0 messages\n"));
	assert_int_equal(atomic_load(&env_decodes), NMSG);
	assert_int_equal(atomic_load(&scans), (NMSG + 4095) / 4096);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_list_100k_bounded, cfx_setup, cfx_teardown),
	    cmocka_unit_test_setup_teardown(test_list_nomatch_chunked, cfx_setup, cfx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
