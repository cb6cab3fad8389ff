/* fuzz_stuff — libFuzzer harness for the dot-stuffing round trip: smtp_dot_stuff (cut
 * anywhere) + smtp_data_end on the sending side, read back with smtp_data_rx_feed (cut
 * anywhere) on the receiving side (engine/smtp/smtp.h).
 *
 * Input: a chunk plan (fuzz.h), then a body. The body is CRLF-normalised first (a bare CR or
 * bare LF becomes CRLF), because that is what riptide stores and sends.
 *
 * Why: this is the path of every message riptide relays; a body that does not come back
 * byte for byte, or a line that ends DATA early (SMTP smuggling), is mail corruption.
 * Invariants:
 *  - stuffing in chunks gives the same bytes as stuffing at once; each call writes between len
 *    and 2 * len bytes; smtp_dot_stuff_needed is true exactly when stuffing changed the body;
 *  - reading stuffed body + terminator back ends DATA exactly at the end of the stream and
 *    gives the body, plus CRLF when a non-empty body did not end with one (the CRLF before the
 *    final dot belongs to the last line).
 */
#include "tests/fuzz/fuzz.h"
#include "engine/smtp/smtp.h"

#include <stdbool.h>
#include <string.h>

/* CRLF-normalise in[0..n) into out (room 2 * n); returns the length. */
static size_t normalise(const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			i++;
		} else if (in[i] == '\r' || in[i] == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
		} else {
			out[o++] = in[i];
		}
	}
	return o;
}

/* Stuff body[0..n) cut by plan into out (room 2 * n + 5), append the terminator. */
static size_t stuff(const char *body, size_t n, struct fuzz_chunks *plan, char *out)
{
	struct smtp_stuff st = {.bol = true};
	const char *end = smtp_data_end(body, n);
	size_t pos = 0, o = 0, len, w;

	while (pos < n) {
		len = fuzz_chunk_next(plan, n - pos);
		w = smtp_dot_stuff(&st, body + pos, len, out + o);
		FUZZ_CHECK(w >= len && w <= 2 * len, "stuffed %zu bytes into %zu", len, w);
		pos += len;
		o += w;
	}
	memcpy(out + o, end, strlen(end));
	return o + strlen(end);
}

/* Read s[0..n) back cut by plan; returns the body length in out, *end = bytes consumed. */
static size_t read_back(const char *s, size_t n, struct fuzz_chunks *plan, char *out, size_t *end)
{
	struct smtp_data_rx rx;
	size_t pos = 0, o = 0, len, w, c;
	bool done = false;

	smtp_data_rx_init(&rx);
	while (pos < n && !done) {
		len = fuzz_chunk_next(plan, n - pos);
		c = smtp_data_rx_feed(&rx, s + pos, len, out + o, 2 * len, &w, &done);
		FUZZ_CHECK(c == len || done, "room 2*%zu but %zu consumed", len, c);
		pos += c;
		o += w;
	}
	FUZZ_CHECK(done, "the terminator was not found in %zu bytes", n);
	*end = pos;
	return o;
}

static void round_trip(const char *body, size_t n, struct fuzz_chunks *plan, char *buf)
{
	char *stuffed = buf, *once = buf + 2 * n + 8, *back = buf + 4 * n + 16;
	struct smtp_stuff st = {.bol = true};
	size_t sn, on, bn, end, want = n;

	plan->next = 0;
	sn = stuff(body, n, plan, stuffed);
	on = smtp_dot_stuff(&st, body, n, once);
	FUZZ_CHECK(on + strlen(smtp_data_end(body, n)) == sn && !memcmp(once, stuffed, on),
		   "stuffing in chunks differs from stuffing at once");
	FUZZ_CHECK(smtp_dot_stuff_needed(body, n) == (on != n), "smtp_dot_stuff_needed wrong");
	plan->next = 0;
	bn = read_back(stuffed, sn, plan, back, &end);
	FUZZ_CHECK(end == sn, "DATA ended at %zu of %zu stuffed bytes", end, sn);
	if (n > 0 && !(n >= 2 && body[n - 2] == '\r' && body[n - 1] == '\n'))
		want = n + 2;
	if (bn != want || memcmp(back, body, n) != 0 || (want > n && memcmp(back + n, "\r\n", 2))) {
		fuzz_hex("body", body, n);
		fuzz_hex("read back", back, bn);
	}
	FUZZ_CHECK(bn == want && !memcmp(back, body, n) &&
		       (want == n || !memcmp(back + n, "\r\n", 2)),
		   "read back %zu bytes, want %zu", bn, want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_chunks plan;
	size_t off = fuzz_chunks_split(data, size, &plan), n;
	char *body = malloc(2 * (size - off) + 1), *buf;

	FUZZ_CHECK(body != NULL, "out of memory");
	n = normalise((const char *)data + off, size - off, body);
	buf = malloc(8 * n + 48); /* stuffed, once: 2n + 8 each; back: up to 2 * stuffed */
	FUZZ_CHECK(buf != NULL, "out of memory");
	round_trip(body, n, &plan, buf);
	free(buf);
	free(body);
	return 0;
}
