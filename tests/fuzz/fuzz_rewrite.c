/* fuzz_rewrite — libFuzzer harness for the header work at injection (engine/smtp/smtp.h):
 * smtp_hdr_take (X-Riptide-Pool: taken out) and smtp_hdr_rewrite (From/Sender/Reply-To
 * aliases, rules sorted by smtp_rewrite_sort).
 *
 * Input: one control byte (bits 0-2: k, the bytes each alias adds; bits 3-4: the field to take;
 * bits 5-7: the room for its value), then rule addresses one a line up to a NUL byte (lower-cased,
 * control bytes dropped, duplicates skipped, at most 16), then the message.
 *
 * Why: both run on every injected message, on bytes a customer wrote, before the message is
 * stored and signed; a byte changed outside the field or the address is corruption.
 * Invariants:
 *  - take: the message never grows; the result is exactly the input without the lines of every
 *    field of that name in the header section (a line model computed here); taking again finds
 *    nothing; the value holds the field's value bytes, blanks and line ends aside, and no CR/LF;
 *    a value that does not fit leaves the message as it was and fits with enough room;
 *  - rewrite, with each rule mapping an address to itself: 0 replacements, or an output equal
 *    to the input but for ASCII case;
 *  - rewrite, with each alias k bytes longer: the same number of replacements, the output k bytes
 *    longer per replacement, the body after the header section byte-identical, and with the
 *    From/Sender/Reply-To fields taken out of both, input and output are the same message.
 */
#include "tests/fuzz/fuzz.h"
#include "engine/smtp/smtp.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define MAXR 16
#define MAXA 64

struct rules {
	char from[MAXR][MAXA + 1], to[MAXR][MAXA + 8];
	struct smtp_rewrite_rule r[MAXR];
	unsigned n;
};

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* The line at p: its length with the LF; *t without its CRLF/LF (a last line is all text). */
static size_t line(const char *p, const char *e, size_t *t)
{
	size_t n = 0;

	while (p + n < e && p[n] != '\n')
		n++;
	*t = n;
	if (p + n == e)
		return n;
	if (n > 0 && p[n - 1] == '\r')
		(*t)--;
	return n + 1;
}

/* The line model of take: copy in[0..len) to out without the lines of every header field
 * named f; returns the output length. */
static size_t model_take(const char *in, size_t len, const char *f, char *out)
{
	const char *p = in, *e = in + len;
	size_t o = 0, n, t, fl = strlen(f), i;
	bool drop = false;

	while (p < e) {
		n = line(p, e, &t);
		if (t == 0)
			break;
		if (!wsp(*p)) {
			for (i = fl; i < t && wsp(p[i]); i++)
				;
			drop = t > fl && strncasecmp(p, f, fl) == 0 && i < t && p[i] == ':';
		}
		if (!drop) {
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
	}
	memcpy(out + o, p, (size_t)(e - p));
	return o + (size_t)(e - p);
}

/* The bytes of s[0..n) other than SP, HTAB, CR, LF, into out; returns their count. */
static size_t squeeze(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++)
		if (!wsp(s[i]) && s[i] != '\r' && s[i] != '\n')
			out[o++] = s[i];
	return o;
}

/* The value bytes (after the colon, to the field's end) of the first field named f, squeezed. */
static size_t model_value(const char *in, size_t len, const char *f, char *out)
{
	const char *p = in, *e = in + len, *v = NULL;
	size_t n, t, fl = strlen(f), i;

	while (p < e && (n = line(p, e, &t)) > 0 && t > 0) {
		if (v && !wsp(*p))
			break;
		if (!v && !wsp(*p) && t > fl && strncasecmp(p, f, fl) == 0) {
			for (i = fl; i < t && wsp(p[i]); i++)
				;
			v = i < t && p[i] == ':' ? p + i + 1 : NULL;
		}
		p += n;
	}
	return v ? squeeze(v, (size_t)(p - v), out) : 0;
}

/* The value take gave for the first field named f: the field's value bytes (blanks and line ends
 * aside, up to a NUL), no line end, trimmed. */
static void check_value(const char *msg, size_t len, const char *f, const char *val)
{
	char *sq1 = malloc(len + 1), *sq2 = malloc(len + 1);
	size_t n1 = squeeze(val, strlen(val), sq1), n2 = model_value(msg, len, f, sq2);
	char *nul = memchr(sq2, '\0', n2);

	n2 = nul ? (size_t)(nul - sq2) : n2; /* val is a C string: a NUL in it ends it */
	FUZZ_CHECK(!strpbrk(val, "\r\n"), "value '%s' has a line end", val);
	FUZZ_CHECK(n1 == n2 && memcmp(sq1, sq2, n1) == 0, "value '%s' is not the field's", val);
	FUZZ_CHECK(!wsp(val[0]) && (nul || !val[0] || !wsp(val[strlen(val) - 1])),
		   "value '%s' not trimmed", val);
	free(sq1);
	free(sq2);
}

/* smtp_hdr_take against the line model. */
static void check_take(const char *msg, size_t len, const char *f, size_t vlen)
{
	char *a = malloc(len + 1), *want = malloc(len + 1), *val = malloc(len + 2);
	char *sq = malloc(len + 1), small[4096];
	size_t alen = len, wlen = model_take(msg, len, f, want);
	int rc;

	memcpy(a, msg, len);
	rc = smtp_hdr_take(a, &alen, f, small, vlen);
	if (rc == -ENAMETOOLONG) {
		FUZZ_CHECK(alen == len && memcmp(a, msg, len) == 0, "take failed but changed msg");
		rc = smtp_hdr_take(a, &alen, f, val, len + 2);
		FUZZ_CHECK(rc == 1 && (strlen(val) + 1 > vlen ||
				       memchr(sq, '\0', model_value(msg, len, f, sq))),
			   "too long, then %d '%s'", rc, val);
	} else {
		strcpy(val, rc == 1 ? small : "");
	}
	FUZZ_CHECK(rc == 0 || rc == 1, "take of %s: rc %d", f, rc);
	FUZZ_CHECK(alen <= len && (rc == 1 || alen == len), "take: %zu -> %zu bytes", len, alen);
	if (alen != wlen || memcmp(a, want, wlen) != 0) {
		fuzz_hex("got", a, alen);
		fuzz_hex("want", want, wlen);
		FUZZ_CHECK(false, "take of %s differs from the line model", f);
	}
	if (rc == 1)
		check_value(msg, len, f, val);
	FUZZ_CHECK(smtp_hdr_take(a, &alen, f, val, len + 2) == 0, "a second take found %s", f);
	free(a);
	free(want);
	free(val);
	free(sq);
}

/* Rules from the text t[0..n): one address a line, each alias the address plus k '~'. */
static void parse_rules(const char *t, size_t n, unsigned k, struct rules *R)
{
	size_t i = 0, a;

	R->n = 0;
	while (i < n && R->n < MAXR) {
		char *f = R->from[R->n];

		for (a = 0; i < n && t[i] != '\n'; i++)
			if (a < MAXA && (unsigned char)t[i] >= 0x20 && t[i] != 0x7f)
				f[a++] = lower(t[i]);
		f[a] = '\0';
		i++;
		bool dup = a == 0;
		for (unsigned j = 0; j < R->n && !dup; j++)
			dup = strcmp(R->from[j], f) == 0;
		if (dup)
			continue;
		memcpy(R->to[R->n], f, a);
		memset(R->to[R->n] + a, '~', k);
		R->to[R->n][a + k] = '\0';
		R->r[R->n] = (struct smtp_rewrite_rule){f, R->to[R->n]};
		R->n++;
	}
	FUZZ_CHECK(smtp_rewrite_sort(R->r, R->n) == 0, "sort of %u valid rules failed", R->n);
}

/* Offset of the first empty line (the end of the header section), or len. */
static size_t hdr_end(const char *m, size_t len)
{
	const char *p = m, *e = m + len;
	size_t n, t;

	while (p < e && (n = line(p, e, &t)) > 0 && t > 0)
		p += n;
	return (size_t)(p - m);
}

/* Take From, Sender and Reply-To out of a copy of m[0..*len) (returned, malloc'd). */
static char *strip_addr_fields(const char *m, size_t *len)
{
	static const char *const f[] = {"From", "Sender", "Reply-To"};
	char *c = malloc(*len + 1), *val = malloc(*len + 2);

	memcpy(c, m, *len);
	for (int i = 0; i < 3; i++)
		FUZZ_CHECK(smtp_hdr_take(c, len, f[i], val, *len + 2) >= 0, "strip %s", f[i]);
	free(val);
	return c;
}

/* The identity run: equal but for ASCII case. Returns the replacement count. */
static int check_identity(const char *msg, size_t len, const char *text, size_t tn)
{
	static struct rules R;
	char *out;
	size_t olen;
	int rc;

	parse_rules(text, tn, 0, &R);
	rc = smtp_hdr_rewrite(msg, len, R.r, R.n, &out, &olen);
	FUZZ_CHECK(rc >= 0, "identity rewrite: rc %d", rc);
	if (rc == 0) {
		FUZZ_CHECK(out == NULL && olen == 0, "rc 0 but an output");
		return 0;
	}
	FUZZ_CHECK(olen == len, "identity rewrite: %zu -> %zu bytes", len, olen);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(lower(msg[i]) == lower(out[i]),
			   "identity rewrite changed byte %zu: %02x -> %02x", i,
			   (unsigned char)msg[i], (unsigned char)out[i]);
	free(out);
	return rc;
}

/* The run with aliases k bytes longer. */
static void check_rewrite(const char *msg, size_t len, const char *text, size_t tn, unsigned k)
{
	static struct rules R;
	int want = check_identity(msg, len, text, tn), rc;
	size_t olen, body = len - hdr_end(msg, len), l1 = len, l2;
	char *out, *s1, *s2;

	parse_rules(text, tn, k, &R);
	rc = smtp_hdr_rewrite(msg, len, R.r, R.n, &out, &olen);
	FUZZ_CHECK(rc == want, "k=%u: %d replacements, identity %d", k, rc, want);
	if (rc == 0)
		return;
	FUZZ_CHECK(olen == len + k * (size_t)rc, "%zu + %u * %d != %zu", len, k, rc, olen);
	FUZZ_CHECK(memcmp(out + olen - body, msg + len - body, body) == 0, "body changed");
	FUZZ_CHECK(hdr_end(out, olen) == olen - body, "header section end moved");
	l2 = olen;
	s1 = strip_addr_fields(msg, &l1);
	s2 = strip_addr_fields(out, &l2);
	if (l1 != l2 || memcmp(s1, s2, l1) != 0) {
		fuzz_hex("in", s1, l1);
		fuzz_hex("out", s2, l2);
		FUZZ_CHECK(false, "rewrite changed bytes outside From/Sender/Reply-To");
	}
	free(s1);
	free(s2);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fields[] = {"X-Riptide-Pool", "From", "Received", "X"};
	static const size_t rooms[] = {1, 2, 4, 8, 16, 64, 256, 4096};
	const char *d = (const char *)data, *nul, *msg;
	size_t tn, len;

	if (size < 1)
		return 0;
	nul = memchr(d + 1, '\0', size - 1);
	tn = nul ? (size_t)(nul - d - 1) : 0;
	msg = nul ? nul + 1 : d + 1;
	len = size - (size_t)(msg - d);
	check_take(msg, len, fields[(data[0] >> 3) & 3], rooms[data[0] >> 5]);
	check_rewrite(msg, len, d + 1, tn, data[0] & 7);
	return 0;
}
