/* dlog — buffered, per-thread delivery log lines (see dlog.h).
 *
 * Each buffer has two halves: lines go into the current one while the other may be in an
 * io_uring write. A flush hands the current half to the ring and swaps. A shard never blocks on
 * the disk: when the current half fills up while the other is still being written (a slow or
 * full log disk), the current half grows, up to DLOG_MAX; beyond that, lines are dropped and
 * counted, and the count is logged as soon as there is room again. A short write is finished by
 * another io_uring write; a failed one (log disk full) drops that half's lines and counts them. */
#include "engine/daemon/dlog.h"
#include "engine/util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#define DLOG_BUF  (64u * 1024u)		/* initial size of each half */
#define DLOG_MAX  (16u * 1024u * 1024u) /* a half never grows beyond this */
#define DLOG_LINE 2048u

struct dlog {
	int fd; /* private: a dup of stderr or the log file */
};

struct dlog_buf {
	struct dlog *d;
	struct loop *loop; /* NULL: flush with write(2) */
	time_t stamp_sec;  /* second that stamp[] holds, formatted once per second */
	char stamp[24];
	bool inflight;		     /* `spare` is being written by the ring */
	size_t spare_len, spare_off; /* bytes to write, bytes written */
	size_t spare_cap;
	struct loop_op op;
	char *data; /* current half */
	char *spare;
	size_t len, cap;
	uint64_t dropped; /* lines dropped since the last report */
};

static int dlog_target(const char *where)
{
	if (!where || !*where || strcmp(where, "stderr") == 0)
		return fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	return open(where, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int dlog_open(const char *where, struct dlog **out)
{
	struct dlog *d = util_xcalloc(1, sizeof(*d));

	d->fd = dlog_target(where); /* always a private descriptor, so reopen can dup2 onto it */
	if (d->fd < 0) {
		int e = errno;
		free(d);
		return -e;
	}
	*out = d;
	return 0;
}

int dlog_reopen(struct dlog *d, const char *where)
{
	int fd = dlog_target(where), ret = 0;

	if (fd < 0)
		return -errno;
	/* dup2 swaps the file behind the same number atomically; writes already submitted keep
	 * their reference to the old file */
	if (dup3(fd, d->fd, O_CLOEXEC) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

void dlog_close(struct dlog *d)
{
	if (!d)
		return;
	close(d->fd);
	free(d);
}

static void dlog_write_all(int fd, const char *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* a log that cannot be written must not stop delivery */
		off += (size_t)n;
	}
}

static void dlog_submit(struct dlog_buf *b)
{
	struct io_uring_sqe *sqe = loop_get_sqe(b->loop);

	io_uring_prep_write(sqe, b->d->fd, b->spare + b->spare_off,
			    (unsigned)(b->spare_len - b->spare_off), (uint64_t)-1);
	loop_sqe_op(sqe, &b->op);
	b->inflight = true;
}

static size_t dlog_count_lines(const char *p, size_t n)
{
	size_t lines = 0;

	for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
		lines++;
	return lines;
}

static void dlog_write_done(struct loop_op *op, int res, uint32_t flags)
{
	struct dlog_buf *b = op->owner;

	(void)flags;
	b->inflight = false;
	if (res > 0 && b->spare_off + (size_t)res < b->spare_len) {
		b->spare_off += (size_t)res; /* short write: the rest, again through the ring */
		dlog_submit(b);
		return;
	}
	/* log disk full or failing: the lines are counted, and reported once writes work */
	if (res <= 0)
		b->dropped +=
		    dlog_count_lines(b->spare + b->spare_off, b->spare_len - b->spare_off);
}

struct dlog_buf *dlog_buf_new(struct dlog *d, struct loop *l)
{
	struct dlog_buf *b = util_xcalloc(1, sizeof(*b));

	b->d = d;
	b->loop = l;
	b->stamp_sec = -1;
	b->data = util_xmalloc(DLOG_BUF);
	b->spare = util_xmalloc(DLOG_BUF);
	b->cap = b->spare_cap = DLOG_BUF;
	b->op = (struct loop_op){.cb = dlog_write_done, .owner = b};
	return b;
}

void dlog_buf_free(struct dlog_buf *b)
{
	if (!b)
		return;
	BUG_ON(b->inflight);
	dlog_write_all(b->d->fd, b->data, b->len);
	free(b->data);
	free(b->spare);
	free(b);
}

bool dlog_busy(const struct dlog_buf *b)
{
	return b->inflight;
}

static void dlog_report_dropped(struct dlog_buf *b);

void dlog_flush(struct dlog_buf *b)
{
	size_t cap;
	char *t;

	if (b->inflight)
		return;
	dlog_report_dropped(b);
	if (b->len == 0)
		return;
	if (!b->loop) {
		dlog_write_all(b->d->fd, b->data, b->len);
		b->len = 0;
		return;
	}
	t = b->spare;
	b->spare = b->data;
	b->data = t;
	cap = b->spare_cap;
	b->spare_cap = b->cap;
	b->cap = cap;
	b->spare_len = b->len;
	b->spare_off = 0;
	b->len = 0;
	dlog_submit(b);
}

/* "2026-11-22T10:00:00.123Z ": the seconds part is formatted once per second per buffer. */
static size_t dlog_stamp(struct dlog_buf *b, char *out)
{
	struct timespec ts;
	struct tm tm;
	long ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != b->stamp_sec) {
		gmtime_r(&ts.tv_sec, &tm);
		strftime(b->stamp, sizeof(b->stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		b->stamp_sec = ts.tv_sec;
	}
	memcpy(out, b->stamp, 19);
	ms = ts.tv_nsec / 1000000;
	out[19] = '.';
	out[20] = (char)('0' + ms / 100);
	out[21] = (char)('0' + ms / 10 % 10);
	out[22] = (char)('0' + ms % 10);
	out[23] = 'Z';
	out[24] = ' ';
	return 25;
}

/* Lines were dropped and there is room again: say how many, once (in the current half). */
static void dlog_report_dropped(struct dlog_buf *b)
{
	char n[24];

	if (!b->dropped || b->len + DLOG_LINE > b->cap)
		return;
	snprintf(n, sizeof(n), "%llu", (unsigned long long)b->dropped);
	b->dropped = 0;
	dlog_line(b, "-", "event=log-lines-dropped count=%s (log disk too slow or full)", n);
}

/* Room for one more line in the current half: flush it if the other half is free, else grow
 * it (up to DLOG_MAX). Returns false when the line must be dropped. */
static bool dlog_room(struct dlog_buf *b)
{
	if (b->len + DLOG_LINE <= b->cap)
		return true;
	if (!b->inflight || !b->loop) {
		dlog_flush(b);
		return b->len + DLOG_LINE <= b->cap;
	}
	if (b->cap * 2 > DLOG_MAX)
		return false;
	b->cap *= 2;
	b->data = util_xrealloc(b->data, b->cap);
	return true;
}

void dlog_line(struct dlog_buf *b, const char *id, const char *fmt, ...)
{
	char *p;
	size_t n;
	va_list ap;
	int w;

	dlog_report_dropped(b); /* before the room check: the room is for this line */
	if (!dlog_room(b)) {
		b->dropped++;
		return;
	}
	p = b->data + b->len;
	n = dlog_stamp(b, p);
	n += (size_t)snprintf(p + n, DLOG_LINE - n, "%s ", id ? id : "-");
	va_start(ap, fmt);
	w = vsnprintf(p + n, DLOG_LINE - n - 1, fmt, ap);
	va_end(ap);
	if (w < 0)
		w = 0;
	n += (size_t)w < DLOG_LINE - n - 1 ? (size_t)w : DLOG_LINE - n - 2;
	p[n++] = '\n';
	b->len += n;
}

const char *dlog_quote(const char *s, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n')
			break;
		out[o++] = (c < 0x20 || c == '"' || c == 0x7f) ? '?' : (char)c;
	}
	out[o] = '\0';
	return out;
}
