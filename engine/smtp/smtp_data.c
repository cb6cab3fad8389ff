/* smtp_data — the DATA phase: dot-stuffing on the sending side, terminator scanning,
 * un-stuffing and CRLF normalisation on the receiving side.
 *
 * Why: every byte of every message goes through one of these loops, so they work in spans:
 * memchr finds the next line end, and plain text between two interesting places is copied with
 * one memcpy (or, on the receive side, with one memcpy per run of ordinary lines). Per-byte work
 * happens only at a line start.
 *
 * Receive rules (the SMTP-smuggling-safe reading of RFC 5321 4.1.1.4 and 4.5.2):
 *  - a line starts only after CRLF (and at the start of DATA); a bare CR or bare LF is copied to
 *    the body as CRLF but does NOT start a line;
 *  - at a line start, ".\r\n" ends DATA; any other '.' there is removed (un-stuffing), whatever
 *    follows it (so "\r\n.\n" gives "\r\n\r\n" and "\r\n.x" gives "\r\nx");
 *  - bytes after the terminator are never consumed.
 * Output can lag input by at most two bytes (a line-start ".\r" is held until the next byte
 * says whether it is the terminator); what the cap could not take is carried in rx->state and
 * written first on the next call, so out_cap >= 2 * len always lets all input be consumed.
 */
#include "engine/smtp/smtp.h"

#include <string.h>

/* smtp_dot_stuff: see smtp.h. A line starts after any LF (for CRLF-normalised input, after
 * every CRLF; for stray bare LFs this errs on the side of stuffing, which is the safe side). */
size_t smtp_dot_stuff(struct smtp_stuff *st, const char *in, size_t len, char *out)
{
	const char *p = in, *e = in + len, *run = in, *lf;
	char *o = out;

	if (len == 0)
		return 0;
	if (st->bol && *p == '.')
		*o++ = '.';
	while ((lf = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		p = lf + 1;
		if (p < e && *p == '.') {
			memcpy(o, run, (size_t)(p - run));
			o += p - run;
			*o++ = '.';
			run = p;
		}
	}
	memcpy(o, run, (size_t)(e - run));
	o += e - run;
	st->bol = e[-1] == '\n';
	return (size_t)(o - out);
}

/* smtp_dot_stuff_needed: see smtp.h. */
bool smtp_dot_stuff_needed(const char *body, size_t len)
{
	const char *p = body, *e = body + len;

	if (len > 0 && body[0] == '.')
		return true;
	/* dots are rarer than line ends: one vectorised scan for '.', then look behind */
	for (; (p = memchr(p, '.', (size_t)(e - p))) != NULL; p++)
		if (p > body && p[-1] == '\n')
			return true;
	return false;
}

/* smtp_data_end: see smtp.h. */
const char *smtp_data_end(const char *body, size_t len)
{
	if (len == 0 || (len >= 2 && body[len - 2] == '\r' && body[len - 1] == '\n'))
		return ".\r\n";
	return "\r\n.\r\n";
}

/* ---- receiving ---- */

enum rx_state {
	RX_BOL = 0, /* at a line start (zero-initialised state) */
	RX_TEXT,    /* inside a line */
	RX_CR,	    /* a CR was written; an LF completes it, anything else makes it a bare CR */
	RX_DOT,	    /* a line-start '.' was consumed, nothing written */
	RX_DOTCR,   /* a line-start ".\r" was consumed, nothing written */
	RX_DONE,    /* the terminator was consumed */
};

/* Working copy of the reader during one feed; rx->state packs st, ncarry and carry[]. */
struct rx_ctx {
	const char *p, *end;
	char *out;
	size_t olen, cap;
	int st;
	unsigned ncarry;
	char carry[2];
};

static void rx_unpack(const struct smtp_data_rx *rx, struct rx_ctx *c)
{
	unsigned s = (unsigned)rx->state;

	c->st = (int)(s & 0xf);
	c->ncarry = (s >> 4) & 3;
	c->carry[0] = (char)((s >> 8) & 0xff);
	c->carry[1] = (char)((s >> 16) & 0xff);
}

static void rx_pack(struct smtp_data_rx *rx, const struct rx_ctx *c)
{
	unsigned s = (unsigned)c->st | c->ncarry << 4;

	if (c->ncarry > 0)
		s |= (unsigned)(unsigned char)c->carry[0] << 8;
	if (c->ncarry > 1)
		s |= (unsigned)(unsigned char)c->carry[1] << 16;
	rx->state = (int)s;
}

/* Write up to two bytes; what does not fit in out goes to the carry. */
static inline void rx_emit(struct rx_ctx *c, const char *s, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		if (c->olen < c->cap)
			c->out[c->olen++] = s[k];
		else
			c->carry[c->ncarry++] = s[k];
	}
}

/* Write the carry of the previous call first. */
static void rx_flush_carry(struct rx_ctx *c)
{
	unsigned k = 0;

	while (k < c->ncarry && c->olen < c->cap)
		c->out[c->olen++] = c->carry[k++];
	if (k == 1 && c->ncarry == 2)
		c->carry[0] = c->carry[1];
	c->ncarry -= k;
}

/* End of the run of input starting at p (an ordinary byte) whose output equals the input:
 * ordinary bytes and CRLFs whose next line starts with an ordinary byte. Sets *st to the state
 * after the run. A CR that is the last input byte is included (written eagerly, state RX_CR). */
static const char *rx_run_end(const char *p, const char *e, int *st)
{
	for (;;) {
		const char *lf = memchr(p, '\n', (size_t)(e - p));
		const char *lim = lf ? lf : e;
		const char *cr = memchr(p, '\r', (size_t)(lim - p));

		if (cr && cr + 1 != lim) {
			*st = RX_TEXT; /* bare CR inside the line: stop before it */
			return cr;
		}
		if (!lf) {
			*st = cr ? RX_CR : RX_TEXT;
			return e;
		}
		if (!cr) {
			*st = RX_TEXT; /* bare LF: stop before it */
			return lf;
		}
		p = lf + 1;
		if (p == e || *p == '.' || *p == '\r' || *p == '\n') {
			*st = RX_BOL;
			return p;
		}
	}
}

/* Copy the identity run at c->p, as much of it as out can take. */
static void rx_copy_run(struct rx_ctx *c)
{
	int st;
	const char *q = rx_run_end(c->p, c->end, &st);
	size_t n = (size_t)(q - c->p), room = c->cap - c->olen;

	if (n <= room) {
		c->st = st;
	} else if (room == 0) {
		n = 0;
		c->carry[c->ncarry++] = *c->p++; /* an ordinary byte */
		c->st = RX_TEXT;
	} else {
		n = room;
		c->st = c->p[n - 1] == '\r' ? RX_CR : RX_TEXT;
	}
	memcpy(c->out + c->olen, c->p, n);
	c->olen += n;
	c->p += n;
}

/* RX_BOL/RX_TEXT at byte b (a line-start '.' already handled): line ends or a run. */
static void rx_step_text(struct rx_ctx *c, char b)
{
	if (b == '\r') {
		rx_emit(c, "\r", 1);
		c->p++;
		c->st = RX_CR;
	} else if (b == '\n') {
		rx_emit(c, "\r\n", 2); /* bare LF: does not start a line */
		c->p++;
		c->st = RX_TEXT;
	} else {
		rx_copy_run(c);
	}
}

/* One step of the state machine at c->p (c->p < c->end, carry empty). */
static void rx_step(struct rx_ctx *c)
{
	char b = *c->p;

	switch (c->st) {
	case RX_BOL:
		if (b == '.') {
			c->p++;
			c->st = RX_DOT;
			return;
		}
		/* fallthrough */
	case RX_TEXT:
		rx_step_text(c, b);
		return;
	case RX_CR:
		rx_emit(c, "\n", 1);
		c->p += b == '\n';
		c->st = b == '\n' ? RX_BOL : RX_TEXT;
		return;
	case RX_DOT: /* ".\r" may be the terminator; any other dot is un-stuffed (dropped) */
		c->p += b == '\r';
		c->st = b == '\r' ? RX_DOTCR : RX_TEXT;
		return;
	case RX_DOTCR:
		if (b == '\n') {
			c->p++;
			c->st = RX_DONE;
		} else {
			rx_emit(c, "\r\n", 2); /* dot dropped, bare CR normalised */
			c->st = RX_TEXT;
		}
		return;
	}
}

/* smtp_data_rx_init: reset rx for a new DATA phase. */
void smtp_data_rx_init(struct smtp_data_rx *rx)
{
	rx->state = RX_BOL;
	rx->pending_cr = false;
}

/* smtp_data_rx_feed: see smtp.h. Never writes past out_cap. Once *done is set, further calls
 * consume nothing and keep reporting done until smtp_data_rx_init. */
size_t smtp_data_rx_feed(struct smtp_data_rx *rx, const char *in, size_t len, char *out,
			 size_t out_cap, size_t *out_len, bool *done)
{
	struct rx_ctx c = {.p = in, .end = in + len, .out = out, .cap = out_cap};

	rx_unpack(rx, &c);
	rx_flush_carry(&c);
	while (c.p < c.end && c.ncarry == 0 && c.st != RX_DONE)
		rx_step(&c);
	rx_pack(rx, &c);
	*out_len = c.olen;
	*done = c.st == RX_DONE;
	return (size_t)(c.p - in);
}
