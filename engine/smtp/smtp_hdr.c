/* smtp_hdr — what the SMTP layer needs to know about a message's header section.
 *
 * Why: every SMTP hop adds a Received: trace field (RFC 5321 4.4), so counting them is how an
 * MTA notices a mail loop; the daemon does it for each injected message. It walks only the
 * header section, line by line, and never allocates. A field name is matched at the start of a
 * line only, so a folded continuation line ("\tReceived: ...") or a body line after the empty
 * line never counts.
 */
#include "engine/smtp/smtp.h"

#include <string.h>
#include <strings.h>

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
