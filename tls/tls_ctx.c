/* tls_ctx — the shared contexts: wolfSSL initialisation, client and server WOLFSSL_CTX set-up
 * (protocol floor, CA store, certificate and key), and the memory I/O callbacks.
 *
 * Why here: everything that reads files or configures wolfSSL once per configuration lives in
 * one place, so the per-connection code (tls.c) only moves bytes. Both sides use the
 * version-flexible method with TLS 1.2 as the floor (TLS 1.3 preferred). The client always
 * verifies through tls_verify_cb, which records the verdict and, with TLS_VERIFY_NONE,
 * accepts anyway: the result is reported either way. File errors are checked before wolfSSL
 * sees the file so the caller gets -ENOENT/-EACCES and the path rather than a parse error.
 */
#include "tls/tls_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/wolfcrypt/ecc.h>

#define TLS_SYS_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_init_rc;
static pthread_key_t tls_thread_key;

/* At the exit of a thread that used wolfSSL: free its thread-local state (the fixed-point ECC
 * cache, up to ~12 MB per thread in Debian's build, and the error queue), which wolfSSL
 * would otherwise leak. */
static void tls_thread_exit(void *unused)
{
	(void)unused;
	wc_ecc_fp_free();
	wolfSSL_ERR_clear_error();
}

static void tls_init_once(void)
{
	tls_init_rc = wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -EPROTO;
	if (tls_init_rc == 0 && pthread_key_create(&tls_thread_key, tls_thread_exit) != 0)
		tls_init_rc = -EPROTO;
}

/* tls_thread_note: make sure the calling thread's wolfSSL state is freed when it exits (cheap
 * after the first call on a thread). */
void tls_thread_note(void)
{
	static _Thread_local bool noted;

	if (noted)
		return;
	noted = true;
	pthread_setspecific(tls_thread_key, &noted);
}

/* tls_init: see tls.h. */
int tls_init(void)
{
	pthread_once(&tls_once, tls_init_once);
	return tls_init_rc;
}

/* tls_errf: format one line into err (errlen may be 0). */
void tls_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* tls_io_recv: wolfSSL's read callback: drain the connection's input buffer. */
int tls_io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct tls *t = arg;
	size_t n;

	(void)ssl;
	if (sz <= 0)
		return 0;
	n = tls_buf_take(&t->in, buf, (size_t)sz);
	return n ? (int)n : WOLFSSL_CBIO_ERR_WANT_READ;
}

/* tls_io_send: wolfSSL's write callback: append to the output buffer (never would-block). */
int tls_io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct tls *t = arg;

	(void)ssl;
	if (sz <= 0)
		return 0;
	if (tls_buf_add(&t->out, buf, (size_t)sz) < 0) {
		t->oom = true;
		return WOLFSSL_CBIO_ERR_GENERAL;
	}
	return sz;
}

/* Last wolfSSL error of this thread as text ("unknown error" when the queue is empty). */
static const char *wolf_err(char *buf, size_t len)
{
	unsigned long e = wolfSSL_ERR_get_error();

	if (e == 0)
		return "unknown error";
	wolfSSL_ERR_error_string_n(e, buf, len);
	return buf;
}

/* file_check: -ENOENT/-EACCES (and err naming what and path) when path cannot be read. */
static int file_check(const char *what, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	int e = errno;
	tls_errf(err, errlen, "cannot load %s %s: %s", what, path, strerror(e));
	return e == EACCES || e == EPERM ? -EACCES : -ENOENT;
}

/* ctx_alloc: a tls_ctx around a new WOLFSSL_CTX (TLS 1.2 floor, memory I/O). */
/* AEAD suites only, ChaCha20-Poly1305 first: Debian's wolfSSL is built without AES-NI, and its
 * software AES-GCM costs several times ChaCha20's per byte (bench_tls). A server takes its own
 * order; a client offers this order (peers with AES-NI may still pick AES-GCM). */
static const char tls_cipher_list[] =
    "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

/* Apply tls_cipher_list (and server preference on a server); a library that refuses the list
 * keeps its defaults. */
static void ctx_ciphers(struct tls_ctx *c)
{
	if (wolfSSL_CTX_set_cipher_list(c->wc, tls_cipher_list) != WOLFSSL_SUCCESS)
		return;
	if (c->server)
		wolfSSL_CTX_set_options(c->wc, WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);
}

static int ctx_alloc(bool server, struct tls_ctx **out, char *err, size_t errlen)
{
	struct tls_ctx *c;

	*out = NULL;
	if (tls_init() < 0) {
		tls_errf(err, errlen, "cannot initialise wolfSSL");
		return -EPROTO;
	}
	tls_thread_note();
	c = calloc(1, sizeof(*c));
	if (!c)
		goto nomem;
	c->server = server;
	c->wc = wolfSSL_CTX_new(server ? wolfSSLv23_server_method() : wolfSSLv23_client_method());
	if (!c->wc)
		goto nomem;
	if (wolfSSL_CTX_SetMinVersion(c->wc, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
		tls_errf(err, errlen, "cannot set TLS 1.2 as the minimum version");
		tls_ctx_free(c);
		return -EPROTO;
	}
	wolfSSL_CTX_SetIORecv(c->wc, tls_io_recv);
	wolfSSL_CTX_SetIOSend(c->wc, tls_io_send);
	ctx_ciphers(c);
	*out = c;
	return 0;
nomem:
	tls_errf(err, errlen, "out of memory");
	tls_ctx_free(c);
	return -ENOMEM;
}

/* load_ca: the CA bundle from o->ca_file, else the system store (the Debian bundle file as a
 * fallback). A missing system store is an error only when verification is required. */
static int load_ca(struct tls_ctx *c, const struct tls_client_opts *o, char *err, size_t errlen)
{
	char wb[128];
	int rc;

	wolfSSL_ERR_clear_error();
	if (o->ca_file && o->ca_file[0]) {
		rc = file_check("CA file", o->ca_file, err, errlen);
		if (rc < 0)
			return rc;
		if (wolfSSL_CTX_load_verify_locations(c->wc, o->ca_file, NULL) == WOLFSSL_SUCCESS)
			return 0;
		tls_errf(err, errlen, "cannot load CA file %s: %s", o->ca_file,
			 wolf_err(wb, sizeof(wb)));
		return -EPROTO;
	}
	if (wolfSSL_CTX_load_system_CA_certs(c->wc) == WOLFSSL_SUCCESS)
		return 0;
	if (wolfSSL_CTX_load_verify_locations_ex(c->wc, TLS_SYS_CA_BUNDLE, NULL,
						 WOLFSSL_LOAD_FLAG_IGNORE_ERR) == WOLFSSL_SUCCESS)
		return 0;
	wolfSSL_ERR_clear_error();
	if (o->verify == TLS_VERIFY_NONE)
		return 0;
	tls_errf(err, errlen, "cannot load the system CA store (nor %s)", TLS_SYS_CA_BUNDLE);
	return -ENOENT;
}

/* tls_ctx_client_new: see tls.h. */
int tls_ctx_client_new(const struct tls_client_opts *o, struct tls_ctx **out, char *err,
		       size_t errlen)
{
	struct tls_ctx *c;
	int rc;

	*out = NULL;
	rc = ctx_alloc(false, &c, err, errlen);

	if (rc < 0)
		return rc;
	c->verify = o->verify;
	rc = load_ca(c, o, err, errlen);
	if (rc == 0 && tls_scache_init(&c->cache, o->session_cache) < 0) {
		tls_errf(err, errlen, "out of memory");
		rc = -ENOMEM;
	}
	if (rc < 0) {
		tls_ctx_free(c);
		return rc;
	}
	wolfSSL_CTX_set_verify(c->wc, WOLFSSL_VERIFY_PEER, tls_verify_cb);
	*out = c;
	return 0;
}

/* move: carry what a produced into b's input. Returns 0 or -ENOMEM. */
static int move(struct tls *a, struct tls *b)
{
	size_t n = a->out.len - a->out.off;
	int rc;

	if (n == 0)
		return 0;
	rc = tls_buf_add(&b->in, a->out.p + a->out.off, n);
	tls_buf_drop(&a->out, n);
	return rc;
}

/* key_selftest: one handshake in memory between server context c and a throwaway client
 * that accepts any certificate. It fails when the key cannot sign for the certificate:
 * wolfSSL 5.5.4's check_private_key does not notice a mismatched EC key. Returns 0,
 * -EPROTO or -ENOMEM. */
static int key_selftest(struct tls_ctx *c)
{
	struct tls_ctx *cc = NULL;
	struct tls *a = NULL, *b = NULL;
	int rc = ctx_alloc(false, &cc, NULL, 0);

	if (rc == 0) {
		wolfSSL_CTX_set_verify(cc->wc, WOLFSSL_VERIFY_NONE, NULL);
		rc = tls_new(cc, NULL, NULL, &a);
	}
	if (rc == 0)
		rc = tls_new(c, NULL, NULL, &b);
	for (int i = 0; rc == 0 && i < 8 && !(a->done && b->done); i++) {
		int ra = tls_handshake(a), rb = tls_handshake(b);
		if (ra == -EPROTO || rb == -EPROTO)
			rc = -EPROTO;
		else if (move(a, b) < 0 || move(b, a) < 0)
			rc = -ENOMEM;
	}
	if (rc == 0 && !(a->done && b->done))
		rc = -EPROTO;
	tls_free(a);
	tls_free(b);
	tls_ctx_free(cc);
	return rc;
}

/* server_finish: the key must match the certificate (wolfSSL's check, then a handshake with
 * ourselves); no client certificates are asked for; session IDs and tickets (wolfSSL's
 * defaults) stay on for clients that resume. */
static int server_finish(struct tls_ctx *c, const char *cert, const char *key, char *err,
			 size_t errlen)
{
	char wb[128];
	int rc;

	if (wolfSSL_CTX_check_private_key(c->wc) != WOLFSSL_SUCCESS) {
		tls_errf(err, errlen, "key %s does not match certificate %s: %s", key, cert,
			 wolf_err(wb, sizeof(wb)));
		return -EPROTO;
	}
	wolfSSL_CTX_set_verify(c->wc, WOLFSSL_VERIFY_NONE, NULL);
	rc = key_selftest(c);
	if (rc == -ENOMEM) {
		tls_errf(err, errlen, "out of memory");
		return rc;
	}
	if (rc < 0) {
		tls_errf(err, errlen, "key %s does not match certificate %s", key, cert);
		return -EPROTO;
	}
	return 0;
}

/* server_load_files: certificate chain and key from PEM files. */
static int server_load_files(struct tls_ctx *c, const struct tls_server_opts *o, char *err,
			     size_t errlen)
{
	char wb[128];
	const char *cert = o->cert_file ? o->cert_file : "";
	const char *key = o->key_file ? o->key_file : "";
	int rc = file_check("certificate", cert, err, errlen);

	if (rc == 0)
		rc = file_check("key", key, err, errlen);
	if (rc < 0)
		return rc;
	wolfSSL_ERR_clear_error();
	if (wolfSSL_CTX_use_certificate_chain_file(c->wc, cert) != WOLFSSL_SUCCESS) {
		tls_errf(err, errlen, "cannot load certificate %s: %s", cert,
			 wolf_err(wb, sizeof(wb)));
		return -EPROTO;
	}
	if (wolfSSL_CTX_use_PrivateKey_file(c->wc, key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
		tls_errf(err, errlen, "cannot load key %s: %s", key, wolf_err(wb, sizeof(wb)));
		return -EPROTO;
	}
	return server_finish(c, cert, key, err, errlen);
}

/* tls_ctx_server_new: see tls.h. */
int tls_ctx_server_new(const struct tls_server_opts *o, struct tls_ctx **out, char *err,
		       size_t errlen)
{
	struct tls_ctx *c;
	int rc;

	*out = NULL;
	rc = ctx_alloc(true, &c, err, errlen);

	if (rc < 0)
		return rc;
	rc = server_load_files(c, o, err, errlen);
	if (rc < 0) {
		tls_ctx_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* tls_ctx_server_new_pem: see tls_int.h. */
int tls_ctx_server_new_pem(const char *cert_pem, const char *key_pem, struct tls_ctx **out,
			   char *err, size_t errlen)
{
	char wb[128];
	struct tls_ctx *c;
	int rc;

	*out = NULL;
	rc = ctx_alloc(true, &c, err, errlen);

	if (rc < 0)
		return rc;
	wolfSSL_ERR_clear_error();
	if (wolfSSL_CTX_use_certificate_chain_buffer(c->wc, (const unsigned char *)cert_pem,
						     (long)strlen(cert_pem)) != WOLFSSL_SUCCESS) {
		tls_errf(err, errlen, "cannot load certificate: %s", wolf_err(wb, sizeof(wb)));
		rc = -EPROTO;
	} else if (wolfSSL_CTX_use_PrivateKey_buffer(c->wc, (const unsigned char *)key_pem,
						     (long)strlen(key_pem),
						     WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
		tls_errf(err, errlen, "cannot load key: %s", wolf_err(wb, sizeof(wb)));
		rc = -EPROTO;
	} else {
		rc = server_finish(c, "(memory)", "(memory)", err, errlen);
	}
	if (rc < 0) {
		tls_ctx_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* tls_ctx_free: see tls.h. */
void tls_ctx_free(struct tls_ctx *c)
{
	if (!c)
		return;
	tls_scache_fini(&c->cache);
	if (c->wc)
		wolfSSL_CTX_free(c->wc);
	free(c);
}
