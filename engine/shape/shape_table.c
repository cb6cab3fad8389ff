/* shape_table — the shared table of per-(source, destination) shaping states.
 *
 * Why: every shard that delivers to a destination must see the same limiters and backoff, so
 * states live in one table keyed by "source|destination". A mutex guards only the hash chains
 * (lookup, insert, sweep); the state itself is lock-free. States are refcounted but not freed
 * on the last put: a suspended destination nobody holds must stay suspended, so freeing is a
 * sweep of idle, unreferenced states (also what makes put race-free against get).
 */
#include "engine/shape/shape_int.h"

#include <pthread.h>
#include <string.h>

#include "engine/util/util.h"

struct shape_table {
	pthread_mutex_t mu;
	struct shape_state **b; /* nb chains */
	unsigned nb, n;
};

/* FNV-1a over the key's bytes. */
static uint32_t table_hash(const char *key)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

/* shape_table_new: see shape.h. */
struct shape_table *shape_table_new(void)
{
	struct shape_table *t = util_xcalloc(1, sizeof(*t));

	pthread_mutex_init(&t->mu, NULL);
	t->nb = 64;
	t->b = util_xcalloc(t->nb, sizeof(*t->b));
	return t;
}

/* shape_table_free: see shape.h. */
void shape_table_free(struct shape_table *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->nb; i++) {
		struct shape_state *s = t->b[i], *next;

		for (; s; s = next) {
			next = s->next;
			BUG_ON(atomic_load(&s->refs) != 0);
			free(s);
		}
	}
	pthread_mutex_destroy(&t->mu);
	free(t->b);
	free(t);
}

/* Double the chains when the table holds more states than chains (mutex held). */
static void table_grow(struct shape_table *t)
{
	unsigned nb = t->nb * 2;
	struct shape_state **b = util_xcalloc(nb, sizeof(*b));

	for (unsigned i = 0; i < t->nb; i++) {
		struct shape_state *s = t->b[i], *next;

		for (; s; s = next) {
			next = s->next;
			s->next = b[s->hash & (nb - 1)];
			b[s->hash & (nb - 1)] = s;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

/* shape_table_get: see shape.h. */
struct shape_state *shape_table_get(struct shape_table *t, const char *key)
{
	uint32_t h = table_hash(key);
	size_t len = strlen(key);
	struct shape_state *s;

	pthread_mutex_lock(&t->mu);
	for (s = t->b[h & (t->nb - 1)]; s; s = s->next)
		if (s->hash == h && strcmp(s->key, key) == 0)
			break;
	if (!s) {
		s = util_xcalloc(1, sizeof(*s) + len + 1);
		shape_state_init(s);
		memcpy(s->key, key, len + 1);
		s->hash = h;
		s->next = t->b[h & (t->nb - 1)];
		t->b[h & (t->nb - 1)] = s;
		if (++t->n > t->nb)
			table_grow(t);
	}
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&t->mu);
	return s;
}

/* shape_state_put: see shape.h. The release pairs with the sweep's acquire: whatever the
 * holder wrote is visible before the state can be freed. */
void shape_state_put(struct shape_state *s)
{
	unsigned old = atomic_fetch_sub_explicit(&s->refs, 1, memory_order_release);

	BUG_ON(old == 0);
}

/* shape_state_key: see shape.h. */
const char *shape_state_key(const struct shape_state *s)
{
	return s->key;
}

/* shape_table_sweep: see shape.h. refs only grows under the mutex, so 0 seen here stays 0. */
unsigned shape_table_sweep(struct shape_table *t, uint64_t now_ms)
{
	unsigned freed = 0;

	pthread_mutex_lock(&t->mu);
	for (unsigned i = 0; i < t->nb; i++) {
		struct shape_state **pp = &t->b[i];

		while (*pp) {
			struct shape_state *s = *pp;

			if (atomic_load_explicit(&s->refs, memory_order_acquire) == 0 &&
			    shape_idle(s, now_ms)) {
				*pp = s->next;
				free(s);
				freed++;
			} else {
				pp = &s->next;
			}
		}
	}
	t->n -= freed;
	pthread_mutex_unlock(&t->mu);
	return freed;
}

/* shape_table_count: see shape.h. */
unsigned shape_table_count(struct shape_table *t)
{
	unsigned n;

	pthread_mutex_lock(&t->mu);
	n = t->n;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* shape_table_each: see shape.h. */
void shape_table_each(struct shape_table *t, void (*fn)(struct shape_state *s, void *arg),
		      void *arg)
{
	pthread_mutex_lock(&t->mu);
	for (unsigned i = 0; i < t->nb; i++)
		for (struct shape_state *s = t->b[i]; s; s = s->next)
			fn(s, arg);
	pthread_mutex_unlock(&t->mu);
}
