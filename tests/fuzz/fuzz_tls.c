/* fuzz_tls — libFuzzer harness for tls/: arbitrary bytes as what a TLS peer sends, to a
 * server-side struct tls (a ClientHello and what follows) or to a client-side one that has
 * sent its ClientHello (a ServerHello, certificates, ...), cut into chunks as the network
 * might cut them. Bit 4 of the first byte picks the side (its low 4 bits are the chunk plan of
 * fuzz.h); the seeds in corpus/tls are real first flights of both sides, TLS 1.3 and 1.2.
 *
 * Why these invariants: the SMTP sessions feed tls/ whatever a stranger sent, before any
 * authentication, and act on the result codes:
 *  - no crash, leak or overread (ASan/UBSan), whatever the bytes;
 *  - tls_handshake returns only 0, -EAGAIN or -EPROTO; once -EPROTO, it stays -EPROTO and
 *    tls_error says why in one non-empty line;
 *  - tls_read returns 1..cap, -EAGAIN, -EPIPE or -EPROTO;
 *  - what tls/ asks us to send stays bounded (at most 64 KiB per call) and the input it keeps
 *    never exceeds what was fed.
 * The server's certificate and key are PEM constants below (EC P-256, self-signed, CN
 * fuzz.test, made once with openssl), loaded from memory by tls_ctx_server_new_pem.
 */
#include "tests/fuzz/fuzz.h"
#include "tls/tls_int.h"

#include <errno.h>
#include <string.h>

static const char fuzz_cert[] = "-----BEGIN CERTIFICATE-----\n"
				"MIIBlDCCATugAwIBAgIUQ4Mvna5BmQxPRIoQ8CzOHsKc3aAwCgYIKoZIzj0EAwIw\n"
				"FDESMBAGA1UEAwwJZnV6ei50ZXN0MCAXDTI2MTEzMDA5MzcyN1oYDzIxMjYxMTA2\n"
				"MDkzNzI3WjAUMRIwEAYDVQQDDAlmdXp6LnRlc3QwWTATBgcqhkjOPQIBBggqhkjO\n"
				"PQMBBwNCAAT0Oe2GHaqqH8wbH3Egbu2v63Qv54E4nPIThhviE2uIuhoAEZG/pUBi\n"
				"y4gW2tUnSqP7nkRM18lCo77wJv2ygfIoo2kwZzAdBgNVHQ4EFgQUPMnXYvJGA1XQ\n"
				"Ns8SR1eMuTtu6GAwHwYDVR0jBBgwFoAUPMnXYvJGA1XQNs8SR1eMuTtu6GAwDwYD\n"
				"VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglmdXp6LnRlc3QwCgYIKoZIzj0EAwID\n"
				"RwAwRAIgVT2f0D64qOfpJTMbVBH3KzqMKGKMFlqOjOCe4mqlBBUCIHTsJTBGaZVP\n"
				"fN++hhRxGsP/kRh+yIjjEBauXFLW919U\n"
				"-----END CERTIFICATE-----\n";

static const char fuzz_key[] = "-----BEGIN PRIVATE KEY-----\n"
			       "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvYYvHpScq2PWqmo4\n"
			       "jQ4DDdIFlF64EYmbho4VR8wGF6ihRANCAAT0Oe2GHaqqH8wbH3Egbu2v63Qv54E4\n"
			       "nPIThhviE2uIuhoAEZG/pUBiy4gW2tUnSqP7nkRM18lCo77wJv2ygfIo\n"
			       "-----END PRIVATE KEY-----\n";

#define OUT_BOUND 65536

static struct tls_ctx *srv, *cli;

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The two contexts, once: a server on the constants, a client that verifies (against the
 * system store: the fuzz certificate never verifies, which the client must survive). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct tls_client_opts co = {TLS_VERIFY_NONE, NULL, 4};
	char err[256];

	(void)argc;
	(void)argv;
	FUZZ_CHECK(tls_ctx_server_new_pem(fuzz_cert, fuzz_key, &srv, err, sizeof(err)) == 0,
		   "server context: %s", err);
	FUZZ_CHECK(tls_ctx_client_new(&co, &cli, err, sizeof(err)) == 0, "client context: %s", err);
	return 0;
}

/* drain_out: what tls/ asked us to send after one call: bounded, then "sent". */
static void drain_out(struct tls *t)
{
	size_t n;
	const void *p = tls_out(t, &n);

	FUZZ_CHECK((p == NULL) == (n == 0), "tls_out: %p with %zu bytes", p, n);
	FUZZ_CHECK(n <= OUT_BOUND, "%zu bytes to send after one call", n);
	tls_out_consume(t, n);
}

/* step: after a chunk was fed: advance the handshake, then read what there is. */
static void step(struct tls *t, size_t fed)
{
	char buf[512];
	int h = tls_handshake(t);
	bool failed = h == -EPROTO;

	FUZZ_CHECK(h == 0 || h == -EAGAIN || h == -EPROTO, "tls_handshake returned %d", h);
	FUZZ_CHECK(tls_in_pending(t) <= fed, "%zu pending of %zu fed", tls_in_pending(t), fed);
	drain_out(t);
	for (int k = 0; h == 0 && k < 64; k++) {
		long r = tls_read(t, buf, sizeof(buf));
		FUZZ_CHECK((r > 0 && r <= (long)sizeof(buf)) || r == -EAGAIN || r == -EPIPE ||
			       r == -EPROTO,
			   "tls_read returned %ld", r);
		drain_out(t);
		failed |= r == -EPROTO;
		if (r <= 0)
			break;
	}
	if (failed) {
		const char *e = tls_error(t);
		FUZZ_CHECK(e[0] && !strchr(e, '\n'), "error text '%s'", e);
		FUZZ_CHECK(tls_handshake(t) == -EPROTO, "a failed connection came back");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_chunks ch;
	size_t off = fuzz_chunks_split(data, size, &ch), fed = 0;
	bool server = size == 0 || !(data[0] & 0x10);
	struct tls *t;

	FUZZ_CHECK(tls_new(server ? srv : cli, "fuzz.test", "fuzz.test:25", &t) == 0, "tls_new");
	if (!server) {
		FUZZ_CHECK(tls_handshake(t) == -EAGAIN, "the client's first step");
		drain_out(t);
	}
	while (off < size) {
		size_t n = fuzz_chunk_next(&ch, size - off);
		FUZZ_CHECK(tls_feed(t, data + off, n) == 0, "tls_feed");
		off += n;
		fed += n;
		step(t, fed);
	}
	if (tls_handshake_done(t)) {
		struct tls_info i;
		tls_get_info(t, &i);
		FUZZ_CHECK(i.version[0] != 0, "a completed handshake without a version");
	}
	tls_free(t);
	return 0;
}
