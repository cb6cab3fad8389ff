/* smtp_rewrite — message-header work the daemon does once, at injection, before a message is
 * stored: take a control field out of the header section (X-Riptide-Pool: NAME selects the
 * egress pool and must not leave riptide), and rewrite listed addresses in From:, Sender: and
 * Reply-To: to their aliases (the classic servers' "Mail Header Replace").
 *
 * Why here: both work on the wire format of a message (RFC 5322 header section: lines up to the
 * first empty line, fields folded over lines starting with SP/HTAB, address lists with display
 * names, quoted strings, comments and groups), which is this module's business; the daemon only
 * says which field and which rules. Why this way: a field is matched at the start of a line only
 * (a continuation line, a body line or "X-From:" never counts), and the address scanner copies
 * every byte it does not replace, so a display name, a comment or the body can never be altered.
 * An address written with a comment or folding inside it (legal but never seen from a real MUA)
 * is left alone rather than guessed at. Rules are a sorted array searched by bisection, so a few
 * thousand rules cost ~12 comparisons per address.
 */
#include "engine/smtp/smtp.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline unsigned char rw_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static inline bool rw_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* The line at p (p < e): returns its length with the LF, *text its length without CRLF/LF. A
 * last line without LF is all text (a lone CR there is text too). */
static size_t rw_line(const char *p, const char *e, size_t *text)
{
	const char *lf = memchr(p, '\n', (size_t)(e - p));
	size_t n = lf ? (size_t)(lf - p) + 1 : (size_t)(e - p);
	size_t t = lf ? n - 1 : n;

	if (lf && t > 0 && p[t - 1] == '\r')
		t--;
	*text = t;
	return n;
}

/* The end of the field whose first line starts at p: past its continuation lines. */
static const char *rw_field_end(const char *p, const char *e)
{
	size_t t;

	p += rw_line(p, e, &t);
	while (p < e && rw_wsp(*p))
		p += rw_line(p, e, &t);
	return p;
}

/* When the line p[0..n) starts a field named name[0..nl) (any case, optional SP/HTAB before
 * the colon, RFC 5322 obs-optional), the offset just past the colon; else 0. */
static size_t rw_name_is(const char *p, size_t n, const char *name, size_t nl)
{
	size_t i;

	if (n <= nl)
		return 0;
	for (i = 0; i < nl; i++)
		if (rw_lower((unsigned char)p[i]) != rw_lower((unsigned char)name[i]))
			return 0;
	while (i < n && rw_wsp(p[i]))
		i++;
	return i < n && p[i] == ':' ? i + 1 : 0;
}

/* A field name is 1..76 printable ASCII characters other than ':' (RFC 5322 2.2). */
static bool rw_name_ok(const char *f)
{
	size_t i;

	for (i = 0; f[i]; i++)
		if ((unsigned char)f[i] <= ' ' || (unsigned char)f[i] >= 0x7f || f[i] == ':')
			return false;
	return i > 0 && i <= 76;
}

static inline bool rw_trim(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Copy the value p[0..e) of a field (from past the colon to its end) into val, unfolded: blanks
 * and line ends trimmed at both ends, each CRLF (or LF) plus the blanks after it one space, a
 * bare CR a space.
 * -ENAMETOOLONG when it does not fit in vlen bytes with its NUL. */
static int rw_unfold(const char *p, const char *e, char *val, size_t vlen)
{
	size_t n = 0;

	while (p < e && rw_trim(*p))
		p++;
	while (e > p && rw_trim(e[-1]))
		e--;
	for (; p < e; p++) {
		char c = *p;

		if (c == '\r' && p + 1 < e && p[1] == '\n')
			continue;
		if (c == '\n') {
			c = ' ';
			while (p + 1 < e && rw_wsp(p[1]))
				p++;
		} else if (c == '\r') {
			c = ' '; /* a bare CR: the value never carries a line break */
		}
		if (n + 1 >= vlen)
			return -ENAMETOOLONG;
		val[n++] = c;
	}
	val[n] = '\0';
	return 0;
}

/* smtp_hdr_take: see smtp.h. One pass over the header section with a read and a write
 * pointer; nothing moves before the first match, so a value that does not fit leaves the
 * message as it was. */
int smtp_hdr_take(char *msg, size_t *len, const char *field, char *val, size_t vlen)
{
	char *r, *w, *e, *fe;
	size_t nl, n, t, col;
	int found = 0, rc;

	if (!msg || !len || !field || !val || vlen == 0 || !rw_name_ok(field))
		return -EINVAL;
	nl = strlen(field);
	r = w = msg;
	e = msg + *len;
	while (r < e) {
		n = rw_line(r, e, &t);
		if (t == 0)
			break; /* the empty line ends the header section */
		col = rw_name_is(r, t, field, nl);
		if (col == 0) {
			memmove(w, r, n);
			w += n;
			r += n;
			continue;
		}
		fe = (char *)rw_field_end(r, e);
		if (!found && (rc = rw_unfold(r + col, fe, val, vlen)) < 0)
			return rc;
		found = 1;
		r = fe;
	}
	memmove(w, r, (size_t)(e - r));
	*len = (size_t)(w - msg) + (size_t)(e - r);
	return found;
}

/* ---- address rewrite ---- */

/* Order of a candidate address k[0..kl) (compared lower-cased) against a rule's from (lower
 * case, NUL-terminated): byte-wise, a prefix first, as strcmp orders the sorted rules. */
static int rw_key_cmp(const char *k, size_t kl, const char *from)
{
	size_t i;

	for (i = 0; i < kl; i++) {
		unsigned char a = rw_lower((unsigned char)k[i]), b = (unsigned char)from[i];

		if (b == 0)
			return 1;
		if (a != b)
			return a < b ? -1 : 1;
	}
	return from[i] ? -1 : 0;
}

/* The rule whose from equals k[0..kl) (any case), or NULL: bisection of the sorted rules. */
static const struct smtp_rewrite_rule *rw_find(const struct smtp_rewrite_rule *rules, unsigned n,
					       const char *k, size_t kl)
{
	unsigned lo = 0, hi = n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int c = rw_key_cmp(k, kl, rules[mid].from);

		if (c == 0)
			return &rules[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* The output of one rewrite, built in two passes over the same scan: the first (out == NULL)
 * counts replacements and output bytes, the second copies. */
struct rw_out {
	const char *msg;
	char *out;   /* NULL on the counting pass */
	size_t done; /* input bytes consumed: copied, or replaced */
	size_t olen; /* output bytes written (or counted) */
	size_t count;
	bool overflow;
	const struct smtp_rewrite_rule *rules;
	unsigned n;
};

/* A candidate address at msg[s..e) (s == e: none): replace it when a rule's from matches. */
static void rw_candidate(struct rw_out *o, size_t s, size_t e)
{
	const struct smtp_rewrite_rule *r;
	size_t tl, keep;

	if (s == e || !(r = rw_find(o->rules, o->n, o->msg + s, e - s)))
		return;
	keep = s - o->done;
	tl = strlen(r->to);
	if (tl > SIZE_MAX - o->olen - keep) {
		o->overflow = true;
		return;
	}
	if (o->out) {
		memcpy(o->out + o->olen, o->msg + o->done, keep);
		memcpy(o->out + o->olen + keep, r->to, tl);
	}
	o->olen += keep + tl;
	o->done = e;
	o->count++;
}

/* Past a comment, quoted string or domain literal opening at p[i] and closing with `close`
 * ('(' nests, a backslash quotes the next byte); e when it is not closed. */
static size_t rw_skip(const char *p, size_t i, size_t e, char close)
{
	unsigned depth = 0;

	for (i++; i < e; i++) {
		if (p[i] == '\\')
			i++;
		else if (close == ')' && p[i] == '(')
			depth++;
		else if (p[i] == close && depth-- == 0)
			return i + 1;
	}
	return e;
}

/* Scanner state in one address list: the span of address tokens [s, e) seen since the last
 * separator (s == e: none), whether we are inside <...>, whether this mailbox had one. */
struct rw_lex {
	size_t s, e;
	bool angle, had_angle;
};

static void rw_token(struct rw_lex *x, size_t s, size_t e)
{
	if (x->s == x->e)
		x->s = s;
	x->e = e;
}

/* A special character c of an address list: true when it was one (< > : , ;) and acted on. */
static bool rw_special(struct rw_out *o, struct rw_lex *x, char c)
{
	if (c == '<' && !x->angle) {
		x->angle = x->had_angle = true;
	} else if (c == '>' && x->angle) {
		rw_candidate(o, x->s, x->e);
		x->angle = false;
	} else if (c == ':') {
		x->had_angle = x->had_angle && x->angle; /* group name, or the end of a route */
	} else if ((c == ',' || c == ';') && !x->angle) {
		if (!x->had_angle)
			rw_candidate(o, x->s, x->e);
		x->had_angle = false;
	} else {
		return false;
	}
	x->s = x->e = 0;
	return true;
}

/* Scan the address list msg[i..e) (a field's value with its folding), offering each address
 * (the inside of <...>, or a bare addr-spec between separators) to rw_candidate. */
static void rw_list(struct rw_out *o, size_t i, size_t e)
{
	const char *p = o->msg;
	struct rw_lex x = {0, 0, false, false};

	while (i < e) {
		char c = p[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			i++;
		} else if (c == '(') {
			i = rw_skip(p, i, e, ')');
		} else if (c == '"' || c == '[') {
			size_t j = rw_skip(p, i, e, c == '"' ? '"' : ']');

			rw_token(&x, i, j);
			i = j;
		} else {
			if (!rw_special(o, &x, c))
				rw_token(&x, i, i + 1);
			i++;
		}
	}
	if (!x.angle && !x.had_angle)
		rw_candidate(o, x.s, x.e);
}

static const char *const rw_fields[] = {"From", "Sender", "Reply-To"};

/* One scan of the header section of msg[0..len): every From/Sender/Reply-To field's address
 * list goes through rw_list; then the rest of the message is copied. */
static void rw_scan(struct rw_out *o, size_t len)
{
	const char *m = o->msg, *p = m, *e = m + len, *fe;
	size_t n, t, col;

	while (p < e) {
		n = rw_line(p, e, &t);
		if (t == 0)
			break;
		col = 0;
		for (size_t f = 0; f < 3 && !col; f++)
			col = rw_name_is(p, t, rw_fields[f], strlen(rw_fields[f]));
		if (!col) {
			p += n;
			continue;
		}
		fe = rw_field_end(p, e);
		rw_list(o, (size_t)(p - m) + col, (size_t)(fe - m));
		p = fe;
	}
	if (o->out)
		memcpy(o->out + o->olen, m + o->done, len - o->done);
	o->olen += len - o->done;
}

/* smtp_hdr_rewrite: see smtp.h. */
int smtp_hdr_rewrite(const char *msg, size_t len, const struct smtp_rewrite_rule *rules, unsigned n,
		     char **out, size_t *outlen)
{
	struct rw_out o = {.msg = msg, .rules = rules, .n = n};
	size_t count;

	if (!out || !outlen || (!msg && len) || (!rules && n))
		return -EINVAL;
	*out = NULL;
	*outlen = 0;
	if (n == 0 || len == 0)
		return 0;
	rw_scan(&o, len);
	if (o.overflow || o.count > INT_MAX)
		return -EOVERFLOW;
	if (o.count == 0)
		return 0;
	count = o.count;
	o = (struct rw_out){.msg = msg, .rules = rules, .n = n, .out = malloc(o.olen)};
	if (!o.out)
		return -ENOMEM;
	rw_scan(&o, len);
	*out = o.out;
	*outlen = o.olen;
	return (int)count;
}

/* A rule's address: non-empty, no control byte, and (for from) no upper-case ASCII letter. */
static bool rw_addr_ok(const char *a, bool lower)
{
	if (!a || !*a)
		return false;
	for (; *a; a++)
		if ((unsigned char)*a < 0x20 || *a == 0x7f || (lower && *a >= 'A' && *a <= 'Z'))
			return false;
	return true;
}

static int rw_rule_cmp(const void *a, const void *b)
{
	return strcmp(((const struct smtp_rewrite_rule *)a)->from,
		      ((const struct smtp_rewrite_rule *)b)->from);
}

/* smtp_rewrite_sort: see smtp.h. */
int smtp_rewrite_sort(struct smtp_rewrite_rule *rules, unsigned n)
{
	if (!rules && n)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (!rw_addr_ok(rules[i].from, true) || !rw_addr_ok(rules[i].to, false))
			return -EINVAL;
	if (n > 1)
		qsort(rules, n, sizeof(*rules), rw_rule_cmp);
	for (unsigned i = 1; i < n; i++)
		if (strcmp(rules[i - 1].from, rules[i].from) == 0)
			return -EEXIST;
	return 0;
}
