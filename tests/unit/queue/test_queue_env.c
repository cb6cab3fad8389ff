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

/* Positional recipient initialisers below leave the version-3 fields zero on purpose. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* Largest malloc request made while `watching` (the test binary is linked with
 * -Wl,--wrap=malloc, see meson.build): proves the decoder sizes nothing from an unchecked
 * count. */
void *__wrap_malloc(size_t n);
void *__real_malloc(size_t n);
static bool watching;
static size_t largest_alloc;

void *__wrap_malloc(size_t n)
{
	if (watching && n > largest_alloc)
		largest_alloc = n;
	return __real_malloc(n);
}

/* Decode from an exact-length heap copy of buf[0..len). */
static int decode_copy(const uint8_t *buf, size_t len, struct queue_env **out)
{
	uint8_t *c = malloc(len ? len : 1);
	int rc;

	assert_non_null(c);
	if (len)
		memcpy(c, buf, len);
	largest_alloc = 0;
	watching = true;
	rc = queue_env_decode(len ? c : NULL, len, out);
	watching = false;
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

static void assert_rcpts_equal(const struct queue_env *a, const struct queue_env *b)
{
	assert_int_equal(a->nrcpt, b->nrcpt);
	if (!a->nrcpt)
		assert_null(b->rcpts);
	for (uint32_t i = 0; i < a->nrcpt; i++) {
		assert_string_equal(str_or_empty(a->rcpts[i].addr), b->rcpts[i].addr);
		assert_int_equal(a->rcpts[i].state, b->rcpts[i].state);
		assert_int_equal(a->rcpts[i].dest, b->rcpts[i].dest);
		assert_int_equal(a->rcpts[i].attempts, b->rcpts[i].attempts);
		assert_int_equal(a->rcpts[i].last_code, b->rcpts[i].last_code);
		assert_string_equal(str_or_empty(a->rcpts[i].last_reply), b->rcpts[i].last_reply);
		assert_int_equal(a->rcpts[i].notify, b->rcpts[i].notify);
		assert_memory_equal(a->rcpts[i].enh, b->rcpts[i].enh, 3);
		assert_int_equal(a->rcpts[i].last_ms, b->rcpts[i].last_ms);
		assert_string_equal(str_or_empty(a->rcpts[i].orcpt), b->rcpts[i].orcpt);
		assert_string_equal(str_or_empty(a->rcpts[i].last_mta), b->rcpts[i].last_mta);
	}
}

static void assert_env_equal(const struct queue_env *a, const struct queue_env *b)
{
	assert_string_equal(str_or_empty(a->sender), b->sender);
	assert_string_equal(str_or_empty(a->envid), b->envid);
	assert_int_equal(a->ret, b->ret);
	assert_int_equal(a->created_ms, b->created_ms);
	assert_int_equal(a->body_len, b->body_len);
	assert_int_equal(a->flags, b->flags);
	assert_rcpts_equal(a, b);
	assert_int_equal(a->ndest, b->ndest);
	if (!a->ndest)
		assert_null(b->dests);
	for (uint32_t i = 0; i < a->ndest; i++) {
		assert_string_equal(str_or_empty(a->dests[i].name), b->dests[i].name);
		assert_int_equal(a->dests[i].due, b->dests[i].due);
		assert_int_equal(a->dests[i].attempts, b->dests[i].attempts);
	}
}

static void roundtrip(const struct queue_env *e)
{
	size_t len;
	uint8_t *buf = encode(e, &len);
	struct queue_env *d = NULL;

	assert_int_equal(decode_copy(buf, len, &d), 0);
	assert_non_null(d);
	assert_true(largest_alloc > 0); /* the malloc wrap sees the decoder's allocation */
	assert_env_equal(e, d);
	queue_env_free(d);
	free(buf);
}

/* Three groups: a due one, an empty name with no sched entry, and extreme values. */
static struct queue_dest sample_dests[] = {
    {"example.com", 1700000060000ull, 0},
    {"", 0, 2},
    {"example.org", UINT64_MAX, UINT32_MAX},
};

static struct queue_rcpt sample_rcpts[] = {
    {"alice@example.com", QUEUE_RCPT_PENDING, 0, 0, 0, ""},
    {"bob@example.net",
     QUEUE_RCPT_DELIVERED,
     1,
     1,
     250,
     "250 2.0.0 Ok: queued as 4F1",
     QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE,
     {2, 0, 0},
     1700000000123ull,
     "rfc822;Bob@Example.NET",
     "mx1.example.net"},
    {"carol@example.org",
     QUEUE_RCPT_FAILED,
     2,
     7,
     550,
     "550 5.1.1 User unknown",
     QUEUE_NOTIFY_NEVER,
     {5, 1, 1},
     UINT64_MAX,
     "",
     "192.0.2.7"},
};

static const struct queue_env sample = {
    .sender = "bounces+123@sender.example",
    .envid = "campaign-42.batch+7",
    .ret = QUEUE_RET_HDRS,
    .created_ms = 1700000000123ull,
    .body_len = 2048,
    .flags = QUEUE_ENV_8BITMIME,
    .nrcpt = 3,
    .rcpts = sample_rcpts,
    .ndest = 3,
    .dests = sample_dests,
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

/* NULL strings (also a group's name) are encoded as "" and come back as "". */
static void test_env_null_strings(void **state)
{
	struct queue_rcpt r = {NULL, QUEUE_RCPT_PENDING, 0, 0, 0, NULL};
	struct queue_dest d = {NULL, 5, 1};
	struct queue_env e = {.sender = NULL, .nrcpt = 1, .rcpts = &r, .ndest = 1, .dests = &d};

	roundtrip(&e);
}

/* Several groups: recipients interleaved across them, a group without recipients, groups
 * without recipients at all (nrcpt 0), dues 0 / 1 / large, attempts 0 / large. */
static void test_env_groups_roundtrip(void **state)
{
	struct queue_dest d[] = {
	    {"a.example", 0, 0},
	    {"", 1, 1},
	    {"b.example", 1ull << 63, 70000},
	    {"c.example", UINT64_MAX, 0},
	    {"unused.example", 42, UINT32_MAX},
	};
	struct queue_rcpt r[] = {
	    {"x@b.example", QUEUE_RCPT_PENDING, 2, 3, 451, "451 later"},
	    {"y@a.example", QUEUE_RCPT_DELIVERED, 0, 1, 250, "250 ok"},
	    {"z@c.example", QUEUE_RCPT_FAILED, 3, 9, 550, "550 no"},
	    {"w@b.example", QUEUE_RCPT_PENDING, 2, 0, 0, ""},
	    {"v@local", QUEUE_RCPT_PENDING, 1, 0, 0, ""},
	};
	struct queue_env e = {
	    .sender = "s@x", .created_ms = 1, .nrcpt = 5, .rcpts = r, .ndest = 5, .dests = d};

	roundtrip(&e);
	e.nrcpt = 0; /* groups are kept even when no recipient names them */
	roundtrip(&e);
	e.ndest = 1;
	roundtrip(&e);
}

/* The largest group table: QUEUE_MAX_DESTS groups, a recipient in the last one (index
 * 65534), another in the first. */
static void test_env_max_groups(void **state)
{
	struct queue_dest *d = calloc(QUEUE_MAX_DESTS, sizeof(*d));
	struct queue_rcpt r[] = {
	    {"last@x", QUEUE_RCPT_PENDING, QUEUE_MAX_DESTS - 1, 0, 0, ""},
	    {"first@x", QUEUE_RCPT_PENDING, 0, 0, 0, ""},
	};
	struct queue_env e = {.sender = "s@x", .nrcpt = 2, .rcpts = r};

	assert_non_null(d);
	for (uint32_t i = 0; i < QUEUE_MAX_DESTS; i++)
		d[i] = (struct queue_dest){i % 7 ? "" : "seven.example", i, i * 3u};
	e.ndest = QUEUE_MAX_DESTS;
	e.dests = d;
	roundtrip(&e);
	free(d);
}

static void test_env_many_rcpts(void **state)
{
	enum { N = 5000, NDEST = 97 };
	struct queue_rcpt *r = calloc(N, sizeof(*r));
	struct queue_dest *d = calloc(NDEST, sizeof(*d));
	char(*addr)[64] = calloc(N, 64), (*dom)[32] = calloc(NDEST, 32);
	struct queue_env e = sample;

	assert_true(r && d && addr && dom);
	for (int i = 0; i < NDEST; i++) {
		snprintf(dom[i], 32, "domain%d.example", i);
		d[i] = (struct queue_dest){dom[i], 1700000000000ull + (uint64_t)i * 60000,
					   (uint32_t)i};
	}
	for (int i = 0; i < N; i++) {
		snprintf(addr[i], 64, "user%d@domain%d.example", i, i % NDEST);
		r[i].addr = addr[i];
		r[i].state = (uint8_t)(i % 3);
		r[i].dest = (uint16_t)(i % NDEST);
		r[i].attempts = (uint16_t)(i * 13);
		r[i].last_code = (uint16_t)(i % 3 ? 451 : 0);
		r[i].last_reply = i % 3 ? "451 4.7.1 Try again later" : "";
	}
	e.nrcpt = N;
	e.rcpts = r;
	e.ndest = NDEST;
	e.dests = d;
	roundtrip(&e);
	free(dom);
	free(addr);
	free(d);
	free(r);
}

static void test_env_8bit(void **state)
{
	struct queue_rcpt r = {"\xd1\x8e\xd0\xb7\xd0\xb5\xd1\x80@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc"
			       "\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84",
			       QUEUE_RCPT_PENDING,
			       0,
			       65535,
			       65535,
			       "\x80\x81\xfe\xff high bytes \x7f"};
	struct queue_dest d = {
	    "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84\xff", UINT64_MAX,
	    0xffffffffu};
	struct queue_env e = {.sender = "\xc3\xa9t\xc3\xa9@\xc3\xa9xample.fr",
			      .flags = 0xffffffffu,
			      .body_len = UINT64_MAX,
			      .nrcpt = 1,
			      .rcpts = &r,
			      .ndest = 1,
			      .dests = &d};

	roundtrip(&e);
}

/* The encoder refuses an envelope whose recipient names a group that does not exist, and a
 * group table larger than a sched key's 2-byte index can address. */
static void test_env_encode_einval(void **state)
{
	struct queue_rcpt r[2] = {{"a@x", QUEUE_RCPT_PENDING, 0, 0, 0, ""},
				  {"b@y", QUEUE_RCPT_PENDING, 1, 0, 0, ""}};
	struct queue_dest *d = calloc(QUEUE_MAX_DESTS + 1, sizeof(*d));
	struct queue_env e = {.sender = "s@x", .nrcpt = 2, .rcpts = r, .ndest = 2};
	size_t cap = queue_env_encoded_len(&sample) + 16 * (QUEUE_MAX_DESTS + 2) + 64;
	uint8_t *buf = malloc(cap);

	assert_true(d && buf);
	e.dests = d;
	assert_true(queue_env_encode(&e, buf, cap) > 0); /* both groups exist */
	e.ndest = 1;					 /* b@y's group 1 is gone */
	assert_int_equal(queue_env_encode(&e, buf, cap), -EINVAL);
	e.ndest = 0; /* recipients but no group at all */
	assert_int_equal(queue_env_encode(&e, buf, cap), -EINVAL);
	r[1].dest = 65535; /* the largest index a rcpt can hold: never valid */
	e.ndest = QUEUE_MAX_DESTS;
	assert_int_equal(queue_env_encode(&e, buf, cap), -EINVAL);
	r[1].dest = 1;
	assert_true(queue_env_encode(&e, buf, cap) > 0);
	e.ndest = QUEUE_MAX_DESTS + 1; /* too many groups */
	assert_int_equal(queue_env_encode(&e, buf, cap), -EINVAL);
	e.nrcpt = 0; /* also without recipients */
	assert_int_equal(queue_env_encode(&e, buf, cap), -EINVAL);
	free(buf);
	free(d);
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

/* Every version byte but 2 and 3 is -EPROTO, also 1 (the format before destination groups) and
 * also with nothing after the version byte. */
static void test_env_unknown_version(void **state)
{
	size_t len;
	uint8_t *buf = encode(&sample, &len);
	struct queue_env *d;

	assert_int_equal(buf[0], 3);
	for (int v = 0; v < 256; v++) {
		if (v == 2 || v == 3)
			continue;
		buf[0] = (uint8_t)v;
		d = (struct queue_env *)1;
		assert_int_equal(decode_copy(buf, len, &d), -EPROTO);
		assert_null(d);
		assert_int_equal(decode_copy(buf, 1, &d), -EPROTO);
	}
	free(buf);
}

/* A real version-1 envelope (one recipient, the message-level attempts field, no groups), as
 * riptide wrote it before destination groups: refused with -EPROTO, not misread. */
static void test_env_version1_refused(void **state)
{
	/* clang-format off */
	static const uint8_t v1[] = {
	    1,                                     /* version */
	    0, 0, 1, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* created_ms */
	    0, 0, 0, 0, 0, 0, 0x08, 0x00,          /* body_len 2048 */
	    0, 0, 0, 1,                            /* flags */
	    0, 0, 0, 3,                            /* attempts (v1 only) */
	    0, 0, 0, 3, 's', '@', 'x',             /* sender */
	    0, 0, 0, 1,                            /* nrcpt */
	    0, 0, 2, 0x01, 0xc3,                   /* state, attempts, last_code 451 */
	    0, 0, 0, 3, 'r', '@', 'y',             /* addr */
	    0, 0, 0, 2, '4', '5',                  /* last_reply */
	};
	/* clang-format on */
	struct queue_env *d = (struct queue_env *)1;
	uint8_t copy[sizeof(v1)];

	assert_int_equal(decode_copy(v1, sizeof(v1), &d), -EPROTO);
	assert_null(d);
	/* read as version 2 it does not parse either (v1's attempts becomes the sender length) */
	memcpy(copy, v1, sizeof(v1));
	copy[0] = 2;
	assert_int_equal(decode_copy(copy, sizeof(copy), &d), -EBADMSG);
	assert_null(d);
}

/* A version-2 envelope (riptide before DSN parameters) is still read: the version-3 fields
 * come back empty, everything else as written. */
static void test_env_version2_read(void **state)
{
	/* clang-format off */
	static const uint8_t v2[] = {
	    2,                                     /* version */
	    0, 0, 1, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* created_ms */
	    0, 0, 0, 0, 0, 0, 0x08, 0x00,          /* body_len 2048 */
	    0, 0, 0, 1,                            /* flags */
	    0, 0, 0, 3, 's', '@', 'x',             /* sender */
	    0, 0, 0, 1,                            /* nrcpt */
	    0, 0, 0, 0, 2, 0x01, 0xc3,             /* state, dest, attempts 2, last_code 451 */
	    0, 0, 0, 3, 'r', '@', 'y',             /* addr */
	    0, 0, 0, 2, '4', '5',                  /* last_reply */
	    0, 0, 0, 1,                            /* ndest */
	    0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 2,    /* due 9, attempts 2 */
	    0, 0, 0, 1, 'y',                       /* name */
	};
	/* clang-format on */
	struct queue_env *d = NULL;

	assert_int_equal(decode_copy(v2, sizeof(v2), &d), 0);
	assert_string_equal(d->sender, "s@x");
	assert_string_equal(d->envid, "");
	assert_int_equal(d->ret, QUEUE_RET_NONE);
	assert_int_equal(d->nrcpt, 1);
	assert_string_equal(d->rcpts[0].addr, "r@y");
	assert_int_equal(d->rcpts[0].attempts, 2);
	assert_int_equal(d->rcpts[0].last_code, 451);
	assert_string_equal(d->rcpts[0].last_reply, "45");
	assert_int_equal(d->rcpts[0].notify, 0);
	assert_string_equal(d->rcpts[0].orcpt, "");
	assert_string_equal(d->rcpts[0].last_mta, "");
	assert_int_equal(d->ndest, 1);
	assert_int_equal(d->dests[0].due, 9);
	assert_string_equal(d->dests[0].name, "y");
	queue_env_free(d);
	for (size_t cut = 0; cut < sizeof(v2); cut++) /* every truncation is refused */
		assert_int_not_equal(decode_copy(v2, cut, &d), 0);
}

/* Offsets into the encoding of a one-recipient, one-group envelope with sender "s@x",
 * recipient "r@y" / "ok" and group "d". */
enum {
	OFF_SENDER_LEN = 1 + 8 + 8 + 4,
	OFF_NRCPT = OFF_SENDER_LEN + 4 + 3 + 4 + 1, /* sender, envid "", ret */
	OFF_STATE = OFF_NRCPT + 4,
	OFF_DEST = OFF_STATE + 1,
	OFF_ADDR_LEN = OFF_STATE + 1 + 2 + 2 + 2 + 1 + 3 + 8,
	OFF_NDEST = OFF_ADDR_LEN + 4 + 3 + 4 + 2 + 4 + 4, /* addr, reply, orcpt "", mta "" */
	OFF_DNAME_LEN = OFF_NDEST + 4 + 8 + 4,
	ONE_RCPT_LEN = OFF_DNAME_LEN + 4 + 1,
};

static uint8_t *one_rcpt(size_t *len)
{
	static struct queue_rcpt r = {"r@y", QUEUE_RCPT_PENDING, 0, 0, 0, "ok"};
	static struct queue_dest d = {"d", 7, 1};
	static const struct queue_env e = {
	    .sender = "s@x", .nrcpt = 1, .rcpts = &r, .ndest = 1, .dests = &d};
	uint8_t *buf = encode(&e, len);

	assert_int_equal(*len, ONE_RCPT_LEN);
	return buf;
}

static void put_be(uint8_t *p, uint32_t v, int width)
{
	for (int i = width - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void test_env_corrupt_fields(void **state)
{
	static const struct {
		size_t off;
		uint32_t val;
		int width;
	} cases[] = {
	    {OFF_SENDER_LEN, 0xffffffffu, 4}, /* string longer than input */
	    {OFF_SENDER_LEN, 4, 4},	      /* sender eats into nrcpt: misaligned */
	    {OFF_NRCPT, 0xffffffffu, 4},      /* absurd recipient count */
	    {OFF_NRCPT, 2, 4},		      /* one recipient missing */
	    {OFF_NRCPT, 0, 4},		      /* recipient left over as trailing bytes */
	    {OFF_STATE, 3, 1},		      /* unknown state */
	    {OFF_STATE, 0xff, 1},
	    {OFF_DEST, 1, 2}, /* recipient's group == ndest */
	    {OFF_DEST, 0xffff, 2},
	    {OFF_ADDR_LEN, 0x80000000u, 4},
	    {OFF_SENDER_LEN + 4 + 1, 0, 1}, /* NUL inside the sender */
	    {OFF_NDEST, 0, 4},		    /* the recipient's group missing (+ trailing) */
	    {OFF_NDEST, 2, 4},		    /* group table truncated */
	    {OFF_NDEST, QUEUE_MAX_DESTS, 4},
	    {OFF_NDEST, 0xffffffffu, 4},
	    {OFF_DNAME_LEN, 2, 4}, /* group name runs past the end */
	    {OFF_DNAME_LEN, 0, 4}, /* one trailing byte */
	    {OFF_DNAME_LEN, 0xffffffffu, 4},
	    {OFF_DNAME_LEN + 4, 0, 1}, /* NUL inside a group name */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		uint8_t *buf = one_rcpt(&len);
		struct queue_env *d = (struct queue_env *)1;

		put_be(buf + cases[i].off, cases[i].val, cases[i].width);
		assert_int_equal(decode_copy(buf, len, &d), -EBADMSG);
		assert_null(d);
		assert_true(largest_alloc < 4096); /* counts are checked before allocating */
		free(buf);
	}
}

/* A count that the bytes left cannot hold is refused before anything is sized from it: a
 * short input claiming 65535 groups (or 2^32-1 recipients) allocates nothing big. */
static void test_env_huge_counts_no_alloc(void **state)
{
	uint8_t buf[ONE_RCPT_LEN + 16 * 64];
	struct queue_env *d = (struct queue_env *)1;
	size_t len;
	uint8_t *one = one_rcpt(&len);

	memset(buf, 0, sizeof(buf));
	memcpy(buf, one, len);
	free(one);
	/* after ndest: group "d" (17 B) and 64 empty groups (16 B each) of zero bytes */
	put_be(buf + OFF_NDEST, QUEUE_MAX_DESTS, 4);
	assert_int_equal(decode_copy(buf, sizeof(buf), &d), -EBADMSG);
	assert_null(d);
	assert_true(largest_alloc < 4096);
	put_be(buf + OFF_NRCPT, 0xffffffffu, 4);
	assert_int_equal(decode_copy(buf, sizeof(buf), &d), -EBADMSG);
	assert_true(largest_alloc < 4096);
	/* the same bytes with a count that fits decode (every trailing group empty) */
	put_be(buf + OFF_NRCPT, 1, 4);
	put_be(buf + OFF_NDEST, 1 + 64, 4);
	assert_int_equal(decode_copy(buf, sizeof(buf), &d), 0);
	assert_int_equal(d->ndest, 65);
	assert_string_equal(d->dests[64].name, "");
	queue_env_free(d);
}

/* More than QUEUE_MAX_DESTS groups is refused even when every group is really there. */
static void test_env_too_many_groups(void **state)
{
	struct queue_dest *dd = calloc(QUEUE_MAX_DESTS, sizeof(*dd));
	struct queue_env e = {.sender = "", .ndest = QUEUE_MAX_DESTS}, *d = (struct queue_env *)1;
	size_t len;
	uint8_t *buf, *big;

	assert_non_null(dd);
	for (uint32_t i = 0; i < QUEUE_MAX_DESTS; i++)
		dd[i].name = "";
	e.dests = dd;
	buf = encode(&e, &len);
	big = calloc(1, len + 16); /* one more empty group: due 0, attempts 0, name "" */
	assert_non_null(big);
	memcpy(big, buf, len);
	put_be(big + 1 + 8 + 8 + 4 + 4 + 4 + 1 + 4, QUEUE_MAX_DESTS + 1, 4);
	assert_int_equal(decode_copy(big, len + 16, &d), -EBADMSG);
	assert_null(d);
	put_be(big + 1 + 8 + 8 + 4 + 4 + 4 + 1 + 4, QUEUE_MAX_DESTS,
	       4); /* control: 65535 + 16 bytes */
	assert_int_equal(decode_copy(big, len + 16, &d), -EBADMSG);
	assert_int_equal(decode_copy(big, len, &d), 0);
	assert_int_equal(d->ndest, QUEUE_MAX_DESTS);
	queue_env_free(d);
	free(big);
	free(buf);
	free(dd);
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
	    cmocka_unit_test(test_env_groups_roundtrip),
	    cmocka_unit_test(test_env_max_groups),
	    cmocka_unit_test(test_env_many_rcpts),
	    cmocka_unit_test(test_env_8bit),
	    cmocka_unit_test(test_env_encode_einval),
	    cmocka_unit_test(test_env_encode_enospc),
	    cmocka_unit_test(test_env_every_truncation),
	    cmocka_unit_test(test_env_trailing_bytes),
	    cmocka_unit_test(test_env_unknown_version),
	    cmocka_unit_test(test_env_version1_refused),
	    cmocka_unit_test(test_env_version2_read),
	    cmocka_unit_test(test_env_corrupt_fields),
	    cmocka_unit_test(test_env_huge_counts_no_alloc),
	    cmocka_unit_test(test_env_too_many_groups),
	    cmocka_unit_test(test_env_byte_flips),
	    cmocka_unit_test(test_env_free_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
