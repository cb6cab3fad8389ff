/* fuzz_env — libFuzzer harness for the queue envelope codec (version 3, with destination
 * groups and DSN fields; version 2 is still read): queue_env_decode and queue_env_encode
 * (queue/queue.h).
 *
 * Why: the envelope is read back after every restart, possibly from a damaged disk, and
 * rewritten after every attempt; a decoder that trusts a length or a group index, or an encoder
 * whose output does not decode to the same envelope, loses or changes mail. The input is used
 * twice:
 *  - as stored bytes: decoding never crashes or leaks, fails with -EBADMSG/-EPROTO and a NULL
 *    envelope, or succeeds; a decoded envelope has known states, at most QUEUE_MAX_DESTS
 *    groups, every recipient's group < ndest, NULL arrays exactly when a count is 0; its
 *    encoded length is the input's length (the format is canonical: fixed-width integers,
 *    exact lengths, nothing trailing), encoding a version-3 input gives the input bytes back
 *    (one byte less of room is -ENOSPC), and decoding any re-encoding gives an equal envelope
 *    (a version-2 input re-encodes as version 3);
 *  - as the material of an envelope (strings cut at NUL bytes, integers from the bytes, up to
 *    4 groups and 8 recipients): an envelope whose recipient names a missing group is refused
 *    with -EINVAL; any other encodes, decodes to an equal envelope, and re-encodes to the same
 *    bytes.
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
		       a->flags == b->flags && a->nrcpt == b->nrcpt && a->ndest == b->ndest,
		   "header fields differ");
	FUZZ_CHECK(str_eq(a->sender, b->sender) && str_eq(a->envid, b->envid) && a->ret == b->ret,
		   "sender, envid or ret differs");
	for (uint32_t i = 0; i < a->nrcpt; i++) {
		const struct queue_rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
		FUZZ_CHECK(x->state == y->state && x->dest == y->dest &&
			       x->attempts == y->attempts && x->last_code == y->last_code &&
			       x->notify == y->notify && !memcmp(x->enh, y->enh, 3) &&
			       x->last_ms == y->last_ms,
			   "recipient %u: fields differ", i);
		FUZZ_CHECK(str_eq(x->addr, y->addr) && str_eq(x->last_reply, y->last_reply) &&
			       str_eq(x->orcpt, y->orcpt) && str_eq(x->last_mta, y->last_mta),
			   "recipient %u: strings differ", i);
	}
	for (uint32_t i = 0; i < a->ndest; i++) {
		const struct queue_dest *x = &a->dests[i], *y = &b->dests[i];
		FUZZ_CHECK(x->due == y->due && x->attempts == y->attempts &&
			       str_eq(x->name, y->name),
			   "group %u differs", i);
	}
}

/* The invariants of a decoded envelope on their own. */
static void check_decoded(const struct queue_env *e)
{
	FUZZ_CHECK(e->ndest <= QUEUE_MAX_DESTS, "ndest %u", e->ndest);
	FUZZ_CHECK((e->nrcpt == 0) == (e->rcpts == NULL), "nrcpt %u, rcpts %p", e->nrcpt,
		   (void *)e->rcpts);
	FUZZ_CHECK((e->ndest == 0) == (e->dests == NULL), "ndest %u, dests %p", e->ndest,
		   (void *)e->dests);
	FUZZ_CHECK(e->sender != NULL, "NULL sender");
	for (uint32_t i = 0; i < e->nrcpt; i++) {
		FUZZ_CHECK(e->rcpts[i].state <= QUEUE_RCPT_FAILED, "recipient %u state %u", i,
			   e->rcpts[i].state);
		FUZZ_CHECK(e->rcpts[i].dest < e->ndest, "recipient %u group %u, ndest %u", i,
			   e->rcpts[i].dest, e->ndest);
		FUZZ_CHECK(e->rcpts[i].addr && e->rcpts[i].last_reply, "recipient %u: NULL string",
			   i);
	}
	for (uint32_t i = 0; i < e->ndest; i++)
		FUZZ_CHECK(e->dests[i].name != NULL, "group %u: NULL name", i);
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
	struct queue_env *e = (struct queue_env *)1, *back = NULL;
	uint8_t *again;
	size_t n;
	int r = queue_env_decode(data, size, &e);

	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -EPROTO, "decode returned %d", r);
		FUZZ_CHECK(e == NULL, "failed decode left an envelope");
		return;
	}
	FUZZ_CHECK(e != NULL, "decode succeeded without an envelope");
	FUZZ_CHECK(size > 0 && (data[0] == 2 || data[0] == 3), "decoded a version %u envelope",
		   size ? data[0] : 0);
	check_decoded(e);
	again = encode(e, &n);
	if (data[0] == 3 && (n != size || memcmp(again, data, size) != 0))
		fuzz_hex("re-encoded", again, n);
	FUZZ_CHECK(data[0] == 2 || (n == size && memcmp(again, data, size) == 0),
		   "decode -> encode is not the input (%zu vs %zu bytes)", n, size);
	FUZZ_CHECK(queue_env_decode(again, n, &back) == 0, "re-encoded envelope does not decode");
	check_equal(e, back);
	queue_env_free(back);
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

/* Up to 4 groups for env from the material: names are pieces, the rest from the hash h.
 * Returns the number of groups. */
static uint32_t material_groups(const uint8_t **p, const uint8_t *e, uint64_t h,
				struct queue_dest *d, char (*strs)[301])
{
	uint32_t n = (uint32_t)((h >> 40) % 5);

	for (uint32_t i = 0; i < n; i++) {
		d[i].name = piece(p, e, strs[i]);
		d[i].due = i % 2 ? h >> (8 * i) : 0;
		d[i].attempts = (uint32_t)(h >> (4 * i));
	}
	return n;
}

/* Encode env, which has a recipient in a missing group: it must be refused. */
static void check_refused(const struct queue_env *env)
{
	size_t n = queue_env_encoded_len(env);
	uint8_t *buf = malloc(n ? n : 1);

	FUZZ_CHECK(buf != NULL, "out of memory");
	FUZZ_CHECK(queue_env_encode(env, buf, n) == -EINVAL,
		   "a recipient outside the group table was encoded");
	free(buf);
}

/* The input as the material of an envelope: encode -> decode -> encode. */
static void as_material(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *e = data + size;
	static char strs[1 + 4 + 2 * 8][301];
	struct queue_rcpt rcpts[8];
	struct queue_dest dests[4];
	struct queue_env env = {.sender = piece(&p, e, strs[0])}, *back = NULL;
	uint64_t h = mix(data, size, 0);
	uint8_t *bytes, *again;
	size_t n, n2;
	bool bad = false;

	env.created_ms = h;
	env.body_len = mix(data, size, 1);
	env.flags = (uint32_t)(h >> 32);
	env.ret = (uint8_t)(h % 3);
	env.envid = (h >> 7) % 2 ? strs[0] : NULL; /* the sender's piece again, or none */
	env.ndest = material_groups(&p, e, mix(data, size, 2), dests, strs + 1);
	env.dests = dests;
	while (p < e && env.nrcpt < 8) {
		struct queue_rcpt *r = &rcpts[env.nrcpt];
		r->addr = piece(&p, e, strs[5 + 2 * env.nrcpt]);
		r->last_reply = piece(&p, e, strs[6 + 2 * env.nrcpt]);
		r->state = (uint8_t)((h >> (env.nrcpt * 2)) % 3);
		/* one in 8 inputs names the group just past the table */
		r->dest = (uint16_t)(env.ndest ? (h >> (3 * env.nrcpt)) % env.ndest : 0);
		if (env.nrcpt == 0 && (h >> 56) % 8 == 0)
			r->dest = (uint16_t)env.ndest;
		bad |= r->dest >= env.ndest;
		r->attempts = (uint16_t)(h >> 16);
		r->last_code = (uint16_t)(h >> (8 + env.nrcpt));
		r->notify = (uint8_t)(h >> (4 * env.nrcpt));
		memcpy(r->enh, (const uint8_t *)&h + env.nrcpt % 6, 3);
		r->last_ms = h ^ env.nrcpt;
		r->orcpt = env.nrcpt % 2 ? r->addr : NULL;
		r->last_mta = env.nrcpt % 3 ? r->last_reply : NULL;
		env.nrcpt++;
	}
	env.rcpts = rcpts;
	if (bad) {
		check_refused(&env);
		return;
	}
	bytes = encode(&env, &n);
	FUZZ_CHECK(queue_env_decode(bytes, n, &back) == 0, "an encoded envelope does not decode");
	check_decoded(back);
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
