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
 * Layout, version 3 (all integers big-endian):
 *   u8 version=3 | u64 created_ms | u64 body_len | u32 flags | str sender | str envid | u8 ret |
 *   u32 nrcpt | nrcpt x { u8 state | u16 dest | u16 attempts | u16 last_code | u8 notify |
 *                         u8 enh[3] | u64 last_ms | str addr | str last_reply | str orcpt |
 *                         str last_mta } |
 *   u32 ndest | ndest x { u64 due | u32 attempts | str name }
 *   where str = u32 length + bytes (no NUL). Every recipient's dest is < ndest. Version 2 (the
 *   same without envid, ret, notify, enh, last_ms, orcpt and last_mta) is still read; version 1
 *   (one sched entry per message, before destination groups) is not.
 */
#include <errno.h>
#include <string.h>

#include "queue/queue.h"
#include "queue/queue_types.h"

#define ENV_VERSION	3
#define ENV_V2		2
#define ENV_FIXED_LEN	(1 + 8 + 8 + 4 + 4 + 4 + 1 + 4 + 4) /* + sender, envid; ret, counts */
#define RCPT_MIN_LEN	(1 + 2 + 2 + 2 + 1 + 3 + 8 + 4 * 4) /* a recipient, empty strings */
#define RCPT_MIN_LEN_V2 (1 + 2 + 2 + 2 + 4 + 4)
#define DEST_MIN_LEN	(8 + 4 + 4) /* a destination with an empty name */

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

/* queue_env_encoded_len: exact size of the encoding of e. */
size_t queue_env_encoded_len(const struct queue_env *e)
{
	size_t n = ENV_FIXED_LEN + slen(e->sender) + slen(e->envid);

	for (uint32_t i = 0; i < e->nrcpt; i++)
		n += RCPT_MIN_LEN + slen(e->rcpts[i].addr) + slen(e->rcpts[i].last_reply) +
		     slen(e->rcpts[i].orcpt) + slen(e->rcpts[i].last_mta);
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

static void put_rcpt(struct wcur *w, const struct queue_rcpt *r)
{
	put_u8(w, r->state);
	put_u16(w, r->dest);
	put_u16(w, r->attempts);
	put_u16(w, r->last_code);
	put_u8(w, r->notify);
	for (int k = 0; k < 3; k++)
		put_u8(w, r->enh[k]);
	put_u64(w, r->last_ms);
	put_str(w, r->addr);
	put_str(w, r->last_reply);
	put_str(w, r->orcpt);
	put_str(w, r->last_mta);
}

/* Every string must fit its u32 length prefix and every recipient's group must exist.
 * Returns 0 or -EINVAL. */
static int env_check(const struct queue_env *e)
{
	if (slen(e->sender) > UINT32_MAX || slen(e->envid) > UINT32_MAX ||
	    e->ndest > QUEUE_MAX_DESTS)
		return -EINVAL;
	for (uint32_t i = 0; i < e->nrcpt; i++) {
		const struct queue_rcpt *r = &e->rcpts[i];
		if (slen(r->addr) > UINT32_MAX || slen(r->last_reply) > UINT32_MAX ||
		    slen(r->orcpt) > UINT32_MAX || slen(r->last_mta) > UINT32_MAX ||
		    r->dest >= e->ndest)
			return -EINVAL;
	}
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
	put_str(&w, e->envid);
	put_u8(&w, e->ret);
	put_u32(&w, e->nrcpt);
	for (uint32_t i = 0; i < e->nrcpt; i++)
		put_rcpt(&w, &e->rcpts[i]);
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
	unsigned version; /* ENV_VERSION or ENV_V2 */
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

/* A string slice pointing into the input. */
struct slice {
	const uint8_t *s;
	size_t len;
};

/* A length-prefixed string without NUL bytes. */
static int get_str(struct rcur *r, struct slice *out)
{
	uint64_t n;

	if (get_uint(r, 4, &n) < 0 || get_bytes(r, (size_t)n, &out->s) < 0)
		return -EBADMSG;
	if (n && memchr(out->s, '\0', (size_t)n))
		return -EBADMSG;
	out->len = (size_t)n;
	return 0;
}

/* Decoded fields of one recipient: integers, then addr, last_reply, orcpt, last_mta. */
struct rcpt_fix {
	uint64_t state, dest, attempts, code, notify, enh[3], last_ms;
	struct slice str[4];
};

/* The fields version 3 added to a recipient (version 2: all zero / empty). */
static int get_rcpt_v3(struct rcur *r, struct rcpt_fix *f)
{
	if (r->version == ENV_V2)
		return 0;
	if (get_uint(r, 1, &f->notify) < 0 || get_uint(r, 1, &f->enh[0]) < 0 ||
	    get_uint(r, 1, &f->enh[1]) < 0 || get_uint(r, 1, &f->enh[2]) < 0 ||
	    get_uint(r, 8, &f->last_ms) < 0)
		return -EBADMSG;
	return 0;
}

/* Parse one recipient into f (strings point into the input). */
static int get_rcpt(struct rcur *r, struct rcpt_fix *f)
{
	memset(f, 0, sizeof(*f));
	if (get_uint(r, 1, &f->state) < 0 || get_uint(r, 2, &f->dest) < 0 ||
	    get_uint(r, 2, &f->attempts) < 0 || get_uint(r, 2, &f->code) < 0 ||
	    get_rcpt_v3(r, f) < 0)
		return -EBADMSG;
	if (f->state > QUEUE_RCPT_FAILED)
		return -EBADMSG;
	for (int k = 0; k < (r->version == ENV_V2 ? 2 : 4); k++)
		if (get_str(r, &f->str[k]) < 0)
			return -EBADMSG;
	return 0;
}

/* Fixed header of the envelope (after the version byte). */
static int get_header(struct rcur *r, struct queue_env *h, struct slice *snd, struct slice *envid)
{
	uint64_t flags, nrcpt, ret = 0;

	if (get_uint(r, 8, &h->created_ms) < 0 || get_uint(r, 8, &h->body_len) < 0 ||
	    get_uint(r, 4, &flags) < 0 || get_str(r, snd) < 0)
		return -EBADMSG;
	*envid = (struct slice){NULL, 0};
	if (r->version != ENV_V2 && (get_str(r, envid) < 0 || get_uint(r, 1, &ret) < 0))
		return -EBADMSG;
	if (ret > QUEUE_RET_HDRS || get_uint(r, 4, &nrcpt) < 0)
		return -EBADMSG;
	/* each recipient takes at least RCPT_MIN_LEN bytes: bounds the allocation below */
	if (nrcpt > r->left / (r->version == ENV_V2 ? RCPT_MIN_LEN_V2 : RCPT_MIN_LEN))
		return -EBADMSG;
	h->flags = (uint32_t)flags;
	h->ret = (uint8_t)ret;
	h->nrcpt = (uint32_t)nrcpt;
	return 0;
}

/* Parse one destination group (name points into the input). */
static int get_dest(struct rcur *r, uint64_t *due, uint64_t *attempts, struct slice *name)
{
	if (get_uint(r, 8, due) < 0 || get_uint(r, 4, attempts) < 0 || get_str(r, name) < 0)
		return -EBADMSG;
	return 0;
}

/* Pass 1: validate everything, read the group count into h->ndest and add up the string
 * bytes (with NULs) the copy needs: 4 strings per recipient (version 2 ones have two empty). */
static int env_measure(struct rcur r, struct queue_env *h, size_t *strbytes)
{
	struct rcpt_fix f;
	struct slice nm;
	size_t total = 0;
	uint64_t maxdest = 0, ndest, due, att;

	for (uint32_t i = 0; i < h->nrcpt; i++) {
		if (get_rcpt(&r, &f) < 0)
			return -EBADMSG;
		total += f.str[0].len + f.str[1].len + f.str[2].len + f.str[3].len + 4;
		maxdest = f.dest > maxdest ? f.dest : maxdest;
	}
	if (get_uint(&r, 4, &ndest) < 0 || ndest > QUEUE_MAX_DESTS ||
	    ndest > r.left / DEST_MIN_LEN || (h->nrcpt && maxdest >= ndest))
		return -EBADMSG;
	for (uint64_t i = 0; i < ndest; i++) {
		if (get_dest(&r, &due, &att, &nm) < 0)
			return -EBADMSG;
		total += nm.len + 1;
	}
	if (r.left != 0)
		return -EBADMSG; /* trailing bytes */
	h->ndest = (uint32_t)ndest;
	*strbytes = total;
	return 0;
}

/* Copy a slice + NUL to *dst, return the copy, advance *dst. */
static char *copy_str(char **dst, struct slice s)
{
	char *out = *dst;

	if (s.len)
		memcpy(out, s.s, s.len);
	out[s.len] = '\0';
	*dst += s.len + 1;
	return out;
}

/* One recipient from its validated fields. */
static void env_fill_rcpt(struct queue_rcpt *rc, const struct rcpt_fix *f, char **strs)
{
	rc->state = (uint8_t)f->state;
	rc->dest = (uint16_t)f->dest;
	rc->attempts = (uint16_t)f->attempts;
	rc->last_code = (uint16_t)f->code;
	rc->notify = (uint8_t)f->notify;
	for (int k = 0; k < 3; k++)
		rc->enh[k] = (uint8_t)f->enh[k];
	rc->last_ms = f->last_ms;
	rc->addr = copy_str(strs, f->str[0]);
	rc->last_reply = copy_str(strs, f->str[1]);
	rc->orcpt = copy_str(strs, f->str[2]);
	rc->last_mta = copy_str(strs, f->str[3]);
}

/* Pass 2: fill e->rcpts and e->dests from input already validated by env_measure. */
static void env_fill(struct rcur r, struct queue_env *e, char *strs)
{
	struct rcpt_fix f;
	struct slice nm;
	uint64_t ndest, due, att;

	for (uint32_t i = 0; i < e->nrcpt; i++) {
		int rc_ok = get_rcpt(&r, &f);

		QUEUE_BUG_ON(rc_ok < 0);
		env_fill_rcpt(&e->rcpts[i], &f, &strs);
	}
	get_uint(&r, 4, &ndest);
	for (uint32_t i = 0; i < e->ndest; i++) {
		int d_ok = get_dest(&r, &due, &att, &nm);

		QUEUE_BUG_ON(d_ok < 0);
		e->dests[i].due = due;
		e->dests[i].attempts = (uint32_t)att;
		e->dests[i].name = copy_str(&strs, nm);
	}
}

/* queue_env_decode: see queue.h. On error *out is NULL. */
int queue_env_decode(const uint8_t *buf, size_t len, struct queue_env **out)
{
	struct rcur r = {buf, len, 0};
	struct queue_env h = {0};
	struct slice snd, envid;
	size_t strbytes, rcptbytes, destbytes;
	uint64_t version;
	char *strs;

	*out = NULL;
	if (!buf || get_uint(&r, 1, &version) < 0)
		return -EBADMSG;
	if (version != ENV_VERSION && version != ENV_V2)
		return -EPROTO;
	r.version = (unsigned)version;
	if (get_header(&r, &h, &snd, &envid) < 0 || env_measure(r, &h, &strbytes) < 0)
		return -EBADMSG;
	rcptbytes = (size_t)h.nrcpt * sizeof(struct queue_rcpt);
	destbytes = (size_t)h.ndest * sizeof(struct queue_dest);
	*out = malloc(sizeof(h) + rcptbytes + destbytes + snd.len + envid.len + 2 + strbytes);
	if (!*out)
		return -ENOMEM;
	**out = h;
	(*out)->rcpts = h.nrcpt ? (struct queue_rcpt *)(*out + 1) : NULL;
	(*out)->dests = h.ndest ? (struct queue_dest *)((char *)(*out + 1) + rcptbytes) : NULL;
	strs = (char *)(*out + 1) + rcptbytes + destbytes;
	(*out)->sender = copy_str(&strs, snd);
	(*out)->envid = copy_str(&strs, envid);
	env_fill(r, *out, strs);
	return 0;
}

/* queue_env_free: free an envelope from queue_env_decode (one allocation). NULL is fine. */
void queue_env_free(struct queue_env *e)
{
	free(e);
}
