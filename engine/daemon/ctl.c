/* ctl — the daemon's control table (see ctl.h). Runs on the control thread. */
#include "engine/daemon/ctl.h"
#include "engine/control/control.h"
#include "engine/daemon/home.h"
#include "engine/daemon/qstat.h"
#include "engine/daemon/shard.h"
#include "engine/daemon/susp.h"

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

struct ctl_sum {
	struct rt *rt;
	ctl_dest_fn fn;
	void *cookie;
};

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

	return s->fn(s->cookie, &v);
}

static int ctl_summary(void *arg, struct ctl_totals *t, ctl_dest_fn fn, void *cookie)
{
	struct rt *rt = arg;
	struct ctl_sum s = {rt, fn, cookie};

	qstat_totals(rt->qstat, &t->messages, &t->recipients, &t->bytes);
	t->counting = qstat_counting(rt->qstat);
	qstat_each(rt->qstat, ctl_sum_dest, &s);
	return 0;
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
