/* smtp_b64enc — base64 encoding for SMTP AUTH (RFC 4954 carries SASL data in base64).
 *
 * Why here and not engine/mime's encoder: mime_b64 writes 76-character lines with CRLF into a
 * MIME buffer for the 8BITMIME downgrade; an AUTH argument is one unbroken token in a plain
 * char array, and engine/smtp must not depend on engine/mime. Encoding only: the server side's
 * decoder lives elsewhere.
 */
#include "engine/smtp/smtp.h"

static const char smtp_b64_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* smtp_b64_encode: see smtp.h. */
size_t smtp_b64_encode(const void *p, size_t n, char *out)
{
	const unsigned char *u = p;
	char *w = out;

	for (size_t i = 0; i < n; i += 3) {
		size_t k = n - i < 3 ? n - i : 3;
		uint32_t v = (uint32_t)u[i] << 16;

		if (k > 1)
			v |= (uint32_t)u[i + 1] << 8;
		if (k > 2)
			v |= u[i + 2];
		*w++ = smtp_b64_alpha[v >> 18];
		*w++ = smtp_b64_alpha[(v >> 12) & 63];
		*w++ = k > 1 ? smtp_b64_alpha[(v >> 6) & 63] : '=';
		*w++ = k > 2 ? smtp_b64_alpha[v & 63] : '=';
	}
	*w = '\0';
	return (size_t)(w - out);
}
