/* mime_enc — the output buffer and the two encoders of RFC 2045: quoted-printable (6.7) and
 * base64 (6.8), plus re-wrapping of an existing base64 body.
 *
 * Why this shape: bodies can be megabytes, so each encoder reserves its worst case once and
 * writes bytes directly instead of appending them one by one. The buffer remembers an
 * allocation failure (oom) and ignores later writes, so the converter checks once at the end.
 * Encoded output never ends with a line break of its own: the CRLF that follows a part belongs
 * to the next boundary delimiter, and the converter copies it.
 */
#include "engine/mime/mime_types.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char mime_hex[] = "0123456789ABCDEF";
static const char mime_b64_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Room for n more bytes at b->p + b->len, or NULL (oom set) if it cannot be had. */
static char *mime_buf_room(struct mime_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *np;

	if (b->oom)
		return NULL;
	if (n > SIZE_MAX / 4 - b->len) {
		b->oom = true;
		return NULL;
	}
	if (b->len + n <= b->cap)
		return b->p + b->len;
	while (cap < b->len + n)
		cap *= 2;
	np = realloc(b->p, cap);
	if (!np) {
		b->oom = true;
		return NULL;
	}
	b->p = np;
	b->cap = cap;
	return b->p + b->len;
}

/* mime_buf_put: append n bytes (nothing after an allocation failure). */
void mime_buf_put(struct mime_buf *b, const char *p, size_t n)
{
	char *w = n ? mime_buf_room(b, n) : NULL;

	if (!w)
		return;
	memcpy(w, p, n);
	b->len += n;
}

/* mime_buf_puts: append a C string. */
void mime_buf_puts(struct mime_buf *b, const char *s)
{
	mime_buf_put(b, s, strlen(s));
}

static bool mime_crlf_at(const char *p, size_t n, size_t i)
{
	return i + 1 < n && p[i] == '\r' && p[i + 1] == '\n';
}

static char *mime_qp_byte(char *w, unsigned char c, bool lit)
{
	if (lit) {
		*w++ = (char)c;
	} else {
		*w++ = '=';
		*w++ = mime_hex[c >> 4];
		*w++ = mime_hex[c & 15];
	}
	return w;
}

/* mime_qp: append p[0..n) quoted-printable. CRLF is a hard line break; every other byte that is
 * not printable ASCII (bare CR and LF included), '=', blanks before a line break or at the end,
 * and a '-' that would start a line (so no line can look like a boundary) become =XX. Lines
 * get a soft break ("=" CRLF) to stay within 76 characters. Decoding gives p back exactly. */
void mime_qp(struct mime_buf *b, const char *p, size_t n)
{
	char *w0 = mime_buf_room(b, 4 * n + 8), *w = w0;
	size_t col = 0;

	if (!w)
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		bool eol = i + 1 == n || mime_crlf_at(p, n, i + 1), lit;

		if (mime_crlf_at(p, n, i)) {
			memcpy(w, "\r\n", 2);
			w += 2;
			col = 0;
			i++;
			continue;
		}
		lit = (c > 32 && c < 127 && c != '=') || ((c == ' ' || c == '\t') && !eol);
		if (col + (lit ? 1 : 3) > MIME_QP_COLS - 1) {
			memcpy(w, "=\r\n", 3);
			w += 3;
			col = 0;
		}
		if (col == 0 && c == '-')
			lit = false;
		w = mime_qp_byte(w, c, lit);
		col += lit ? 1 : 3;
	}
	b->len += (size_t)(w - w0);
}

/* mime_b64: append p[0..n) in base64, 76 characters per line, CRLF between lines. */
void mime_b64(struct mime_buf *b, const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	char *w0 = mime_buf_room(b, (n / 57 + 1) * (MIME_B64_COLS + 2) + 4), *w = w0;
	size_t col = 0;

	if (!w)
		return;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)u[i] << 16;
		size_t k = n - i < 3 ? n - i : 3;

		if (col == MIME_B64_COLS) {
			memcpy(w, "\r\n", 2);
			w += 2;
			col = 0;
		}
		v |= k > 1 ? (uint32_t)u[i + 1] << 8 : 0;
		v |= k > 2 ? u[i + 2] : 0;
		*w++ = mime_b64_alpha[v >> 18];
		*w++ = mime_b64_alpha[(v >> 12) & 63];
		*w++ = k > 1 ? mime_b64_alpha[(v >> 6) & 63] : '=';
		*w++ = k > 2 ? mime_b64_alpha[v & 63] : '=';
		col += 4;
	}
	b->len += (size_t)(w - w0);
}

static bool mime_b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

/* mime_b64_plain: p[0..n) holds only base64 characters, '=' and blanks/line breaks. */
bool mime_b64_plain(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!mime_b64_char(p[i]) && p[i] != ' ' && p[i] != '\t' && p[i] != '\r' &&
		    p[i] != '\n')
			return false;
	return true;
}

/* mime_b64_rewrap: append the base64 characters of p[0..n) (mime_b64_plain) in lines of 76,
 * dropping the old line breaks and blanks: decoders ignore them, so the content is unchanged. */
void mime_b64_rewrap(struct mime_buf *b, const char *p, size_t n)
{
	char *w0 = mime_buf_room(b, n + n / 38 + 8), *w = w0;
	size_t col = 0;

	if (!w)
		return;
	for (size_t i = 0; i < n; i++) {
		if (!mime_b64_char(p[i]))
			continue;
		if (col == MIME_B64_COLS) {
			memcpy(w, "\r\n", 2);
			w += 2;
			col = 0;
		}
		*w++ = p[i];
		col++;
	}
	b->len += (size_t)(w - w0);
}
