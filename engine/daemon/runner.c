/* runner — due-time scanner over the sched column family (see runner.h).
 *
 * Cursor: the scan starts at `cursor` (inclusive). An entry whose id is resident can be passed:
 * its owner will delete it or move it to a later due time. An entry left unloaded because the
 * budget is full stops the scan without passing it. Every few minutes the cursor returns to 0,
 * so a wall-clock step backwards can never strand an entry.
 */
#include "engine/daemon/runner.h"
#include "engine/route/route.h"
#include "engine/util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define RUNNER_RESCAN_MS (5u * 60u * 1000u)

struct runner {
	struct runner_opts o;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	bool kicked;
	bool paused;
	bool held; /* the queue is not writable (disk full): load nothing */
	uint64_t cursor;
	uint64_t next_due;  /* the first sched entry after the last scan's "now" */
	uint64_t scan;	    /* number of the current scan (ready_block) */
	uint64_t rewind_to; /* under lock; UINT64_MAX = none */
	uint64_t last_full_ms;
	uint64_t loaded;
};

/* The scan runs over a snapshot: an entry may have been moved (a retry: meta rewritten with the
 * group's new due time) or deleted by its home shard since. The envelope records the due time
 * of each group's current entry; a fresh read of meta that disagrees, or finds nothing, means a
 * stale entry. */
static bool runner_stale(unsigned group, uint64_t due, const struct msg *m)
{
	return group >= m->env->ndest || m->env->dests[group].due != due;
}

/* Load one due entry and dispatch it; false if it was not (gone, unreadable, corrupt, stale). */
static bool runner_load(struct runner *r, uint64_t due, const struct queue_id *id, unsigned group,
			struct ready_dest *rd)
{
	void *meta = NULL;
	size_t mlen = 0;
	struct msg *m;
	char idstr[QUEUE_ID_STRLEN + 1];
	int ret, err;

	/* the envelope only: the body is read when a session is about to send it (fetch.h) */
	ret = queue_get(r->o.q, id, &meta, &mlen, NULL, NULL);
	if (ret == -ENOENT)
		return false; /* deleted since the snapshot */
	queue_id_format(id, idstr);
	if (ret < 0) {
		fprintf(stderr, "riptide: runner: %s: cannot read queued message (%d), skipped\n",
			idstr, ret);
		return false;
	}
	m = msg_from_disk(id, meta, mlen, NULL, 0, &err);
	free(meta);
	if (!m) {
		fprintf(stderr, "riptide: runner: %s: corrupt envelope (%d), left in queue\n",
			idstr, err);
		return false;
	}
	if (runner_stale(group, due, m)) {
		msg_free(m);
		return false;
	}
	m->load_group = (uint16_t)group;
	m->load_ready = rd;
	if (!resident_claim(r->o.res, m)) { /* an operator's action loaded it meanwhile */
		msg_free(m);
		return false;
	}
	r->loaded++;
	r->o.dispatch(r->o.arg, m);
	return true;
}

/* The destination named in a sched value. */
static struct ready_dest *runner_dest(struct runner *r, const void *sval, size_t len)
{
	char name[ROUTE_NAME_MAX];
	struct msg_sval v;

	msg_sval_parse(sval, len, &v, name, sizeof(name));
	return ready_get(r->o.ready, name);
}

static int runner_entry(void *arg, uint64_t due, const struct queue_id *id, unsigned group,
			const void *sval, size_t sval_len)
{
	struct runner *r = arg;
	struct ready_dest *rd;

	if (resident_has(r->o.res, id)) {
		r->cursor = due;
		return 0;
	}
	if (resident_bytes(r->o.res) >= r->o.budget_bytes)
		return 1; /* full: come back later without passing this entry */
	rd = runner_dest(r, sval, sval_len);
	if (r->o.susp && susp_has_sval(r->o.susp, sval, sval_len)) {
		r->cursor = due; /* suspended: passed (resume rewinds to 0) */
		return 0;
	}
	if (ready_blocked(rd, r->scan) || !ready_admit(r->o.ready, rd, due, false)) {
		ready_block(rd, r->scan); /* the rest of rd's entries wait for the rewind */
		r->cursor = due;	  /* rewound to it when the destination drains */
		return 0;
	}
	if (!runner_load(r, due, id, group, rd)) {
		uint64_t skipped = ready_release(r->o.ready, rd);
		if (skipped)
			runner_rewind(r, skipped);
	}
	r->cursor = due;
	return 0;
}

static int runner_peek(void *arg, uint64_t due, const struct queue_id *id, unsigned group,
		       const void *sval, size_t sval_len);

static void runner_scan(struct runner *r)
{
	uint64_t now = util_wall_ms();

	if (now - r->last_full_ms >= RUNNER_RESCAN_MS || now < r->last_full_ms) {
		r->cursor = 0;
		r->last_full_ms = now;
	}
	r->scan++;
	if (queue_scan(r->o.q, r->cursor, now, runner_entry, r) < 0)
		fprintf(stderr, "riptide: runner: schedule scan failed\n");
	r->next_due = UINT64_MAX;
	queue_scan(r->o.q, now + 1, UINT64_MAX, runner_peek, r);
}

/* The first entry after now: the runner wakes for it (a retry due in 300 ms is not made to
 * wait for the next scan_interval). */
static int runner_peek(void *arg, uint64_t due, const struct queue_id *id, unsigned group,
		       const void *sval, size_t sval_len)
{
	struct runner *r = arg;

	(void)id, (void)group, (void)sval, (void)sval_len;
	r->next_due = due;
	return 1;
}

/* The wall-clock time the runner sleeps until: scan_interval from now, or the next due entry
 * if that comes sooner. */
static void runner_until(const struct runner *r, struct timespec *until)
{
	uint64_t now = util_wall_ms(), at = now + r->o.interval_ms;

	if (r->next_due < at)
		at = r->next_due > now ? r->next_due : now;
	until->tv_sec = (time_t)(at / 1000);
	until->tv_nsec = (long)(at % 1000) * 1000000L;
}

static void *runner_main(void *arg)
{
	struct runner *r = arg;
	struct timespec until;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		if (r->paused || r->held) {
			pthread_cond_wait(&r->cond, &r->lock);
			continue;
		}
		r->kicked = false;
		if (r->rewind_to < r->cursor)
			r->cursor = r->rewind_to;
		r->rewind_to = UINT64_MAX;
		pthread_mutex_unlock(&r->lock);
		runner_scan(r);
		pthread_mutex_lock(&r->lock);
		runner_until(r, &until);
		while (!r->stop && !r->kicked && !r->paused && !r->held)
			if (pthread_cond_timedwait(&r->cond, &r->lock, &until) == ETIMEDOUT)
				break;
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int runner_start(const struct runner_opts *o, struct runner **out)
{
	struct runner *r = util_xcalloc(1, sizeof(*r));
	int ret;

	r->o = *o;
	r->last_full_ms = util_wall_ms();
	r->rewind_to = UINT64_MAX;
	r->paused = o->paused;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	ret = pthread_create(&r->thread, NULL, runner_main, r);
	if (ret) {
		free(r);
		return -ret;
	}
	pthread_setname_np(r->thread, "rt-runner");
	*out = r;
	return 0;
}

void runner_set_paused(struct runner *r, bool paused)
{
	pthread_mutex_lock(&r->lock);
	r->paused = paused;
	r->kicked = true;
	pthread_mutex_unlock(&r->lock);
	pthread_cond_signal(&r->cond);
}

void runner_set_held(struct runner *r, bool held)
{
	pthread_mutex_lock(&r->lock);
	r->held = held;
	r->kicked = true;
	pthread_mutex_unlock(&r->lock);
	pthread_cond_signal(&r->cond);
}

void runner_kick(struct runner *r)
{
	pthread_mutex_lock(&r->lock);
	r->kicked = true;
	pthread_mutex_unlock(&r->lock);
	pthread_cond_signal(&r->cond);
}

void runner_rewind(struct runner *r, uint64_t due_ms)
{
	pthread_mutex_lock(&r->lock);
	if (due_ms < r->rewind_to)
		r->rewind_to = due_ms;
	r->kicked = true;
	pthread_mutex_unlock(&r->lock);
	pthread_cond_signal(&r->cond);
}

void runner_halt(struct runner *r)
{
	bool joined;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	joined = r->stop;
	r->stop = true;
	pthread_mutex_unlock(&r->lock);
	if (joined)
		return;
	pthread_cond_signal(&r->cond);
	pthread_join(r->thread, NULL);
}

void runner_free(struct runner *r)
{
	if (!r)
		return;
	runner_halt(r);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}
