/* msg — in-RAM message lifecycle (see msg.h). */
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

static struct msg *msg_alloc(const struct queue_id *id, uint64_t due)
{
	struct msg *m = util_xcalloc(1, sizeof(*m));

	m->id = *id;
	queue_id_format(id, m->idstr);
	m->due = due;
	m->accepted_us = util_wall_ms() * 1000;
	return m;
}

struct msg *msg_new(const struct queue_id *id, const struct queue_env *env, char *body,
		    size_t body_len, uint64_t due)
{
	struct msg *m = msg_alloc(id, due);

	if (msg_encode(m, env) < 0 || queue_env_decode(m->meta, m->meta_len, &m->env) < 0) {
		free(m->meta);
		free(m);
		return NULL;
	}
	m->replies = util_xcalloc(env->nrcpt ? env->nrcpt : 1, sizeof(char *));
	m->body = body;
	m->body_len = body_len;
	return m;
}

struct msg *msg_from_disk(const struct queue_id *id, uint64_t due, const void *meta,
			  size_t meta_len, void *body, size_t body_len, int *err)
{
	struct msg *m = msg_alloc(id, due);

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
	m->replies = util_xcalloc(m->env->nrcpt ? m->env->nrcpt : 1, sizeof(char *));
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
	r->attempts++;
	r->last_code = (uint16_t)code;
	free(m->replies[i]);
	m->replies[i] = util_xstrndup(reply ? reply : "", reply ? reply_len : 0);
	r->last_reply = m->replies[i];
}

int msg_reencode(struct msg *m)
{
	return msg_encode(m, m->env);
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
	queue_env_free(m->env);
	free(m->meta);
	free(m->body);
	free(m);
}
