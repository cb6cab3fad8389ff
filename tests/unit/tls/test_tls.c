/* test_tls — tls/ as a transport: a client and a server struct tls talking through memory.
 *
 * Why: the SMTP sessions will feed tls/ whatever io_uring read, cut anywhere, and send what it
 * produced, so the byte paths must hold for every cut: 1 MB each way with partial writes and
 * tiny read buffers, a handshake fed one byte at a time, data pipelined behind the handshake,
 * close_notify, garbage from a hostile peer, and the context constructors' file errors.
 * Certificates come from tests/integration/mkcerts.sh (argv[1]) run into a temp dir.
 */
#include "tests/unit/tls/tls_fx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

static const char *mkcerts;
static struct tls_ctx *srv, *cli;

static int group_setup(void **state)
{
	if (fx_setup(mkcerts) < 0)
		return -1;
	srv = fx_server("server.pem", "server.key");
	cli = fx_client(TLS_VERIFY_CA, "ca.pem", 0);
	return srv && cli ? 0 : -1;
}

static int group_teardown(void **state)
{
	tls_ctx_free(cli);
	tls_ctx_free(srv);
	fx_teardown();
	return 0;
}

static unsigned char *random_bytes(size_t n, unsigned seed)
{
	unsigned char *p = malloc(n);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
	return p;
}

/* A handshake, then a short exchange each way; tls_handshake stays 0 afterwards. */
static void test_handshake_and_data(void **state)
{
	struct tls *c, *s;
	char buf[64];

	assert_int_equal(tls_new(cli, "mx.test", NULL, &c), 0);
	assert_int_equal(tls_new(srv, NULL, NULL, &s), 0);
	assert_false(tls_handshake_done(c));
	assert_int_equal(tls_write(c, "x", 1), -EPROTO); /* before the handshake */
	assert_int_equal(tls_read(c, buf, sizeof(buf)), -EPROTO);
	assert_int_equal(fx_handshake(c, s, 0, NULL, NULL), 0);
	assert_true(tls_handshake_done(c));
	assert_true(tls_handshake_done(s));
	assert_int_equal(tls_handshake(c), 0);
	assert_int_equal(tls_handshake(s), 0);
	assert_int_equal(tls_read(s, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(fx_xfer(c, s, "EHLO client.test\r\n", 18, 64, 0), 0);
	assert_int_equal(fx_xfer(s, c, "250 mx.test\r\n", 13, 64, 0), 0);
	assert_string_equal(tls_error(c), "read before the handshake completed");
	assert_string_equal(tls_error(s), "");
	tls_free(c);
	tls_free(s);
}

/* 1 MB each way: tls_write consumes at most a record per call (never all of 1 MB at once), the
 * reader uses 1 KB and 7-byte buffers, the wire is cut in 1000-byte and 333-byte chunks. */
static void test_megabyte_both_ways(void **state)
{
	size_t n = 1u << 20;
	unsigned char *a = random_bytes(n, 1), *b = random_bytes(n, 2);
	struct tls *c, *s;

	assert_int_equal(fx_pair(cli, srv, "mx.test", NULL, &c, &s), 0);
	assert_int_equal(fx_xfer(c, s, a, n, 1024, 1000), 0);
	assert_int_equal(fx_xfer(s, c, b, n, 7, 333), 0);
	assert_int_equal(fx_xfer(c, s, a, n, 65536, 0), 0);
	tls_free(c);
	tls_free(s);
	free(a);
	free(b);
}

/* tls_write takes at most one record's worth per call; calling it again until all is taken
 * loses nothing, and the reader gets exactly the bytes in order. */
static void test_partial_write_nothing_lost(void **state)
{
	size_t n = 100000, have = 0;
	unsigned char *a = random_bytes(n, 3), *got = malloc(n);
	struct tls *c, *s;

	assert_int_equal(fx_pair(cli, srv, "mx.test", NULL, &c, &s), 0);
	for (size_t sent = 0; sent < n;) {
		long w = tls_write(c, a + sent, n - sent);
		assert_true(w > 0 && (w < (long)(n - sent) || sent + (size_t)w == n));
		assert_true(w <= 16384);
		sent += (size_t)w;
	}
	fx_pump(c, s, 0); /* all records at once */
	for (;;) {
		long r = tls_read(s, got + have, 100);
		if (r == -EAGAIN)
			break;
		assert_true(r > 0 && r <= 100);
		have += (size_t)r;
	}
	assert_int_equal(have, n);
	assert_memory_equal(got, a, n);
	assert_int_equal(tls_in_pending(s), 0);
	tls_free(c);
	tls_free(s);
	free(a);
	free(got);
}

/* Handshake and data fed one byte at a time, in both directions. */
static void test_one_byte_at_a_time(void **state)
{
	struct tls *c, *s;
	unsigned char *a = random_bytes(3000, 4);

	assert_int_equal(tls_new(cli, "mx.test", NULL, &c), 0);
	assert_int_equal(tls_new(srv, NULL, NULL, &s), 0);
	assert_int_equal(fx_handshake(c, s, 1, NULL, NULL), 0);
	assert_int_equal(fx_xfer(c, s, a, 3000, 5, 1), 0);
	assert_int_equal(fx_xfer(s, c, a, 3000, 1, 1), 0);
	tls_free(c);
	tls_free(s);
	free(a);
}

/* Data the client sent right behind its last handshake flight waits in the server's input
 * (tls_in_pending) until tls_read; nothing is lost. */
static void test_data_behind_handshake(void **state)
{
	struct tls *c, *s;
	char buf[64];
	int rc_c, rc_s;

	assert_int_equal(tls_new(cli, "mx.test", NULL, &c), 0);
	assert_int_equal(tls_new(srv, NULL, NULL, &s), 0);
	assert_int_equal(tls_handshake(c), -EAGAIN); /* ClientHello */
	fx_pump(c, s, 0);
	assert_int_equal(tls_handshake(s), -EAGAIN); /* ServerHello .. Finished */
	fx_pump(s, c, 0);
	assert_int_equal(tls_handshake(c), 0); /* client Finished: done (TLS 1.3) */
	assert_int_equal(tls_write(c, "QUIT\r\n", 6), 6);
	fx_pump(c, s, 0);
	rc_s = tls_handshake(s);
	assert_int_equal(rc_s, 0);
	assert_true(tls_in_pending(s) > 0);
	assert_int_equal(tls_read(s, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "QUIT\r\n", 6);
	rc_c = fx_handshake(c, s, 0, NULL, NULL);
	assert_int_equal(rc_c, 0);
	tls_free(c);
	tls_free(s);
}

/* tls_shutdown queues close_notify; the peer's tls_read then says -EPIPE (after the data that
 * came before it). */
static void test_close_notify(void **state)
{
	struct tls *c, *s;
	char buf[64];
	size_t n;

	assert_int_equal(fx_pair(cli, srv, "mx.test", NULL, &c, &s), 0);
	assert_int_equal(tls_write(s, "221 bye\r\n", 9), 9);
	assert_int_equal(tls_shutdown(s), 0);
	assert_non_null(tls_out(s, &n));
	fx_pump(s, c, 0);
	assert_int_equal(tls_read(c, buf, sizeof(buf)), 9);
	assert_int_equal(tls_read(c, buf, sizeof(buf)), -EPIPE);
	assert_int_equal(tls_read(c, buf, sizeof(buf)), -EPIPE);
	assert_non_null(strstr(tls_error(c), "close_notify"));
	assert_int_equal(tls_shutdown(c), 0); /* its own close_notify in reply */
	fx_pump(c, s, 0);
	assert_int_equal(tls_read(s, buf, sizeof(buf)), -EPIPE);
	tls_free(c);
	tls_free(s);
}

/* Plaintext SMTP or random bytes where TLS records belong: -EPROTO and a message, no crash;
 * the connection stays failed. Both sides, during and after the handshake. */
static void test_garbage(void **state)
{
	struct tls *c, *s;
	char buf[64];
	unsigned char *junk = random_bytes(4096, 5);

	assert_int_equal(tls_new(srv, NULL, NULL, &s), 0);
	assert_int_equal(tls_feed(s, "EHLO client.test\r\n", 18), 0);
	assert_int_equal(tls_handshake(s), -EPROTO);
	assert_non_null(strstr(tls_error(s), "handshake failed: "));
	assert_non_null(strstr(tls_error(s), "(the peer sent plaintext: \"EHLO client.test\")"));
	assert_int_equal(tls_handshake(s), -EPROTO);
	tls_free(s);

	assert_int_equal(tls_new(cli, "mx.test", NULL, &c), 0);
	assert_int_equal(tls_handshake(c), -EAGAIN);
	assert_int_equal(tls_feed(c, "220 mx.test ESMTP\r\n", 19), 0);
	assert_int_equal(tls_handshake(c), -EPROTO);
	assert_non_null(strstr(tls_error(c), "(the peer sent plaintext: \"220 mx.test ESMTP\")"));
	assert_null(strchr(tls_error(c), '\n'));
	tls_free(c);

	assert_int_equal(fx_pair(cli, srv, "mx.test", NULL, &c, &s), 0);
	junk[0] = 23, junk[1] = 3, junk[2] = 3, junk[3] = 0, junk[4] = 200; /* a bogus record */
	assert_int_equal(tls_feed(s, junk, 4096), 0);
	assert_int_equal(tls_read(s, buf, sizeof(buf)), -EPROTO);
	assert_true(strlen(tls_error(s)) > 0);
	assert_int_equal(tls_write(s, "x", 1), -EPROTO);
	tls_free(c);
	tls_free(s);
	free(junk);
}

/* Missing files: -ENOENT naming the path; not PEM: -EPROTO; a key that is not the
 * certificate's: -EPROTO saying so. *out is NULL on every failure. */
static void test_bad_files(void **state)
{
	struct tls_server_opts so = {fx_path("server.pem"), "/nonexistent/k.pem"};
	struct tls_client_opts co = {TLS_VERIFY_CA, "/nonexistent/ca.pem", 0};
	struct tls_ctx *c = (struct tls_ctx *)1;
	char err[256];

	assert_int_equal(tls_ctx_server_new(&so, &c, err, sizeof(err)), -ENOENT);
	assert_null(c);
	assert_non_null(strstr(err, "/nonexistent/k.pem"));
	so = (struct tls_server_opts){"/nonexistent/c.pem", fx_path("server.key")};
	assert_int_equal(tls_ctx_server_new(&so, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/c.pem"));
	assert_int_equal(tls_ctx_client_new(&co, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	so = (struct tls_server_opts){fx_path("server.pem"), fx_path("other.key")};
	assert_int_equal(tls_ctx_server_new(&so, &c, err, sizeof(err)), -EPROTO);
	assert_null(c);
	assert_non_null(strstr(err, "does not match"));
	so = (struct tls_server_opts){fx_path("server.key"), fx_path("server.key")};
	assert_int_equal(tls_ctx_server_new(&so, &c, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "server.key"));
	co.ca_file = mkcerts; /* a shell script, not PEM */
	assert_int_equal(tls_ctx_client_new(&co, &c, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, mkcerts));
	assert_null(c);
}

/* The memory-loading server context (used by the fuzz harness) works like the file one. */
static void test_server_from_memory(void **state)
{
	char *cert = NULL, *key = NULL, err[256];
	size_t n;
	struct tls_ctx *m;
	struct tls *c, *s;
	FILE *f = fopen(fx_path("server.pem"), "r");

	assert_non_null(f);
	assert_true(getdelim(&cert, &n, 0, f) > 0);
	fclose(f);
	f = fopen(fx_path("server.key"), "r");
	assert_non_null(f);
	assert_true(getdelim(&key, &n, 0, f) > 0);
	fclose(f);
	assert_int_equal(tls_ctx_server_new_pem(cert, key, &m, err, sizeof(err)), 0);
	assert_int_equal(fx_pair(cli, m, "mx.test", NULL, &c, &s), 0);
	tls_free(c);
	tls_free(s);
	tls_ctx_free(m);
	assert_int_equal(tls_ctx_server_new_pem(cert, "junk", &m, err, sizeof(err)), -EPROTO);
	assert_null(m);
	free(cert);
	free(key);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_and_data),
	    cmocka_unit_test(test_megabyte_both_ways),
	    cmocka_unit_test(test_partial_write_nothing_lost),
	    cmocka_unit_test(test_one_byte_at_a_time),
	    cmocka_unit_test(test_data_behind_handshake),
	    cmocka_unit_test(test_close_notify),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_server_from_memory),
	};
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH/mkcerts.sh\n", argv[0]);
		return 2;
	}
	mkcerts = argv[1];
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
