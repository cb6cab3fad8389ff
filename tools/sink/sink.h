/* sink — shared types of riptide-sink (CLI/threads in sink_main.c, SMTP behaviour in
 * sink_hooks.c, per-command fault rules in sink_fault.c, TLS and AUTH in sink_sec.c).
 *
 * Why: riptide-sink is a test and benchmark receiver built on engine/smtpd; its files share
 * the options (fault rules included), the per-worker counters and log buffer, and the hooks.
 */
#ifndef RIPTIDE_SINK_H
#define RIPTIDE_SINK_H

#include "engine/loop/loop.h"
#include "engine/smtpd/smtpd.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SINK_MAX_LISTEN 16
#define SINK_LOG_FLUSH	(64u * 1024u) /* flush the per-worker log buffer beyond this */
#define SINK_MAX_RULES	8	      /* fault rules per step */
#define SINK_MAX_AUTH	16	      /* --auth credentials */

/* The SMTP steps a fault rule can hit. */
enum sink_step {
	SINK_STEP_CONNECT, /* the greeting */
	SINK_STEP_HELO,	   /* EHLO or HELO */
	SINK_STEP_MAIL,
	SINK_STEP_RCPT,
	SINK_STEP_DATA, /* the DATA command (before the 354) */
	SINK_STEP_DOT,	/* the end of the body */
	SINK_NSTEPS
};

/* One fault rule (--reply, --drop-after, --421-after, -g). */
struct sink_fault {
	int code;		   /* the reply code, or 0: close without a reply */
	const char *text;	   /* its text (in argv or built in); NULL when code is 0 */
	unsigned every;		   /* fires on every Nth occurrence reaching it (1: each) */
	unsigned pct;		   /* ... with this probability in percent (100: always) */
	atomic_uint_fast64_t seen; /* occurrences that reached it (only counted when every>1) */
};

/* One --auth USER:PASSWORD (both point into argv). */
struct sink_cred {
	const char *user;
	size_t user_len;
	const char *password;
};

struct sink_opts {
	const char *listen[SINK_MAX_LISTEN];
	unsigned nlisten;
	const char *tls_listen[SINK_MAX_LISTEN]; /* --tls-listen: implicit-TLS listeners */
	unsigned ntls_listen;
	const char *tls_cert, *tls_key; /* --tls-cert/--tls-key: STARTTLS offered */
	bool tls_fail;			/* --tls-fail: STARTTLS offered, every handshake fails */
	struct sink_cred auth[SINK_MAX_AUTH]; /* --auth */
	unsigned nauth;
	bool auth_required;  /* --auth-required: MAIL without AUTH is 530 5.7.0 */
	bool auth_plaintext; /* --auth-plaintext: AUTH offered without TLS too */
	unsigned threads;
	const char *out_path; /* -o */
	const char *dir;      /* -d */
	const char *stats;    /* -c */
	uint64_t drop_after;  /* -x */
	bool drop;
	uint64_t delay_ms;  /* -w */
	uint64_t max_size;  /* -s */
	bool quiet;	    /* -q */
	uint32_t hide_ext;  /* --no-<extension>: SMTP_EXT_* bits not to advertise */
	unsigned max_rcpts; /* --max-rcpts, 0 = smtpd's default */
	bool log_peer;	    /* --log-peer: peer= and helo= end each -o line */
	struct sink_fault fault[SINK_NSTEPS][SINK_MAX_RULES];
	unsigned nfault[SINK_NSTEPS];
};

/* Counters of one worker: written by its thread only, read by the main thread. */
struct sink_counters {
	atomic_uint_fast64_t messages, recipients, bytes, connections, rejected;
	atomic_uint_fast64_t tls_sessions; /* sessions that had TLS up when they closed */
};

struct sink_worker {
	unsigned idx;
	pthread_t tid;
	struct loop *l;
	struct smtpd_worker *sw;
	struct smtpd_server *srv;
	struct sink_counters c;
	char *log;
	size_t log_len, log_cap;
	struct loop_op flush_op;
	struct loop_msg stop_msg;
	bool stopping;
	int err;
	sem_t *ready;
	uint64_t rng; /* xorshift64* state for the %P fault rules */
};

/* Per-session owner data (smtpd session_data_size). */
struct sink_sess {
	struct smtpd_session *s;
	struct loop_op delay_op;
	int data_code; /* 0, 450 or 550: the verdict for the end of DATA */
	char tls[16];  /* the TLS version once TLS is up ("TLSv1.3"), "" before */
	char peer[48]; /* the client's address for the log line ("127.0.0.1", "::1", "unix"),
			* formatted at the session's first logged message, "" before */
};

/* Process-wide state. */
struct sink {
	struct sink_opts o;
	struct tls_ctx *tls;	      /* the smtpd_config.tls_ctx (sink_sec.c), or NULL */
	int out_fd;		      /* -o file, O_APPEND, or -1 */
	atomic_uint_fast64_t eml_seq; /* -d file numbering */
	/* Sessions of all workers together (stats open_now and max_concurrent): open counts the
	 * sessions between on_connect and on_close, max the highest value open ever took. */
	atomic_uint_fast64_t open, max_open;
};

extern struct sink sink_g;

/* sink_hooks_get: the smtpd hook table for options o (sink_hooks.c): the per-recipient
 * behaviours and the fault rules; hooks that o gives nothing to do are left NULL. */
struct smtpd_hooks sink_hooks_get(const struct sink_opts *o);

/* sink_log_flush: write w's buffered -o lines to the output file (loop thread of w, or after
 * it stopped). */
void sink_log_flush(struct sink_worker *w);

/* sink_fnv1a64: FNV-1a 64 of the n bytes at p. */
uint64_t sink_fnv1a64(const void *p, size_t n);

/* sink_fail_seen: count one more sighting of addr for "fail<N>-" and return how many times it
 * was seen before this one (process-wide, thread-safe). */
unsigned sink_fail_seen(const char *addr);

/* sink_fail_free: free the sightings table at exit. */
void sink_fail_free(void);

/* sink_fault_reply: parse "STEP[/N][%P]=CODE[:TEXT]" (--reply) and add the rule to o. arg is
 * kept (TEXT points into it). Returns 0, -EINVAL (syntax, code not valid for the step, control
 * byte in TEXT) or -E2BIG (too many rules for the step). */
int sink_fault_reply(struct sink_opts *o, const char *arg);

/* sink_fault_after: parse "STEP[/N][%P][,STEP...]" (--drop-after when code is 0, --421-after
 * when 421) and add one rule per listed step: close without a reply, or a 421 and close.
 * Returns 0, -EINVAL or -E2BIG. */
int sink_fault_after(struct sink_opts *o, const char *arg, int code);

/* sink_fault_greet: -g CODE: a rejection at the greeting (CODE >= 400) becomes a connect rule;
 * CODE 200..399 keeps the normal greeting. Returns 0, -EINVAL or -E2BIG. */
int sink_fault_greet(struct sink_opts *o, int code);

/* sink_fault_pick: the first rule of step that fires for this occurrence (each rule with /N
 * counts the occurrences that reach it, process-wide), or NULL. Worker w's loop thread. */
const struct sink_fault *sink_fault_pick(struct sink_worker *w, enum sink_step step);

/* sink_sec.c: TLS and AUTH. */

/* sink_auth_add: parse "USER:PASSWORD" (--auth; arg is kept: the credential points into it)
 * into o. USER is 1..255 bytes without blanks or control bytes (it appears in log lines), the
 * password anything after the first ':'. Returns 0, -EINVAL or -E2BIG (too many). */
int sink_auth_add(struct sink_opts *o, const char *arg);

/* sink_sec_check: the TLS and AUTH options of o make sense together (--tls-cert with --tls-key,
 * --tls-fail without them, --tls-listen with either, --auth-plaintext with --auth); otherwise
 * says why on stderr. Warns when --auth can never be offered (no TLS, no UNIX listener, no
 * --auth-plaintext). Returns 0 or -EINVAL. */
int sink_sec_check(const struct sink_opts *o);

/* sink_sec_config: create sink_g.tls for the options (a server context from --tls-cert/--tls-key,
 * or the failing context of --tls-fail) and fill cfg's TLS and AUTH fields. Errors are reported
 * on stderr. Returns 0 or the negative errno of tls_ctx_*_new. */
int sink_sec_config(struct smtpd_config *cfg);

/* sink_sec_listen: open the --tls-listen listeners on srv (after smtpd_server_new with the
 * config of sink_sec_config). Returns 0 or -errno (reported). */
int sink_sec_listen(struct smtpd_server *srv);

/* sink_sec_free: free sink_g.tls (after the server). */
void sink_sec_free(void);

/* sink_on_auth: the smtpd hook for AUTH (the --auth credentials, answered at once); see
 * smtpd.h. */
int sink_on_auth(struct smtpd_session *s, const char *login, const char *password, void *user);

/* sink_sec_close: a session of worker w ends (called from the on_close hook with --tls-cert):
 * count it in tls_sessions if it had TLS up. w's loop thread. */
void sink_sec_close(struct smtpd_session *s, struct sink_worker *w);

#endif
