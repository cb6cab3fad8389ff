/* smtp_reply — SMTP reply parsing (client side): multi-line replies, RFC 3463 enhanced status
 * codes, EHLO extension keywords.
 *
 * Why: the outbound client and riptide-blast read a reply for every command they send, often
 * several pipelined replies in one read. The parser works on the receive buffer in place, finds
 * line ends with memchr, and reports "need more bytes" (0) without remembering anything, so the
 * caller just calls it again when more data arrived. Garbage is rejected as soon as the first
 * bytes of a line show it cannot be a reply line, not only once the line is complete.
 */
#include "engine/smtp/smtp.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* Longest reply line accepted, without its CRLF (RFC 5321 4.5.3.1.5 says 512; servers exceed). */
#define SMTP_REPLY_LINE_MAX 4096

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Check the first n (<= 4) available bytes of a reply line, possibly incomplete. code is the
 * code of the previous lines of this reply (0 on the first line). Returns 0 or -EBADMSG. */
static int line_prefix_ok(const char *l, size_t n, int code)
{
	if (n > 0 && (l[0] < '2' || l[0] > '5'))
		return -EBADMSG;
	if ((n > 1 && !is_digit(l[1])) || (n > 2 && !is_digit(l[2])))
		return -EBADMSG;
	if (n > 2 && code && code != (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0'))
		return -EBADMSG;
	if (n > 3 && l[3] != ' ' && l[3] != '-' && l[3] != '\r' && l[3] != '\n')
		return -EBADMSG;
	return 0;
}

/* Parse "d.ddd.ddd" followed by a space or the end at t[0..n). Returns its length or 0. */
static size_t enh_parse(const char *t, size_t n, int cls, int *subj, int *det)
{
	size_t i = 2, s0, d0;
	int s = 0, d = 0;

	if (n < 5 || t[0] - '0' != cls || t[1] != '.')
		return 0;
	for (s0 = i; i < n && is_digit(t[i]) && i - s0 < 3; i++)
		s = s * 10 + (t[i] - '0');
	if (i == s0 || i >= n || t[i] != '.')
		return 0;
	for (d0 = ++i; i < n && is_digit(t[i]) && i - d0 < 3; i++)
		d = d * 10 + (t[i] - '0');
	if (i == d0 || (i < n && t[i] != ' '))
		return 0;
	*subj = s;
	*det = d;
	return i;
}

/* Fill the enhanced code and text of out from the last line l[0..n) (n >= 3). */
static void reply_last_line(const char *l, size_t n, struct smtp_reply *out)
{
	const char *t = l + (n > 3 ? 4 : 3);
	size_t tn = n > 3 ? n - 4 : 0, k;
	int cls = out->code / 100, subj = 0, det = 0;

	out->enh_class = out->enh_subject = out->enh_detail = 0;
	k = (cls == 2 || cls == 4 || cls == 5) ? enh_parse(t, tn, cls, &subj, &det) : 0;
	if (k) {
		out->enh_class = cls;
		out->enh_subject = subj;
		out->enh_detail = det;
		while (k < tn && t[k] == ' ')
			k++;
		t += k;
		tn -= k;
	}
	out->text = t;
	out->text_len = tn;
}

/* smtp_reply_parse: see smtp.h. out is written only when a complete reply was parsed. */
ssize_t smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *out)
{
	size_t off = 0, n, term;
	unsigned lines = 0;
	int code = 0;

	for (;;) {
		const char *l = buf + off, *lf;
		size_t avail = len - off;

		lf = memchr(l, '\n',
			    avail < SMTP_REPLY_LINE_MAX + 2 ? avail : SMTP_REPLY_LINE_MAX + 2);
		if (!lf) {
			if (line_prefix_ok(l, avail < 4 ? avail : 4, code) < 0)
				return -EBADMSG;
			return avail >= SMTP_REPLY_LINE_MAX + 2 ? -EBADMSG : 0;
		}
		n = (size_t)(lf - l);
		term = (n > 0 && l[n - 1] == '\r') ? 2 : 1;
		n -= term - 1;
		if (n < 3 || n > SMTP_REPLY_LINE_MAX || line_prefix_ok(l, 3, code) < 0 ||
		    (n > 3 && l[3] != ' ' && l[3] != '-'))
			return -EBADMSG;
		code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
		lines++;
		off += n + term;
		if (n == 3 || l[3] == ' ') {
			out->code = code;
			out->first = buf;
			out->total_len = off;
			out->lines = lines;
			reply_last_line(l, n, out);
			return (ssize_t)off;
		}
	}
}

/* EHLO keywords riptide cares about. */
static const struct {
	const char *kw;
	size_t len;
	uint32_t flag;
} ehlo_kw[] = {
    {"PIPELINING", 10, SMTP_EXT_PIPELINING},
    {"SIZE", 4, SMTP_EXT_SIZE},
    {"8BITMIME", 8, SMTP_EXT_8BITMIME},
    {"ENHANCEDSTATUSCODES", 19, SMTP_EXT_ENHANCEDSTATUSCODES},
    {"STARTTLS", 8, SMTP_EXT_STARTTLS},
    {"AUTH", 4, SMTP_EXT_AUTH},
    {"SMTPUTF8", 8, SMTP_EXT_SMTPUTF8},
    {"DSN", 3, SMTP_EXT_DSN},
    {"CHUNKING", 8, SMTP_EXT_CHUNKING},
};

/* Decimal at t[0..n) after the keyword (spaces skipped); saturates instead of overflowing. */
static uint64_t parse_u64(const char *t, size_t n)
{
	uint64_t v = 0;
	size_t i = 0;

	while (i < n && t[i] == ' ')
		i++;
	for (; i < n && is_digit(t[i]); i++)
		v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX : v * 10 + (uint64_t)(t[i] - '0');
	return v;
}

/* The SMTP_AUTH_* mechanisms named in t[0..n), the text after the AUTH keyword: names
 * separated by blanks, after a blank or (the old "AUTH=LOGIN PLAIN" form) an '='. */
static uint32_t ehlo_auth(const char *t, size_t n)
{
	uint32_t m = 0;
	size_t i = 0, k;

	while (i < n) {
		while (i < n && (t[i] == ' ' || t[i] == '='))
			i++;
		for (k = i; k < n && t[k] != ' '; k++)
			;
		if (k - i == 5 && strncasecmp(t + i, "PLAIN", 5) == 0)
			m |= SMTP_EHLO_AUTH_PLAIN;
		else if (k - i == 5 && strncasecmp(t + i, "LOGIN", 5) == 0)
			m |= SMTP_EHLO_AUTH_LOGIN;
		i = k;
	}
	return m;
}

/* Apply one EHLO line's text (after "250-"/"250 ") to out. */
static void ehlo_line(const char *t, size_t n, struct smtp_ehlo *out)
{
	size_t k = 0;

	while (k < n && t[k] != ' ' && t[k] != '=')
		k++;
	for (size_t i = 0; i < sizeof(ehlo_kw) / sizeof(ehlo_kw[0]); i++) {
		if (ehlo_kw[i].len != k || strncasecmp(t, ehlo_kw[i].kw, k) != 0)
			continue;
		out->ext |= ehlo_kw[i].flag;
		if (ehlo_kw[i].flag == SMTP_EXT_SIZE)
			out->size_limit = parse_u64(t + k, n - k);
		if (ehlo_kw[i].flag == SMTP_EXT_AUTH)
			out->auth |= ehlo_auth(t + k, n - k);
		return;
	}
}

/* smtp_ehlo_parse: see smtp.h. The first line (the server's greeting domain) carries no
 * keyword and is skipped; unknown keywords are ignored. Always returns 0. */
int smtp_ehlo_parse(const struct smtp_reply *rep, struct smtp_ehlo *out)
{
	const char *p = rep->first;
	size_t left = rep->total_len, term;
	ssize_t n;
	bool first = true;

	out->ext = 0;
	out->size_limit = 0;
	out->auth = 0;
	while (p && left > 0 && (n = smtp_line_end(p, left, &term)) >= 0) {
		if (!first && n > 4)
			ehlo_line(p + 4, (size_t)n - 4, out);
		first = false;
		p += (size_t)n + term;
		left -= (size_t)n + term;
	}
	return 0;
}
