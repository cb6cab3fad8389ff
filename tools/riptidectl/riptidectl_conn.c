/* riptidectl_conn — the blocking SMTP client connection of riptidectl test-route.
 *
 * Why this shape: every wait is a poll() bounded by the step's deadline (connect_timeout,
 * helo_timeout, ... from the configuration), so a silent server costs exactly what it would
 * cost the daemon and is named. The socket stays non-blocking; TLS is tls/ over buffers: the
 * ciphertext read from the socket is fed to it and whatever it produces is written out, the
 * same arrangement engine/xport makes with io_uring.
 */
#include "tools/riptidectl/riptidectl_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONN_IN_MAX (32 * 1024)

struct riptidectl_conn {
	int fd;
	struct tls *tls; /* NULL: plaintext */
	size_t inlen;	 /* plaintext bytes in `in` not yet part of a reply */
	char in[CONN_IN_MAX];
	char err[256];
};

double riptidectl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Wait for events on c's socket until deadline (ms, riptidectl_now_ms's clock). Returns 0,
 * -ETIMEDOUT or -errno. */
static int conn_wait(struct riptidectl_conn *c, short events, double deadline)
{
	struct pollfd p = {.fd = c->fd, .events = events};

	for (;;) {
		double left = deadline - riptidectl_now_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)left + 1);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* Write n raw bytes to the socket by deadline. Returns 0 or -errno (c->err set). */
static int conn_write_raw(struct riptidectl_conn *c, const char *p, size_t n, double deadline)
{
	while (n) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		int ret;

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			ret = -errno;
			snprintf(c->err, sizeof(c->err), "send: %s", strerror(-ret));
			return ret;
		}
		if ((ret = conn_wait(c, POLLOUT, deadline)) < 0) {
			snprintf(c->err, sizeof(c->err), "send: %s",
				 ret == -ETIMEDOUT ? "timeout" : strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Read what the socket has (waiting until deadline) into buf. Returns the count (> 0),
 * -ECONNRESET (closed), -ETIMEDOUT or -errno (c->err set). */
static ssize_t conn_read_raw(struct riptidectl_conn *c, char *buf, size_t cap, double deadline)
{
	for (;;) {
		ssize_t n = recv(c->fd, buf, cap, 0);
		int ret;

		if (n > 0)
			return n;
		if (n == 0) {
			snprintf(c->err, sizeof(c->err), "the server closed the connection");
			return -ECONNRESET;
		}
		if (errno != EAGAIN && errno != EINTR) {
			ret = -errno;
			snprintf(c->err, sizeof(c->err), "recv: %s", strerror(-ret));
			return ret;
		}
		if ((ret = conn_wait(c, POLLIN, deadline)) < 0) {
			snprintf(c->err, sizeof(c->err), "%s",
				 ret == -ETIMEDOUT ? "timeout waiting for the server"
						   : strerror(-ret));
			return ret;
		}
	}
}

/* Send everything tls/ has produced. Returns 0 or -errno. */
static int conn_flush_tls(struct riptidectl_conn *c, double deadline)
{
	size_t n;
	const void *p = tls_out(c->tls, &n);
	int ret;

	if (!p || !n)
		return 0;
	ret = conn_write_raw(c, p, n, deadline);
	if (ret == 0)
		tls_out_consume(c->tls, n);
	return ret;
}

/* Receive ciphertext and feed it to tls/. Returns 0 or a negative errno (c->err set). */
static int conn_feed_tls(struct riptidectl_conn *c, double deadline)
{
	char buf[16384];
	ssize_t n = conn_read_raw(c, buf, sizeof(buf), deadline);

	if (n < 0)
		return (int)n;
	return tls_feed(c->tls, buf, (size_t)n);
}

/* Append decrypted (or plain) bytes to c->in, waiting until deadline. Returns 0 or -errno. */
static int conn_fill(struct riptidectl_conn *c, double deadline)
{
	size_t cap = sizeof(c->in) - c->inlen;
	ssize_t n;
	int ret;

	if (!c->tls) {
		n = conn_read_raw(c, c->in + c->inlen, cap, deadline);
		if (n > 0)
			c->inlen += (size_t)n;
		return n < 0 ? (int)n : 0;
	}
	for (;;) {
		n = tls_read(c->tls, c->in + c->inlen, cap);
		if (n > 0) {
			c->inlen += (size_t)n;
			return 0;
		}
		if (n == -EPIPE || n == -EPROTO) {
			snprintf(c->err, sizeof(c->err), "%s",
				 n == -EPIPE ? "the server closed TLS (close_notify)"
					     : tls_error(c->tls));
			return n == -EPIPE ? -ECONNRESET : -EPROTO;
		}
		if (n != -EAGAIN)
			return (int)n;
		if ((ret = conn_flush_tls(c, deadline)) < 0 ||
		    (ret = conn_feed_tls(c, deadline)) < 0)
			return ret;
	}
}

/* Connect c->fd to `to` by deadline. Returns 0 or -errno (c->err set). */
static int conn_connect(struct riptidectl_conn *c, const struct util_addr *to, double deadline,
			unsigned timeout_ms)
{
	int ret = 0;
	socklen_t len = sizeof(ret);

	if (connect(c->fd, (const struct sockaddr *)&to->ss, to->len) == 0)
		return 0;
	if (errno != EINPROGRESS) {
		ret = -errno;
	} else if ((ret = conn_wait(c, POLLOUT, deadline)) == 0) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &ret, &len) < 0)
			ret = errno;
		ret = -ret;
	}
	if (ret == -ETIMEDOUT)
		snprintf(c->err, sizeof(c->err), "timeout after %u ms (connect_timeout)",
			 timeout_ms);
	else if (ret < 0)
		snprintf(c->err, sizeof(c->err), "%s", strerror(-ret));
	return ret;
}

/* Bind c->fd to src (port 0). Returns 0 or -errno (c->err set). */
static int conn_bind(struct riptidectl_conn *c, const struct util_addr *src)
{
	char text[64];
	int ret;

	if (bind(c->fd, (const struct sockaddr *)&src->ss, src->len) == 0)
		return 0;
	ret = -errno;
	util_addr_format(src, text, sizeof(text));
	snprintf(c->err, sizeof(c->err), "cannot bind source address %s: %s", text, strerror(-ret));
	return ret;
}

int riptidectl_conn_open(const struct util_addr *to, const struct util_addr *src,
			 unsigned timeout_ms, struct riptidectl_conn **out, char *err,
			 size_t errlen)
{
	struct riptidectl_conn *c = calloc(1, sizeof(*c));
	double deadline = riptidectl_now_ms() + timeout_ms;
	int ret;

	*out = NULL;
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->fd = socket(to->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		ret = -errno;
		snprintf(c->err, sizeof(c->err), "socket: %s", strerror(-ret));
	} else if (src && src->family == to->family) {
		ret = conn_bind(c, src);
	} else {
		ret = 0;
	}
	if (ret == 0)
		ret = conn_connect(c, to, deadline, timeout_ms);
	if (ret < 0) {
		snprintf(err, errlen, "%s", c->err);
		riptidectl_conn_close(c);
		return ret;
	}
	*out = c;
	return 0;
}

void riptidectl_conn_close(struct riptidectl_conn *c)
{
	if (!c)
		return;
	if (c->tls && tls_handshake_done(c->tls) && tls_shutdown(c->tls) == 0)
		(void)conn_flush_tls(c, riptidectl_now_ms() + 200);
	tls_free(c->tls);
	if (c->fd >= 0)
		close(c->fd);
	explicit_bzero(c->in, sizeof(c->in));
	free(c);
}

int riptidectl_conn_send(struct riptidectl_conn *c, const char *p, size_t n, unsigned timeout_ms)
{
	double deadline = riptidectl_now_ms() + timeout_ms;

	if (!c->tls)
		return conn_write_raw(c, p, n, deadline);
	while (n) {
		long w = tls_write(c->tls, p, n);
		int ret;

		if (w < 0) {
			snprintf(c->err, sizeof(c->err), "TLS: %s", tls_error(c->tls));
			return (int)w;
		}
		p += w;
		n -= (size_t)w;
		if ((ret = conn_flush_tls(c, deadline)) < 0)
			return ret;
	}
	return 0;
}

int riptidectl_conn_reply(struct riptidectl_conn *c, unsigned timeout_ms,
			  struct riptidectl_reply *out)
{
	double deadline = riptidectl_now_ms() + timeout_ms;
	ssize_t n;
	int ret;

	while ((n = smtp_reply_parse(c->in, c->inlen, &out->r)) == 0) {
		if (c->inlen == sizeof(c->in)) {
			n = -EBADMSG;
			break;
		}
		if ((ret = conn_fill(c, deadline)) < 0)
			return ret;
	}
	if (n < 0 || (size_t)n > sizeof(out->raw)) {
		snprintf(c->err, sizeof(c->err), "the server's answer is not an SMTP reply");
		return -EBADMSG;
	}
	memcpy(out->raw, c->in, (size_t)n);
	out->len = (size_t)n;
	memmove(c->in, c->in + n, c->inlen - (size_t)n);
	c->inlen -= (size_t)n;
	return smtp_reply_parse(out->raw, out->len, &out->r) > 0 ? 0 : -EBADMSG;
}

size_t riptidectl_conn_pending(const struct riptidectl_conn *c)
{
	return c->inlen;
}

/* Drive the handshake to its end by deadline. Returns 0 or negative errno (c->err set). */
static int conn_handshake(struct riptidectl_conn *c, double deadline)
{
	for (;;) {
		int hs = tls_handshake(c->tls), ret = conn_flush_tls(c, deadline);

		if (hs == 0)
			return ret;
		if (hs != -EAGAIN) {
			snprintf(c->err, sizeof(c->err), "%s",
				 tls_error(c->tls)[0] ? tls_error(c->tls) : strerror(-hs));
			return hs;
		}
		if (ret < 0 || (ret = conn_feed_tls(c, deadline)) < 0) {
			if (ret == -ETIMEDOUT)
				snprintf(c->err, sizeof(c->err), "timeout during the handshake");
			return ret;
		}
	}
}

int riptidectl_conn_starttls(struct riptidectl_conn *c, struct tls_ctx *ctx, const char *host,
			     unsigned timeout_ms)
{
	int ret = tls_new(ctx, host, NULL, &c->tls);

	if (ret < 0) {
		snprintf(c->err, sizeof(c->err), "cannot create a TLS connection: %s",
			 strerror(-ret));
		return ret;
	}
	return conn_handshake(c, riptidectl_now_ms() + timeout_ms);
}

bool riptidectl_conn_tls_info(const struct riptidectl_conn *c, struct tls_info *i)
{
	memset(i, 0, sizeof(*i));
	if (!c->tls || !tls_handshake_done(c->tls))
		return false;
	tls_get_info(c->tls, i);
	return true;
}

const char *riptidectl_conn_error(const struct riptidectl_conn *c)
{
	return c->err;
}
