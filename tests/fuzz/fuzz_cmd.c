/* fuzz_cmd — libFuzzer harness for the SMTP command parser: smtp_cmd_parse and smtp_param_next
 * (engine/smtp/smtp.h), the DSN parameter codec (RFC 3461) applied to every parameter it
 * finds, and the base64 codec of AUTH (RFC 4954). The input is one command line, CRLF already
 * stripped, any bytes.
 *
 * Why invariants and not only crashes: what this parser accepts is what riptide queues and
 * later writes on another server's wire. So for any line:
 *  - the result is 0, -EINVAL or -EBADMSG and every pointer it returns lies inside the line;
 *  - HELO/EHLO accepted: a non-empty argument without blanks;
 *  - MAIL/RCPT accepted: the address holds no control byte (0..31, 127); a RCPT address is
 *    non-empty and has an '@' unless it is <postmaster>; "MAIL FROM:<addr>" / "RCPT TO:<addr>"
 *    (plus " params" when there are any) parses again to the same verb, address and parameters;
 *  - smtp_param_next, over the parameters and over the raw line, terminates, moves forward on
 *    every parameter, returns parameters inside its input (a key of letters, digits and '-' not
 *    first; a value of 33..126 or 8-bit bytes other than '='), and leaves its cursor alone on
 *    -EINVAL;
 *  - DSN (every parameter's value, and the whole line, go through the codec): a decoded xtext
 *    holds only printable ASCII (32..126: RFC 3461's "graphic and white space"; never a control
 *    or 8-bit byte); decode(encode(y)) == y for any decoded y, and encode(decode(x)) == x for a
 *    canonical x (upper-case hex, only the bytes that must be encoded encoded); any bytes
 *    encode to xchars and "+XX" only, which decode back exactly when they are all printable;
 *    RET= is FULL or HDRS; NOTIFY= is NEVER alone or a non-empty subset of SUCCESS, FAILURE,
 *    DELAY, and formats back to a value of the same meaning; ENVID= decodes to 1..100 bytes;
 *    ORCPT= decodes to "<atom of 1..64>;<1..500 printable bytes>" and formats back to a value
 *    that decodes to the same;
 *  - AUTH accepted: a mechanism of 1..20 letters, digits, '-' or '_' at the start of the
 *    argument, named PLAIN/LOGIN exactly when it is one of them (any case); an initial response
 *    is one word inside the line ("=" gives an empty one); EXPN and STARTTLS keep their ids;
 *  - base64 (the initial response and the whole line): what decodes re-encodes to the very
 *    same text (strict, canonical), and any bytes encode to text that decodes back to them.
 */
#include "tests/fuzz/fuzz.h"
#include "engine/smtp/smtp.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool inside(const char *p, size_t n, const char *base, size_t len)
{
	return n == 0 || (p >= base && p + n <= base + len);
}

static bool key_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

static bool value_byte(unsigned char c)
{
	return (c >= 33 && c <= 126 && c != '=') || c >= 128;
}

/* One parameter returned by smtp_param_next, inside base[0..blen). */
static void check_param(const struct smtp_param *prm, const char *base, size_t blen)
{
	FUZZ_CHECK(prm->key_len > 0 && inside(prm->key, prm->key_len, base, blen),
		   "key outside the input");
	FUZZ_CHECK(inside(prm->value, prm->value_len, base, blen), "value outside the input");
	FUZZ_CHECK(prm->key[0] != '-', "key starts with '-'");
	for (size_t i = 0; i < prm->key_len; i++)
		FUZZ_CHECK(key_byte((unsigned char)prm->key[i]), "key byte %02x",
			   (unsigned char)prm->key[i]);
	for (size_t i = 0; i < prm->value_len; i++)
		FUZZ_CHECK(value_byte((unsigned char)prm->value[i]), "value byte %02x",
			   (unsigned char)prm->value[i]);
}

/* ---- DSN parameters ---- */

static bool xchar(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '+' && c != '=';
}

static void check_printable(const char *d, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)d[i] >= 32 && (unsigned char)d[i] <= 126,
			   "%s: decoded byte %02x", what, (unsigned char)d[i]);
	FUZZ_CHECK(d[n] == '\0', "%s: decoded text not NUL-terminated", what);
}

/* The value of an upper-case hex digit, or -1. */
static int hexup(char c)
{
	static const char h[] = "0123456789ABCDEF";
	const char *p = c ? strchr(h, c) : NULL;

	return p ? (int)(p - h) : -1;
}

/* x is canonical xtext: "+XX" only with upper-case hex, and only for a byte that is no xchar. */
static bool canonical(const char *x, size_t n)
{
	int hi, lo;

	for (size_t i = 0; i < n; i++) {
		if (x[i] != '+')
			continue;
		if (n - i < 3 || (hi = hexup(x[i + 1])) < 0 || (lo = hexup(x[i + 2])) < 0 ||
		    xchar((unsigned char)(hi << 4 | lo)))
			return false;
		i += 2;
	}
	return true;
}

/* Any bytes: encode gives xchars and "+XX" only; decode gives them back iff all printable. */
static void check_encode_any(const char *p, size_t n)
{
	size_t cap = 3 * n + 1;
	char *e = malloc(cap), *d = malloc(n + 1);
	bool printable = true;
	ssize_t k, r;

	FUZZ_CHECK(e && d, "out of memory");
	k = smtp_xtext_encode(p, n, e, cap);
	FUZZ_CHECK(k >= 0 && (size_t)k < cap && e[k] == '\0', "encode of %zu bytes: %zd", n, k);
	for (ssize_t i = 0; i < k; i++)
		FUZZ_CHECK(xchar((unsigned char)e[i]) || e[i] == '+', "encoded byte %02x",
			   (unsigned char)e[i]);
	FUZZ_CHECK(canonical(e, (size_t)k), "the encoder's output is not canonical");
	for (size_t i = 0; i < n; i++)
		printable &= (unsigned char)p[i] >= 32 && (unsigned char)p[i] <= 126;
	r = smtp_xtext_decode(e, (size_t)k, d, n + 1);
	FUZZ_CHECK(printable ? r == (ssize_t)n && !memcmp(d, p, n) : r == -EINVAL,
		   "decode(encode(x)) = %zd for %zu bytes (printable %d)", r, n, printable);
	free(e);
	free(d);
}

/* One value as xtext: decoded is printable; the round trips hold. */
static void check_xtext(const char *x, size_t n)
{
	char *d = malloc(n + 1), *e = malloc(3 * n + 1), *d2 = malloc(n + 1);
	ssize_t r, k, r2;

	FUZZ_CHECK(d && e && d2, "out of memory");
	r = smtp_xtext_decode(x, n, d, n + 1);
	FUZZ_CHECK(r >= 0 || r == -EINVAL, "decode returned %zd", r);
	if (r >= 0) {
		check_printable(d, (size_t)r, "xtext");
		k = smtp_xtext_encode(d, (size_t)r, e, 3 * n + 1);
		FUZZ_CHECK(k >= 0, "encode of a decoded value failed (%zd)", k);
		r2 = smtp_xtext_decode(e, (size_t)k, d2, n + 1);
		FUZZ_CHECK(r2 == r && !memcmp(d2, d, (size_t)r), "decode(encode(y)) != y");
		if (canonical(x, n))
			FUZZ_CHECK((size_t)k == n && !memcmp(e, x, n), "encode(decode(x)) != x");
	}
	free(d);
	free(e);
	free(d2);
}

static void check_notify(const char *v, size_t n)
{
	int b = smtp_dsn_notify_parse(v, n);
	char out[SMTP_NOTIFY_TEXT];
	size_t k;

	FUZZ_CHECK(b == -EINVAL || (b > 0 && b <= 15), "NOTIFY parsed to %d", b);
	if (b < 0)
		return;
	FUZZ_CHECK(!(b & SMTP_NOTIFY_NEVER) || b == SMTP_NOTIFY_NEVER, "NEVER combined: %d", b);
	k = smtp_dsn_notify_format((unsigned)b, out, sizeof(out));
	FUZZ_CHECK(k > 0 && smtp_dsn_notify_parse(out, k) == b, "NOTIFY %d formats to '%s'", b,
		   out);
}

static void check_envid(const char *v, size_t n)
{
	char out[SMTP_ENVID_MAX + 1];
	ssize_t r = smtp_dsn_envid_parse(v, n, out, sizeof(out));

	FUZZ_CHECK(r == -EINVAL || r == -E2BIG || (r > 0 && r <= SMTP_ENVID_MAX),
		   "ENVID parsed to %zd", r);
	if (r > 0)
		check_printable(out, (size_t)r, "ENVID");
}

static void check_orcpt(const char *v, size_t n)
{
	char out[SMTP_ORCPT_BUF], enc[3 * SMTP_ORCPT_BUF], again[SMTP_ORCPT_BUF];
	ssize_t r = smtp_dsn_orcpt_parse(v, n, out, sizeof(out)), k;
	const char *semi;

	FUZZ_CHECK(r == -EINVAL || r == -E2BIG || r > 0, "ORCPT parsed to %zd", r);
	if (r < 0)
		return;
	check_printable(out, (size_t)r, "ORCPT");
	semi = strchr(out, ';');
	FUZZ_CHECK(semi && semi > out && semi - out <= SMTP_ADDRTYPE_MAX, "ORCPT addr-type");
	FUZZ_CHECK(strlen(semi + 1) >= 1 && strlen(semi + 1) <= SMTP_ORCPT_MAX, "ORCPT address");
	k = smtp_dsn_orcpt_format(out, enc, sizeof(enc));
	FUZZ_CHECK(k > 0, "a parsed ORCPT does not format (%zd)", k);
	FUZZ_CHECK(smtp_dsn_orcpt_parse(enc, (size_t)k, again, sizeof(again)) == r &&
		       !strcmp(again, out),
		   "ORCPT does not round-trip");
}

/* A parameter through the DSN codec: by its key, and its value as xtext whatever the key. */
static void check_dsn_param(const struct smtp_param *prm)
{
	int ret;

	check_xtext(prm->value, prm->value_len);
	if (smtp_param_is(prm, "RET")) {
		ret = smtp_dsn_ret_parse(prm->value, prm->value_len);
		FUZZ_CHECK(ret == -EINVAL || ret == SMTP_RET_FULL || ret == SMTP_RET_HDRS,
			   "RET parsed to %d", ret);
	} else if (smtp_param_is(prm, "NOTIFY")) {
		check_notify(prm->value, prm->value_len);
	} else if (smtp_param_is(prm, "ENVID")) {
		check_envid(prm->value, prm->value_len);
	} else if (smtp_param_is(prm, "ORCPT")) {
		check_orcpt(prm->value, prm->value_len);
	}
}

/* ---- AUTH and base64 ---- */

/* x as base64: accepted exactly when canonical (re-encodes to x). */
static void check_b64(const char *x, size_t n)
{
	char *d = malloc(n / 4 * 3 + 1), *e = malloc(n + 1);
	ssize_t r, k;

	FUZZ_CHECK(d && e, "out of memory");
	r = smtp_b64_decode(x, n, d, n / 4 * 3 + 1);
	FUZZ_CHECK(r >= 0 || r == -EINVAL, "base64 decode returned %zd", r);
	if (r >= 0) {
		FUZZ_CHECK((size_t)r <= n / 4 * 3, "decoded %zd bytes from %zu", r, n);
		k = smtp_b64_encode(d, (size_t)r, e, n + 1);
		FUZZ_CHECK(k == (ssize_t)n && !memcmp(e, x, n), "base64 is not canonical");
	}
	free(d);
	free(e);
}

/* Any bytes encode to base64 that decodes back to them. */
static void check_b64_any(const char *p, size_t n)
{
	size_t cap = (n + 2) / 3 * 4 + 1;
	char *e = malloc(cap), *d = malloc(n + 3);
	ssize_t k, r;

	FUZZ_CHECK(e && d, "out of memory");
	k = smtp_b64_encode(p, n, e, cap);
	FUZZ_CHECK(k == (ssize_t)(cap - 1) && e[k] == '\0', "encode of %zu bytes: %zd", n, k);
	r = smtp_b64_decode(e, (size_t)k, d, n + 3);
	FUZZ_CHECK(r == (ssize_t)n && !memcmp(d, p, n), "decode(encode(x)) != x");
	free(e);
	free(d);
}

static bool mech_byte(unsigned char c)
{
	return key_byte(c) || c == '_';
}

/* An accepted AUTH: the mechanism and initial response as the parser split them. */
static void check_auth(const struct smtp_cmd *c, const char *line, size_t len)
{
	bool plain, login;

	FUZZ_CHECK(c->mech_len >= 1 && c->mech_len <= SMTP_AUTH_MECH_MAX, "mechanism of %zu",
		   c->mech_len);
	FUZZ_CHECK(inside(c->arg, c->mech_len, line, len), "mechanism outside the line");
	for (size_t i = 0; i < c->mech_len; i++)
		FUZZ_CHECK(mech_byte((unsigned char)c->arg[i]), "mechanism byte %02x",
			   (unsigned char)c->arg[i]);
	plain = c->mech_len == 5 && !strncasecmp(c->arg, "PLAIN", 5);
	login = c->mech_len == 5 && !strncasecmp(c->arg, "LOGIN", 5);
	FUZZ_CHECK(c->mech == (plain   ? SMTP_AUTH_PLAIN
			       : login ? SMTP_AUTH_LOGIN
				       : SMTP_AUTH_OTHER),
		   "mechanism named %d", c->mech);
	if (!c->has_resp) {
		FUZZ_CHECK(c->resp_len == 0, "a response length without a response");
		return;
	}
	FUZZ_CHECK(c->resp && c->resp >= c->arg + c->mech_len && c->resp < line + len,
		   "initial response outside the line");
	FUZZ_CHECK(inside(c->resp, c->resp_len, line, len), "initial response outside the line");
	FUZZ_CHECK(c->resp_len || *c->resp == '=', "empty response that is not \"=\"");
	FUZZ_CHECK(!memchr(c->resp, ' ', c->resp_len) && !memchr(c->resp, '\t', c->resp_len),
		   "initial response with a blank");
	check_b64(c->resp, c->resp_len);
}

/* Walk every parameter of p[0..len) (base[0..blen) is the buffer they must lie in). */
static void check_params(const char *p, size_t len, const char *base, size_t blen)
{
	struct smtp_param prm;
	size_t before;
	int r;

	for (;;) {
		before = len;
		r = smtp_param_next(&p, &len, &prm);
		if (r != 1)
			break;
		check_param(&prm, base, blen);
		check_dsn_param(&prm);
		FUZZ_CHECK(len < before && inside(p, len, base, blen),
			   "the cursor did not move forward inside the input");
		FUZZ_CHECK(p >= (prm.value_len ? prm.value + prm.value_len : prm.key + prm.key_len),
			   "the cursor is not past the parameter");
	}
	FUZZ_CHECK(r == 0 || r == -EINVAL, "smtp_param_next returned %d", r);
	if (r == 0)
		FUZZ_CHECK(len == 0, "0 (no parameter left) with %zu bytes left", len);
	if (r == -EINVAL) {
		FUZZ_CHECK(len == before, "-EINVAL moved the cursor");
		FUZZ_CHECK(smtp_param_next(&p, &len, &prm) == -EINVAL && len == before,
			   "-EINVAL is not repeatable");
	}
}

/* "MAIL FROM:<addr>[ params]" or "RCPT TO:<addr>[ params]" must parse back to the same. */
static void check_reserialised(const struct smtp_cmd *c)
{
	bool rcpt = c->verb == SMTP_VERB_RCPT;
	const char *pre = rcpt ? "RCPT TO:<" : "MAIL FROM:<";
	size_t pl = strlen(pre), n = pl + c->addr_len + 1 + (c->params_len ? 1 + c->params_len : 0);
	char *line = malloc(n);
	struct smtp_cmd again;
	int r;

	FUZZ_CHECK(line != NULL, "out of memory");
	memcpy(line, pre, pl);
	memcpy(line + pl, c->addr, c->addr_len);
	line[pl + c->addr_len] = '>';
	if (c->params_len) {
		line[pl + c->addr_len + 1] = ' ';
		memcpy(line + pl + c->addr_len + 2, c->params, c->params_len);
	}
	r = smtp_cmd_parse(line, n, &again);
	if (r != 0 || again.verb != c->verb || again.addr_len != c->addr_len ||
	    memcmp(again.addr, c->addr, c->addr_len) != 0 || again.params_len != c->params_len ||
	    memcmp(again.params, c->params, c->params_len) != 0)
		fuzz_hex("re-serialised line", line, n);
	FUZZ_CHECK(r == 0, "re-serialised command is refused (%d)", r);
	FUZZ_CHECK(again.verb == c->verb, "re-serialised command has another verb");
	FUZZ_CHECK(again.addr_len == c->addr_len && !memcmp(again.addr, c->addr, c->addr_len),
		   "re-serialised address differs");
	FUZZ_CHECK(again.params_len == c->params_len &&
		       !memcmp(again.params, c->params, c->params_len),
		   "re-serialised parameters differ");
	free(line);
}

/* Checks on an accepted MAIL/RCPT. */
static void check_path(const struct smtp_cmd *c, const char *line, size_t len)
{
	FUZZ_CHECK(inside(c->addr, c->addr_len, line, len), "address outside the line");
	FUZZ_CHECK(inside(c->params, c->params_len, line, len), "parameters outside the line");
	for (size_t i = 0; i < c->addr_len; i++) {
		unsigned char b = (unsigned char)c->addr[i];
		if (b < 32 || b == 127)
			fuzz_hex("address", c->addr, c->addr_len);
		FUZZ_CHECK(b >= 32 && b != 127, "control byte %02x at %zu in an accepted address",
			   b, i);
	}
	if (c->verb == SMTP_VERB_RCPT) {
		bool pm = c->addr_len == 10 && strncasecmp(c->addr, "postmaster", 10) == 0;
		FUZZ_CHECK(pm || memchr(c->addr, '@', c->addr_len) != NULL,
			   "RCPT address without '@'");
	}
	check_reserialised(c);
	check_params(c->params, c->params_len, line, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct smtp_cmd c;
	int r = smtp_cmd_parse(line, size, &c);

	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EBADMSG, "smtp_cmd_parse returned %d", r);
	FUZZ_CHECK(inside(c.arg, c.arg_len, line, size), "argument outside the line");
	if (r == 0 && (c.verb == SMTP_VERB_HELO || c.verb == SMTP_VERB_EHLO)) {
		FUZZ_CHECK(c.arg_len > 0, "HELO/EHLO accepted without an argument");
		FUZZ_CHECK(!memchr(c.arg, ' ', c.arg_len) && !memchr(c.arg, '\t', c.arg_len),
			   "HELO/EHLO argument with a blank");
	}
	if (r == 0 && (c.verb == SMTP_VERB_MAIL || c.verb == SMTP_VERB_RCPT))
		check_path(&c, line, size);
	if (r == 0 && c.verb == SMTP_VERB_AUTH)
		check_auth(&c, line, size);
	if (r == 0 && c.verb != SMTP_VERB_AUTH)
		FUZZ_CHECK(!c.has_resp && !c.mech_len, "AUTH fields set for verb %d", c.verb);
	check_b64(line, size);
	check_b64_any(line, size);
	check_params(line, size, line, size);
	check_xtext(line, size);
	check_encode_any(line, size);
	check_notify(line, size);
	check_envid(line, size);
	check_orcpt(line, size);
	return 0;
}
