/* xport — the byte stream under an SMTP session: plain TCP/UNIX, or TLS (tls/) over it.
 *
 * Why: the SMTP client and server state machines should read and write plaintext and not care
 * whether a TLS layer sits under them (DESIGN "Transport", Redis connection.h style). A session
 * hands xport plaintext iovecs and gets back how many bytes were consumed; it asks for
 * plaintext input and gets bytes in its own buffer. The plain transport maps each call to one
 * io_uring op; the TLS transport runs wolfSSL over memory buffers (tls/) on the same loop,
 * receiving and sending ciphertext with io_uring and never blocking.
 *
 * Timeouts are deadlines: xport_recv(…, ms) completes with -ETIMEDOUT once ms have passed
 * without the operation completing, however many io_uring ops it took (a TLS record may arrive
 * in pieces). A linked timeout that the kernel delivers late can cancel a later op that reused
 * the same user data; xport recognises such an early -ECANCELED (before the op's deadline) and
 * re-submits, so sessions never see it.
 *
 * Completion rule: every xport_recv, xport_send and xport_start_tls call that returns 0 is
 * answered by exactly one callback, always from the loop (never from inside the call), also
 * after xport_cancel (then with -ECANCELED unless the op had already finished). After
 * xport_free no callback runs.
 *
 * All calls on the loop's thread. At most one recv, one send and one TLS start at a time, and no
 * recv or send while a TLS start runs.
 */
#ifndef RIPTIDE_XPORT_H
#define RIPTIDE_XPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "engine/loop/loop.h"
#include "tls/tls.h"

struct xport;

/* Callbacks, all with the user pointer given to xport_new.
 * recv_done: res > 0 plaintext bytes were written to the buffer of xport_recv; 0 the peer
 *   closed (TCP FIN, or a TLS close_notify); -ETIMEDOUT, -ECANCELED, -EPROTO (TLS failure:
 *   xport_error) or another -errno.
 * send_done: res > 0 plaintext bytes of the iovecs were consumed and are on their way (for TLS:
 *   their ciphertext was handed to the kernel), possibly fewer than offered: send the rest
 *   again; -ETIMEDOUT, -ECANCELED, -EPROTO or -errno (-EPIPE, -ECONNRESET...).
 * tls_done: 0 the handshake completed (xport_tls_info has the details); -ETIMEDOUT,
 *   -ECANCELED, -EPROTO (xport_error says why, e.g. a verification failure), 0-byte EOF as
 *   -ECONNRESET, or -errno. */
struct xport_ops {
	void (*recv_done)(void *user, long res);
	void (*send_done)(void *user, long res);
	void (*tls_done)(void *user, int res);
};

/* xport_new: a plain transport over the connected (or connecting) socket fd on loop l. fd stays
 * the caller's (xport never closes it). ops must outlive the transport. Returns the handle
 * (allocation failure aborts, like the rest of the engine). */
struct xport *xport_new(struct loop *l, int fd, const struct xport_ops *ops, void *user);

/* xport_free: forget the transport. In-flight ops are cancelled; the memory is released when
 * the last of them completes; no callback runs after this call. NULL ok. */
void xport_free(struct xport *x);

/* xport_recv: receive up to cap (> 0) plaintext bytes into buf (which must stay valid until
 * recv_done). Returns 0 (recv_done follows) or -EBUSY (a recv or TLS start is running). */
int xport_recv(struct xport *x, void *buf, size_t cap, uint64_t timeout_ms);

/* xport_send: send plaintext from iov[0..n) (the bytes must stay valid until send_done; the
 * iovec array itself is copied; at most XPORT_IOV entries are used). Returns 0 (send_done
 * follows) or -EBUSY (a send or TLS start is running), -EINVAL (nothing to send). */
#define XPORT_IOV 64
int xport_send(struct xport *x, const struct iovec *iov, unsigned n, uint64_t timeout_ms);

/* xport_start_tls: switch to TLS over connection t (made with tls_new on a client or server
 * context; xport owns it from now on and frees it) and run the handshake. No recv or send may
 * be running. Returns 0 (tls_done follows) or -EBUSY. */
int xport_start_tls(struct xport *x, struct tls *t, uint64_t timeout_ms);

/* xport_cancel: cancel the running recv, send and TLS start; their callbacks come with
 * -ECANCELED (or their real result if they raced). */
void xport_cancel(struct xport *x);

/* xport_cancel_recv: the same for the running recv (or TLS start) only; a send goes on. */
void xport_cancel_recv(struct xport *x);

/* xport_recv_busy / xport_send_busy: whether a recv / a send (incl. a TLS start) is running. */
bool xport_recv_busy(const struct xport *x);
bool xport_send_busy(const struct xport *x);

/* xport_is_tls: whether TLS is on (after a successful tls_done). */
bool xport_is_tls(const struct xport *x);

/* xport_tls_info: what the handshake negotiated (zeroed when TLS is off). */
void xport_tls_info(const struct xport *x, struct tls_info *i);

/* xport_error: the last TLS failure in one line ("" if none). */
const char *xport_error(const struct xport *x);

#endif
