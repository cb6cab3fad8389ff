/* smtp_dsn — the parameters of the DSN SMTP extension (RFC 3461): RET, ENVID (MAIL) and NOTIFY,
 * ORCPT (RCPT), and the xtext encoding their free-form values travel in.
 *
 * Why here: the injection server parses these parameters, the outbound client writes them for
 * the next hop, and the daemon stores and reuses them; one tested codec keeps the three in
 * agreement. Pure functions on caller buffers, no allocation.
 *
 * Choices (where the RFC leaves room):
 *  - decoding tolerates lower-case hex after '+', encoding always writes upper case, and encodes
 *    only what must be encoded, so the encoder's output is the one canonical form;
 *  - a decoded ENVID or ORCPT address must be printable US-ASCII (32..126; RFC 3461 4.2 and 4.4
 *    allow "graphic and white space" characters): a space is kept, a control byte or an 8-bit
 *    byte is refused, so nothing decoded can split a header field or a log line;
 *  - an empty ENVID and an empty ORCPT address are refused (they name nothing);
 *  - the ORCPT addr-type is an atom kept as received (RFC 3461 does not constrain the address
 *    to the addr-type's syntax, so the address is not checked further).
 */
#include "engine/smtp/smtp.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static const char smtp_hex[] = "0123456789ABCDEF";

/* The value of hex digit c, or -1. */
static int smtp_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* An xchar: a byte that stands for itself in xtext. */
static bool smtp_is_xchar(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '+' && c != '=';
}

/* smtp_xtext_decode: see smtp.h. */
ssize_t smtp_xtext_decode(const char *in, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	int hi, lo;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '+') {
			if (n - i < 3 || (hi = smtp_hexval(in[i + 1])) < 0 ||
			    (lo = smtp_hexval(in[i + 2])) < 0)
				return -EINVAL;
			c = (unsigned char)(hi << 4 | lo);
			if (c < 32 || c > 126)
				return -EINVAL;
			i += 2;
		} else if (!smtp_is_xchar(c)) {
			return -EINVAL;
		}
		if (o + 1 >= cap)
			return -ENOSPC;
		out[o++] = (char)c;
	}
	if (cap == 0)
		return -ENOSPC;
	out[o] = '\0';
	return (ssize_t)o;
}

/* smtp_xtext_encode: see smtp.h. */
ssize_t smtp_xtext_encode(const char *in, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (smtp_is_xchar(c)) {
			if (o + 1 >= cap)
				return -ENOSPC;
			out[o++] = (char)c;
			continue;
		}
		if (o + 3 >= cap)
			return -ENOSPC;
		out[o++] = '+';
		out[o++] = smtp_hex[c >> 4];
		out[o++] = smtp_hex[c & 15];
	}
	if (cap == 0)
		return -ENOSPC;
	out[o] = '\0';
	return (ssize_t)o;
}

/* smtp_dsn_ret_parse: see smtp.h. */
int smtp_dsn_ret_parse(const char *v, size_t n)
{
	if (n == 4 && strncasecmp(v, "FULL", 4) == 0)
		return SMTP_RET_FULL;
	if (n == 4 && strncasecmp(v, "HDRS", 4) == 0)
		return SMTP_RET_HDRS;
	return -EINVAL;
}

/* One NOTIFY keyword (not NUL-terminated): its bit, or 0. */
static int smtp_notify_word(const char *w, size_t n)
{
	if (n == 7 && strncasecmp(w, "SUCCESS", 7) == 0)
		return SMTP_NOTIFY_SUCCESS;
	if (n == 7 && strncasecmp(w, "FAILURE", 7) == 0)
		return SMTP_NOTIFY_FAILURE;
	if (n == 5 && strncasecmp(w, "DELAY", 5) == 0)
		return SMTP_NOTIFY_DELAY;
	if (n == 5 && strncasecmp(w, "NEVER", 5) == 0)
		return SMTP_NOTIFY_NEVER;
	return 0;
}

/* smtp_dsn_notify_parse: see smtp.h. */
int smtp_dsn_notify_parse(const char *v, size_t n)
{
	const char *e = v + n, *comma;
	int bits = 0, b;

	if (n == 0)
		return -EINVAL;
	for (;;) {
		comma = memchr(v, ',', (size_t)(e - v));
		b = smtp_notify_word(v, (size_t)((comma ? comma : e) - v));
		if (!b || (bits & b))
			return -EINVAL;
		bits |= b;
		if (!comma)
			break;
		v = comma + 1;
	}
	if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
		return -EINVAL;
	return bits;
}

/* smtp_dsn_notify_format: see smtp.h. */
size_t smtp_dsn_notify_format(unsigned notify, char *out, size_t cap)
{
	static const char *const words[] = {"SUCCESS", "FAILURE", "DELAY"};
	size_t o = 0, k;

	if (cap < SMTP_NOTIFY_TEXT) {
		if (cap)
			out[0] = '\0';
		return 0;
	}
	if (notify & SMTP_NOTIFY_NEVER) {
		memcpy(out, "NEVER", 6);
		return 5;
	}
	for (unsigned i = 0; i < 3; i++) {
		if (!(notify & (1u << i)))
			continue;
		if (o)
			out[o++] = ',';
		k = strlen(words[i]);
		memcpy(out + o, words[i], k);
		o += k;
	}
	out[o] = '\0';
	return o;
}

/* smtp_dsn_envid_parse: see smtp.h. */
ssize_t smtp_dsn_envid_parse(const char *v, size_t n, char *out, size_t cap)
{
	char buf[SMTP_ENVID_MAX + 2];
	ssize_t r;

	if (cap < SMTP_ENVID_MAX + 1)
		return -ENOSPC;
	if (n == 0)
		return -EINVAL;
	r = smtp_xtext_decode(v, n, buf, sizeof(buf));
	if (r == -ENOSPC || r > SMTP_ENVID_MAX)
		return -E2BIG;
	if (r < 0)
		return r;
	memcpy(out, buf, (size_t)r + 1);
	return r;
}

/* RFC 5322 atext (an atom's characters). */
static bool smtp_is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* The length of the addr-type atom before the ';' in v[0..n): > 0, or -EINVAL / -E2BIG. */
static ssize_t smtp_addrtype_len(const char *v, size_t n)
{
	const char *semi = memchr(v, ';', n);
	size_t k;

	if (!semi || semi == v)
		return -EINVAL;
	k = (size_t)(semi - v);
	for (size_t i = 0; i < k; i++)
		if (!smtp_is_atext((unsigned char)v[i]))
			return -EINVAL;
	return k > SMTP_ADDRTYPE_MAX ? -E2BIG : (ssize_t)k;
}

/* smtp_dsn_orcpt_parse: see smtp.h. */
ssize_t smtp_dsn_orcpt_parse(const char *v, size_t n, char *out, size_t cap)
{
	ssize_t k = smtp_addrtype_len(v, n), r;
	char buf[SMTP_ORCPT_MAX + 2];

	if (cap < SMTP_ORCPT_BUF)
		return -ENOSPC;
	if (k < 0)
		return k;
	if ((size_t)k + 1 == n)
		return -EINVAL; /* empty address */
	r = smtp_xtext_decode(v + k + 1, n - (size_t)k - 1, buf, sizeof(buf));
	if (r == -ENOSPC || r > SMTP_ORCPT_MAX)
		return -E2BIG;
	if (r < 0)
		return r;
	memcpy(out, v, (size_t)k + 1);
	memcpy(out + k + 1, buf, (size_t)r + 1);
	return k + 1 + r;
}

/* smtp_dsn_orcpt_format: see smtp.h. */
ssize_t smtp_dsn_orcpt_format(const char *orcpt, char *out, size_t cap)
{
	size_t n = strlen(orcpt);
	ssize_t k = smtp_addrtype_len(orcpt, n), r;

	if (k < 0 || (size_t)k + 1 == n)
		return -EINVAL;
	if ((size_t)k + 1 >= cap)
		return -ENOSPC;
	memcpy(out, orcpt, (size_t)k + 1);
	r = smtp_xtext_encode(orcpt + k + 1, n - (size_t)k - 1, out + k + 1, cap - (size_t)k - 1);
	return r < 0 ? r : k + 1 + r;
}
