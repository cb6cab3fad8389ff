/* dsn — RFC 3464 delivery status notifications: failure notices, delay warnings and "relayed"
 * success notices, as complete messages ready to queue (multipart/report, RFC 6522).
 *
 * Why a library of its own: the daemon's commit thread builds notices from the event records
 * of failed or delayed recipients; what goes into a notice (remote reply text, addresses, the
 * original message) comes from strangers, so the builder is pure logic on buffers that can be
 * unit-tested, fuzzed and benchmarked without a loop. No I/O except reading template files.
 *
 * The notice (dsn_build):
 *   From: Mail Delivery System <MAILER-DAEMON@reporting_mta>, To: <sender>, Subject (from the
 *   template, RFC 2047-encoded when not ASCII), Date, Message-ID (queue id, kind, now and a
 *   process-wide counter), MIME-Version, Auto-Submitted: auto-replied (RFC 3834), and
 *   Content-Type: multipart/report; report-type=delivery-status; boundary="..." whose boundary
 *   occurs nowhere in the parts. Parts:
 *   1. text/plain; charset=utf-8: the template's text with its placeholders filled in
 *      (7bit when it is ASCII with lines <= 998 octets, quoted-printable otherwise);
 *   2. message/delivery-status: Reporting-MTA, Original-Envelope-Id (when envid), Arrival-Date,
 *      then per recipient Original-Recipient (when orcpt), Final-Recipient, Action
 *      (failed|delayed|relayed), Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date (each
 *      when known) and Will-Retry-Until (delay notices, when expires_ms);
 *   3. the original: message/rfc822 (DSN_ORIG_FULL), text/rfc822-headers (DSN_ORIG_HEADERS;
 *      quoted-printable when its header block is 8-bit or has over-long lines) or nothing.
 *      An original that cannot travel as message/rfc822 (a NUL byte or a line over 998 octets)
 *      is attached as its header block instead. Bare CR or LF in it become CRLF.
 * Every line of the result ends in CRLF and is at most 998 octets. Text from remote replies
 * and addresses is sanitised (control characters become spaces, runs of white space collapse,
 * invalid UTF-8 becomes '?', at most DSN_DIAG_MAX bytes) so it can neither add a header line
 * nor a MIME boundary; header fields are folded at white space (hard-broken when a word is
 * longer than a line). Dates are RFC 5322 dates in UTC. Dot-stuffing is left to the SMTP client.
 *
 * Status when dsn_rcpt.enh is {0,0,0} (or does not fit the kind): failure 5.0.0, or 4.0.0 when
 * the last reply code was 4xx (a message that expired while deferred); delay 4.0.0; relayed
 * 2.0.0. An address with non-ASCII characters is reported as "utf-8; " with \x{HEX} escapes
 * (RFC 6533 utf-8-addr-xtext) in the delivery-status part.
 *
 * Templates: a directory with up to three files, failure.txt, delay.txt and relayed.txt (a
 * missing file means the built-in text for that kind). A file is UTF-8 text, at most
 * DSN_TPL_MAX bytes, lines of at most 998 bytes ending in LF or CRLF; no NUL or other control
 * character but TAB (a UTF-8 byte order mark at the start is skipped). It may start with a header
 * block: lines "Subject: ..." (only Subject, once) ended by an empty line; a file whose first line
 * looks like "Name: ..." is a header block. A header block without text (or an empty Subject) keeps
 * the built-in text (or subject). Placeholders, in the text and the subject: {sender}       the
 * original envelope sender        {queue_id}    the original's queue id {hostname} reporting_mta
 * {envid}       the ENVID, or empty {queued_time}  arrival date (RFC 5322)             {delay} time
 * waited, e.g. "2 days 3 hours" {recipients}   one line per recipient: "<addr>: reason"   (text
 * only, not in the subject) {reasons}      the distinct reasons, one per line          (text only,
 * not in the subject)
 * "{{" is a literal '{'; a '}' is always literal. An unknown placeholder, an unclosed '{' or any
 * other rule broken refuses the file with "path:line: what" in err.
 */
#ifndef RIPTIDE_DSN_H
#define RIPTIDE_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DSN_TPL_MAX  65536 /* bytes in one template file */
#define DSN_LINE_MAX 998   /* octets in a line, without CRLF (RFC 5322 2.1.1) */
#define DSN_DIAG_MAX 2048  /* bytes of one diagnostic text kept (longer: cut, "...") */

enum dsn_kind { DSN_FAILURE, DSN_DELAY, DSN_RELAYED };
enum dsn_original { DSN_ORIG_FULL, DSN_ORIG_HEADERS, DSN_ORIG_NONE };

struct dsn_rcpt {
	const char *addr;	/* Final-Recipient (rfc822;addr) */
	const char *orcpt;	/* ORCPT as stored: "rfc822;addr" (xtext decoded) or NULL/"" */
	int code;		/* last SMTP reply code, 0 = none/local */
	int enh[3];		/* status to report (e.g. 5,1,1); {0,0,0}: derive from kind/code */
	const char *remote_mta; /* host name (or IP) of the server that answered, NULL/"" = none */
	const char *diag;	/* reply text as received, or local reason; NULL/"" = none */
	bool diag_remote;	/* true: Diagnostic-Code: smtp; <code> <text>; false: X-riptide */
	uint64_t last_attempt_ms; /* wall clock, 0 = never tried */
};

struct dsn_input {
	enum dsn_kind kind;
	const char *reporting_mta; /* our host name */
	const char *sender;	   /* the original envelope sender: where the notice goes */
	const char *queue_id;	   /* original's queue id (32 hex) */
	const char *envid;	   /* ENVID of the original, NULL/"" = none */
	uint64_t arrival_ms, now_ms;
	uint64_t expires_ms; /* DSN_DELAY: Will-Retry-Until; 0 = omit */
	const struct dsn_rcpt *rcpts;
	unsigned nrcpt;
	enum dsn_original original; /* what to attach (the caller has applied RET=) */
	const char *body; /* the original message, CRLF lines (may be NULL if body_len 0) */
	size_t body_len;
};

/* Opaque: the compiled human-readable parts (subject and text) of the three kinds. Immutable
 * once loaded, so one set may be shared by threads. */
struct dsn_templates;

/* dsn_templates_load: load failure.txt, delay.txt and relayed.txt from dir (dir NULL or "":
 * the built-in texts only; a missing file: the built-in text of that kind). On success *out is
 * a new set the caller frees with dsn_templates_free, and 0 is returned. On failure *out is
 * NULL, err (errlen bytes, always NUL-terminated when errlen > 0) says "path:line: what" for a
 * refused template or "path: reason" for an I/O error, and the return is -EINVAL (refused),
 * -ENOMEM or the negative errno of the failed open/read (-ENOENT: no such directory). */
int dsn_templates_load(const char *dir, struct dsn_templates **out, char *err, size_t errlen);

/* dsn_templates_free: free a set from dsn_templates_load (NULL is a no-op). */
void dsn_templates_free(struct dsn_templates *t);

/* dsn_build: build the complete notice of kind in->kind (header + body, CRLF lines, ready to
 * queue with the null sender; see the top of this file). Reads t and in, keeps no pointer to
 * either. On success *out is a malloc'ed buffer of *out_len bytes (NUL-terminated beyond
 * *out_len) the caller frees, *eightbit is true when the result holds 8-bit bytes (an 8-bit
 * original attached in full, or a UTF-8 sender in To:), and 0 is returned. Returns -EINVAL
 * (nothing written) for a null sender ("" or "<>": no notice is ever sent to it), nrcpt 0, a
 * NULL t, rcpts, reporting_mta or recipient address, body NULL with body_len > 0, or an unknown
 * kind or original; -ENOMEM when out of memory. */
int dsn_build(const struct dsn_templates *t, const struct dsn_input *in, char **out,
	      size_t *out_len, bool *eightbit);

#endif
