/* queue_types — types shared by the files of queue/ (not a public header).
 *
 * Why: queue.c owns the public API, ids and batches; each backend (queue_rocksdb.c, queue_mem.c)
 * only has to apply a batch, read a message and walk the schedule. They meet here: the batch
 * layout the backends read and the ops table queue.c dispatches through (the OpenSMTPD
 * queue_backend idea). Key helpers live here too so both backends build identical keys.
 */
#ifndef RIPTIDE_QUEUE_TYPES_H
#define RIPTIDE_QUEUE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "queue/queue.h"

/* QUEUE_BUG_ON(cond): an invariant of this module; on violation name the function and abort.
 * (A local copy of the engine's BUG_ON idea: queue/ never includes engine/ headers.) */
#define QUEUE_BUG_ON(cond)                                                                         \
	do {                                                                                       \
		if (__builtin_expect(!!(cond), 0)) {                                               \
			fprintf(stderr, "BUG at %s (%s:%d): %s\n", __func__, __FILE__, __LINE__,   \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* sched key: due_ms (8 B BE) + id (16 B) + destination index (2 B BE). */
#define QUEUE_SCHED_KEY_LEN (8 + QUEUE_ID_LEN + 2)

enum queue_op_kind {
	QUEUE_OP_PUT = 1,	/* meta + body */
	QUEUE_OP_META = 2,	/* meta rewrite */
	QUEUE_OP_DELETE = 3,	/* meta + body removed */
	QUEUE_OP_SCHED_PUT = 4, /* sched (due_ms, id, dest) = sval */
	QUEUE_OP_SCHED_DEL = 5, /* sched (due_ms, id, dest) removed */
};

/* One batch operation. meta and sval are copied: their byte ranges are offsets into the batch
 * arena (which may move when it grows), resolved with queue_batch_at(). The body is referenced,
 * not copied (bodies are large; the backend's own write batch is the one copy). */
struct queue_op {
	enum queue_op_kind kind;
	struct queue_id id;
	uint64_t due_ms; /* SCHED_*: due time of the sched key */
	uint16_t dest;	 /* SCHED_*: destination index of the sched key */
	size_t meta_off, meta_len;
	const void *body; /* PUT: the caller's bytes, valid until the write returns */
	size_t body_len;
	size_t sval_off, sval_len;
};

struct queue_batch {
	struct queue_op *ops;
	size_t nops, ops_cap;
	uint8_t *arena;
	size_t arena_len, arena_cap;
	int err; /* -ENOMEM once an add failed; reported by queue_write */
};

/* queue_batch_at: pointer to arena offset off (never NULL, also for zero-length ranges). */
static inline const void *queue_batch_at(const struct queue_batch *b, size_t off)
{
	static const uint8_t empty[1];
	return b->arena ? (const void *)(b->arena + off) : (const void *)empty;
}

/* The backend ops table. state is the backend's own handle. Every function returns 0 or a
 * negative errno, with the same meaning as the public function of the same name. */
struct queue_backend_ops {
	const char *name;
	int (*open)(const struct queue_opts *opts, void **state, char *err, size_t errlen);
	void (*close)(void *state);
	int (*write)(void *state, const struct queue_batch *b, bool sync, char *err, size_t errlen);
	int (*get)(void *state, const struct queue_id *id, void **meta, size_t *meta_len,
		   void **body, size_t *body_len);
	int (*scan)(void *state, uint64_t from_ms, uint64_t until_ms, queue_scan_cb cb, void *arg);
	/* from NULL: from the first message. */
	int (*scan_meta)(void *state, const struct queue_id *from, queue_meta_cb cb, void *arg);
	int (*count)(void *state, uint64_t *out);
	/* A read view: snap_new returns NULL when out of memory; scan_snap scans sched in it. */
	void *(*snap_new)(void *state);
	void (*snap_free)(void *state, void *snap);
	int (*scan_snap)(void *state, const void *snap, uint64_t from_ms, uint64_t until_ms,
			 queue_scan_cb cb, void *arg);
	/* Optional: close and reopen the store after a failed write (NULL: nothing to do). */
	int (*recover)(void *state, char *err, size_t errlen);
};

extern const struct queue_backend_ops queue_rocksdb_ops;
extern const struct queue_backend_ops queue_mem_ops;

/* queue_be64_put / queue_be64_get: big-endian 64-bit integers (keys, envelope). */
static inline void queue_be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t queue_be64_get(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* queue_sched_key: build the sched key for (due_ms, id, dest) into out. */
static inline void queue_sched_key(uint8_t out[QUEUE_SCHED_KEY_LEN], uint64_t due_ms,
				   const struct queue_id *id, uint16_t dest)
{
	queue_be64_put(out, due_ms);
	for (int i = 0; i < QUEUE_ID_LEN; i++)
		out[8 + i] = id->b[i];
	out[8 + QUEUE_ID_LEN] = (uint8_t)(dest >> 8);
	out[9 + QUEUE_ID_LEN] = (uint8_t)dest;
}

/* queue_sched_key_split: the inverse of queue_sched_key. */
static inline void queue_sched_key_split(const uint8_t key[QUEUE_SCHED_KEY_LEN], uint64_t *due_ms,
					 struct queue_id *id, unsigned *dest)
{
	*due_ms = queue_be64_get(key);
	for (int i = 0; i < QUEUE_ID_LEN; i++)
		id->b[i] = key[8 + i];
	*dest = (unsigned)key[8 + QUEUE_ID_LEN] << 8 | key[9 + QUEUE_ID_LEN];
}

/* queue_errf: write a formatted message into err (errlen bytes) when err is non-NULL. */
void queue_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
