/* tls_int.h — what the files of tls/ share: the context and connection structs, the byte
 * buffers behind wolfSSL's I/O callbacks, the client session cache, and a few internal entry
 * points that tests and the fuzz harness use (loading a server certificate from memory).
 *
 * Why a separate header: tls.h stays the one public contract (opaque handles only); wolfSSL's
 * headers are included here and nowhere in tls.h, so callers never see them.
 */
#ifndef RIPTIDE_TLS_INT_H
#define RIPTIDE_TLS_INT_H

#include "tls/tls.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* wolfSSL's build options must come before any other wolfSSL header. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/* Plaintext bytes encrypted per tls_write call: one full TLS record, so each call grows the
 * output buffer by at most one record and its overhead. */
#define TLS_WRITE_CHUNK 16384
/* An emptied buffer above this capacity gives its memory back (a 1 MB burst does not stay
 * allocated for the life of an idle session). */
#define TLS_BUF_KEEP 65536

/* A byte queue: data is p[off .. len). */
struct tls_buf {
	uint8_t *p;
	size_t off, len, cap;
};

/* One cached client session (an entry of the LRU and of one hash chain). */
struct tls_sess {
	char *key;	       /* cache_key */
	char *host;	       /* the host it was made for: resumed only for the same host */
	WOLFSSL_SESSION *s;    /* our own copy (wolfSSL_SESSION_dup), never shared with a WOLFSSL */
	bool verified;	       /* what the full handshake found, reported again on resumption */
	char verify_error[96]; /* idem */
	struct tls_sess *hnext;		/* hash chain */
	struct tls_sess *lprev, *lnext; /* LRU list: head is the most recently used */
};

/* The client session cache: bounded LRU keyed by cache_key, one mutex (shards share a ctx). */
struct tls_scache {
	pthread_mutex_t mu;
	unsigned max, n;
	size_t nbuckets; /* power of two */
	struct tls_sess **tab;
	struct tls_sess *head, *tail;
};

struct tls_ctx {
	WOLFSSL_CTX *wc;
	bool server;
	enum tls_verify verify;
	struct tls_scache cache; /* client side, max 0 = off */
};

struct tls {
	struct tls_ctx *c;
	WOLFSSL *ssl;
	struct tls_buf in, out;
	char *host;	 /* client: SNI / name check / cache check (NULL: none) */
	char *cache_key; /* client: NULL = no resumption */
	bool host_is_ip;
	bool done;	      /* handshake complete */
	bool failed;	      /* a fatal error happened: everything after returns -EPROTO */
	bool oom;	      /* the output buffer could not grow (the failure is -ENOMEM) */
	bool resumed_cached;  /* tls_new offered a cached session */
	bool cached_verified; /* ...and what that session's full handshake found */
	char cached_verify_error[96];
	bool ticket_new; /* a session ticket arrived since the session was last stored */
	bool saved;	 /* the session of this connection is in the cache */
	/* certificate verification, recorded by the verify callback */
	bool vfail;
	int vdepth;
	char verr[96];
	char err[256];		 /* tls_error */
	unsigned char first[24]; /* the first bytes fed: a failed handshake shows plaintext */
	size_t nfirst;
};

/* tls_buf.c */
int tls_buf_add(struct tls_buf *b, const void *p, size_t n);
size_t tls_buf_take(struct tls_buf *b, void *dst, size_t n);
void tls_buf_drop(struct tls_buf *b, size_t n);
void tls_buf_free(struct tls_buf *b);

/* tls_ctx.c */
int tls_io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg);
int tls_io_send(WOLFSSL *ssl, char *buf, int sz, void *arg);
void tls_thread_note(void);
void tls_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* tls_ctx_server_new_pem: like tls_ctx_server_new, from PEM text in memory (cert chain, leaf
 * first, and key; NUL-terminated). For the fuzz harness and tests. Returns 0, -EPROTO or
 * -ENOMEM; on failure *out is NULL and err says why. */
int tls_ctx_server_new_pem(const char *cert_pem, const char *key_pem, struct tls_ctx **out,
			   char *err, size_t errlen);

/* tls_scache.c */
int tls_scache_init(struct tls_scache *sc, unsigned max);
void tls_scache_fini(struct tls_scache *sc);
bool tls_scache_offer(struct tls_scache *sc, struct tls *t);
void tls_scache_store(struct tls_scache *sc, struct tls *t, bool verified, const char *verr);

/* tls_info.c */
int tls_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store);
int tls_fail(struct tls *t, int ret, const char *what);
bool tls_verified(const struct tls *t, char *why, size_t whylen);

/* tls_sni: the server name a client sent (server side), "" when none or on a client. The
 * string is the calling thread's, valid until its next tls_sni call. For tests and logs. */
const char *tls_sni(const struct tls *t);

#endif
