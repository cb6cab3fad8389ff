/* xport_fx — the harness of the engine/xport unit tests: one real loop, connected socket pairs
 * (UNIX socketpair or loopback TCP), a recording "side" around each transport, byte pumps that
 * stream a buffer through xport_send / xport_recv, and a raw TLS peer that speaks tls/ over a
 * socket by hand (driven by a loop timer) so a test can cut records, trickle bytes or hang up
 * mid-handshake.
 *
 * Why: xport's promises (exactly one callback per call, always from the loop; deadlines across
 * several io_uring ops; nothing after xport_free) only show on a real io_uring loop with real
 * sockets, and some need a peer that misbehaves on purpose, which a second xport never does.
 * Callbacks only record; every assertion runs on the test thread after the loop stopped.
 */
#ifndef RIPTIDE_TESTS_XPORT_FX_H
#define RIPTIDE_TESTS_XPORT_FX_H

#include "engine/loop/loop.h"
#include "engine/xport/xport.h"
#include "tls/tls.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIDE_IOVS 100 /* iovecs a pump offers per xport_send (more than XPORT_IOV) */

/* One end of a connection: its transport and what its callbacks saw. */
struct side {
	struct loop *l;
	struct xport *x;
	int fd;
	bool in_call;	  /* set around xport_* calls made by the harness */
	unsigned inside;  /* callbacks that ran inside such a call (must stay 0) */
	unsigned n_recv;  /* recv_done calls */
	unsigned n_send;  /* send_done calls */
	unsigned n_tls;	  /* tls_done calls */
	long recv_res;	  /* last recv_done result */
	long send_res;	  /* last send_done result */
	int tls_res;	  /* last tls_done result */
	char err[200];	  /* xport_error at the last tls_done / failed recv */
	uint64_t done_ms; /* util_mono_ms() at the last callback */
	char rbuf[70000]; /* receive buffer (a pump uses rcap bytes of it) */
	/* send pump: out[0..out_len) in pieces of chunk bytes, SIDE_IOVS iovecs a call */
	const unsigned char *out;
	size_t out_len, out_off, chunk, offered;
	unsigned partial; /* send_done that took fewer bytes than offered */
	size_t max_res;	  /* largest send_done result */
	uint64_t send_ms; /* timeout of each pump send */
	bool send_pump;
	/* recv pump: into in[0..want) rcap bytes at a time */
	unsigned char *in;
	size_t in_len, want, rcap;
	bool recv_pump;
	void (*on_tls)(struct side *sd); /* optional, after tls_done was recorded */
};

/* fx_init: the loop used by every test (64 SQEs). fx_fini frees it. */
void fx_loop_init(void);
void fx_loop_fini(void);
struct loop *fx_loop(void);

/* fx_run: run the loop until cond(arg) holds (checked after every iteration) or ms passed.
 * Returns true when cond held. cond NULL: run for ms (to see that nothing more happens). */
bool fx_run(bool (*cond)(void *arg), void *arg, unsigned ms);

/* fx_socketpair / fx_tcp_pair: a connected pair (fds[0] connects, fds[1] was accepted). TCP
 * listens on 127.0.0.1:0. Returns 0 or -1. */
int fx_socketpair(int fds[2]);
int fx_tcp_pair(int fds[2]);

/* side_init: a side with a transport over fd (the side owns fd: side_fini closes it). */
void side_init(struct side *sd, int fd);

/* side_fini: free the transport (if any), the pump's input buffer and close the fd. */
void side_fini(struct side *sd);

/* side_recv / side_send / side_start_tls: the xport calls, marked in_call. They return what
 * xport returned. side_send sends n bytes of p as one iovec. */
int side_recv(struct side *sd, size_t cap, uint64_t ms);
int side_send(struct side *sd, const void *p, size_t n, uint64_t ms);
int side_start_tls(struct side *sd, struct tls_ctx *c, const char *host, uint64_t ms);

/* side_pump_send: stream p[0..n) (pieces of chunk bytes, each send with ms). Starts now. */
void side_pump_send(struct side *sd, const void *p, size_t n, size_t chunk, uint64_t ms);

/* side_pump_recv: receive n bytes into a new buffer, rcap bytes per xport_recv. Starts now. */
void side_pump_recv(struct side *sd, size_t n, size_t rcap);

/* side_pumps_done (for fx_run): every pump of the NULL-terminated side array sd finished or
 * failed. */
bool side_pumps_done(void *sides);

/* fx_random: n pseudo-random bytes (malloc'ed) from seed. */
unsigned char *fx_random(size_t n, unsigned seed);

/* A raw TLS peer: tls/ over a non-blocking socket, driven every 2 ms by a loop timer. */
struct rawpeer {
	int fd;
	struct tls *t;
	struct loop_op tick;
	bool armed, stop;
	int hs;			/* last tls_handshake result (-EAGAIN while running) */
	size_t trickle;		/* bytes of ciphertext still to send one byte per tick */
	char held[65536];	/* ciphertext held back for trickling */
	size_t held_off;	/* next held byte */
	size_t read_bytes;	/* ciphertext bytes read */
	bool hangup_after_read; /* close the socket once something was read */
	bool deaf;		/* read nothing (the transport's sends back up) */
	bool hold_out;		/* keep what tls/ produces in held[] instead of sending it */
	void (*on_tick)(struct rawpeer *p); /* optional, at the end of every tick */
	void *user;
};

/* rawpeer_start: start ticking on fd (taken over: closed by rawpeer_stop) with t (server or
 * client connection, may be NULL for a plain byte peer; owned). */
void rawpeer_start(struct rawpeer *p, int fd, struct tls *t);

/* rawpeer_hold: encrypt n plaintext bytes and keep the ciphertext for trickling. */
void rawpeer_hold(struct rawpeer *p, const void *buf, size_t n);

/* rawpeer_send_now: encrypt n plaintext bytes and write their ciphertext at once. */
void rawpeer_send_now(struct rawpeer *p, const void *buf, size_t n);

/* rawpeer_stop: stop ticking, wait (running the loop) for the timer's last callback, free the
 * connection and close the socket (if still open). */
void rawpeer_stop(struct rawpeer *p);

#endif
