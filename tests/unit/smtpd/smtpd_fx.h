/* smtpd_fx — the fixture shared by the smtpd unit tests (test_smtpd.c, test_smtpd_hard.c): a
 * real server and worker on a real loop, accepting on a UNIX socket in a temp dir, the client
 * side played by the scripted peer of tests/unit/peer.
 *
 * Why: both test files need the same session runner and the same recording hooks; one copy
 * keeps their behaviour identical and each file about what it tests.
 */
#ifndef RIPTIDE_TESTS_SMTPD_FX_H
#define RIPTIDE_TESTS_SMTPD_FX_H

#include "engine/loop/loop.h"
#include "engine/smtpd/smtpd.h"
#include "engine/util/util.h"
#include "tests/unit/peer/peer.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#define MAX_SIZE  1000 /* small limits so the tests can cross them */
#define MAX_RCPTS 2
#define MAX_LINE  64

#define GREETING "220 mx.test ESMTP riptide\r\n"
#define EHLO_REPLY                                                                                 \
	"250-mx.test\r\n250-PIPELINING\r\n250-SIZE "                                               \
	"1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n"                                      \
	"250 ENHANCEDSTATUSCODES\r\n"

#define OK_MAIL	 "250 2.1.0 Ok\r\n"
#define OK_RCPT	 "250 2.1.5 Ok\r\n"
#define GO_DATA	 "354 End data with <CR><LF>.<CR><LF>\r\n"
#define OK_DOT	 "250 2.0.0 Ok\r\n"
#define SHUTTING "421 4.3.2 Service shutting down\r\n"

/* clang-format off */
#define WAIT_CLOSE() WAIT(fx_session_closed, "closed") /* on_close ran while the peer kept open */
#define HELLO	     EXPECT(1, GREETING), SEND("EHLO client.test\r\n"), EXPECT(1, EHLO_REPLY)
#define BYE	     SEND("QUIT\r\n"), EXPECT(1, "221 2.0.0 Bye\r\n"), EXPECT_EOF("")
/* clang-format on */

#define logf_(f, ...) peer_logf((f)->log, sizeof((f)->log), __VA_ARGS__)

struct fx {
	struct peer peer;
	struct loop *l;
	struct smtpd_server *srv;
	struct smtpd_worker *w;
	struct smtpd_config cfg;
	struct smtpd_hooks hooks;
	/* what the hooks saw (loop thread; read after join) */
	char log[2048];
	unsigned mails, datas, done_calls;
	atomic_uint closes; /* also polled by the peer (WAIT_CLOSE) */
	char *body;	    /* taken or copied body of the last on_data */
	size_t body_len;
	bool second_take_null;
	struct loop_op async_op;
	struct smtpd_session *async_s;
	/* test_smtpd_hard.c */
	atomic_size_t progress; /* body bytes seen by on_data_progress (polled by the peer) */
	size_t body_cap;	/* smtpd_session_body_cap sampled on the loop thread */
	int async_code;		/* what the async timer replies; 0: it drops the session */
	const char *async_text;
	const char *prepend; /* on_data_begin prepends this */
	char sel[64];	     /* picks a hook's verdict (a HELO name or the sender) */
	/* test_smtpd_auth.c: fx_run listens on 127.0.0.1 (TCP) and the peer connects from this
	 * address, when set (NULL: the UNIX socket) */
	const char *tcp_from;
};

/* Default hooks: record what they saw in f->log and accept. */
int fx_hook_mail(struct smtpd_session *s, const char *sender, const char *params, void *user);
int fx_hook_rcpt(struct smtpd_session *s, const char *rcpt, void *user);
int fx_hook_data(struct smtpd_session *s, const struct smtpd_envelope *env, void *user);
void fx_hook_close(struct smtpd_session *s, void *user);

/* fx_keep_body: copy len bytes of b (and the NUL at b[len]) into f->body. */
void fx_keep_body(struct fx *f, const char *b, size_t len);

/* fx_worker_done: worker shutdown done: count it and stop the loop (loop thread). */
void fx_worker_done(struct smtpd_worker *w, void *arg);

/* fx_end_script: the peer's script is over: shut the worker down (loop thread). */
void fx_end_script(void *user);

/* fx_session_closed: on_close has run (peer thread, for WAIT). */
bool fx_session_closed(void *user);

/* fx_setup / fx_teardown: cmocka fixture: a temp dir, small limits, the default hooks. */
int fx_setup(void **state);
int fx_teardown(void **state);

/* fx_run: run one session: server + worker on a fresh loop, the peer plays steps, the loop
 * runs until the worker's shutdown completes; then assert the worker drained, the one session
 * closed once, and what the peer read. Over TCP from f->tcp_from when that is set. */
void fx_run(struct fx *f, const struct peer_step *steps);

#endif
