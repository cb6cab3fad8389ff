/* dsn_tpl — the human-readable part of notices: template files checked and compiled once at
 * start-up into segment lists (literal runs and placeholders), rendered per notice.
 *
 * Why compile: a notice is built on the daemon's commit thread, so rendering must not parse;
 * and a broken template must be refused at start-up with the file and line, not discovered
 * when the first bounce is due. The rules are in dsn.h.
 */
#include "engine/dsn/dsn_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const dsn_tpl_file[3] = {"failure.txt", "delay.txt", "relayed.txt"};

static const char *const dsn_tpl_default[3] = {
    "Subject: Undelivered Mail Returned to Sender\n"
    "\n"
    "This is the mail delivery system at {hostname}.\n"
    "\n"
    "Your message could not be delivered to one or more of its recipients.\n"
    "This is a permanent error: no further attempts will be made for them.\n"
    "\n"
    "{recipients}\n"
    "\n"
    "Queue ID: {queue_id}\n"
    "Queued:   {queued_time}\n"
    "\n"
    "The delivery status report that follows says the same for programs.\n",

    "Subject: Delayed Mail (still being retried)\n"
    "\n"
    "This is the mail delivery system at {hostname}.\n"
    "\n"
    "Your message has not been delivered yet to the recipients below; it has\n"
    "been waiting for {delay}. Delivery will be retried, so you do not need\n"
    "to send the message again. You will be notified if it finally fails.\n"
    "\n"
    "{recipients}\n"
    "\n"
    "Queue ID: {queue_id}\n"
    "Queued:   {queued_time}\n",

    "Subject: Relayed Mail (delivery status notification)\n"
    "\n"
    "This is the mail delivery system at {hostname}.\n"
    "\n"
    "Your message was relayed to the mail servers of the recipients below, as\n"
    "you asked to be told. Those servers do not report delivery themselves, so\n"
    "this is the last notification you will receive about these recipients.\n"
    "\n"
    "{recipients}\n"
    "\n"
    "Queue ID: {queue_id}\n"
    "Queued:   {queued_time}\n",
};

static const struct {
	const char *name;
	enum dsn_ph ph;
} dsn_ph_names[] = {
    {"sender", DSN_PH_SENDER},	   {"recipients", DSN_PH_RECIPIENTS},
    {"reasons", DSN_PH_REASONS},   {"queue_id", DSN_PH_QUEUE_ID},
    {"hostname", DSN_PH_HOSTNAME}, {"queued_time", DSN_PH_QUEUED_TIME},
    {"delay", DSN_PH_DELAY},	   {"envid", DSN_PH_ENVID},
};

/* The compiler's state: where it is (for err) and the part being built. */
struct dsn_pstate {
	const char *name;
	char *err;
	size_t errlen;
	unsigned line;
	struct dsn_buf lit;
	struct dsn_seg *seg;
	unsigned nseg, cap;
};

/* Write "name:line: what arg" into the caller's err; returns -EINVAL. */
static int dsn_perr(struct dsn_pstate *ps, const char *what, const char *arg)
{
	if (ps->errlen)
		snprintf(ps->err, ps->errlen, "%s:%u: %s%s", ps->name, ps->line, what,
			 arg ? arg : "");
	return -EINVAL;
}

/* Free a compiled part; it is empty afterwards. */
static void dsn_part_free(struct dsn_part *p)
{
	free(p->lit);
	free(p->seg);
	*p = (struct dsn_part){0};
}

/* Append a segment (a literal run extends the previous literal segment). */
static int dsn_seg_add(struct dsn_pstate *ps, enum dsn_ph ph, const char *s, size_t n)
{
	struct dsn_seg *last = ps->nseg ? &ps->seg[ps->nseg - 1] : NULL;

	if (ph == DSN_PH_LIT) {
		if (n == 0)
			return 0;
		dsn_buf_put(&ps->lit, s, n);
		if (ps->lit.err)
			return ps->lit.err;
		if (last && last->ph == DSN_PH_LIT && last->off + last->len == ps->lit.len - n) {
			last->len += (uint32_t)n;
			return 0;
		}
	}
	if (ps->nseg == ps->cap) {
		unsigned cap = ps->cap ? 2 * ps->cap : 16;
		struct dsn_seg *v = realloc(ps->seg, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ps->seg = v;
		ps->cap = cap;
	}
	ps->seg[ps->nseg++] =
	    (struct dsn_seg){(uint8_t)ph, (uint32_t)(ps->lit.len - n), (uint32_t)n};
	return 0;
}

/* One placeholder "{name}" at s[0..n) (s[0] == '{', n > 1, s[1] != '{'); sets *used to the
 * bytes it takes. */
static int dsn_compile_ph(struct dsn_pstate *ps, const char *s, size_t n, bool subject,
			  size_t *used)
{
	const char *close = memchr(s, '}', n);
	char shown[48];
	size_t k;

	if (!close)
		return dsn_perr(ps, "unclosed '{' (write '{{' for a literal brace)", NULL);
	k = (size_t)(close - s - 1);
	*used = k + 2;
	for (size_t i = 0; i < sizeof(dsn_ph_names) / sizeof(dsn_ph_names[0]); i++) {
		if (strlen(dsn_ph_names[i].name) != k || memcmp(dsn_ph_names[i].name, s + 1, k))
			continue;
		if (subject && (dsn_ph_names[i].ph == DSN_PH_RECIPIENTS ||
				dsn_ph_names[i].ph == DSN_PH_REASONS))
			return dsn_perr(ps, "a placeholder of several lines in the Subject: ",
					dsn_ph_names[i].ph == DSN_PH_REASONS ? "{reasons}"
									     : "{recipients}");
		return dsn_seg_add(ps, dsn_ph_names[i].ph, NULL, 0);
	}
	snprintf(shown, sizeof(shown), "%.*s}", k > 40 ? 40 : (int)k, s + 1);
	return dsn_perr(ps, "unknown placeholder {", shown);
}

/* Compile one line s[0..n) (without its line break) into segments. */
static int dsn_compile_line(struct dsn_pstate *ps, const char *s, size_t n, bool subject)
{
	size_t i = 0, start = 0, used;
	const char *brace;
	int ret;

	while (i < n && (brace = memchr(s + i, '{', n - i)) != NULL) {
		i = (size_t)(brace - s);
		ret = dsn_seg_add(ps, DSN_PH_LIT, s + start, i - start);
		if (!ret && i + 1 < n && s[i + 1] == '{') {
			ret = dsn_seg_add(ps, DSN_PH_LIT, "{", 1);
			used = 2;
		} else if (!ret) {
			ret = dsn_compile_ph(ps, s + i, n - i, subject, &used);
		}
		if (ret)
			return ret;
		i += used;
		start = i;
	}
	return dsn_seg_add(ps, DSN_PH_LIT, s + start, n - start);
}

/* Check one line s[0..n) (without its line break): length, NUL, controls, UTF-8. */
static int dsn_check_line(struct dsn_pstate *ps, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t k;

	if (n > DSN_LINE_MAX)
		return dsn_perr(ps, "line longer than 998 bytes", NULL);
	for (size_t i = 0; i < n; i += k) {
		k = 1;
		if (u[i] == 0)
			return dsn_perr(ps, "NUL byte", NULL);
		if (u[i] == '\r')
			return dsn_perr(ps, "CR not followed by LF", NULL);
		if ((u[i] < 0x20 && u[i] != '\t') || u[i] == 0x7F)
			return dsn_perr(ps, "control character", NULL);
		if (u[i] >= 0x80 && (k = dsn_utf8_len(u + i, n - i, NULL)) == 0)
			return dsn_perr(ps, "invalid UTF-8", NULL);
	}
	return 0;
}

/* "Name:" at the start of s[0..n): a header field line. */
static bool dsn_is_field(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i] > 32 && s[i] < 127 && s[i] != ':')
		i++;
	return i > 0 && i < n && s[i] == ':';
}

/* Move the segments compiled so far into *p (emptying ps). */
static void dsn_ps_take(struct dsn_pstate *ps, struct dsn_part *p)
{
	*p = (struct dsn_part){ps->lit.p, ps->seg, ps->nseg};
	ps->lit = (struct dsn_buf){0};
	ps->seg = NULL;
	ps->nseg = ps->cap = 0;
}

/* Whether s[0..n) has a byte that is not white space. */
static bool dsn_nonblank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return true;
	return false;
}

/* One line of the header block: a Subject field or its continuation. */
static int dsn_header_line(struct dsn_pstate *ps, const char *s, size_t n, bool *subj, bool *set)
{
	if (s[0] == ' ' || s[0] == '\t') {
		if (!*subj)
			return dsn_perr(ps, "continuation line without a field", NULL);
		*set |= dsn_nonblank(s, n);
		if (dsn_seg_add(ps, DSN_PH_LIT, " ", 1) != 0)
			return -ENOMEM;
		return dsn_compile_line(ps, s, n, true);
	}
	if (n < 8 || strncasecmp(s, "Subject:", 8) != 0)
		return dsn_perr(ps, "only Subject: may be set before the empty line (a text whose ",
				"first line looks like 'Name: ...' must start with an empty line)");
	if (*subj)
		return dsn_perr(ps, "Subject: given twice", NULL);
	*subj = true;
	*set |= dsn_nonblank(s + 8, n - 8);
	return dsn_compile_line(ps, s + 8, n - 8, true);
}

/* The line number at which byte offset off of buf falls. */
static unsigned dsn_line_at(const char *buf, size_t off)
{
	unsigned line = 1;

	for (size_t i = 0; i < off; i++)
		line += buf[i] == '\n';
	return line;
}

/* Compile buf into *subj (when it has a header block) and *text; *subj_set / *text_set say
 * whether each is non-blank. */
static int dsn_compile(struct dsn_pstate *ps, const char *buf, size_t len, struct dsn_part *subj,
		       struct dsn_part *text, bool *subj_set, bool *text_set)
{
	const char *p = buf, *end = buf + len, *nl;
	bool hdr = false, seen = false;
	size_t n;
	int ret = 0;

	while (!ret && p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl ? nl : end) - p);
		n -= nl && n && p[n - 1] == '\r';
		ps->line++;
		if ((ret = dsn_check_line(ps, p, n)) != 0)
			break;
		if (ps->line == 1 && dsn_is_field(p, n))
			hdr = true;
		if (hdr && n == 0) {
			hdr = false;
			dsn_ps_take(ps, subj);
		} else if (hdr) {
			ret = dsn_header_line(ps, p, n, &seen, subj_set);
		} else {
			*text_set |= dsn_nonblank(p, n);
			ret = dsn_compile_line(ps, p, n, false);
			if (!ret)
				ret = dsn_seg_add(ps, DSN_PH_LIT, "\r\n", 2);
		}
		p = nl ? nl + 1 : end;
	}
	if (!ret)
		dsn_ps_take(ps, hdr ? subj : text);
	return ret;
}

/* dsn_templates_parse: see dsn_int.h. */
int dsn_templates_parse(struct dsn_templates *t, enum dsn_kind kind, const char *name,
			const char *buf, size_t len, char *err, size_t errlen)
{
	struct dsn_pstate ps = {.name = name, .err = err, .errlen = errlen};
	struct dsn_part subj = {0}, text = {0};
	bool subj_set = false, text_set = false;
	struct dsn_tpl *k;
	int ret;

	if ((unsigned)kind > DSN_RELAYED || (!buf && len))
		return -EINVAL;
	if (len > DSN_TPL_MAX) {
		ps.line = dsn_line_at(buf, DSN_TPL_MAX);
		return dsn_perr(&ps, "file larger than 65536 bytes", NULL);
	}
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) { /* a UTF-8 BOM some editors add */
		buf += 3;
		len -= 3;
	}
	ret = dsn_compile(&ps, buf, len, &subj, &text, &subj_set, &text_set);
	dsn_buf_free(&ps.lit);
	free(ps.seg);
	if (ret) {
		dsn_part_free(&subj);
		dsn_part_free(&text);
		return ret;
	}
	k = &t->k[kind];
	if (subj_set) {
		dsn_part_free(&k->subject);
		k->subject = subj;
	} else {
		dsn_part_free(&subj);
	}
	if (text_set) {
		dsn_part_free(&k->text);
		k->text = text;
	} else {
		dsn_part_free(&text);
	}
	return 0;
}

/* Read path (a regular file) into a new buffer of at most DSN_TPL_MAX + 1 bytes. */
static int dsn_read_file(const char *path, char **buf, size_t *len)
{
	struct stat st;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	*buf = NULL;
	*len = 0;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL; /* a directory, FIFO or device is no template */
		goto out;
	}
	if ((*buf = malloc(DSN_TPL_MAX + 1)) == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	while (*len < DSN_TPL_MAX + 1) {
		r = read(fd, *buf + *len, DSN_TPL_MAX + 1 - *len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ret = r < 0 ? -errno : 0;
			break;
		}
		*len += (size_t)r;
	}
out:
	close(fd);
	return ret;
}

/* Load the three files of dir into t (a missing file keeps t's template of that kind). */
static int dsn_load_dir(struct dsn_templates *t, const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX], *buf;
	struct stat st;
	size_t len;
	int ret;

	if (stat(dir, &st) != 0) {
		ret = -errno;
		goto fail_dir;
	}
	if (!S_ISDIR(st.st_mode)) {
		ret = -ENOTDIR;
		goto fail_dir;
	}
	for (int k = DSN_FAILURE; k <= DSN_RELAYED; k++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, dsn_tpl_file[k]) >=
		    sizeof(path)) {
			ret = -ENAMETOOLONG;
			goto fail_dir;
		}
		ret = dsn_read_file(path, &buf, &len);
		if (ret == 0)
			ret = dsn_templates_parse(t, (enum dsn_kind)k, path, buf, len, err, errlen);
		else if (ret != -ENOENT && errlen)
			snprintf(err, errlen, "%s: %s", path,
				 ret == -EINVAL ? "not a regular file" : strerror(-ret));
		free(buf);
		if (ret && ret != -ENOENT)
			return ret;
	}
	return 0;
fail_dir:
	if (errlen)
		snprintf(err, errlen, "%s: %s", dir, strerror(-ret));
	return ret;
}

/* dsn_templates_load: see dsn.h. */
int dsn_templates_load(const char *dir, struct dsn_templates **out, char *err, size_t errlen)
{
	struct dsn_templates *t = calloc(1, sizeof(*t));
	int ret = 0;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (!t)
		return -ENOMEM;
	for (int k = DSN_FAILURE; k <= DSN_RELAYED && !ret; k++)
		ret = dsn_templates_parse(t, (enum dsn_kind)k, "built-in", dsn_tpl_default[k],
					  strlen(dsn_tpl_default[k]), err, errlen);
	if (!ret && dir && *dir)
		ret = dsn_load_dir(t, dir, err, errlen);
	if (ret) {
		dsn_templates_free(t);
		return ret;
	}
	*out = t;
	return 0;
}

/* dsn_templates_free: see dsn.h. */
void dsn_templates_free(struct dsn_templates *t)
{
	if (!t)
		return;
	for (int k = DSN_FAILURE; k <= DSN_RELAYED; k++) {
		dsn_part_free(&t->k[k].subject);
		dsn_part_free(&t->k[k].text);
	}
	free(t);
}

/* dsn_render: see dsn_int.h. */
void dsn_render(const struct dsn_part *p, const struct dsn_ctx *c, struct dsn_buf *out)
{
	for (unsigned i = 0; i < p->n; i++) {
		const struct dsn_seg *s = &p->seg[i];

		if (s->ph == DSN_PH_LIT)
			dsn_buf_put(out, p->lit + s->off, s->len);
		else
			dsn_ph_put(c, (enum dsn_ph)s->ph, out);
	}
}
