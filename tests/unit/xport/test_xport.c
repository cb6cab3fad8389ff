/* test_xport — engine/xport on a real io_uring loop over real sockets: plain receive and send
 * (partial sends, more iovecs than XPORT_IOV), deadlines (a recv, a send, a handshake, and a
 * TLS recv whose record trickles in across many io_uring ops), xport_cancel /
 * xport_cancel_recv (exactly one -ECANCELED, the other direction untouched), xport_free with
 * ops in flight (no callback afterwards; ASan sees no leak), and TLS: a handshake on both ends
 * then 1 MB each way with small receive buffers, xport_tls_info, a wrong CA and a wrong host
 * name, a peer that hangs up mid-handshake or talks plaintext, close_notify, and a cancel that
 * races a partial record.
 *
 * Why: sessions trust xport's completion rule (one callback per call, always from the loop,
 * none after free) and its deadlines; a break there is a hang or a use-after-free in smtpc or
 * smtpd, so each promise gets a test that fails when it is broken. Certificates come from
 * tests/integration/mkcerts.sh (argv[1]) through the tls/ test fixture.
 */
#include "tests/unit/xport/xport_fx.h"
#include "tests/unit/tls/tls_fx.h"
#include "engine/util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

static const char *mkcerts;
static struct tls_ctx *srv_ctx, *cli_ctx, *cli_other;

/* Run until every listed side has at least the given callback counts (or ms passed). */
struct want {
	struct side *sd;
	unsigned recv, send, tls;
};

static bool reached(void *arg)
{
	for (struct want *w = arg; w->sd; w++)
		if (w->sd->n_recv < w->recv || w->sd->n_send < w->send || w->sd->n_tls < w->tls)
			return false;
	return true;
}

#define RUN_UNTIL(ms, ...) fx_run(reached, (struct want[]){__VA_ARGS__, {0}}, (ms))

/* A connected pair: a connected, b was accepted (or the other socketpair end). */
struct pair {
	struct side a, b;
};

static struct pair *pair_open(bool tcp)
{
	struct pair *p = util_xcalloc(1, sizeof(*p));
	int fds[2];

	assert_int_equal(tcp ? fx_tcp_pair(fds) : fx_socketpair(fds), 0);
	side_init(&p->a, fds[0]);
	side_init(&p->b, fds[1]);
	return p;
}

static void pair_close(struct pair *p)
{
	side_fini(&p->a);
	side_fini(&p->b);
	fx_run(NULL, NULL, 20); /* let cancelled ops of freed transports complete */
	free(p);
}

/* Small socket buffers so that a few hundred KB fill the pipe. */
static void small_buffers(struct pair *p)
{
	int v = 16384;

	assert_int_equal(setsockopt(p->a.fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
	assert_int_equal(setsockopt(p->b.fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)), 0);
}

/* Both ends of a TCP pair through the handshake: a is the client (host mx.test, ca.pem). */
static struct pair *tls_pair(void)
{
	struct pair *p = pair_open(true);

	assert_int_equal(side_start_tls(&p->a, cli_ctx, "mx.test", 5000), 0);
	assert_int_equal(side_start_tls(&p->b, srv_ctx, NULL, 5000), 0);
	assert_true(RUN_UNTIL(10000, {&p->a, 0, 0, 1}, {&p->b, 0, 0, 1}));
	assert_int_equal(p->a.tls_res, 0);
	assert_int_equal(p->b.tls_res, 0);
	return p;
}

static bool rawpeer_hs_over(void *arg)
{
	return ((struct rawpeer *)arg)->hs != -EAGAIN;
}

/* A client transport on a, a raw TLS server peer on b's socket (b has no transport). */
static struct pair *raw_tls_pair_on(struct rawpeer *rp, bool tcp)
{
	struct pair *p = pair_open(tcp);
	struct tls *t;

	xport_free(p->b.x);
	p->b.x = NULL;
	assert_int_equal(tls_new(srv_ctx, NULL, NULL, &t), 0);
	rawpeer_start(rp, p->b.fd, t);
	p->b.fd = -1; /* the raw peer closes it */
	assert_int_equal(side_start_tls(&p->a, cli_ctx, "mx.test", 5000), 0);
	assert_true(RUN_UNTIL(10000, {&p->a, 0, 0, 1}));
	assert_int_equal(p->a.tls_res, 0);
	assert_true(fx_run(rawpeer_hs_over, rp, 5000)); /* it completes on the client's Finished */
	assert_int_equal(rp->hs, 0);
	return p;
}

static struct pair *raw_tls_pair(struct rawpeer *rp)
{
	return raw_tls_pair_on(rp, true);
}

/* ---- plain ---- */

/* One recv and one send, each answered once from the loop; -EBUSY / -EINVAL misuse; EOF. */
static void test_plain_send_recv(void **state)
{
	struct pair *p = pair_open(false);
	struct tls_info ti;

	assert_int_equal(xport_send(p->a.x, NULL, 0, 1000), -EINVAL);
	assert_int_equal(side_recv(&p->b, 100, 5000), 0);
	assert_int_equal(side_recv(&p->b, 100, 5000), -EBUSY);
	assert_true(xport_recv_busy(p->b.x));
	assert_int_equal(side_send(&p->a, "hello", 5, 5000), 0);
	assert_int_equal(side_send(&p->a, "x", 1, 5000), -EBUSY);
	assert_true(RUN_UNTIL(5000, {&p->a, 0, 1, 0}, {&p->b, 1, 0, 0}));
	assert_int_equal(p->b.recv_res, 5);
	assert_memory_equal(p->b.rbuf, "hello", 5);
	assert_int_equal(p->a.send_res, 5);
	assert_false(xport_recv_busy(p->b.x));
	assert_false(xport_send_busy(p->a.x));
	assert_int_equal(shutdown(p->a.fd, SHUT_WR), 0);
	assert_int_equal(side_recv(&p->b, 100, 5000), 0);
	assert_true(RUN_UNTIL(5000, {&p->b, 2, 0, 0}));
	assert_int_equal(p->b.recv_res, 0);
	fx_run(NULL, NULL, 50);
	assert_int_equal(p->a.n_send + p->b.n_recv, 3); /* nothing twice */
	assert_int_equal(p->a.inside + p->b.inside, 0);
	assert_false(xport_is_tls(p->a.x));
	assert_string_equal(xport_error(p->a.x), "");
	xport_tls_info(p->a.x, &ti);
	assert_string_equal(ti.version, "");
	pair_close(p);
}

/* 4 MB through a 16 KB pipe: with 100 iovecs per call at most XPORT_IOV are taken, the
 * kernel takes less than offered, every rest is sent again, and the bytes arrive in order. */
static void run_partial(size_t chunk, size_t max_res)
{
	struct pair *p = pair_open(false);
	size_t n = 4u << 20;
	unsigned char *data = fx_random(n, 7);

	small_buffers(p);
	side_pump_send(&p->a, data, n, chunk, 10000);
	side_pump_recv(&p->b, n, 65536);
	assert_true(fx_run(side_pumps_done, (struct side *[]){&p->a, &p->b, NULL}, 20000));
	assert_int_equal(p->a.out_off, n);
	assert_int_equal(p->b.in_len, n);
	assert_memory_equal(p->b.in, data, n);
	assert_true(p->a.partial > 0);
	assert_true(p->a.max_res <= max_res);
	assert_int_equal(p->a.inside + p->b.inside, 0);
	free(data);
	pair_close(p);
}

static void test_plain_partial_sends(void **state)
{
	run_partial(1000, XPORT_IOV * 1000); /* more iovecs than XPORT_IOV */
	run_partial(4u << 20, 4u << 20);     /* one iovec: the kernel's short sends */
}

/* A recv with nothing coming: -ETIMEDOUT once, after its deadline. */
static void test_recv_deadline(void **state)
{
	struct pair *p = pair_open(false);
	uint64_t t0 = util_mono_ms();

	assert_int_equal(side_recv(&p->b, 100, 150), 0);
	assert_true(RUN_UNTIL(5000, {&p->b, 1, 0, 0}));
	assert_int_equal(p->b.recv_res, -ETIMEDOUT);
	assert_true(p->b.done_ms - t0 >= 140);
	assert_true(p->b.done_ms - t0 < 3000);
	fx_run(NULL, NULL, 100);
	assert_int_equal(p->b.n_recv, 1);
	pair_close(p);
}

/* A send into a full pipe nobody reads: -ETIMEDOUT. */
static void test_send_deadline(void **state)
{
	struct pair *p = pair_open(false);
	size_t n = 8u << 20;
	unsigned char *data = fx_random(n, 8);
	unsigned sends;

	small_buffers(p);
	side_pump_send(&p->a, data, n, n, 150);
	assert_true(fx_run(side_pumps_done, (struct side *[]){&p->a, NULL}, 5000));
	assert_int_equal(p->a.send_res, -ETIMEDOUT);
	assert_true(p->a.out_off < n);
	sends = p->a.n_send;
	fx_run(NULL, NULL, 100);
	assert_int_equal(p->a.n_send, sends);
	free(data);
	pair_close(p);
}

/* a: a send stuck on a full pipe and an idle recv. */
static struct pair *stuck_pair(unsigned char **data, size_t n)
{
	struct pair *p = pair_open(false);

	small_buffers(p);
	*data = fx_random(n, 9);
	side_pump_send(&p->a, *data, n, n, 20000);
	assert_int_equal(side_recv(&p->a, 100, 20000), 0);
	fx_run(NULL, NULL, 100);
	assert_true(p->a.send_pump);
	assert_int_equal(p->a.n_recv, 0);
	return p;
}

/* xport_cancel: the running recv and send each get exactly one -ECANCELED; afterwards the
 * transport works again. */
static void test_cancel(void **state)
{
	unsigned char *data;
	struct pair *p = stuck_pair(&data, 8u << 20);
	unsigned sends = p->a.n_send;

	p->a.in_call = true;
	xport_cancel(p->a.x);
	p->a.in_call = false;
	assert_true(RUN_UNTIL(5000, {&p->a, 1, sends + 1, 0}));
	fx_run(NULL, NULL, 100);
	assert_int_equal(p->a.n_recv, 1);
	assert_int_equal(p->a.n_send, sends + 1);
	assert_int_equal(p->a.recv_res, -ECANCELED);
	assert_int_equal(p->a.send_res, -ECANCELED);
	assert_int_equal(p->a.inside, 0);
	assert_false(xport_recv_busy(p->a.x));
	assert_false(xport_send_busy(p->a.x));
	assert_int_equal(side_send(&p->b, "after", 5, 5000), 0);
	assert_int_equal(side_recv(&p->a, 100, 5000), 0);
	assert_true(RUN_UNTIL(5000, {&p->a, 2, 0, 0}));
	assert_int_equal(p->a.recv_res, 5);
	free(data);
	pair_close(p);
}

/* xport_cancel_recv: only the recv is cancelled; the stuck send completes once b reads. */
static void test_cancel_recv_only(void **state)
{
	size_t n = 2u << 20;
	unsigned char *data;
	struct pair *p = stuck_pair(&data, n);

	xport_cancel_recv(p->a.x);
	assert_true(RUN_UNTIL(5000, {&p->a, 1, 0, 0}));
	assert_int_equal(p->a.recv_res, -ECANCELED);
	assert_true(p->a.send_pump);
	side_pump_recv(&p->b, n, 65536);
	assert_true(fx_run(side_pumps_done, (struct side *[]){&p->a, &p->b, NULL}, 20000));
	assert_int_equal(p->a.out_off, n);
	assert_memory_equal(p->b.in, data, n);
	assert_int_equal(p->a.n_recv, 1);
	free(data);
	pair_close(p);
}

/* xport_free with a recv and a send in flight: no callback afterwards (ASan: no leak, no
 * use after free when the cancelled ops complete). */
static void test_free_inflight(void **state)
{
	unsigned char *data;
	struct pair *p = stuck_pair(&data, 8u << 20);
	unsigned sends = p->a.n_send;

	xport_free(p->a.x);
	p->a.x = NULL;
	fx_run(NULL, NULL, 150);
	assert_int_equal(p->a.n_send, sends);
	assert_int_equal(p->a.n_recv, 0);
	free(data);
	pair_close(p);
}

/* ---- TLS ---- */

/* Both ends through the handshake, xport_tls_info, then 1 MB each way at once: 100 iovecs of
 * 997 / 5000 bytes per send, receive buffers of 333 / 700 bytes. */
static void test_tls_megabyte_both_ways(void **state)
{
	struct pair *p = tls_pair();
	size_t n = 1u << 20;
	unsigned char *up = fx_random(n, 1), *down = fx_random(n, 2);
	struct tls_info ti;

	assert_true(xport_is_tls(p->a.x) && xport_is_tls(p->b.x));
	xport_tls_info(p->a.x, &ti);
	assert_true(!strcmp(ti.version, "TLSv1.3") || !strcmp(ti.version, "TLSv1.2"));
	assert_true(ti.cipher[0] != '\0');
	assert_true(ti.verified);
	assert_string_equal(ti.verify_error, "");
	assert_non_null(strstr(ti.subject, "mx.test"));
	assert_non_null(strstr(ti.issuer, "riptide test CA"));
	xport_tls_info(p->b.x, &ti);
	assert_true(ti.version[0] != '\0' && ti.cipher[0] != '\0');
	side_pump_send(&p->a, up, n, 997, 10000);
	side_pump_recv(&p->b, n, 333);
	side_pump_send(&p->b, down, n, 5000, 10000);
	side_pump_recv(&p->a, n, 700);
	assert_true(fx_run(side_pumps_done, (struct side *[]){&p->a, &p->b, NULL}, 60000));
	assert_int_equal(p->b.in_len, n);
	assert_memory_equal(p->b.in, up, n);
	assert_int_equal(p->a.in_len, n);
	assert_memory_equal(p->a.in, down, n);
	assert_true(p->a.max_res <= 64 * 1024 && p->b.max_res <= 64 * 1024);
	assert_int_equal(p->a.inside + p->b.inside, 0);
	assert_string_equal(xport_error(p->a.x), "");
	free(up);
	free(down);
	pair_close(p);
}

/* The client verifies against another CA (or another host name): its tls_done is -EPROTO with
 * a reason; the server's handshake fails too (the client's alert, or its hang-up). */
static void run_bad_verify(struct tls_ctx *cc, const char *host, const char *why)
{
	struct pair *p = pair_open(true);
	struct tls_info ti;

	assert_int_equal(side_start_tls(&p->a, cc, host, 5000), 0);
	assert_int_equal(side_start_tls(&p->b, srv_ctx, NULL, 5000), 0);
	assert_true(RUN_UNTIL(10000, {&p->a, 0, 0, 1}));
	assert_int_equal(p->a.tls_res, -EPROTO);
	assert_true(p->a.err[0] != '\0');
	assert_non_null(strstr(p->a.err, why));
	assert_false(xport_is_tls(p->a.x));
	xport_tls_info(p->a.x, &ti);
	assert_string_equal(ti.version, "");
	side_fini(&p->a); /* hang up, as a session would */
	assert_true(RUN_UNTIL(10000, {&p->b, 0, 0, 1}));
	assert_true(p->b.tls_res < 0);
	print_message("client: %s; server: %d %s\n", p->a.err, p->b.tls_res, p->b.err);
	pair_close(p);
}

static void test_tls_verify_failures(void **state)
{
	run_bad_verify(cli_other, "mx.test", "verif");
	run_bad_verify(cli_ctx, "other.test", "verif");
}

/* The peer reads the ClientHello and hangs up: an error, not a hang; likewise the server
 * transport whose client hangs up after the server's flight. */
static void test_tls_peer_hangs_up_mid_handshake(void **state)
{
	struct pair *p = pair_open(true);
	struct rawpeer rp = {.hangup_after_read = true}, rc = {.hangup_after_read = true};
	struct tls *t;

	xport_free(p->b.x);
	p->b.x = NULL;
	rawpeer_start(&rp, p->b.fd, NULL);
	p->b.fd = -1;
	assert_int_equal(side_start_tls(&p->a, cli_ctx, "mx.test", 20000), 0);
	assert_true(RUN_UNTIL(5000, {&p->a, 0, 0, 1}));
	assert_true(p->a.tls_res == -ECONNRESET || p->a.tls_res == -EPIPE);
	rawpeer_stop(&rp);
	pair_close(p);

	p = pair_open(true);
	xport_free(p->a.x);
	p->a.x = NULL;
	assert_int_equal(tls_new(cli_ctx, "mx.test", NULL, &t), 0);
	rawpeer_start(&rc, p->a.fd, t);
	p->a.fd = -1;
	assert_int_equal(side_start_tls(&p->b, srv_ctx, NULL, 20000), 0);
	assert_true(RUN_UNTIL(5000, {&p->b, 0, 0, 1}));
	assert_true(p->b.tls_res < 0 && p->b.tls_res != -ETIMEDOUT);
	rawpeer_stop(&rc);
	pair_close(p);
}

/* A plaintext SMTP server where TLS was expected: -EPROTO with a reason. */
static void test_tls_plaintext_peer(void **state)
{
	struct pair *p = pair_open(true);

	assert_int_equal(write(p->b.fd, "220 mx.test ESMTP\r\n", 19), 19);
	assert_int_equal(side_start_tls(&p->a, cli_ctx, "mx.test", 5000), 0);
	assert_true(RUN_UNTIL(5000, {&p->a, 0, 0, 1}));
	assert_int_equal(p->a.tls_res, -EPROTO);
	assert_true(p->a.err[0] != '\0');
	pair_close(p);
}

/* A silent peer: the handshake ends with -ETIMEDOUT at its deadline. */
static void test_tls_handshake_deadline(void **state)
{
	struct pair *p = pair_open(true);
	uint64_t t0 = util_mono_ms();

	assert_int_equal(side_start_tls(&p->a, cli_ctx, "mx.test", 150), 0);
	assert_true(RUN_UNTIL(5000, {&p->a, 0, 0, 1}));
	assert_int_equal(p->a.tls_res, -ETIMEDOUT);
	assert_true(p->a.done_ms - t0 >= 140 && p->a.done_ms - t0 < 3000);
	assert_int_equal(p->a.inside, 0);
	pair_close(p);
}

/* A record trickling in one byte every 2 ms: the recv's deadline covers all the io_uring
 * recvs it takes, so it ends at 200 ms, not after the last byte (~4 s). */
static void test_tls_recv_deadline_spans_records(void **state)
{
	struct rawpeer rp = {0};
	struct pair *p = raw_tls_pair(&rp);
	char msg[2000];
	uint64_t t0;

	memset(msg, 'x', sizeof(msg));
	rawpeer_hold(&rp, msg, sizeof(msg));
	t0 = util_mono_ms();
	assert_int_equal(side_recv(&p->a, 4096, 200), 0);
	assert_true(RUN_UNTIL(8000, {&p->a, 1, 0, 0}));
	assert_int_equal(p->a.recv_res, -ETIMEDOUT);
	assert_true(p->a.done_ms - t0 >= 190);
	assert_true(p->a.done_ms - t0 < 2000);
	assert_true(rp.held_off > 10); /* bytes did keep coming */
	rawpeer_stop(&rp);
	pair_close(p);
}

/* Two records in one write; a small first recv leaves plaintext inside tls/: the next recv
 * is answered from the loop (not inside xport_recv) with the rest. close_notify -> 0. */
static void test_tls_buffered_plaintext_and_close_notify(void **state)
{
	struct rawpeer rp = {0};
	struct pair *p = raw_tls_pair(&rp);
	char got[64] = "";

	rawpeer_send_now(&rp, "first\r\nsecond\r\n", 15);
	assert_int_equal(side_recv(&p->a, 7, 5000), 0);
	assert_true(RUN_UNTIL(5000, {&p->a, 1, 0, 0}));
	assert_int_equal(p->a.recv_res, 7);
	memcpy(got, p->a.rbuf, 7);
	assert_int_equal(side_recv(&p->a, 50, 5000), 0);
	assert_int_equal(p->a.n_recv, 1); /* not from inside the call */
	assert_true(RUN_UNTIL(5000, {&p->a, 2, 0, 0}));
	assert_int_equal(p->a.recv_res, 8);
	memcpy(got + 7, p->a.rbuf, 8);
	assert_string_equal(got, "first\r\nsecond\r\n");
	assert_int_equal(tls_shutdown(rp.t), 0);
	rawpeer_send_now(&rp, "", 0);
	assert_int_equal(side_recv(&p->a, 50, 5000), 0);
	assert_true(RUN_UNTIL(5000, {&p->a, 3, 0, 0}));
	assert_int_equal(p->a.recv_res, 0);
	assert_int_equal(p->a.inside, 0);
	rawpeer_stop(&rp);
	pair_close(p);
}

/* The peer writes one byte of a record, and in the same loop turn a NOP is queued whose
 * callback cancels the transport: the NOP's completion is dispatched just before the recv's
 * (which took that byte), so xport_cancel runs when the kernel has already finished the recv.
 * xport_cancel promises the recv ends now (-ECANCELED, or its real result): it must not go on
 * waiting for the rest of the record until its 5 s deadline. */
struct race {
	struct side *sd;
	bool fire, fired;
	uint64_t at;
	struct loop_op nop;
};

static void race_cancel(struct loop_op *op, int res, uint32_t flags)
{
	struct race *r = container_of(op, struct race, nop);

	r->at = util_mono_ms();
	xport_cancel(r->sd->x);
}

static void race_tick(struct rawpeer *rp)
{
	struct race *r = rp->user;
	struct io_uring_sqe *sqe;

	if (!r->fire || r->fired)
		return;
	r->fired = true;
	BUG_ON(send(rp->fd, rp->held, 1, MSG_NOSIGNAL) != 1);
	r->nop = (struct loop_op){.cb = race_cancel};
	sqe = loop_get_sqe(fx_loop());
	io_uring_prep_nop(sqe);
	loop_sqe_op(sqe, &r->nop);
}

static void test_tls_cancel_races_partial_record(void **state)
{
	struct rawpeer rp = {0};
	struct pair *p = raw_tls_pair(&rp);
	struct race r = {.sd = &p->a};

	rawpeer_hold(&rp, "250 ok\r\n", 8);
	rp.trickle = 0; /* held back: only race_tick sends (its first byte) */
	rp.user = &r;
	rp.on_tick = race_tick;
	assert_int_equal(side_recv(&p->a, 100, 5000), 0);
	r.fire = true;
	assert_true(RUN_UNTIL(8000, {&p->a, 1, 0, 0}));
	print_message("recv_done %ld %llu ms after xport_cancel\n", p->a.recv_res,
		      (unsigned long long)(p->a.done_ms - r.at));
	assert_int_equal(p->a.recv_res, -ECANCELED);
	assert_true(p->a.done_ms - r.at < 1000);
	rawpeer_stop(&rp);
	pair_close(p);
}

/* The same race during the handshake: the server's flight is held back; one byte of it is
 * sent and the client transport cancelled in the same turn: tls_done must come now. */
static void flight_tick(struct rawpeer *rp)
{
	struct race *r = rp->user;

	if (rp->trickle && !r->fired)
		race_tick(rp);
}

static void test_tls_cancel_races_handshake(void **state)
{
	struct rawpeer rp = {.hold_out = true};
	struct pair *p = pair_open(true);
	struct race r = {.sd = &p->a, .fire = true};
	struct tls *t;

	xport_free(p->b.x);
	p->b.x = NULL;
	assert_int_equal(tls_new(srv_ctx, NULL, NULL, &t), 0);
	rp.user = &r;
	rp.on_tick = flight_tick;
	rawpeer_start(&rp, p->b.fd, t);
	p->b.fd = -1;
	assert_int_equal(side_start_tls(&p->a, cli_ctx, "mx.test", 5000), 0);
	assert_true(RUN_UNTIL(8000, {&p->a, 0, 0, 1}));
	print_message("tls_done %d %llu ms after xport_cancel\n", p->a.tls_res,
		      (unsigned long long)(p->a.done_ms - r.at));
	assert_true(r.fired);
	assert_int_equal(p->a.tls_res, -ECANCELED);
	assert_true(p->a.done_ms - r.at < 1000);
	rawpeer_stop(&rp);
	pair_close(p);
}

/* The same race on the send side: a TLS send stuck on a full pipe; the peer drains the pipe
 * and, in the same loop turn, a NOP cancels the transport: the sendmsg completes with part of
 * the ciphertext, yet the send must end now rather than send the rest (until its deadline). */
static void drain_tick(struct rawpeer *rp)
{
	struct race *r = rp->user;
	struct io_uring_sqe *sqe;
	char buf[4096];

	if (!r->fire || r->fired)
		return;
	r->fired = true;
	while (recv(rp->fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	r->nop = (struct loop_op){.cb = race_cancel};
	sqe = loop_get_sqe(fx_loop());
	io_uring_prep_nop(sqe);
	loop_sqe_op(sqe, &r->nop);
}

static void test_tls_cancel_races_partial_send(void **state)
{
	struct rawpeer rp = {0};
	struct pair *p = raw_tls_pair_on(&rp, false);
	struct race r = {.sd = &p->a};
	size_t n = 4u << 20;
	unsigned char *data = fx_random(n, 5);
	unsigned sends;
	int v = 16384;

	assert_int_equal(setsockopt(p->a.fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
	rp.deaf = true;
	rp.user = &r;
	rp.on_tick = drain_tick;
	side_pump_send(&p->a, data, n, n, 5000);
	fx_run(NULL, NULL, 100);
	assert_true(p->a.send_pump); /* stuck */
	sends = p->a.n_send;
	r.fire = true;
	assert_true(RUN_UNTIL(8000, {&p->a, 0, sends + 1, 0}));
	print_message("send_done %ld %llu ms after xport_cancel\n", p->a.send_res,
		      (unsigned long long)(p->a.done_ms - r.at));
	assert_int_equal(p->a.send_res, -ECANCELED);
	assert_true(p->a.done_ms - r.at < 1000);
	free(data);
	rawpeer_stop(&rp);
	pair_close(p);
}

/* xport_free during a handshake, and with a recv answered from tls/'s buffer (a NOP) still
 * pending: no callback afterwards; ASan: nothing leaks. xport_start_tls while a recv runs is
 * -EBUSY and frees the connection it was given. */
static void test_tls_free_and_busy(void **state)
{
	struct rawpeer rp = {0};
	struct pair *p = pair_open(true);
	struct pair *q;

	assert_int_equal(side_recv(&p->a, 10, 5000), 0);
	assert_int_equal(side_start_tls(&p->a, cli_ctx, "mx.test", 5000), -EBUSY);
	xport_cancel(p->a.x);
	assert_true(RUN_UNTIL(5000, {&p->a, 1, 0, 0}));
	assert_int_equal(side_start_tls(&p->a, cli_ctx, "mx.test", 5000), 0);
	assert_int_equal(side_recv(&p->a, 10, 5000), -EBUSY);
	fx_run(NULL, NULL, 30);
	xport_free(p->a.x);
	p->a.x = NULL;
	fx_run(NULL, NULL, 100);
	assert_int_equal(p->a.n_tls, 0);
	pair_close(p);

	q = raw_tls_pair(&rp);
	rawpeer_send_now(&rp, "first\r\nsecond\r\n", 15);
	assert_int_equal(side_recv(&q->a, 7, 5000), 0);
	assert_true(RUN_UNTIL(5000, {&q->a, 1, 0, 0}));
	assert_int_equal(side_recv(&q->a, 50, 5000), 0); /* served by a NOP */
	xport_free(q->a.x);
	q->a.x = NULL;
	fx_run(NULL, NULL, 50);
	assert_int_equal(q->a.n_recv, 1);
	rawpeer_stop(&rp);
	pair_close(q);
}

/* A fresh loop per test: a failed test leaves ops in flight, which die with its ring. */
static int setup(void **state)
{
	fx_loop_init();
	return 0;
}

static int teardown(void **state)
{
	fx_loop_fini();
	return 0;
}

static int group_setup(void **state)
{
	if (fx_setup(mkcerts) < 0)
		return -1;
	srv_ctx = fx_server("server.pem", "server.key");
	cli_ctx = fx_client(TLS_VERIFY_CA, "ca.pem", 0);
	cli_other = fx_client(TLS_VERIFY_CA, "other-ca.pem", 0);
	return srv_ctx && cli_ctx && cli_other ? 0 : -1;
}

static int group_teardown(void **state)
{
	tls_ctx_free(cli_other);
	tls_ctx_free(cli_ctx);
	tls_ctx_free(srv_ctx);
	fx_teardown();
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_plain_send_recv, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plain_partial_sends, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recv_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_recv_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_inflight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_megabyte_both_ways, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_verify_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_peer_hangs_up_mid_handshake, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_plaintext_peer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_handshake_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_recv_deadline_spans_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_buffered_plaintext_and_close_notify, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tls_cancel_races_partial_record, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_cancel_races_partial_send, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_cancel_races_handshake, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_free_and_busy, setup, teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s MKCERTS\n", argv[0]);
		return 2;
	}
	mkcerts = argv[1];
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
