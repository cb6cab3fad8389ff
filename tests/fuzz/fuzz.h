/* fuzz.h — what the libFuzzer harnesses in tests/fuzz/ share: the entry point's prototype, an
 * invariant check that says what broke, and the chunk plan that lets one input choose how a
 * byte stream is cut into reads.
 *
 * Why a chunk plan in the input: the streaming parsers (DATA reader, dot-stuffer) must give the
 * same result however the network cuts the stream. Letting the fuzzer choose the cuts (and the
 * output room) makes it search the cut positions too, instead of trying a few fixed ones.
 */
#ifndef RIPTIDE_FUZZ_H
#define RIPTIDE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The libFuzzer entry point (declared for -Wmissing-prototypes). Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FUZZ_CHECK(cond, fmt, ...): an invariant of the code under test; on violation print what
 * broke and abort, so libFuzzer saves the input as a crash. */
#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "\nfuzz invariant broken (%s:%d): %s\n  ", __FILE__,       \
				__LINE__, #cond);                                                  \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* fuzz_hex: print n bytes of p as hex to stderr after a label (for invariant messages). */
static inline void fuzz_hex(const char *label, const void *p, size_t n)
{
	const uint8_t *b = p;

	fprintf(stderr, "  %s (%zu bytes):", label, n);
	for (size_t i = 0; i < n && i < 256; i++)
		fprintf(stderr, " %02x", b[i]);
	fprintf(stderr, n > 256 ? " ...\n" : "\n");
}

/* A chunk plan: the input's first byte k (mod 16) says that the next k bytes are chunk sizes,
 * used in turn; a size byte of 0 means "all that is left". The rest of the input is the
 * payload. Without size bytes every chunk is the whole rest. */
struct fuzz_chunks {
	const uint8_t *sizes;
	size_t nsizes, next;
};

/* fuzz_chunks_split: read the plan at the start of data; returns the payload offset. */
static inline size_t fuzz_chunks_split(const uint8_t *data, size_t size, struct fuzz_chunks *c)
{
	size_t k = size ? data[0] % 16u : 0;

	if (size == 0 || k + 1 > size) {
		*c = (struct fuzz_chunks){NULL, 0, 0};
		return size ? 1 : 0;
	}
	*c = (struct fuzz_chunks){data + 1, k, 0};
	return 1 + k;
}

/* fuzz_chunk_next: the size of the next chunk, 1..left (left > 0). */
static inline size_t fuzz_chunk_next(struct fuzz_chunks *c, size_t left)
{
	size_t s;

	if (c->nsizes == 0)
		return left;
	s = c->sizes[c->next++ % c->nsizes];
	return s == 0 || s > left ? left : s;
}

#endif
