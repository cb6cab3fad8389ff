/* commit — group commit thread (see commit.h for the why).
 *
 * The queue of requests is a mutex + condvar list: the commit thread sleeps when idle and the
 * lock is held only to link a request or to take the whole list, so shards never wait on I/O.
 * A failed write is reported to every request of the batch (their messages then get 451, never
 * 250): the batch is all-or-nothing by RocksDB's WriteBatch atomicity.
 */
#include "engine/daemon/commit.h"
#include "engine/util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

struct commit {
	struct queue *q;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct commit_req *head;
	struct commit_req **tail;
	bool stop;
	struct queue_batch *batch;
	atomic_uint_fast64_t writes;
	atomic_uint_fast64_t reqs;
};

void commit_post(struct commit *c, struct commit_req *r)
{
	bool wake;

	r->next = NULL;
	pthread_mutex_lock(&c->lock);
	wake = c->head == NULL;
	*c->tail = r;
	c->tail = &r->next;
	pthread_mutex_unlock(&c->lock);
	if (wake)
		pthread_cond_signal(&c->cond);
}

/* Take every pending request (blocking while there is none); NULL once stopped and drained. */
static struct commit_req *commit_take(struct commit *c)
{
	struct commit_req *list;

	pthread_mutex_lock(&c->lock);
	while (!c->head && !c->stop)
		pthread_cond_wait(&c->cond, &c->lock);
	list = c->head;
	c->head = NULL;
	c->tail = &c->head;
	pthread_mutex_unlock(&c->lock);
	return list;
}

static bool commit_add(struct queue_batch *b, const struct commit_req *r)
{
	uint8_t sval[4] = {(uint8_t)(r->attempts >> 24), (uint8_t)(r->attempts >> 16),
			   (uint8_t)(r->attempts >> 8), (uint8_t)r->attempts};

	switch (r->op) {
	case COMMIT_PUT:
		queue_batch_put(b, &r->id, r->meta, r->meta_len, r->body, r->body_len, r->new_due,
				sval, sizeof(sval));
		break;
	case COMMIT_UPDATE:
		queue_batch_update(b, &r->id, r->meta, r->meta_len, r->old_due, r->new_due, sval,
				   sizeof(sval));
		break;
	case COMMIT_DELETE:
		queue_batch_delete(b, &r->id, r->old_due);
		break;
	}
	return r->sync;
}

/* At most this much goes into one WriteBatch: a burst (a restart's backlog of updates, a
 * thousand sessions finishing at once) is written as several bounded batches. */
#define COMMIT_MAX_REQS	 4096u
#define COMMIT_MAX_BYTES (64u << 20)

/* Write the first requests of list (up to the bounds) as one batch and complete them; returns
 * the rest of the list. */
static struct commit_req *commit_batch(struct commit *c, struct commit_req *list)
{
	struct commit_req *r, *rest;
	char err[256];
	bool sync = false;
	uint64_t n = 0, bytes = 0;
	int ret;

	queue_batch_clear(c->batch);
	for (r = list; r && n < COMMIT_MAX_REQS && bytes < COMMIT_MAX_BYTES; r = r->next, n++) {
		sync |= commit_add(c->batch, r);
		bytes += r->meta_len + r->body_len;
	}
	rest = r;
	ret = queue_write(c->q, c->batch, sync, err, sizeof(err));
	if (ret < 0)
		fprintf(stderr, "riptide: commit: queue write of %llu requests failed: %s\n",
			(unsigned long long)n, err);
	atomic_fetch_add(&c->writes, 1);
	atomic_fetch_add(&c->reqs, n);
	while (list != rest) {
		struct commit_req *next = list->next;
		list->result = ret;
		loop_post(list->loop, &list->done);
		list = next;
	}
	return rest;
}

static void *commit_main(void *arg)
{
	struct commit *c = arg;
	struct commit_req *list;

	while ((list = commit_take(c)))
		while (list)
			list = commit_batch(c, list);
	return NULL;
}

int commit_start(struct queue *q, struct commit **out)
{
	struct commit *c = util_xcalloc(1, sizeof(*c));
	int ret;

	c->q = q;
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
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

void commit_stats(struct commit *c, uint64_t *writes, uint64_t *reqs)
{
	*writes = atomic_load(&c->writes);
	*reqs = atomic_load(&c->reqs);
}
