/* mime_types — what the mime_*.c files share: the parsed view of one entity, the output buffer
 * and the parsing/encoding helpers.
 *
 * Why: parsing (mime_parse.c), encoding (mime_enc.c) and the converter/walker (mime_conv.c)
 * are separate concerns; the converter and the walker must read a message the same way, so
 * both use the one parser declared here. Nothing outside engine/mime/ includes this header.
 */
#ifndef RIPTIDE_MIME_TYPES_H
#define RIPTIDE_MIME_TYPES_H

#include "engine/mime/mime.h"

#include <stdbool.h>
#include <stddef.h>

#define MIME_BOUNDARY_MAX 200 /* RFC 2046 says 70; be lenient with what generators produce */
#define MIME_QP_COLS	  76
#define MIME_B64_COLS	  76

/* What an entity is, for the converter. */
enum mime_kind {
	MIME_K_TEXT = 0,  /* text/<any>, or the text/plain default: quoted-printable */
	MIME_K_OTHER,	  /* any other leaf type: base64 */
	MIME_K_MULTIPART, /* multipart/<any> with a usable boundary and an identity encoding */
	MIME_K_RFC822,	  /* message/rfc822 with an identity encoding */
	MIME_K_NOENC, /* must not be re-encoded: multipart/<any> without boundary, message/partial,
			 message/external-body, multipart or rfc822 with a real encoding */
};

/* One entity [p, end): header fields [p, hend), then the separator (if sep) and the body
 * [bs, end). Without a blank line the body starts at the first line that is not a field. */
struct mime_ent {
	const char *p, *end, *hend, *bs;
	bool sep, has_ctype, has_mimever, digest;
	enum mime_kind kind;
	enum mime_cte cte;
	char dash[MIME_BOUNDARY_MAX + 3]; /* "--" boundary, for multipart */
	size_t dash_len;
};

/* One header field [p, end) (with its continuation lines and line break); value [v, end). */
struct mime_field {
	const char *p, *v, *end;
};

/* A growing output buffer; oom is set (and nothing more is written) when realloc fails. */
struct mime_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

/* mime_parse.c */
const char *mime_line_next(const char *p, const char *end);
bool mime_clean(const char *p, const char *end);
bool mime_field_next(const char **q, const char *end, struct mime_field *f);
bool mime_field_is(const struct mime_field *f, const char *name);
void mime_ent_parse(struct mime_ent *e, const char *p, const char *end, enum mime_kind dflt);
const char *mime_delim_find(const struct mime_ent *e, const char *from, bool *close,
			    const char **after);
const char *mime_part_end(const char *ps, const char *d);

/* mime_enc.c */
void mime_buf_put(struct mime_buf *b, const char *p, size_t n);
void mime_buf_puts(struct mime_buf *b, const char *s);
void mime_qp(struct mime_buf *b, const char *p, size_t n);
void mime_b64(struct mime_buf *b, const char *p, size_t n);
bool mime_b64_plain(const char *p, size_t n);
void mime_b64_rewrap(struct mime_buf *b, const char *p, size_t n);

#endif
