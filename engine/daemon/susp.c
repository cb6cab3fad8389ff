/* susp — the suspended destinations (see susp.h): a short list under a mutex. */
#include "engine/daemon/susp.h"
#include "engine/daemon/msg.h"
#include "engine/util/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>

struct susp_ent {
	struct susp_ent *next;
	char name[ROUTE_NAME_MAX];
};

struct susp {
	pthread_mutex_t lock;
	struct susp_ent *head;
	atomic_uint n;
};

struct susp *susp_new(void)
{
	struct susp *s = util_xcalloc(1, sizeof(*s));

	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void susp_free(struct susp *s)
{
	if (!s)
		return;
	for (struct susp_ent *e = s->head, *next; e; e = next) {
		next = e->next;
		free(e);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The entry's link for dest, or the list's end. Lock held. */
static struct susp_ent **susp_find(struct susp *s, const char *dest)
{
	struct susp_ent **pp = &s->head;

	while (*pp && strcasecmp((*pp)->name, dest) != 0)
		pp = &(*pp)->next;
	return pp;
}

bool susp_set(struct susp *s, const char *dest, bool on)
{
	struct susp_ent **pp, *e;
	bool changed = false;

	pthread_mutex_lock(&s->lock);
	pp = susp_find(s, dest);
	if (on && !*pp) {
		e = util_xcalloc(1, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "%s", dest);
		*pp = e;
		atomic_fetch_add(&s->n, 1);
		changed = true;
	} else if (!on && *pp) {
		e = *pp;
		*pp = e->next;
		free(e);
		atomic_fetch_sub(&s->n, 1);
		changed = true;
	}
	pthread_mutex_unlock(&s->lock);
	return changed;
}

bool susp_has(struct susp *s, const char *dest)
{
	bool found;

	if (atomic_load(&s->n) == 0)
		return false;
	pthread_mutex_lock(&s->lock);
	found = *susp_find(s, dest) != NULL;
	pthread_mutex_unlock(&s->lock);
	return found;
}

bool susp_has_sval(struct susp *s, const void *sval, size_t len)
{
	char name[ROUTE_NAME_MAX];
	struct msg_sval v;

	if (atomic_load(&s->n) == 0)
		return false;
	msg_sval_parse(sval, len, &v, name, sizeof(name));
	return susp_has(s, name);
}
