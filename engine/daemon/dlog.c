/* dlog — buffered, per-thread delivery log lines (see dlog.h).
 *
 * Each buffer has two halves: lines go into the current one while the other may be in an
 * io_uring write. A flush hands the current half to the ring and swaps. Only when a half fills
 * up while the other is still being written does the shard write synchronously (rare; it keeps
 * lines from being dropped). */
#include "engine/daemon/dlog.h"
#include "engine/util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#define DLOG_BUF  (64u * 1024u)
#define DLOG_LINE 2048u

struct dlog {
	int fd; /* private: a dup of stderr or the log file */
};

struct dlog_buf {
	struct dlog *d;
	struct loop *loop; /* NULL: flush with write(2) */
	time_t stamp_sec;  /* second that stamp[] holds, formatted once per second */
	char stamp[24];
	bool inflight; /* `spare` is being written by the ring */
	size_t spare_len;
	struct loop_op op;
	char *data; /* current half */
	char *spare;
	size_t len;
	char halves[2][DLOG_BUF];
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

static void dlog_write_done(struct loop_op *op, int res, uint32_t flags)
{
	struct dlog_buf *b = op->owner;

	(void)flags;
	b->inflight = false;
	if (res >= 0 && (size_t)res < b->spare_len) /* short write (disk full...): finish it */
		dlog_write_all(b->d->fd, b->spare + res, b->spare_len - (size_t)res);
	else if (res < 0)
		fprintf(stderr, "riptide: delivery log write failed: %s\n", strerror(-res));
}

struct dlog_buf *dlog_buf_new(struct dlog *d, struct loop *l)
{
	struct dlog_buf *b = util_xmalloc(sizeof(*b));

	b->d = d;
	b->loop = l;
	b->len = 0;
	b->stamp_sec = -1;
	b->inflight = false;
	b->data = b->halves[0];
	b->spare = b->halves[1];
	b->op = (struct loop_op){.cb = dlog_write_done, .owner = b};
	return b;
}

void dlog_buf_free(struct dlog_buf *b)
{
	if (!b)
		return;
	BUG_ON(b->inflight);
	dlog_write_all(b->d->fd, b->data, b->len);
	free(b);
}

bool dlog_busy(const struct dlog_buf *b)
{
	return b->inflight;
}

void dlog_flush(struct dlog_buf *b)
{
	struct io_uring_sqe *sqe;
	char *t;

	if (b->len == 0 || b->inflight)
		return;
	if (!b->loop) {
		dlog_write_all(b->d->fd, b->data, b->len);
		b->len = 0;
		return;
	}
	t = b->spare;
	b->spare = b->data;
	b->data = t;
	b->spare_len = b->len;
	b->len = 0;
	b->inflight = true;
	sqe = loop_get_sqe(b->loop);
	io_uring_prep_write(sqe, b->d->fd, b->spare, (unsigned)b->spare_len, (uint64_t)-1);
	loop_sqe_op(sqe, &b->op);
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

void dlog_line(struct dlog_buf *b, const char *id, const char *fmt, ...)
{
	char *p;
	size_t n;
	va_list ap;
	int w;

	if (b->len + DLOG_LINE > DLOG_BUF) {
		if (b->inflight) { /* both halves full: write this one here, synchronously */
			dlog_write_all(b->d->fd, b->data, b->len);
			b->len = 0;
		} else {
			dlog_flush(b);
		}
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
