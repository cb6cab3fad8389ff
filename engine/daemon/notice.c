/* notice — failure notices, delay warnings and relayed reports (see notice.h). */
#include "engine/daemon/notice.h"
#include "engine/dsn/dsn.h"
#include "engine/route/route.h"
#include "engine/util/util.h"

#include <errno.h>
#include <string.h>

/* Notices are made on the commit thread: their ids carry the original's home shard and a
 * sequence with the top bit set, which no shard's own sequence ever reaches. */
#define NOTICE_SEQ_BASE (1ull << 47)

struct notice {
	struct notice_env env;
	struct dsn_templates *tpl;
	struct dlog_buf *log; /* the commit thread's (write(2): it may block) */
	uint64_t seq;
};

int notice_new(const struct notice_env *env, struct notice **out, char *err, size_t errlen)
{
	struct notice *n = util_xcalloc(1, sizeof(*n));
	int rc = dsn_templates_load(env->cfg->dsn_templates, &n->tpl, err, errlen);

	if (rc < 0) {
		free(n);
		return rc;
	}
	n->env = *env;
	n->log = env->log ? dlog_buf_new(env->log, NULL) : NULL;
	*out = n;
	return 0;
}

void notice_free(struct notice *n)
{
	if (!n)
		return;
	dsn_templates_free(n->tpl);
	if (n->log)
		dlog_buf_free(n->log);
	free(n);
}

bool notice_marked(const struct msg *m)
{
	for (uint32_t i = 0; i < m->env->nrcpt; i++)
		if (m->fresh[i])
			return true;
	return false;
}

bool notice_due(const struct msg *m)
{
	return m->env->sender[0] != '\0' && !(m->env->flags & QUEUE_ENV_BOUNCE) && notice_marked(m);
}

/* Whether recipient i's new outcome asks for a notice of this kind. */
static bool notice_wants(const struct msg *m, unsigned i, uint8_t kind)
{
	uint8_t nf = m->env->rcpts[i].notify;

	if (m->fresh[i] != kind || (nf & QUEUE_NOTIFY_NEVER))
		return false;
	if (kind == MSG_FRESH_FAILED)
		return nf == 0 || (nf & QUEUE_NOTIFY_FAILURE);
	return true; /* relayed and delayed were filtered by msg_record / msg_warn */
}

/* What to attach: the operator's dsn_original, narrowed by RET=HDRS; delay warnings and
 * relayed reports carry the headers only. */
static enum dsn_original notice_original(const struct notice *n, const struct msg *m, uint8_t kind)
{
	enum config_dsn_original o = n->env.cfg->dsn_original;

	if (o == CONFIG_DSN_NONE)
		return DSN_ORIG_NONE;
	if (kind != MSG_FRESH_FAILED || o == CONFIG_DSN_HEADERS || m->env->ret == QUEUE_RET_HDRS)
		return DSN_ORIG_HEADERS;
	return DSN_ORIG_FULL;
}

/* The original's body: in RAM, or read from the queue (freed by the caller if *own). */
static const char *notice_body(struct notice *n, struct msg *m, size_t *len, bool *own)
{
	void *body = NULL;

	*own = false;
	if (m->body) {
		*len = m->body_len;
		return m->body;
	}
	if (queue_get(n->env.q, &m->id, NULL, NULL, &body, len) < 0) {
		*len = 0;
		return NULL;
	}
	*own = true;
	return body;
}

/* The recipients of one kind of notice as report entries; returns how many. */
static unsigned notice_rcpts(const struct msg *m, uint8_t kind, struct dsn_rcpt *out)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < m->env->nrcpt; i++) {
		const struct queue_rcpt *r = &m->env->rcpts[i];
		if (!notice_wants(m, i, kind))
			continue;
		out[n++] = (struct dsn_rcpt){
		    .addr = r->addr,
		    .orcpt = r->orcpt,
		    .code = r->last_code,
		    .enh = {r->enh[0], r->enh[1], r->enh[2]},
		    .remote_mta = r->last_mta,
		    .diag = r->last_reply,
		    .diag_remote = r->last_mta[0] != '\0' && r->last_code != 0,
		    .last_attempt_ms = r->last_ms,
		};
	}
	return n;
}

/* Group the notice's recipients by destination into env->dests (names in names[]), as the
 * routes installed now say (a notice leaves from the default pool). */
static void notice_groups(const struct notice *n, struct queue_env *e, char names[][ROUTE_NAME_MAX],
			  uint64_t now)
{
	const char *addrs[2] = {e->rcpts[0].addr, e->nrcpt > 1 ? e->rcpts[1].addr : NULL};
	uint16_t grp[2] = {0, 0};
	unsigned first[2] = {0, 0};
	struct route_ctx ctx = {.mode = n->env.cfg->mode == CONFIG_MODE_RELAY ? ROUTE_RELAY
									      : ROUTE_INDEPENDENT,
				.relay = n->env.relay_name,
				.pool = ""};
	char *nm = NULL;
	int ng = n->env.split ? n->env.split(n->env.split_arg, addrs, e->nrcpt, grp, first, &nm)
			      : route_split(&ctx, addrs, e->nrcpt, grp, first, &nm);

	for (int g = 0; g < ng; g++) {
		snprintf(names[g], ROUTE_NAME_MAX, "%s", nm + (size_t)g * ROUTE_NAME_MAX);
		e->dests[g] = (struct queue_dest){.name = names[g], .due = now};
	}
	for (uint32_t i = 0; ng > 0 && i < e->nrcpt; i++)
		e->rcpts[i].dest = grp[i];
	e->ndest = ng > 0 ? (uint32_t)ng : 0;
	free(nm);
}

/* Remember a notice's sched entry: counted when the batch is written (msg_count_written). */
static void notice_count(struct msg *m, const struct msg_sval *v, uint64_t due)
{
	struct msg_nent *ne;

	m->notice_ents = util_xrealloc(m->notice_ents, (m->notice_nents + 1) * sizeof(*ne));
	for (unsigned k = 0; k < m->notice_nents; k++) /* the array may have moved */
		m->notice_ents[k].e.dest = m->notice_ents[k].name;
	ne = &m->notice_ents[m->notice_nents++];
	snprintf(ne->name, sizeof(ne->name), "%s", v->name);
	ne->e = (struct qstat_entry){.dest = ne->name,
				     .pending = v->pending,
				     .bytes = v->bytes,
				     .created_ms = v->created_ms,
				     .due_ms = due,
				     .primary = v->primary};
}

/* Add one notice (body: bytes, kept by the caller until the batch is written) to b, to the
 * original's sender and, with pm, to postmaster too. */
static void notice_put(struct notice *n, struct msg *m, struct queue_batch *b, const char *bytes,
		       size_t len, bool eightbit, bool pm)
{
	uint64_t now = util_wall_ms();
	struct queue_rcpt rc[2] = {{.addr = m->env->sender, .last_reply = ""},
				   {.addr = (char *)n->env.cfg->postmaster, .last_reply = ""}};
	struct queue_dest dests[2];
	char names[2][ROUTE_NAME_MAX], idstr[QUEUE_ID_STRLEN + 1];
	struct queue_env e = {.sender = "",
			      .created_ms = now,
			      .body_len = len,
			      .rcpts = rc,
			      .nrcpt = pm ? 2 : 1,
			      .dests = dests,
			      .flags = QUEUE_ENV_BOUNCE | (eightbit ? QUEUE_ENV_8BITMIME : 0)};
	struct queue_id id;
	uint8_t *meta, sval[MSG_SVAL_MAX];
	ssize_t ml;

	notice_groups(n, &e, names, now);
	meta = util_xmalloc(queue_env_encoded_len(&e));
	if ((ml = queue_env_encode(&e, meta, queue_env_encoded_len(&e))) < 0 || e.ndest == 0) {
		free(meta);
		return;
	}
	queue_id_make(&id, now, (uint16_t)m->shard, NOTICE_SEQ_BASE + n->seq++);
	queue_batch_put(b, &id, meta, (size_t)ml, bytes, len);
	for (uint32_t g = 0; g < e.ndest; g++) {
		struct msg_sval v = {.name = names[g],
				     .created_ms = now,
				     .bytes = len,
				     .pending = rc[0].dest == g ? 1 : 0,
				     .primary = g == 0};
		v.pending += pm && rc[1].dest == g;
		queue_batch_sched_put(b, now, &id, g, sval, msg_sval_make(&v, sval, sizeof(sval)));
		notice_count(m, &v, now);
	}
	free(meta);
	queue_id_format(&id, idstr);
	if (n->log)
		dlog_line(n->log, m->idstr, "event=notice-queued notice=%s to=<%s>%s%s size=%zu",
			  idstr, m->env->sender, pm ? " cc=" : "", pm ? n->env.cfg->postmaster : "",
			  len);
}

static const enum dsn_kind notice_kinds[] = {
    [MSG_FRESH_FAILED] = DSN_FAILURE,
    [MSG_FRESH_RELAYED] = DSN_RELAYED,
    [MSG_FRESH_DELAYED] = DSN_DELAY,
};

/* Build and add the notice of one kind (slot = kind - 1 in m->notices). Returns 1 if one was
 * added. */
static unsigned notice_kind(struct notice *n, struct msg *m, struct queue_batch *b, uint8_t kind,
			    struct dsn_rcpt *rcpts, const char *body, size_t body_len)
{
	uint64_t now = util_wall_ms();
	struct dsn_input in = {
	    .kind = notice_kinds[kind],
	    .reporting_mta = n->env.cfg->hostname,
	    .sender = m->env->sender,
	    .queue_id = m->idstr,
	    .envid = m->env->envid,
	    .arrival_ms = m->env->created_ms,
	    .now_ms = now,
	    .expires_ms =
		n->env.cfg->lifetime_ms ? m->env->created_ms + n->env.cfg->lifetime_ms : 0,
	    .rcpts = rcpts,
	    .nrcpt = notice_rcpts(m, kind, rcpts),
	    .original = body ? notice_original(n, m, kind) : DSN_ORIG_NONE,
	    .body = body,
	    .body_len = body_len,
	};
	unsigned slot = kind - 1u;
	bool eightbit = false;
	int rc;

	if (in.nrcpt == 0)
		return 0;
	rc = dsn_build(n->tpl, &in, &m->notices[slot], &m->notice_len[slot], &eightbit);
	if (rc < 0) {
		if (n->log)
			dlog_line(n->log, m->idstr, "event=notice-failed error=%d", rc);
		return 0;
	}
	notice_put(n, m, b, m->notices[slot], m->notice_len[slot], eightbit,
		   kind == MSG_FRESH_FAILED && n->env.cfg->postmaster[0]);
	return 1;
}

unsigned notice_fill(struct notice *n, struct msg *m, struct queue_batch *b)
{
	struct dsn_rcpt *rcpts = util_xcalloc(m->env->nrcpt ? m->env->nrcpt : 1, sizeof(*rcpts));
	const char *body;
	size_t len;
	bool own;
	unsigned added = 0;

	for (unsigned k = 0; k < MSG_NOTICES; k++) { /* a refill after a failed write */
		free(m->notices[k]);
		m->notices[k] = NULL;
		m->notice_len[k] = 0;
	}
	m->notice_nents = 0;
	if (!notice_due(m)) {
		free(rcpts);
		return 0;
	}
	body = n->env.cfg->dsn_original == CONFIG_DSN_NONE ? NULL : notice_body(n, m, &len, &own);
	for (uint8_t kind = MSG_FRESH_FAILED; kind <= MSG_FRESH_DELAYED; kind++)
		added += notice_kind(n, m, b, kind, rcpts, body, body ? len : 0);
	if (body && own)
		free((void *)body);
	free(rcpts);
	if (n->log)
		dlog_flush(n->log);
	return added;
}

uint64_t notice_bytes(const struct msg *m)
{
	uint64_t sum = 0;

	for (unsigned k = 0; k < MSG_NOTICES; k++)
		sum += m->notice_len[k];
	return sum;
}
