/* mime_conv — the 8-bit to 7-bit converter (mime_to_7bit) and the structure walker (mime_walk);
 * the rules are in mime.h.
 *
 * Why this shape: one recursive descent over entities, shared by both: an entity is either
 * copied as it is (already clean 7-bit), split into parts (multipart/<any>), unwrapped (message/
 * rfc822) or encoded (a leaf). mime_multipart() is the single place a multipart body is cut
 * into gaps (preamble, delimiter lines, epilogue: copied) and parts (recursed into), so the
 * converter and the walker cannot disagree about where a part starts and ends. Recursion is
 * bounded by MIME_DEPTH_MAX.
 */
#include "engine/mime/mime_types.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* What to do with the gaps and parts of one multipart body. */
struct mime_mp_ops {
	int (*gap)(void *ctx, const char *p, const char *end);
	int (*part)(void *ctx, const char *p, const char *end, enum mime_kind dflt, unsigned depth);
};

/* Cut e's body into gap, part, gap, part, ..., gap. A body without any delimiter line is one
 * gap; a body without a close delimiter ends with a part. */
static int mime_multipart(const struct mime_ent *e, unsigned depth, const struct mime_mp_ops *ops,
			  void *ctx)
{
	enum mime_kind dflt = e->digest ? MIME_K_RFC822 : MIME_K_TEXT;
	const char *d, *after, *ps, *pe;
	bool close;
	int ret;

	d = mime_delim_find(e, e->bs, &close, &after);
	if (!d)
		return ops->gap(ctx, e->bs, e->end);
	ret = ops->gap(ctx, e->bs, after);
	while (!ret && !close) {
		ps = after;
		d = mime_delim_find(e, ps, &close, &after);
		if (!d)
			return ops->part(ctx, ps, e->end, dflt, depth + 1);
		pe = mime_part_end(ps, d);
		ret = ops->part(ctx, ps, pe, dflt, depth + 1);
		if (!ret)
			ret = ops->gap(ctx, pe, after);
	}
	return ret ? ret : ops->gap(ctx, after, e->end);
}

/* ---- the converter ---- */

static int mime_conv_entity(struct mime_buf *o, const char *p, const char *end, enum mime_kind dflt,
			    unsigned depth, bool msg);

/* Write e's header section, changed as asked: Content-Transfer-Encoding fields replaced by one
 * with value cte (if cte), a text/plain; charset=unknown-8bit Content-Type added (if ctype),
 * MIME-Version added to a message that lacks one (if msg). Unchanged: copied as it is. A header
 * section that ended at a line that is not a field (no blank line) gets its blank line, so
 * whatever the converted body starts with cannot be read as more header fields. */
static void mime_conv_head(struct mime_buf *o, const struct mime_ent *e, const char *cte,
			   bool ctype, bool msg)
{
	bool mv = msg && !e->has_mimever;
	struct mime_field f;
	const char *q = e->p;

	if (!cte && !ctype && !mv && e->sep) {
		mime_buf_put(o, e->p, (size_t)(e->bs - e->p));
		return;
	}
	while (mime_field_next(&q, e->hend, &f)) {
		if (cte && mime_field_is(&f, "content-transfer-encoding"))
			continue;
		mime_buf_put(o, f.p, (size_t)(f.end - f.p));
		if (f.end[-1] != '\n')
			mime_buf_puts(o, "\r\n");
	}
	if (mv)
		mime_buf_puts(o, "MIME-Version: 1.0\r\n");
	if (ctype)
		mime_buf_puts(o, "Content-Type: text/plain; charset=unknown-8bit\r\n");
	if (cte) {
		mime_buf_puts(o, "Content-Transfer-Encoding: ");
		mime_buf_puts(o, cte);
		mime_buf_puts(o, "\r\n");
	}
	mime_buf_puts(o, "\r\n");
}

/* A leaf that is not clean 7-bit (its header section is). */
static int mime_conv_leaf(struct mime_buf *o, const struct mime_ent *e, bool msg)
{
	size_t n = (size_t)(e->end - e->bs);
	bool text = e->kind == MIME_K_TEXT;

	switch (e->cte) {
	case MIME_CTE_NONE:
	case MIME_CTE_7BIT:
	case MIME_CTE_8BIT:
	case MIME_CTE_BINARY:
		mime_conv_head(o, e, text ? "quoted-printable" : "base64", !e->has_ctype, msg);
		if (text)
			mime_qp(o, e->bs, n);
		else
			mime_b64(o, e->bs, n);
		return 0;
	case MIME_CTE_BASE64:
		if (!mime_b64_plain(e->bs, n))
			return -EBADMSG;
		mime_conv_head(o, e, NULL, false, msg);
		mime_b64_rewrap(o, e->bs, n);
		return 0;
	default:
		return -EBADMSG; /* quoted-printable or unknown, and not clean: nothing to do */
	}
}

static int mime_conv_gap(void *ctx, const char *p, const char *end)
{
	if (!mime_clean(p, end))
		return -EBADMSG;
	mime_buf_put(ctx, p, (size_t)(end - p));
	return 0;
}

static int mime_conv_part(void *ctx, const char *p, const char *end, enum mime_kind dflt,
			  unsigned depth)
{
	return mime_conv_entity(ctx, p, end, dflt, depth, false);
}

static const struct mime_mp_ops mime_conv_ops = {mime_conv_gap, mime_conv_part};

/* 8bit/binary on a multipart or message/rfc822 whose content becomes 7-bit: say 7bit. */
static const char *mime_ident_cte(enum mime_cte cte)
{
	return cte == MIME_CTE_8BIT || cte == MIME_CTE_BINARY ? "7bit" : NULL;
}

/* Convert the entity [p, end) into o. msg: it is a message (top level or message/rfc822
 * content), which gets MIME-Version if converted. 0 or -EBADMSG. */
static int mime_conv_entity(struct mime_buf *o, const char *p, const char *end, enum mime_kind dflt,
			    unsigned depth, bool msg)
{
	struct mime_ent e;

	if (mime_clean(p, end)) {
		mime_buf_put(o, p, (size_t)(end - p));
		return 0;
	}
	if (depth >= MIME_DEPTH_MAX)
		return -EBADMSG;
	mime_ent_parse(&e, p, end, dflt);
	if (!mime_clean(p, e.bs))
		return -EBADMSG; /* 8-bit (or broken) header section: not expressible */
	switch (e.kind) {
	case MIME_K_MULTIPART:
		mime_conv_head(o, &e, mime_ident_cte(e.cte), false, msg);
		return mime_multipart(&e, depth, &mime_conv_ops, o);
	case MIME_K_RFC822:
		mime_conv_head(o, &e, mime_ident_cte(e.cte), false, msg);
		return mime_conv_entity(o, e.bs, end, MIME_K_TEXT, depth + 1, true);
	case MIME_K_NOENC:
		return -EBADMSG;
	default:
		return mime_conv_leaf(o, &e, msg);
	}
}

/* mime_has_8bit: see mime.h. */
bool mime_has_8bit(const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0;

	for (; i + 64 <= len; i += 64) {
		uint64_t acc = 0, w;

		for (unsigned k = 0; k < 8; k++) {
			memcpy(&w, u + i + 8 * k, 8);
			acc |= w;
		}
		if (acc & 0x8080808080808080ull)
			return true;
	}
	for (; i < len; i++)
		if (u[i] & 0x80)
			return true;
	return false;
}

/* mime_to_7bit: see mime.h. */
int mime_to_7bit(const char *msg, size_t len, char **out, size_t *out_len)
{
	struct mime_buf o = {0};
	int ret;

	*out = NULL;
	*out_len = 0;
	if (!mime_has_8bit(msg, len))
		return 1;
	ret = mime_conv_entity(&o, msg, msg + len, MIME_K_TEXT, 0, true);
	if (!ret && o.oom)
		ret = -ENOMEM;
	if (ret < 0) {
		free(o.p);
		return ret;
	}
	/* the encoders reserve their worst case (4x for quoted-printable): give the rest back, so
	 * a session holds what it sends, not four times a large body */
	*out = o.len + 1 < o.cap ? realloc(o.p, o.len + 1) : o.p;
	if (!*out)
		*out = o.p;
	*out_len = o.len;
	return 0;
}

/* ---- the walker ---- */

struct mime_walker {
	int (*fn)(const struct mime_leaf *leaf, void *arg);
	void *arg;
};

static int mime_walk_entity(void *ctx, const char *p, const char *end, enum mime_kind dflt,
			    unsigned depth);

static int mime_walk_gap(void *ctx, const char *p, const char *end)
{
	(void)ctx, (void)p, (void)end;
	return 0;
}

static const struct mime_mp_ops mime_walk_ops = {mime_walk_gap, mime_walk_entity};

static int mime_walk_entity(void *ctx, const char *p, const char *end, enum mime_kind dflt,
			    unsigned depth)
{
	const struct mime_walker *w = ctx;
	struct mime_leaf l = {.body = p, .len = (size_t)(end - p), .depth = depth};
	struct mime_ent e;

	if (depth >= MIME_DEPTH_MAX)
		return w->fn(&l, w->arg);
	mime_ent_parse(&e, p, end, dflt);
	if (e.kind == MIME_K_MULTIPART)
		return mime_multipart(&e, depth, &mime_walk_ops, ctx);
	if (e.kind == MIME_K_RFC822)
		return mime_walk_entity(ctx, e.bs, end, MIME_K_TEXT, depth + 1);
	l.body = e.bs;
	l.len = (size_t)(end - e.bs);
	l.cte = e.cte;
	l.text = e.kind == MIME_K_TEXT;
	return w->fn(&l, w->arg);
}

/* mime_walk: see mime.h. */
int mime_walk(const char *msg, size_t len, int (*fn)(const struct mime_leaf *leaf, void *arg),
	      void *arg)
{
	struct mime_walker w = {fn, arg};

	return mime_walk_entity(&w, msg, msg + len, MIME_K_TEXT, 0);
}
