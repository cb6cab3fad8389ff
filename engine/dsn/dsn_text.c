/* dsn_text — the byte-level helpers of the DSN builder: the output buffer, UTF-8 checking,
 * sanitising of foreign text, header folding, quoted-printable, RFC 2047 words, dates and the
 * one-pass line scan of the original message.
 *
 * Why here and not in dsn_build.c: these are the places where a hostile reply or a broken
 * original could break the notice's structure (a CR/LF adding a header, a line over 998
 * octets, an 8-bit byte in a header), so each is small, separately tested through the builder,
 * and writes only what its contract allows.
 */
#include "engine/dsn/dsn_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DSN_FOLD_SOFT 78 /* preferred line length of a folded header (RFC 5322 2.1.1) */

/* dsn_buf_init: see dsn_int.h. */
void dsn_buf_init(struct dsn_buf *b, size_t hint)
{
	*b = (struct dsn_buf){0};
	dsn_buf_room(b, hint);
}

/* dsn_buf_free: see dsn_int.h. */
void dsn_buf_free(struct dsn_buf *b)
{
	free(b->p);
	*b = (struct dsn_buf){0};
}

/* dsn_buf_room: see dsn_int.h. */
bool dsn_buf_room(struct dsn_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->err)
		return false;
	if (n < b->cap - b->len) /* room for n bytes and a NUL */
		return true;
	if (n > SIZE_MAX / 2 - b->len - 64) {
		b->err = -ENOMEM;
		return false;
	}
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->err = -ENOMEM;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

/* dsn_buf_put: see dsn_int.h. */
void dsn_buf_put(struct dsn_buf *b, const void *s, size_t n)
{
	if (n == 0 || !dsn_buf_room(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* dsn_buf_puts: see dsn_int.h. */
void dsn_buf_puts(struct dsn_buf *b, const char *s)
{
	dsn_buf_put(b, s, strlen(s));
}

/* dsn_buf_putc: see dsn_int.h. */
void dsn_buf_putc(struct dsn_buf *b, char c)
{
	if (!dsn_buf_room(b, 1))
		return;
	b->p[b->len++] = c;
}

/* dsn_buf_printf: see dsn_int.h. */
void dsn_buf_printf(struct dsn_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		dsn_buf_put(b, small, (size_t)n);
		return;
	}
	if (!dsn_buf_room(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* dsn_buf_putu: see dsn_int.h. */
void dsn_buf_putu(struct dsn_buf *b, uint64_t v)
{
	char d[20];
	size_t k = sizeof(d);

	do
		d[--k] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	dsn_buf_put(b, d + k, sizeof(d) - k);
}

/* dsn_utf8_len: see dsn_int.h. */
size_t dsn_utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t k;

	if (c < 0x80)
		k = 1, min = 0;
	else if (c >= 0xC2 && c <= 0xDF)
		k = 2, min = 0x80, c &= 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		k = 3, min = 0x800, c &= 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		k = 4, min = 0x10000, c &= 0x07;
	else
		return 0;
	if (k > n)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3Fu);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	if (cp)
		*cp = c;
	return k;
}

/* The end of the run of printable ASCII (0x21..0x7E) that starts at u[i]. */
static size_t dsn_plain_run(const unsigned char *u, size_t i, size_t n)
{
	while (i < n && u[i] > 0x20 && u[i] < 0x7F)
		i++;
	return i;
}

/* dsn_clean: see dsn_int.h. */
void dsn_clean(struct dsn_buf *out, const char *s, size_t n, size_t max, unsigned flags)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t room = (n < max ? n : max) + 4, w = 0, i = 0, k, take;
	bool space = false, cut = false;
	char *o;

	if (!s || !dsn_buf_room(out, room))
		return;
	o = out->p + out->len;
	while (i < n && !cut) {
		if (u[i] <= 0x20 || u[i] == 0x7F) {
			space = !(flags & DSN_CLEAN_NOSPC) && w > 0;
			i++;
			continue;
		}
		k = dsn_plain_run(u, i, n) - i;
		if (k == 0) /* 8-bit: one UTF-8 character, or '?' for a byte that is none */
			k = (flags & DSN_CLEAN_UTF8) ? dsn_utf8_len(u + i, n - i, NULL) : 0;
		take = k ? k : 1;
		if (w + space + take > max) { /* an ASCII run is cut, a character never split */
			take = u[i] < 0x80 && w + space < max ? max - w - space : 0;
			cut = true;
		}
		if (take && space)
			o[w++] = ' ';
		space = false;
		if (take)
			memcpy(o + w, k ? (const char *)u + i : "?", take);
		w += take;
		i += take;
	}
	if (cut) {
		memcpy(o + w, "...", 3);
		w += 3;
	}
	out->len += w;
}

/* How many bytes of v[0..n) go on a header line that already holds col octets: all when they
 * fit in DSN_FOLD_SOFT, else up to the last space that fits, else up to the first space that
 * keeps the line within DSN_LINE_MAX, else a hard cut at a UTF-8 character boundary. Always
 * at least 1 (v[0] may be the space that starts a continuation line). */
static size_t dsn_fold_at(const char *v, size_t n, size_t col)
{
	size_t soft = col < DSN_FOLD_SOFT ? DSN_FOLD_SOFT - col : 1;
	size_t hard = col < DSN_LINE_MAX ? DSN_LINE_MAX - col : 1, take;

	if (n <= soft)
		return n;
	for (size_t i = soft; i >= 1; i--)
		if (v[i] == ' ')
			return i;
	for (size_t i = soft + 1; i < n && i <= hard; i++)
		if (v[i] == ' ')
			return i;
	if (n <= hard)
		return n;
	take = hard;
	while (take > 1 && ((unsigned char)v[take] & 0xC0) == 0x80)
		take--;
	return take;
}

/* dsn_header: see dsn_int.h. */
void dsn_header(struct dsn_buf *out, const char *name, const char *val, size_t vlen)
{
	size_t col = strlen(name) + 1, take;

	dsn_buf_puts(out, name);
	dsn_buf_putc(out, ':');
	if (vlen && val[0] != ' ') {
		dsn_buf_putc(out, ' ');
		col++;
	}
	while (vlen > 0) {
		take = dsn_fold_at(val, vlen, col);
		dsn_buf_put(out, val, take);
		val += take;
		vlen -= take;
		if (vlen == 0)
			break;
		dsn_buf_put(out, "\r\n", 2);
		col = 0;
		if (val[0] != ' ') {
			dsn_buf_putc(out, ' ');
			col = 1;
		}
	}
	dsn_buf_put(out, "\r\n", 2);
}

static const char dsn_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Append n (<= 45) bytes as base64. */
static void dsn_b64_put(struct dsn_buf *out, const unsigned char *s, size_t n)
{
	char w[64], *o = w;
	size_t i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		*o++ = dsn_b64[v >> 18];
		*o++ = dsn_b64[v >> 12 & 63];
		*o++ = dsn_b64[v >> 6 & 63];
		*o++ = dsn_b64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
		*o++ = dsn_b64[v >> 18];
		*o++ = dsn_b64[v >> 12 & 63];
		*o++ = i + 1 < n ? dsn_b64[v >> 6 & 63] : '=';
		*o++ = '=';
	}
	dsn_buf_put(out, w, (size_t)(o - w));
}

/* dsn_rfc2047: see dsn_int.h. */
void dsn_rfc2047(struct dsn_buf *out, const char *text, size_t n)
{
	const unsigned char *u = (const unsigned char *)text;
	size_t i = 0, w, k;

	while (i < n) {
		for (w = 0; i + w < n; w += k) {
			k = dsn_utf8_len(u + i + w, n - i - w, NULL);
			k = k ? k : 1;
			if (w + k > 45)
				break;
		}
		if (i)
			dsn_buf_putc(out, ' ');
		dsn_buf_puts(out, "=?utf-8?B?");
		dsn_b64_put(out, u + i, w);
		dsn_buf_puts(out, "?=");
		i += w;
	}
}

/* Quoted-printable of one line's bytes (no CRLF), soft breaks at 76 columns. */
static char *dsn_qp_line(char *o, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		bool lit =
		    (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && i + 1 < n);
		size_t w = lit ? 1 : 3;

		if (col + w > 75) {
			memcpy(o, "=\r\n", 3);
			o += 3;
			col = 0;
		}
		if (lit) {
			*o++ = (char)c;
		} else {
			*o++ = '=';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
		col += w;
	}
	memcpy(o, "\r\n", 2);
	return o + 2;
}

/* dsn_qp: see dsn_int.h. */
void dsn_qp(struct dsn_buf *out, const char *s, size_t n)
{
	const char *end = s + n, *nl, *le;
	size_t len;
	char *o;

	/* per byte at most 3, plus a soft break per 25 bytes; a CRLF per line break (and one
	 * for a last line without) */
	if (!dsn_buf_room(out, n * 3 + n / 8 + 4))
		return;
	o = out->p + out->len;
	while (s < end) {
		nl = memchr(s, '\n', (size_t)(end - s));
		le = nl ? nl : end;
		len = (size_t)(le - s);
		if (nl && len && le[-1] == '\r')
			len--;
		o = dsn_qp_line(o, (const unsigned char *)s, len);
		s = nl ? nl + 1 : end;
	}
	out->len = (size_t)(o - out->p);
}

/* Write sep, then v (0..99) as two digits; returns the end. */
static char *dsn_2d(char *o, const char *sep, int v)
{
	size_t n = strlen(sep);

	memcpy(o, sep, n);
	o[n] = (char)('0' + v / 10 % 10);
	o[n + 1] = (char)('0' + v % 10);
	return o + n + 2;
}

/* dsn_date: see dsn_int.h. */
void dsn_date(uint64_t ms, char *buf)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)(ms / 1000u);
	struct tm tm;

	char *o = buf;

	if (ms / 1000u > 253402300799u || !gmtime_r(&t, &tm)) { /* past 9999-12-31: clamp */
		t = 253402300799;
		gmtime_r(&t, &tm);
	}
	memcpy(o, days[tm.tm_wday % 7], 3);
	o = dsn_2d(o + 3, ", ", tm.tm_mday);
	*o++ = ' ';
	memcpy(o, mons[tm.tm_mon % 12], 3);
	o = dsn_2d(o + 3, " ", (tm.tm_year + 1900) / 100);
	o = dsn_2d(o, "", (tm.tm_year + 1900) % 100);
	o = dsn_2d(o, " ", tm.tm_hour);
	o = dsn_2d(o, ":", tm.tm_min);
	o = dsn_2d(o, ":", tm.tm_sec);
	memcpy(o, " +0000", 7);
}

/* dsn_duration: see dsn_int.h. */
void dsn_duration(uint64_t ms, char *buf, size_t len)
{
	static const struct {
		const char *name;
		uint64_t s;
	} u[] = {{"day", 86400}, {"hour", 3600}, {"minute", 60}, {"second", 1}};
	uint64_t s = ms / 1000u, a, b;
	size_t i = 0;
	int n;

	if (s < 60) {
		snprintf(buf, len, "less than a minute");
		return;
	}
	while (s < u[i].s)
		i++;
	a = s / u[i].s;
	b = (s % u[i].s) / u[i + 1].s;
	n = snprintf(buf, len, "%llu %s%s", (unsigned long long)a, u[i].name, a == 1 ? "" : "s");
	if (b && i < 2 && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " %llu %s%s", (unsigned long long)b,
			 u[i + 1].name, b == 1 ? "" : "s");
}

/* The byte facts dsn_scan needs besides lines: how many CR bytes, a NUL, a byte >= 0x80. */
struct dsn_bytes {
	size_t cr;
	bool nul, hi;
};

/* One pass over s[0..n) in fixed 64-byte blocks, a loop the compiler vectorises (a memchr per
 * line for CR would cost a call per line). */
static void dsn_bytes(const unsigned char *u, size_t n, struct dsn_bytes *b)
{
	size_t i = 0, cr = 0;
	unsigned char nul = 0, hi = 0;

	for (; i + 64 <= n; i += 64) {
		unsigned char c = 0, z = 0, h = 0;

		for (unsigned j = 0; j < 64; j++) {
			c += u[i + j] == '\r';
			z |= u[i + j] == 0;
			h |= u[i + j];
		}
		cr += c;
		nul |= z;
		hi |= h;
	}
	for (; i < n; i++) {
		cr += u[i] == '\r';
		nul |= u[i] == 0;
		hi |= u[i];
	}
	*b = (struct dsn_bytes){cr, nul != 0, (hi & 0x80) != 0};
}

/* dsn_scan: see dsn_int.h. */
void dsn_scan(const char *s, size_t n, struct dsn_scan *sc)
{
	const char *p = s, *end = s + n, *nl;
	struct dsn_bytes b;
	size_t crlf = 0, len;

	*sc = (struct dsn_scan){.final_crlf = n == 0, .hdr_len = n};
	if (n == 0)
		return;
	sc->final_crlf = n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n';
	dsn_bytes((const unsigned char *)s, n, &b);
	sc->nul = b.nul;
	sc->eightbit = b.hi;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = (size_t)((nl ? nl : end) - p);
		if (nl && len && nl[-1] == '\r')
			len--, crlf++;
		else if (nl)
			sc->bare = true;
		if (len > sc->max_line)
			sc->max_line = len;
		if (len == 0 && nl && !sc->has_body) {
			sc->has_body = true;
			sc->hdr_len = (size_t)(p - s);
		}
		p = nl ? nl + 1 : end;
	}
	if (b.cr != crlf)
		sc->bare = true;
}

/* dsn_put_crlf: see dsn_int.h. */
void dsn_put_crlf(struct dsn_buf *out, const char *s, size_t n)
{
	char *o;

	if (n == 0 || !dsn_buf_room(out, 2 * n + 2))
		return;
	o = out->p + out->len;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
			*o++ = '\r';
			*o++ = '\n';
		} else {
			*o++ = s[i];
		}
	}
	if (o[-1] != '\n') {
		*o++ = '\r';
		*o++ = '\n';
	}
	out->len = (size_t)(o - out->p);
}
