/* test_tls_verify — what tls/ says about the peer: certificate verification by CA and host
 * name (enforced or only reported), SNI, session resumption through the client's cache, the
 * tls_info fields, and the handshake's cost.
 *
 * Why: riptide's outbound policy (tls_verify = none | CA) rests on these verdicts being right
 * in both directions: a wrong name, an unknown CA or an expired certificate must fail the
 * handshake when verification is required and be reported, not hidden, when it is not; and a
 * resumed session must carry the verdict of the full handshake it came from. Certificates come
 * from tests/integration/mkcerts.sh (argv[1]) run into a temp dir.
 */
#include "tests/unit/tls/tls_fx.h"

#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

static const char *mkcerts;
static struct tls_ctx *srv, *srv12, *srv12_noticket, *srv_other, *srv_wrong, *srv_expired;

static int group_setup(void **state)
{
	if (fx_setup(mkcerts) < 0)
		return -1;
	srv = fx_server("server.pem", "server.key");
	srv12 = fx_server("server.pem", "server.key");
	srv12_noticket = fx_server("server.pem", "server.key");
	srv_other = fx_server("other.pem", "other.key");
	srv_wrong = fx_server("wrongname.pem", "wrongname.key");
	srv_expired = fx_server("expired.pem", "expired.key");
	if (!srv || !srv12 || !srv12_noticket || !srv_other || !srv_wrong || !srv_expired)
		return -1;
	/* TLS 1.2 only servers: with tickets, and with session IDs only */
	wolfSSL_CTX_set_max_proto_version(srv12->wc, TLS1_2_VERSION);
	wolfSSL_CTX_set_max_proto_version(srv12_noticket->wc, TLS1_2_VERSION);
	wolfSSL_CTX_NoTicketTLSv12(srv12_noticket->wc);
	return 0;
}

static int group_teardown(void **state)
{
	tls_ctx_free(srv);
	tls_ctx_free(srv12);
	tls_ctx_free(srv12_noticket);
	tls_ctx_free(srv_other);
	tls_ctx_free(srv_wrong);
	tls_ctx_free(srv_expired);
	fx_teardown();
	return 0;
}

/* One connection from cc (host, cache_key) to sc; the server then says hello so that a TLS
 * 1.3 client processes its session ticket. Fills i (client side) and returns the handshake's
 * result; on failure the client's error is copied to err. */
static int connect1(struct tls_ctx *cc, struct tls_ctx *sc, const char *host, const char *key,
		    struct tls_info *i, char *err, size_t errlen)
{
	struct tls *c, *s;
	int rc = fx_pair(cc, sc, host, key, &c, &s);

	if (rc == 0 && fx_xfer(s, c, "220 hello\r\n", 11, 64, 0) < 0)
		rc = -EIO;
	tls_get_info(c, i);
	if (err)
		snprintf(err, errlen, "%s", tls_error(c));
	tls_free(c);
	tls_free(s);
	return rc;
}

static void assert_match(const char *s, const char *re)
{
	regex_t r;

	assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&r, s, 0, NULL, 0) != 0)
		fail_msg("'%s' does not match /%s/", s, re);
	regfree(&r);
}

/* A CA-verified TLS 1.3 connection: every tls_info field, checked against openssl's view of
 * the certificate; the server side knows the protocol and cipher but has no peer cert. */
static void test_verify_ca_and_info(void **state)
{
	struct tls_ctx *cc = fx_client(TLS_VERIFY_CA, "ca.pem", 0);
	struct tls *c, *s;
	struct tls_info i;
	char cmd[256], want[128];

	assert_int_equal(fx_pair(cc, srv, "mx.test", NULL, &c, &s), 0);
	tls_get_info(c, &i);
	assert_string_equal(i.version, "TLSv1.3");
	assert_match(i.cipher, "^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$");
	assert_true(i.verified);
	assert_string_equal(i.verify_error, "");
	assert_false(i.resumed);
	assert_string_equal(i.subject, "CN=mx.test, O=riptide tests");
	assert_string_equal(i.issuer, "CN=riptide test CA, O=riptide tests");
	assert_match(i.not_before,
		     "^20[0-9]{2}-[01][0-9]-[0-3][0-9] [0-2][0-9](:[0-5][0-9]){2} UTC$");
	assert_true(strcmp(i.not_after, i.not_before) > 0);
	snprintf(cmd, sizeof(cmd), "openssl x509 -in '%s' -noout -startdate -dateopt iso_8601",
		 fx_path("server.pem"));
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(want, sizeof(want), p));
	pclose(p);
	want[strcspn(want, "Z\n")] = 0; /* "notBefore=2026-11-30 09:26:49" */
	assert_int_equal(strncmp(i.not_before, want + 10, strlen(want + 10)), 0);
	tls_get_info(s, &i);
	assert_string_equal(i.version, "TLSv1.3");
	assert_true(i.cipher[0] != 0);
	assert_false(i.verified);
	assert_string_equal(i.subject, "");
	tls_free(c);
	tls_free(s);
	tls_ctx_free(cc);
}

/* TLS 1.2: the same verdicts; the cipher has OpenSSL's name. */
static void test_tls12_info(void **state)
{
	struct tls_ctx *cc = fx_client(TLS_VERIFY_CA, "ca.pem", 0);
	struct tls_info i;

	assert_int_equal(connect1(cc, srv12, "mx.test", NULL, &i, NULL, 0), 0);
	assert_string_equal(i.version, "TLSv1.2");
	assert_match(i.cipher, "^ECDHE-ECDSA-[A-Z0-9-]+$");
	assert_true(i.verified);
	assert_string_equal(i.subject, "CN=mx.test, O=riptide tests");
	tls_ctx_free(cc);
}

/* A certificate for another name: the handshake fails in CA mode ("certificate verify failed:
 * host name mismatch ...", and the server sees the alert); in NONE mode it succeeds with
 * verified=false and the same reason. Both for a wrong host asked and a wrong certificate. */
static void test_wrong_name(void **state)
{
	struct tls_ctx *ca = fx_client(TLS_VERIFY_CA, "ca.pem", 0);
	struct tls_ctx *none = fx_client(TLS_VERIFY_NONE, "ca.pem", 0);
	struct tls *c, *s;
	struct tls_info i;
	char err[256];
	int rc_c, rc_s;

	assert_int_equal(tls_new(ca, "other.test", NULL, &c), 0);
	assert_int_equal(tls_new(srv, NULL, NULL, &s), 0);
	assert_int_equal(fx_handshake(c, s, 0, &rc_c, &rc_s), -EPROTO);
	assert_int_equal(rc_c, -EPROTO);
	assert_int_equal(rc_s, -EPROTO);
	assert_string_equal(tls_error(c),
			    "certificate verify failed: host name mismatch (want other.test)");
	assert_non_null(strstr(tls_error(s), "bad_certificate"));
	tls_free(c);
	tls_free(s);
	assert_int_equal(connect1(ca, srv_wrong, "mx.test", NULL, &i, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "host name mismatch"));

	assert_int_equal(connect1(none, srv, "other.test", NULL, &i, NULL, 0), 0);
	assert_false(i.verified);
	assert_string_equal(i.verify_error, "host name mismatch (want other.test)");
	assert_string_equal(i.subject, "CN=mx.test, O=riptide tests");
	assert_int_equal(connect1(none, srv_wrong, "mx.test", NULL, &i, NULL, 0), 0);
	assert_false(i.verified);
	assert_string_equal(i.subject, "CN=wrong.test, O=riptide tests");
	/* names are matched without regard to case, and every SAN counts */
	assert_int_equal(connect1(ca, srv, "MX.Test", NULL, &i, NULL, 0), 0);
	assert_int_equal(connect1(ca, srv, "localhost", NULL, &i, NULL, 0), 0);
	assert_true(i.verified);
	tls_ctx_free(ca);
	tls_ctx_free(none);
}

/* A certificate from a CA not in the bundle, and an expired one: failures in CA mode,
 * verified=false with the reason in NONE mode. */
static void test_unknown_ca_and_expired(void **state)
{
	struct tls_ctx *ca = fx_client(TLS_VERIFY_CA, "ca.pem", 0);
	struct tls_ctx *none = fx_client(TLS_VERIFY_NONE, "ca.pem", 0);
	struct tls_info i;
	char err[256];

	assert_int_equal(connect1(ca, srv_other, "mx.test", NULL, &i, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "certificate verify failed: unknown CA"));
	assert_int_equal(connect1(none, srv_other, "mx.test", NULL, &i, NULL, 0), 0);
	assert_false(i.verified);
	assert_non_null(strstr(i.verify_error, "unknown CA"));
	assert_string_equal(i.issuer, "CN=riptide other CA, O=riptide tests");

	assert_int_equal(connect1(ca, srv_expired, "mx.test", NULL, &i, err, sizeof(err)), -EPROTO);
	assert_string_equal(err, "certificate verify failed: certificate has expired");
	assert_int_equal(connect1(none, srv_expired, "mx.test", NULL, &i, NULL, 0), 0);
	assert_false(i.verified);
	assert_string_equal(i.verify_error, "certificate has expired");
	assert_string_equal(i.not_after, "2020-01-02 00:00:00 UTC");
	tls_ctx_free(ca);
	tls_ctx_free(none);
}

/* IP literals: no SNI, and in CA mode the certificate must name the address (SAN iPAddress,
 * IPv4 and IPv6 in any spelling). No host at all: the chain alone is checked. */
static void test_ip_literals(void **state)
{
	struct tls_ctx *ca = fx_client(TLS_VERIFY_CA, "ca.pem", 0);
	struct tls_info i;
	char err[256];

	assert_int_equal(connect1(ca, srv, "127.0.0.1", NULL, &i, NULL, 0), 0);
	assert_true(i.verified);
	assert_int_equal(connect1(ca, srv, "::1", NULL, &i, NULL, 0), 0);
	assert_int_equal(connect1(ca, srv, "0:0::0:1", NULL, &i, NULL, 0), 0);
	assert_int_equal(connect1(ca, srv, "127.0.0.2", NULL, &i, err, sizeof(err)), -EPROTO);
	assert_string_equal(err, "certificate verify failed: IP address mismatch (want 127.0.0.2)");
	assert_int_equal(connect1(ca, srv, "::2", NULL, &i, err, sizeof(err)), -EPROTO);
	assert_int_equal(connect1(ca, srv, NULL, NULL, &i, NULL, 0), 0);
	assert_true(i.verified);
	tls_ctx_free(ca);
}

/* The server sees the SNI a client sent for a name, none for an IP literal or no host. */
static void test_sni(void **state)
{
	struct tls_ctx *none = fx_client(TLS_VERIFY_NONE, "ca.pem", 0);
	const char *hosts[] = {"mx.test", "127.0.0.1", NULL};
	const char *want[] = {"mx.test", "", ""};

	for (int k = 0; k < 3; k++) {
		struct tls *c, *s;
		assert_int_equal(fx_pair(none, srv, hosts[k], NULL, &c, &s), 0);
		assert_string_equal(tls_sni(s), want[k]);
		assert_string_equal(tls_sni(c), "");
		tls_free(c);
		tls_free(s);
	}
	tls_ctx_free(none);
}

/* The system CA store loads (both modes); it does not know the test CA. */
static void test_system_store(void **state)
{
	struct tls_client_opts o = {TLS_VERIFY_CA, "", 0};
	struct tls_ctx *ca = NULL, *none = fx_client(TLS_VERIFY_NONE, NULL, 0);
	struct tls_info i;
	char err[256];

	assert_int_equal(tls_ctx_client_new(&o, &ca, err, sizeof(err)), 0);
	assert_non_null(ca);
	assert_non_null(none);
	assert_int_equal(connect1(ca, srv, "mx.test", NULL, &i, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "unknown CA"));
	assert_int_equal(connect1(none, srv, "mx.test", NULL, &i, NULL, 0), 0);
	assert_false(i.verified);
	tls_ctx_free(ca);
	tls_ctx_free(none);
}

/* resume_case: two connections with one cache_key: the second is resumed and verified. */
static void resume_case(struct tls_ctx *sc, const char *want_version)
{
	struct tls_ctx *cc = fx_client(TLS_VERIFY_CA, "ca.pem", 4);
	struct tls_info i;

	assert_int_equal(connect1(cc, sc, "mx.test", "mx.test:25", &i, NULL, 0), 0);
	assert_string_equal(i.version, want_version);
	assert_false(i.resumed);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(connect1(cc, sc, "mx.test", "mx.test:25", &i, NULL, 0), 0);
		assert_true(i.resumed);
		assert_true(i.verified);
		assert_string_equal(i.version, want_version);
	}
	/* another key, another host under the same key, no key: full handshakes */
	assert_int_equal(connect1(cc, sc, "mx.test", "mx.test:587", &i, NULL, 0), 0);
	assert_false(i.resumed);
	assert_int_equal(connect1(cc, sc, "localhost", "mx.test:25", &i, NULL, 0), 0);
	assert_false(i.resumed);
	assert_int_equal(connect1(cc, sc, "mx.test", NULL, &i, NULL, 0), 0);
	assert_false(i.resumed);
	tls_ctx_free(cc);
}

/* Resumption with TLS 1.3 tickets, TLS 1.2 tickets and TLS 1.2 session IDs. */
static void test_resume(void **state)
{
	resume_case(srv, "TLSv1.3");
	resume_case(srv12, "TLSv1.2");
	resume_case(srv12_noticket, "TLSv1.2");
}

/* No cache (session_cache 0): never resumed. A resumed session reports the verdict of the
 * full handshake it came from (NONE mode, wrong name: still unverified). LRU bound: with one
 * entry, a second key evicts the first. */
static void test_resume_cache_rules(void **state)
{
	struct tls_ctx *off = fx_client(TLS_VERIFY_CA, "ca.pem", 0);
	struct tls_ctx *none = fx_client(TLS_VERIFY_NONE, "ca.pem", 4);
	struct tls_ctx *one = fx_client(TLS_VERIFY_CA, "ca.pem", 1);
	struct tls_info i;

	assert_int_equal(connect1(off, srv, "mx.test", "k", &i, NULL, 0), 0);
	assert_int_equal(connect1(off, srv, "mx.test", "k", &i, NULL, 0), 0);
	assert_false(i.resumed);

	assert_int_equal(connect1(none, srv, "other.test", "k", &i, NULL, 0), 0);
	assert_int_equal(connect1(none, srv, "other.test", "k", &i, NULL, 0), 0);
	assert_true(i.resumed);
	assert_false(i.verified);
	assert_string_equal(i.verify_error, "host name mismatch (want other.test)");

	assert_int_equal(connect1(one, srv, "mx.test", "a", &i, NULL, 0), 0);
	assert_int_equal(connect1(one, srv, "mx.test", "b", &i, NULL, 0), 0);
	assert_int_equal(connect1(one, srv, "mx.test", "a", &i, NULL, 0), 0);
	assert_false(i.resumed); /* evicted by b, then stored again */
	assert_int_equal(connect1(one, srv, "mx.test", "a", &i, NULL, 0), 0);
	assert_true(i.resumed);
	tls_ctx_free(off);
	tls_ctx_free(none);
	tls_ctx_free(one);
}

struct worker {
	struct tls_ctx *cc;
	int id, ok, resumed;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct tls_info i;
	char key[16];

	for (int k = 0; k < 40; k++) {
		snprintf(key, sizeof(key), "k%d", (w->id + k) % 6);
		if (connect1(w->cc, srv, "mx.test", key, &i, NULL, 0) == 0 && i.verified)
			w->ok++;
		w->resumed += i.resumed;
	}
	return NULL;
}

/* Four threads share one client context and its 4-entry cache over 6 keys (constant
 * eviction): every handshake succeeds and verifies, and some resume. */
static void test_shared_cache_threads(void **state)
{
	struct tls_ctx *cc = fx_client(TLS_VERIFY_CA, "ca.pem", 4);
	struct worker w[4];
	pthread_t th[4];
	int ok = 0, resumed = 0;

	for (int k = 0; k < 4; k++) {
		w[k] = (struct worker){cc, k, 0, 0};
		assert_int_equal(pthread_create(&th[k], NULL, worker_main, &w[k]), 0);
	}
	for (int k = 0; k < 4; k++) {
		pthread_join(th[k], NULL);
		ok += w[k].ok;
		resumed += w[k].resumed;
	}
	assert_int_equal(ok, 160);
	assert_true(resumed > 0);
	tls_ctx_free(cc);
}

/* timing: mean seconds per connection (handshake + one short reply) to sc, full and
 * resumed. */
static void timing(struct tls_ctx *sc, double *full, double *res)
{
	struct tls_ctx *cc = fx_client(TLS_VERIFY_CA, "ca.pem", 4);
	struct tls_info i;
	int n = 100, resumed = 0;
	double t0 = fx_now();

	for (int k = 0; k < n; k++)
		assert_int_equal(connect1(cc, sc, "mx.test", NULL, &i, NULL, 0), 0);
	*full = (fx_now() - t0) / n;
	assert_int_equal(connect1(cc, sc, "mx.test", "t", &i, NULL, 0), 0);
	t0 = fx_now();
	for (int k = 0; k < n; k++) {
		assert_int_equal(connect1(cc, sc, "mx.test", "t", &i, NULL, 0), 0);
		resumed += i.resumed;
	}
	*res = (fx_now() - t0) / n;
	assert_int_equal(resumed, n);
	tls_ctx_free(cc);
}

/* Handshake cost, client and server in one thread (printed; only sanity is asserted). */
static void test_handshake_timing(void **state)
{
	double f13, r13, f12, r12;

	timing(srv, &f13, &r13);
	timing(srv12, &f12, &r12);
	printf("tls handshake, client+server in one thread, P-256, CA verify: TLS 1.3 full %.3f ms "
	       "resumed %.3f ms; TLS 1.2 full %.3f ms resumed %.3f ms\n",
	       f13 * 1e3, r13 * 1e3, f12 * 1e3, r12 * 1e3);
	assert_true(r12 < f12);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verify_ca_and_info),
	    cmocka_unit_test(test_tls12_info),
	    cmocka_unit_test(test_wrong_name),
	    cmocka_unit_test(test_unknown_ca_and_expired),
	    cmocka_unit_test(test_ip_literals),
	    cmocka_unit_test(test_sni),
	    cmocka_unit_test(test_system_store),
	    cmocka_unit_test(test_resume),
	    cmocka_unit_test(test_resume_cache_rules),
	    cmocka_unit_test(test_shared_cache_threads),
	    cmocka_unit_test(test_handshake_timing),
	};
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH/mkcerts.sh\n", argv[0]);
		return 2;
	}
	mkcerts = argv[1];
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
