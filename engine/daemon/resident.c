/* resident — striped hash set of in-RAM message ids (see resident.h). */
#include "engine/daemon/resident.h"
#include "engine/util/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define RES_BUCKETS (1u << 18)
#define RES_STRIPES 64u

struct resident {
	pthread_mutex_t locks[RES_STRIPES];
	struct msg **buckets;
	atomic_uint_fast64_t bytes;
	atomic_uint_fast64_t count;
};

static uint32_t res_hash(const struct queue_id *id)
{
	uint64_t a, b;

	memcpy(&a, id->b, 8);
	memcpy(&b, id->b + 8, 8);
	a ^= b * 0x9e3779b97f4a7c15ull;
	a ^= a >> 29;
	a *= 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(a >> 32) & (RES_BUCKETS - 1);
}

struct resident *resident_new(void)
{
	struct resident *r = util_xcalloc(1, sizeof(*r));

	for (unsigned i = 0; i < RES_STRIPES; i++)
		pthread_mutex_init(&r->locks[i], NULL);
	r->buckets = util_xcalloc(RES_BUCKETS, sizeof(*r->buckets));
	return r;
}

void resident_free(struct resident *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < RES_STRIPES; i++)
		pthread_mutex_destroy(&r->locks[i]);
	free(r->buckets);
	free(r);
}

/* What a message in RAM costs: body, encoded and decoded envelope, the struct and its per
 * recipient / per group arrays (what it holds now: the meta may change later). */
uint64_t resident_cost(const struct msg *m)
{
	uint64_t n = m->env ? m->env->nrcpt : 0, g = m->env ? m->env->ndest : 0;

	return m->body_len + 2 * (uint64_t)m->meta_len + sizeof(*m) + n * (2 * sizeof(char *) + 1) +
	       g * sizeof(struct msg_group) + n * sizeof(struct queue_rcpt) +
	       g * sizeof(struct queue_dest);
}

/* Link m in bucket h unless `unique` and an id equal to m's is there. */
static bool res_link(struct resident *r, struct msg *m, bool unique)
{
	uint32_t h = res_hash(&m->id);
	pthread_mutex_t *lk = &r->locks[h % RES_STRIPES];

	pthread_mutex_lock(lk);
	for (struct msg *x = unique ? r->buckets[h] : NULL; x; x = x->res_next)
		if (memcmp(&x->id, &m->id, sizeof(m->id)) == 0) {
			pthread_mutex_unlock(lk);
			return false;
		}
	m->res_next = r->buckets[h];
	r->buckets[h] = m;
	pthread_mutex_unlock(lk);
	return true;
}

bool resident_claim(struct resident *r, struct msg *m)
{
	if (!res_link(r, m, true))
		return false;
	m->res_bytes = resident_cost(m);
	atomic_fetch_add(&r->bytes, m->res_bytes);
	atomic_fetch_add(&r->count, 1);
	return true;
}

void resident_add(struct resident *r, struct msg *m)
{
	res_link(r, m, false);
	m->res_bytes = resident_cost(m);
	atomic_fetch_add(&r->bytes, m->res_bytes);
	atomic_fetch_add(&r->count, 1);
}

void resident_del(struct resident *r, struct msg *m)
{
	uint32_t h = res_hash(&m->id);
	pthread_mutex_t *lk = &r->locks[h % RES_STRIPES];
	struct msg **pp;

	pthread_mutex_lock(lk);
	for (pp = &r->buckets[h]; *pp && *pp != m; pp = &(*pp)->res_next)
		;
	BUG_ON(*pp == NULL);
	*pp = m->res_next;
	pthread_mutex_unlock(lk);
	m->res_next = NULL;
	atomic_fetch_sub(&r->bytes, m->res_bytes);
	atomic_fetch_sub(&r->count, 1);
}

bool resident_has(struct resident *r, const struct queue_id *id)
{
	uint32_t h = res_hash(id);
	pthread_mutex_t *lk = &r->locks[h % RES_STRIPES];
	bool found = false;

	pthread_mutex_lock(lk);
	for (struct msg *m = r->buckets[h]; m && !found; m = m->res_next)
		found = memcmp(m->id.b, id->b, QUEUE_ID_LEN) == 0;
	pthread_mutex_unlock(lk);
	return found;
}

uint64_t resident_bytes(const struct resident *r)
{
	return atomic_load(&r->bytes);
}

uint64_t resident_count(const struct resident *r)
{
	return atomic_load(&r->count);
}
