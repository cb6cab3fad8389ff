/* ctl — the daemon's control table (see ctl.h). Runs on the control thread.
 *
 * `queue summary` also shows adaptive backoff: the states of rt->shape with an action running
 * are collected once per request (shape_table_each; keys "SOURCE|DESTINATION") and each is
 * given to the row of its destination: a row "pool/name" takes the states of name from the
 * pool's sources, a row "name" those of the default source (""), as dest_shape.c keys them.
 * A state no queued destination takes still gets a row (0 messages), so an operator sees a
 * suspension even when nothing waits for it. `reload` hands over to the main thread
 * (rt_reload_request).
 */
#include "engine/daemon/ctl.h"
#include "engine/control/control.h"
#include "engine/daemon/home.h"
#include "engine/daemon/qstat.h"
#include "engine/daemon/shard.h"
#include "engine/daemon/snap.h"
#include "engine/daemon/susp.h"
#include "engine/shape/shape.h"

#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <string.h>

#define CTL_INFLIGHT 256u

/* A batch of actions in flight: a slot semaphore bounds them; `left` counts the unfinished. */
struct ctl_batch {
	sem_t slots;
	atomic_uint_fast64_t done;
};

struct ctl_job {
	struct home_ctl hc;
	struct ctl_batch *b;
};

static void ctl_job_done(struct home_ctl *c)
{
	struct ctl_job *j = container_of(c, struct ctl_job, hc);
	struct ctl_batch *b = j->b;

	atomic_fetch_add(&b->done, 1);
	free(j);
	sem_post(&b->slots);
}

/* The message to act on, read from the queue once it is claimed (resident, so neither the
 * runner nor another action loads it, and no round can write it meanwhile): returns it, NULL
 * with *err = 0 when it is in RAM already (its home shard applies the action at the end of
 * its round), or NULL with *err = -ENOENT / -errno. */
static struct msg *ctl_claim(struct rt *rt, const struct queue_id *id, int *err)
{
	struct msg *ph = util_xcalloc(1, sizeof(*ph)), *m = NULL;
	void *meta = NULL;
	size_t len = 0;

	ph->id = *id;
	*err = 0;
	if (!resident_claim(rt->res, ph)) {
		msg_free(ph);
		return NULL;
	}
	*err = queue_get(rt->q, id, &meta, &len, NULL, NULL);
	if (*err == 0)
		m = msg_from_disk(id, meta, len, NULL, 0, err);
	free(meta);
	if (m)
		resident_add(rt->res, m); /* (the id stays resident throughout) */
	resident_del(rt->res, ph);
	msg_free(ph);
	return m;
}

/* Hand `act` on message id to its home shard (waits for a free slot first). Returns 0,
 * -ENOENT (not queued), or another negative errno. */
static int ctl_post(struct rt *rt, struct ctl_batch *b, enum home_act act,
		    const struct queue_id *id)
{
	int err;
	struct msg *m = ctl_claim(rt, id, &err);
	struct ctl_job *j;

	if (err < 0)
		return err;
	j = util_xcalloc(1, sizeof(*j));
	j->hc.m = m;
	j->hc.id = *id;
	j->hc.act = act;
	j->hc.done = ctl_job_done;
	j->b = b;
	while (sem_wait(&b->slots) < 0 && errno == EINTR)
		;
	shard_ctl(rt->shards[((unsigned)id->b[8] << 8 | id->b[9]) % rt->nshards], &j->hc);
	return 0;
}

static void ctl_batch_init(struct ctl_batch *b)
{
	sem_init(&b->slots, 0, CTL_INFLIGHT);
	atomic_store(&b->done, 0);
}

/* Wait until every action of b is applied. */
static void ctl_batch_wait(struct ctl_batch *b)
{
	for (unsigned i = 0; i < CTL_INFLIGHT; i++)
		while (sem_wait(&b->slots) < 0 && errno == EINTR)
			;
	sem_destroy(&b->slots);
}

static const enum home_act ctl_acts[] = {
    [CTL_ACT_DELETE] = HOME_ACT_DELETE,
    [CTL_ACT_BOUNCE] = HOME_ACT_BOUNCE,
    [CTL_ACT_RETRY] = HOME_ACT_RETRY,
};

static int ctl_message(void *arg, enum ctl_act a, const struct queue_id *id)
{
	struct ctl_batch b;
	int ret;

	ctl_batch_init(&b);
	ret = ctl_post(arg, &b, ctl_acts[a], id);
	ctl_batch_wait(&b);
	return ret;
}

/* ---- bulk actions ---- */

struct ctl_scan {
	struct rt *rt;
	struct ctl_batch b;
	const char *dest; /* retry: only this destination (NULL: all) */
	uint64_t now;
	struct queue_id
	    last; /* retry: the last id posted (a message's entries are adjacent
		     only by chance: a repeat costs one more action, never a wrong one) */
	bool have_last;
	int64_t count;
};

static int ctl_retry_entry(void *arg, uint64_t due, const struct queue_id *id, unsigned group,
			   const void *sval, size_t len)
{
	struct ctl_scan *s = arg;
	char name[ROUTE_NAME_MAX];
	struct msg_sval v;

	(void)group;
	if (due <= s->now)
		return 0; /* due already */
	msg_sval_parse(sval, len, &v, name, sizeof(name));
	if (s->dest && strcasecmp(name, s->dest) != 0)
		return 0;
	if (s->have_last && memcmp(&s->last, id, sizeof(*id)) == 0)
		return 0;
	s->last = *id;
	s->have_last = true;
	if (ctl_post(s->rt, &s->b, HOME_ACT_RETRY, id) == 0)
		s->count++;
	return 0;
}

static int64_t ctl_retry(void *arg, const char *dest)
{
	struct ctl_scan s = {.rt = arg, .dest = dest, .now = util_wall_ms()};
	int ret;

	ctl_batch_init(&s.b);
	ret = queue_scan(s.rt->q, s.now + 1, UINT64_MAX, ctl_retry_entry, &s);
	ctl_batch_wait(&s.b);
	runner_rewind(s.rt->runner, s.now);
	return ret < 0 ? ret : s.count;
}

static int ctl_clear_entry(void *arg, const struct queue_id *id, const void *meta, size_t len)
{
	struct ctl_scan *s = arg;

	(void)meta, (void)len;
	if (ctl_post(s->rt, &s->b, HOME_ACT_DELETE, id) == 0)
		s->count++;
	return 0;
}

static int64_t ctl_clear(void *arg)
{
	struct ctl_scan s = {.rt = arg};
	int ret;

	ctl_batch_init(&s.b);
	ret = queue_scan_meta(s.rt->q, NULL, ctl_clear_entry, &s);
	ctl_batch_wait(&s.b);
	return ret < 0 ? ret : s.count;
}

static int ctl_suspend(void *arg, const char *dest, bool on)
{
	struct rt *rt = arg;

	if (!dest || !*dest)
		return -EINVAL;
	if (susp_set(rt->susp, dest, on))
		fprintf(stderr, "riptide: destination %s %s by the operator\n", dest,
			on ? "suspended" : "resumed");
	if (!on)
		runner_rewind(rt->runner, 0);
	return 0;
}

/* ---- summary ---- */

/* One shape state with an action running, as collected for a summary. */
struct ctl_bo {
	char key[64 + ROUTE_NAME_MAX + 8]; /* "SOURCE|DESTINATION", split at the '|' */
	const char *base;		   /* DESTINATION, inside key */
	struct shape_status st;
	bool used; /* given to a row */
};

struct ctl_sum {
	struct rt *rt;
	ctl_dest_fn fn;
	void *cookie;
	struct snap *snap;
	struct ctl_bo *bo;
	size_t nbo, capbo;
	uint64_t mono, wall; /* the request's now on both clocks */
};

static void ctl_bo_collect(struct shape_state *st, void *arg)
{
	struct ctl_sum *s = arg;
	struct ctl_bo *b;
	char *bar;

	if (s->nbo == s->capbo) {
		s->capbo = s->capbo ? 2 * s->capbo : 16;
		s->bo = util_xrealloc(s->bo, s->capbo * sizeof(*s->bo));
	}
	b = &s->bo[s->nbo];
	memset(b, 0, sizeof(*b));
	shape_status_get(st, s->mono, &b->st);
	if (b->st.action == SHAPE_NONE)
		return;
	snprintf(b->key, sizeof(b->key), "%s", shape_state_key(st));
	bar = strchr(b->key, '|');
	if (!bar)
		return;
	*bar = '\0';
	b->base = bar + 1;
	s->nbo++;
}

/* Is a better (stronger) than b: a suspension over a reduction, then the later end of a
 * suspension, the lower factor of a reduction. */
static bool ctl_bo_better(const struct ctl_bo *a, const struct ctl_bo *b)
{
	if (a->st.action != b->st.action)
		return a->st.action == SHAPE_SUSPEND;
	if (a->st.action == SHAPE_SUSPEND)
		return a->st.until_ms > b->st.until_ms;
	return a->st.factor < b->st.factor;
}

/* Does source src feed a row of pool p (NULL: the default source "")? */
static bool ctl_bo_src_in(const char *src, const struct config_pool *p)
{
	if (!p)
		return !*src;
	for (unsigned i = 0; i < p->nsources; i++)
		if (strcmp(p->sources[i].text, src) == 0)
			return true;
	return false;
}

/* The strongest running state of row `name` (taken or not by another row), marking every
 * one it matches as taken; NULL if none. */
static const struct ctl_bo *ctl_bo_of(struct ctl_sum *s, const char *name)
{
	size_t plen;
	const char *base = route_base(name, &plen);
	const struct config_pool *p = plen ? snap_pool(s->snap, name, plen) : NULL;
	const struct ctl_bo *best = NULL;

	for (size_t i = 0; i < s->nbo; i++) {
		struct ctl_bo *b = &s->bo[i];
		if (strcasecmp(b->base, base) != 0 || !ctl_bo_src_in(b->key, p))
			continue;
		b->used = true;
		if (!best || ctl_bo_better(b, best))
			best = b;
	}
	return best;
}

/* Fill v->backoff from state b (NULL: none). */
static void ctl_bo_fill(const struct ctl_sum *s, const struct ctl_bo *b, struct ctl_dest_stat *v)
{
	if (!b)
		return;
	v->backoff = (struct ctl_backoff){
	    .action = b->st.action == SHAPE_SUSPEND ? "suspend" : "reduce",
	    .rule = b->st.rule,
	    .source = b->key,
	    .until_ms = s->wall + (b->st.until_ms > s->mono ? b->st.until_ms - s->mono : 0),
	    .factor = b->st.factor,
	};
}

static int ctl_sum_dest(void *arg, const struct qstat_dest *d)
{
	struct ctl_sum *s = arg;
	struct ctl_dest_stat v = {
	    .name = d->name,
	    .messages = d->messages,
	    .recipients = d->recipients,
	    .bytes = d->bytes,
	    .oldest_ms = d->oldest_ms,
	    .next_ms = d->next_ms,
	    .suspended = susp_has(s->rt->susp, d->name),
	};

	ctl_bo_fill(s, ctl_bo_of(s, d->name), &v);
	return s->fn(s->cookie, &v);
}

/* The row name of state b when no queued destination took it: "pool/base" for the first pool
 * holding its source, else base. */
static void ctl_bo_name(const struct ctl_sum *s, const struct ctl_bo *b, char *out, size_t len)
{
	const struct config_sets *cs = s->snap->cfg.sets;

	for (unsigned i = 0; b->key[0] && cs && i < cs->npools; i++)
		if (ctl_bo_src_in(b->key, &cs->pools[i])) {
			snprintf(out, len, "%s/%s", cs->pools[i].name, b->base);
			return;
		}
	snprintf(out, len, "%s", b->base);
}

/* A row (0 messages) per destination whose backoff no queued destination took. */
static int ctl_bo_rest(struct ctl_sum *s)
{
	char name[64 + ROUTE_NAME_MAX + 8];
	int ret = 0;

	for (size_t i = 0; i < s->nbo && ret == 0; i++) {
		struct ctl_dest_stat v = {.name = name};
		if (s->bo[i].used)
			continue;
		ctl_bo_name(s, &s->bo[i], name, sizeof(name));
		v.suspended = susp_has(s->rt->susp, name);
		ctl_bo_fill(s, ctl_bo_of(s, name), &v);
		if (!v.backoff.action) /* (its pool's sources changed meanwhile) */
			ctl_bo_fill(s, &s->bo[i], &v), s->bo[i].used = true;
		ret = s->fn(s->cookie, &v);
	}
	return ret;
}

static int ctl_summary(void *arg, struct ctl_totals *t, ctl_dest_fn fn, void *cookie)
{
	struct rt *rt = arg;
	struct ctl_sum s = {.rt = rt, .fn = fn, .cookie = cookie};

	s.snap = snap_current(rt);
	s.mono = util_mono_ms();
	s.wall = util_wall_ms();
	shape_table_each(rt->shape, ctl_bo_collect, &s);
	qstat_totals(rt->qstat, &t->messages, &t->recipients, &t->bytes);
	t->counting = qstat_counting(rt->qstat);
	qstat_each(rt->qstat, ctl_sum_dest, &s);
	ctl_bo_rest(&s);
	free(s.bo);
	snap_unref(s.snap);
	return 0;
}

/* ---- reload ---- */

static int ctl_reload(void *arg, char *msg, size_t len)
{
	return rt_reload_request(arg, msg, len);
}

/* ---- start and stop ---- */

int rt_ctl_start(struct rt *rt)
{
	struct ctl_engine eng = {
	    .arg = rt,
	    .q = rt->q,
	    .summary = ctl_summary,
	    .message = ctl_message,
	    .retry = ctl_retry,
	    .suspend = ctl_suspend,
	    .clear = ctl_clear,
	    .reload = ctl_reload,
	};
	char path[CONFIG_STR + 32], err[512];
	int ret = ctl_socket_path(rt->cfg.control_socket, rt->cfg.spool, path, sizeof(path));

	if (ret == 0)
		ret = ctl_start(path, &eng, &rt->ctl, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "control socket path too long");
	if (ret < 0)
		fprintf(stderr, "riptide: control socket %s: %s\n", path, err);
	return ret;
}

void rt_ctl_stop(struct rt *rt)
{
	ctl_stop(rt->ctl);
	rt->ctl = NULL;
}
