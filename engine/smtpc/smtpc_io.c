/* smtpc_io — socket I/O of an SMTP client session: connect, gathered sends, receive, shutdown.
 *
 * Why this shape: at most one connect, one send and one recv are in flight per session, each
 * with a linked timeout chosen from the current state, and the session is freed only when all of
 * them (plus a final NOP) have completed, so a completion never touches freed memory.
 * Output is one sendmsg gathering the pending command bytes and the body. The body is never
 * copied: dot-stuffing is done by cutting the body into segments that end just after a '.'
 * starting a line and starting the next segment at that same '.', so the kernel sends it twice.
 * A short send only advances the cursor; the next sendmsg is rebuilt from it.
 * A configured source address is bound (port 0) right after socket(); a failed bind takes the
 * connect's place as a NOP so it is reported from the loop, exactly like a failed connect.
 */
#include "engine/smtpc/smtpc_types.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *smtpc_errstr(int res)
{
	const char *e = strerrordesc_np(-res);

	return e ? e : "I/O error";
}

/* The close reason for a failed xport op: its TLS error, the peer's close (res 0), the given
 * text for a timeout, else the errno's description. */
static const char *smtpc_xport_err(struct smtpc *s, long res, const char *timeout_text)
{
	if (res == -EPROTO && xport_error(s->x)[0]) {
		snprintf(s->tls_err, sizeof(s->tls_err), "TLS error: %s", xport_error(s->x));
		return s->tls_err;
	}
	if (res == 0)
		return "connection closed by peer";
	if (res == -ETIMEDOUT)
		return timeout_text;
	return smtpc_errstr((int)res);
}

/* ---- output buffer ---- */

static void smtpc_out_reserve(struct smtpc *s, size_t n)
{
	size_t cap;
	char *nb;

	if (!s->send_busy && s->osent == s->olen)
		s->olen = s->osent = 0;
	if (s->olen + n <= s->ocap)
		return;
	cap = s->ocap ? s->ocap : 512;
	while (cap < s->olen + n)
		cap *= 2;
	if (!s->send_busy || s->obuf_old) {
		s->obuf = util_xrealloc(s->obuf, cap);
	} else {
		/* the in-flight sendmsg still reads the old buffer: keep it until it completes */
		nb = util_xmalloc(cap);
		memcpy(nb, s->obuf, s->olen);
		s->obuf_old = s->obuf;
		s->obuf = nb;
	}
	s->ocap = cap;
}

static void smtpc_out_trace(struct smtpc *s, const char *p, size_t n)
{
	if (!s->ops->trace)
		return;
	while (n >= 2 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	smtpc_trace(s, ">>> %.*s", (int)n, p);
}

/* smtpc_io_line_ok: p[0..n) is exactly one command line: it ends in CRLF and holds no other CR
 * or LF, no NUL and no other control byte (< 0x20, 0x7f). */
bool smtpc_io_line_ok(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;

	if (n < 2 || u[n - 2] != '\r' || u[n - 1] != '\n')
		return false;
	for (size_t i = 0; i < n - 2; i++)
		if (u[i] < 0x20 || u[i] == 0x7f)
			return false;
	return true;
}

/* A command line that fails smtpc_io_line_ok is never queued: the session closes at once with
 * this error (the running transaction, if any, gets it as its err). smtpc_txn_valid and the
 * config check refuse such input earlier, so this is a second line of defence. */
static const char smtpc_err_ctl[] = "refused to send a command line with a control byte";

/* smtpc_io_out: queue n command bytes (one complete CRLF-terminated line) for sending; call
 * smtpc_io_kick to send. A line failing smtpc_io_line_ok closes the session instead (see
 * smtpc_err_ctl); nothing is queued on a closing session. */
void smtpc_io_out(struct smtpc *s, const char *p, size_t n)
{
	if (s->closing)
		return;
	if (!smtpc_io_line_ok(p, n)) {
		smtpc_close(s, smtpc_err_ctl, NULL);
		return;
	}
	smtpc_out_reserve(s, n);
	memcpy(s->obuf + s->olen, p, n);
	s->olen += n;
	smtpc_out_trace(s, p, n);
}

/* smtpc_io_outf: printf-style smtpc_io_out (same check: a bad line is dropped and closes). */
void smtpc_io_outf(struct smtpc *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->closing)
		return;
	smtpc_out_reserve(s, 256);
	va_start(ap, fmt);
	n = vsnprintf(s->obuf + s->olen, s->ocap - s->olen, fmt, ap);
	va_end(ap);
	BUG_ON(n < 0);
	if ((size_t)n >= s->ocap - s->olen) {
		smtpc_out_reserve(s, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(s->obuf + s->olen, s->ocap - s->olen, fmt, ap);
		va_end(ap);
	}
	if (!smtpc_io_line_ok(s->obuf + s->olen, (size_t)n)) {
		smtpc_close(s, smtpc_err_ctl, NULL);
		return;
	}
	smtpc_out_trace(s, s->obuf + s->olen, (size_t)n);
	s->olen += (size_t)n;
}

/* ---- body stream ---- */

/* smtpc_seg_end: end of the body segment starting at pos. *dot is set when the segment ends
 * just after a '.' that starts a line (that '.' then also starts the next segment; `dup` says
 * we are at such a second copy, so the search starts one byte later). */
static size_t smtpc_seg_end(const struct smtpc *s, size_t pos, bool dup, bool *dot)
{
	size_t from = pos + (dup ? 1 : 0);
	const char *p;

	*dot = false;
	if (!s->stuff || from >= s->blen)
		return s->blen;
	if (from == 0 && s->body[0] == '.') {
		*dot = true;
		return 1;
	}
	if (from == 0)
		from = 1;
	/* Dots are rare in mail: memchr (vectorised) for '.' and check the byte before, rather than
	 * memmem for "\n." (a byte loop in glibc for 2-byte needles). */
	for (p = s->body + from; (p = memchr(p, '.', s->blen - (size_t)(p - s->body))); p++) {
		if (p[-1] == '\n') {
			*dot = true;
			return (size_t)(p - s->body) + 1;
		}
	}
	return s->blen;
}

/* smtpc_io_body: start streaming body (dot-stuffed) followed by the DATA terminator. The body
 * must stay valid until the stream is done or the session is closed. */
void smtpc_io_body(struct smtpc *s, const char *body, size_t len)
{
	s->body = body;
	s->blen = len;
	s->bpos = 0;
	s->bdup = false;
	s->stuff = len && smtp_dot_stuff_needed(body, len);
	s->term = smtp_data_end(body, len);
	s->tlen = strlen(s->term);
	s->tpos = 0;
	s->body_active = true;
	s->dot_sent = false;
}

static unsigned smtpc_body_iov(struct smtpc *s, unsigned n)
{
	size_t pos = s->bpos, end;
	bool dup = s->bdup, dot;

	while (n < SMTPC_IOV && pos < s->blen) {
		end = smtpc_seg_end(s, pos, dup, &dot);
		s->iov[n].iov_base = (void *)(s->body + pos);
		s->iov[n++].iov_len = end - pos;
		pos = dot ? end - 1 : end;
		dup = dot;
	}
	if (pos >= s->blen && n < SMTPC_IOV) {
		s->iov[n].iov_base = (void *)(s->term + s->tpos);
		s->iov[n++].iov_len = s->tlen - s->tpos;
	}
	return n;
}

static void smtpc_body_advance(struct smtpc *s, size_t n)
{
	size_t end, seg;
	bool dot;

	while (n && s->bpos < s->blen) {
		end = smtpc_seg_end(s, s->bpos, s->bdup, &dot);
		seg = end - s->bpos;
		if (n < seg) {
			s->bpos += n;
			s->bdup = false;
			return;
		}
		n -= seg;
		s->bpos = dot ? end - 1 : end;
		s->bdup = dot;
	}
	s->tpos += n;
	BUG_ON(s->tpos > s->tlen);
	if (s->bpos >= s->blen && s->tpos == s->tlen) {
		s->body_active = false;
		s->dot_sent = true;
	}
}

static void smtpc_out_advance(struct smtpc *s, size_t n)
{
	size_t k = s->olen - s->osent;

	if (k > n)
		k = n;
	s->osent += k;
	n -= k;
	if (s->osent == s->olen)
		s->olen = s->osent = 0;
	if (s->body_active)
		smtpc_body_advance(s, n);
	else
		BUG_ON(n != 0);
}

/* ---- completions ---- */

static void smtpc_conn_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct smtpc *s = op->owner;

	s->inflight--;
	s->conn_busy = false;
	if (s->closing) {
		smtpc_op_done(s);
		return;
	}
	if (s->bind_failed) {
		smtpc_close(s, s->bind_err, NULL);
		return;
	}
	if (res < 0) {
		smtpc_close(s, res == -ECANCELED ? "connect timeout" : smtpc_errstr(res), NULL);
		return;
	}
	smtpc_tls_connected(s);
}

static void smtpc_send_done(void *user, long res)
{
	struct smtpc *s = user;

	s->inflight--;
	s->send_busy = false;
	free(s->obuf_old);
	s->obuf_old = NULL;
	if (res > 0)
		smtpc_out_advance(s, (size_t)res);
	if (s->report_pending)
		smtpc_report_pending(s);
	if (s->closing) {
		smtpc_op_done(s);
		return;
	}
	if (res <= 0) {
		smtpc_close(s, smtpc_xport_err(s, res, "timeout sending"), NULL);
		return;
	}
	smtpc_io_kick(s);
	if (!s->send_busy)
		smtpc_tls_send_idle(s);
}

static void smtpc_recv_timeout(struct smtpc *s)
{
	if (s->recv_state != s->state) {
		/* armed for an earlier state (idle wait before smtpc_send): not this state's
		 * deadline; wait again with the right one */
		smtpc_io_recv(s);
		return;
	}
	if (s->state == SMTPC_S_READY) {
		smtpc_trace(s, "idle timeout");
		smtpc_enter(s, SMTPC_S_QUIT);
		smtpc_io_recv(s);
		return;
	}
	if (s->state == SMTPC_S_QUIT) {
		smtpc_close(s, s->quit_err, NULL);
		return;
	}
	smtpc_close(s, smtpc_state_timeout_err(s->state), NULL);
}

static void smtpc_recv_done(void *user, long res)
{
	struct smtpc *s = user;

	s->inflight--;
	s->recv_busy = false;
	if (s->closing) {
		smtpc_op_done(s);
		return;
	}
	if (res == -ETIMEDOUT) {
		smtpc_recv_timeout(s);
		return;
	}
	if (res <= 0) {
		if (res == 0 && s->state == SMTPC_S_QUIT)
			smtpc_close(s, s->quit_err, NULL);
		else
			smtpc_close(s, smtpc_xport_err(s, res, "timeout"), NULL);
		return;
	}
	s->rlen += (size_t)res;
	smtpc_on_input(s);
	smtpc_io_recv(s);
}

static void smtpc_fin_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct smtpc *s = op->owner;

	s->inflight--;
	smtpc_op_done(s);
}

static const struct xport_ops smtpc_xops = {
    .recv_done = smtpc_recv_done, .send_done = smtpc_send_done, .tls_done = smtpc_tls_done};

/* ---- submissions ---- */

/* Bind the socket to s->source with port 0. IP_BIND_ADDRESS_NO_PORT defers the choice of the
 * port to connect(), where the kernel can reuse a port toward different destinations, so many
 * sessions from one source address do not run out of ports at bind time. On failure
 * s->bind_err says why. Returns 0 or -errno from bind(). */
static int smtpc_io_bind(struct smtpc *s)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&s->source.ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&s->source.ss;
	bool v6 = s->source.family == AF_INET6;
	char host[INET6_ADDRSTRLEN] = "?";
	socklen_t len = v6 ? sizeof(*s6) : sizeof(*s4);
	int one = 1, err;

	if (v6)
		s6->sin6_port = 0;
	else
		s4->sin_port = 0;
	(void)setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(s->fd, (struct sockaddr *)&s->source.ss, len) == 0)
		return 0;
	err = errno;
	inet_ntop(s->source.family, v6 ? (void *)&s6->sin6_addr : (void *)&s4->sin_addr, host,
		  sizeof(host));
	snprintf(s->bind_err, sizeof(s->bind_err), "cannot bind source address %s: %s", host,
		 smtpc_errstr(-err));
	return -err;
}

/* smtpc_io_connect: create the non-blocking socket, bind it to the source address if one is
 * set, and submit the connect (with the connect timeout). If the bind fails, a NOP takes the
 * connect's place so the failure is reported from the loop, like a failed connect. Returns 0
 * or -errno from socket(). */
int smtpc_io_connect(struct smtpc *s)
{
	struct io_uring_sqe *sqe;
	int one = 1;

	s->op_conn = (struct loop_op){.cb = smtpc_conn_cb, .owner = s};
	s->op_fin = (struct loop_op){.cb = smtpc_fin_cb, .owner = s};
	s->fd = socket(s->addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;
	s->x = xport_new(s->loop, s->fd, &smtpc_xops, s);
	if (s->addr.family != AF_UNIX)
		(void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (s->source.family != AF_UNSPEC && smtpc_io_bind(s) < 0)
		s->bind_failed = true;
	loop_reserve(s->loop, 2);
	sqe = loop_get_sqe(s->loop);
	if (s->bind_failed) {
		io_uring_prep_nop(sqe);
		loop_sqe_op(sqe, &s->op_conn);
	} else {
		io_uring_prep_connect(sqe, s->fd, (struct sockaddr *)&s->addr.ss, s->addr.len);
		loop_sqe_op(sqe, &s->op_conn);
		loop_link_timeout(s->loop, sqe, &s->op_conn.ts, s->tmo.connect_ms);
	}
	s->conn_busy = true;
	s->inflight++;
	return 0;
}

/* smtpc_io_kick: if no send is in flight and output is pending (command bytes, body, dot),
 * submit one sendmsg gathering as much of it as fits in the iovec array. */
void smtpc_io_kick(struct smtpc *s)
{
	unsigned n = 0;
	uint32_t ms;

	if (s->send_busy || s->closing || s->tls_hs)
		return;
	if (s->osent < s->olen) {
		s->iov[n].iov_base = s->obuf + s->osent;
		s->iov[n++].iov_len = s->olen - s->osent;
	}
	if (s->body_active)
		n = smtpc_body_iov(s, n);
	if (!n)
		return;
	ms = s->body_active ? s->tmo.data_block_ms : smtpc_state_timeout(s, s->state);
	BUG_ON(xport_send(s->x, s->iov, n, ms) < 0);
	s->send_busy = true;
	s->inflight++;
}

/* smtpc_io_recv: if no recv is in flight, submit one into the free part of the receive buffer
 * with the current state's timeout (growing the buffer, up to SMTPC_RBUF_MAX, when a reply
 * does not fit). */
void smtpc_io_recv(struct smtpc *s)
{
	if (s->recv_busy || s->closing || s->tls_hs || s->tls_start)
		return;
	if (s->rlen == s->rcap) {
		if (s->rcap >= SMTPC_RBUF_MAX) {
			smtpc_close(s, "protocol error: reply too long", NULL);
			return;
		}
		s->rcap = s->rcap ? s->rcap * 2 : SMTPC_RBUF_MIN;
		s->rbuf = util_xrealloc(s->rbuf, s->rcap);
	}
	BUG_ON(xport_recv(s->x, s->rbuf + s->rlen, s->rcap - s->rlen,
			  smtpc_state_timeout(s, s->state)) < 0);
	s->recv_state = s->state;
	s->recv_busy = true;
	s->inflight++;
}

/* smtpc_io_shutdown: cancel every in-flight op and submit the final NOP; the session is freed
 * (smtpc_op_done) when the last of them completes. Call once, with s->closing set. */
void smtpc_io_shutdown(struct smtpc *s)
{
	struct io_uring_sqe *sqe;

	if (s->conn_busy)
		loop_cancel(s->loop, &s->op_conn);
	if (s->x)
		xport_cancel(s->x); /* the running recv/send/TLS start report -ECANCELED */
	if (s->fd >= 0 && !s->conn_busy)
		(void)shutdown(s->fd, SHUT_RDWR);
	sqe = loop_get_sqe(s->loop);
	io_uring_prep_nop(sqe);
	loop_sqe_op(sqe, &s->op_fin);
	s->inflight++;
}
