/* tls — one TLS connection over memory buffers: create, feed, handshake, read, write, close.
 *
 * Why this shape: the caller's event loop owns the socket; wolfSSL's I/O callbacks (tls_ctx.c)
 * read from the input buffer the caller feeds and append to the output buffer the caller
 * drains, so "want read" means "feed me" and "want write" cannot happen. After any fatal
 * error the connection is dead: later calls return -EPROTO with the first error kept.
 * The client stores its session for resumption once it is resumable: right after a TLS 1.2
 * handshake, and for TLS 1.3 when a NewSessionTicket has arrived (wolfSSL processes those
 * inside wolfSSL_read, so every tls_read checks).
 */
#include "tls/tls_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_ip_literal(const char *h)
{
	unsigned char a[16];

	return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

/* A new NewSessionTicket was processed: store the session after this call returns. */
static int ticket_cb(WOLFSSL *ssl, const unsigned char *ticket, int len, void *arg)
{
	struct tls *t = arg;

	(void)ssl;
	(void)ticket;
	(void)len;
	t->ticket_new = true;
	return 0;
}

/* client_setup: host name check, SNI, ticket callback and a cached session for t. */
static int client_setup(struct tls *t)
{
	if (t->host && !t->host_is_ip) {
		if (wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, t->host,
				   (unsigned short)strlen(t->host)) != WOLFSSL_SUCCESS)
			return -EPROTO;
		if (wolfSSL_check_domain_name(t->ssl, t->host) != WOLFSSL_SUCCESS)
			return -EPROTO;
	}
	if (t->c->cache.max == 0 || !t->cache_key)
		return 0;
	if (wolfSSL_UseSessionTicket(t->ssl) != WOLFSSL_SUCCESS)
		return -EPROTO;
	wolfSSL_set_SessionTicket_cb(t->ssl, ticket_cb, t);
	t->resumed_cached = tls_scache_offer(&t->c->cache, t);
	return 0;
}

/* tls_new: see tls.h. */
int tls_new(struct tls_ctx *c, const char *host, const char *cache_key, struct tls **out)
{
	struct tls *t = calloc(1, sizeof(*t));
	int rc = -ENOMEM;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->c = c;
	if (!c->server && host && host[0]) {
		t->host = strdup(host);
		if (!t->host)
			goto fail;
		t->host_is_ip = is_ip_literal(host);
	}
	if (!c->server && cache_key && !(t->cache_key = strdup(cache_key)))
		goto fail;
	t->ssl = wolfSSL_new(c->wc);
	if (!t->ssl)
		goto fail;
	wolfSSL_SetIOReadCtx(t->ssl, t);
	wolfSSL_SetIOWriteCtx(t->ssl, t);
	rc = c->server ? 0 : client_setup(t);
	if (rc < 0)
		goto fail;
	*out = t;
	return 0;
fail:
	tls_free(t);
	return rc;
}

/* tls_free: see tls.h. */
void tls_free(struct tls *t)
{
	if (!t)
		return;
	if (t->ssl)
		wolfSSL_free(t->ssl);
	tls_buf_free(&t->in);
	tls_buf_free(&t->out);
	free(t->host);
	free(t->cache_key);
	free(t);
}

/* tls_feed: see tls.h. */
int tls_feed(struct tls *t, const void *p, size_t n)
{
	size_t k = sizeof(t->first) - t->nfirst;

	k = k < n ? k : n;
	memcpy(t->first + t->nfirst, p, k);
	t->nfirst += k;
	return tls_buf_add(&t->in, p, n);
}

/* maybe_store: put the client's session in the cache once it is resumable: after a TLS 1.2
 * handshake (its ticket or session ID came inside it), and in TLS 1.3 whenever a ticket came. */
static void maybe_store(struct tls *t)
{
	char why[96];
	bool v;

	if (t->c->server || t->c->cache.max == 0 || !t->cache_key || !t->done)
		return;
	if (wolfSSL_version(t->ssl) < TLS1_3_VERSION ? t->saved : !t->ticket_new)
		return;
	v = tls_verified(t, why, sizeof(why));
	tls_scache_store(&t->c->cache, t, v, why);
	t->saved = true;
	t->ticket_new = false;
}

/* tls_handshake: see tls.h. */
int tls_handshake(struct tls *t)
{
	int ret;

	if (t->failed)
		return -EPROTO;
	if (t->done)
		return 0;
	tls_thread_note();
	ret = wolfSSL_negotiate(t->ssl);
	if (ret == WOLFSSL_SUCCESS) {
		t->done = true;
		maybe_store(t);
		return 0;
	}
	ret = wolfSSL_get_error(t->ssl, ret);
	if (ret == WOLFSSL_ERROR_WANT_READ)
		return -EAGAIN;
	return tls_fail(t, ret, "handshake failed");
}

/* tls_write: see tls.h. */
long tls_write(struct tls *t, const void *p, size_t n)
{
	int ret, chunk = n > TLS_WRITE_CHUNK ? TLS_WRITE_CHUNK : (int)n;

	if (t->failed)
		return -EPROTO;
	if (!t->done) {
		snprintf(t->err, sizeof(t->err), "write before the handshake completed");
		return -EPROTO;
	}
	if (n == 0)
		return 0;
	ret = wolfSSL_write(t->ssl, p, chunk);
	if (ret > 0)
		return ret;
	ret = wolfSSL_get_error(t->ssl, ret);
	if (ret == WOLFSSL_ERROR_WANT_WRITE || ret == MEMORY_E)
		t->oom = true; /* our send callback cannot say "would block" */
	return tls_fail(t, ret, "write failed");
}

/* tls_read: see tls.h. */
long tls_read(struct tls *t, void *buf, size_t cap)
{
	int ret, want = cap > INT32_MAX ? INT32_MAX : (int)cap;

	if (t->failed)
		return -EPROTO;
	if (!t->done) {
		snprintf(t->err, sizeof(t->err), "read before the handshake completed");
		return -EPROTO;
	}
	if (cap == 0)
		return 0;
	ret = wolfSSL_read(t->ssl, buf, want);
	maybe_store(t);
	if (ret > 0)
		return ret;
	ret = wolfSSL_get_error(t->ssl, ret);
	if (ret == WOLFSSL_ERROR_WANT_READ)
		return -EAGAIN;
	if (ret == WOLFSSL_ERROR_ZERO_RETURN) {
		snprintf(t->err, sizeof(t->err), "the peer closed the TLS session (close_notify)");
		return -EPIPE;
	}
	return tls_fail(t, ret, "read failed");
}

/* tls_out: see tls.h. */
const void *tls_out(const struct tls *t, size_t *len)
{
	*len = t->out.len - t->out.off;
	return *len ? t->out.p + t->out.off : NULL;
}

/* tls_out_consume: see tls.h. */
void tls_out_consume(struct tls *t, size_t n)
{
	tls_buf_drop(&t->out, n);
}

/* tls_in_pending: see tls.h. */
size_t tls_in_pending(const struct tls *t)
{
	return t->in.len - t->in.off;
}

/* tls_shutdown: see tls.h. The alert is queued once; wolfSSL reports "sent, peer's not yet
 * here" as SHUTDOWN_NOT_DONE or WANT_READ, both fine: we do not wait for the peer's reply. */
int tls_shutdown(struct tls *t)
{
	int ret;

	if (t->failed)
		return -EPROTO;
	ret = wolfSSL_shutdown(t->ssl);
	if (ret == WOLFSSL_SUCCESS || ret == WOLFSSL_SHUTDOWN_NOT_DONE)
		return 0;
	ret = wolfSSL_get_error(t->ssl, ret);
	if (ret == WOLFSSL_ERROR_WANT_READ || ret == WOLFSSL_ERROR_ZERO_RETURN)
		return 0;
	return tls_fail(t, ret, "shutdown failed");
}

/* tls_error: see tls.h. */
const char *tls_error(const struct tls *t)
{
	return t->err;
}

/* tls_handshake_done: see tls.h. */
bool tls_handshake_done(const struct tls *t)
{
	return t->done;
}
