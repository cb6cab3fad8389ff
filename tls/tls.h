/* tls — TLS for riptide's SMTP sessions: wolfSSL driven over memory buffers, never a socket.
 *
 * Why: the shards' io_uring loops own every socket and must never block. So this module only
 * transforms bytes: the caller feeds it the ciphertext that io_uring received (tls_feed), takes
 * the ciphertext it produced (tls_out / tls_out_consume) and sends it, and reads/writes
 * plaintext (tls_read / tls_write). wolfSSL's custom I/O callbacks point at those two buffers;
 * "would block" simply means "feed me more" or "send what I produced". The engine's transport
 * (engine/xport) does the io_uring side; this module never includes engine/ headers.
 *
 * Objects:
 *   struct tls_ctx  shared settings (a wolfSSL_CTX): client or server side, CA bundle, cert/key,
 *                   and on the client side a cache of sessions per "host:port" for resumption.
 *                   Thread-safe after creation: many shards create connections from one ctx.
 *   struct tls      one connection. Single-threaded: used by one loop thread only.
 *
 * Return convention: 0 or a positive count on success; negative errno on failure:
 *   -EAGAIN  needs more ciphertext input (after sending what tls_out holds)
 *   -EPROTO  TLS failure (handshake, alert, bad record, verification): tls_error() says why
 *   -EPIPE   the peer sent close_notify (no more plaintext will come)
 *   -ENOMEM  allocation failure
 */
#ifndef RIPTIDE_TLS_H
#define RIPTIDE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tls_ctx;
struct tls;

/* Certificate verification on the client side. */
enum tls_verify {
	TLS_VERIFY_NONE = 0, /* encrypt, accept any certificate (its result is still reported) */
	TLS_VERIFY_CA = 1, /* chain to the CA bundle + host name match, else the handshake fails */
};

struct tls_client_opts {
	enum tls_verify verify;
	const char *ca_file;	/* PEM bundle; NULL or "" = the system's default CA store */
	unsigned session_cache; /* sessions kept for resumption (per host:port), 0 = none */
};

struct tls_server_opts {
	const char *cert_file; /* PEM certificate chain (leaf first) */
	const char *key_file;  /* PEM private key matching it */
};

/* tls_init: initialise the library once per process (idempotent, thread-safe). Returns 0 or
 * -EPROTO. tls_ctx_*_new call it themselves. */
int tls_init(void);

/* tls_ctx_client_new / tls_ctx_server_new: create a shared context. On failure *out is NULL
 * and err (errlen bytes) says why in one line naming the file ("cannot load CA file
 * /x.pem: ..."); returns 0, -ENOENT/-EACCES (a file cannot be read), -EPROTO (a file is not
 * valid PEM, the key does not match the certificate) or -ENOMEM. Strings are copied. */
int tls_ctx_client_new(const struct tls_client_opts *o, struct tls_ctx **out, char *err,
		       size_t errlen);
int tls_ctx_server_new(const struct tls_server_opts *o, struct tls_ctx **out, char *err,
		       size_t errlen);

/* tls_ctx_free: free a context; every struct tls made from it must be freed first. NULL ok. */
void tls_ctx_free(struct tls_ctx *c);

/* tls_new: a connection on context c. On a client context, host (copied) is the name sent as
 * SNI and checked against the certificate when verify is CA (NULL or an IP literal: no SNI,
 * and with TLS_VERIFY_CA the certificate must name that IP); cache_key (copied, e.g.
 * "mx.example.com:25"; NULL = no resumption) selects the cached session to resume and where
 * the new one is stored. On a server context host and cache_key are ignored.
 * Returns 0 and *out, or -ENOMEM/-EPROTO. Nothing is sent until tls_handshake. */
int tls_new(struct tls_ctx *c, const char *host, const char *cache_key, struct tls **out);

/* tls_free: free a connection (no close_notify is produced: call tls_shutdown first for a
 * clean close). NULL ok. */
void tls_free(struct tls *t);

/* tls_feed: append n bytes of received ciphertext to the input buffer (copied). Returns 0 or
 * -ENOMEM. */
int tls_feed(struct tls *t, const void *p, size_t n);

/* tls_handshake: advance the handshake with the input fed so far. Returns 0 once it is
 * complete (call again after that: still 0), -EAGAIN when more input is needed (first send
 * what tls_out holds), or -EPROTO (tls_error says why, e.g. "certificate verify failed:
 * host name mismatch"). Ciphertext to send (incl. a fatal alert) is left in tls_out. */
int tls_handshake(struct tls *t);

/* tls_write: encrypt up to n plaintext bytes into the output buffer. Returns the number of
 * bytes consumed (> 0; it may be less than n: records are bounded, call again), or -EPROTO /
 * -ENOMEM. Only after the handshake completed. */
long tls_write(struct tls *t, const void *p, size_t n);

/* tls_read: decrypt into buf (cap bytes) from the input fed so far. Returns the number of
 * plaintext bytes (> 0), -EAGAIN when no complete record is buffered, -EPIPE after the
 * peer's close_notify, or -EPROTO. Handshake messages after the handshake (TLS 1.3 session
 * tickets, key updates) are handled inside; their replies, if any, land in tls_out. */
long tls_read(struct tls *t, void *buf, size_t cap);

/* tls_out: the ciphertext produced and not yet consumed (*len bytes; NULL when none). Valid
 * until the next call on t. tls_out_consume: drop the first n bytes (they were sent). */
const void *tls_out(const struct tls *t, size_t *len);
void tls_out_consume(struct tls *t, size_t n);

/* tls_in_pending: ciphertext bytes fed and not yet used by wolfSSL (a peer that sent data
 * right behind its handshake leaves some here). */
size_t tls_in_pending(const struct tls *t);

/* tls_shutdown: queue a close_notify alert in the output buffer. Returns 0 or -EPROTO. */
int tls_shutdown(struct tls *t);

/* tls_error: the last failure in one line ("" if none); valid until the next call on t. */
const char *tls_error(const struct tls *t);

/* What the handshake negotiated and what the peer's certificate says (for log lines,
 * riptidectl test-route and the Received: header). Strings are NUL-terminated, "" when
 * unknown. verified: the chain checked out against the CA store and (client side) the name
 * matched, whether or not verification was required. */
struct tls_info {
	char version[16];      /* "TLSv1.3" */
	char cipher[64];       /* "TLS_AES_256_GCM_SHA384" */
	bool verified;	       /* see above */
	char verify_error[96]; /* why not verified ("" if verified) */
	bool resumed;	       /* an abbreviated handshake (session resumption) */
	char subject[256];     /* peer certificate subject, one line ("CN=mx.example.com, O=...") */
	char issuer[256];      /* its issuer, same form */
	char not_before[32];   /* validity, "2026-11-30 12:00:00 UTC" */
	char not_after[32];
};

/* tls_get_info: fill i after a completed handshake (peer fields empty when the peer sent no
 * certificate, as a server's client usually does). */
void tls_get_info(const struct tls *t, struct tls_info *i);

/* tls_handshake_done: whether the handshake has completed. */
bool tls_handshake_done(const struct tls *t);

#endif
