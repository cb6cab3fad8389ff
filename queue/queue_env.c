/* queue_env.c — the versioned binary envelope stored in the meta column family.
 *
 * Why: the envelope is rewritten on every delivery attempt and read back after every restart,
 * possibly by a newer riptide, possibly from a damaged disk. So it is compact (fixed-width
 * big-endian integers, u32-length-prefixed strings, no padding), starts with a version byte
 * so the format can evolve, and the decoder trusts nothing: every length is checked against the
 * bytes left, strings may not contain NUL, states must be known, and the input must be consumed
 * exactly. A decoded envelope is one allocation (struct, recipient array, strings) so it is
 * freed with one free().
 *
 * Layout, version 2 (all integers big-endian):
 *   u8 version=2 | u64 created_ms | u64 body_len | u32 flags | str sender |
 *   u32 nrcpt | nrcpt x { u8 state | u16 dest | u16 attempts | u16 last_code | str addr |
 *                         str last_reply } |
 *   u32 ndest | ndest x { u64 due | u32 attempts | str name }
 *   where str = u32 length + bytes (no NUL). Every recipient's dest is < ndest. Version 1 (one
 *   sched entry per message, before destination groups) is not read.
 */
#include <errno.h>
#include <string.h>

#include "queue/queue.h"
#include "queue/queue_types.h"

#define ENV_VERSION   2
#define ENV_FIXED_LEN (1 + 8 + 8 + 4 + 4 + 4 + 4) /* header + sender len + nrcpt + ndest */
#define RCPT_MIN_LEN  (1 + 2 + 2 + 2 + 4 + 4)	  /* a recipient with two empty strings */
#define DEST_MIN_LEN  (8 + 4 + 4)		  /* a destination with an empty name */

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

/* queue_env_encoded_len: exact size of the encoding of e. */
size_t queue_env_encoded_len(const struct queue_env *e)
{
	size_t n = ENV_FIXED_LEN + slen(e->sender);

	for (uint32_t i = 0; i < e->nrcpt; i++)
		n += RCPT_MIN_LEN + slen(e->rcpts[i].addr) + slen(e->rcpts[i].last_reply);
	for (uint32_t i = 0; i < e->ndest; i++)
		n += DEST_MIN_LEN + slen(e->dests[i].name);
	return n;
}

/* A write cursor; the caller has checked the capacity up front. */
struct wcur {
	uint8_t *p;
};

static void put_u8(struct wcur *w, uint8_t v)
{
	*w->p++ = v;
}

static void put_u16(struct wcur *w, uint16_t v)
{
	w->p[0] = (uint8_t)(v >> 8);
	w->p[1] = (uint8_t)v;
	w->p += 2;
}

static void put_u32(struct wcur *w, uint32_t v)
{
	put_u16(w, (uint16_t)(v >> 16));
	put_u16(w, (uint16_t)v);
}

static void put_u64(struct wcur *w, uint64_t v)
{
	queue_be64_put(w->p, v);
	w->p += 8;
}

static void put_str(struct wcur *w, const char *s)
{
	size_t n = slen(s);

	put_u32(w, (uint32_t)n);
	if (n)
		memcpy(w->p, s, n);
	w->p += n;
}

/* Every string must fit its u32 length prefix and every recipient's group must exist.
 * Returns 0 or -EINVAL. */
static int env_check(const struct queue_env *e)
{
	if (slen(e->sender) > UINT32_MAX || e->ndest > QUEUE_MAX_DESTS)
		return -EINVAL;
	for (uint32_t i = 0; i < e->nrcpt; i++)
		if (slen(e->rcpts[i].addr) > UINT32_MAX ||
		    slen(e->rcpts[i].last_reply) > UINT32_MAX || e->rcpts[i].dest >= e->ndest)
			return -EINVAL;
	for (uint32_t i = 0; i < e->ndest; i++)
		if (slen(e->dests[i].name) > UINT32_MAX)
			return -EINVAL;
	return 0;
}

/* queue_env_encode: see queue.h. NULL strings encode as "". Returns the bytes written,
 * -ENOSPC if cap is too small, or -EINVAL if a string is longer than 4 GiB. */
ssize_t queue_env_encode(const struct queue_env *e, uint8_t *buf, size_t cap)
{
	size_t need = queue_env_encoded_len(e);
	struct wcur w = {buf};

	if (need > cap)
		return -ENOSPC;
	if (env_check(e) < 0)
		return -EINVAL;
	put_u8(&w, ENV_VERSION);
	put_u64(&w, e->created_ms);
	put_u64(&w, e->body_len);
	put_u32(&w, e->flags);
	put_str(&w, e->sender);
	put_u32(&w, e->nrcpt);
	for (uint32_t i = 0; i < e->nrcpt; i++) {
		const struct queue_rcpt *r = &e->rcpts[i];

		put_u8(&w, r->state);
		put_u16(&w, r->dest);
		put_u16(&w, r->attempts);
		put_u16(&w, r->last_code);
		put_str(&w, r->addr);
		put_str(&w, r->last_reply);
	}
	put_u32(&w, e->ndest);
	for (uint32_t i = 0; i < e->ndest; i++) {
		put_u64(&w, e->dests[i].due);
		put_u32(&w, e->dests[i].attempts);
		put_str(&w, e->dests[i].name);
	}
	QUEUE_BUG_ON((size_t)(w.p - buf) != need);
	return (ssize_t)need;
}

/* ---- decoding ---- */

/* A bounds-checked read cursor. Every get_* returns 0 or -EBADMSG (past the end). */
struct rcur {
	const uint8_t *p;
	size_t left;
};

static int get_bytes(struct rcur *r, size_t n, const uint8_t **out)
{
	if (n > r->left)
		return -EBADMSG;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return 0;
}

static int get_uint(struct rcur *r, size_t width, uint64_t *v)
{
	const uint8_t *p;

	if (get_bytes(r, width, &p) < 0)
		return -EBADMSG;
	*v = 0;
	for (size_t i = 0; i < width; i++)
		*v = (*v << 8) | p[i];
	return 0;
}

/* A length-prefixed string without NUL bytes; *s points into the input. */
static int get_str(struct rcur *r, const uint8_t **s, size_t *len)
{
	uint64_t n;

	if (get_uint(r, 4, &n) < 0 || get_bytes(r, (size_t)n, s) < 0)
		return -EBADMSG;
	if (n && memchr(*s, '\0', (size_t)n))
		return -EBADMSG;
	*len = (size_t)n;
	return 0;
}

/* Decoded integer fields of one recipient. */
struct rcpt_fix {
	uint64_t state, dest, attempts, code;
};

/* Parse one recipient into f, addr and reply (pointers into the input). */
static int get_rcpt(struct rcur *r, struct rcpt_fix *f, const uint8_t **addr, size_t *alen,
		    const uint8_t **reply, size_t *rlen)
{
	if (get_uint(r, 1, &f->state) < 0 || get_uint(r, 2, &f->dest) < 0 ||
	    get_uint(r, 2, &f->attempts) < 0 || get_uint(r, 2, &f->code) < 0)
		return -EBADMSG;
	if (f->state > QUEUE_RCPT_FAILED)
		return -EBADMSG;
	if (get_str(r, addr, alen) < 0 || get_str(r, reply, rlen) < 0)
		return -EBADMSG;
	return 0;
}

/* Fixed header of the envelope (after the version byte). */
static int get_header(struct rcur *r, struct queue_env *h, const uint8_t **snd, size_t *sndlen)
{
	uint64_t flags, nrcpt;

	if (get_uint(r, 8, &h->created_ms) < 0 || get_uint(r, 8, &h->body_len) < 0 ||
	    get_uint(r, 4, &flags) < 0 || get_str(r, snd, sndlen) < 0 || get_uint(r, 4, &nrcpt) < 0)
		return -EBADMSG;
	/* each recipient takes at least RCPT_MIN_LEN bytes: bounds the allocation below */
	if (nrcpt > r->left / RCPT_MIN_LEN)
		return -EBADMSG;
	h->flags = (uint32_t)flags;
	h->nrcpt = (uint32_t)nrcpt;
	return 0;
}

/* Parse one destination group (name points into the input). */
static int get_dest(struct rcur *r, uint64_t *due, uint64_t *attempts, const uint8_t **name,
		    size_t *nlen)
{
	if (get_uint(r, 8, due) < 0 || get_uint(r, 4, attempts) < 0 || get_str(r, name, nlen) < 0)
		return -EBADMSG;
	return 0;
}

/* Pass 1: validate everything, read the group count into h->ndest and add up the string
 * bytes (with NULs) the copy needs. */
static int env_measure(struct rcur r, struct queue_env *h, size_t *strbytes)
{
	struct rcpt_fix f;
	const uint8_t *a, *b;
	size_t alen, blen, total = 0;
	uint64_t maxdest = 0, ndest, due, att;

	for (uint32_t i = 0; i < h->nrcpt; i++) {
		if (get_rcpt(&r, &f, &a, &alen, &b, &blen) < 0)
			return -EBADMSG;
		total += alen + blen + 2;
		maxdest = f.dest > maxdest ? f.dest : maxdest;
	}
	if (get_uint(&r, 4, &ndest) < 0 || ndest > QUEUE_MAX_DESTS ||
	    ndest > r.left / DEST_MIN_LEN || (h->nrcpt && maxdest >= ndest))
		return -EBADMSG;
	for (uint64_t i = 0; i < ndest; i++) {
		if (get_dest(&r, &due, &att, &a, &alen) < 0)
			return -EBADMSG;
		total += alen + 1;
	}
	if (r.left != 0)
		return -EBADMSG; /* trailing bytes */
	h->ndest = (uint32_t)ndest;
	*strbytes = total;
	return 0;
}

/* Copy n bytes + NUL to *dst, return the copy, advance *dst. */
static char *copy_str(char **dst, const uint8_t *s, size_t n)
{
	char *out = *dst;

	if (n)
		memcpy(out, s, n);
	out[n] = '\0';
	*dst += n + 1;
	return out;
}

/* Pass 2: fill e->rcpts and e->dests from input already validated by env_measure. */
static void env_fill(struct rcur r, struct queue_env *e, char *strs)
{
	struct rcpt_fix f;
	const uint8_t *a, *b;
	size_t alen, blen;
	uint64_t ndest, due, att;

	for (uint32_t i = 0; i < e->nrcpt; i++) {
		struct queue_rcpt *rc = &e->rcpts[i];
		int rc_ok = get_rcpt(&r, &f, &a, &alen, &b, &blen);

		QUEUE_BUG_ON(rc_ok < 0);
		rc->state = (uint8_t)f.state;
		rc->dest = (uint16_t)f.dest;
		rc->attempts = (uint16_t)f.attempts;
		rc->last_code = (uint16_t)f.code;
		rc->addr = copy_str(&strs, a, alen);
		rc->last_reply = copy_str(&strs, b, blen);
	}
	get_uint(&r, 4, &ndest);
	for (uint32_t i = 0; i < e->ndest; i++) {
		int d_ok = get_dest(&r, &due, &att, &a, &alen);

		QUEUE_BUG_ON(d_ok < 0);
		e->dests[i].due = due;
		e->dests[i].attempts = (uint32_t)att;
		e->dests[i].name = copy_str(&strs, a, alen);
	}
}

/* queue_env_decode: see queue.h. On error *out is NULL. */
int queue_env_decode(const uint8_t *buf, size_t len, struct queue_env **out)
{
	struct rcur r = {buf, len};
	struct queue_env h = {0};
	const uint8_t *snd;
	size_t sndlen, strbytes, rcptbytes, destbytes;
	uint64_t version;
	char *strs;

	*out = NULL;
	if (!buf || get_uint(&r, 1, &version) < 0)
		return -EBADMSG;
	if (version != ENV_VERSION)
		return -EPROTO;
	if (get_header(&r, &h, &snd, &sndlen) < 0 || env_measure(r, &h, &strbytes) < 0)
		return -EBADMSG;
	rcptbytes = (size_t)h.nrcpt * sizeof(struct queue_rcpt);
	destbytes = (size_t)h.ndest * sizeof(struct queue_dest);
	*out = malloc(sizeof(h) + rcptbytes + destbytes + sndlen + 1 + strbytes);
	if (!*out)
		return -ENOMEM;
	**out = h;
	(*out)->rcpts = h.nrcpt ? (struct queue_rcpt *)(*out + 1) : NULL;
	(*out)->dests = h.ndest ? (struct queue_dest *)((char *)(*out + 1) + rcptbytes) : NULL;
	strs = (char *)(*out + 1) + rcptbytes + destbytes;
	(*out)->sender = copy_str(&strs, snd, sndlen);
	env_fill(r, *out, strs);
	return 0;
}

/* queue_env_free: free an envelope from queue_env_decode (one allocation). NULL is fine. */
void queue_env_free(struct queue_env *e)
{
	free(e);
}
