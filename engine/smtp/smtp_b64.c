/* smtp_b64 — base64 (RFC 4648 section 4) for SMTP AUTH exchanges (RFC 4954).
 *
 * Why strict: the server must answer 501 5.5.2 to a response it cannot decode (RFC 4954 4), and
 * credentials are no place for a lenient decoder that lets two spellings mean one secret. What
 * this decoder accepts is exactly what the encoder writes (canonical base64): the standard
 * alphabet, padding only at the end, zero bits under it. No allocation; callers wipe buffers
 * that held secrets.
 */
#include "engine/smtp/smtp.h"

#include <errno.h>

static const char b64_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of base64 character c, or -1 ('=' included). */
static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	return c == '/' ? 63 : -1;
}

/* Decode the last quantum q[0..4) (it may end in "=" or "=="): 1..3 bytes into out, or
 * -EINVAL (padding in the wrong place, or bits left under it). */
static int b64_last(const char *q, unsigned char *out)
{
	int v0 = b64_val(q[0]), v1 = b64_val(q[1]), v2, v3;

	if (v0 < 0 || v1 < 0)
		return -EINVAL;
	out[0] = (unsigned char)(v0 << 2 | v1 >> 4);
	if (q[2] == '=' && q[3] == '=')
		return (v1 & 0x0f) ? -EINVAL : 1;
	if ((v2 = b64_val(q[2])) < 0)
		return -EINVAL;
	out[1] = (unsigned char)((v1 & 0x0f) << 4 | v2 >> 2);
	if (q[3] == '=')
		return (v2 & 0x03) ? -EINVAL : 2;
	if ((v3 = b64_val(q[3])) < 0)
		return -EINVAL;
	out[2] = (unsigned char)((v2 & 0x03) << 6 | v3);
	return 3;
}

/* smtp_b64_decode: see smtp.h. Quanta before the last have no padding. */
ssize_t smtp_b64_decode(const char *in, size_t n, char *out, size_t cap)
{
	unsigned char *o = (unsigned char *)out;
	size_t k = 0;
	int v[4], last;

	if (n % 4)
		return -EINVAL;
	if (n / 4 * 3 > cap)
		return -ENOSPC;
	for (size_t i = 0; n && i < n - 4; i += 4, k += 3) {
		for (int j = 0; j < 4; j++)
			if ((v[j] = b64_val(in[i + j])) < 0)
				return -EINVAL;
		o[k] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		o[k + 1] = (unsigned char)((v[1] & 0x0f) << 4 | v[2] >> 2);
		o[k + 2] = (unsigned char)((v[2] & 0x03) << 6 | v[3]);
	}
	if (!n)
		return 0;
	if ((last = b64_last(in + n - 4, o + k)) < 0)
		return last;
	return (ssize_t)(k + (size_t)last);
}

/* smtp_b64_encode: see smtp.h. */
ssize_t smtp_b64_encode(const char *in, size_t n, char *out, size_t cap)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t k = 0, i;
	uint32_t w;

	if (cap < (n + 2) / 3 * 4 + 1)
		return -ENOSPC;
	for (i = 0; i + 3 <= n; i += 3) {
		w = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[k++] = b64_alpha[w >> 18];
		out[k++] = b64_alpha[w >> 12 & 63];
		out[k++] = b64_alpha[w >> 6 & 63];
		out[k++] = b64_alpha[w & 63];
	}
	if (i < n) {
		w = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
		out[k++] = b64_alpha[w >> 18];
		out[k++] = b64_alpha[w >> 12 & 63];
		out[k++] = i + 1 < n ? b64_alpha[w >> 6 & 63] : '=';
		out[k++] = '=';
	}
	out[k] = '\0';
	return (ssize_t)k;
}
