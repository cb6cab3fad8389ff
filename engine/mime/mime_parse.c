/* mime_parse — reading MIME structure: lines, header fields, Content-Type and
 * Content-Transfer-Encoding, boundary delimiter lines (RFC 2045, 2046, 5322).
 *
 * Why this shape: the converter and mime_walk must see one message the same way, so every
 * parsing decision lives here and nowhere else. The parser never fails: what it cannot read
 * falls back to RFC 2045's defaults (an unreadable Content-Type is text/plain) or to a kind
 * the converter refuses to re-encode (MIME_K_NOENC). It only points into the message.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem; meson defines it, a bare clang command line may not */
#endif
#include "engine/mime/mime_types.h"

#include <string.h>
#include <strings.h>

/* mime_line_next: the start of the line after the one at p (just past its LF), or end. */
const char *mime_line_next(const char *p, const char *end)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));

	return lf ? lf + 1 : end;
}

static bool mime_line_clean(const unsigned char *u, size_t n)
{
	unsigned char acc = 0;

	if (n > MIME_LINE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (u[i] == 0 || u[i] == '\r')
			return false;
		acc |= u[i];
	}
	return !(acc & 0x80);
}

/* mime_clean: [p, end) is clean 7-bit: no byte >= 0x80, no NUL, CR and LF only as CRLF, every
 * line <= MIME_LINE_MAX octets (the last line may lack its CRLF). */
bool mime_clean(const char *p, const char *end)
{
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *le = lf ? lf : end;

		if (lf) {
			if (le == p || le[-1] != '\r')
				return false;
			le--;
		}
		if (!mime_line_clean((const unsigned char *)p, (size_t)(le - p)))
			return false;
		p = lf ? lf + 1 : end;
	}
	return true;
}

static bool mime_blank(const char *q, const char *end)
{
	return q < end && (*q == '\n' || (*q == '\r' && q + 1 < end && q[1] == '\n'));
}

/* A field starts with a name of printable non-':' bytes, optional blanks, then ':'. */
static const char *mime_field_colon(const char *q, const char *end)
{
	const char *n = q;

	while (n<end && * n> 32 && *n < 127 && *n != ':')
		n++;
	if (n == q)
		return NULL;
	while (n < end && (*n == ' ' || *n == '\t'))
		n++;
	return n < end && *n == ':' ? n : NULL;
}

/* mime_field_next: if a header field starts at *q (before end), fill f (the field with its
 * continuation lines), advance *q past it and return true. False at a blank line, at a line
 * that is not a field, or at end. */
bool mime_field_next(const char **q, const char *end, struct mime_field *f)
{
	const char *colon, *fe;

	if (*q >= end || mime_blank(*q, end))
		return false;
	colon = mime_field_colon(*q, end);
	if (!colon)
		return false;
	fe = mime_line_next(colon, end);
	while (fe < end && (*fe == ' ' || *fe == '\t'))
		fe = mime_line_next(fe, end);
	f->p = *q;
	f->v = colon + 1;
	f->end = fe;
	*q = fe;
	return true;
}

/* mime_field_is: f's name is `name` (ASCII case-insensitive). */
bool mime_field_is(const struct mime_field *f, const char *name)
{
	size_t n = strlen(name);

	return (size_t)(f->v - f->p) > n && strncasecmp(f->p, name, n) == 0 &&
	       (f->p[n] == ':' || f->p[n] == ' ' || f->p[n] == '\t');
}

/* ---- structured field values (RFC 2045 5.1 tokens, comments, quoted strings) ---- */

static const char *mime_skip_cfws(const char *p, const char *e)
{
	int depth = 0;

	for (; p < e; p++) {
		if (depth) {
			if (*p == '\\' && p + 1 < e)
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')')
				depth--;
		} else if (*p == '(') {
			depth = 1;
		} else if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			break;
		}
	}
	return p;
}

static const char *mime_token_end(const char *p, const char *e)
{
	while (p<e && * p> 32 && *p < 127 && !strchr("()<>@,;:\\\"/[]?=", *p))
		p++;
	return p;
}

static bool mime_tok_is(const char *p, const char *pe, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(pe - p) == n && strncasecmp(p, s, n) == 0;
}

/* A parameter value (token or quoted string) at *pp, unquoted into out (cap bytes; *n may
 * exceed cap, meaning too long). False if malformed. */
static bool mime_param_value(const char **pp, const char *e, char *out, size_t cap, size_t *n)
{
	const char *p = *pp, *te;

	*n = 0;
	if (p < e && *p == '"') {
		for (p++; p < e && *p != '"'; p++, (*n)++) {
			if (*p == '\\' && p + 1 < e)
				p++;
			if (*n < cap)
				out[*n] = *p;
		}
		if (p >= e)
			return false;
		*pp = p + 1;
		return true;
	}
	te = mime_token_end(p, e);
	*n = (size_t)(te - p);
	if (*n <= cap)
		memcpy(out, p, *n);
	*pp = te;
	return te > p;
}

static void mime_set_boundary(struct mime_ent *e, const char *b, size_t n)
{
	if (e->dash_len || n == 0 || n > MIME_BOUNDARY_MAX || b[n - 1] == ' ')
		return;
	for (size_t i = 0; i < n; i++)
		if (b[i] < 32 || b[i] > 126)
			return;
	memcpy(e->dash, "--", 2);
	memcpy(e->dash + 2, b, n);
	e->dash_len = n + 2;
}

/* The ";" attribute "=" value list after a type/subtype: only boundary matters here. */
static void mime_ctype_params(struct mime_ent *e, const char *p, const char *end)
{
	char val[MIME_BOUNDARY_MAX + 1];
	const char *a, *ae;
	size_t n;

	for (;;) {
		p = mime_skip_cfws(p, end);
		if (p >= end || *p != ';')
			return;
		a = mime_skip_cfws(p + 1, end);
		ae = mime_token_end(a, end);
		p = mime_skip_cfws(ae, end);
		if (p >= end || *p != '=')
			return;
		p = mime_skip_cfws(p + 1, end);
		if (!mime_param_value(&p, end, val, sizeof(val), &n))
			return;
		if (mime_tok_is(a, ae, "boundary") && n <= MIME_BOUNDARY_MAX)
			mime_set_boundary(e, val, n);
	}
}

static enum mime_kind mime_kind_of(const char *t, const char *te, const char *s, const char *se)
{
	if (mime_tok_is(t, te, "text"))
		return MIME_K_TEXT;
	if (mime_tok_is(t, te, "multipart"))
		return MIME_K_MULTIPART;
	if (!mime_tok_is(t, te, "message"))
		return MIME_K_OTHER;
	if (mime_tok_is(s, se, "rfc822"))
		return MIME_K_RFC822;
	if (mime_tok_is(s, se, "partial") || mime_tok_is(s, se, "external-body"))
		return MIME_K_NOENC;
	return MIME_K_OTHER;
}

/* Content-Type: type "/" subtype *(";" parameter). Unreadable: text/plain (RFC 2045 5.2). */
static void mime_ctype(struct mime_ent *e, const char *p, const char *end)
{
	const char *t, *te, *s, *se;

	e->kind = MIME_K_TEXT;
	t = mime_skip_cfws(p, end);
	te = mime_token_end(t, end);
	p = mime_skip_cfws(te, end);
	if (te == t || p >= end || *p != '/')
		return;
	s = mime_skip_cfws(p + 1, end);
	se = mime_token_end(s, end);
	if (se == s)
		return;
	e->kind = mime_kind_of(t, te, s, se);
	e->digest = e->kind == MIME_K_MULTIPART && mime_tok_is(s, se, "digest");
	if (e->kind == MIME_K_MULTIPART)
		mime_ctype_params(e, se, end);
}

static enum mime_cte mime_cte_of(const char *p, const char *end)
{
	static const char *const names[] = {"7bit", "8bit", "binary", "quoted-printable", "base64"};
	const char *t = mime_skip_cfws(p, end), *te = mime_token_end(t, end);

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (mime_tok_is(t, te, names[i]))
			return (enum mime_cte)(MIME_CTE_7BIT + i);
	return MIME_CTE_OTHER;
}

static void mime_ent_field(struct mime_ent *e, const struct mime_field *f, bool *got_cte)
{
	if (mime_field_is(f, "content-type") && !e->has_ctype) {
		e->has_ctype = true;
		mime_ctype(e, f->v, f->end);
	} else if (mime_field_is(f, "content-transfer-encoding") && !*got_cte) {
		*got_cte = true;
		e->cte = mime_cte_of(f->v, f->end);
	} else if (mime_field_is(f, "mime-version")) {
		e->has_mimever = true;
	}
}

/* mime_ent_parse: read the header section of the entity [p, end) into e. dflt is the kind
 * without a Content-Type field (text/plain, or message/rfc822 inside multipart/digest). */
void mime_ent_parse(struct mime_ent *e, const char *p, const char *end, enum mime_kind dflt)
{
	struct mime_field f;
	const char *q = p;
	bool got_cte = false;

	memset(e, 0, sizeof(*e));
	e->p = p;
	e->end = end;
	e->kind = dflt;
	while (mime_field_next(&q, end, &f))
		mime_ent_field(e, &f, &got_cte);
	e->hend = q;
	e->sep = mime_blank(q, end);
	e->bs = e->sep ? mime_line_next(q, end) : q;
	if (e->kind == MIME_K_MULTIPART && !e->dash_len)
		e->kind = MIME_K_NOENC;
	if ((e->kind == MIME_K_MULTIPART || e->kind == MIME_K_RFC822) &&
	    (e->cte == MIME_CTE_QP || e->cte == MIME_CTE_BASE64 || e->cte == MIME_CTE_OTHER))
		e->kind = MIME_K_NOENC;
}

/* mime_delim_find: the first boundary delimiter line of e's multipart body at or after `from`
 * (a line start): a line "--boundary" or "--boundary--" followed only by blanks. Returns its
 * start, with *close (the close delimiter) and *after (the next line's start); NULL if none. */
const char *mime_delim_find(const struct mime_ent *e, const char *from, bool *close,
			    const char **after)
{
	const char *end = e->end, *h, *r;

	for (const char *p = from; p < end; p = h + 1) {
		h = memmem(p, (size_t)(end - p), e->dash, e->dash_len);
		if (!h)
			return NULL;
		if (h != from && h[-1] != '\n')
			continue;
		r = h + e->dash_len;
		*close = end - r >= 2 && r[0] == '-' && r[1] == '-';
		r += *close ? 2 : 0;
		while (r < end && (*r == ' ' || *r == '\t'))
			r++;
		if (r == end || *r == '\n' || (*r == '\r' && r + 1 < end && r[1] == '\n')) {
			*after = mime_line_next(r, end);
			return h;
		}
	}
	return NULL;
}

/* mime_part_end: where the part starting at ps ends, given the next delimiter line at d: the
 * line break before d belongs to the delimiter (RFC 2046 5.1.1). */
const char *mime_part_end(const char *ps, const char *d)
{
	const char *pe = d;

	if (pe > ps && pe[-1] == '\n') {
		pe--;
		if (pe > ps && pe[-1] == '\r')
			pe--;
	}
	return pe;
}
