/* smtp_hdr — what the SMTP layer needs to know about a message's header section.
 *
 * Why: every SMTP hop adds a Received: trace field (RFC 5321 4.4), so counting them is how an
 * MTA notices a mail loop; the daemon does it for each injected message. It walks only the
 * header section, line by line, and never allocates. A field name is matched at the start of a
 * line only, so a folded continuation line ("\tReceived: ...") or a body line after the empty
 * line never counts.
 */
#include "engine/smtp/smtp.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* True when the line p[0..n) starts a "Received:" field (name case-insensitive, spaces/tabs
 * allowed before the colon as in RFC 5322's obsolete syntax). */
static bool hdr_is_received(const char *p, size_t n)
{
	size_t i = 8;

	if (n < 9 || strncasecmp(p, "Received", 8) != 0)
		return false;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':';
}

/* smtp_count_received: see smtp.h. */
unsigned smtp_count_received(const char *body, size_t len)
{
	const char *p = body, *e = body + len, *lf;
	unsigned count = 0;
	size_t n;

	while (p < e) {
		lf = memchr(p, '\n', (size_t)(e - p));
		n = lf ? (size_t)(lf - p) : (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '\r'))
			break; /* the empty line ends the header section */
		if (hdr_is_received(p, n))
			count++;
		if (!lf)
			break;
		p = lf + 1;
	}
	return count;
}

/* Append s to out at *len; with `clean`, control bytes become '?'. False when it does not fit. */
static bool hdr_put(char *out, size_t cap, size_t *len, const char *s, bool clean)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (*len + 1 >= cap)
			return false;
		out[(*len)++] = clean && (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	out[*len] = '\0';
	return true;
}

#define LIT(s) hdr_put(out, cap, &n, (s), false)
#define VAL(s) hdr_put(out, cap, &n, (s), true)

/* smtp_received_format: see smtp.h. Layout:
 *   Received: from HELO (ADDR)\r\n\tby HOST (riptide) with PROTO id ID\r\n\tfor <RCPT>; DATE\r\n */
size_t smtp_received_format(char *out, size_t cap, const struct smtp_received *r)
{
	time_t t = (time_t)r->when;
	char date[64];
	struct tm tm;
	size_t n = 0;
	bool ok;

	if (cap == 0)
		return 0;
	out[0] = '\0';
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	ok = LIT("Received: from ") && VAL(r->helo[0] ? r->helo : "unknown");
	if (ok && r->addr_lit)
		ok = LIT(" (") && VAL(r->addr_lit) && LIT(")");
	ok = ok && LIT("\r\n\tby ") && VAL(r->by) && LIT(" (riptide) with ") && VAL(r->with) &&
	     LIT(" id ") && VAL(r->id);
	if (ok && r->for_rcpt)
		ok = LIT("\r\n\tfor <") && VAL(r->for_rcpt) && LIT(">");
	ok = ok && LIT(";\r\n\t") && LIT(date) && LIT("\r\n");
	return ok ? n : 0;
}
