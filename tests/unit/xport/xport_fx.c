/* xport_fx — see xport_fx.h.
 *
 * Why a raw peer driven by a timer rather than a thread: the misbehaviours the tests need
 * (cut a record, trickle it a byte at a time, write something and cancel in the same loop
 * turn, hang up after the ClientHello) must happen at a precise point relative to the
 * transport's own ops, which one thread running both sides makes reproducible.
 */
#include "tests/unit/xport/xport_fx.h"
#include "engine/util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct loop *fx_l;

/* ---- the loop ---- */

void fx_loop_init(void)
{
	BUG_ON(loop_new(&fx_l, 64) < 0);
}

void fx_loop_fini(void)
{
	loop_free(fx_l);
	fx_l = NULL;
}

struct loop *fx_loop(void)
{
	return fx_l;
}

struct runner {
	bool (*cond)(void *arg);
	void *arg;
	bool armed;
	struct loop_op guard;
};

static void runner_idle(struct loop *l, void *data)
{
	struct runner *r = data;

	if (r->cond && r->cond(r->arg))
		loop_stop(l);
}

static void runner_guard(struct loop_op *op, int res, uint32_t flags)
{
	struct runner *r = container_of(op, struct runner, guard);

	r->armed = false;
	loop_stop(fx_l);
}

/* fx_run: see xport_fx.h. */
bool fx_run(bool (*cond)(void *arg), void *arg, unsigned ms)
{
	struct runner r = {.cond = cond, .arg = arg, .armed = true};

	if (cond && cond(arg))
		return true;
	r.guard = (struct loop_op){.cb = runner_guard};
	loop_timer(fx_l, &r.guard, ms);
	loop_set_idle(fx_l, runner_idle, &r);
	BUG_ON(loop_run(fx_l) < 0);
	if (r.armed) {
		r.cond = NULL;
		loop_cancel(fx_l, &r.guard);
		while (r.armed)
			BUG_ON(loop_run(fx_l) < 0);
	}
	loop_set_idle(fx_l, NULL, NULL);
	return cond ? cond(arg) : true;
}

/* ---- socket pairs ---- */

int fx_socketpair(int fds[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 ? -1 : 0;
}

int fx_tcp_pair(int fds[2])
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = -1;

	fds[0] = fds[1] = -1;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
		goto out;
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, al) < 0)
		goto out;
	fds[1] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	rc = fds[1] < 0 ? -1 : 0;
out:
	if (lfd >= 0)
		close(lfd);
	return rc;
}

unsigned char *fx_random(size_t n, unsigned seed)
{
	unsigned char *p = util_xmalloc(n);

	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
	return p;
}

/* ---- sides ---- */

static void side_mark(struct side *sd)
{
	if (sd->in_call)
		sd->inside++;
	sd->done_ms = util_mono_ms();
}

static void pump_recv_next(struct side *sd)
{
	size_t cap = sd->want - sd->in_len;

	if (cap > sd->rcap)
		cap = sd->rcap;
	if (side_recv(sd, cap, 20000) < 0)
		sd->recv_pump = false;
}

static void side_recv_done(void *user, long res)
{
	struct side *sd = user;

	side_mark(sd);
	sd->n_recv++;
	sd->recv_res = res;
	if (res == -EPROTO)
		snprintf(sd->err, sizeof(sd->err), "%s", xport_error(sd->x));
	if (!sd->recv_pump)
		return;
	if (res <= 0) {
		sd->recv_pump = false;
		return;
	}
	memcpy(sd->in + sd->in_len, sd->rbuf, (size_t)res);
	sd->in_len += (size_t)res;
	if (sd->in_len >= sd->want)
		sd->recv_pump = false;
	else
		pump_recv_next(sd);
}

static void pump_send_next(struct side *sd)
{
	struct iovec iov[SIDE_IOVS];
	size_t off = sd->out_off, k;
	unsigned n = 0;
	int rc;

	sd->offered = 0;
	for (; n < SIDE_IOVS && off < sd->out_len; n++, off += k) {
		k = sd->out_len - off < sd->chunk ? sd->out_len - off : sd->chunk;
		iov[n] = (struct iovec){.iov_base = (void *)(sd->out + off), .iov_len = k};
		sd->offered += k;
	}
	sd->in_call = true;
	rc = xport_send(sd->x, iov, n, sd->send_ms);
	sd->in_call = false;
	if (rc < 0) {
		sd->send_pump = false;
		sd->send_res = rc;
	}
}

static void side_send_done(void *user, long res)
{
	struct side *sd = user;

	side_mark(sd);
	sd->n_send++;
	sd->send_res = res;
	if (!sd->send_pump)
		return;
	if (res <= 0 || (size_t)res > sd->offered) {
		sd->send_pump = false;
		return;
	}
	if ((size_t)res < sd->offered)
		sd->partial++;
	if ((size_t)res > sd->max_res)
		sd->max_res = (size_t)res;
	sd->out_off += (size_t)res;
	if (sd->out_off < sd->out_len)
		pump_send_next(sd);
	else
		sd->send_pump = false;
}

static void side_tls_done(void *user, int res)
{
	struct side *sd = user;

	side_mark(sd);
	sd->n_tls++;
	sd->tls_res = res;
	snprintf(sd->err, sizeof(sd->err), "%s", xport_error(sd->x));
	if (sd->on_tls)
		sd->on_tls(sd);
}

static const struct xport_ops side_ops = {
    .recv_done = side_recv_done, .send_done = side_send_done, .tls_done = side_tls_done};

void side_init(struct side *sd, int fd)
{
	memset(sd, 0, sizeof(*sd));
	sd->l = fx_l;
	sd->fd = fd;
	sd->x = xport_new(fx_l, fd, &side_ops, sd);
}

void side_fini(struct side *sd)
{
	xport_free(sd->x);
	sd->x = NULL;
	free(sd->in);
	sd->in = NULL;
	if (sd->fd >= 0)
		close(sd->fd);
	sd->fd = -1;
}

int side_recv(struct side *sd, size_t cap, uint64_t ms)
{
	int rc;

	BUG_ON(cap > sizeof(sd->rbuf));
	sd->in_call = true;
	rc = xport_recv(sd->x, sd->rbuf, cap, ms);
	sd->in_call = false;
	return rc;
}

int side_send(struct side *sd, const void *p, size_t n, uint64_t ms)
{
	struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
	int rc;

	sd->in_call = true;
	rc = xport_send(sd->x, &iov, 1, ms);
	sd->in_call = false;
	return rc;
}

int side_start_tls(struct side *sd, struct tls_ctx *c, const char *host, uint64_t ms)
{
	struct tls *t;
	int rc;

	BUG_ON(tls_new(c, host, NULL, &t) < 0);
	sd->in_call = true;
	rc = xport_start_tls(sd->x, t, ms);
	sd->in_call = false;
	return rc;
}

void side_pump_send(struct side *sd, const void *p, size_t n, size_t chunk, uint64_t ms)
{
	sd->out = p;
	sd->out_len = n;
	sd->out_off = 0;
	sd->chunk = chunk;
	sd->send_ms = ms;
	sd->send_pump = true;
	pump_send_next(sd);
}

void side_pump_recv(struct side *sd, size_t n, size_t rcap)
{
	free(sd->in);
	sd->in = util_xmalloc(n);
	sd->in_len = 0;
	sd->want = n;
	sd->rcap = rcap;
	sd->recv_pump = true;
	pump_recv_next(sd);
}

bool side_pumps_done(void *sides)
{
	for (struct side **s = sides; *s; s++)
		if ((*s)->send_pump || (*s)->recv_pump)
			return false;
	return true;
}

/* ---- raw TLS peer ---- */

static void rawpeer_write(struct rawpeer *p, const void *b, size_t n)
{
	const char *c = b;
	ssize_t w;

	while (n && p->fd >= 0 && (w = send(p->fd, c, n, MSG_NOSIGNAL)) > 0) {
		c += w;
		n -= (size_t)w;
	}
}

static void rawpeer_flush(struct rawpeer *p)
{
	size_t n;
	const void *o = p->t ? tls_out(p->t, &n) : NULL;

	if (!o || !n)
		return;
	if (p->hold_out) {
		BUG_ON(p->trickle + n > sizeof(p->held));
		memcpy(p->held + p->trickle, o, n);
		p->trickle += n;
	} else {
		rawpeer_write(p, o, n);
	}
	tls_out_consume(p->t, n);
}

/* Read what is there; feed it; advance the handshake; answer. */
static void rawpeer_io(struct rawpeer *p)
{
	char buf[4096];
	ssize_t n;

	while (p->fd >= 0 && !p->deaf && (n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		p->read_bytes += (size_t)n;
		if (p->t)
			BUG_ON(tls_feed(p->t, buf, (size_t)n) < 0);
	}
	if (p->hangup_after_read && p->read_bytes && p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
		return;
	}
	if (p->t && p->hs == -EAGAIN)
		p->hs = tls_handshake(p->t);
	while (p->t && p->hs == 0 && tls_read(p->t, buf, sizeof(buf)) > 0)
		; /* the transport's data is not looked at; its tickets are answered */
	rawpeer_flush(p);
	if (p->held_off < p->trickle && !p->hold_out) {
		rawpeer_write(p, p->held + p->held_off, 1);
		p->held_off++;
	}
}

static void rawpeer_tick(struct loop_op *op, int res, uint32_t flags)
{
	struct rawpeer *p = container_of(op, struct rawpeer, tick);

	p->armed = false;
	if (p->stop)
		return;
	rawpeer_io(p);
	if (p->on_tick)
		p->on_tick(p);
	if (!p->stop) {
		p->armed = true;
		loop_timer(fx_l, &p->tick, 2);
	}
}

void rawpeer_start(struct rawpeer *p, int fd, struct tls *t)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* a byte is a segment */
	p->fd = fd;
	p->t = t;
	p->hs = -EAGAIN;
	p->tick = (struct loop_op){.cb = rawpeer_tick};
	p->armed = true;
	loop_timer(fx_l, &p->tick, 1);
}

/* Encrypt n bytes into tls_out (every partial write continued). */
static void rawpeer_encrypt(struct rawpeer *p, const void *buf, size_t n)
{
	for (size_t off = 0; off < n;) {
		long w = tls_write(p->t, (const char *)buf + off, n - off);

		BUG_ON(w <= 0);
		off += (size_t)w;
	}
}

void rawpeer_hold(struct rawpeer *p, const void *buf, size_t n)
{
	const void *o;
	size_t len;

	rawpeer_encrypt(p, buf, n);
	o = tls_out(p->t, &len);
	BUG_ON(!o || p->trickle + len > sizeof(p->held));
	memcpy(p->held + p->trickle, o, len);
	p->trickle += len;
	tls_out_consume(p->t, len);
}

void rawpeer_send_now(struct rawpeer *p, const void *buf, size_t n)
{
	rawpeer_encrypt(p, buf, n);
	rawpeer_flush(p);
}

static bool rawpeer_idle(void *arg)
{
	return !((struct rawpeer *)arg)->armed;
}

void rawpeer_stop(struct rawpeer *p)
{
	p->stop = true;
	if (p->armed) {
		loop_cancel(fx_l, &p->tick);
		fx_run(rawpeer_idle, p, 5000);
	}
	tls_free(p->t);
	p->t = NULL;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}
