/* peer — the scripted peer shared by the smtpd and smtpc unit tests: a blocking thread that
 * plays a table of steps against the code under test over a UNIX socket in a temp dir (or,
 * for the client side, over TCP from a chosen local address: peer_tcp).
 *
 * Why: smtpd and smtpc make promises about bytes on the wire and about what runs when, which
 * only show against a real socket and a real loop. Both tests run the loop on the test thread
 * and let this thread act as the other side (the client for smtpd, the server for smtpc). The
 * peer only records what it read (got[i] for step i); peer_check compares on the test thread
 * after the loop stopped, so cmocka's longjmp never crosses threads. peer_init arms alarm() so
 * a hang fails the test instead of stalling the suite.
 */
#ifndef RIPTIDE_TESTS_PEER_H
#define RIPTIDE_TESTS_PEER_H

#include "engine/loop/loop.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define PEER_MAX_STEPS 24
#define PEER_BUF       (1u << 20)
#define PEER_WAIT_MS   5000 /* PEER_WAIT gives up after this long */

enum peer_kind {
	PEER_END = 0,
	PEER_SEND,    /* write data */
	PEER_LINES,   /* read n CRLF lines */
	PEER_REPLIES, /* read n complete SMTP replies (a reply ends with a "ddd " line) */
	PEER_ONCE,    /* exactly one read() (or what is already buffered) */
	PEER_QUIET,   /* poll n ms: "" if nothing arrived, else what did */
	PEER_EOF,     /* read until EOF ("<strerror>" appended on a read error) */
	PEER_CLOSE,   /* close the connection now */
	PEER_CALL,    /* run fn on the loop thread and wait until it has run */
	PEER_WAIT,    /* poll until(user) for PEER_WAIT_MS: got data if it held, else "timed out" */
	PEER_TRICKLE, /* write data one byte every n ms; stop early once the other side has
		       * something to read (a reply, or EOF): a slow client */
};

struct peer_step {
	enum peer_kind kind;
	const char *data; /* PEER_SEND: bytes to write; reading steps: the wanted text */
	unsigned n;	  /* PEER_LINES / PEER_REPLIES: how many; PEER_QUIET: ms; PEER_SEND: bytes
			   * of data to write (0: strlen(data), so data may hold NUL only with n) */
	void (*fn)(void *user);
	bool (*until)(void *user);
};

/* clang-format off */
#define SEND(s)	       {.kind = PEER_SEND, .data = (s)}
#define SEND_RAW(lit)  {.kind = PEER_SEND, .data = (lit), .n = sizeof(lit) - 1} /* NUL ok */
#define LINES(k, s)    {.kind = PEER_LINES, .data = (s), .n = (k)}
#define EXPECT(k, s)   {.kind = PEER_REPLIES, .data = (s), .n = (k)}
#define ONCE(s)	       {.kind = PEER_ONCE, .data = (s)}
#define QUIET(t)       {.kind = PEER_QUIET, .data = "", .n = (t)}
#define EXPECT_EOF(s)  {.kind = PEER_EOF, .data = (s)}
#define CLOSE()	       {.kind = PEER_CLOSE}
#define CALL(f)	       {.kind = PEER_CALL, .fn = (f)}
#define WAIT(pred, s)  {.kind = PEER_WAIT, .data = (s), .until = (pred)}
#define TRICKLE(s, ms) {.kind = PEER_TRICKLE, .data = (s), .n = (ms)}
/* clang-format on */

/* One scripted peer. dir and path are set by peer_init; the rest is the peer's own state. */
struct peer {
	char dir[64];
	char path[96]; /* the UNIX socket, inside dir */
	int lfd;       /* listening socket after peer_listen, else -1 */
	/* peer_tcp: connect over TCP to tcp_to (tcp_len 0: use path) from tcp_from ("": any) */
	struct sockaddr_storage tcp_to;
	socklen_t tcp_len;
	char tcp_from[64];
	struct loop *l;
	const struct peer_step *steps;
	void *user;
	void (*on_end)(void *user);
	char *got[PEER_MAX_STEPS];
	char *buf;
	size_t blen;
	pthread_t thread;
	struct loop_msg call_msg, end_msg;
	void (*call_fn)(void *user);
	atomic_bool call_done;
};

/* peer_init: arm alarm(20), make the temp dir /tmp/rt-<tag>-XXXXXX and set path to <dir>/<sock>.
 * The socket itself is not created. Returns 0 or -errno; peer_fini is safe either way. */
int peer_init(struct peer *p, const char *tag, const char *sock);

/* peer_listen: bind and listen on path; the peer thread will then accept one connection
 * instead of connecting. Returns 0 or -errno. */
int peer_listen(struct peer *p);

/* peer_tcp: make the thread connect over TCP to `to` (len bytes) instead of the UNIX path,
 * from the local IPv4/IPv6 literal `from` (bound before connecting, e.g. "127.0.0.2" to play a
 * client from another address; NULL: the kernel's choice). Call before peer_start. */
void peer_tcp(struct peer *p, const struct sockaddr *to, socklen_t len, const char *from);

/* peer_addr: write "unix:<path>" into buf (always NUL-terminated). */
void peer_addr(const struct peer *p, char *buf, size_t len);

/* peer_start: start the thread, which accepts (after peer_listen) or connects to path, plays
 * steps (at most PEER_MAX_STEPS, ended by {0}), closes, and then, if on_end is set, posts it
 * to run on l's thread. fn/until of the steps get user. Returns 0 or -errno. */
int peer_start(struct peer *p, struct loop *l, const struct peer_step *steps, void *user,
	       void (*on_end)(void *user));

/* peer_join: wait for the thread to finish. Returns 0 or -errno. */
int peer_join(struct peer *p);

/* peer_check: on the test thread after peer_join, assert (cmocka) that every reading step
 * read exactly its wanted text. */
void peer_check(const struct peer *p);

/* peer_fini: free what the peer recorded, close the listening socket, remove the socket and
 * the temp dir, and disarm the alarm. */
void peer_fini(struct peer *p);

/* peer_logf: append printf-style text to the NUL-terminated log of size cap (truncating). */
void peer_logf(char *log, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
