/* tls_buf — the growable byte queues between wolfSSL's I/O callbacks and the caller.
 *
 * Why: the input queue holds ciphertext fed by the caller until wolfSSL asks for it, the
 * output queue holds what wolfSSL produced until the caller has sent it. Appending never
 * fails except for memory, so wolfSSL never sees "would block" on output. Bytes are kept in
 * one contiguous block (tls_out hands out a pointer); consumed space at the front is reused
 * by moving the rest down when the block would otherwise have to grow.
 */
#include "tls/tls_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* tls_buf_add: append n bytes of p to b (copied). Returns 0 or -ENOMEM (b unchanged). */
int tls_buf_add(struct tls_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (b->len + n > b->cap && b->off > 0) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n) {
			if (cap > SIZE_MAX / 2)
				return -ENOMEM;
			cap *= 2;
		}
		uint8_t *np = realloc(b->p, cap);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

/* tls_buf_drop: remove the first n bytes (at most what is there). An emptied buffer starts
 * over at offset 0 and, when it grew beyond TLS_BUF_KEEP, gives its memory back. */
void tls_buf_drop(struct tls_buf *b, size_t n)
{
	size_t have = b->len - b->off;

	b->off += n < have ? n : have;
	if (b->off < b->len)
		return;
	b->off = b->len = 0;
	if (b->cap > TLS_BUF_KEEP) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
}

/* tls_buf_take: move up to n bytes from the front of b into dst. Returns how many. */
size_t tls_buf_take(struct tls_buf *b, void *dst, size_t n)
{
	size_t have = b->len - b->off;

	if (n > have)
		n = have;
	if (n)
		memcpy(dst, b->p + b->off, n);
	tls_buf_drop(b, n);
	return n;
}

/* tls_buf_free: release b's memory; b is empty afterwards. */
void tls_buf_free(struct tls_buf *b)
{
	free(b->p);
	*b = (struct tls_buf){0};
}
