/* dsn_build — assembles one notice: top header, the human part from the template, the
 * machine-readable message/delivery-status part and the original (full or its header block).
 *
 * Why it is built in pieces: the MIME boundary must occur nowhere in the parts, so the two
 * parts riptide writes are made first (in scratch buffers), the original is checked as it is
 * (copied only when its line breaks need repair), then a boundary is picked and everything is
 * copied once into a buffer of the right size. Everything from outside (addresses, reply
 * text, ENVID, host names) goes through dsn_clean or a stricter filter before it is written.
 */
#include "engine/dsn/dsn_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DSN_ADDR_MAX  512 /* bytes of one address kept (RFC 5321 allows 256) */
#define DSN_BND_TRIES 16
#define DSN_ALNUM     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/* Message-ID and boundary uniqueness within the process (with queue id, kind and time). */
static atomic_uint_fast64_t dsn_seq;

struct dsn_ctx {
	const struct dsn_input *in;
	char host[256]; /* reporting_mta, filtered to host-name characters */
	char qid[65];	/* queue_id, letters and digits */
	char queued[DSN_DATE_MAX];
	char delay[64];
	struct dsn_buf sender; /* cleaned, without <> */
	struct dsn_buf envid;  /* cleaned, ASCII */
	uint64_t seq;
};

/* The pieces of one notice before assembly. */
struct dsn_work {
	struct dsn_buf text;   /* part 1 with its header */
	struct dsn_buf status; /* part 2 with its header */
	struct dsn_buf ohdr;   /* part 3's header */
	struct dsn_buf onorm;  /* part 3's content when it is not in->body as it is */
	struct dsn_buf tmp, tmp2;
	const char *orig; /* part 3's content (NULL: no part 3) */
	size_t orig_len;
	bool eightbit;
	char bnd[128];
};

static const char *const dsn_action[3] = {"Action: failed", "Action: delayed", "Action: relayed"};

/* Copy the characters of s allowed by ok[] into dst (room len, NUL-terminated). */
static void dsn_filter(char *dst, size_t len, const char *s, const char *ok)
{
	size_t k = 0;

	for (; s && *s && k + 1 < len; s++)
		if (strchr(ok, *s))
			dst[k++] = *s;
	dst[k] = '\0';
}

/* The sender cleaned (no white space, valid UTF-8) and without one pair of angle brackets. */
static void dsn_sender(struct dsn_buf *b, const char *s)
{
	dsn_clean(b, s, strlen(s), DSN_ADDR_MAX, DSN_CLEAN_UTF8 | DSN_CLEAN_NOSPC);
	if (b->len >= 2 && b->p[0] == '<' && b->p[b->len - 1] == '>') {
		memmove(b->p, b->p + 1, b->len - 2);
		b->len -= 2;
	}
}

/* Fill c from in: filtered host and queue id, dates, cleaned sender and ENVID. Returns 0,
 * -EINVAL for the null sender, -ENOMEM. */
static int dsn_ctx_init(struct dsn_ctx *c, const struct dsn_input *in)
{
	*c = (struct dsn_ctx){.in = in, .seq = atomic_fetch_add(&dsn_seq, 1)};
	dsn_filter(c->host, sizeof(c->host), in->reporting_mta, DSN_ALNUM ".-:[]");
	if (!c->host[0])
		strcpy(c->host, "localhost");
	dsn_filter(c->qid, sizeof(c->qid), in->queue_id, DSN_ALNUM);
	dsn_date(in->arrival_ms, c->queued);
	dsn_duration(in->now_ms > in->arrival_ms ? in->now_ms - in->arrival_ms : 0, c->delay,
		     sizeof(c->delay));
	dsn_sender(&c->sender, in->sender);
	if (in->envid)
		dsn_clean(&c->envid, in->envid, strlen(in->envid), 100, DSN_CLEAN_NOSPC);
	dsn_buf_putc(&c->sender, '\0');
	dsn_buf_putc(&c->envid, '\0');
	if (c->sender.err || c->envid.err)
		return -ENOMEM;
	c->sender.len--;
	c->envid.len--;
	return c->sender.len ? 0 : -EINVAL; /* "<>" or nothing but blanks: the null sender */
}

/* Free what dsn_ctx_init allocated. */
static void dsn_ctx_free(struct dsn_ctx *c)
{
	dsn_buf_free(&c->sender);
	dsn_buf_free(&c->envid);
}

/* The status reported for r (see dsn.h: enh when it fits the kind, else derived). */
static void dsn_status(const struct dsn_input *in, const struct dsn_rcpt *r, int st[3])
{
	int cls = in->kind == DSN_RELAYED ? 2 : in->kind == DSN_DELAY ? 4 : 5;
	bool fits = r->enh[0] == cls || (in->kind == DSN_FAILURE && r->enh[0] == 4);

	if (fits && r->enh[1] >= 0 && r->enh[1] <= 999 && r->enh[2] >= 0 && r->enh[2] <= 999) {
		memcpy(st, r->enh, sizeof(r->enh));
		return;
	}
	if (in->kind == DSN_FAILURE && r->code >= 400 && r->code < 500)
		cls = 4;
	st[0] = cls;
	st[1] = st[2] = 0;
}

/* A string that is given and not empty. */
static bool dsn_set(const char *s)
{
	return s && *s;
}

/* Whether r has a diagnostic to show (a text, or a remote reply code). */
static bool dsn_has_diag(const struct dsn_rcpt *r)
{
	return dsn_set(r->diag) || (r->diag_remote && r->code >= 100 && r->code <= 999);
}

/* r's diagnostic text: the remote reply with its code in front (once), or the local reason. */
static void dsn_diag(const struct dsn_rcpt *r, struct dsn_buf *out, unsigned flags)
{
	const char *d = r->diag ? r->diag : "";
	size_t n = strlen(d), i = 0;
	char code[4];

	while (i < n && (unsigned char)d[i] <= 0x20)
		i++;
	if (r->diag_remote && r->code >= 100 && r->code <= 999) {
		code[0] = (char)('0' + r->code / 100);
		code[1] = (char)('0' + r->code / 10 % 10);
		code[2] = (char)('0' + r->code % 10);
		code[3] = ' ';
		if (n - i < 3 || memcmp(d + i, code, 3) != 0)
			dsn_buf_put(out, code, i < n ? 4 : 3);
	}
	dsn_clean(out, d + i, n - i, DSN_DIAG_MAX, flags);
}

/* The length of the first word of s (a host name ends at white space or a control). */
static size_t dsn_word(const char *s)
{
	size_t n = 0;

	while (s && (unsigned char)s[n] > 0x20 && s[n] != 0x7F)
		n++;
	return n;
}

/* Why r is in the notice, for a person (one line). */
static void dsn_reason(const struct dsn_ctx *c, const struct dsn_rcpt *r, struct dsn_buf *out)
{
	bool host = dsn_word(r->remote_mta) > 0, diag = dsn_has_diag(r);
	size_t hl = dsn_word(r->remote_mta);
	int st[3];

	if (c->in->kind == DSN_RELAYED) {
		dsn_buf_puts(out, host ? "relayed to " : "relayed");
		dsn_clean(out, r->remote_mta, hl, 255, DSN_CLEAN_NOSPC);
		if (diag)
			dsn_buf_puts(out, host ? ", which said: " : ": ");
	} else if (diag && r->diag_remote) {
		dsn_buf_puts(out, host ? "host " : "the remote server said: ");
		dsn_clean(out, r->remote_mta, hl, 255, DSN_CLEAN_NOSPC);
		if (host)
			dsn_buf_puts(out, " said: ");
	} else if (!diag) {
		dsn_status(c->in, r, st);
		dsn_buf_printf(out, "%s (status %d.%d.%d)",
			       c->in->kind == DSN_FAILURE ? "delivery failed" : "delivery delayed",
			       st[0], st[1], st[2]);
	}
	if (diag)
		dsn_diag(r, out, DSN_CLEAN_UTF8);
}

/* {recipients}: "<addr>: reason" per recipient, lines joined by CRLF. */
static void dsn_ph_recipients(const struct dsn_ctx *c, struct dsn_buf *out)
{
	for (unsigned i = 0; i < c->in->nrcpt; i++) {
		const struct dsn_rcpt *r = &c->in->rcpts[i];

		if (i)
			dsn_buf_put(out, "\r\n", 2);
		dsn_buf_putc(out, '<');
		dsn_clean(out, r->addr, strlen(r->addr), DSN_ADDR_MAX,
			  DSN_CLEAN_UTF8 | DSN_CLEAN_NOSPC);
		dsn_buf_put(out, ">: ", 3);
		dsn_reason(c, r, out);
	}
}

/* {reasons}: the distinct reasons, one per line (a reason already written is taken back). */
static void dsn_ph_reasons(const struct dsn_ctx *c, struct dsn_buf *out)
{
	size_t *at = malloc(2 * c->in->nrcpt * sizeof(*at)), n = 0, start, len;
	bool dup;

	if (!at) {
		out->err = -ENOMEM;
		return;
	}
	for (unsigned i = 0; i < c->in->nrcpt && !out->err; i++) {
		start = out->len + (n ? 2 : 0);
		if (n)
			dsn_buf_put(out, "\r\n", 2);
		dsn_reason(c, &c->in->rcpts[i], out);
		len = out->len - start;
		dup = false;
		for (size_t k = 0; k < n && !dup; k++)
			dup = at[2 * k + 1] == len &&
			      !memcmp(out->p + at[2 * k], out->p + start, len);
		if (dup) {
			out->len = start - (n ? 2 : 0);
			continue;
		}
		at[2 * n] = start;
		at[2 * n++ + 1] = len;
	}
	free(at);
}

/* dsn_ph_put: see dsn_int.h. */
void dsn_ph_put(const struct dsn_ctx *c, enum dsn_ph ph, struct dsn_buf *out)
{
	switch (ph) {
	case DSN_PH_SENDER:
		dsn_buf_put(out, c->sender.p, c->sender.len);
		break;
	case DSN_PH_RECIPIENTS:
		dsn_ph_recipients(c, out);
		break;
	case DSN_PH_REASONS:
		dsn_ph_reasons(c, out);
		break;
	case DSN_PH_QUEUE_ID:
		dsn_buf_puts(out, c->qid);
		break;
	case DSN_PH_HOSTNAME:
		dsn_buf_puts(out, c->host);
		break;
	case DSN_PH_QUEUED_TIME:
		dsn_buf_puts(out, c->queued);
		break;
	case DSN_PH_DELAY:
		dsn_buf_puts(out, c->delay);
		break;
	case DSN_PH_ENVID:
		dsn_buf_put(out, c->envid.p, c->envid.len);
		break;
	case DSN_PH_LIT:
		break;
	}
}

/* "type; addr" for a delivery-status field: the address cleaned; a non-ASCII address, or type
 * utf-8, is written as utf-8 with \x{HEX} for non-ASCII and '+', '=', '\' (RFC 6533). */
static void dsn_addr_val(struct dsn_buf *v, struct dsn_buf *tmp, const char *type, size_t tlen,
			 const char *a, size_t alen)
{
	bool utf8 = tlen == 5 && !strncasecmp(type, "utf-8", 5);
	uint32_t cp;
	size_t k;

	tmp->len = 0;
	dsn_clean(tmp, a, alen, DSN_ADDR_MAX, DSN_CLEAN_UTF8 | DSN_CLEAN_NOSPC);
	for (size_t i = 0; i < tmp->len && !utf8; i++)
		utf8 = (unsigned char)tmp->p[i] >= 0x80;
	if (utf8)
		type = "utf-8", tlen = 5;
	dsn_buf_put(v, type, tlen);
	dsn_buf_put(v, "; ", 2);
	if (!utf8) {
		dsn_buf_put(v, tmp->p, tmp->len);
		return;
	}
	for (size_t i = 0; i < tmp->len; i += k) {
		unsigned char ch = (unsigned char)tmp->p[i];

		k = 1;
		cp = ch;
		if (ch >= 0x80 &&
		    (k = dsn_utf8_len((unsigned char *)tmp->p + i, tmp->len - i, &cp)) == 0)
			k = 1, cp = '?';
		if (utf8 && (cp >= 0x80 || ch == '+' || ch == '=' || ch == '\\'))
			dsn_buf_printf(v, "\\x{%X}", (unsigned)cp);
		else
			dsn_buf_putc(v, (char)ch);
	}
}

/* Original-Recipient's value from an ORCPT stored as "type;addr" (no usable type: rfc822). */
static void dsn_orcpt_val(struct dsn_buf *v, struct dsn_buf *tmp, const char *o)
{
	const char *semi = strchr(o, ';'), *ts = o, *te = semi;
	bool ok = semi != NULL;

	while (ok && ts < te && (*ts == ' ' || *ts == '\t'))
		ts++;
	while (ok && te > ts && (te[-1] == ' ' || te[-1] == '\t'))
		te--;
	ok = ok && te > ts && te - ts <= 32;
	for (const char *p = ts; ok && p < te; p++)
		ok = strchr(DSN_ALNUM "-", *p) != NULL;
	if (ok)
		dsn_addr_val(v, tmp, ts, (size_t)(te - ts), semi + 1, strlen(semi + 1));
	else
		dsn_addr_val(v, tmp, "rfc822", 6, o, strlen(o));
}

/* Append a folded field "name: value" where value is tmp (already clean). */
static void dsn_field(struct dsn_buf *o, const char *name, struct dsn_buf *v)
{
	if (!v->err)
		dsn_header(o, name, v->p, v->len);
}

/* The per-recipient block of r (RFC 3464 2.3). */
static void dsn_rcpt_block(struct dsn_ctx *c, struct dsn_work *w, const struct dsn_rcpt *r)
{
	struct dsn_buf *o = &w->status, *v = &w->tmp;
	char date[DSN_DATE_MAX];
	int st[3];

	if (dsn_set(r->orcpt)) {
		v->len = 0;
		dsn_orcpt_val(v, &w->tmp2, r->orcpt);
		dsn_field(o, "Original-Recipient", v);
	}
	v->len = 0;
	dsn_addr_val(v, &w->tmp2, "rfc822", 6, r->addr, strlen(r->addr));
	dsn_field(o, "Final-Recipient", v);
	dsn_status(c->in, r, st);
	dsn_buf_puts(o, dsn_action[c->in->kind]);
	dsn_buf_puts(o, "\r\nStatus: ");
	for (int i = 0; i < 3; i++) {
		dsn_buf_putu(o, (uint64_t)st[i]);
		dsn_buf_put(o, i < 2 ? "." : "\r\n", i < 2 ? 1 : 2);
	}
	if (dsn_word(r->remote_mta)) {
		v->len = 0;
		dsn_buf_puts(v, "dns; ");
		dsn_clean(v, r->remote_mta, dsn_word(r->remote_mta), 255, DSN_CLEAN_NOSPC);
		dsn_field(o, "Remote-MTA", v);
	}
	if (dsn_has_diag(r)) {
		v->len = 0;
		dsn_buf_puts(v, r->diag_remote ? "smtp; " : "X-riptide; ");
		dsn_diag(r, v, 0);
		dsn_field(o, "Diagnostic-Code", v);
	}
	if (r->last_attempt_ms) {
		dsn_date(r->last_attempt_ms, date);
		dsn_header(o, "Last-Attempt-Date", date, strlen(date));
	}
	if (c->in->kind == DSN_DELAY && c->in->expires_ms) {
		dsn_date(c->in->expires_ms, date);
		dsn_header(o, "Will-Retry-Until", date, strlen(date));
	}
}

/* Part 2: message/delivery-status (RFC 3464 2.2, 2.3). */
static void dsn_status_part(struct dsn_ctx *c, struct dsn_work *w)
{
	struct dsn_buf *o = &w->status;

	dsn_buf_puts(o, "Content-Description: Delivery report\r\n"
			"Content-Type: message/delivery-status\r\n\r\n");
	dsn_buf_printf(o, "Reporting-MTA: dns; %s\r\n", c->host);
	if (c->qid[0])
		dsn_buf_printf(o, "X-Riptide-Queue-ID: %s\r\n", c->qid);
	if (c->envid.len)
		dsn_header(o, "Original-Envelope-Id", c->envid.p, c->envid.len);
	dsn_buf_printf(o, "Arrival-Date: %s\r\n", c->queued);
	for (unsigned i = 0; i < c->in->nrcpt; i++) {
		dsn_buf_put(o, "\r\n", 2);
		dsn_rcpt_block(c, w, &c->in->rcpts[i]);
	}
}

/* Part 1: the template's text, 7bit when it can be, else quoted-printable. */
static void dsn_text_part(const struct dsn_templates *t, struct dsn_ctx *c, struct dsn_work *w)
{
	struct dsn_scan sc;
	bool qp;

	w->tmp.len = 0;
	dsn_render(&t->k[c->in->kind].text, c, &w->tmp);
	if (w->tmp.err)
		return;
	dsn_scan(w->tmp.p, w->tmp.len, &sc);
	qp = sc.eightbit || sc.nul || sc.bare || sc.max_line > DSN_LINE_MAX;
	dsn_buf_puts(&w->text, "Content-Description: Notification\r\n"
			       "Content-Type: text/plain; charset=utf-8\r\n");
	dsn_buf_puts(&w->text, qp ? "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
				  : "Content-Transfer-Encoding: 7bit\r\n\r\n");
	if (qp)
		dsn_qp(&w->text, w->tmp.p, w->tmp.len);
	else if (sc.final_crlf)
		dsn_buf_put(&w->text, w->tmp.p, w->tmp.len);
	else
		dsn_put_crlf(&w->text, w->tmp.p, w->tmp.len);
}

/* The length of the header block of s[0..n): up to the first empty line (all when none). */
static size_t dsn_hdr_len(const char *s, size_t n)
{
	const char *p = s, *end = s + n, *nl;

	while (p < end) {
		if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n'))
			return (size_t)(p - s);
		nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	return n;
}

/* Part 3 as text/rfc822-headers: the header block, quoted-printable when not clean 7-bit. */
static void dsn_orig_headers(struct dsn_ctx *c, struct dsn_work *w)
{
	size_t n = dsn_hdr_len(c->in->body, c->in->body_len);
	struct dsn_scan sc;
	bool qp;

	if (n == 0)
		return;
	dsn_scan(c->in->body, n, &sc);
	qp = sc.eightbit || sc.nul || sc.max_line > DSN_LINE_MAX;
	dsn_buf_puts(&w->ohdr, "Content-Description: Original message header\r\n"
			       "Content-Type: text/rfc822-headers\r\n");
	if (qp) {
		dsn_buf_puts(&w->ohdr, "Content-Transfer-Encoding: quoted-printable\r\n");
		dsn_qp(&w->onorm, c->in->body, n);
	} else {
		dsn_put_crlf(&w->onorm, c->in->body, n);
	}
	dsn_buf_put(&w->ohdr, "\r\n", 2);
	w->orig = w->onorm.p;
	w->orig_len = w->onorm.len;
}

/* Part 3 as message/rfc822 (as it is when its lines are clean; else as headers). */
static void dsn_orig_part(struct dsn_ctx *c, struct dsn_work *w)
{
	const struct dsn_input *in = c->in;
	struct dsn_scan sc;

	if (in->original == DSN_ORIG_NONE || in->body_len == 0)
		return;
	if (in->original == DSN_ORIG_HEADERS) {
		dsn_orig_headers(c, w);
		return;
	}
	dsn_scan(in->body, in->body_len, &sc);
	if (sc.nul || sc.max_line > DSN_LINE_MAX) {
		dsn_orig_headers(c, w);
		return;
	}
	dsn_buf_puts(&w->ohdr, "Content-Description: Original message\r\n"
			       "Content-Type: message/rfc822\r\n");
	if (sc.eightbit)
		dsn_buf_puts(&w->ohdr, "Content-Transfer-Encoding: 8bit\r\n");
	dsn_buf_put(&w->ohdr, "\r\n", 2);
	w->eightbit = sc.eightbit;
	if (!sc.bare && sc.final_crlf) {
		w->orig = in->body;
		w->orig_len = in->body_len;
		return;
	}
	dsn_put_crlf(&w->onorm, in->body, in->body_len);
	w->orig = w->onorm.p;
	w->orig_len = w->onorm.len;
}

/* splitmix64: an unpredictable-looking salt for a boundary after a collision. */
static uint64_t dsn_mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

/* Whether hay[0..n) (may be NULL) contains needle[0..k). */
static bool dsn_holds(const char *hay, size_t n, const char *needle, size_t k)
{
	return hay && n >= k && memmem(hay, n, needle, k) != NULL;
}

/* Pick w->bnd: from the queue id, kind and sequence number, salted on collision, occurring in
 * none of the parts. Returns 0 or -EEXIST (no candidate fits: not seen in practice). */
static int dsn_boundary(struct dsn_ctx *c, struct dsn_work *w)
{
	uint64_t salt = c->seq;
	size_t n;

	for (unsigned i = 0; i < DSN_BND_TRIES; i++) {
		if (i)
			salt = dsn_mix(salt ^ c->in->now_ms ^ i);
		n = (size_t)snprintf(w->bnd, sizeof(w->bnd), "=_rt_%.32s_%c%llx",
				     c->qid[0] ? c->qid : "0", "fdr"[c->in->kind],
				     (unsigned long long)salt);
		if (!dsn_holds(w->text.p, w->text.len, w->bnd, n) &&
		    !dsn_holds(w->status.p, w->status.len, w->bnd, n) &&
		    !dsn_holds(w->orig, w->orig_len, w->bnd, n))
			return 0;
	}
	return -EEXIST;
}

/* The subject: rendered, cleaned to one line, RFC 2047-encoded when not ASCII. */
static void dsn_subject(const struct dsn_templates *t, struct dsn_ctx *c, struct dsn_work *w,
			struct dsn_buf *o)
{
	bool ascii = true;

	w->tmp.len = w->tmp2.len = 0;
	dsn_render(&t->k[c->in->kind].subject, c, &w->tmp);
	dsn_clean(&w->tmp2, w->tmp.p, w->tmp.len, 400, DSN_CLEAN_UTF8);
	for (size_t i = 0; i < w->tmp2.len && ascii; i++)
		ascii = (unsigned char)w->tmp2.p[i] < 0x80;
	if (ascii) {
		dsn_field(o, "Subject", &w->tmp2);
		return;
	}
	w->tmp.len = 0;
	dsn_rfc2047(&w->tmp, w->tmp2.p, w->tmp2.len);
	dsn_field(o, "Subject", &w->tmp);
}

/* The notice's own header, up to and including the empty line. */
static void dsn_top(const struct dsn_templates *t, struct dsn_ctx *c, struct dsn_work *w,
		    struct dsn_buf *o)
{
	char date[DSN_DATE_MAX];

	dsn_buf_printf(o, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", c->host);
	w->tmp.len = 0;
	dsn_buf_putc(&w->tmp, '<');
	dsn_buf_put(&w->tmp, c->sender.p, c->sender.len);
	dsn_buf_putc(&w->tmp, '>');
	dsn_field(o, "To", &w->tmp);
	dsn_subject(t, c, w, o);
	dsn_date(c->in->now_ms, date);
	dsn_buf_printf(o, "Date: %s\r\n", date);
	dsn_buf_printf(o, "Message-ID: <%llx.%c%llu.%s@%s>\r\n", (unsigned long long)c->in->now_ms,
		       "fdr"[c->in->kind], (unsigned long long)c -> seq,
		       c -> qid[0] ? c -> qid : "0", c->host);
	dsn_buf_puts(o, "MIME-Version: 1.0\r\nAuto-Submitted: auto-replied\r\n");
	dsn_buf_printf(o,
		       "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		       "\tboundary=\"%s\"\r\n",
		       w->bnd);
	if (w->eightbit)
		dsn_buf_puts(o, "Content-Transfer-Encoding: 8bit\r\n");
	dsn_buf_puts(o, "\r\n");
}

/* The whole notice into a new buffer: header, preamble, the parts between delimiters. */
static int dsn_assemble(const struct dsn_templates *t, struct dsn_ctx *c, struct dsn_work *w,
			char **out, size_t *out_len)
{
	struct dsn_buf o;

	dsn_buf_init(&o, w->text.len + w->status.len + w->ohdr.len + w->orig_len + 2048);
	dsn_top(t, c, w, &o);
	dsn_buf_puts(&o,
		     "This is a MIME-encapsulated message: a delivery status notification.\r\n");
	dsn_buf_printf(&o, "\r\n--%s\r\n", w->bnd);
	dsn_buf_put(&o, w->text.p, w->text.len);
	dsn_buf_printf(&o, "\r\n--%s\r\n", w->bnd);
	dsn_buf_put(&o, w->status.p, w->status.len);
	if (w->orig) {
		dsn_buf_printf(&o, "\r\n--%s\r\n", w->bnd);
		dsn_buf_put(&o, w->ohdr.p, w->ohdr.len);
		dsn_buf_put(&o, w->orig, w->orig_len);
	}
	dsn_buf_printf(&o, "\r\n--%s--\r\n", w->bnd);
	if (o.err || w->tmp.err || w->tmp2.err) {
		dsn_buf_free(&o);
		return -ENOMEM;
	}
	o.p[o.len] = '\0'; /* dsn_buf_room always leaves room for it */
	*out = o.p;
	*out_len = o.len;
	return 0;
}

/* The argument checks of dsn_build (see dsn.h); the null sender is found by dsn_ctx_init. */
static int dsn_check(const struct dsn_templates *t, const struct dsn_input *in)
{
	if (!t || !in || (unsigned)in->kind > DSN_RELAYED || (unsigned)in->original > DSN_ORIG_NONE)
		return -EINVAL;
	if (!in->rcpts || in->nrcpt == 0 || !dsn_set(in->reporting_mta) || !in->sender ||
	    (!in->body && in->body_len))
		return -EINVAL;
	for (unsigned i = 0; i < in->nrcpt; i++)
		if (!in->rcpts[i].addr)
			return -EINVAL;
	return 0;
}

/* The first allocation failure of w's buffers, or 0. */
static int dsn_work_err(const struct dsn_work *w)
{
	const struct dsn_buf *b[] = {&w->text, &w->status, &w->ohdr, &w->onorm, &w->tmp, &w->tmp2};

	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
		if (b[i]->err)
			return b[i]->err;
	return 0;
}

/* Free the buffers of w. */
static void dsn_work_free(struct dsn_work *w)
{
	dsn_buf_free(&w->text);
	dsn_buf_free(&w->status);
	dsn_buf_free(&w->ohdr);
	dsn_buf_free(&w->onorm);
	dsn_buf_free(&w->tmp);
	dsn_buf_free(&w->tmp2);
}

/* dsn_build: see dsn.h. */
int dsn_build(const struct dsn_templates *t, const struct dsn_input *in, char **out,
	      size_t *out_len, bool *eightbit)
{
	struct dsn_ctx c = {0};
	struct dsn_work w = {0};
	int ret;

	if (!out || !out_len || !eightbit)
		return -EINVAL;
	*out = NULL;
	*out_len = 0;
	*eightbit = false;
	if ((ret = dsn_check(t, in)) != 0 || (ret = dsn_ctx_init(&c, in)) != 0)
		goto out;
	dsn_text_part(t, &c, &w);
	dsn_status_part(&c, &w);
	dsn_orig_part(&c, &w);
	ret = dsn_work_err(&w);
	if (!ret)
		ret = dsn_boundary(&c, &w);
	if (!ret)
		ret = dsn_assemble(t, &c, &w, out, out_len);
	for (size_t i = 0; !ret && i < c.sender.len; i++)
		*eightbit |= (unsigned char)c.sender.p[i] >= 0x80;
	*eightbit |= !ret && w.eightbit;
out:
	dsn_work_free(&w);
	dsn_ctx_free(&c);
	return ret;
}
