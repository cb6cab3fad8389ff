/* fetch — body reader thread (see fetch.h). A mutex + condvar list like the commit thread's. */
#include "engine/daemon/fetch.h"
#include "engine/util/util.h"

#include <pthread.h>

struct fetch {
	struct queue *q;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fetch_req *head, **tail;
	bool stop;
};

void fetch_post(struct fetch *f, struct fetch_req *r)
{
	bool wake;

	r->next = NULL;
	pthread_mutex_lock(&f->lock);
	wake = f->head == NULL;
	*f->tail = r;
	f->tail = &r->next;
	pthread_mutex_unlock(&f->lock);
	if (wake)
		pthread_cond_signal(&f->cond);
}

/* Every pending request, waiting for one; NULL once stopped with nothing pending. */
static struct fetch_req *fetch_take(struct fetch *f)
{
	struct fetch_req *list;

	pthread_mutex_lock(&f->lock);
	while (!f->head && !f->stop)
		pthread_cond_wait(&f->cond, &f->lock);
	list = f->head;
	f->head = NULL;
	f->tail = &f->head;
	pthread_mutex_unlock(&f->lock);
	return list;
}

static void *fetch_main(void *arg)
{
	struct fetch *f = arg;
	struct fetch_req *r, *next;

	while ((r = fetch_take(f))) {
		for (; r; r = next) {
			void *body = NULL;
			next = r->next;
			r->result = queue_get(f->q, &r->id, NULL, NULL, &body, &r->len);
			r->body = body;
			loop_post(r->loop, &r->done);
		}
	}
	return NULL;
}

int fetch_start(struct queue *q, struct fetch **out)
{
	struct fetch *f = util_xcalloc(1, sizeof(*f));
	int ret;

	f->q = q;
	f->tail = &f->head;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	ret = pthread_create(&f->thread, NULL, fetch_main, f);
	if (ret) {
		free(f);
		return -ret;
	}
	pthread_setname_np(f->thread, "rt-fetch");
	*out = f;
	return 0;
}

void fetch_free(struct fetch *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_mutex_unlock(&f->lock);
	pthread_cond_signal(&f->cond);
	pthread_join(f->thread, NULL);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f);
}
