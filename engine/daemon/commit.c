/* commit — group commit thread (see commit.h for the why).
 *
 * The queue of requests is a mutex + condvar list: the commit thread sleeps when idle and the
 * lock is held only to link a request or to take the whole list, so shards never wait on I/O.
 * A failed write is reported to every request of the batch (their messages then get 451/452,
 * never 250): the batch is all-or-nothing by RocksDB's WriteBatch atomicity.
 *
 * Disk full: once RocksDB fails a write it enters its background-error state and refuses every
 * later write, also after space is freed (its C API has no Resume). So a failed write puts the
 * thread in degraded mode (see commit.h): requests fail fast, shards answer 452 4.3.1 and start
 * no delivery, and the thread probes and, if needed, reopens the store until it is writable.
 */
#include "engine/daemon/commit.h"
#include "engine/util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

/* Degraded mode: probe the store this often, reopen it at most this often. */
#define COMMIT_PROBE_MS	 1000u
#define COMMIT_REOPEN_MS 3000u
/* Failed PUTs remembered for deletion after recovery (a few failed batches' worth). */
#define COMMIT_MAX_ORPHANS (16u * 4096u)

/* A PUT whose write failed: its client was told 451/452, yet RocksDB may have its WAL record
 * (a write can fail after the append, e.g. at the sync) and replay it when reopened. Such a
 * message must not be delivered: it is deleted before degraded mode ends. */
struct commit_orphan {
	struct queue_id id;
	uint64_t due;
	unsigned ngroups;
};

struct commit {
	struct queue *q;
	void *written_arg; /* passed to commit_req.written */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct commit_req *head;
	struct commit_req **tail;
	bool stop;
	struct queue_batch *batch;
	atomic_uint_fast64_t writes;
	atomic_uint_fast64_t reqs;
	commit_state_fn on_state;
	void *state_arg;
	atomic_bool degraded;
	int degraded_err;	 /* the error requests fail with while degraded */
	uint64_t degraded_since; /* monotonic ms */
	uint64_t next_probe_ms;	 /* monotonic ms */
	uint64_t next_reopen_ms; /* monotonic ms */
	unsigned reopens;
	struct commit_orphan *orphans; /* failed PUTs to delete before leaving degraded mode */
	size_t norphans;
};

void commit_post(struct commit *c, struct commit_req *r)
{
	bool wake;

	r->next = NULL;
	pthread_mutex_lock(&c->lock);
	if (c->stop) { /* halted: nothing will write it */
		pthread_mutex_unlock(&c->lock);
		r->result = -ESHUTDOWN;
		loop_post(r->loop, &r->done);
		return;
	}
	wake = c->head == NULL;
	*c->tail = r;
	c->tail = &r->next;
	pthread_mutex_unlock(&c->lock);
	if (wake)
		pthread_cond_signal(&c->cond);
}

static void commit_deadline(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Take every pending request (blocking while there is none; while degraded, waking at least
 * every probe period); NULL when nothing is pending (degraded wake-up, or stopped). */
static struct commit_req *commit_take(struct commit *c)
{
	struct commit_req *list;
	struct timespec until;

	pthread_mutex_lock(&c->lock);
	commit_deadline(&until, COMMIT_PROBE_MS);
	while (!c->head && !c->stop)
		if (!atomic_load(&c->degraded))
			pthread_cond_wait(&c->cond, &c->lock);
		else if (pthread_cond_timedwait(&c->cond, &c->lock, &until) == ETIMEDOUT)
			break;
	list = c->head;
	c->head = NULL;
	c->tail = &c->head;
	pthread_mutex_unlock(&c->lock);
	return list;
}

/* At most this much goes into one WriteBatch: a burst (a restart's backlog of updates, a
 * thousand sessions finishing at once) is written as several bounded batches. */
#define COMMIT_MAX_REQS	 4096u
#define COMMIT_MAX_BYTES (64u << 20)

/* ---- degraded mode ---- */

static void commit_enter_degraded(struct commit *c, int err, const char *why)
{
	uint64_t now = util_mono_ms();

	if (atomic_load(&c->degraded))
		return;
	c->degraded_err = err == -ENOSPC ? -ENOSPC : -EIO;
	c->degraded_since = now;
	c->next_probe_ms = now + COMMIT_PROBE_MS;
	c->next_reopen_ms = now + COMMIT_PROBE_MS;
	atomic_store(&c->degraded, true);
	fprintf(stderr,
		"riptide: queue not writable (%s): injection answers 452 4.3.1, no delivery is "
		"started; retrying every %u ms\n",
		why, COMMIT_PROBE_MS);
	if (c->on_state)
		c->on_state(c->state_arg, true);
}

/* Remember the PUTs of a failed batch [list, rest) (see struct commit_orphan). */
static void commit_note_orphans(struct commit *c, struct commit_req *list, struct commit_req *rest)
{
	for (; list != rest; list = list->next) {
		if (!list->put)
			continue;
		if (c->norphans == COMMIT_MAX_ORPHANS) {
			fprintf(stderr,
				"riptide: commit: too many failed writes to track; a message "
				"refused with 451/452 may still be delivered after recovery\n");
			return;
		}
		if (!c->orphans)
			c->orphans = util_xmalloc(COMMIT_MAX_ORPHANS * sizeof(*c->orphans));
		c->orphans[c->norphans++] =
		    (struct commit_orphan){list->id, list->put_due, list->put_ngroups};
	}
}

/* Delete every remembered failed PUT in one synced write. Returns 0 or the write's error. */
static int commit_forget_orphans(struct commit *c, char *err, size_t errlen)
{
	int ret;

	if (!c->norphans)
		return 0;
	queue_batch_clear(c->batch);
	for (size_t i = 0; i < c->norphans; i++) {
		queue_batch_delete(c->batch, &c->orphans[i].id);
		for (unsigned g = 0; g < c->orphans[i].ngroups; g++)
			queue_batch_sched_del(c->batch, c->orphans[i].due, &c->orphans[i].id, g);
	}
	ret = queue_write(c->q, c->batch, true, err, errlen);
	queue_batch_clear(c->batch);
	if (ret == 0) {
		free(c->orphans);
		c->orphans = NULL;
		c->norphans = 0;
	}
	return ret;
}

/* One synced tombstone write of an id that never exists: succeeds only when the store can
 * append to its WAL and sync it. Returns 0 or the write's error. */
static int commit_probe(struct commit *c, char *err, size_t errlen)
{
	static const struct queue_id probe_id; /* all zero: no real message has it */

	queue_batch_clear(c->batch);
	queue_batch_delete(c->batch, &probe_id);
	return queue_write(c->q, c->batch, true, err, errlen);
}

/* While degraded: probe when due; if the probe fails, reopen the store (when due) and probe
 * again. Leaves degraded mode on the first successful probe. */
static void commit_try_recover(struct commit *c)
{
	uint64_t now = util_mono_ms();
	char err[256];
	int ret;

	if (!atomic_load(&c->degraded) || now < c->next_probe_ms)
		return;
	c->next_probe_ms = now + COMMIT_PROBE_MS;
	ret = commit_probe(c, err, sizeof(err));
	if (ret < 0 && now >= c->next_reopen_ms) {
		c->next_reopen_ms = now + COMMIT_REOPEN_MS;
		c->reopens++;
		ret = queue_recover(c->q, err, sizeof(err));
		if (ret == 0)
			ret = commit_probe(c, err, sizeof(err));
	}
	if (ret == 0)
		ret = commit_forget_orphans(c, err, sizeof(err));
	if (ret < 0)
		return;
	atomic_store(&c->degraded, false);
	fprintf(stderr, "riptide: queue writable again after %.1f s (%u reopen%s)\n",
		(double)(util_mono_ms() - c->degraded_since) / 1000.0, c->reopens,
		c->reopens == 1 ? "" : "s");
	c->reopens = 0;
	if (c->on_state)
		c->on_state(c->state_arg, false);
}

/* ---- batches ---- */

/* Complete the requests from list up to (not including) rest with ret. */
static void commit_complete(struct commit *c, struct commit_req *list, struct commit_req *rest,
			    int ret)
{
	while (list != rest) {
		struct commit_req *next = list->next;
		if (ret == 0 && list->written)
			list->written(list, c->written_arg);
		list->result = ret;
		loop_post(list->loop, &list->done);
		list = next;
	}
}

/* Write the first requests of list (up to the bounds) as one batch and complete them; returns
 * the rest of the list. While degraded the whole list completes at once with the degraded
 * error (NULL is returned). */
static struct commit_req *commit_batch(struct commit *c, struct commit_req *list)
{
	struct commit_req *r, *rest;
	char err[256];
	bool sync = false;
	uint64_t n = 0, bytes = 0;
	int ret;

	if (atomic_load(&c->degraded)) { /* fail fast: nothing to build or write */
		commit_complete(c, list, NULL, c->degraded_err);
		return NULL;
	}
	queue_batch_clear(c->batch);
	for (r = list; r && n < COMMIT_MAX_REQS && bytes < COMMIT_MAX_BYTES; r = r->next, n++) {
		r->fill(r, c->batch);
		sync |= r->sync;
		bytes += r->bytes;
	}
	rest = r;
	ret = queue_write(c->q, c->batch, sync, err, sizeof(err));
	if (ret < 0)
		fprintf(stderr, "riptide: commit: queue write of %llu requests failed: %s\n",
			(unsigned long long)n, err);
	if (ret < 0 && ret != -ENOMEM) {
		commit_note_orphans(c, list, rest);
		commit_enter_degraded(c, ret, err);
	}
	atomic_fetch_add(&c->writes, 1);
	atomic_fetch_add(&c->reqs, n);
	commit_complete(c, list, rest, ret);
	queue_batch_clear(c->batch); /* release a burst's memory now, not at the next write */
	return rest;
}

static bool commit_stopped(struct commit *c)
{
	bool stop;

	pthread_mutex_lock(&c->lock);
	stop = c->stop && !c->head;
	pthread_mutex_unlock(&c->lock);
	return stop;
}

static void *commit_main(void *arg)
{
	struct commit *c = arg;
	struct commit_req *list;

	while (!commit_stopped(c)) {
		commit_try_recover(c);
		list = commit_take(c);
		while (list)
			list = commit_batch(c, list);
	}
	return NULL;
}

void commit_set_written_arg(struct commit *c, void *arg)
{
	c->written_arg = arg;
}

bool commit_degraded(const struct commit *c)
{
	return atomic_load_explicit(&c->degraded, memory_order_relaxed);
}

int commit_start(struct queue *q, commit_state_fn on_state, void *arg, struct commit **out)
{
	struct commit *c = util_xcalloc(1, sizeof(*c));
	int ret;

	c->q = q;
	c->on_state = on_state;
	c->state_arg = arg;
	c->tail = &c->head;
	c->batch = queue_batch_new();
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	ret = pthread_create(&c->thread, NULL, commit_main, c);
	if (ret) {
		queue_batch_free(c->batch);
		free(c);
		return -ret;
	}
	pthread_setname_np(c->thread, "rt-commit");
	*out = c;
	return 0;
}

void commit_halt(struct commit *c)
{
	bool joined;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	joined = c->stop;
	c->stop = true;
	pthread_mutex_unlock(&c->lock);
	if (joined)
		return;
	pthread_cond_signal(&c->cond);
	pthread_join(c->thread, NULL);
}

void commit_free(struct commit *c)
{
	if (!c)
		return;
	commit_halt(c);
	queue_batch_free(c->batch);
	free(c->orphans);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

void commit_stats(struct commit *c, uint64_t *writes, uint64_t *reqs)
{
	*writes = atomic_load(&c->writes);
	*reqs = atomic_load(&c->reqs);
}
