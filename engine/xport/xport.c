/* xport — plain and TLS byte streams for SMTP sessions on an io_uring loop (see xport.h).
 *
 * Why this shape: two io_uring ops per transport, op_recv and op_send, each with a linked
 * timeout cut to the caller's deadline. Plain mode maps a call to one op. TLS mode puts tls/
 * between the caller and those ops:
 *   - receiving: ciphertext lands in `cin`, is fed to tls, and tls_read fills the caller's
 *     buffer; an incomplete record simply means another recv, under the same deadline;
 *   - sending: the caller's plaintext is encrypted at once (up to XPORT_CHUNK per call) and the
 *     ciphertext is copied into `cout`, which only this file touches while a send is in flight
 *     (tls's own output buffer may grow meanwhile: TLS 1.3 tickets, alerts); send_done reports
 *     the plaintext count once all of its ciphertext was handed to the kernel;
 *   - ciphertext that tls produces on its own (handshake, tickets) is flushed by the same op.
 * A result that is known without I/O (plaintext already decrypted, an encryption error) is
 * delivered through a NOP on the same op, so callbacks never run inside a call.
 */
#include "engine/xport/xport.h"
#include "engine/util/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define XPORT_CIN	  (17u * 1024u) /* one TLS record and its header */
#define XPORT_CHUNK	  (64u * 1024u) /* plaintext encrypted per xport_send */
#define XPORT_RECORD	  16384u	/* plaintext per TLS record (the protocol maximum) */
#define XPORT_FLUSH_MS	  300000u	/* deadline of a flush nobody waits for */
#define XPORT_EARLY_SLACK 10u		/* ms: a -ECANCELED this early was not our timeout */

struct xport {
	struct loop *l;
	int fd;
	const struct xport_ops *ops;
	void *user;
	bool dead;	   /* xport_free was called: no more callbacks */
	unsigned inflight; /* io_uring ops in flight (op_recv, op_send) */
	/* receive side: the caller's recv, or the handshake's */
	struct loop_op op_recv;
	bool recv_io;	  /* op_recv in flight */
	bool urecv;	  /* recv_done owed */
	bool recv_nop;	  /* op_recv is a NOP delivering nop_res */
	bool recv_cancel; /* xport_cancel hit the running recv/handshake */
	long nop_res;
	char *ubuf;
	size_t ucap;
	uint64_t recv_deadline;
	/* send side: the caller's send, or a flush of ciphertext tls produced */
	struct loop_op op_send;
	bool send_io;	  /* op_send in flight */
	bool usend;	  /* send_done owed */
	bool send_nop;	  /* op_send is a NOP */
	bool send_cancel; /* xport_cancel hit the running send */
	long send_res;	  /* TLS: what send_done reports (plaintext count or -errno) */
	uint64_t send_deadline;
	struct iovec iov[XPORT_IOV];
	struct msghdr msg;
	/* TLS */
	struct tls *tls;
	bool hs;     /* handshake running (tls_done owed) */
	bool tls_on; /* handshake completed */
	long broken; /* TLS: a ciphertext flush failed (-errno); later ops get it */
	char *cin;   /* ciphertext receive buffer */
	char *cout;  /* ciphertext being sent */
	char *stage; /* plaintext gathered into one record (XPORT_RECORD) */
	size_t cout_len, cout_off, cout_cap;
	char err[200];
};

static void xport_destroy(struct xport *x)
{
	tls_free(x->tls);
	free(x->cin);
	free(x->cout);
	free(x->stage);
	free(x);
}

/* Milliseconds left to deadline d, at least 1. */
static uint64_t xport_left(uint64_t d)
{
	uint64_t now = util_mono_ms();

	return d > now ? d - now : 1;
}

/* Whether a -ECANCELED arrived before deadline d, so it was meant for an earlier op. */
static bool xport_early(uint64_t d)
{
	return util_mono_ms() + XPORT_EARLY_SLACK < d;
}

/* ---- submissions ---- */

static void xport_submit_recv(struct xport *x, void *buf, size_t cap)
{
	struct io_uring_sqe *sqe;

	loop_reserve(x->l, 2);
	sqe = loop_get_sqe(x->l);
	io_uring_prep_recv(sqe, x->fd, buf, cap, 0);
	loop_sqe_op(sqe, &x->op_recv);
	loop_link_timeout(x->l, sqe, &x->op_recv.ts, xport_left(x->recv_deadline));
	x->recv_io = true;
	x->inflight++;
}

static void xport_submit_nop(struct xport *x, struct loop_op *op)
{
	struct io_uring_sqe *sqe = loop_get_sqe(x->l);

	io_uring_prep_nop(sqe);
	loop_sqe_op(sqe, op);
	x->inflight++;
	if (op == &x->op_recv)
		x->recv_io = x->recv_nop = true;
	else
		x->send_io = x->send_nop = true;
}

static void xport_submit_sendmsg(struct xport *x)
{
	struct io_uring_sqe *sqe;

	loop_reserve(x->l, 2);
	sqe = loop_get_sqe(x->l);
	io_uring_prep_sendmsg(sqe, x->fd, &x->msg, MSG_NOSIGNAL);
	loop_sqe_op(sqe, &x->op_send);
	loop_link_timeout(x->l, sqe, &x->op_send.ts, xport_left(x->send_deadline));
	x->send_io = true;
	x->inflight++;
}

/* The receive side finished with res: hand it to the caller (or the handshake's owner). */
static void xport_recv_finish(struct xport *x, long res)
{
	if (x->hs) {
		x->hs = false;
		x->ops->tls_done(x->user, res == 0 ? -ECONNRESET : (int)res);
		return;
	}
	x->urecv = false;
	x->ops->recv_done(x->user, res);
}

/* ---- TLS ciphertext output ---- */

/* Move what tls produced into cout (only when cout is drained: the kernel may be reading it). */
static bool xport_cout_refill(struct xport *x)
{
	const void *p;
	size_t n;

	if (x->cout_off < x->cout_len)
		return true;
	x->cout_off = x->cout_len = 0;
	p = tls_out(x->tls, &n);
	if (!p || !n)
		return false;
	if (n > x->cout_cap) {
		x->cout_cap = n > 2 * x->cout_cap ? n : 2 * x->cout_cap;
		x->cout = util_xrealloc(x->cout, x->cout_cap);
	}
	memcpy(x->cout, p, n);
	x->cout_len = n;
	tls_out_consume(x->tls, n);
	return true;
}

/* If no send is in flight, send the pending ciphertext. Returns whether a send is (now) in
 * flight. */
static bool xport_flush(struct xport *x)
{
	if (x->send_io)
		return true;
	if (x->broken || !x->tls || !xport_cout_refill(x))
		return false;
	if (!x->usend && !x->hs)
		x->send_deadline = util_mono_ms() + XPORT_FLUSH_MS;
	else if (x->hs)
		x->send_deadline = x->recv_deadline;
	x->iov[0].iov_base = x->cout + x->cout_off;
	x->iov[0].iov_len = x->cout_len - x->cout_off;
	memset(&x->msg, 0, sizeof(x->msg));
	x->msg.msg_iov = x->iov;
	x->msg.msg_iovlen = 1;
	xport_submit_sendmsg(x);
	return true;
}

/* ---- TLS receive side ---- */

static void xport_hs_step(struct xport *x);
static void xport_hs_done(struct xport *x, int r);

/* A user recv in TLS mode: plaintext already decrypted, else more ciphertext. Returns the
 * result to deliver, or -EINPROGRESS when a recv was submitted. */
static long xport_tls_read(struct xport *x)
{
	long n = tls_read(x->tls, x->ubuf, x->ucap);

	if (n > 0)
		return n;
	if (n == -EPIPE)
		return 0;
	if (n == -EAGAIN) {
		if (x->recv_cancel)
			return -ECANCELED; /* cancelled as a recv brought part of a record */
		xport_submit_recv(x, x->cin, XPORT_CIN);
		return -EINPROGRESS;
	}
	snprintf(x->err, sizeof(x->err), "%s", tls_error(x->tls));
	return -EPROTO;
}

/* Ciphertext arrived (res bytes in cin, or res <= 0): feed it and move on. */
static void xport_tls_input(struct xport *x, long res)
{
	long out;

	if (res <= 0) {
		xport_recv_finish(x, res);
		return;
	}
	if (tls_feed(x->tls, x->cin, (size_t)res) < 0) {
		xport_recv_finish(x, -ENOMEM);
		return;
	}
	if (x->hs) {
		xport_hs_step(x);
		return;
	}
	out = xport_tls_read(x);
	xport_flush(x); /* replies tls made while reading (tickets, key updates) */
	if (out != -EINPROGRESS)
		xport_recv_finish(x, out);
}

static void xport_recv_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct xport *x = op->owner;

	x->inflight--;
	x->recv_io = false;
	if (x->dead) {
		if (!x->inflight)
			xport_destroy(x);
		return;
	}
	if (x->recv_nop) {
		x->recv_nop = false;
		if (x->hs)
			xport_hs_done(x, (int)x->nop_res);
		else
			xport_recv_finish(x, x->nop_res);
		return;
	}
	if (res == -ECANCELED && !x->recv_cancel && xport_early(x->recv_deadline)) {
		xport_submit_recv(x, x->tls ? x->cin : x->ubuf, x->tls ? XPORT_CIN : x->ucap);
		return;
	}
	if (res == -ECANCELED && !x->recv_cancel)
		res = -ETIMEDOUT;
	if (x->tls)
		xport_tls_input(x, res);
	else
		xport_recv_finish(x, res);
}

/* ---- handshake ---- */

/* The handshake is over with r (0 or -errno): tell the owner. */
static void xport_hs_done(struct xport *x, int r)
{
	x->hs = false;
	x->tls_on = r == 0;
	x->ops->tls_done(x->user, r);
}

/* Advance the handshake. Returns -EINPROGRESS when waiting for the peer, else its result
 * (0 or -EPROTO with x->err set). */
static int xport_hs_advance(struct xport *x)
{
	int r = tls_handshake(x->tls);

	xport_flush(x); /* our flight (or a fatal alert) */
	if (r == -EAGAIN && x->recv_cancel)
		return -ECANCELED; /* cancelled as a recv brought part of a flight */
	if (r == -EAGAIN) {
		xport_submit_recv(x, x->cin, XPORT_CIN);
		return -EINPROGRESS;
	}
	if (r < 0)
		snprintf(x->err, sizeof(x->err), "%s", tls_error(x->tls));
	return r;
}

static void xport_hs_step(struct xport *x)
{
	int r = xport_hs_advance(x);

	if (r != -EINPROGRESS)
		xport_hs_done(x, r);
}

/* ---- send completion ---- */

/* The running user send is over: report res. */
static void xport_send_finish(struct xport *x, long res)
{
	x->usend = false;
	x->ops->send_done(x->user, res);
}

static void xport_send_cb_tls(struct xport *x, int res)
{
	if (res <= 0) {
		x->broken = res ? res : -EPIPE;
		if (x->usend)
			xport_send_finish(x, x->broken);
		return;
	}
	x->cout_off += (size_t)res;
	if (x->send_cancel && x->cout_off < x->cout_len) {
		/* cancelled as the kernel took part of the ciphertext: the stream is cut */
		x->broken = -ECANCELED;
		if (x->usend)
			xport_send_finish(x, x->broken);
		return;
	}
	if (xport_flush(x))
		return;
	if (x->usend)
		xport_send_finish(x, x->send_res);
}

static void xport_send_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct xport *x = op->owner;

	x->inflight--;
	x->send_io = false;
	if (x->dead) {
		if (!x->inflight)
			xport_destroy(x);
		return;
	}
	if (x->send_nop) {
		x->send_nop = false;
		xport_send_finish(x, x->send_res);
		return;
	}
	if (res == -ECANCELED && !x->send_cancel && xport_early(x->send_deadline)) {
		xport_submit_sendmsg(x); /* a late cancel meant for an earlier send */
		return;
	}
	if (res == -ECANCELED && !x->send_cancel)
		res = -ETIMEDOUT;
	if (x->tls)
		xport_send_cb_tls(x, res);
	else
		xport_send_finish(x, res == 0 ? -EPIPE : res);
}

/* ---- public API ---- */

/* xport_new: see xport.h. */
struct xport *xport_new(struct loop *l, int fd, const struct xport_ops *ops, void *user)
{
	struct xport *x = util_xcalloc(1, sizeof(*x));

	x->l = l;
	x->fd = fd;
	x->ops = ops;
	x->user = user;
	x->op_recv = (struct loop_op){.cb = xport_recv_cb, .owner = x};
	x->op_send = (struct loop_op){.cb = xport_send_cb, .owner = x};
	return x;
}

/* xport_free: see xport.h. */
void xport_free(struct xport *x)
{
	if (!x)
		return;
	x->dead = true;
	if (!x->inflight) {
		xport_destroy(x);
		return;
	}
	if (x->recv_io && !x->recv_nop)
		loop_cancel(x->l, &x->op_recv);
	if (x->send_io && !x->send_nop)
		loop_cancel(x->l, &x->op_send);
}

/* xport_recv: see xport.h. */
int xport_recv(struct xport *x, void *buf, size_t cap, uint64_t timeout_ms)
{
	long n;

	if (x->urecv || x->hs || x->recv_io)
		return -EBUSY;
	x->urecv = true;
	x->recv_cancel = false;
	x->ubuf = buf;
	x->ucap = cap;
	x->recv_deadline = util_mono_ms() + timeout_ms;
	if (!x->tls) {
		xport_submit_recv(x, buf, cap);
		return 0;
	}
	n = xport_tls_read(x);
	if (n != -EINPROGRESS) {
		x->nop_res = n;
		xport_submit_nop(x, &x->op_recv);
	}
	return 0;
}

/* Copy the next plaintext of iov[0..n) from (*i, *off) into x->stage, up to one record.
 * Returns the bytes staged; *i / *off move past them. */
static size_t xport_gather(struct xport *x, const struct iovec *iov, unsigned n, unsigned *i,
			   size_t *off)
{
	size_t fill = 0, take;

	while (*i < n && fill < XPORT_RECORD) {
		take = iov[*i].iov_len - *off;
		if (take > XPORT_RECORD - fill)
			take = XPORT_RECORD - fill;
		memcpy(x->stage + fill, (const char *)iov[*i].iov_base + *off, take);
		fill += take;
		*off += take;
		if (*off == iov[*i].iov_len) {
			(*i)++;
			*off = 0;
		}
	}
	return fill;
}

/* Encrypt up to XPORT_CHUNK bytes of iov[0..n), one full TLS record at a time: the pieces a
 * session gathers (command lines, body segments cut for dot-stuffing, the final dot) would
 * otherwise each cost a record and its AEAD pass. Returns the plaintext count or -errno. */
static long xport_encrypt(struct xport *x, const struct iovec *iov, unsigned n)
{
	size_t done = 0, off = 0, fill;
	unsigned i = 0;
	long r;

	if (!x->stage)
		x->stage = util_xmalloc(XPORT_RECORD);
	while (i < n && done < XPORT_CHUNK) {
		fill = xport_gather(x, iov, n, &i, &off);
		if (!fill)
			break;
		r = tls_write(x->tls, x->stage, fill);
		if (r < 0) {
			snprintf(x->err, sizeof(x->err), "%s", tls_error(x->tls));
			return done ? (long)done : r;
		}
		done += (size_t)r;
		if ((size_t)r < fill)
			break; /* the rest is offered again by the caller */
	}
	return (long)done;
}

/* xport_send: see xport.h. */
int xport_send(struct xport *x, const struct iovec *iov, unsigned n, uint64_t timeout_ms)
{
	if (x->usend || x->hs)
		return -EBUSY;
	if (!n)
		return -EINVAL;
	x->usend = true;
	x->send_cancel = false;
	x->send_deadline = util_mono_ms() + timeout_ms;
	if (!x->tls) {
		n = n > XPORT_IOV ? XPORT_IOV : n;
		memcpy(x->iov, iov, n * sizeof(*iov));
		memset(&x->msg, 0, sizeof(x->msg));
		x->msg.msg_iov = x->iov;
		x->msg.msg_iovlen = n;
		xport_submit_sendmsg(x);
		return 0;
	}
	x->send_res = x->broken ? x->broken : xport_encrypt(x, iov, n);
	if (!xport_flush(x) && !x->send_io)
		xport_submit_nop(x, &x->op_send);
	return 0;
}

/* xport_start_tls: see xport.h. */
int xport_start_tls(struct xport *x, struct tls *t, uint64_t timeout_ms)
{
	if (x->urecv || x->usend || x->hs || x->tls || x->recv_io) {
		tls_free(t);
		return -EBUSY;
	}
	x->tls = t;
	x->cin = util_xmalloc(XPORT_CIN);
	x->hs = true;
	x->recv_cancel = false;
	x->recv_deadline = util_mono_ms() + timeout_ms;
	x->nop_res = xport_hs_advance(x);
	if (x->nop_res != -EINPROGRESS)
		xport_submit_nop(x, &x->op_recv); /* tls_done from the loop */
	return 0;
}

/* xport_cancel_recv: see xport.h. */
void xport_cancel_recv(struct xport *x)
{
	if (x->recv_io && !x->recv_nop) {
		x->recv_cancel = true;
		loop_cancel(x->l, &x->op_recv);
	}
}

/* xport_cancel: see xport.h. */
void xport_cancel(struct xport *x)
{
	xport_cancel_recv(x);
	if (x->send_io && !x->send_nop) {
		x->send_cancel = true;
		loop_cancel(x->l, &x->op_send);
	}
}

/* xport_recv_busy: see xport.h. */
bool xport_recv_busy(const struct xport *x)
{
	return x->urecv || x->hs;
}

/* xport_send_busy: see xport.h. */
bool xport_send_busy(const struct xport *x)
{
	return x->usend || x->hs;
}

/* xport_is_tls: see xport.h. */
bool xport_is_tls(const struct xport *x)
{
	return x->tls_on;
}

/* xport_tls_info: see xport.h. */
void xport_tls_info(const struct xport *x, struct tls_info *i)
{
	memset(i, 0, sizeof(*i));
	if (x->tls_on)
		tls_get_info(x->tls, i);
}

/* xport_error: see xport.h. */
const char *xport_error(const struct xport *x)
{
	return x->err;
}
