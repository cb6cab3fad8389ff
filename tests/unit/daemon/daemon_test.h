/* daemon_test.h — helpers shared by the daemon unit tests: an in-memory queue, envelopes with
 * destination groups, messages written exactly as the daemon writes them, and a dump of the
 * sched column family.
 *
 * Why: the runner, commit and round tests need queue contents that look exactly like the
 * daemon's own writes (encoded envelope in meta, one sched entry per destination group whose
 * value is the group's attempts, 4 bytes big-endian, + its name). So the helpers build a real
 * struct msg (msg_new) and let msg.c's own fill functions (msg_fill_put / msg_fill_final) fill
 * the batch instead of each test hand-rolling bytes. Tests using this header compile msg.c in.
 */
#ifndef RIPTIDE_TEST_DAEMON_H
#define RIPTIDE_TEST_DAEMON_H

#include "engine/daemon/msg.h"
#include "queue/queue.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DT_MAX_RCPTS 16
#define DT_MAX_DESTS 8
#define DT_CREATED   1700000000000ull

/* An envelope and the storage it points to. Recipient i is "r<i>@d<g>.example" in group
 * g = i % ndest; group g is named "d<g>.example". */
struct dt_env {
	struct queue_env env;
	struct queue_rcpt rcpts[DT_MAX_RCPTS];
	struct queue_dest dests[DT_MAX_DESTS];
	char addr[DT_MAX_RCPTS][32];
	char name[DT_MAX_DESTS][32];
};

/* Fill e: nrcpt recipients spread over ndest groups, group g due at dues[g]. */
static inline void dt_env_init(struct dt_env *e, unsigned nrcpt, unsigned ndest,
			       const uint64_t *dues)
{
	memset(e, 0, sizeof(*e));
	for (unsigned g = 0; g < ndest && g < DT_MAX_DESTS; g++) {
		snprintf(e->name[g], sizeof(e->name[g]), "d%u.example", g);
		e->dests[g] = (struct queue_dest){.name = e->name[g], .due = dues[g]};
	}
	for (unsigned i = 0; i < nrcpt && i < DT_MAX_RCPTS; i++) {
		snprintf(e->addr[i], sizeof(e->addr[i]), "r%u@d%u.example", i, i % ndest);
		e->rcpts[i] = (struct queue_rcpt){
		    .addr = e->addr[i], .dest = (uint16_t)(i % ndest), .last_reply = ""};
	}
	e->env = (struct queue_env){.sender = "sender@example.com",
				    .created_ms = DT_CREATED,
				    .nrcpt = nrcpt,
				    .rcpts = e->rcpts,
				    .ndest = ndest,
				    .dests = e->dests};
}

/* A message (id from seq) with nrcpt recipients in ndest groups due at dues[g], and a body of
 * body_len bytes of 'x'. NULL if msg_new refuses the envelope. */
static inline struct msg *dt_msg_new(uint64_t seq, unsigned nrcpt, unsigned ndest,
				     const uint64_t *dues, size_t body_len)
{
	struct dt_env e;
	struct queue_id id;
	char *body = malloc(body_len + 1);
	struct msg *m;

	if (!body)
		return NULL;
	memset(body, 'x', body_len);
	body[body_len] = '\0';
	dt_env_init(&e, nrcpt, ndest, dues);
	e.env.body_len = body_len;
	queue_id_make(&id, DT_CREATED, 1, seq);
	m = msg_new(&id, &e.env, body, body_len);
	if (!m)
		free(body);
	return m;
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

/* Write what fill adds for m in one batch (not synced). Returns 0 or < 0. */
static inline int dt_write_fill(struct queue *q, struct msg *m,
				void (*fill)(struct commit_req *, struct queue_batch *))
{
	struct queue_batch *b = queue_batch_new();
	char err[256];
	int ret = -1;

	if (b) {
		fill(&m->req, b);
		ret = queue_write(q, b, false, err, sizeof(err));
	}
	queue_batch_free(b);
	return ret;
}

/* Store a new message as the daemon does at acceptance (msg_fill_put); the message itself is
 * freed again. Returns 0 or < 0. */
static inline int dt_put(struct queue *q, uint64_t seq, unsigned nrcpt, unsigned ndest,
			 const uint64_t *dues, size_t body_len)
{
	struct msg *m = dt_msg_new(seq, nrcpt, ndest, dues, body_len);
	int ret = m ? dt_write_fill(q, m, msg_fill_put) : -1;

	msg_free(m);
	return ret;
}

/* The sched value the daemon writes for a group: attempts (4 B BE) + name; returns its length. */
/* A sched value in the format before #5 (4-byte attempts + name: still read). */
static inline size_t dt_sval(uint32_t attempts, const char *name, uint8_t *out)
{
	size_t n = strlen(name);

	out[0] = (uint8_t)(attempts >> 24);
	out[1] = (uint8_t)(attempts >> 16);
	out[2] = (uint8_t)(attempts >> 8);
	out[3] = (uint8_t)attempts;
	memcpy(out + 4, name, n);
	return n + 4;
}

/* Whether a sched value written now (msg_sval_make's format, not dt_sval's older one) names
 * `name` with `attempts`. */
static inline bool dt_sval_is(const void *sval, size_t len, uint32_t attempts, const char *name)
{
	char buf[300];
	struct msg_sval v;

	msg_sval_parse(sval, len, &v, buf, sizeof(buf));
	return !v.old && v.attempts == attempts && strcmp(v.name, name) == 0;
}

/* One sched entry as queue_scan reported it. */
struct dt_ent {
	uint64_t due;
	struct queue_id id;
	unsigned group;
	uint8_t sval[64];
	size_t sval_len;
};

struct dt_dump {
	struct dt_ent e[64];
	unsigned n;
	bool overflow;
};

static inline int dt_dump_cb(void *arg, uint64_t due, const struct queue_id *id, unsigned group,
			     const void *sval, size_t sval_len)
{
	struct dt_dump *d = arg;

	if (d->n == 64 || sval_len > sizeof(d->e[0].sval)) {
		d->overflow = true;
		return 1;
	}
	d->e[d->n] = (struct dt_ent){.due = due, .id = *id, .group = group, .sval_len = sval_len};
	memcpy(d->e[d->n].sval, sval, sval_len);
	d->n++;
	return 0;
}

/* Every sched entry of q, in key order, into d. Returns queue_scan's result. */
static inline int dt_dump_sched(struct queue *q, struct dt_dump *d)
{
	memset(d, 0, sizeof(*d));
	return queue_scan(q, 0, UINT64_MAX, dt_dump_cb, d);
}

/* The entries of d that belong to id: how many, and the index of the one of group g in *at
 * (-1 if none). */
static inline unsigned dt_dump_find(const struct dt_dump *d, const struct queue_id *id, unsigned g,
				    int *at)
{
	unsigned n = 0;

	*at = -1;
	for (unsigned i = 0; i < d->n; i++) {
		if (memcmp(d->e[i].id.b, id->b, QUEUE_ID_LEN) != 0)
			continue;
		n++;
		if (d->e[i].group == g)
			*at = (int)i;
	}
	return n;
}

/* A fixed retry schedule: every deferred round waits retry_ms, no expiry, no jitter. */
static inline const struct msg_sched *dt_sched(uint64_t retry_ms)
{
	static __thread struct msg_sched s;

	s = (struct msg_sched){.retry_ms = retry_ms, .backoff = 1, .max_ms = retry_ms};
	return &s;
}

#endif
