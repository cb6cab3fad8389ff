/* dsn_int — what the files of engine/dsn/ share: the growable output buffer, the text helpers
 * (sanitising, header folding, quoted-printable, RFC 2047, dates), the compiled template and
 * the parse-from-buffer entry the fuzz harness and the unit tests use. Nothing outside
 * engine/dsn/, its tests, its fuzz harness and its benchmark includes this header.
 *
 * Why: the template compiler (dsn_tpl.c), the text helpers (dsn_text.c) and the notice
 * assembly (dsn_build.c) are separate concerns that meet in these few types.
 */
#ifndef RIPTIDE_DSN_INT_H
#define RIPTIDE_DSN_INT_H

#include "engine/dsn/dsn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- output buffer: appends never fail loudly; the first allocation failure sticks ---- */

struct dsn_buf {
	char *p;
	size_t len, cap;
	int err; /* 0 or -ENOMEM (then p is unchanged and later appends do nothing) */
};

/* dsn_buf_init: an empty buffer with room for hint bytes (allocated now; err set on failure). */
void dsn_buf_init(struct dsn_buf *b, size_t hint);
/* dsn_buf_free: free b's memory; b is empty afterwards. */
void dsn_buf_free(struct dsn_buf *b);
/* dsn_buf_room: make room for n more bytes (plus a NUL); false (err set) when out of memory. */
bool dsn_buf_room(struct dsn_buf *b, size_t n);
/* dsn_buf_put: append s[0..n). */
void dsn_buf_put(struct dsn_buf *b, const void *s, size_t n);
/* dsn_buf_puts: append the string s. */
void dsn_buf_puts(struct dsn_buf *b, const char *s);
/* dsn_buf_putc: append one byte. */
void dsn_buf_putc(struct dsn_buf *b, char c);
/* dsn_buf_putu: append v in decimal. */
void dsn_buf_putu(struct dsn_buf *b, uint64_t v);
/* dsn_buf_printf: append printf output. */
void dsn_buf_printf(struct dsn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- text helpers (dsn_text.c) ---- */

/* dsn_utf8_len: length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 when s does not
 * start one (overlong forms, surrogates and code points over U+10FFFF are invalid). ASCII
 * bytes, controls included, are sequences of length 1. *cp (may be NULL) gets the code point. */
size_t dsn_utf8_len(const unsigned char *s, size_t n, uint32_t *cp);

/* Flags of dsn_clean. */
#define DSN_CLEAN_UTF8	0x1u /* keep valid UTF-8 (else every byte >= 0x80 becomes '?') */
#define DSN_CLEAN_NOSPC 0x2u /* drop white space and controls instead of collapsing them */

/* dsn_clean: append s[0..n) to out as one line: controls (CR, LF, TAB, NUL...) become spaces,
 * runs of spaces collapse into one, leading and trailing spaces go, invalid UTF-8 (or any
 * 8-bit byte without DSN_CLEAN_UTF8) becomes '?'. At most max bytes of output: a longer text
 * is cut at a character boundary and "..." appended. Never writes CR or LF. */
void dsn_clean(struct dsn_buf *out, const char *s, size_t n, size_t max, unsigned flags);

/* dsn_header: append "name: val" CRLF, folded at spaces so that lines stay near 78 octets and
 * never pass DSN_LINE_MAX (a word too long for that is broken with CRLF SP). val must come
 * from dsn_clean (no CR, LF, no runs of spaces). */
void dsn_header(struct dsn_buf *out, const char *name, const char *val, size_t vlen);

/* dsn_rfc2047: append text[0..n) (valid UTF-8, one line) as RFC 2047 "=?utf-8?B?...?=" words
 * of at most 75 characters separated by spaces, each word holding whole characters. */
void dsn_rfc2047(struct dsn_buf *out, const char *text, size_t n);

/* dsn_qp: append s[0..n) quoted-printable encoded (RFC 2045 6.7): lines of at most 76
 * characters, '=', controls, 8-bit bytes and trailing white space encoded, "=" soft breaks;
 * CRLF (or a bare LF) stays a line break, written CRLF. A last line without one gets CRLF. */
void dsn_qp(struct dsn_buf *out, const char *s, size_t n);

/* dsn_date: write the RFC 5322 date of ms (UTC, "Tue, 14 Jan 2025 10:22:01 +0000") into
 * buf (room for DSN_DATE_MAX bytes, NUL-terminated). */
#define DSN_DATE_MAX 40
void dsn_date(uint64_t ms, char *buf);

/* dsn_duration: write ms as a human duration with its two largest units ("2 days 3 hours",
 * "5 minutes", "less than a minute") into buf (room for 64 bytes). */
void dsn_duration(uint64_t ms, char *buf, size_t len);

/* Line facts of a byte range (dsn_scan). */
struct dsn_scan {
	size_t max_line; /* longest line without its line break */
	bool bare;	 /* a CR not before LF, or an LF not after CR */
	bool nul;	 /* a NUL byte */
	bool eightbit;	 /* a byte >= 0x80 */
	bool final_crlf; /* ends with CRLF (or is empty) */
	size_t hdr_len;	 /* length of the header block (through the last header line's break) */
	bool has_body;	 /* an empty line ends the header block */
};

/* dsn_scan: scan s[0..n) once and fill *sc. */
void dsn_scan(const char *s, size_t n, struct dsn_scan *sc);

/* dsn_put_crlf: append s[0..n) with every bare CR, bare LF or CRLF written as CRLF, and a CRLF
 * after a last line that lacks one (nothing for n == 0). */
void dsn_put_crlf(struct dsn_buf *out, const char *s, size_t n);

/* ---- compiled templates (dsn_tpl.c) ---- */

enum dsn_ph {
	DSN_PH_LIT = 0, /* a literal run of the template's text, not a placeholder */
	DSN_PH_SENDER,
	DSN_PH_RECIPIENTS,
	DSN_PH_REASONS,
	DSN_PH_QUEUE_ID,
	DSN_PH_HOSTNAME,
	DSN_PH_QUEUED_TIME,
	DSN_PH_DELAY,
	DSN_PH_ENVID,
};

struct dsn_seg {
	uint8_t ph;	   /* enum dsn_ph */
	uint32_t off, len; /* DSN_PH_LIT: the bytes lit[off..off+len) */
};

/* A compiled subject or text: segments over its own literal bytes (text lines end in CRLF). */
struct dsn_part {
	char *lit;
	struct dsn_seg *seg;
	unsigned n;
};

/* One kind's template. */
struct dsn_tpl {
	struct dsn_part subject, text;
};

struct dsn_templates {
	struct dsn_tpl k[3]; /* indexed by enum dsn_kind */
};

/* dsn_templates_parse: compile buf[0..len) (one template file's bytes; name is used in err)
 * and make it kind's template in t, replacing the one t had (a header block without text, or
 * an empty Subject, keeps t's text or subject). Returns 0, -EINVAL with "name:line: what" in
 * err (t unchanged), or -ENOMEM. */
int dsn_templates_parse(struct dsn_templates *t, enum dsn_kind kind, const char *name,
			const char *buf, size_t len, char *err, size_t errlen);

/* What dsn_render needs to fill a placeholder: dsn_build's context (dsn_build.c). */
struct dsn_ctx;

/* dsn_ph_put: append placeholder ph's value for c to out (dsn_build.c). */
void dsn_ph_put(const struct dsn_ctx *c, enum dsn_ph ph, struct dsn_buf *out);

/* dsn_render: append part p of a template to out, placeholders filled by dsn_ph_put. */
void dsn_render(const struct dsn_part *p, const struct dsn_ctx *c, struct dsn_buf *out);

#endif
