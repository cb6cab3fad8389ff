/* store_fx — the fixture shared by the queue store tests (test_queue_store.c,
 * test_queue_sched.c): an open queue per backend (RocksDB in a mkdtemp directory removed in
 * teardown, or memory, optionally with injected write failures), a batch, and helpers that
 * put, delete, read and scan numbered test messages.
 *
 * Why: both files run their tables against every backend with the same fixture; one copy keeps
 * the backends' checks identical and each file about what it tests.
 */
#ifndef RIPTIDE_TESTS_QUEUE_STORE_FX_H
#define RIPTIDE_TESTS_QUEUE_STORE_FX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"

struct qfx {
	enum queue_backend backend;
	const int *fail_writes; /* memory backend: injected write failures (queue_opts) */
	char dir[64];
	struct queue *q;
	struct queue_batch *b;
	char err[256];
};

/* The fixtures of the tables: RocksDB, memory, memory with qfx_fail_writes. */
extern struct qfx qfx_rocksdb, qfx_memory, qfx_memfail;
/* qfx_memfail's write failure (a negative errno, or 0); store with __atomic_store_n. */
extern int qfx_fail_writes;

/* qfx_setup / qfx_teardown: cmocka fixture: state is a struct qfx; open its queue (and temp
 * dir) and a batch / close and free them and remove the dir. */
int qfx_setup(void **state);
int qfx_teardown(void **state);

/* qfx_reopen: close f's queue and open it again (blob: RocksDB blob bodies). */
void qfx_reopen(struct qfx *f, bool blob);

/* qfx_id: the id of test message n. */
struct queue_id qfx_id(uint64_t n);

/* qfx_write: write f's batch (failing the test on error) and clear it. */
void qfx_write(struct qfx *f, bool sync);

/* qfx_put: add message n to the batch: meta "meta-N", body "body-N\r\n.\r\n" (kept in a
 * ring of 4096 that outlives the write) and its group-0 sched entry at due, value "sN". */
void qfx_put(struct qfx *f, uint64_t n, uint64_t due);

/* qfx_del: add the removal of message n and its group-0 sched entry at due. */
void qfx_del(struct qfx *f, uint64_t n, uint64_t due);

/* qfx_sched_put / qfx_sched_del: add the sched entry (due, message n, group dest). */
void qfx_sched_put(struct qfx *f, uint64_t n, uint64_t due, unsigned dest, const char *sval);
void qfx_sched_del(struct qfx *f, uint64_t n, uint64_t due, unsigned dest);

/* qfx_count: queue_count, asserted to succeed. */
uint64_t qfx_count(struct qfx *f);

/* qfx_assert_get / qfx_assert_absent: message n has exactly this meta and body / is gone
 * (-ENOENT, nothing allocated). */
void qfx_assert_get(struct qfx *f, uint64_t n, const char *meta, const char *body);
void qfx_assert_absent(struct qfx *f, uint64_t n);

/* Scan collector: records up to 64 entries (values < 16 bytes); stops after `stop_after`
 * (if non-zero) returning `ret`. */
struct qfx_seen {
	size_t n, stop_after;
	int ret;
	uint64_t due[64];
	struct queue_id id[64];
	unsigned dest[64];
	char sval[64][16];
};

/* qfx_collect: a queue_scan_cb recording into a struct qfx_seen. */
int qfx_collect(void *arg, uint64_t due, const struct queue_id *id, unsigned dest, const void *sval,
		size_t sval_len);

/* qfx_scan: queue_scan of [from, until] into a fresh collector, asserted to return 0. */
struct qfx_seen qfx_scan(struct qfx *f, uint64_t from, uint64_t until);

/* An expected scan entry: message n, due, group, value. */
struct qfx_want {
	uint64_t n, due;
	unsigned dest;
	const char *sval;
};

/* qfx_assert_scan: the scan of [from, until] is exactly w[0..nw), in that order. */
void qfx_assert_scan(struct qfx *f, uint64_t from, uint64_t until, const struct qfx_want *w,
		     size_t nw);

/* Each table entry runs once per backend, named "<backend>/<test>". */
#define QFX_BOTH(t)                                                                                \
	{"memory/" #t, t, qfx_setup, qfx_teardown, &qfx_memory},                                   \
	{                                                                                          \
		"rocksdb/" #t, t, qfx_setup, qfx_teardown, &qfx_rocksdb                            \
	}
#define QFX_ROCKS(t)                                                                               \
	{                                                                                          \
		"rocksdb/" #t, t, qfx_setup, qfx_teardown, &qfx_rocksdb                            \
	}
#define QFX_MEMFAIL(t)                                                                             \
	{                                                                                          \
		"memory-fail/" #t, t, qfx_setup, qfx_teardown, &qfx_memfail                        \
	}

#endif
