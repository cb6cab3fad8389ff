/* control_proto.c — the framing of the control protocol (see control.h): request lines,
 * data and status lines, escaping of envelope strings, and the human formats of times and
 * sizes.
 *
 * Why one file: every byte that goes on the wire is decided here, so the guarantee that no
 * envelope string can break the framing (no CR, LF or NUL inside a data line; always valid
 * UTF-8 JSON) is checked in one place, and the server and the client share one encoder.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine/control/control_types.h"
#include "engine/util/util.h"

/* ---- requests ---- */

/* Percent-decode s in place. Returns 0 or -EINVAL (bad escape, or one that makes a NUL). */
static int pct_decode(char *s)
{
	char *w = s;

	for (const char *p = s; *p; p++) {
		int hi, lo;

		if (*p != '%') {
			*w++ = *p;
			continue;
		}
		hi = util_hexval((unsigned char)p[1]);
		lo = hi < 0 ? -1 : util_hexval((unsigned char)p[2]);
		if (lo < 0 || (hi | lo) == 0)
			return -EINVAL;
		*w++ = (char)(hi << 4 | lo);
		p += 2;
	}
	*w = '\0';
	return 0;
}

/* Split one "name=value" token into r (value decoded). Returns 0 or -EINVAL. */
static int req_add_arg(struct ctl_req *r, char *tok, char *why, size_t wl)
{
	char *eq = strchr(tok, '=');

	if (!eq || eq == tok) {
		snprintf(why, wl, "argument is not name=value");
		return -EINVAL;
	}
	if (r->nargs == CTL_MAX_ARGS) {
		snprintf(why, wl, "too many arguments");
		return -EINVAL;
	}
	*eq = '\0';
	if (pct_decode(eq + 1) < 0) {
		snprintf(why, wl, "bad %%-escape in the value of %s", tok);
		return -EINVAL;
	}
	r->arg[r->nargs].name = tok;
	r->arg[r->nargs].value = eq + 1;
	r->nargs++;
	if (strcmp(tok, "json") == 0)
		r->json = strcmp(eq + 1, "1") == 0;
	return 0;
}

/* ctl_req_parse: see control_types.h. Tokens are separated by single spaces. */
int ctl_req_parse(char *line, struct ctl_req *r, char *why, size_t wl)
{
	char *save = NULL, *tok = strtok_r(line, " ", &save);
	int rc;

	*r = (struct ctl_req){0};
	if (!tok || strcmp(tok, CTL_PROTO) != 0) {
		snprintf(why, wl, "this server speaks %s only", CTL_PROTO);
		return -EPROTO;
	}
	r->cmd = strtok_r(NULL, " ", &save);
	if (!r->cmd) {
		snprintf(why, wl, "no command");
		return -EINVAL;
	}
	while ((tok = strtok_r(NULL, " ", &save)))
		if ((rc = req_add_arg(r, tok, why, wl)) < 0)
			return rc;
	return 0;
}

/* ctl_req_arg: see control_types.h. The last occurrence wins. */
const char *ctl_req_arg(const struct ctl_req *r, const char *name)
{
	const char *v = NULL;

	for (size_t i = 0; i < r->nargs; i++)
		if (strcmp(r->arg[i].name, name) == 0)
			v = r->arg[i].value;
	return v;
}

/* ctl_req_only: see control_types.h. */
int ctl_req_only(const struct ctl_req *r, const char *const *names, struct ctl_out *o)
{
	for (size_t i = 0; i < r->nargs; i++) {
		bool ok = strcmp(r->arg[i].name, "json") == 0;

		for (const char *const *n = names; !ok && *n; n++)
			ok = strcmp(r->arg[i].name, *n) == 0;
		if (!ok) {
			ctl_out_msg(o, "%s takes no argument %.64s", r->cmd, r->arg[i].name);
			return -EINVAL;
		}
	}
	return 0;
}

static bool tok_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e || *s == '=' || *s == '%')
			return false;
	return true;
}

/* Append value to buf at *n, percent-encoded. Returns 0 or -E2BIG. */
static int pct_encode(char *buf, size_t cap, size_t *n, const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		bool plain = *p >= 0x21 && *p <= 0x7e && *p != '%';
		int w = plain ? 1 : 3;

		if (*n + (size_t)w >= cap)
			return -E2BIG;
		if (plain)
			buf[(*n)++] = (char)*p;
		else
			*n += (size_t)snprintf(buf + *n, cap - *n, "%%%02X", *p);
	}
	return 0;
}

/* ctl_req_format: see control_types.h. */
int ctl_req_format(char *buf, size_t cap, const char *command, const struct ctl_arg *args,
		   size_t nargs)
{
	size_t n;

	if (cap > CTL_REQ_MAX)
		cap = CTL_REQ_MAX;
	if (!tok_ok(command))
		return -EINVAL;
	n = (size_t)snprintf(buf, cap, "%s %s", CTL_PROTO, command);
	if (n >= cap)
		return -E2BIG;
	for (size_t i = 0; i < nargs; i++) {
		if (!tok_ok(args[i].name))
			return -EINVAL;
		n += (size_t)snprintf(buf + n, cap - n, " %s=", args[i].name);
		if (n >= cap || pct_encode(buf, cap, &n, args[i].value ? args[i].value : "1"))
			return -E2BIG;
	}
	if (n + 1 >= cap)
		return -E2BIG;
	buf[n++] = '\n';
	buf[n] = '\0';
	return (int)n;
}

/* ---- output ---- */

/* ctl_out_init: see control_types.h. */
void ctl_out_init(struct ctl_out *o, int fd, int stopfd, const atomic_bool *stop, bool json)
{
	*o = (struct ctl_out){.fd = fd, .stopfd = stopfd, .stop = stop, .json = json};
	o->now_ms = util_wall_ms();
}

/* ctl_out_free: see control_types.h. */
void ctl_out_free(struct ctl_out *o)
{
	free(o->buf);
	o->buf = NULL;
	o->len = o->cap = 0;
}

/* Room for n more bytes (aborts when out of memory, like util_xrealloc). */
static void out_reserve(struct ctl_out *o, size_t n)
{
	size_t cap = o->cap ? o->cap : 4096;

	if (n <= o->cap - o->len)
		return;
	while (cap - o->len < n)
		cap *= 2;
	o->buf = util_xrealloc(o->buf, cap);
	o->cap = cap;
}

/* ctl_out_raw: see control_types.h. */
void ctl_out_raw(struct ctl_out *o, const char *p, size_t n)
{
	if (o->err || n == 0)
		return;
	out_reserve(o, n);
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

/* ctl_out_printf: see control_types.h. */
void ctl_out_printf(struct ctl_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	out_reserve(o, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(o->buf + o->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	o->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not one
 * (overlong forms, surrogates and code points past U+10FFFF are invalid, RFC 3629). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* The JSON escape of the ASCII byte c, or NULL when it goes as is. */
static const char *json_esc(unsigned char c, char tmp[8])
{
	switch (c) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	}
	if (c >= 0x20)
		return NULL;
	snprintf(tmp, 8, "\\u%04x", c);
	return tmp;
}

/* Append one byte-or-sequence of s (n = its valid UTF-8 length, 0 = invalid byte) escaped
 * for o's mode. */
static void out_esc_one(struct ctl_out *o, const unsigned char *s, size_t n)
{
	char tmp[8];
	const char *e;

	if (n == 0) {
		snprintf(tmp, sizeof(tmp), o->json ? "\\u%04x" : "\\x%02x", s[0]);
		ctl_out_raw(o, tmp, strlen(tmp));
	} else if (o->json) {
		e = n == 1 ? json_esc(s[0], tmp) : NULL;
		ctl_out_raw(o, e ? e : (const char *)s, e ? strlen(e) : n);
	} else if (n == 1 && s[0] == '\\') {
		ctl_out_raw(o, "\\\\", 2);
	} else if ((n == 1 && (s[0] < 0x20 || s[0] == 0x7f)) ||
		   (n == 2 && s[0] == 0xc2 && s[1] < 0xa0)) {
		for (size_t i = 0; i < n; i++) { /* C0 controls, DEL, C1 controls */
			snprintf(tmp, sizeof(tmp), "\\x%02x", s[i]);
			ctl_out_raw(o, tmp, 4);
		}
	} else {
		ctl_out_raw(o, (const char *)s, n);
	}
}

/* ctl_out_str: see control_types.h. Runs of plain printable ASCII are copied at once. */
void ctl_out_str(struct ctl_out *o, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");

	if (o->json)
		ctl_out_raw(o, "\"", 1);
	while (*s) {
		size_t run = 0, n;

		while (s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' && s[run] != '\\')
			run++;
		ctl_out_raw(o, (const char *)s, run);
		s += run;
		if (!*s)
			break;
		n = utf8_len(s);
		out_esc_one(o, s, n);
		s += n ? n : 1;
	}
	if (o->json)
		ctl_out_raw(o, "\"", 1);
}

/* ctl_out_line: see control_types.h. */
void ctl_out_line(struct ctl_out *o)
{
	ctl_out_raw(o, "D ", 2);
}

/* ctl_out_end: see control_types.h. */
void ctl_out_end(struct ctl_out *o)
{
	ctl_out_raw(o, "\n", 1);
	if (!o->hold && o->len >= CTL_CHUNK)
		ctl_out_flush(o);
}

/* ctl_out_flush: see control_types.h. A stop of the server ends the answer (-ECANCELED). */
int ctl_out_flush(struct ctl_out *o)
{
	if (!o->err && o->stop && atomic_load(o->stop))
		o->err = -ECANCELED;
	if (!o->err && o->len)
		o->err = ctl_io_write(o->fd, o->buf, o->len, o->stopfd, CTL_WRITE_TIMEOUT_MS);
	o->len = 0;
	return o->err;
}

/* ctl_out_msg: see control_types.h. */
void ctl_out_msg(struct ctl_out *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(o->msg, sizeof(o->msg), fmt, ap);
	va_end(ap);
}

/* ctl_out_status: see control_types.h. The status text is escaped like text output. */
int ctl_out_status(struct ctl_out *o, int rc)
{
	bool json = o->json;

	if (rc < 0)
		ctl_out_printf(o, "ERR %s ", ctl_errname(-rc));
	else
		ctl_out_raw(o, o->msg[0] ? "OK " : "OK", o->msg[0] ? 3 : 2);
	o->json = false;
	ctl_out_str(o, o->msg);
	o->json = json;
	ctl_out_raw(o, "\n", 1);
	return ctl_out_flush(o);
}

static const struct {
	int e;
	const char *name;
} errnames[] = {
    {ENOENT, "ENOENT"},
    {EINVAL, "EINVAL"},
    {EPROTO, "EPROTO"},
    {ENOSYS, "ENOSYS"},
    {EIO, "EIO"},
    {ENOMEM, "ENOMEM"},
    {EBUSY, "EBUSY"},
    {EACCES, "EACCES"},
    {EPERM, "EPERM"},
    {EAGAIN, "EAGAIN"},
    {ETIMEDOUT, "ETIMEDOUT"},
    {EEXIST, "EEXIST"},
    {ENOSPC, "ENOSPC"},
    {EBADMSG, "EBADMSG"},
    {ECANCELED, "ECANCELED"},
    {E2BIG, "E2BIG"},
    {ESHUTDOWN, "ESHUTDOWN"},
    {ENAMETOOLONG, "ENAMETOOLONG"},
};

/* ctl_errname: see control_types.h. Unknown values give "EIO". */
const char *ctl_errname(int e)
{
	for (size_t i = 0; i < ARRAY_SIZE(errnames); i++)
		if (errnames[i].e == e)
			return errnames[i].name;
	return "EIO";
}

/* ctl_errnum: see control_types.h. */
int ctl_errnum(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(errnames); i++)
		if (strcmp(errnames[i].name, name) == 0)
			return errnames[i].e;
	return 0;
}

/* ---- human formats ---- */

/* ctl_fmt_dur: see control_types.h. Two units at most, rounded down. */
void ctl_fmt_dur(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000;

	if (s < 60)
		snprintf(buf, len, "%us", (unsigned)s);
	else if (s < 3600)
		snprintf(buf, len, "%um%us", (unsigned)(s / 60), (unsigned)(s % 60));
	else if (s < 86400)
		snprintf(buf, len, "%uh%um", (unsigned)(s / 3600), (unsigned)(s % 3600 / 60));
	else
		snprintf(buf, len, "%llud%uh", (unsigned long long)(s / 86400),
			 (unsigned)(s % 86400 / 3600));
}

/* ctl_fmt_next: see control_types.h. */
void ctl_fmt_next(uint64_t due_ms, uint64_t now_ms, char *buf, size_t len)
{
	char d[32];

	if (due_ms == 0) {
		snprintf(buf, len, "-");
	} else if (due_ms <= now_ms) {
		snprintf(buf, len, "now");
	} else {
		ctl_fmt_dur(due_ms - now_ms, d, sizeof(d));
		snprintf(buf, len, "in %s", d);
	}
}

/* ctl_fmt_size: see control_types.h. */
void ctl_fmt_size(uint64_t b, char *buf, size_t len)
{
	static const char unit[] = "KMGT";
	double v = (double)b;
	int u = -1;

	if (b < 1024) {
		snprintf(buf, len, "%u", (unsigned)b);
		return;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f%c", v, unit[u]);
}

/* ctl_fmt_time: see control_types.h. */
void ctl_fmt_time(uint64_t ms, uint64_t now_ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	char d[32], when[32];
	struct tm tm;

	if (ms == 0 || !gmtime_r(&t, &tm)) {
		snprintf(buf, len, "-");
		return;
	}
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", &tm);
	ctl_fmt_dur(ms > now_ms ? ms - now_ms : now_ms - ms, d, sizeof(d));
	snprintf(buf, len, ms > now_ms ? "%s (in %s)" : "%s (%s ago)", when, d);
}
