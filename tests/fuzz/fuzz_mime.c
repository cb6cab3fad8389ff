/* fuzz_mime — libFuzzer harness for engine/mime (mime_to_7bit, mime_walk, mime_has_8bit).
 *
 * Why: the converter rewrites untrusted messages on their way to a 7-bit hop; a bug there
 * either corrupts mail silently or puts 8-bit data, bare line breaks or over-long lines on
 * the wire. So this checks invariants, not only crashes, with its own tiny decoders:
 *   - the result is 0, 1 or -EBADMSG, and 1 exactly when the input has no byte >= 0x80
 *     (mime_has_8bit agrees with a byte loop);
 *   - converted output: bytes 1..127 only, CR and LF only as CRLF, lines <= 998 octets, and
 *     converting it again says "already 7-bit";
 *   - walking the input and the output gives the same leaves (same count, depth, text or not)
 *     and each leaf of the output decodes to the bytes of the input's leaf: quoted-printable
 *     or base64 where the converter encoded it, the same base64 characters where it re-wrapped
 *     a base64 body, the same bytes where it copied.
 * A violation aborts with a message. tests/unit/mime includes this file to run the same checks
 * on its cases.
 *
 * Build and run (from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_mime.c
 * engine/mime/mime_*.c \ -o fuzz_mime && ./fuzz_mime -max_total_time=60 corpus_dir
 */
#include "engine/mime/mime.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_fail(const char *why)
{
	fprintf(stderr, "fuzz_mime: invariant broken: %s\n", why);
	abort();
}

/* Quoted-printable as RFC 2045 6.7 decodes it (upper-case hex only, as encoders must write):
 * "=" CRLF is a soft break. Returns the decoded length into o (room for n), or SIZE_MAX. */
static size_t fuzz_qp_decode(const char *p, size_t n, char *o)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *h1, *h2;
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] != '=') {
			o[k++] = p[i];
			continue;
		}
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
			i += 2;
			continue;
		}
		if (i + 2 >= n || !p[i + 1] || !p[i + 2] || !(h1 = strchr(hex, p[i + 1])) ||
		    !(h2 = strchr(hex, p[i + 2])))
			return SIZE_MAX;
		o[k++] = (char)((h1 - hex) << 4 | (h2 - hex));
		i += 2;
	}
	return k;
}

static int fuzz_b64_val(char c)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *q = c ? strchr(al, c) : NULL;

	return q ? (int)(q - al) : -1;
}

/* Base64: the alphabet's characters in order, everything else ('=', line breaks) skipped. */
static size_t fuzz_b64_decode(const char *p, size_t n, char *o)
{
	uint32_t acc = 0;
	size_t k = 0, got = 0;

	for (size_t i = 0; i < n; i++) {
		int v = fuzz_b64_val(p[i]);

		if (v < 0)
			continue;
		acc = acc << 6 | (uint32_t)v;
		if (++got % 4 == 0) {
			o[k++] = (char)(acc >> 16);
			o[k++] = (char)(acc >> 8);
			o[k++] = (char)acc;
		}
	}
	if (got % 4 == 2)
		o[k++] = (char)(acc >> 4);
	if (got % 4 == 3) {
		o[k++] = (char)(acc >> 10);
		o[k++] = (char)(acc >> 2);
	}
	return k;
}

/* The base64 characters and '=' of p, in order (what re-wrapping must keep). */
static size_t fuzz_b64_chars(const char *p, size_t n, char *o)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (fuzz_b64_val(p[i]) >= 0 || p[i] == '=')
			o[k++] = p[i];
	return k;
}

/* 7-bit, no NUL, CR and LF only as CRLF, lines <= MIME_LINE_MAX (the last may lack CRLF). */
static void fuzz_check_7bit(const char *p, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == 0 || c >= 0x80)
			fuzz_fail("output byte is NUL or 8-bit");
		if (c == '\n')
			fuzz_fail("bare LF in output");
		if (c == '\r') {
			if (i + 1 >= n || p[i + 1] != '\n')
				fuzz_fail("bare CR in output");
			i++;
			col = 0;
		} else if (++col > MIME_LINE_MAX) {
			fuzz_fail("output line longer than 998");
		}
	}
}

struct fuzz_leaves {
	struct mime_leaf *v;
	size_t n, cap;
};

static int fuzz_collect(const struct mime_leaf *l, void *arg)
{
	struct fuzz_leaves *ls = arg;

	if (ls->n == ls->cap) {
		ls->cap = ls->cap ? 2 * ls->cap : 16;
		ls->v = realloc(ls->v, ls->cap * sizeof(*ls->v));
		if (!ls->v)
			fuzz_fail("out of memory");
	}
	ls->v[ls->n++] = *l;
	return 0;
}

static bool fuzz_identity(enum mime_cte c)
{
	return c == MIME_CTE_NONE || c == MIME_CTE_7BIT || c == MIME_CTE_8BIT ||
	       c == MIME_CTE_BINARY;
}

/* Output leaf b against input leaf a (see the file comment). */
static void fuzz_check_leaf(const struct mime_leaf *a, const struct mime_leaf *b)
{
	size_t room = (a->len > b->len ? a->len : b->len) + 1, ka, kb;
	char *da = malloc(room), *db = malloc(room);

	if (!da || !db)
		fuzz_fail("out of memory");
	if (a->depth != b->depth || a->text != b->text)
		fuzz_fail("leaf changed depth or type");
	if (b->cte == a->cte && a->cte == MIME_CTE_BASE64) {
		ka = fuzz_b64_chars(a->body, a->len, da);
		kb = fuzz_b64_chars(b->body, b->len, db);
	} else if (b->cte == a->cte) {
		ka = a->len;
		kb = b->len;
		memcpy(da, a->body, ka);
		memcpy(db, b->body, kb);
	} else {
		if (!fuzz_identity(a->cte) || (b->cte != MIME_CTE_QP && b->cte != MIME_CTE_BASE64))
			fuzz_fail("leaf encoding changed in a way that was not asked for");
		if (b->cte != (a->text ? MIME_CTE_QP : MIME_CTE_BASE64))
			fuzz_fail("text not quoted-printable or other type not base64");
		ka = a->len;
		memcpy(da, a->body, ka);
		kb = b->cte == MIME_CTE_QP ? fuzz_qp_decode(b->body, b->len, db)
					   : fuzz_b64_decode(b->body, b->len, db);
	}
	if (ka != kb || memcmp(da, db, ka) != 0)
		fuzz_fail("leaf does not decode to the original bytes");
	free(da);
	free(db);
}

static void fuzz_check_leaves(const char *in, size_t in_len, const char *out, size_t out_len)
{
	struct fuzz_leaves a = {0}, b = {0};

	if (mime_walk(in, in_len, fuzz_collect, &a) != 0 ||
	    mime_walk(out, out_len, fuzz_collect, &b) != 0)
		fuzz_fail("walk stopped");
	if (a.n != b.n)
		fuzz_fail("output has a different number of leaves");
	for (size_t i = 0; i < a.n; i++)
		fuzz_check_leaf(&a.v[i], &b.v[i]);
	free(a.v);
	free(b.v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	char *out = (char *)"x", *again = NULL;
	size_t out_len = 1, again_len;
	bool eight = false;
	int ret;

	for (size_t i = 0; i < size; i++)
		eight |= data[i] >= 0x80;
	if (mime_has_8bit(in, size) != eight)
		fuzz_fail("mime_has_8bit wrong");
	ret = mime_to_7bit(in, size, &out, &out_len);
	if (ret != 0 && ret != 1 && ret != -EBADMSG)
		fuzz_fail("unexpected return value");
	if ((ret == 1) != !eight)
		fuzz_fail("1 must mean exactly: no 8-bit byte");
	if (ret != 0) {
		if (out || out_len)
			fuzz_fail("*out set on failure");
		return 0;
	}
	fuzz_check_7bit(out, out_len);
	if (mime_to_7bit(out, out_len, &again, &again_len) != 1)
		fuzz_fail("converted output is not 7-bit for the converter");
	fuzz_check_leaves(in, size, out, out_len);
	free(out);
	return 0;
}
