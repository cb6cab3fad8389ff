/* riptidectl_conn.h — a blocking SMTP client connection for riptidectl test-route (not a
 * public header).
 *
 * Why: test-route is a command-line tool, not a shard loop, so it may block: one socket with a
 * deadline on every wait (poll), and tls/ driven over memory buffers (what the socket gives is
 * fed to tls_feed, what tls_out holds is written to the socket). The dialogue
 * (riptidectl_route.c) then reads like the protocol: send a line, read a reply, start TLS.
 */
#ifndef RIPTIDE_RIPTIDECTL_CONN_H
#define RIPTIDE_RIPTIDECTL_CONN_H

#include "engine/smtp/smtp.h"
#include "engine/util/util.h"
#include "tls/tls.h"

#include <stdbool.h>
#include <stddef.h>

struct riptidectl_conn;

/* One server reply as received: the raw lines (CRLFs included) and their parse; r's pointers
 * point into raw. */
struct riptidectl_reply {
	char raw[16384];
	size_t len;
	struct smtp_reply r;
};

/* riptidectl_now_ms: CLOCK_MONOTONIC in milliseconds (for the step timings). */
double riptidectl_now_ms(void);

/* riptidectl_conn_open: connect to `to` within timeout_ms, bound first to src when its family
 * is AF_INET or AF_INET6 (port 0), else the kernel's choice. Returns 0 and *out (caller frees
 * with riptidectl_conn_close), or negative errno with err (errlen bytes) saying why in one
 * line ("connection refused", "timeout after 2000 ms", "cannot bind source address ...: ..."). */
int riptidectl_conn_open(const struct util_addr *to, const struct util_addr *src,
			 unsigned timeout_ms, struct riptidectl_conn **out, char *err,
			 size_t errlen);

/* riptidectl_conn_close: with TLS on, send a close_notify (best effort, 200 ms at most); close
 * the socket, free c and its TLS connection. NULL is a no-op. */
void riptidectl_conn_close(struct riptidectl_conn *c);

/* riptidectl_conn_send: send the n bytes at p (encrypted once TLS is on), all of them within
 * timeout_ms. Returns 0 or negative errno (riptidectl_conn_error says why). */
int riptidectl_conn_send(struct riptidectl_conn *c, const char *p, size_t n, unsigned timeout_ms);

/* riptidectl_conn_reply: read one complete (possibly multi-line) reply within timeout_ms into
 * *out. Bytes received behind it stay buffered (riptidectl_conn_pending). Returns 0, or
 * -ETIMEDOUT, -ECONNRESET (the server closed), -EBADMSG (not an SMTP reply, or longer than
 * out->raw), -EPROTO (TLS failure) or another negative errno; riptidectl_conn_error says why. */
int riptidectl_conn_reply(struct riptidectl_conn *c, unsigned timeout_ms,
			  struct riptidectl_reply *out);

/* riptidectl_conn_pending: plaintext bytes received and not yet part of a reply. */
size_t riptidectl_conn_pending(const struct riptidectl_conn *c);

/* riptidectl_conn_starttls: run a client handshake on ctx (host: SNI and the name checked, see
 * tls_new) within timeout_ms; afterwards every byte goes through TLS. Nothing may be buffered
 * (the caller checks riptidectl_conn_pending first: RFC 3207 injection). Returns 0, or
 * -EPROTO (riptidectl_conn_error holds tls_error's reason), -ETIMEDOUT, -ECONNRESET, -ENOMEM. */
int riptidectl_conn_starttls(struct riptidectl_conn *c, struct tls_ctx *ctx, const char *host,
			     unsigned timeout_ms);

/* riptidectl_conn_tls_info: what the handshake negotiated (tls_get_info); false (and *i
 * zeroed) when TLS is not on. */
bool riptidectl_conn_tls_info(const struct riptidectl_conn *c, struct tls_info *i);

/* riptidectl_conn_error: the last failure in one line ("" if none); valid until the next call
 * on c. */
const char *riptidectl_conn_error(const struct riptidectl_conn *c);

#endif
