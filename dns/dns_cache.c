/* dns_cache — the shared record-set cache: sharded hash table, one mutex and one LRU list per
 * shard, refcounted immutable entries.
 *
 * Why: every shard reads the cache on its own thread (no round trip to the resolver), so reads
 * must be short and rarely contended: a name hashes to one of up to 16 shards, a reader holds
 * that shard's mutex only to find the entry and take a reference. Entries are never modified
 * after insertion (a refresh replaces the entry), so a reader keeps using its reference after
 * unlocking. The bound is per shard (max_entries / shards), evicting the least recently used.
 */
#include "dns/dns_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DNS_SHARDS_MAX 16

struct dns_shard {
	pthread_mutex_t mu;
	struct dns_ent **tab;
	size_t nbuckets, n, cap;
	struct dns_ent *lru_head, *lru_tail; /* head: most recently used */
};

struct dns_cache {
	unsigned nshards;
	struct dns_shard sh[DNS_SHARDS_MAX];
	atomic_uint_fast64_t entries, evictions;
};

/* dns_now_ms: CLOCK_MONOTONIC in milliseconds. */
uint64_t dns_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* dns_name_norm: copy IN lower-cased without a trailing dot into OUT. Returns 0, or -EINVAL
 * when empty, too long, or holding bytes no host name has (space, control, '/', '\\'). */
int dns_name_norm(const char *in, char out[256])
{
	size_t n = in ? strlen(in) : 0;
	if (n && in[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (ch <= ' ' || ch == 0x7f || ch == '/' || ch == '\\')
			return -EINVAL;
		out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	out[n] = 0;
	return 0;
}

/* dns_ent_new: an entry with room for N records of TYPE, one reference held by the caller.
 * Returns NULL on allocation failure. */
struct dns_ent *dns_ent_new(uint16_t type, const char *name, uint32_t n)
{
	struct dns_ent *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	size_t sz = type == DNS_T_MX ? sizeof(struct dns_mxrec) : sizeof(struct dns_ip);
	if (n) {
		e->r.mx = calloc(n, sz);
		if (!e->r.mx) {
			free(e);
			return NULL;
		}
	}
	atomic_init(&e->ref, 1);
	e->type = type;
	e->n = n;
	snprintf(e->name, sizeof(e->name), "%s", name);
	return e;
}

/* dns_ent_unref: drop one reference; the last one frees the entry. NULL is a no-op. */
void dns_ent_unref(struct dns_ent *e)
{
	if (!e || atomic_fetch_sub_explicit(&e->ref, 1, memory_order_acq_rel) != 1)
		return;
	free(e->r.mx);
	free(e);
}

static uint64_t key_hash(uint16_t type, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ type; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	h ^= h >> 33; /* murmur3 finaliser: the shard index uses the top bits */
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

/* dns_cache_new: a cache holding at most MAX_ENTRIES entries (>= 1). Returns 0 or -ENOMEM. */
int dns_cache_new(size_t max_entries, struct dns_cache **out)
{
	struct dns_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	unsigned ns = 1;
	while (ns < DNS_SHARDS_MAX && max_entries / (ns * 2) >= 64)
		ns *= 2;
	c->nshards = ns;
	for (unsigned i = 0; i < ns; i++) {
		struct dns_shard *s = &c->sh[i];
		s->cap = max_entries / ns ? max_entries / ns : 1;
		s->nbuckets = 16;
		while (s->nbuckets < s->cap && s->nbuckets < (1u << 20))
			s->nbuckets *= 2;
		s->tab = calloc(s->nbuckets, sizeof(*s->tab));
		pthread_mutex_init(&s->mu, NULL);
		if (!s->tab) {
			c->nshards = i + 1;
			dns_cache_free(c);
			return -ENOMEM;
		}
	}
	*out = c;
	return 0;
}

/* dns_cache_free: drop every entry (readers' references stay valid) and free the cache. */
void dns_cache_free(struct dns_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->nshards; i++) {
		struct dns_shard *s = &c->sh[i];
		for (struct dns_ent *e = s->lru_head, *nx; e; e = nx) {
			nx = e->lnext;
			dns_ent_unref(e);
		}
		free(s->tab);
		pthread_mutex_destroy(&s->mu);
	}
	free(c);
}

static struct dns_shard *shard_of(struct dns_cache *c, uint64_t h)
{
	return &c->sh[(h >> 56) & (c->nshards - 1)];
}

static void lru_unlink(struct dns_shard *s, struct dns_ent *e)
{
	if (e->lprev)
		e->lprev->lnext = e->lnext;
	else
		s->lru_head = e->lnext;
	if (e->lnext)
		e->lnext->lprev = e->lprev;
	else
		s->lru_tail = e->lprev;
	e->lprev = e->lnext = NULL;
}

static void lru_push(struct dns_shard *s, struct dns_ent *e)
{
	e->lprev = NULL;
	e->lnext = s->lru_head;
	if (s->lru_head)
		s->lru_head->lprev = e;
	s->lru_head = e;
	if (!s->lru_tail)
		s->lru_tail = e;
}

/* Unlink E from its bucket and the LRU; the caller owns the cache's reference afterwards. */
static void shard_remove(struct dns_cache *c, struct dns_shard *s, struct dns_ent *e)
{
	struct dns_ent **pp = &s->tab[e->hash & (s->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	e->hnext = NULL;
	lru_unlink(s, e);
	s->n--;
	atomic_fetch_sub_explicit(&c->entries, 1, memory_order_relaxed);
}

static struct dns_ent *shard_find(struct dns_shard *s, uint64_t h, uint16_t type, const char *name)
{
	for (struct dns_ent *e = s->tab[h & (s->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == h && e->type == type && !strcmp(e->name, name))
			return e;
	return NULL;
}

/* dns_cache_get: the live entry for (TYPE, NAME) with a reference for the caller (release with
 * dns_ent_unref), or NULL when absent or expired (an expired entry is dropped). */
struct dns_ent *dns_cache_get(struct dns_cache *c, uint16_t type, const char *name)
{
	uint64_t h = key_hash(type, name), now = dns_now_ms();
	struct dns_shard *s = shard_of(c, h);
	struct dns_ent *dead = NULL;
	pthread_mutex_lock(&s->mu);
	struct dns_ent *e = shard_find(s, h, type, name);
	if (e && e->expires_ms <= now) {
		shard_remove(c, s, e);
		dead = e;
		e = NULL;
	} else if (e) {
		atomic_fetch_add_explicit(&e->ref, 1, memory_order_relaxed);
		lru_unlink(s, e);
		lru_push(s, e);
	}
	pthread_mutex_unlock(&s->mu);
	dns_ent_unref(dead);
	return e;
}

/* dns_cache_put: insert E (the cache takes its own reference), replacing an entry of the same
 * key and evicting the least recently used entries beyond the shard's bound. */
void dns_cache_put(struct dns_cache *c, struct dns_ent *e)
{
	e->hash = key_hash(e->type, e->name);
	struct dns_shard *s = shard_of(c, e->hash);
	struct dns_ent *drop[2] = {NULL, NULL};
	atomic_fetch_add_explicit(&e->ref, 1, memory_order_relaxed);
	pthread_mutex_lock(&s->mu);
	struct dns_ent *old = shard_find(s, e->hash, e->type, e->name);
	if (old) {
		shard_remove(c, s, old);
		drop[0] = old;
	} else if (s->n >= s->cap) {
		drop[1] = s->lru_tail;
		shard_remove(c, s, drop[1]);
		atomic_fetch_add_explicit(&c->evictions, 1, memory_order_relaxed);
	}
	size_t b = e->hash & (s->nbuckets - 1);
	e->hnext = s->tab[b];
	s->tab[b] = e;
	lru_push(s, e);
	s->n++;
	atomic_fetch_add_explicit(&c->entries, 1, memory_order_relaxed);
	pthread_mutex_unlock(&s->mu);
	dns_ent_unref(drop[0]);
	dns_ent_unref(drop[1]);
}

/* dns_cache_stats: entries held now and evictions so far. */
void dns_cache_stats(struct dns_cache *c, uint64_t *entries, uint64_t *evictions)
{
	*entries = atomic_load_explicit(&c->entries, memory_order_relaxed);
	*evictions = atomic_load_explicit(&c->evictions, memory_order_relaxed);
}
