/* msg — in-RAM message lifecycle on its home shard (see msg.h). */
#include "engine/daemon/msg.h"
#include "engine/util/util.h"

#include <errno.h>
#include <string.h>

static int msg_encode(struct msg *m, const struct queue_env *env)
{
	size_t len = queue_env_encoded_len(env);
	uint8_t *buf = util_xmalloc(len);
	ssize_t n = queue_env_encode(env, buf, len);

	if (n < 0) {
		free(buf);
		return (int)n;
	}
	free(m->meta);
	m->meta = buf;
	m->meta_len = (size_t)n;
	return 0;
}

static struct msg *msg_alloc(const struct queue_id *id)
{
	struct msg *m = util_xcalloc(1, sizeof(*m));

	m->id = *id;
	queue_id_format(id, m->idstr);
	m->accepted_us = util_wall_ms() * 1000;
	return m;
}

/* The per-rcpt and per-group arrays, once m->env is decoded. */
static void msg_arrays(struct msg *m)
{
	m->replies = util_xcalloc(m->env->nrcpt ? m->env->nrcpt : 1, sizeof(char *));
	m->groups = util_xcalloc(m->env->ndest ? m->env->ndest : 1, sizeof(*m->groups));
	for (uint32_t g = 0; g < m->env->ndest; g++)
		m->groups[g].disk_due = m->env->dests[g].due;
}

struct msg *msg_new(const struct queue_id *id, const struct queue_env *env, char *body,
		    size_t body_len)
{
	struct msg *m = msg_alloc(id);

	if (msg_encode(m, env) < 0 || queue_env_decode(m->meta, m->meta_len, &m->env) < 0) {
		free(m->meta);
		free(m);
		return NULL;
	}
	msg_arrays(m);
	m->body = body;
	m->body_len = body_len;
	return m;
}

struct msg *msg_from_disk(const struct queue_id *id, const void *meta, size_t meta_len, void *body,
			  size_t body_len, int *err)
{
	struct msg *m = msg_alloc(id);

	*err = queue_env_decode(meta, meta_len, &m->env);
	if (*err < 0) {
		free(body);
		free(m);
		return NULL;
	}
	m->meta = util_xmalloc(meta_len);
	memcpy(m->meta, meta, meta_len);
	m->meta_len = meta_len;
	m->accepted_us = m->env->created_ms * 1000; /* log delay= counts from acceptance */
	msg_arrays(m);
	m->body = body;
	m->body_len = body_len;
	return m;
}

void msg_set_result(struct msg *m, unsigned i, enum queue_rcpt_state st, int code,
		    const char *reply, size_t reply_len)
{
	struct queue_rcpt *r = &m->env->rcpts[i];

	BUG_ON(i >= m->env->nrcpt);
	r->state = (uint8_t)st;
	if (r->attempts < UINT16_MAX)
		r->attempts++;
	r->last_code = (uint16_t)code;
	free(m->replies[i]);
	m->replies[i] = util_xstrndup(reply ? reply : "", reply ? reply_len : 0);
	r->last_reply = m->replies[i];
	m->groups[r->dest].decided = true;
}

unsigned msg_group_rcpts(const struct msg *m, unsigned g, unsigned *idx)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < m->env->nrcpt; i++)
		if (m->env->rcpts[i].dest == g && m->env->rcpts[i].state == QUEUE_RCPT_PENDING)
			idx[n++] = i;
	return n;
}

/* Pending recipients per group into pend (ndest entries). */
static void msg_count_pending(const struct msg *m, unsigned *pend)
{
	for (uint32_t i = 0; i < m->env->nrcpt; i++)
		pend[m->env->rcpts[i].dest] += m->env->rcpts[i].state == QUEUE_RCPT_PENDING;
}

enum msg_plan msg_plan(struct msg *m, uint64_t now, uint64_t retry_ms)
{
	unsigned *pend = util_xcalloc(m->env->ndest ? m->env->ndest : 1, sizeof(*pend));
	bool changed = false;

	msg_count_pending(m, pend);
	for (uint32_t g = 0; g < m->env->ndest; g++) {
		struct queue_dest *d = &m->env->dests[g];
		if (!m->groups[g].out || (!m->groups[g].decided && pend[g]))
			continue;
		changed = true;
		d->due = pend[g] ? now + retry_ms : 0;
		if (pend[g] && d->attempts < UINT32_MAX)
			d->attempts++;
	}
	free(pend);
	for (uint32_t g = 0; g < m->env->ndest; g++)
		m->groups[g].out = m->groups[g].decided = false;
	m->delete = msg_pending(m) == 0;
	if (m->delete)
		return MSG_PLAN_DELETE;
	if (!changed)
		return MSG_PLAN_NONE;
	if (msg_encode(m, m->env) == 0)
		return MSG_PLAN_UPDATE;
	/* cannot happen for an envelope that encoded before; keep the queue as it was */
	for (uint32_t g = 0; g < m->env->ndest; g++)
		m->env->dests[g].due = m->groups[g].disk_due;
	return MSG_PLAN_NONE;
}

/* The sched value of group g: 4-byte attempts (big-endian) + the destination name. */
static size_t msg_sval(const struct msg *m, unsigned g, uint8_t *buf, size_t cap)
{
	const struct queue_dest *d = &m->env->dests[g];
	size_t n = strlen(d->name);

	if (n > cap - 4)
		n = cap - 4;
	buf[0] = (uint8_t)(d->attempts >> 24);
	buf[1] = (uint8_t)(d->attempts >> 16);
	buf[2] = (uint8_t)(d->attempts >> 8);
	buf[3] = (uint8_t)d->attempts;
	memcpy(buf + 4, d->name, n);
	return n + 4;
}

void msg_fill_put(struct commit_req *r, struct queue_batch *b)
{
	struct msg *m = container_of(r, struct msg, req);
	uint8_t sval[4 + 256];

	queue_batch_put(b, &m->id, m->meta, m->meta_len, m->body, m->body_len);
	for (uint32_t g = 0; g < m->env->ndest; g++)
		if (m->env->dests[g].due)
			queue_batch_sched_put(b, m->env->dests[g].due, &m->id, g, sval,
					      msg_sval(m, g, sval, sizeof(sval)));
}

void msg_fill_final(struct commit_req *r, struct queue_batch *b)
{
	struct msg *m = container_of(r, struct msg, req);
	uint8_t sval[4 + 256];

	if (m->delete)
		queue_batch_delete(b, &m->id);
	else
		queue_batch_meta(b, &m->id, m->meta, m->meta_len);
	for (uint32_t g = 0; g < m->env->ndest; g++) {
		uint64_t old = m->groups[g].disk_due, due = m->delete ? 0 : m->env->dests[g].due;
		if (old == due)
			continue;
		if (old)
			queue_batch_sched_del(b, old, &m->id, g);
		if (due)
			queue_batch_sched_put(b, due, &m->id, g, sval,
					      msg_sval(m, g, sval, sizeof(sval)));
	}
}

uint64_t msg_next_due(const struct msg *m)
{
	uint64_t min = 0;

	for (uint32_t g = 0; g < m->env->ndest; g++) {
		uint64_t d = m->env->dests[g].due;
		if (d && (min == 0 || d < min))
			min = d;
	}
	return min;
}

unsigned msg_pending(const struct msg *m)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < m->env->nrcpt; i++)
		n += m->env->rcpts[i].state == QUEUE_RCPT_PENDING;
	return n;
}

void msg_free(struct msg *m)
{
	if (!m)
		return;
	if (m->env && m->replies)
		for (uint32_t i = 0; i < m->env->nrcpt; i++)
			free(m->replies[i]);
	free(m->replies);
	free(m->groups);
	queue_env_free(m->env);
	free(m->meta);
	free(m->body);
	free(m);
}
