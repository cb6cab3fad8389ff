/* test_queue_env — envelope encode/decode: round trips and hostile input.
 *
 * Why: the envelope is read back after crashes and upgrades from bytes on disk; the decoder
 * must turn anything short of a valid encoding into -EBADMSG / -EPROTO, never a crash or an
 * over-read. Inputs are decoded from exact-size heap copies so ASan sees any over-read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "queue/queue.h"

/* Decode from an exact-length heap copy of buf[0..len). */
static int decode_copy(const uint8_t *buf, size_t len, struct queue_env **out)
{
	uint8_t *c = malloc(len ? len : 1);
	int rc;

	assert_non_null(c);
	if (len)
		memcpy(c, buf, len);
	rc = queue_env_decode(len ? c : NULL, len, out);
	free(c);
	return rc;
}

/* Encode e into a fresh buffer of exactly queue_env_encoded_len bytes. */
static uint8_t *encode(const struct queue_env *e, size_t *len)
{
	size_t n = queue_env_encoded_len(e);
	uint8_t *buf = malloc(n);
	ssize_t w;

	assert_non_null(buf);
	w = queue_env_encode(e, buf, n);
	assert_int_equal(w, (ssize_t)n);
	*len = n;
	return buf;
}

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

static void assert_env_equal(const struct queue_env *a, const struct queue_env *b)
{
	assert_string_equal(str_or_empty(a->sender), b->sender);
	assert_int_equal(a->created_ms, b->created_ms);
	assert_int_equal(a->body_len, b->body_len);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->attempts, b->attempts);
	assert_int_equal(a->nrcpt, b->nrcpt);
	for (uint32_t i = 0; i < a->nrcpt; i++) {
		assert_string_equal(str_or_empty(a->rcpts[i].addr), b->rcpts[i].addr);
		assert_int_equal(a->rcpts[i].state, b->rcpts[i].state);
		assert_int_equal(a->rcpts[i].attempts, b->rcpts[i].attempts);
		assert_int_equal(a->rcpts[i].last_code, b->rcpts[i].last_code);
		assert_string_equal(str_or_empty(a->rcpts[i].last_reply), b->rcpts[i].last_reply);
	}
}

static void roundtrip(const struct queue_env *e)
{
	size_t len;
	uint8_t *buf = encode(e, &len);
	struct queue_env *d = NULL;

	assert_int_equal(decode_copy(buf, len, &d), 0);
	assert_non_null(d);
	assert_env_equal(e, d);
	queue_env_free(d);
	free(buf);
}

static struct queue_rcpt sample_rcpts[] = {
    {"alice@example.com", QUEUE_RCPT_PENDING, 0, 0, ""},
    {"bob@example.net", QUEUE_RCPT_DELIVERED, 1, 250, "250 2.0.0 Ok: queued as 4F1"},
    {"carol@example.org", QUEUE_RCPT_FAILED, 7, 550, "550 5.1.1 User unknown"},
};

static const struct queue_env sample = {
    .sender = "bounces+123@sender.example",
    .created_ms = 1700000000123ull,
    .body_len = 2048,
    .flags = QUEUE_ENV_8BITMIME,
    .attempts = 3,
    .nrcpt = 3,
    .rcpts = sample_rcpts,
};

static void test_env_roundtrip(void **state)
{
	roundtrip(&sample);
}

static void test_env_empty_sender_no_rcpts(void **state)
{
	struct queue_env e = {.sender = "", .flags = QUEUE_ENV_BOUNCE, .created_ms = UINT64_MAX};

	roundtrip(&e);
}

/* NULL strings are encoded as "" and come back as "". */
static void test_env_null_strings(void **state)
{
	struct queue_rcpt r = {NULL, QUEUE_RCPT_PENDING, 0, 0, NULL};
	struct queue_env e = {.sender = NULL, .nrcpt = 1, .rcpts = &r};

	roundtrip(&e);
}

static void test_env_many_rcpts(void **state)
{
	enum { N = 5000 };
	struct queue_rcpt *r = calloc(N, sizeof(*r));
	char(*addr)[64] = calloc(N, 64);
	struct queue_env e = sample;

	assert_non_null(r);
	assert_non_null(addr);
	for (int i = 0; i < N; i++) {
		snprintf(addr[i], 64, "user%d@domain%d.example", i, i % 97);
		r[i].addr = addr[i];
		r[i].state = (uint8_t)(i % 3);
		r[i].attempts = (uint16_t)(i * 13);
		r[i].last_code = (uint16_t)(i % 3 ? 451 : 0);
		r[i].last_reply = i % 3 ? "451 4.7.1 Try again later" : "";
	}
	e.nrcpt = N;
	e.rcpts = r;
	roundtrip(&e);
	free(addr);
	free(r);
}

static void test_env_8bit(void **state)
{
	struct queue_rcpt r = {"\xd1\x8e\xd0\xb7\xd0\xb5\xd1\x80@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc"
			       "\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84",
			       QUEUE_RCPT_PENDING, 65535, 65535,
			       "\x80\x81\xfe\xff high bytes \x7f"};
	struct queue_env e = {.sender = "\xc3\xa9t\xc3\xa9@\xc3\xa9xample.fr",
			      .flags = 0xffffffffu,
			      .attempts = 0xffffffffu,
			      .body_len = UINT64_MAX,
			      .nrcpt = 1,
			      .rcpts = &r};

	roundtrip(&e);
}

static void test_env_encode_enospc(void **state)
{
	size_t n = queue_env_encoded_len(&sample);
	uint8_t *buf = malloc(n);

	assert_non_null(buf);
	for (size_t cap = 0; cap < n; cap++)
		assert_int_equal(queue_env_encode(&sample, buf, cap), -ENOSPC);
	assert_int_equal(queue_env_encode(&sample, buf, n), (ssize_t)n);
	free(buf);
}

/* Every strict prefix of a valid encoding is rejected. */
static void test_env_every_truncation(void **state)
{
	size_t len;
	uint8_t *buf = encode(&sample, &len);

	for (size_t l = 0; l < len; l++) {
		struct queue_env *d = (struct queue_env *)1;

		assert_int_equal(decode_copy(buf, l, &d), -EBADMSG);
		assert_null(d);
	}
	free(buf);
}

static void test_env_trailing_bytes(void **state)
{
	size_t len;
	uint8_t *buf = encode(&sample, &len);
	uint8_t *big = calloc(1, len + 1);
	struct queue_env *d;

	assert_non_null(big);
	memcpy(big, buf, len);
	assert_int_equal(decode_copy(big, len + 1, &d), -EBADMSG);
	free(big);
	free(buf);
}

static void test_env_unknown_version(void **state)
{
	size_t len;
	uint8_t *buf = encode(&sample, &len);
	struct queue_env *d;

	for (int v = 0; v < 256; v++) {
		if (v == 1)
			continue;
		buf[0] = (uint8_t)v;
		assert_int_equal(decode_copy(buf, len, &d), -EPROTO);
		assert_int_equal(decode_copy(buf, 1, &d), -EPROTO);
	}
	free(buf);
}

/* Offsets into the encoding of a one-recipient envelope with sender "s@x" (3 bytes). */
enum {
	OFF_SENDER_LEN = 1 + 8 + 8 + 4 + 4,
	OFF_NRCPT = OFF_SENDER_LEN + 4 + 3,
	OFF_STATE = OFF_NRCPT + 4,
	OFF_ADDR_LEN = OFF_STATE + 1 + 2 + 2,
};

static uint8_t *one_rcpt(size_t *len)
{
	static struct queue_rcpt r = {"r@y", QUEUE_RCPT_PENDING, 0, 0, "ok"};
	static const struct queue_env e = {.sender = "s@x", .nrcpt = 1, .rcpts = &r};

	return encode(&e, len);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void test_env_corrupt_fields(void **state)
{
	static const struct {
		size_t off;
		uint32_t val;
		int is32;
	} cases[] = {
	    {OFF_SENDER_LEN, 0xffffffffu, 1}, /* string longer than input */
	    {OFF_SENDER_LEN, 4, 1},	      /* sender eats into nrcpt: misaligned */
	    {OFF_NRCPT, 0xffffffffu, 1},      /* absurd recipient count */
	    {OFF_NRCPT, 2, 1},		      /* one recipient missing */
	    {OFF_NRCPT, 0, 1},		      /* recipient left over as trailing bytes */
	    {OFF_STATE, 3, 0},		      /* unknown state */
	    {OFF_STATE, 0xff, 0},
	    {OFF_ADDR_LEN, 0x80000000u, 1},
	    {OFF_SENDER_LEN + 4 + 1, 0, 0}, /* NUL inside the sender */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		uint8_t *buf = one_rcpt(&len);
		struct queue_env *d = NULL;

		if (cases[i].is32)
			put_be32(buf + cases[i].off, cases[i].val);
		else
			buf[cases[i].off] = (uint8_t)cases[i].val;
		assert_int_equal(decode_copy(buf, len, &d), -EBADMSG);
		assert_null(d);
		free(buf);
	}
}

/* Flip every byte to several values: decode must either succeed (and re-encode to the same
 * bytes) or fail cleanly. Run under ASan, this is the no-over-read check. */
static void test_env_byte_flips(void **state)
{
	static const uint8_t vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
	size_t len;
	uint8_t *buf = encode(&sample, &len);

	for (size_t off = 0; off < len; off++) {
		for (size_t v = 0; v < sizeof(vals); v++) {
			uint8_t saved = buf[off];
			struct queue_env *d = NULL;
			int rc;

			buf[off] = vals[v];
			rc = decode_copy(buf, len, &d);
			assert_true(rc == 0 || rc == -EBADMSG || rc == -EPROTO);
			if (rc == 0) {
				size_t l2;
				uint8_t *re = encode(d, &l2);

				assert_int_equal(l2, len);
				assert_memory_equal(re, buf, len);
				free(re);
			}
			queue_env_free(d);
			buf[off] = saved;
		}
	}
	free(buf);
}

static void test_env_free_null(void **state)
{
	queue_env_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_env_roundtrip),
	    cmocka_unit_test(test_env_empty_sender_no_rcpts),
	    cmocka_unit_test(test_env_null_strings),
	    cmocka_unit_test(test_env_many_rcpts),
	    cmocka_unit_test(test_env_8bit),
	    cmocka_unit_test(test_env_encode_enospc),
	    cmocka_unit_test(test_env_every_truncation),
	    cmocka_unit_test(test_env_trailing_bytes),
	    cmocka_unit_test(test_env_unknown_version),
	    cmocka_unit_test(test_env_corrupt_fields),
	    cmocka_unit_test(test_env_byte_flips),
	    cmocka_unit_test(test_env_free_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
