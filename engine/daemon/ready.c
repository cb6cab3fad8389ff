/* ready — per-destination unit counters shared by the runner and the shards (see ready.h).
 *
 * A striped-lock hash (64 stripes) maps names to entries; the counters themselves are atomics,
 * so after the one lookup per unit nothing is locked.
 */
#include "engine/daemon/ready.h"
#include "engine/route/route.h"
#include "engine/util/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define READY_STRIPES 64u

struct ready_dest {
	struct ready_dest *next;
	uint64_t blocked_scan; /* runner thread only: the scan that found it full */
	atomic_uint count;
	atomic_uint_fast64_t skipped; /* earliest due skipped while full, 0 = none */
	char name[];
};

struct ready_stripe {
	pthread_mutex_t lock;
	struct ready_dest *head;
};

struct ready {
	unsigned max;
	struct ready_stripe s[READY_STRIPES];
};

struct ready *ready_new(unsigned max)
{
	struct ready *r = util_xcalloc(1, sizeof(*r));

	r->max = max ? max : 1;
	for (unsigned i = 0; i < READY_STRIPES; i++)
		pthread_mutex_init(&r->s[i].lock, NULL);
	return r;
}

void ready_free(struct ready *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < READY_STRIPES; i++) {
		for (struct ready_dest *d = r->s[i].head, *next; d; d = next) {
			next = d->next;
			free(d);
		}
		pthread_mutex_destroy(&r->s[i].lock);
	}
	free(r);
}

static unsigned ready_stripe(const char *name)
{
	return route_name_hash(name) % READY_STRIPES;
}

struct ready_dest *ready_get(struct ready *r, const char *name)
{
	struct ready_stripe *s = &r->s[ready_stripe(name)];
	struct ready_dest *d;

	pthread_mutex_lock(&s->lock);
	for (d = s->head; d; d = d->next)
		if (strcmp(d->name, name) == 0)
			break;
	if (!d) {
		size_t len = strlen(name);
		d = util_xcalloc(1, sizeof(*d) + len + 1);
		memcpy(d->name, name, len);
		d->next = s->head;
		s->head = d;
	}
	pthread_mutex_unlock(&s->lock);
	return d;
}

/* Keep the earliest skipped due (0 = none). */
static void ready_note_skip(struct ready_dest *rd, uint64_t due)
{
	uint_fast64_t cur = atomic_load(&rd->skipped);

	while ((cur == 0 || due < cur) && !atomic_compare_exchange_weak(&rd->skipped, &cur, due))
		;
}

bool ready_admit(struct ready *r, struct ready_dest *rd, uint64_t due, bool fresh)
{
	unsigned cur = atomic_load(&rd->count), max = fresh ? 2 * r->max : r->max;

	do {
		if (cur >= max) {
			ready_note_skip(rd, due ? due : 1);
			/* the last release may have come between the load and the note */
			cur = atomic_load(&rd->count);
			if (cur >= max)
				return false;
		}
	} while (!atomic_compare_exchange_weak(&rd->count, &cur, cur + 1));
	return true;
}

void ready_block(struct ready_dest *rd, uint64_t scan)
{
	rd->blocked_scan = scan;
}

bool ready_blocked(const struct ready_dest *rd, uint64_t scan)
{
	return scan != 0 && rd->blocked_scan == scan;
}

void ready_add(struct ready_dest *rd)
{
	atomic_fetch_add(&rd->count, 1);
}

uint64_t ready_release(struct ready *r, struct ready_dest *rd)
{
	unsigned before = atomic_fetch_sub(&rd->count, 1);

	BUG_ON(before == 0);
	if (before - 1 > r->max / 2 || atomic_load(&rd->skipped) == 0)
		return 0;
	return atomic_exchange(&rd->skipped, 0);
}

unsigned ready_count(const struct ready_dest *rd)
{
	return atomic_load(&rd->count);
}
