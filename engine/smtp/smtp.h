/* smtp — pure SMTP protocol parsing and encoding: commands, replies, EHLO keywords, dot-stuffing
 * and the DATA terminator scanner, header work at injection. No I/O, no allocation (except the
 * result of smtp_hdr_rewrite): every function works on caller buffers.
 *
 * Why: the injection server, riptide-sink (server side), the outbound client and riptide-blast
 * (client side) all speak the same wire format; they share this one tested implementation.
 * Reference: RFC 5321 (SMTP), RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 2034/3463 (enhanced codes),
 * RFC 2920 (PIPELINING), RFC 4954 (AUTH) and RFC 4648 (its base64).
 */
#ifndef RIPTIDE_SMTP_H
#define RIPTIDE_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- commands (server side) ---- */

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_EXPN, /* EXPN, HELP, ETRN, TURN: recognised, not implemented (502 5.5.1) */
	SMTP_VERB_HELP,
	SMTP_VERB_ETRN,
	SMTP_VERB_TURN,
};

/* SASL mechanisms of AUTH (RFC 4954) the parser names; any other is SMTP_AUTH_OTHER. */
enum smtp_auth_mech {
	SMTP_AUTH_OTHER = 0,
	SMTP_AUTH_PLAIN, /* RFC 4616 */
	SMTP_AUTH_LOGIN, /* draft-murchison-sasl-login */
};

#define SMTP_AUTH_MECH_MAX 20 /* sasl-mech: 1..20 of A-Z, 0-9, '-', '_' (RFC 4422 3.1) */

/* A parsed command line. All pointers point into the caller's line buffer (not NUL-terminated).
 * For MAIL/RCPT: `addr` is the path without angle brackets ("" for the null sender <>),
 * `params` the ESMTP parameters after the path (may be empty). For HELO/EHLO: `arg` is the
 * domain. For AUTH: `arg` is the whole argument, the mechanism name is arg[0..mech_len) (`mech`
 * names it, any case), and `resp` the initial response as sent (base64, not decoded) when
 * has_resp: "=" is an empty initial response (resp_len 0). For the others `arg` is whatever
 * follows the verb. */
struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg;
	size_t arg_len;
	const char *addr;
	size_t addr_len;
	const char *params;
	size_t params_len;
	enum smtp_auth_mech mech;
	size_t mech_len;
	const char *resp;
	size_t resp_len;
	bool has_resp;
};

/* smtp_cmd_parse: parse one command line of `len` bytes (CRLF already stripped; the line may
 * hold any byte, NUL included: it is length-delimited). Verbs are case-insensitive. Returns:
 *   0        ok (verb may be SMTP_VERB_UNKNOWN for an unrecognised verb -> 500 5.5.1)
 *   -EINVAL  syntax error in the arguments (missing "FROM:"/"TO:", missing argument -> 501 5.5.4;
 *            a HELO/EHLO argument holding a control byte other than HT, or a HELO/EHLO domain
 *            that is not well-formed UTF-8; an AUTH mechanism name that is not 1..20 of
 *            A-Z a-z 0-9 '-' '_', or more than one word after it)
 *   -EBADMSG syntax error in the address (unbalanced <>, spaces, bad characters -> 501 5.1.3;
 *            any control byte 0..31 or 127 in the path, escaped in a quoted string or not, a
 *            '\\' in a quoted string before anything but a byte 32..126, 8-bit bytes that are
 *            not well-formed UTF-8; for RCPT also an empty path or one without '@' other than
 *            <postmaster>)
 * So a parsed addr never holds a control byte and is ASCII or well-formed UTF-8.
 */
int smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out);

/* One ESMTP parameter "KEY=VALUE" or "KEY" (value_len 0). */
struct smtp_param {
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
};

/* smtp_param_next: iterate the space-separated parameters in *p / *len (advanced past the one
 * returned). Returns 1 and fills out, 0 when none is left, -EINVAL on a malformed one. */
int smtp_param_next(const char **p, size_t *len, struct smtp_param *out);

/* smtp_param_is: case-insensitive key comparison helper. */
bool smtp_param_is(const struct smtp_param *prm, const char *key);

/* ---- DSN extension parameters (RFC 3461) ---- */

/* NOTIFY= values: a bit set; 0 means NOTIFY was not given. NEVER is never combined. */
#define SMTP_NOTIFY_SUCCESS 1
#define SMTP_NOTIFY_FAILURE 2
#define SMTP_NOTIFY_DELAY   4
#define SMTP_NOTIFY_NEVER   8

/* RET= values. */
#define SMTP_RET_NONE 0
#define SMTP_RET_FULL 1
#define SMTP_RET_HDRS 2

#define SMTP_ENVID_MAX	  100 /* ENVID bytes after xtext decoding (RFC 3461 4.4) */
#define SMTP_ORCPT_MAX	  500 /* ORCPT address bytes after decoding (RFC 3461 4.2) */
#define SMTP_ADDRTYPE_MAX 64  /* ORCPT addr-type bytes (our limit; registered types are short) */
#define SMTP_NOTIFY_TEXT  24  /* room for "SUCCESS,FAILURE,DELAY" and its NUL */
/* Room for a decoded ORCPT "addr-type;address" and its NUL. */
#define SMTP_ORCPT_BUF (SMTP_ADDRTYPE_MAX + 1 + SMTP_ORCPT_MAX + 1)

/* smtp_xtext_decode: decode the n bytes of xtext at in (RFC 3461 4: bytes 33..126 except '+'
 * and '=' stand for themselves, "+XX" -- two hex digits, upper case as the RFC writes them,
 * lower case tolerated -- for the byte XX) into out (cap bytes, NUL-terminated). A decoded
 * byte must be printable US-ASCII, space included (32..126: "graphic and white space", RFC
 * 3461 4.2/4.4); so decoded text never holds a control byte or an 8-bit byte. Returns the
 * decoded length, -EINVAL (a byte outside 33..126, '=', a '+' without two hex digits, a
 * decoded byte outside 32..126) or -ENOSPC (cap too small; cap >= n + 1 always suffices). */
ssize_t smtp_xtext_decode(const char *in, size_t n, char *out, size_t cap);

/* smtp_xtext_encode: encode n bytes (any value) as xtext into out (cap bytes, NUL-terminated):
 * bytes 33..126 other than '+' and '=' as they are, every other byte as "+XX" (upper-case hex).
 * The result is the canonical form: encode(decode(x)) == x for any x that encode produced.
 * Returns the encoded length or -ENOSPC (cap >= 3 * n + 1 always suffices). */
ssize_t smtp_xtext_encode(const char *in, size_t n, char *out, size_t cap);

/* smtp_dsn_ret_parse: a RET= value "FULL" or "HDRS" (any case): SMTP_RET_FULL / SMTP_RET_HDRS,
 * or -EINVAL. */
int smtp_dsn_ret_parse(const char *v, size_t n);

/* smtp_dsn_notify_parse: a NOTIFY= value: "NEVER" alone, or a comma list of SUCCESS, FAILURE,
 * DELAY (any case, each at most once, no empty item). Returns the SMTP_NOTIFY_* bits (> 0) or
 * -EINVAL. */
int smtp_dsn_notify_parse(const char *v, size_t n);

/* smtp_dsn_notify_format: the NOTIFY= value for bits notify into out (NUL-terminated; cap >=
 * SMTP_NOTIFY_TEXT, else "" is written): "NEVER" when SMTP_NOTIFY_NEVER is set (whatever else
 * is), else the comma list in the order SUCCESS,FAILURE,DELAY; "" for 0 (bits above 8 are
 * ignored). Returns the length written. */
size_t smtp_dsn_notify_format(unsigned notify, char *out, size_t cap);

/* smtp_dsn_envid_parse: decode an ENVID= value (xtext) into out (cap >= SMTP_ENVID_MAX + 1).
 * Returns the decoded length (> 0), -EINVAL (empty, or not xtext of printable ASCII: see
 * smtp_xtext_decode), -E2BIG (more than SMTP_ENVID_MAX bytes decoded) or -ENOSPC (cap). */
ssize_t smtp_dsn_envid_parse(const char *v, size_t n, char *out, size_t cap);

/* smtp_dsn_orcpt_parse: an ORCPT= value "addr-type;xtext" (addr-type: an atom of RFC 5322
 * atext, at most SMTP_ADDRTYPE_MAX bytes, kept as received) into out (cap >= SMTP_ORCPT_BUF) as
 * "addr-type;<decoded address>". Returns the length written, -EINVAL (no ';', a bad addr-type,
 * an empty address, or an address that is not xtext of printable ASCII), -E2BIG (addr-type
 * too long, or more than SMTP_ORCPT_MAX address bytes decoded) or -ENOSPC (cap). */
ssize_t smtp_dsn_orcpt_parse(const char *v, size_t n, char *out, size_t cap);

/* smtp_dsn_orcpt_format: the ORCPT= value for a decoded "addr-type;address" (as made by
 * smtp_dsn_orcpt_parse): the addr-type as it is, ';', the address xtext-encoded, into out (cap
 * bytes, NUL-terminated; strlen(orcpt) * 3 + 1 always suffices). Returns the length, -EINVAL
 * (orcpt is not an atom of at most SMTP_ADDRTYPE_MAX bytes, ';' and a non-empty address) or
 * -ENOSPC. */
ssize_t smtp_dsn_orcpt_format(const char *orcpt, char *out, size_t cap);

/* ---- base64 (RFC 4648 section 4; AUTH exchanges, RFC 4954) ---- */

/* smtp_b64_decode: decode the n bytes of base64 at in into out (cap bytes; not NUL-terminated).
 * Strict: the standard alphabet only (no blank, no line break), a length that is a multiple of
 * 4, '=' padding only in the last one or two places, and zero bits under the padding, so every
 * input accepted is exactly what smtp_b64_encode makes of its output. n = 0 decodes to nothing.
 * Returns the decoded length, -EINVAL (not such base64) or -ENOSPC (cap < n / 4 * 3 may not
 * suffice: that much always does). */
ssize_t smtp_b64_decode(const char *in, size_t n, char *out, size_t cap);

/* smtp_b64_encode: encode n bytes (any value) as padded base64 into out (cap bytes,
 * NUL-terminated; cap >= (n + 2) / 3 * 4 + 1 always suffices). Returns the encoded length or
 * -ENOSPC (nothing useful written). */
ssize_t smtp_b64_encode(const char *in, size_t n, char *out, size_t cap);

/* Room smtp_b64_encode needs for n input bytes, the terminating NUL included. */
#define SMTP_B64_ENC_LEN(n) (((n) + 2) / 3 * 4 + 1)

/* smtp_is_ascii: true when none of the n bytes at p has its high bit set (n = 0: true). */
bool smtp_is_ascii(const char *p, size_t n);

/* smtp_utf8_valid: true when the n bytes at p are well-formed UTF-8 (RFC 3629): no stray
 * continuation byte, no truncated sequence, no overlong form, no surrogate (U+D800..U+DFFF),
 * nothing above U+10FFFF. ASCII (control bytes included) is valid. */
bool smtp_utf8_valid(const char *p, size_t n);

/* ---- header section ---- */

/* smtp_count_received: the number of "Received:" header fields (field name matched without
 * regard to case, at the start of a line, optional spaces/tabs before the colon) in the header
 * section of a CRLF-normalised message body: from the start up to the first empty line, or to
 * the end of body when there is none. Folded continuation lines and anything after the empty
 * line (the body) are not counted; a body starting with an empty line has no header section (0).
 * Bare LF line ends are tolerated. Pure function, no allocation. */
unsigned smtp_count_received(const char *body, size_t len);

/* What a Received: trace field says (RFC 5321 4.4). Strings are NUL-terminated. */
struct smtp_received {
	const char *helo;     /* the client's HELO/EHLO argument ("" when it gave none) */
	const char *addr_lit; /* the client's address literal ("[192.0.2.1]", "[IPv6:::1]"), or
				 NULL for a local (UNIX socket) client */
	const char *by;	      /* our host name */
	const char *with;     /* protocol: "SMTP", "ESMTP", "UTF8SMTP" (RFC 3848 / 6531) */
	const char *id;	      /* queue id */
	const char *for_rcpt; /* the one recipient, or NULL (several: not named) */
	int64_t when;	      /* seconds since the epoch, formatted as UTC */
};

/* smtp_received_format: write one "Received: ..." header field, folded on three lines, each
 * ending in CRLF, into out (cap bytes, NUL-terminated). Bytes below 0x20 or 0x7f in the strings
 * are written as '?' (defence in depth: a header must not be split by a CR/LF). Returns the
 * length written (without the NUL), or 0 if cap is too small. */
size_t smtp_received_format(char *out, size_t cap, const struct smtp_received *r);

/* ---- header work at injection (smtp_rewrite.c) ----
 * On a message as received: CRLF line ends (a bare LF is tolerated), dot-unstuffed, the header
 * section up to the first empty line, then the body. A field is matched at the start of a line
 * only (name without regard to case, optional SP/HTAB before the colon); it runs on over the
 * continuation lines (starting with SP or HTAB) that follow. The body is never read or changed.
 */

/* smtp_hdr_take: find the first header field named `field` (e.g. "X-Riptide-Pool"; 1..76
 * printable ASCII characters, no ':') in the header section of msg[0..*len) and copy its value,
 * unfolded, into val (vlen bytes, NUL-terminated): blanks and line ends trimmed at both ends,
 * each CRLF plus the blanks after it one space, a bare CR a space (a NUL byte in it ends the
 * string). Then remove
 * every field of that name, with its continuation lines and line ends, from msg in place (the rest
 * moves down, *len shrinks). The caller owns msg; nothing is allocated. Returns 1 when found, 0
 * when absent (msg unchanged), -ENAMETOOLONG when the first value does not fit in val (msg
 * unchanged), -EINVAL for a bad argument (NULL, vlen 0, bad field name). */
int smtp_hdr_take(char *msg, size_t *len, const char *field, char *val, size_t vlen);

/* One header rewrite rule: an address and its alias. `from` is an addr-spec in lower case
 * (matched without regard to ASCII case), `to` what replaces it, as written. */
struct smtp_rewrite_rule {
	const char *from;
	const char *to;
};

/* smtp_rewrite_sort: validate and sort rules[0..n) in place by `from` (strcmp order), as
 * smtp_hdr_rewrite needs them; call it once when the rules are loaded. The strings stay the
 * caller's. Returns 0, -EINVAL when a from or to is NULL or empty or holds a control byte (CR, LF
 * would split the header) or a from holds an upper-case ASCII letter, -EEXIST when two rules
 * have the same from (rules are then sorted but the set must be refused). */
int smtp_rewrite_sort(struct smtp_rewrite_rule *rules, unsigned n);

/* smtp_hdr_rewrite: in the From:, Sender: and Reply-To: fields of the header section of
 * msg[0..len) (no other field: not Resent-From:, not X-From:), replace each address equal to a
 * rule's from (without regard to ASCII case) by the rule's to. An address is the inside of <...>
 * (after an obsolete route "@a,@b:") or a bare addr-spec between list separators; display names,
 * quoted strings (an '@' or '<' in one is no address), comments, groups ("name: a, b;") and
 * folding are understood and copied as they are, like every byte not replaced. An address with
 * whitespace or a comment inside it is not matched. rules[0..n) must be sorted by
 * smtp_rewrite_sort (they are bisected: O(log n) per address); the caller keeps them.
 * Returns the number of replacements: > 0 with *out a new message (malloc'd, the caller frees
 * it) of *outlen bytes; 0 with *out NULL and *outlen 0 (nothing allocated, msg is to be used as
 * it is); -EINVAL for a bad argument, -ENOMEM, -EOVERFLOW (sizes beyond size_t or INT_MAX
 * replacements). msg is never changed. */
int smtp_hdr_rewrite(const char *msg, size_t len, const struct smtp_rewrite_rule *rules, unsigned n,
		     char **out, size_t *outlen);

/* ---- replies (client side) ---- */

/* A parsed (possibly multi-line) reply. `text` points at the text of the LAST line (after the
 * code, the separator and the enhanced code if any); `first` at the first byte of the whole
 * reply. enh_class 0 means no enhanced status code was present. */
struct smtp_reply {
	int code;      /* 200..599 */
	int enh_class; /* 2, 4, 5 or 0 */
	int enh_subject;
	int enh_detail;
	const char *first; /* start of the reply in the buffer */
	size_t total_len;  /* bytes of the whole reply, all lines with their CRLFs */
	const char *text;  /* last line's text */
	size_t text_len;
	unsigned lines;
};

/* smtp_reply_parse: look for one complete reply at the start of buf. Lines end in CRLF (a bare
 * LF is tolerated). Returns the number of bytes consumed (> 0) when a complete reply was parsed,
 * 0 when more bytes are needed, -EBADMSG when the data is not an SMTP reply (bad code, code
 * changing between lines of one reply, a line longer than 4096 bytes without an end). */
ssize_t smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *out);

/* EHLO extension flags, from a complete EHLO reply. */
enum {
	SMTP_EXT_PIPELINING = 1u << 0,
	SMTP_EXT_SIZE = 1u << 1,
	SMTP_EXT_8BITMIME = 1u << 2,
	SMTP_EXT_ENHANCEDSTATUSCODES = 1u << 3,
	SMTP_EXT_STARTTLS = 1u << 4,
	SMTP_EXT_AUTH = 1u << 5,
	SMTP_EXT_SMTPUTF8 = 1u << 6,
	SMTP_EXT_DSN = 1u << 7,
	SMTP_EXT_CHUNKING = 1u << 8,
};

/* SASL mechanisms an EHLO AUTH keyword offers (RFC 4954), those the client can use. */
enum {
	SMTP_EHLO_AUTH_PLAIN = 1u << 0,
	SMTP_EHLO_AUTH_LOGIN = 1u << 1,
};

struct smtp_ehlo {
	uint32_t ext;	     /* SMTP_EXT_* */
	uint64_t size_limit; /* SIZE value, 0 if none or unlimited */
	uint32_t auth;	     /* SMTP_EHLO_AUTH_* listed after AUTH (or the old "AUTH=" form) */
};

/* smtp_ehlo_parse: extract extensions from a complete multi-line EHLO reply (as delimited by
 * smtp_reply_parse: rep->first, rep->total_len). Returns 0. */
int smtp_ehlo_parse(const struct smtp_reply *rep, struct smtp_ehlo *out);

/* ---- DATA: dot-stuffing (client side) ---- */

/* Stuffing state carried across calls: whether the next byte starts a line. */
struct smtp_stuff {
	bool bol; /* start true */
};

/* smtp_dot_stuff: copy `len` bytes of CRLF-normalised body to out, doubling a '.' that starts a
 * line. out must hold 2 * len bytes (worst case). Returns bytes written. Does not append the
 * terminator. */
size_t smtp_dot_stuff(struct smtp_stuff *st, const char *in, size_t len, char *out);

/* smtp_dot_stuff_needed: true if body contains a line starting with '.' (lets the caller send
 * the body as-is when nothing needs stuffing). */
bool smtp_dot_stuff_needed(const char *body, size_t len);

/* smtp_data_end: the bytes that end DATA after a body: "\r\n.\r\n" when the body does not end in
 * CRLF, ".\r\n" when it does (an empty body gets ".\r\n"). Returns a static string. */
const char *smtp_data_end(const char *body, size_t len);

/* ---- DATA: receiving (server side) ---- */

/* Incremental DATA reader: finds the terminating <CRLF>.<CRLF> (and only that: <LF>.<LF>,
 * <CR>.<CR>, <LF>.<CRLF> etc. never end DATA), removes dot-stuffing, and CRLF-normalises the
 * body (a bare CR or bare LF becomes CRLF). The first line of DATA counts as following a CRLF. */
struct smtp_data_rx {
	int state; /* internal; zero-initialise (or smtp_data_rx_init) before the first feed */
	bool pending_cr;
};

void smtp_data_rx_init(struct smtp_data_rx *rx);

/* smtp_data_rx_feed: consume up to `len` input bytes, appending body bytes to out (at most
 * out_cap bytes; out_cap >= 2 * len guarantees all input is consumed). Sets *out_len to the bytes
 * written and *done when the terminator was consumed; input after the terminator is NOT consumed
 * (it belongs to the next pipelined command). Returns bytes consumed. */
size_t smtp_data_rx_feed(struct smtp_data_rx *rx, const char *in, size_t len, char *out,
			 size_t out_cap, size_t *out_len, bool *done);

/* ---- lines ---- */

/* smtp_line_end: find the end of the first line in buf: returns the length of the line without
 * its terminator and sets *term_len to 2 for CRLF or 1 for a bare LF; returns -1 when no LF is
 * present yet. */
ssize_t smtp_line_end(const char *buf, size_t len, size_t *term_len);

#endif
