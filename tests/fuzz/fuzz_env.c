/* fuzz_env — libFuzzer harness for the queue envelope codec: queue_env_decode and
 * queue_env_encode (queue/queue.h).
 *
 * Why: the envelope is read back after every restart, possibly from a damaged disk, and
 * rewritten after every attempt; a decoder that trusts a length, or an encoder whose output
 * does not decode to the same envelope, loses or changes mail. The input is used twice:
 *  - as stored bytes: decoding never crashes or leaks, fails with -EBADMSG/-EPROTO and a NULL
 *    envelope, or succeeds; a decoded envelope's encoded length is the input's length (the
 *    format is canonical: fixed-width integers, exact lengths, nothing trailing), encoding it
 *    gives the input bytes back, and one byte less of room is -ENOSPC;
 *  - as the material of an envelope (strings cut at NUL bytes, integers from the bytes):
 *    encode -> decode gives an equal envelope, and encoding that gives the same bytes.
 */
#include "tests/fuzz/fuzz.h"
#include "queue/queue.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static void check_equal(const struct queue_env *a, const struct queue_env *b)
{
	FUZZ_CHECK(a->created_ms == b->created_ms && a->body_len == b->body_len &&
		       a->flags == b->flags && a->attempts == b->attempts && a->nrcpt == b->nrcpt,
		   "header fields differ");
	FUZZ_CHECK(str_eq(a->sender, b->sender), "sender differs");
	for (uint32_t i = 0; i < a->nrcpt; i++) {
		const struct queue_rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
		FUZZ_CHECK(x->state == y->state && x->attempts == y->attempts &&
			       x->last_code == y->last_code,
			   "recipient %u: fields differ", i);
		FUZZ_CHECK(str_eq(x->addr, y->addr) && str_eq(x->last_reply, y->last_reply),
			   "recipient %u: strings differ", i);
	}
}

/* Encode e; the caller frees the result. Also checks the exact-room contract. */
static uint8_t *encode(const struct queue_env *e, size_t *len)
{
	size_t n = queue_env_encoded_len(e);
	uint8_t *buf = malloc(n ? n : 1);
	ssize_t w;

	FUZZ_CHECK(buf != NULL, "out of memory");
	w = queue_env_encode(e, buf, n);
	FUZZ_CHECK(w >= 0 && (size_t)w == n, "encode wrote %zd, encoded_len %zu", w, n);
	FUZZ_CHECK(n == 0 || queue_env_encode(e, buf, n - 1) == -ENOSPC,
		   "one byte less room is not -ENOSPC");
	*len = n;
	return buf;
}

/* The input as stored bytes. */
static void as_stored(const uint8_t *data, size_t size)
{
	struct queue_env *e = (struct queue_env *)1;
	uint8_t *again;
	size_t n;
	int r = queue_env_decode(data, size, &e);

	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -EPROTO, "decode returned %d", r);
		FUZZ_CHECK(e == NULL, "failed decode left an envelope");
		return;
	}
	FUZZ_CHECK(e != NULL, "decode succeeded without an envelope");
	for (uint32_t i = 0; i < e->nrcpt; i++)
		FUZZ_CHECK(e->rcpts[i].state <= QUEUE_RCPT_FAILED, "recipient %u state %u", i,
			   e->rcpts[i].state);
	again = encode(e, &n);
	if (n != size || memcmp(again, data, size) != 0)
		fuzz_hex("re-encoded", again, n);
	FUZZ_CHECK(n == size && memcmp(again, data, size) == 0,
		   "decode -> encode is not the input (%zu vs %zu bytes)", n, size);
	free(again);
	queue_env_free(e);
}

/* Next NUL-terminated piece of the material (at most 300 bytes), as a C string. */
static char *piece(const uint8_t **p, const uint8_t *e, char *buf)
{
	size_t n = 0;

	while (*p < e && **p != '\0' && n < 300)
		buf[n++] = (char)*(*p)++;
	if (*p < e && **p == '\0')
		(*p)++;
	buf[n] = '\0';
	return buf;
}

static uint64_t mix(const uint8_t *data, size_t size, uint64_t salt)
{
	uint64_t h = 1469598103934665603ull ^ salt;

	for (size_t i = 0; i < size && i < 64; i++)
		h = (h ^ data[i]) * 1099511628211ull;
	return h;
}

/* The input as the material of an envelope: encode -> decode -> encode. */
static void as_material(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *e = data + size;
	static char strs[1 + 2 * 8][301];
	struct queue_rcpt rcpts[8];
	struct queue_env env = {.sender = piece(&p, e, strs[0])}, *back = NULL;
	uint64_t h = mix(data, size, 0);
	uint8_t *bytes, *again;
	size_t n, n2;

	env.created_ms = h;
	env.body_len = mix(data, size, 1);
	env.flags = (uint32_t)(h >> 32);
	env.attempts = (uint32_t)h;
	while (p < e && env.nrcpt < 8) {
		struct queue_rcpt *r = &rcpts[env.nrcpt];
		r->addr = piece(&p, e, strs[1 + 2 * env.nrcpt]);
		r->last_reply = piece(&p, e, strs[2 + 2 * env.nrcpt]);
		r->state = (uint8_t)((h >> (env.nrcpt * 2)) % 3);
		r->attempts = (uint16_t)(h >> 16);
		r->last_code = (uint16_t)(h >> (8 + env.nrcpt));
		env.nrcpt++;
	}
	env.rcpts = rcpts;
	bytes = encode(&env, &n);
	FUZZ_CHECK(queue_env_decode(bytes, n, &back) == 0, "an encoded envelope does not decode");
	check_equal(&env, back);
	again = encode(back, &n2);
	FUZZ_CHECK(n2 == n && memcmp(again, bytes, n) == 0, "encode -> decode -> encode differs");
	free(again);
	free(bytes);
	queue_env_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_stored(data, size);
	as_material(data, size);
	return 0;
}
