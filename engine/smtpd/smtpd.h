/* smtpd — reusable ESMTP server sessions on the io_uring loop (injection listener, riptide-sink).
 *
 * Why: the daemon's injection listener and riptide-sink speak exactly the same server side of
 * SMTP; only their decisions differ. This module owns sockets, buffers, pipelining, limits and
 * the protocol state machine; the owner decides through hooks, synchronously or later (async),
 * and may take the received body without a copy.
 *
 * Objects:
 *   smtpd_server   immutable config + hooks + listening sockets; shared by all threads.
 *   smtpd_worker   the per-loop part: arms accepts on every listener of the server, owns the
 *                  sessions it accepted. One per loop thread; all its calls on that thread.
 *   smtpd_session  one SMTP connection; valid from on_connect until on_close returns.
 *
 * Listening model: every listening fd is shared by all workers; each worker keeps one
 * single-shot io_uring accept in flight per listener and re-arms it after each completion.
 * The kernel wakes accept waiters exclusively and round-robin, so idle workers take turns and a
 * busy worker (which re-arms late) takes fewer connections. Works the same for TCP and UNIX.
 *
 * Replies from hooks: a hook either
 *   - calls smtpd_reply() before returning (synchronous custom reply), or
 *   - returns SMTPD_DEFAULT without replying (the default positive reply is sent), or
 *   - returns SMTPD_ASYNC and calls smtpd_reply() exactly once later, on the worker's loop
 *     thread (e.g. from a timer or a loop_msg). Until then the session processes no further
 *     input (pipelined commands wait in the buffer) and is never freed.
 *   - returns a negative errno: "451 4.3.0 Local error" is sent.
 * A reply code of 2xx to on_connect/on_helo/on_mail/on_rcpt accepts; anything else rejects that
 * step. 354 to on_data_begin starts the body; anything else rejects DATA. Any 421 reply closes
 * the session after it is sent. A non-2xx on_connect reply closes too. Every hook may instead
 * call smtpd_session_drop() (inside the hook or, after SMTPD_ASYNC, in place of smtpd_reply) to
 * disconnect without a reply: fault injection at any step.
 *
 * Threading: smtpd_server_* on any one thread before/after the workers run; everything else on
 * the worker's loop thread.
 *
 * Typical use (daemon injection listener):
 *   main:    smtpd_server_new(&srv, &cfg, &hooks, NULL); smtpd_server_listen_str(srv, "...");
 *   shard k: smtpd_worker_new(&w, srv, loop_k, shard_k);        (on shard k's thread)
 *   on_data: body = smtpd_take_body(s, &len); copy env->sender/rcpts into the commit request;
 *            post it to the commit thread; return SMTPD_ASYNC;
 *   commit done -> loop_post(loop_k, msg) -> msg fn: smtpd_reply(s, 250, "2.0.0 Ok: queued as
 *            <id>") (or 451 4.3.0 on failure). s stays valid until then.
 *   SIGTERM: post to each shard: smtpd_worker_shutdown(w, grace, done, arg); done ->
 *            smtpd_worker_free(w); after every worker: smtpd_server_free(srv).
 *
 * Wire details: the greeting, EHLO and HELO replies and 354 carry no enhanced status code
 * (RFC 2034 §3, RFC 3463 has no class 3); every other reply does (unless
 * ENHANCEDSTATUSCODES is hidden, see hide_ext). Only <CRLF>.<CRLF> ends DATA. EHLO advertises
 * PIPELINING, SIZE <max_size>, 8BITMIME, SMTPUTF8, DSN, the ehlo_extra keywords and
 * ENHANCEDSTATUSCODES, minus the hidden ones (and AUTH, see below). EXPN, HELP, ETRN, TURN
 * and STARTTLS get "502 5.5.1" (EXPN: see "Injection policy"), so does AUTH when it is not
 * enabled. Addresses: control bytes and malformed UTF-8 are 501 5.1.3 (smtp_cmd_parse); a
 * non-ASCII sender or recipient without "MAIL ... SMTPUTF8" is 553 5.6.7 (RFC 6531). A HELO/EHLO
 * name with a control byte or malformed UTF-8 is "501 5.5.4 Error: invalid HELO/EHLO host name"
 * (on_helo is not called). MAIL SIZE= over max_size, or of 20 significant digits or more, is
 * 552 5.3.4; a SIZE= that is not all digits is 501 5.5.4.
 *
 * DSN (RFC 3461): EHLO advertises DSN (unless hidden, see hide_ext); a client that greeted with
 * EHLO may then give RET=FULL|HDRS and ENVID=<xtext> on MAIL, and NOTIFY=NEVER or a list of
 * SUCCESS,FAILURE,DELAY and ORCPT=<addr-type>;<xtext> on RCPT (keywords and RET/NOTIFY values
 * in any case). Their decoded values reach on_data in the envelope. A duplicate, a malformed
 * value, a decoded value that is not printable ASCII, an ENVID over 100 or an ORCPT address over
 * 500 decoded bytes is "501 5.5.4 <what is wrong>"; after HELO (or with DSN hidden) these
 * parameters are "555 5.5.4 Unsupported parameter" like any unknown one, and so is any other
 * RCPT parameter.
 *
 * AUTH (RFC 4954; only with cfg.auth and an on_auth hook): PLAIN and LOGIN, advertised in the
 * EHLO reply ("AUTH PLAIN LOGIN") and accepted only on a secure session: a UNIX socket client, or
 * one whose session was marked secure (TLS up, smtpd_session_set_secure), or anywhere with
 * cfg.auth_plaintext. Elsewhere AUTH is not advertised and gets "538 5.7.11 Encryption required
 * for requested authentication mechanism".
 * The exchange: "334 " challenges (LOGIN: "Username:", "Password:" in base64), an initial
 * response on the AUTH line ("=" for an empty one), "*" cancels ("501 5.7.0 Authentication
 * aborted"), a response that is not strict base64 or not a well-formed PLAIN/LOGIN answer is
 * "501 5.5.2", AUTH after HELO (not EHLO), a second AUTH after success and AUTH inside a
 * transaction are "503 5.5.1", another mechanism "504 5.5.4 Unrecognized authentication type",
 * a PLAIN authorization identity other than the login "535 5.7.8". The decoded login and password
 * go to on_auth, whose verdict (smtpd_auth_result, usually async) gives "235 2.7.0
 * Authentication successful" or "535 5.7.8 Authentication credentials invalid" (counted as an
 * error, see max_errors). Payloads never reach a trace ("AUTH PLAIN ****") and are wiped from
 * the session's buffers once the hook has had them.
 *
 * Injection policy (cfg.policy; off for other owners such as riptide-sink): a client is trusted
 * when it came over a UNIX socket or from one of cfg.trusted. A client neither trusted nor
 * authenticated gets "530 5.7.0 Authentication required" for any RCPT whose domain is not in
 * cfg.relay_domains (MAIL is accepted, so relay_domains can be reached), so with no trusted
 * network and no relay domain nothing is reachable without AUTH. VRFY answers "252 2.5.2"
 * without looking anything up (naming the address only with cfg.vrfy), EXPN "502 5.5.1 EXPN not
 * supported". Without cfg.policy VRFY answers "252 2.5.0 Cannot VRFY user, but will accept
 * message". Independent of cfg.policy: cfg.sender_policy holds an authenticated client to its
 * own address or domains at MAIL ("553 5.7.1 Sender address rejected: not owned by user
 * <login>"; the null sender <> is always allowed: DSNs from the client use it), and cfg.max_rset
 * bounds the RSETs since the last accepted message ("421 4.7.0 Too many RSET commands", close).
 *
 * Slow clients: each recv has a timeout (cmd_timeout_ms / data_timeout_ms) and, on top, one
 * command line must arrive whole within cmd_deadline_ms of its first byte (to its LF; waiting
 * idle for the next command is bounded by cmd_timeout_ms alone), and a whole body (to the
 * end-of-data terminator) within data_deadline_ms of the 354, counted from when the server starts
 * waiting for body bytes (Postfix's smtpd_per_record_deadline idea: a client trickling one byte per
 * read timeout cannot hold a session forever). On expiry: "421 4.4.2 <hostname> Error: timeout
 * exceeded" and close.
 *
 * Memory: the body buffer grows geometrically as bytes arrive from a small start; an announced
 * "SIZE=" is only checked against max_size, never allocated ahead.
 *
 * Closing is lingering (shutdown(SHUT_WR), then input is drained until EOF, at most 2 s) so
 * unread pipelined input never turns the close into a RST that destroys our last replies.
 */
#ifndef RIPTIDE_SMTPD_H
#define RIPTIDE_SMTPD_H

#include "tls/tls.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "engine/loop/loop.h"
#include "engine/util/util.h"

struct smtpd_server;
struct smtpd_worker;
struct smtpd_session;

/* Hook return values (a hook may also return a negative errno). */
enum {
	SMTPD_DEFAULT = 0, /* use the reply given with smtpd_reply() inside the hook, or default */
	SMTPD_ASYNC = 1,   /* smtpd_reply() will be called later */
};

/* What on_data sees: valid until the DATA reply has been given (smtpd_reply or default).
 * Strings are NUL-terminated; sender is "" for the null reverse-path <>. The body is
 * unstuffed and CRLF-normalised; body[body_len] is a NUL byte (not part of the body). */
struct smtpd_envelope {
	const char *sender;
	const char *const *rcpts;
	unsigned nrcpts;
	const char *body;
	size_t body_len;
	bool body_8bit; /* MAIL ... BODY=8BITMIME */
	bool smtputf8;	/* MAIL ... SMTPUTF8 (RFC 6531) */
	/* DSN (RFC 3461; only from a client that was offered DSN, see "DSN" above). */
	const char *envid;	   /* MAIL ... ENVID= decoded from xtext (printable ASCII, space
				      included, at most SMTP_ENVID_MAX bytes), "" if none */
	uint8_t ret;		   /* MAIL ... RET=: SMTP_RET_FULL / _HDRS, SMTP_RET_NONE if none */
	const uint8_t *notify;	   /* nrcpts entries, rcpts' order: SMTP_NOTIFY_* bits (NEVER
				      alone, or SUCCESS|FAILURE|DELAY), 0 = NOTIFY not given */
	const char *const *orcpts; /* nrcpts entries: ORCPT= decoded, "addr-type;address" (the
				      address printable ASCII, at most SMTP_ORCPT_MAX bytes), ""
				      if none */
};

/* Hooks; any may be NULL (NULL means: accept with the default reply). `user` is the worker's
 * user pointer when smtpd_worker_new got one, else the server's. */
struct smtpd_hooks {
	/* Connection accepted, before the greeting. Default: "220 <host> ESMTP <greeting>". */
	int (*on_connect)(struct smtpd_session *s, void *user);
	/* MAIL FROM accepted syntactically and against limits (SIZE, BODY). params: the ESMTP
	 * parameters as received (valid during the call). Default: 250 2.1.0 Ok. */
	int (*on_mail)(struct smtpd_session *s, const char *sender, const char *params, void *user);
	/* RCPT TO, after syntax and the recipient limit. Default: 250 2.1.5 Ok. */
	int (*on_rcpt)(struct smtpd_session *s, const char *rcpt, void *user);
	/* Body received (terminator seen, within the size limit). Default: 250 2.0.0 Ok.
	 * Whatever the reply, the transaction ends with it. */
	int (*on_data)(struct smtpd_session *s, const struct smtpd_envelope *env, void *user);
	/* Optional, called after each chunk of body bytes arrives (body_bytes so far). Return
	 * nonzero to drop the connection at once without a reply (fault injection). */
	int (*on_data_progress)(struct smtpd_session *s, size_t body_bytes, void *user);
	/* The session is going away (after its last op completed); only for sessions that got
	 * on_connect. Do not call smtpd_* on s after this returns. */
	void (*on_close)(struct smtpd_session *s, void *user);
	/* A syntactically valid HELO/EHLO, before its reply. name: the host name the client gave
	 * (NUL-terminated, valid during the call; smtpd_session_helo/esmtp still show the previous
	 * greeting until it is accepted). Default: the standard 250 reply (with the EHLO
	 * extensions); a 2xx from the hook also gets that standard reply (its text is not used).
	 * Any other code rejects: nothing changes (state, transaction and previous greeting are
	 * kept), so a client that has not greeted yet must greet again. */
	int (*on_helo)(struct smtpd_session *s, const char *name, void *user);
	/* A valid DATA command (after MAIL and at least one accepted RCPT), before the 354.
	 * Default: "354 End data with <CR><LF>.<CR><LF>". A 354 from the hook (its own text) starts
	 * the body; any other code rejects DATA and resets the transaction (the client starts over
	 * with MAIL). The hook, or the owner before its async reply, may call smtpd_body_prepend.
	 */
	int (*on_data_begin)(struct smtpd_session *s, void *user);
	/* AUTH (see "AUTH" above): the client gave login and password (NUL-terminated; any bytes
	 * but NUL; valid only during the call: they are wiped when it returns, so copy what the
	 * verification needs). The owner answers with smtpd_auth_result(), inside the hook or,
	 * after returning SMTPD_ASYNC, later on the loop thread (e.g. after a slow hash on another
	 * thread and a tarpit delay), or with smtpd_reply(s, 454, "4.7.0 ...") for a temporary
	 * failure. Default (no answer, SMTPD_DEFAULT): 535. Without this hook AUTH is not
	 * offered. */
	int (*on_auth)(struct smtpd_session *s, const char *login, const char *password,
		       void *user);
};

/* cfg.sender_policy: what an authenticated client may give as MAIL FROM (<> always). */
enum smtpd_sender_policy {
	SMTPD_SENDER_ANY = 0,	      /* anything */
	SMTPD_SENDER_OWN_ADDRESS = 1, /* the login name (local part exact, domain any case) */
	SMTPD_SENDER_OWN_DOMAIN = 2,  /* the login's domain, or one of the domains the owner
				       * gave with smtpd_auth_result */
};

#define SMTPD_AUTH_LOGIN_MAX   256u /* bytes of a login name, NUL included */
#define SMTPD_AUTH_DOMAINS_MAX 512u /* bytes of smtpd_auth_result's domains, NUL included */

/* Server configuration; zero fields take the defaults shown. Copied by smtpd_server_new
 * (strings included). */
struct smtpd_config {
	const char *hostname;	       /* default: gethostname() */
	const char *greeting;	       /* text after "220 <hostname> ESMTP ", default "riptide" */
	uint64_t max_size;	       /* message size limit in bytes, default 100 MiB */
	unsigned max_rcpts;	       /* recipients per transaction, default 1000 */
	unsigned max_line;	       /* command line bytes without CRLF, default 2048, max 4096 */
	unsigned max_errors;	       /* protocol errors before 421 4.7.0, default 20 */
	unsigned max_sessions;	       /* GLOBAL: sessions of all workers of this server together
					* (one atomic count), 0 = unlimited; beyond it a new
					* connection gets "421 4.7.0 Error: too many connections"
					* and is closed (it does not count) */
	uint64_t cmd_timeout_ms;       /* one recv while waiting for a command, default 300 s */
	uint64_t data_timeout_ms;      /* one recv of body bytes, default 180 s */
	uint64_t send_timeout_ms;      /* one send, default 300 s */
	uint64_t reply_delay_ms;       /* delay every reply by this much (test tarpit), default 0 */
	const char *const *ehlo_extra; /* extra EHLO keywords, NULL-terminated; may be NULL */
	size_t session_data_size;      /* bytes of zeroed owner data per session, default 0 */
	bool trace;		       /* log every state transition to stderr */
	uint64_t cmd_deadline_ms;      /* whole command line, from its first byte to its LF,
					* default 300 s */
	uint64_t data_deadline_ms;     /* whole body, from the 354 to the end-of-data terminator,
					* default 600 s */
	struct tls_ctx *tls_ctx;       /* server context of tls/ (certificate): STARTTLS is
					* offered and implicit-TLS listeners work; NULL = no TLS.
					* Must outlive the server. */
	uint32_t hide_ext;	       /* SMTP_EXT_* bits not to advertise in the EHLO reply:
					* PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN,
					* ENHANCEDSTATUSCODES (others are ignored). A hidden SIZE /
					* 8BITMIME / SMTPUTF8 / DSN makes its parameters (SIZE=,
					* BODY=, SMTPUTF8; RET=, ENVID=, NOTIFY=, ORCPT=) a
					* "555 5.5.4 Unsupported parameter", as from a server that
					* lacks it (the size limit still applies to the body); a
					* hidden ENHANCEDSTATUSCODES strips the enhanced code from
					* every reply (the owner's too). Default 0. */
	/* AUTH and the injection policy (see above); zero: AUTH off, no policy. */
	bool auth;	     /* offer AUTH PLAIN LOGIN on secure sessions (on_auth
			      * must be set) */
	bool auth_plaintext; /* ...and on sessions that are not secure too (test receivers
			      * such as riptide-sink; never the daemon) */
	bool policy;	     /* trusted / relay_domains check at RCPT, VRFY and
			      * EXPN answers */
	const struct util_net *trusted; /* policy: trusted networks (NOT copied: must
					 * outlive the server) */
	unsigned ntrusted;		/* entries of trusted */
	const char *relay_domains;	/* policy: util_domains list (NOT copied), or NULL */
	bool vrfy;			/* policy: VRFY's 252 names the address */
	enum smtpd_sender_policy sender_policy; /* for authenticated clients */
	unsigned max_rset;			/* RSETs since the last accepted message before
						 * 421 4.7.0; 0 = no limit */
};

/* smtpd_server_new: validate and copy cfg, remember hooks (copied) and user. Returns 0 and
 * *out, or -EINVAL (bad limits / EHLO extra lines too long). Free with smtpd_server_free. */
int smtpd_server_new(struct smtpd_server **out, const struct smtpd_config *cfg,
		     const struct smtpd_hooks *hooks, void *user);

/* smtpd_server_listen: create a listening socket on addr (TCP: SO_REUSEADDR, IPV6_V6ONLY for
 * v6; UNIX: a stale socket file at the path is unlinked first). Call before any worker is
 * created. Returns 0 or -errno (-EADDRINUSE...). */
int smtpd_server_listen(struct smtpd_server *srv, const struct util_addr *addr);

/* smtpd_server_listen_tls: the same for an implicit-TLS listener ("smtps"): every session on
 * it runs the TLS handshake (cfg.tls_ctx) before the greeting. -EINVAL without cfg.tls_ctx. */
int smtpd_server_listen_tls(struct smtpd_server *srv, const struct util_addr *addr);

/* smtpd_server_listen_str: same, from "127.0.0.1:2526", "[::1]:2526" or "unix:/path". */
int smtpd_server_listen_str(struct smtpd_server *srv, const char *addr);

/* smtpd_server_free: close the listening sockets (unlinking UNIX paths) and free. Every
 * worker must have been freed first. NULL is a no-op. */
void smtpd_server_free(struct smtpd_server *srv);

/* smtpd_worker_new: attach a worker to loop l (call on l's thread) and arm accepts on every
 * listener of srv. user (may be NULL) overrides the server's user pointer for this worker's
 * hooks. Returns 0 or -errno. */
int smtpd_worker_new(struct smtpd_worker **out, struct smtpd_server *srv, struct loop *l,
		     void *user);

/* smtpd_worker_shutdown: stop accepting on this worker; idle sessions get
 * "421 4.3.2 Service shutting down" and close; a session inside a transaction finishes it
 * (up to its final DATA reply or RSET) and then gets the 421. After grace_ms every session
 * is closed, except one waiting for an async reply, which closes right after that reply.
 * done(w, arg) runs (on the loop thread) once no session and no op is left; it may call
 * smtpd_worker_free and loop_stop. Calling it twice is a no-op. */
void smtpd_worker_shutdown(struct smtpd_worker *w, uint64_t grace_ms,
			   void (*done)(struct smtpd_worker *w, void *arg), void *arg);

/* smtpd_server_sessions: sessions counted against max_sessions right now, all workers together
 * (admitted and not yet closed). Any thread. */
unsigned smtpd_server_sessions(const struct smtpd_server *srv);

/* smtpd_worker_sessions: number of live sessions of this worker. */
unsigned smtpd_worker_sessions(const struct smtpd_worker *w);

/* smtpd_worker_free: free a worker whose shutdown has completed (BUG otherwise). NULL ok. */
void smtpd_worker_free(struct smtpd_worker *w);

/* smtpd_reply: give the reply to the command s is waiting on (see the top of this file).
 * code 200..599; text starts with the enhanced status code, e.g. "2.0.0 Ok: queued as X"
 * (copied, truncated to 500 bytes; must not contain CR/LF). Must be called on the loop
 * thread, exactly once per SMTPD_ASYNC; BUG if s is not waiting for a reply. */
void smtpd_reply(struct smtpd_session *s, int code, const char *text);

/* smtpd_take_body: inside on_data (or before its async reply), take ownership of the body
 * buffer: returns the malloc'ed buffer (free() it; NUL-terminated at *len) and sets *len.
 * The session starts a fresh buffer for its next transaction. Returns NULL if already taken. */
char *smtpd_take_body(struct smtpd_session *s, size_t *len);

/* smtpd_body_prepend: inside on_data_begin (or after it returned SMTPD_ASYNC, before the
 * smtpd_reply that answers it), append n bytes to the start of this transaction's body buffer:
 * they come before the client's data, so on_data's env->body and smtpd_take_body() hold them
 * followed by the body, in one buffer, with no extra copy. The owner gives complete
 * CRLF-terminated header lines (e.g. a Received: trace field); they are copied as they are (not
 * unstuffed, not normalised) and do not count against max_size, which applies to what the
 * client sends. Several calls append in order. If DATA is rejected they are discarded.
 * BUG (abort) when called at any other time. */
void smtpd_body_prepend(struct smtpd_session *s, const char *p, size_t n);

/* smtpd_session_drop: close the connection without any further reply (fault injection, or
 * the owner gave up): the step being decided (the command whose hook is running or owes its
 * async reply, or the body being received) gets no reply, nothing more is read as commands,
 * and the connection is closed like after a 421 (our side shut down, input drained briefly).
 * Replies already queued for earlier pipelined commands are still sent first, so the client
 * sees exactly the replies up to the dropped step. Safe inside any hook (on_connect, on_helo,
 * on_mail, on_rcpt, on_data_begin, on_data, on_data_progress) and in place of an async
 * smtpd_reply; do not call smtpd_reply after it. The session is freed (on_close) once its
 * in-flight ops have completed; s stays valid until then. */
void smtpd_session_drop(struct smtpd_session *s);

/* smtpd_auth_result: the verdict on the credentials on_auth was given (inside the hook, or once
 * after it returned SMTPD_ASYNC, on the loop thread): ok gives "235 2.7.0 Authentication
 * successful" and the session is authenticated as that login from then on; otherwise "535 5.7.8
 * Authentication credentials invalid". domains (ok only; NULL or "" for none): the sender
 * domains the login owns besides its own (util_domains list, copied; at most
 * SMTPD_AUTH_DOMAINS_MAX - 1 bytes, a longer list turns the verdict into 535), for
 * SMTPD_SENDER_OWN_DOMAIN. BUG if s is not waiting for an AUTH verdict. */
void smtpd_auth_result(struct smtpd_session *s, bool ok, const char *domains);

/* smtpd_session_auth_user: the login the session authenticated as (valid while s is), or NULL
 * when it has not. */
const char *smtpd_session_auth_user(const struct smtpd_session *s);

/* smtpd_session_secure: a UNIX socket client, or TLS is up (smtpd_session_set_secure). */
bool smtpd_session_secure(const struct smtpd_session *s);

/* smtpd_session_tls: whether TLS is up on s (after STARTTLS, or on an implicit-TLS listener);
 * if so and i is not NULL, *i says how (tls_get_info: the server side has no peer
 * certificate). */
bool smtpd_session_tls(const struct smtpd_session *s, struct tls_info *i);

/* smtpd_session_trusted: a UNIX socket client, or its address is in cfg.trusted. */
bool smtpd_session_trusted(const struct smtpd_session *s);

/* Accessors. */
uint64_t smtpd_session_id(const struct smtpd_session *s); /* unique per process */
void *smtpd_session_data(struct smtpd_session *s);	  /* session_data_size bytes */
struct loop *smtpd_session_loop(const struct smtpd_session *s);
const char *smtpd_session_helo(const struct smtpd_session *s); /* "" before HELO/EHLO */
bool smtpd_session_esmtp(const struct smtpd_session *s);       /* EHLO was used */
const struct sockaddr *smtpd_session_peer(const struct smtpd_session *s, socklen_t *len);
const char *smtpd_session_state_name(const struct smtpd_session *s);
/* smtpd_session_body_cap: bytes currently allocated for the body buffer (0 when none): what
 * a transaction costs while its body arrives (it never depends on an announced SIZE=). */
size_t smtpd_session_body_cap(const struct smtpd_session *s);

#endif
