/* smtp_cmd — SMTP command line parsing (server side): verb, MAIL/RCPT paths, ESMTP parameters.
 *
 * Why: every injected message costs one MAIL and one RCPT per recipient, so this runs tens of
 * thousands of times a second. It never allocates, never copies: the result points into the
 * caller's line. Verbs are matched by loading four bytes and folding case in one OR; address
 * characters are classified with one table look-up each.
 *
 * Choices (RFC 5321 4.1.1.2-4.1.2, written down where the RFC leaves room):
 *  - more than one space after the verb and spaces after "FROM:"/"TO:" are tolerated;
 *  - the path must be in angle brackets (a bare "MAIL FROM:a@b" is -EBADMSG);
 *  - a source route "<@a,@b:u@c>" is accepted and dropped (addr = "u@c");
 *  - local parts may be quoted strings; inside one, qtextSMTP and quoted-pairSMTP only ('\\'
 *    before a byte 32..126): no control byte (0..31, 127) passes anywhere in a path, escaped or
 * not;
 *  - 8-bit bytes are accepted in addresses (RFC 6531) only as well-formed UTF-8 (no overlong
 *    form, no surrogate, nothing above U+10FFFF); whether SMTPUTF8 was given is the server's call;
 *  - a HELO/EHLO argument holding a control byte (other than HT, which separates like a space)
 *    or malformed UTF-8 is -EINVAL;
 *  - MAIL accepts <> and an address without '@'; RCPT requires '@' except <postmaster>;
 *  - AUTH: a mechanism name (RFC 4422 sasl-mech, any case) and at most one more word, the
 *    initial response; its base64 is checked by whoever decodes it (501 5.5.2 is the server's).
 */
#include "engine/smtp/smtp.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* Character classes of the address grammar. */
enum {
	C_ATEXT = 1,  /* atext of RFC 5322 plus '.', or 8-bit */
	C_DOMAIN = 2, /* letter, digit, '-', '.', '_' or 8-bit */
	C_KEY = 4,    /* esmtp-keyword character: letter, digit, '-' */
	C_VALUE = 8,  /* esmtp-value character: 33..126 except '=', or 8-bit */
};

/* clang-format off */
static const unsigned char cclass[256] = {
	['!'] = C_ATEXT | C_VALUE,
	['"'] = C_VALUE,
	['#'] = C_ATEXT | C_VALUE,
	['$'] = C_ATEXT | C_VALUE,
	['%'] = C_ATEXT | C_VALUE,
	['&'] = C_ATEXT | C_VALUE,
	['\''] = C_ATEXT | C_VALUE,
	['('] = C_VALUE,
	[')'] = C_VALUE,
	['*'] = C_ATEXT | C_VALUE,
	['+'] = C_ATEXT | C_VALUE,
	[','] = C_VALUE,
	['-'] = C_ATEXT | C_DOMAIN | C_KEY | C_VALUE,
	['.'] = C_ATEXT | C_DOMAIN | C_VALUE,
	['/'] = C_ATEXT | C_VALUE,
	['0' ... '9'] = C_ATEXT | C_DOMAIN | C_KEY | C_VALUE,
	[':'] = C_VALUE,
	[';'] = C_VALUE,
	['<'] = C_VALUE,
	['>'] = C_VALUE,
	['?'] = C_ATEXT | C_VALUE,
	['@'] = C_VALUE,
	['A' ... 'Z'] = C_ATEXT | C_DOMAIN | C_KEY | C_VALUE,
	['['] = C_VALUE,
	['\\'] = C_VALUE,
	[']'] = C_VALUE,
	['^'] = C_ATEXT | C_VALUE,
	['_'] = C_ATEXT | C_DOMAIN | C_VALUE,
	['`'] = C_ATEXT | C_VALUE,
	['a' ... 'z'] = C_ATEXT | C_DOMAIN | C_KEY | C_VALUE,
	['{'] = C_ATEXT | C_VALUE,
	['|'] = C_ATEXT | C_VALUE,
	['}'] = C_ATEXT | C_VALUE,
	['~'] = C_ATEXT | C_VALUE,
	[0x80 ... 0xff] = C_ATEXT | C_DOMAIN | C_VALUE,
};
/* clang-format on */

static inline bool is_class(char c, unsigned cls)
{
	return (cclass[(unsigned char)c] & cls) != 0;
}

static inline char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c;
}

static inline bool is_sp(char c)
{
	return c == ' ' || c == '\t';
}

/* Four bytes as a little-endian-independent integer, lower-cased (exact for letters). */
static inline uint32_t fold4(const char *p)
{
	return ((uint32_t)(unsigned char)p[0] << 24 | (uint32_t)(unsigned char)p[1] << 16 |
		(uint32_t)(unsigned char)p[2] << 8 | (uint32_t)(unsigned char)p[3]) |
	       0x20202020u;
}

#define W(a, b, c, d)                                                                              \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/* The four-letter verb whose lower-cased bytes are w, or SMTP_VERB_UNKNOWN. */
static enum smtp_verb verb_lookup4(uint32_t w)
{
	switch (w) {
	case W('h', 'e', 'l', 'o'):
		return SMTP_VERB_HELO;
	case W('e', 'h', 'l', 'o'):
		return SMTP_VERB_EHLO;
	case W('m', 'a', 'i', 'l'):
		return SMTP_VERB_MAIL;
	case W('r', 'c', 'p', 't'):
		return SMTP_VERB_RCPT;
	case W('d', 'a', 't', 'a'):
		return SMTP_VERB_DATA;
	case W('r', 's', 'e', 't'):
		return SMTP_VERB_RSET;
	case W('n', 'o', 'o', 'p'):
		return SMTP_VERB_NOOP;
	case W('q', 'u', 'i', 't'):
		return SMTP_VERB_QUIT;
	case W('v', 'r', 'f', 'y'):
		return SMTP_VERB_VRFY;
	case W('a', 'u', 't', 'h'):
		return SMTP_VERB_AUTH;
	case W('e', 'x', 'p', 'n'):
		return SMTP_VERB_EXPN;
	case W('h', 'e', 'l', 'p'):
		return SMTP_VERB_HELP;
	case W('e', 't', 'r', 'n'):
		return SMTP_VERB_ETRN;
	case W('t', 'u', 'r', 'n'):
		return SMTP_VERB_TURN;
	default:
		return SMTP_VERB_UNKNOWN;
	}
}

/* The verb in line[0..n) (n = length up to the first space), or SMTP_VERB_UNKNOWN. */
static enum smtp_verb verb_lookup(const char *v, size_t n)
{
	if (n == 8)
		return (fold4(v) == W('s', 't', 'a', 'r') && fold4(v + 4) == W('t', 't', 'l', 's'))
			   ? SMTP_VERB_STARTTLS
			   : SMTP_VERB_UNKNOWN;
	return n == 4 ? verb_lookup4(fold4(v)) : SMTP_VERB_UNKNOWN;
}

/* The byte after '\\' in a quoted-pairSMTP: 32..126 (RFC 5321 4.1.2). */
static inline bool is_qpair(char c)
{
	return c >= 32 && c <= 126;
}

/* qtextSMTP (32, 33, 35..91, 93..126) or 8-bit (RFC 6531; UTF-8 form is checked per path). */
static inline bool is_qtext(char c)
{
	unsigned char u = (unsigned char)c;

	return (u >= 32 && u <= 126 && u != '"' && u != '\\') || u >= 0x80;
}

/* Quoted local part s[0..n) (s[0] is '"'): qtext and quoted pairs up to the closing quote. */
static int check_quoted(const char *s, size_t n)
{
	if (n < 2 || s[n - 1] != '"')
		return -EBADMSG;
	for (size_t i = 1; i < n - 1; i++) {
		if (s[i] == '\\') {
			if (i + 1 >= n - 1 || !is_qpair(s[i + 1]))
				return -EBADMSG;
			i++;
		} else if (!is_qtext(s[i])) {
			return -EBADMSG;
		}
	}
	return 0;
}

/* Local part: a quoted string or atext/dots; 0 or -EBADMSG. */
static int check_local(const char *s, size_t n)
{
	if (n == 0)
		return -EBADMSG;
	if (s[0] == '"')
		return check_quoted(s, n);
	for (size_t i = 0; i < n; i++)
		if (!is_class(s[i], C_ATEXT))
			return -EBADMSG;
	return 0;
}

/* Domain: a dotted name or an address literal "[...]"; 0 or -EBADMSG. */
static int check_domain(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.')
		return -EBADMSG;
	if (s[0] == '[') {
		if (n < 3 || s[n - 1] != ']')
			return -EBADMSG;
		for (size_t i = 1; i < n - 1; i++) /* dtext: 33..126 except [ ] \\ */
			if (s[i] < 33 || s[i] > 126 || s[i] == '[' || s[i] == ']' || s[i] == '\\')
				return -EBADMSG;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (!is_class(s[i], C_DOMAIN))
			return -EBADMSG;
	return 0;
}

/* Validate a mailbox (without brackets and source route). */
static int check_mailbox(const char *a, size_t n, bool rcpt)
{
	const char *last;
	size_t at;

	if (n == 0)
		return rcpt ? -EBADMSG : 0;
	last = memrchr(a, '@', n);
	at = last ? (size_t)(last - a) : n;
	if (at == n) {
		if (rcpt)
			return (n == 10 && strncasecmp(a, "postmaster", 10) == 0) ? 0 : -EBADMSG;
		return check_local(a, n);
	}
	if (check_local(a, at) < 0)
		return -EBADMSG;
	return check_domain(a + at + 1, n - at - 1);
}

/* Find the '>' closing a path with a quoted local part, starting after '<' at p (end e): quotes
 * and backslash escapes respected (an escape only before a byte 32..126), control characters
 * rejected everywhere, spaces outside quotes rejected. Returns the position of '>' or NULL. */
static const char *path_close_quoted(const char *p, const char *e)
{
	bool q = false;

	for (; p < e; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f)
			return NULL;
		if (q) {
			if (c == '\\' && (p + 1 == e || !is_qpair(p[1])))
				return NULL;
			if (c == '\\')
				p++;
			else if (c == '"')
				q = false;
			continue;
		}
		if (c == '"')
			q = true;
		else if (c == '>')
			return p;
		else if (c == '<' || c == ' ')
			return NULL;
	}
	return NULL;
}

/* Find the '>' closing the path that starts after '<' at p. Without a quote (the usual case)
 * that is the first '>', and the characters before it are checked by check_mailbox. */
static const char *path_close(const char *p, const char *e)
{
	const char *gt = memchr(p, '>', (size_t)(e - p));

	if (gt && !memchr(p, '"', (size_t)(gt - p)))
		return gt;
	return path_close_quoted(p, e);
}

/* A source route "@a,@b:" (without the colon) holds only domain characters, '@' and ','. */
static int check_route(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_class(s[i], C_DOMAIN) && s[i] != '@' && s[i] != ',')
			return -EBADMSG;
	return 0;
}

/* Parse "<path> [params]" in s[0..n) for MAIL/RCPT into out. */
static int parse_path(const char *s, size_t n, bool rcpt, struct smtp_cmd *out)
{
	const char *e = s + n, *a, *gt;

	if (n == 0)
		return -EINVAL;
	if (s[0] != '<')
		return -EBADMSG;
	gt = path_close(s + 1, e);
	if (!gt || (gt + 1 < e && !is_sp(gt[1])))
		return -EBADMSG;
	a = s + 1;
	if (!smtp_is_ascii(a, (size_t)(gt - a)) && !smtp_utf8_valid(a, (size_t)(gt - a)))
		return -EBADMSG;
	if (a < gt && *a == '@') { /* source route: "@a,@b:" */
		const char *colon = memchr(a, ':', (size_t)(gt - a));
		if (!colon || check_route(a, (size_t)(colon - a)) < 0)
			return -EBADMSG;
		a = colon + 1;
	}
	if (check_mailbox(a, (size_t)(gt - a), rcpt) < 0)
		return -EBADMSG;
	out->addr = a;
	out->addr_len = (size_t)(gt - a);
	for (a = gt + 1; a < e && is_sp(*a); a++)
		;
	out->params = a;
	out->params_len = (size_t)(e - a);
	return 0;
}

/* MAIL FROM:/RCPT TO: prefix check (case-insensitive), then the path. */
static int parse_mail_rcpt(struct smtp_cmd *out, bool rcpt)
{
	const char *s = out->arg, *e = out->arg + out->arg_len;
	size_t kl = rcpt ? 3 : 5;

	if (out->arg_len < kl || s[kl - 1] != ':')
		return -EINVAL;
	if (rcpt ? ((s[0] | 0x20) != 't' || (s[1] | 0x20) != 'o')
		 : fold4(s) != W('f', 'r', 'o', 'm'))
		return -EINVAL;
	for (s += kl; s < e && is_sp(*s); s++)
		;
	return parse_path(s, (size_t)(e - s), rcpt, out);
}

/* HELO/EHLO: the domain is the first word of the argument (out->arg .. e); the whole argument
 * must be free of control bytes other than HT, and the domain well-formed UTF-8. */
static int parse_helo(struct smtp_cmd *out, const char *e)
{
	const char *a = out->arg, *v;

	for (v = a; v < e; v++)
		if (((unsigned char)*v < 32 && *v != '\t') || *v == 0x7f)
			return -EINVAL;
	for (v = a; v < e && !is_sp(*v); v++)
		;
	out->arg_len = (size_t)(v - a);
	if (!out->arg_len || !smtp_utf8_valid(a, out->arg_len))
		return -EINVAL;
	return 0;
}

/* The SASL mechanism named by m[0..n) (any case), SMTP_AUTH_OTHER for another valid name,
 * -1 for a name that is not 1..20 of A-Z a-z 0-9 '-' '_'. */
static int auth_mech(const char *m, size_t n)
{
	if (n == 0 || n > SMTP_AUTH_MECH_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!is_class(m[i], C_KEY) && m[i] != '_')
			return -1;
	if (n == 5 && strncasecmp(m, "PLAIN", 5) == 0)
		return SMTP_AUTH_PLAIN;
	if (n == 5 && strncasecmp(m, "LOGIN", 5) == 0)
		return SMTP_AUTH_LOGIN;
	return SMTP_AUTH_OTHER;
}

/* AUTH mechanism [initial-response]: arg .. e (trailing blanks already trimmed). */
static int parse_auth(struct smtp_cmd *out, const char *e)
{
	const char *a = out->arg, *v, *r;
	int mech;

	for (v = a; v < e && !is_sp(*v); v++)
		;
	if ((mech = auth_mech(a, (size_t)(v - a))) < 0)
		return -EINVAL;
	out->mech = (enum smtp_auth_mech)mech;
	out->mech_len = (size_t)(v - a);
	for (r = v; r < e && is_sp(*r); r++)
		;
	if (r == e)
		return 0;
	for (v = r; v < e; v++)
		if (is_sp(*v))
			return -EINVAL; /* more than one word after the mechanism */
	out->has_resp = true;
	out->resp = r;
	out->resp_len = (e - r == 1 && *r == '=') ? 0 : (size_t)(e - r);
	return 0;
}

/* smtp_cmd_parse: see smtp.h. out is fully overwritten; its pointers point into line. */
int smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out)
{
	const char *e = line + len, *v, *a;

	memset(out, 0, sizeof(*out));
	for (v = line; v < e && *v != ' '; v++)
		;
	out->verb = verb_lookup(line, (size_t)(v - line));
	for (a = v; a < e && is_sp(*a); a++)
		;
	while (e > a && is_sp(e[-1]))
		e--;
	out->arg = a;
	out->arg_len = (size_t)(e - a);
	switch (out->verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		return parse_helo(out, e);
	case SMTP_VERB_MAIL:
		return parse_mail_rcpt(out, false);
	case SMTP_VERB_RCPT:
		return parse_mail_rcpt(out, true);
	case SMTP_VERB_VRFY:
		return out->arg_len ? 0 : -EINVAL;
	case SMTP_VERB_AUTH:
		return parse_auth(out, e);
	default:
		return 0;
	}
}

/* smtp_param_next: see smtp.h. On -EINVAL *p and *len are left unchanged. */
int smtp_param_next(const char **p, size_t *len, struct smtp_param *out)
{
	const char *s = *p, *e = *p + *len, *k, *t;

	while (s < e && is_sp(*s))
		s++;
	if (s == e) {
		*p = e;
		*len = 0;
		return 0;
	}
	for (k = s; k < e && is_class(*k, C_KEY); k++)
		;
	if (k == s || *s == '-')
		return -EINVAL;
	out->key = s;
	out->key_len = (size_t)(k - s);
	out->value = k;
	out->value_len = 0;
	t = k;
	if (k < e && *k == '=') {
		for (t = k + 1; t < e && is_class(*t, C_VALUE) && *t != '='; t++)
			;
		if (t == k + 1)
			return -EINVAL;
		out->value = k + 1;
		out->value_len = (size_t)(t - k - 1);
	}
	if (t < e && !is_sp(*t))
		return -EINVAL;
	*p = t;
	*len = (size_t)(e - t);
	return 1;
}

/* smtp_param_is: true when the parameter's key equals key (NUL-terminated), ignoring case. */
bool smtp_param_is(const struct smtp_param *prm, const char *key)
{
	size_t i;

	for (i = 0; i < prm->key_len; i++)
		if (key[i] == '\0' || lower(prm->key[i]) != lower(key[i]))
			return false;
	return key[i] == '\0';
}

/* smtp_is_ascii: see smtp.h. Eight bytes at a time; the tail byte by byte. */
bool smtp_is_ascii(const char *p, size_t n)
{
	uint64_t acc = 0, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		acc |= w;
	}
	for (; i < n; i++)
		acc |= (unsigned char)p[i];
	return (acc & 0x8080808080808080ull) == 0;
}

/* Length of the continuation bytes a UTF-8 lead byte c announces and the range allowed for the
 * first of them (which excludes overlongs, surrogates and code points above U+10FFFF);
 * 0 for a byte that cannot start a sequence. */
static size_t utf8_lead(unsigned char c, unsigned char *lo, unsigned char *hi)
{
	*lo = 0x80;
	*hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		return 1;
	if (c >= 0xe0 && c <= 0xef) {
		if (c == 0xe0)
			*lo = 0xa0; /* overlong below U+0800 */
		if (c == 0xed)
			*hi = 0x9f; /* surrogates U+D800..U+DFFF */
		return 2;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (c == 0xf0)
			*lo = 0x90; /* overlong below U+10000 */
		if (c == 0xf4)
			*hi = 0x8f; /* above U+10FFFF */
		return 3;
	}
	return 0; /* 0x80..0xc1 (continuation, overlong 2-byte lead) and 0xf5..0xff */
}

/* smtp_utf8_valid: see smtp.h. */
bool smtp_utf8_valid(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p, *e = s + n;
	unsigned char lo, hi;
	size_t k;

	while (s < e) {
		if (*s < 0x80) {
			s++;
			continue;
		}
		k = utf8_lead(*s, &lo, &hi);
		if (!k || (size_t)(e - s) <= k || s[1] < lo || s[1] > hi)
			return false;
		for (size_t i = 2; i <= k; i++)
			if ((s[i] & 0xc0) != 0x80)
				return false;
		s += k + 1;
	}
	return true;
}

/* smtp_line_end: see smtp.h. */
ssize_t smtp_line_end(const char *buf, size_t len, size_t *term_len)
{
	const char *lf = memchr(buf, '\n', len);
	size_t n;

	if (!lf)
		return -1;
	n = (size_t)(lf - buf);
	if (n > 0 && buf[n - 1] == '\r') {
		*term_len = 2;
		return (ssize_t)(n - 1);
	}
	*term_len = 1;
	return (ssize_t)n;
}
