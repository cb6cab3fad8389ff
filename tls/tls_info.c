/* tls_info — what a connection tells its user: the certificate verdict (recorded by the verify
 * callback), one-line error messages, and the negotiated parameters and peer certificate.
 *
 * Why the verify callback always runs: riptide reports whether the peer's certificate
 * verified even when it does not require it (tls_verify = none is the opportunistic default),
 * so the client context always asks wolfSSL to verify and this callback decides: it keeps the
 * first failure's reason and accepts anyway unless the context requires verification.
 * Strings that reach log lines and Received: headers are one line of printable ASCII.
 */
#include "tls/tls_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* OpenSSL's codes for a name mismatch (wolfSSL's enum of X509_V_ERR_* stops before them). */
#define TLS_V_ERR_HOSTNAME_MISMATCH   62
#define TLS_V_ERR_IP_ADDRESS_MISMATCH 64

static void put(char *out, size_t cap, size_t *pos, const char *s, size_t n, bool value);

/* verify_reason: a short text for a verification error code (wolfSSL's or OpenSSL's). */
static void verify_reason(struct tls *t, int err, char *buf, size_t len)
{
	switch (err) {
	case DOMAIN_NAME_MISMATCH:
	case TLS_V_ERR_HOSTNAME_MISMATCH:
	case TLS_V_ERR_IP_ADDRESS_MISMATCH:
		snprintf(buf, len, "host name mismatch (want %s)", t->host ? t->host : "?");
		return;
	case ASN_NO_SIGNER_E:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		snprintf(buf, len, "unknown CA (unable to get local issuer certificate)");
		return;
	case ASN_AFTER_DATE_E:
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD: /* what wolfSSL reports for "expired" */
		snprintf(buf, len, "certificate has expired");
		return;
	case ASN_BEFORE_DATE_E:
	case X509_V_ERR_CERT_NOT_YET_VALID:
	case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
		snprintf(buf, len, "certificate is not yet valid");
		return;
	case ASN_SELF_SIGNED_E:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		snprintf(buf, len, "self-signed certificate");
		return;
	}
	const char *s = wolfSSL_X509_verify_cert_error_string(err);
	snprintf(buf, len, "%s (%d)", s ? s : "verification error", err);
}

/* ip_matches: the leaf certificate names the IP literal t->host (SAN iPAddress). wolfSSL
 * compares IPv6 addresses as text in its own form (all eight groups, four digits each), so
 * "::1" is spelt that way first. */
static bool ip_matches(struct tls *t, WOLFSSL_X509_STORE_CTX *store)
{
	WOLFSSL_X509 *x = wolfSSL_X509_STORE_CTX_get_current_cert(store);
	unsigned char a[16];
	char ip[40];

	if (!x)
		return false;
	if (inet_pton(AF_INET6, t->host, a) != 1)
		return wolfSSL_X509_check_ip_asc(x, t->host, 0) == 1;
	snprintf(ip, sizeof(ip),
		 "%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x", a[0],
		 a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13],
		 a[14], a[15]);
	return wolfSSL_X509_check_ip_asc(x, ip, 0) == 1;
}

/* tls_verify_cb: wolfSSL's verify callback on client contexts (see the why-block). Returns 1
 * to go on with the handshake, 0 to fail it (TLS_VERIFY_CA and a failure). */
int tls_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
	WOLFSSL *ssl =
	    wolfSSL_X509_STORE_CTX_get_ex_data(store, wolfSSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls *t = ssl ? wolfSSL_GetIOReadCtx(ssl) : NULL;
	int depth = wolfSSL_X509_STORE_CTX_get_error_depth(store);

	if (!t)
		return preverify;
	if (!preverify && !t->vfail) {
		t->vfail = true;
		verify_reason(t, wolfSSL_X509_STORE_CTX_get_error(store), t->verr, sizeof(t->verr));
	}
	if (preverify && depth == 0 && t->host_is_ip && !ip_matches(t, store) && !t->vfail) {
		t->vfail = true;
		snprintf(t->verr, sizeof(t->verr), "IP address mismatch (want %s)", t->host);
	}
	if (t->c->verify == TLS_VERIFY_NONE)
		return 1;
	return preverify && !t->vfail;
}

/* plaintext_note: when the peer's first bytes look like SMTP text rather than a TLS record
 * (a server that did not switch to TLS, a client that never started it), say so: " (the peer
 * sent plaintext: \"220 mx ESMTP\")". Else "". */
static const char *plaintext_note(const struct tls *t)
{
	static _Thread_local char note[64];
	size_t n = 0, pos = 0;

	if (t->done || t->nfirst < 3)
		return "";
	while (n < t->nfirst && t->first[n] >= 0x20 && t->first[n] < 0x7f)
		n++;
	if (n < 3)
		return "";
	snprintf(note, sizeof(note), " (the peer sent plaintext: \"");
	pos = strlen(note);
	put(note, sizeof(note) - 2, &pos, (const char *)t->first, n, false);
	snprintf(note + pos, sizeof(note) - pos, "\")");
	return note;
}

/* fail_text: t's one-line error for a fatal error (ret: a wolfSSL error code). */
static void fail_text(struct tls *t, int ret, const char *what)
{
	WOLFSSL_ALERT_HISTORY h;
	char wb[128];

	if (t->oom) {
		snprintf(t->err, sizeof(t->err), "%s: out of memory", what);
		return;
	}
	if (t->vfail && t->c->verify == TLS_VERIFY_CA) {
		snprintf(t->err, sizeof(t->err), "certificate verify failed: %s", t->verr);
		return;
	}
	wolfSSL_ERR_error_string_n((unsigned long)ret, wb, sizeof(wb));
	if (wolfSSL_get_alert_history(t->ssl, &h) == WOLFSSL_SUCCESS && h.last_rx.level == 2) {
		const char *d = wolfSSL_alert_desc_string_long(h.last_rx.code);
		snprintf(t->err, sizeof(t->err), "%s: the peer sent a fatal alert: %s", what,
			 d ? d : "unknown");
		return;
	}
	snprintf(t->err, sizeof(t->err), "%s: %s%s", what, wb, plaintext_note(t));
}

/* tls_fail: record a fatal error (ret: a wolfSSL error code) as t's one-line error, unless one
 * is recorded already; t is dead afterwards. Returns -ENOMEM when the output buffer could not
 * grow, else -EPROTO. */
int tls_fail(struct tls *t, int ret, const char *what)
{
	if (!t->failed)
		fail_text(t, ret, what);
	t->failed = true;
	wolfSSL_ERR_clear_error();
	return t->oom ? -ENOMEM : -EPROTO;
}

/* tls_verified: whether the peer's certificate verified (see tls_info.verified); when not,
 * why (whylen bytes). */
bool tls_verified(const struct tls *t, char *why, size_t whylen)
{
	WOLFSSL_X509 *x;

	why[0] = 0;
	if (!t->c->server && t->resumed_cached && wolfSSL_session_reused(t->ssl)) {
		snprintf(why, whylen, "%s", t->cached_verify_error);
		return t->cached_verified;
	}
	if (t->vfail) {
		snprintf(why, whylen, "%s", t->verr);
		return false;
	}
	x = wolfSSL_get_peer_certificate(t->ssl);
	if (!x) {
		snprintf(why, whylen, "no peer certificate");
		return false;
	}
	wolfSSL_X509_free(x);
	if (t->c->server) {
		snprintf(why, whylen, "client certificates are not verified");
		return false;
	}
	return true;
}

/* put: append s[0..n) to out (cap bytes incl. NUL) at *pos, printable ASCII only; ',' '+'
 * '=' '\\' in values are escaped as in RFC 4514. */
static void put(char *out, size_t cap, size_t *pos, const char *s, size_t n, bool value)
{
	for (size_t i = 0; i < n && *pos + 2 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (value && (ch == ',' || ch == '+' || ch == '\\' || ch == '='))
			out[(*pos)++] = '\\';
		out[(*pos)++] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
	}
	out[*pos] = 0;
}

/* name_line: "CN=..., O=..." (most specific first, as in RFC 4514) into out. */
static void name_line(WOLFSSL_X509_NAME *nm, char *out, size_t cap)
{
	size_t pos = 0;
	int n = nm ? wolfSSL_X509_NAME_entry_count(nm) : 0;

	out[0] = 0;
	for (int i = n - 1; i >= 0; i--) {
		WOLFSSL_X509_NAME_ENTRY *e = wolfSSL_X509_NAME_get_entry(nm, i);
		WOLFSSL_ASN1_STRING *d = e ? wolfSSL_X509_NAME_ENTRY_get_data(e) : NULL;
		const char *sn;
		if (!d)
			continue;
		sn = wolfSSL_OBJ_nid2sn(wolfSSL_OBJ_obj2nid(wolfSSL_X509_NAME_ENTRY_get_object(e)));
		if (pos)
			put(out, cap, &pos, ", ", 2, false);
		put(out, cap, &pos, sn ? sn : "?", strlen(sn ? sn : "?"), false);
		put(out, cap, &pos, "=", 1, false);
		put(out, cap, &pos, (const char *)wolfSSL_ASN1_STRING_data(d),
		    (size_t)wolfSSL_ASN1_STRING_length(d), true);
	}
}

/* time_line: "YYYY-MM-DD HH:MM:SS UTC", "" when unknown. */
static void time_line(const WOLFSSL_ASN1_TIME *a, char *out, size_t cap)
{
	struct tm tm;

	out[0] = 0;
	if (a && wolfSSL_ASN1_TIME_to_tm(a, &tm) == WOLFSSL_SUCCESS)
		strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* cipher_name: the names OpenSSL (and so Postfix's logs) use: IANA for TLS 1.3
 * ("TLS_AES_128_GCM_SHA256"), OpenSSL's for TLS 1.2 ("ECDHE-ECDSA-AES256-GCM-SHA384"). */
static void cipher_name(const struct tls *t, char *out, size_t cap)
{
	const char *s = NULL;

	if (wolfSSL_version(t->ssl) >= TLS1_3_VERSION) {
		int cs = wolfSSL_get_current_cipher_suite(t->ssl);
		s = wolfSSL_get_cipher_name_iana_from_suite((unsigned char)(cs >> 8),
							    (unsigned char)cs);
	}
	if (!s || !s[0] || strcmp(s, "None") == 0)
		s = wolfSSL_get_cipher_name(t->ssl);
	snprintf(out, cap, "%s", s ? s : "");
}

/* tls_get_info: see tls.h. */
void tls_get_info(const struct tls *t, struct tls_info *i)
{
	WOLFSSL_X509 *x;
	const char *s;

	memset(i, 0, sizeof(*i));
	if (!t->done)
		return;
	s = wolfSSL_get_version(t->ssl);
	snprintf(i->version, sizeof(i->version), "%s", s ? s : "");
	cipher_name(t, i->cipher, sizeof(i->cipher));
	i->resumed = wolfSSL_session_reused(t->ssl) != 0;
	i->verified = tls_verified(t, i->verify_error, sizeof(i->verify_error));
	x = wolfSSL_get_peer_certificate(t->ssl);
	if (!x)
		return;
	name_line(wolfSSL_X509_get_subject_name(x), i->subject, sizeof(i->subject));
	name_line(wolfSSL_X509_get_issuer_name(x), i->issuer, sizeof(i->issuer));
	time_line(wolfSSL_X509_get_notBefore(x), i->not_before, sizeof(i->not_before));
	time_line(wolfSSL_X509_get_notAfter(x), i->not_after, sizeof(i->not_after));
	wolfSSL_X509_free(x);
}

/* tls_sni: see tls_int.h. */
const char *tls_sni(const struct tls *t)
{
	void *data = NULL;
	unsigned short n;
	static _Thread_local char buf[256];

	buf[0] = 0;
	if (!t->c->server)
		return buf;
	n = wolfSSL_SNI_GetRequest(t->ssl, WOLFSSL_SNI_HOST_NAME, &data);
	if (data && n)
		put(buf, sizeof(buf), &(size_t){0}, data, n, false);
	return buf;
}
