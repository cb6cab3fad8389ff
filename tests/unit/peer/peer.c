/* peer — the scripted peer thread of the smtpd and smtpc unit tests (see peer.h).
 *
 * Why one file: both tests need the same blocking reader (lines, replies, one read, silence,
 * EOF), the same hop onto the loop thread for CALL, and the same temp-dir socket fixture; one
 * copy keeps their behaviour identical and each test file about its own module.
 */
#include "tests/unit/peer/peer.h"
#include "engine/util/util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

/* ---- reading (peer thread) ---- */

/* End of the first n lines in b (of n replies: only lines "ddd ..." count), or 0. */
static size_t units_end(const char *b, size_t len, unsigned n, bool replies)
{
	size_t i = 0, next;
	const char *lf;

	while (n && i < len && (lf = memchr(b + i, '\n', len - i))) {
		next = (size_t)(lf - b) + 1;
		if (!replies || (next - i >= 4 && b[i + 3] == ' '))
			n--;
		i = next;
	}
	return n ? 0 : i;
}

/* Return the first n buffered bytes as a string; keep what follows. */
static char *take(struct peer *p, size_t n)
{
	char *out = util_xstrndup(p->buf, n);

	memmove(p->buf, p->buf + n, p->blen - n);
	p->blen -= n;
	return out;
}

/* One read() into the buffer: >0 bytes read, 0 at EOF or full, -errno on error. */
static ssize_t read_more(struct peer *p, int fd)
{
	ssize_t r = read(fd, p->buf + p->blen, PEER_BUF - p->blen);

	if (r < 0)
		return -errno;
	p->blen += (size_t)r;
	return r;
}

static char *read_units(struct peer *p, int fd, unsigned n, bool replies)
{
	size_t end;

	while (!(end = units_end(p->buf, p->blen, n, replies)) && p->blen < PEER_BUF &&
	       read_more(p, fd) > 0)
		;
	return take(p, end ? end : p->blen);
}

static char *read_once(struct peer *p, int fd)
{
	if (!p->blen)
		read_more(p, fd);
	return take(p, p->blen);
}

static char *read_quiet(struct peer *p, int fd, unsigned ms)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};

	if (!p->blen && poll(&pf, 1, (int)ms) > 0)
		read_more(p, fd);
	return take(p, p->blen);
}

static char *read_eof(struct peer *p, int fd)
{
	ssize_t r = 0;

	while (p->blen < PEER_BUF && (r = read_more(p, fd)) > 0)
		;
	if (r < 0) /* e.g. ECONNRESET: the other side closed with our input unread */
		p->blen += (size_t)snprintf(p->buf + p->blen, PEER_BUF - p->blen, "<%s>",
					    strerror((int)-r));
	return take(p, p->blen);
}

/* ---- acting (peer thread) ---- */

static void write_all(int fd, const char *s, size_t n)
{
	ssize_t r;

	while (n && (r = write(fd, s, n)) > 0) {
		s += r;
		n -= (size_t)r;
	}
}

/* One byte every ms milliseconds until all is sent or fd becomes readable (or hung up). */
static void trickle(int fd, const char *s, unsigned ms)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};

	for (; *s; s++) {
		if (write(fd, s, 1) != 1 || poll(&pf, 1, (int)ms) != 0)
			return;
	}
}

static void call_msg_fn(struct loop *l, struct loop_msg *m)
{
	struct peer *p = container_of(m, struct peer, call_msg);

	p->call_fn(p->user);
	atomic_store(&p->call_done, true);
}

/* Run fn on the loop thread; wait for it so the next step sees its effect. */
static void peer_call(struct peer *p, void (*fn)(void *user))
{
	atomic_store(&p->call_done, false);
	p->call_fn = fn;
	p->call_msg.fn = call_msg_fn;
	loop_post(p->l, &p->call_msg);
	while (!atomic_load(&p->call_done))
		usleep(1000);
}

static char *peer_wait(struct peer *p, const struct peer_step *st)
{
	const char *r;

	for (unsigned ms = 0; ms < PEER_WAIT_MS && !st->until(p->user); ms++)
		usleep(1000);
	r = st->until(p->user) ? st->data : "timed out";
	return util_xstrndup(r, strlen(r));
}

/* Play one step; return what it read (NULL for steps that read nothing). */
static char *peer_step(struct peer *p, int *fd, const struct peer_step *st)
{
	switch (st->kind) {
	case PEER_SEND:
		write_all(*fd, st->data, st->n ? st->n : strlen(st->data));
		return NULL;
	case PEER_LINES:
	case PEER_REPLIES:
		return read_units(p, *fd, st->n, st->kind == PEER_REPLIES);
	case PEER_ONCE:
		return read_once(p, *fd);
	case PEER_QUIET:
		return read_quiet(p, *fd, st->n);
	case PEER_EOF:
		return read_eof(p, *fd);
	case PEER_CLOSE:
		close(*fd);
		*fd = -1;
		return NULL;
	case PEER_CALL:
		peer_call(p, st->fn);
		return NULL;
	case PEER_WAIT:
		return peer_wait(p, st);
	case PEER_TRICKLE:
		trickle(*fd, st->data, st->n);
		return NULL;
	case PEER_END:
		break;
	}
	return NULL;
}

/* TCP to tcp_to, bound to tcp_from first when it is set; the fd or -1. */
static int peer_connect_tcp(const struct peer *p)
{
	struct sockaddr_storage from = {0};
	struct sockaddr_in *f4 = (struct sockaddr_in *)&from;
	struct sockaddr_in6 *f6 = (struct sockaddr_in6 *)&from;
	int fam = p->tcp_to.ss_family, fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool bind_ok = true;

	if (fd >= 0 && p->tcp_from[0]) {
		from.ss_family = (sa_family_t)fam;
		bind_ok = fam == AF_INET ? inet_pton(AF_INET, p->tcp_from, &f4->sin_addr) == 1
					 : inet_pton(AF_INET6, p->tcp_from, &f6->sin6_addr) == 1;
		bind_ok = bind_ok && bind(fd, (struct sockaddr *)&from, sizeof(from)) == 0;
	}
	if (fd >= 0 && (!bind_ok || connect(fd, (struct sockaddr *)&p->tcp_to, p->tcp_len) < 0)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int peer_connect(const struct peer *p)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (p->tcp_len)
		return peer_connect_tcp(p);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p->path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void end_msg_fn(struct loop *l, struct loop_msg *m)
{
	struct peer *p = container_of(m, struct peer, end_msg);

	p->on_end(p->user);
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	int fd = p->lfd >= 0 ? accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC) : peer_connect(p);

	for (unsigned i = 0; fd >= 0 && p->steps[i].kind != PEER_END; i++)
		p->got[i] = peer_step(p, &fd, &p->steps[i]);
	if (fd >= 0)
		close(fd);
	if (p->on_end) {
		p->end_msg.fn = end_msg_fn;
		loop_post(p->l, &p->end_msg);
	}
	return NULL;
}

/* ---- the test thread ---- */

/* peer_init: alarm(20), temp dir, socket path; 0 or -errno (contract in peer.h). */
int peer_init(struct peer *p, const char *tag, const char *sock)
{
	alarm(20);
	p->lfd = -1;
	p->tcp_len = 0;
	p->tcp_from[0] = '\0';
	p->buf = util_xmalloc(PEER_BUF);
	snprintf(p->dir, sizeof(p->dir), "/tmp/rt-%s-XXXXXX", tag);
	if (!mkdtemp(p->dir)) {
		p->dir[0] = '\0';
		return -errno;
	}
	snprintf(p->path, sizeof(p->path), "%s/%s", p->dir, sock);
	return 0;
}

/* peer_listen: bind + listen on path so the thread accepts; 0 or -errno. */
int peer_listen(struct peer *p)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p->path);
	p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(p->lfd, 4) < 0)
		return -errno;
	return 0;
}

/* peer_tcp: connect over TCP to `to` from `from` (NULL: any) instead of the UNIX path. */
void peer_tcp(struct peer *p, const struct sockaddr *to, socklen_t len, const char *from)
{
	BUG_ON(len > sizeof(p->tcp_to));
	memcpy(&p->tcp_to, to, len);
	p->tcp_len = len;
	snprintf(p->tcp_from, sizeof(p->tcp_from), "%s", from ? from : "");
}

/* peer_addr: "unix:<path>" into buf, always NUL-terminated. */
void peer_addr(const struct peer *p, char *buf, size_t len)
{
	snprintf(buf, len, "unix:%s", p->path);
}

/* peer_start: check the script fits got[], then start the thread; 0 or -errno. */
int peer_start(struct peer *p, struct loop *l, const struct peer_step *steps, void *user,
	       void (*on_end)(void *user))
{
	unsigned n = 0;

	while (steps[n].kind != PEER_END)
		n++;
	if (n > PEER_MAX_STEPS)
		return -E2BIG;
	p->l = l;
	p->steps = steps;
	p->user = user;
	p->on_end = on_end;
	return -pthread_create(&p->thread, NULL, peer_main, p);
}

/* peer_join: wait for the thread; 0 or -errno. */
int peer_join(struct peer *p)
{
	return -pthread_join(p->thread, NULL);
}

/* peer_check: cmocka-assert every reading step read exactly its wanted text. */
void peer_check(const struct peer *p)
{
	for (unsigned i = 0; p->steps[i].kind != PEER_END; i++) {
		enum peer_kind k = p->steps[i].kind;

		if (k == PEER_SEND || k == PEER_CLOSE || k == PEER_CALL || k == PEER_TRICKLE)
			continue;
		assert_non_null(p->got[i]);
		assert_string_equal(p->got[i], p->steps[i].data);
	}
}

/* peer_fini: free, close, remove the socket and dir, disarm the alarm; idempotent. */
void peer_fini(struct peer *p)
{
	for (unsigned i = 0; i < PEER_MAX_STEPS; i++) {
		free(p->got[i]);
		p->got[i] = NULL;
	}
	free(p->buf);
	p->buf = NULL;
	if (p->lfd >= 0)
		close(p->lfd);
	p->lfd = -1;
	if (p->dir[0]) {
		unlink(p->path);
		rmdir(p->dir);
	}
	alarm(0);
}

/* peer_logf: append printf-style text to log (capacity cap), truncating. */
void peer_logf(char *log, size_t cap, const char *fmt, ...)
{
	size_t n = strlen(log);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(log + n, cap - n, fmt, ap);
	va_end(ap);
}
