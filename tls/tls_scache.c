/* tls_scache — the client's session cache for resumption: cache_key -> a copy of the last
 * resumable session, with what its full handshake found (verified or why not).
 *
 * Why our own cache: wolfSSL's client cache is process-wide and keyed by nothing we choose;
 * riptide wants "resume toward this host:port", bounded, shared by every shard using one
 * client context. Entries hold private copies (wolfSSL_SESSION_dup), never a session still
 * attached to a live connection, so the mutex alone protects them: wolfSSL_set_session copies
 * the cached session into the new connection while the lock is held. A session is resumed
 * only for the host it was made for, and the verification verdict travels with it: an
 * abbreviated handshake shows no certificate, so its result is the full handshake's.
 */
#include "tls/tls_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* tls_scache_init: an empty cache holding at most max sessions (0 = disabled). Returns 0 or
 * -ENOMEM. */
int tls_scache_init(struct tls_scache *sc, unsigned max)
{
	size_t nb = 8;

	memset(sc, 0, sizeof(*sc));
	if (max == 0)
		return 0;
	while (nb < max && nb < (1u << 20))
		nb *= 2;
	sc->tab = calloc(nb, sizeof(*sc->tab));
	if (!sc->tab)
		return -ENOMEM;
	sc->nbuckets = nb;
	sc->max = max;
	pthread_mutex_init(&sc->mu, NULL);
	return 0;
}

static size_t key_hash(const struct tls_scache *sc, const char *k)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *k; k++)
		h = (h ^ (uint8_t)*k) * 1099511628211ull;
	return (size_t)h & (sc->nbuckets - 1);
}

static void sess_free(struct tls_sess *e)
{
	wolfSSL_SESSION_free(e->s);
	free(e->key);
	free(e->host);
	free(e);
}

/* Unlink e from the LRU list (caller holds the lock). */
static void lru_unlink(struct tls_scache *sc, struct tls_sess *e)
{
	if (e->lprev)
		e->lprev->lnext = e->lnext;
	else
		sc->head = e->lnext;
	if (e->lnext)
		e->lnext->lprev = e->lprev;
	else
		sc->tail = e->lprev;
}

/* Unlink e from its hash chain and from the LRU list (caller holds the lock). */
static void sess_unlink(struct tls_scache *sc, struct tls_sess *e)
{
	struct tls_sess **pp = &sc->tab[key_hash(sc, e->key)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(sc, e);
	sc->n--;
}

/* Put e at the head of the LRU list (caller holds the lock; e is not in the list). */
static void lru_push(struct tls_scache *sc, struct tls_sess *e)
{
	e->lprev = NULL;
	e->lnext = sc->head;
	if (sc->head)
		sc->head->lprev = e;
	sc->head = e;
	if (!sc->tail)
		sc->tail = e;
}

static struct tls_sess *sess_find(struct tls_scache *sc, const char *key)
{
	struct tls_sess *e = sc->tab[key_hash(sc, key)];

	while (e && strcmp(e->key, key) != 0)
		e = e->hnext;
	return e;
}

/* tls_scache_fini: free every entry and the table. */
void tls_scache_fini(struct tls_scache *sc)
{
	if (sc->max == 0)
		return;
	while (sc->head) {
		struct tls_sess *e = sc->head;
		sess_unlink(sc, e);
		sess_free(e);
	}
	free(sc->tab);
	pthread_mutex_destroy(&sc->mu);
	memset(sc, 0, sizeof(*sc));
}

/* tls_scache_offer: when a session is cached under t->cache_key for t->host, give a copy to
 * t's WOLFSSL (wolfSSL_set_session) and note its verification verdict in t. Returns whether
 * a session was offered (the server may still decline it). */
bool tls_scache_offer(struct tls_scache *sc, struct tls *t)
{
	bool offered = false;

	if (sc->max == 0 || !t->cache_key)
		return false;
	pthread_mutex_lock(&sc->mu);
	struct tls_sess *e = sess_find(sc, t->cache_key);
	bool same_host =
	    e && (e->host && t->host ? strcasecmp(e->host, t->host) == 0 : e->host == t->host);
	if (same_host && wolfSSL_set_session(t->ssl, e->s) == WOLFSSL_SUCCESS) {
		offered = true;
		t->cached_verified = e->verified;
		memcpy(t->cached_verify_error, e->verify_error, sizeof(e->verify_error));
		lru_unlink(sc, e);
		lru_push(sc, e);
	}
	pthread_mutex_unlock(&sc->mu);
	return offered;
}

/* sess_new: an entry for t's current session (a private copy), or NULL. */
static struct tls_sess *sess_new(struct tls *t, bool verified, const char *verr)
{
	struct tls_sess *e = calloc(1, sizeof(*e));
	WOLFSSL_SESSION *s = wolfSSL_get1_session(t->ssl);

	if (!e || !s)
		goto fail;
	e->s = wolfSSL_SESSION_dup(s);
	e->key = strdup(t->cache_key);
	e->host = t->host ? strdup(t->host) : NULL;
	if (!e->s || !e->key || (t->host && !e->host))
		goto fail;
	wolfSSL_SESSION_free(s);
	e->verified = verified;
	snprintf(e->verify_error, sizeof(e->verify_error), "%s", verr);
	return e;
fail:
	if (s)
		wolfSSL_SESSION_free(s);
	if (e) {
		wolfSSL_SESSION_free(e->s);
		free(e->key);
		free(e->host);
		free(e);
	}
	return NULL;
}

/* tls_scache_store: remember t's session under t->cache_key (replacing the previous one),
 * evicting the least recently used entry when full. Silently does nothing when the cache is
 * off, t has no cache_key, or memory runs out (resumption is an optimisation). */
void tls_scache_store(struct tls_scache *sc, struct tls *t, bool verified, const char *verr)
{
	struct tls_sess *e, *old;

	if (sc->max == 0 || !t->cache_key)
		return;
	e = sess_new(t, verified, verr);
	if (!e)
		return;
	pthread_mutex_lock(&sc->mu);
	old = sess_find(sc, e->key);
	if (old) {
		sess_unlink(sc, old);
		sess_free(old);
	}
	while (sc->n >= sc->max && sc->tail) {
		old = sc->tail;
		sess_unlink(sc, old);
		sess_free(old);
	}
	size_t b = key_hash(sc, e->key);
	e->hnext = sc->tab[b];
	sc->tab[b] = e;
	lru_push(sc, e);
	sc->n++;
	pthread_mutex_unlock(&sc->mu);
}
