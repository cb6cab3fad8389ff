/* tls_client — a scripted SMTP client thread that can switch to TLS, for the smtpd TLS tests:
 * blocking TCP, and tls/ driven by hand over it (tls_feed what read() got, write() what
 * tls_out holds), so STARTTLS, implicit TLS and a client pipelining plaintext behind STARTTLS
 * can all be played against the real server.
 *
 * Why not the shared peer (tests/unit/peer): it speaks plaintext only; and not engine/xport:
 * the server under test runs on xport, so its client should not share that code. The thread
 * only records what it read (got[i] for step i); tcli_check compares on the test thread.
 */
#ifndef RIPTIDE_TESTS_TLS_CLIENT_H
#define RIPTIDE_TESTS_TLS_CLIENT_H

#include "engine/loop/loop.h"
#include "tls/tls.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define TCLI_MAX_STEPS 32

enum tcli_kind {
	TC_END = 0,
	TC_SEND,     /* write data (encrypted once TLS is on) */
	TC_REPLIES,  /* read n complete SMTP replies */
	TC_STARTTLS, /* run the client handshake now: got "ok" or "failed: <tls_error>" */
	TC_QUIET,    /* wait n ms: "" if no plaintext arrived, else what did */
	TC_EOF,	     /* read until the server closes */
	TC_GARBAGE,  /* write data raw, even when TLS is on or about to be */
};

struct tcli_step {
	enum tcli_kind kind;
	const char *data; /* TC_SEND / TC_GARBAGE: bytes to write; reading steps: wanted text */
	unsigned n;
};

/* clang-format off */
#define T_SEND(s)      {.kind = TC_SEND, .data = (s)}
#define T_EXPECT(k, s) {.kind = TC_REPLIES, .data = (s), .n = (k)}
#define T_STARTTLS(s)  {.kind = TC_STARTTLS, .data = (s)}
#define T_QUIET(ms, s) {.kind = TC_QUIET, .data = (s), .n = (ms)}
#define T_EOF(s)       {.kind = TC_EOF, .data = (s)}
#define T_EOF_ANY      {.kind = TC_EOF, .data = NULL} /* recorded, not compared */
#define T_GARBAGE(s)   {.kind = TC_GARBAGE, .data = (s)}
/* clang-format on */

struct tcli {
	struct sockaddr_storage to;
	socklen_t tolen;
	struct tls_ctx *ctx; /* client context for TC_STARTTLS / implicit */
	const char *host;    /* SNI and name check */
	bool implicit;	     /* handshake right after connect */
	const struct tcli_step *steps;
	char *got[TCLI_MAX_STEPS];
	/* thread state */
	int fd;
	struct tls *t;
	char *buf;
	size_t blen;
	struct tls_info info; /* after a successful handshake */
	pthread_t th;
	struct loop *l;
	struct loop_msg end_msg;
	void (*on_end)(void *user);
	void *user;
};

/* tcli_start: start the thread: connect to to/tolen, play steps (at most TCLI_MAX_STEPS), close,
 * then post on_end(user) to loop l. alarm(20) guards against a hang. Returns 0 or -errno. */
int tcli_start(struct tcli *c, struct loop *l, const struct tcli_step *steps,
	       void (*on_end)(void *user), void *user);

/* tcli_join: wait for the thread. Returns 0 or -errno. */
int tcli_join(struct tcli *c);

/* tcli_check: cmocka-assert every reading step read exactly its wanted text (a step whose
 * data is NULL is not compared). */
void tcli_check(const struct tcli *c);

/* tcli_fini: free what the thread recorded; disarm the alarm. */
void tcli_fini(struct tcli *c);

#endif
