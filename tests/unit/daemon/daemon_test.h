/* daemon_test.h — helpers shared by the daemon unit tests: an in-memory queue and one-line
 * put / update / delete of a message with a real encoded envelope.
 *
 * Why: the runner and commit tests need queue contents that look exactly like the daemon's own
 * writes (encoded envelope in meta, attempt count as the 4-byte big-endian sched value), so the
 * helpers write them the same way commit.c does instead of each test hand-rolling bytes.
 */
#ifndef RIPTIDE_TEST_DAEMON_H
#define RIPTIDE_TEST_DAEMON_H

#include "queue/queue.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The sched value the daemon writes: attempts, 4 bytes big-endian. */
static inline void dt_sval(uint32_t attempts, uint8_t out[4])
{
	out[0] = (uint8_t)(attempts >> 24);
	out[1] = (uint8_t)(attempts >> 16);
	out[2] = (uint8_t)(attempts >> 8);
	out[3] = (uint8_t)attempts;
}

static inline struct queue *dt_queue_open(void)
{
	struct queue_opts o = {.backend = QUEUE_BACKEND_MEMORY};
	struct queue *q = NULL;
	char err[256];

	if (queue_open(&o, &q, err, sizeof(err)) < 0) {
		fprintf(stderr, "queue_open: %s\n", err);
		return NULL;
	}
	return q;
}

/* Encode a one-recipient envelope with the given attempt count; *len gets its size. */
static inline uint8_t *dt_env_encode(uint32_t attempts, size_t body_len, size_t *len)
{
	struct queue_rcpt rcpt = {.addr = "rcpt@example.org", .last_reply = ""};
	struct queue_env env = {.sender = "sender@example.com",
				.created_ms = 1700000000000ull,
				.body_len = body_len,
				.attempts = attempts,
				.nrcpt = 1,
				.rcpts = &rcpt};
	size_t cap = queue_env_encoded_len(&env);
	uint8_t *buf = malloc(cap);
	ssize_t n = buf ? queue_env_encode(&env, buf, cap) : -1;

	if (n < 0) {
		free(buf);
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

/* Write one batch holding a put (body_len bytes of 'x') or an update of id; 0 or < 0. */
static inline int dt_write(struct queue *q, const struct queue_id *id, bool update,
			   uint64_t old_due, uint64_t due, uint32_t attempts, size_t body_len)
{
	struct queue_batch *b = queue_batch_new();
	size_t mlen = 0;
	uint8_t *meta = dt_env_encode(attempts, body_len, &mlen);
	char *body = malloc(body_len + 1);
	uint8_t sval[4];
	char err[256];
	int ret = -1;

	dt_sval(attempts, sval);
	if (b && meta && body) {
		memset(body, 'x', body_len);
		if (update)
			queue_batch_update(b, id, meta, mlen, old_due, due, sval, sizeof(sval));
		else
			queue_batch_put(b, id, meta, mlen, body, body_len, due, sval, sizeof(sval));
		ret = queue_write(q, b, false, err, sizeof(err));
	}
	free(body);
	free(meta);
	queue_batch_free(b);
	return ret;
}

static inline int dt_put(struct queue *q, const struct queue_id *id, uint64_t due,
			 uint32_t attempts, size_t body_len)
{
	return dt_write(q, id, false, 0, due, attempts, body_len);
}

static inline int dt_update(struct queue *q, const struct queue_id *id, uint64_t old_due,
			    uint64_t due, uint32_t attempts)
{
	return dt_write(q, id, true, old_due, due, attempts, 0);
}

static inline int dt_delete(struct queue *q, const struct queue_id *id, uint64_t due)
{
	struct queue_batch *b = queue_batch_new();
	char err[256];
	int ret = -1;

	if (b) {
		queue_batch_delete(b, id, due);
		ret = queue_write(q, b, false, err, sizeof(err));
	}
	queue_batch_free(b);
	return ret;
}

#endif
