/* fuzz_data — libFuzzer harness for the DATA reader smtp_data_rx_init/smtp_data_rx_feed
 * (engine/smtp/smtp.h), fed with arbitrary chunking and output room.
 *
 * Input: a chunk plan (fuzz.h), one byte choosing the output room of every call (0: 2 * len,
 * as callers do; else 1..8 bytes, which forces the reader to carry output across calls), then
 * the bytes a client sends after "354".
 *
 * Why a model: the reader works in spans (memchr, one memcpy per run of lines) and carries up
 * to two bytes across calls, which is where a cut in the wrong place loses or doubles a byte.
 * The model below applies the documented rules (smtp_data.c's header) one byte at a time, with
 * no spans and no carry. Invariants:
 *  - the chunked run, and the reader fed one byte at a time, give exactly the model's output,
 *    the model's done flag and the model's terminator position;
 *  - every call consumes at most its input, writes at most its room and makes progress; with
 *    room 2 * len it consumes all its input (or stops right after the terminator);
 *  - the output is CRLF-normalised (a CR only before an LF, an LF only after a CR; only a final
 *    CR may still wait for its LF), and DATA ends only on "\r\n.\r\n" (or ".\r\n" first).
 */
#include "tests/fuzz/fuzz.h"
#include "engine/smtp/smtp.h"

#include <stdbool.h>
#include <string.h>

struct run {
	char *out;
	size_t olen;
	size_t end; /* input bytes consumed (the terminator's end when done) */
	bool done;
};

enum { M_BOL, M_TEXT, M_CR, M_DOT, M_DOTCR };

static void emit(struct run *m, const char *s, size_t n)
{
	memcpy(m->out + m->olen, s, n);
	m->olen += n;
}

/* One model step at in[*i]: may leave *i alone (the byte is then read again in M_TEXT). */
static int model_step(struct run *m, int st, char b, size_t *i)
{
	switch (st) {
	case M_BOL:
		if (b != '.')
			return M_TEXT;
		++*i;
		return M_DOT;
	case M_TEXT:
		++*i;
		if (b == '\r' || b == '\n')
			emit(m, "\r\n", b == '\r' ? 1 : 2);
		else
			emit(m, &b, 1);
		return b == '\r' ? M_CR : M_TEXT;
	case M_CR:
		emit(m, "\n", 1);
		*i += b == '\n';
		return b == '\n' ? M_BOL : M_TEXT;
	case M_DOT:
		*i += b == '\r';
		return b == '\r' ? M_DOTCR : M_TEXT;
	default: /* M_DOTCR */
		if (b == '\n') {
			m->done = true;
			++*i;
			return M_DOTCR;
		}
		emit(m, "\r\n", 2);
		return M_TEXT;
	}
}

static void model_run(const char *in, size_t n, struct run *m)
{
	size_t i = 0;
	int st = M_BOL;

	while (i < n && !m->done)
		st = model_step(m, st, in[i], &i);
	m->end = i;
}

/* The reader over in[0..n), cut by plan (NULL: one byte at a time), room as chosen. */
static void reader_run(const char *in, size_t n, struct fuzz_chunks *plan, size_t room,
		       struct run *r)
{
	struct fuzz_chunks bytes = {(const uint8_t *)"\1", 1, 0};
	struct smtp_data_rx rx;
	size_t w, c, len, cap;

	smtp_data_rx_init(&rx);
	while (r->end < n && !r->done) {
		len = fuzz_chunk_next(plan ? plan : &bytes, n - r->end);
		cap = room ? room : 2 * len;
		c = smtp_data_rx_feed(&rx, in + r->end, len, r->out + r->olen, cap, &w, &r->done);
		FUZZ_CHECK(c <= len && w <= cap, "consumed %zu of %zu, wrote %zu of %zu", c, len, w,
			   cap);
		FUZZ_CHECK(c > 0 || w > 0 || r->done, "no progress (len %zu, room %zu)", len, cap);
		FUZZ_CHECK(room || c == len || r->done, "room 2*%zu but %zu consumed", len, c);
		r->end += c;
		r->olen += w;
	}
	do { /* what the room could not take yet */
		c = smtp_data_rx_feed(&rx, in + r->end, 0, r->out + r->olen, room ? room : 2, &w,
				      &r->done);
		FUZZ_CHECK(c == 0, "consumed from an empty input");
		r->olen += w;
	} while (w > 0);
}

/* CRLF-normalised, except that a final CR may wait for its LF when not done. */
static void check_normalised(const struct run *m)
{
	for (size_t i = 0; i < m->olen; i++) {
		if (m->out[i] == '\r')
			FUZZ_CHECK((i + 1 == m->olen && !m->done) ||
				       (i + 1 < m->olen && m->out[i + 1] == '\n'),
				   "bare CR at %zu of the output", i);
		if (m->out[i] == '\n')
			FUZZ_CHECK(i > 0 && m->out[i - 1] == '\r', "bare LF at %zu of the output",
				   i);
	}
}

static void check_same(const struct run *a, const struct run *m, const char *what)
{
	if (a->done != m->done || a->end != m->end || a->olen != m->olen ||
	    memcmp(a->out, m->out, m->olen) != 0) {
		fuzz_hex("model output", m->out, m->olen);
		fuzz_hex("reader output", a->out, a->olen);
	}
	FUZZ_CHECK(a->done == m->done, "%s: done %d, model %d", what, a->done, m->done);
	FUZZ_CHECK(a->end == m->end, "%s: terminator at %zu, model %zu", what, a->end, m->end);
	FUZZ_CHECK(a->olen == m->olen && memcmp(a->out, m->out, m->olen) == 0,
		   "%s: output differs from the model", what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_chunks plan;
	size_t off = fuzz_chunks_split(data, size, &plan), room = 0, n;
	const char *in;
	char *bufs;

	if (off < size)
		room = data[off] ? data[off] % 8u + 1 : 0;
	off += off < size;
	in = (const char *)data + off;
	n = size - off;
	bufs = malloc(3 * (2 * n + 8));
	FUZZ_CHECK(bufs != NULL, "out of memory");
	struct run m = {.out = bufs}, chunked = {.out = bufs + 2 * n + 8},
		   bytewise = {.out = bufs + 4 * n + 16};

	model_run(in, n, &m);
	check_normalised(&m);
	if (m.done)
		FUZZ_CHECK((m.end == 3 || (m.end >= 5 && !memcmp(in + m.end - 5, "\r\n", 2))) &&
			       !memcmp(in + m.end - 3, ".\r\n", 3),
			   "DATA ended at %zu without <CRLF>.<CRLF>", m.end);
	reader_run(in, n, &plan, room, &chunked);
	check_same(&chunked, &m, "chunked");
	reader_run(in, n, NULL, 2, &bytewise);
	check_same(&bytewise, &m, "byte at a time");
	free(bufs);
	return 0;
}
