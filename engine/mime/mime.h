/* mime — 8BITMIME downgrade (RFC 6152): turn a message with 8-bit content into an equivalent
 * 7-bit one for a next hop that does not offer 8BITMIME, as Postfix does.
 *
 * Why: RFC 6152 forbids sending 8-bit data to a server that did not announce 8BITMIME, and
 * bouncing every such message is not what an operator wants: MIME (RFC 2045/2046) lets a
 * relay re-encode the 8-bit parts with quoted-printable or base64 without changing what the
 * recipient decodes. Only what MIME cannot express is refused (8-bit bytes in header fields).
 * Pure logic on one buffer: no I/O, no engine/ dependency (the fuzz harness links only this
 * module's .c files), allocation failures are reported, never aborted on.
 *
 * What mime_to_7bit does, entity by entity (the message itself, each body part of a
 * multipart/<any>, the message inside each message/rfc822 part, recursively, at most
 * MIME_DEPTH_MAX deep):
 *   - an entity that is already "clean 7-bit" (no byte >= 0x80, no NUL, CR and LF only as CRLF,
 *     lines <= 998 octets) is copied byte for byte;
 *   - its header section must be clean 7-bit, otherwise the message cannot be converted;
 *   - multipart/<any> (with a boundary): the preamble, the delimiter lines and the epilogue are
 *     copied (they must be clean 7-bit), each part is converted; a Content-Transfer-Encoding of
 *     8bit/binary becomes 7bit;
 *   - message/rfc822: the embedded message is converted (its 8-bit headers make it
 *     unconvertible); 8bit/binary becomes 7bit;
 *   - any other part with Content-Transfer-Encoding 7bit, 8bit, binary or none: the body is
 *     encoded, quoted-printable for text/<any> (lines <= 76, soft breaks, a '-' starting a line
 *     written =2D so no line can look like a boundary), base64 for every other type (lines of
 *     76); the old Content-Transfer-Encoding field(s) are removed and the new one appended to
 *     the part's header; a part without Content-Type also gets
 *     "Content-Type: text/plain; charset=unknown-8bit" (RFC 1428), since us-ascii, the default,
 *     would be wrong for its 8-bit text;
 *   - a base64 part that is 7-bit but has long lines or bare CR/LF is re-wrapped at 76
 *     (decoders ignore line breaks); any other encoded part (quoted-printable, x-token) that is
 *     not clean, multipart/<any> without a boundary, message/partial and message/external-body that
 *     are not clean, and nesting deeper than MIME_DEPTH_MAX make the message unconvertible;
 *   - a message (top level or embedded) that is converted and has no MIME-Version gets
 *     "MIME-Version: 1.0". Its Content-Type, if any, is honoured as receivers will honour it
 *     once MIME-Version is present; so a plain non-MIME message with an 8-bit body becomes
 *     text/plain; charset=unknown-8bit, quoted-printable.
 * Lines end at LF (a CR before it belongs to the line break); the last line of the input may
 * lack one. The output has only bytes 1..127, CR and LF only as CRLF, lines <= 998 octets; its
 * last line lacks a CRLF only when the input's did.
 */
#ifndef RIPTIDE_MIME_H
#define RIPTIDE_MIME_H

#include <stdbool.h>
#include <stddef.h>

#define MIME_DEPTH_MAX 32  /* entities nested deeper than this are not parsed */
#define MIME_LINE_MAX  998 /* RFC 5321 4.5.3.1.6, without the CRLF */

/* mime_has_8bit: true if p[0..len) holds a byte >= 0x80. Word-at-a-time: cheap on MB bodies. */
bool mime_has_8bit(const char *p, size_t len);

/* mime_to_7bit: convert msg[0..len) (a whole message: header section, blank line, body) to a
 * 7-bit one as described above. Returns
 *   0        converted: *out is a malloc'ed buffer of *out_len bytes, the caller frees it;
 *   1        msg has no byte >= 0x80: nothing to do (*out set to NULL, *out_len to 0);
 *   -EBADMSG the message cannot be converted without changing it (8-bit bytes in a header
 *            section, an encoded part that is not 7-bit, too deep, ...); *out is NULL;
 *   -ENOMEM  out of memory; *out is NULL.
 * msg is only read. */
int mime_to_7bit(const char *msg, size_t len, char **out, size_t *out_len);

/* Content-Transfer-Encoding of an entity. */
enum mime_cte {
	MIME_CTE_NONE = 0, /* no Content-Transfer-Encoding field */
	MIME_CTE_7BIT,
	MIME_CTE_8BIT,
	MIME_CTE_BINARY,
	MIME_CTE_QP,
	MIME_CTE_BASE64,
	MIME_CTE_OTHER, /* anything else (x-uuencode, garbage) */
};

/* One leaf entity (not multipart/<any>, not message/rfc822) as mime_walk reports it. */
struct mime_leaf {
	const char *body; /* the body as it is in the message (encoded, if cte says so) */
	size_t len;
	enum mime_cte cte; /* the first Content-Transfer-Encoding field's value */
	bool text;	/* text/<any>, or no usable Content-Type where the default is text/plain */
	unsigned depth; /* 0 for the message itself */
};

/* mime_walk: call fn for every leaf of msg[0..len), in order, parsing the structure exactly as
 * mime_to_7bit does (an entity at depth MIME_DEPTH_MAX is reported whole, as a leaf with cte
 * NONE). For tests and the fuzz harness: walking a message and its conversion gives the same
 * leaves, each converted one decoding to the original body. fn returns 0 to go on; a non-zero
 * value stops the walk and is returned. Returns 0 when every leaf was visited. */
int mime_walk(const char *msg, size_t len, int (*fn)(const struct mime_leaf *leaf, void *arg),
	      void *arg);

#endif
