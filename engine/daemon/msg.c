/* msg — in-RAM message lifecycle on its home shard (see msg.h). */
#include "engine/daemon/msg.h"
#include "engine/daemon/qstat.h"
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

static unsigned msg_primary(const struct msg *m, bool on_disk);

/* Pending recipients of group g now. */
static uint32_t msg_group_pending(const struct msg *m, unsigned g)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < m->env->nrcpt; i++)
		n += m->env->rcpts[i].dest == g && m->env->rcpts[i].state == QUEUE_RCPT_PENDING;
	return n;
}

/* What the entries on disk count, from the envelope as it is on disk. */
static void msg_disk_counts(struct msg *m)
{
	unsigned prim = msg_primary(m, true);

	for (uint32_t g = 0; g < m->env->ndest; g++) {
		m->groups[g].disk_pending = msg_group_pending(m, g);
		m->groups[g].disk_primary = g == prim;
	}
}

/* The per-rcpt and per-group arrays, once m->env is decoded. */
static void msg_arrays(struct msg *m)
{
	m->replies = util_xcalloc(m->env->nrcpt ? m->env->nrcpt : 1, sizeof(char *));
	m->mtas = util_xcalloc(m->env->nrcpt ? m->env->nrcpt : 1, sizeof(char *));
	m->fresh = util_xcalloc(m->env->nrcpt ? m->env->nrcpt : 1, 1);
	m->groups = util_xcalloc(m->env->ndest ? m->env->ndest : 1, sizeof(*m->groups));
	for (uint32_t g = 0; g < m->env->ndest; g++)
		m->groups[g].disk_due = m->env->dests[g].due;
	msg_disk_counts(m);
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

/* Keep a copy of s in *slot (freed with the message) and return it. */
static char *msg_keep(char **slot, const char *s, size_t len)
{
	free(*slot);
	*slot = util_xstrndup(s ? s : "", s ? len : 0);
	return *slot;
}

void msg_record(struct msg *m, unsigned i, const struct msg_outcome *o)
{
	struct queue_rcpt *r = &m->env->rcpts[i];

	BUG_ON(i >= m->env->nrcpt);
	r->state = o->state;
	if (o->tried && r->attempts < UINT16_MAX)
		r->attempts++;
	r->last_code = (uint16_t)o->code;
	memcpy(r->enh, o->enh, 3);
	r->last_ms = o->at_ms;
	r->last_reply = msg_keep(&m->replies[i], o->reply, o->reply_len);
	r->last_mta = msg_keep(&m->mtas[i], o->mta, o->mta ? strlen(o->mta) : 0);
	if (o->state == QUEUE_RCPT_FAILED)
		m->fresh[i] = MSG_FRESH_FAILED;
	else if (o->state == QUEUE_RCPT_DELIVERED && (r->notify & QUEUE_NOTIFY_SUCCESS))
		m->fresh[i] = o->peer_dsn ? 0 : MSG_FRESH_RELAYED;
	m->groups[r->dest].decided = true;
}

void msg_set_result(struct msg *m, unsigned i, enum queue_rcpt_state st, int code,
		    const char *reply, size_t reply_len)
{
	struct msg_outcome o = {.state = (uint8_t)st,
				.code = code,
				.reply = reply,
				.reply_len = reply_len,
				.tried = true,
				.at_ms = util_wall_ms()};

	msg_record(m, i, &o);
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

/* The schedule of destination dest: base's own (of_dest) into *own, or base. */
static const struct msg_sched *msg_sched_of(const struct msg_sched *base, const char *dest,
					    struct msg_sched *own)
{
	if (!base->of_dest)
		return base;
	*own = *base;
	base->of_dest(base->of_dest_arg, dest, own);
	return own;
}

uint64_t msg_retry_delay(const struct msg_sched *s, uint32_t rounds, uint64_t *rng)
{
	double d = (double)s->retry_ms, cap = (double)s->max_ms;
	uint64_t x;

	for (uint32_t i = 1; i < rounds && d < cap; i++)
		d *= s->backoff;
	if (d > cap && cap >= (double)s->retry_ms)
		d = cap;
	if (rng) { /* +-5 %: the retries of one destination do not come back as a herd */
		x = *rng;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		*rng = x;
		d *= 0.95 + 0.1 * (double)(x >> 11) / (double)(1ull << 53);
	}
	return d < 1 ? 1 : (uint64_t)d;
}

/* The next due of group g, deferred again now: never later than the end of the lifetime (a
 * last attempt then, and the recipients fail if it defers too). */
static uint64_t msg_group_due(const struct msg *m, unsigned g, uint64_t now,
			      const struct msg_sched *base)
{
	struct msg_sched own;
	const struct msg_sched *s = msg_sched_of(base, m->env->dests[g].name, &own);
	uint64_t due = m->groups[g].retry_at > now
			   ? m->groups[g].retry_at
			   : now + msg_retry_delay(s, m->env->dests[g].attempts, s->rng);
	uint64_t end = m->env->created_ms + s->lifetime_ms;

	return s->lifetime_ms && end > now && end < due ? end : due;
}

enum msg_plan msg_plan(struct msg *m, uint64_t now, const struct msg_sched *s)
{
	unsigned *pend = util_xcalloc(m->env->ndest ? m->env->ndest : 1, sizeof(*pend));
	bool changed = m->dirty;

	msg_count_pending(m, pend);
	for (uint32_t g = 0; g < m->env->ndest; g++) {
		struct queue_dest *d = &m->env->dests[g];
		if (!m->groups[g].out || (!m->groups[g].decided && pend[g]))
			continue;
		changed = true;
		if (pend[g] && d->attempts < UINT32_MAX)
			d->attempts++;
		d->due = pend[g] ? msg_group_due(m, g, now, s) : 0;
	}
	free(pend);
	for (uint32_t g = 0; g < m->env->ndest; g++) {
		m->groups[g].out = m->groups[g].decided = false;
		m->groups[g].retry_at = 0;
	}
	m->dirty = false;
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

void msg_local_reason(struct msg *m, unsigned i, const char *reason)
{
	struct queue_rcpt *r = &m->env->rcpts[i];
	size_t n = strlen(reason) + strlen(r->last_reply) + 32;
	char *text = util_xmalloc(n);

	if (r->last_code)
		snprintf(text, n, "%s; last reply: %u %s", reason, (unsigned)r->last_code,
			 r->last_reply);
	else if (r->last_reply[0])
		snprintf(text, n, "%s; last error: %s", reason, r->last_reply);
	else
		snprintf(text, n, "%s", reason);
	free(m->replies[i]);
	m->replies[i] = text;
	r->last_reply = text;
	r->last_code = 0; /* riptide's decision, not a remote reply */
}

/* Why recipient r of m must fail now instead of being retried (NULL: it may be retried). */
static const char *msg_expiry(const struct msg *m, const struct queue_rcpt *r, uint64_t now,
			      const struct msg_sched *s, char *buf, size_t len)
{
	if (s->lifetime_ms && now >= m->env->created_ms + s->lifetime_ms) {
		snprintf(buf, len,
			 "expired: delivery time expired, queued longer than the lifetime (%llu s)",
			 (unsigned long long)(s->lifetime_ms / 1000));
		return buf;
	}
	if (s->max_attempts && r->attempts >= s->max_attempts) {
		snprintf(buf, len,
			 "expired: unable to deliver message after multiple retries (%u attempts, "
			 "max_attempts)",
			 (unsigned)r->attempts);
		return buf;
	}
	return NULL;
}

unsigned msg_expire(struct msg *m, uint64_t now, const struct msg_sched *s, msg_expired_fn fn,
		    void *arg)
{
	unsigned n = 0;
	char why[128];

	for (uint32_t i = 0; i < m->env->nrcpt; i++) {
		struct queue_rcpt *r = &m->env->rcpts[i];
		const char *reason;
		struct msg_sched own;
		if (r->state != QUEUE_RCPT_PENDING || !m->groups[r->dest].decided ||
		    !(reason =
			  msg_expiry(m, r, now, msg_sched_of(s, m->env->dests[r->dest].name, &own),
				     why, sizeof(why))))
			continue;
		r->state = QUEUE_RCPT_FAILED;
		r->enh[0] = 5, r->enh[1] = 4, r->enh[2] = 7; /* RFC 3463: delivery time expired */
		r->last_ms = now;
		m->fresh[i] = MSG_FRESH_FAILED;
		fn(arg, m, i, reason);
		msg_local_reason(m, i, reason);
		n++;
	}
	return n;
}

unsigned msg_warn(struct msg *m, uint64_t now, uint64_t warn_after_ms)
{
	unsigned n = 0;

	if (!warn_after_ms || (m->env->flags & QUEUE_ENV_WARNED) ||
	    now < m->env->created_ms + warn_after_ms)
		return 0;
	for (uint32_t i = 0; i < m->env->nrcpt; i++) {
		const struct queue_rcpt *r = &m->env->rcpts[i];
		if (r->state != QUEUE_RCPT_PENDING || !m->groups[r->dest].decided ||
		    (r->notify && !(r->notify & QUEUE_NOTIFY_DELAY)))
			continue;
		m->fresh[i] = MSG_FRESH_DELAYED;
		n++;
	}
	if (n) {
		m->env->flags |= QUEUE_ENV_WARNED; /* written with the round's update */
		m->dirty = true;
	}
	return n;
}

#define SVAL_V2	  0xa2
#define SVAL_HEAD (1 + 4 + 8 + 8 + 4 + 1)

size_t msg_sval_make(const struct msg_sval *v, uint8_t *buf, size_t cap)
{
	size_t n = strlen(v->name);

	BUG_ON(cap <= SVAL_HEAD);
	if (n > cap - SVAL_HEAD)
		n = cap - SVAL_HEAD;
	buf[0] = SVAL_V2;
	util_be32_put(buf + 1, v->attempts);
	util_be64_put(buf + 5, v->created_ms);
	util_be64_put(buf + 13, v->bytes);
	util_be32_put(buf + 21, v->pending);
	buf[25] = v->primary;
	memcpy(buf + SVAL_HEAD, v->name, n);
	return n + SVAL_HEAD;
}

void msg_sval_parse(const void *p, size_t len, struct msg_sval *v, char *name, size_t namecap)
{
	const uint8_t *b = p;
	size_t off = 4, n;

	memset(v, 0, sizeof(*v));
	if (len >= SVAL_HEAD && b[0] == SVAL_V2) {
		v->attempts = util_be32_get(b + 1);
		v->created_ms = util_be64_get(b + 5);
		v->bytes = util_be64_get(b + 13);
		v->pending = util_be32_get(b + 21);
		v->primary = b[25] != 0;
		off = SVAL_HEAD;
	} else if (len >= 4) { /* before #5: 4-byte attempts + name */
		v->attempts = util_be32_get(b);
		v->old = true;
	}
	n = len > off ? len - off : 0;
	if (n >= namecap)
		n = namecap - 1;
	memcpy(name, b + (len > off ? off : len), n);
	name[n] = '\0';
	v->name = name;
}

/* The lowest group with a sched entry after this write (the one that counts the message in
 * the queue counters rebuilt from sched at start-up), ndest if none. */
static unsigned msg_primary(const struct msg *m, bool on_disk)
{
	for (uint32_t g = 0; g < m->env->ndest; g++)
		if (on_disk ? m->groups[g].disk_due != 0 : m->env->dests[g].due != 0)
			return g;
	return m->env->ndest;
}

/* The sched value of group g. */
static size_t msg_sval(const struct msg *m, unsigned g, uint8_t *buf, size_t cap)
{
	struct msg_sval v = {.name = m->env->dests[g].name,
			     .attempts = m->env->dests[g].attempts,
			     .created_ms = m->env->created_ms,
			     .bytes = m->env->body_len,
			     .pending = msg_group_pending(m, g),
			     .primary = g == msg_primary(m, false)};

	return msg_sval_make(&v, buf, cap);
}

void msg_fill_put(struct commit_req *r, struct queue_batch *b)
{
	struct msg *m = container_of(r, struct msg, req);
	uint8_t sval[MSG_SVAL_MAX];

	queue_batch_put(b, &m->id, m->meta, m->meta_len, m->body, m->body_len);
	for (uint32_t g = 0; g < m->env->ndest; g++)
		if (m->env->dests[g].due)
			queue_batch_sched_put(b, m->env->dests[g].due, &m->id, g, sval,
					      msg_sval(m, g, sval, sizeof(sval)));
}

void msg_fill_final(struct commit_req *r, struct queue_batch *b)
{
	struct msg *m = container_of(r, struct msg, req);
	uint8_t sval[MSG_SVAL_MAX];
	unsigned prim = msg_primary(m, false);

	if (m->delete)
		queue_batch_delete(b, &m->id);
	else
		queue_batch_meta(b, &m->id, m->meta, m->meta_len);
	for (uint32_t g = 0; g < m->env->ndest; g++) {
		uint64_t old = m->groups[g].disk_due, due = m->delete ? 0 : m->env->dests[g].due;
		/* an entry that becomes primary is rewritten even if its due is unchanged */
		if (old == due && !(due && g == prim && prim != msg_primary(m, true)))
			continue;
		if (old == due) {
			queue_batch_sched_put(b, due, &m->id, g, sval,
					      msg_sval(m, g, sval, sizeof(sval)));
			continue;
		}
		if (old)
			queue_batch_sched_del(b, old, &m->id, g);
		if (due)
			queue_batch_sched_put(b, due, &m->id, g, sval,
					      msg_sval(m, g, sval, sizeof(sval)));
	}
}

/* Group g's entry as counted: on disk (old) or as just written. */
static struct qstat_entry msg_entry(const struct msg *m, unsigned g, bool old, unsigned prim)
{
	const struct msg_group *gr = &m->groups[g];

	return (struct qstat_entry){
	    .dest = m->env->dests[g].name,
	    .pending = old ? gr->disk_pending : msg_group_pending(m, g),
	    .bytes = m->env->body_len,
	    .created_ms = m->env->created_ms,
	    .due_ms = old ? gr->disk_due : m->env->dests[g].due,
	    .primary = old ? gr->disk_primary : g == prim,
	};
}

void msg_count_written(struct msg *m, struct qstat *qs)
{
	unsigned prim = m->delete ? m->env->ndest : msg_primary(m, false);

	for (uint32_t g = 0; g < m->env->ndest; g++) {
		struct qstat_entry o = msg_entry(m, g, true, prim),
				   n = msg_entry(m, g, false, prim);
		if (m->delete)
			n.due_ms = 0;
		if (o.due_ms == n.due_ms && o.pending == n.pending && o.primary == n.primary)
			continue;
		if (o.due_ms)
			qstat_entry(qs, &o, -1);
		if (n.due_ms)
			qstat_entry(qs, &n, +1);
		m->groups[g].disk_due = n.due_ms;
		m->groups[g].disk_pending = n.pending;
		m->groups[g].disk_primary = n.primary;
	}
	for (unsigned k = 0; k < m->notice_nents; k++) {
		struct qstat_entry e = m->notice_ents[k].e;
		e.dest = m->notice_ents[k].name; /* (the array may have moved since it was made) */
		qstat_entry(qs, &e, +1);
	}
	m->notice_nents = 0;
}

void msg_written_put_cb(struct commit_req *r, void *arg)
{
	struct msg *m = container_of(r, struct msg, req);

	for (uint32_t g = 0; arg && g < m->env->ndest; g++) {
		struct qstat_entry e = msg_entry(m, g, true, 0);
		if (e.due_ms)
			qstat_entry(arg, &e, +1);
	}
}

void msg_written_cb(struct commit_req *r, void *arg)
{
	if (arg)
		msg_count_written(container_of(r, struct msg, req), arg);
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
			free(m->replies[i]), free(m->mtas[i]);
	free(m->replies);
	free(m->mtas);
	free(m->fresh);
	for (unsigned k = 0; k < MSG_NOTICES; k++)
		free(m->notices[k]);
	free(m->notice_ents);
	free(m->groups);
	queue_env_free(m->env);
	free(m->meta);
	free(m->body);
	free(m);
}
