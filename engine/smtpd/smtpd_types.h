/* smtpd_types — internal types shared by the smtpd .c files (server, session I/O, commands).
 *
 * Why: the module is split by concern (listening/workers, session I/O and the run loop,
 * command handlers) and those files share the session layout; nothing outside engine/smtpd/
 * includes this header.
 */
#ifndef RIPTIDE_SMTPD_TYPES_H
#define RIPTIDE_SMTPD_TYPES_H

#include "engine/smtpd/smtpd.h"
#include "engine/smtp/smtp.h"
#include "engine/xport/xport.h"

#include <stdatomic.h>

#define SMTPD_RBUF	   16384u /* receive buffer per session */
#define SMTPD_WBUF	   8192u  /* reply buffer per session */
#define SMTPD_REPLY_MAX	   1200u  /* room needed before processing one command (EHLO worst) */
#define SMTPD_TEXT_MAX	   500u	  /* reply text cap */
#define SMTPD_HELO_MAX	   256u
#define SMTPD_EHLO_MAX	   640u /* bytes of extra EHLO lines */
#define SMTPD_MAX_LISTEN   16u
#define SMTPD_BODY_INIT	   4096u
#define SMTPD_BODY_KEEP	   (1u << 20) /* larger idle body buffers are freed */
#define SMTPD_FREELIST_MAX 64u
#define SMTPD_LINGER_MS	   2000u /* lingering close bound */
#define SMTPD_NO_HOLD	   UINT32_MAX
#define SMTPD_NO_ORCPT	   UINT32_MAX

/* Protocol states (explicit; see smtpd_state_names in smtpd_session.c). */
enum smtpd_state {
	SMTPD_S_GREET,	 /* accepted, greeting decided by on_connect */
	SMTPD_S_HELO,	 /* greeted, expecting HELO/EHLO */
	SMTPD_S_IDLE,	 /* after HELO/EHLO, no transaction */
	SMTPD_S_MAIL,	 /* MAIL accepted, no recipient yet */
	SMTPD_S_RCPT,	 /* at least one recipient accepted */
	SMTPD_S_DATA,	 /* receiving the body */
	SMTPD_S_CLOSING, /* last reply queued: flush, then close */
	SMTPD_S_DEAD,	 /* socket being torn down: waiting for in-flight ops */
	SMTPD_S__COUNT,
};

/* What the session is waiting for before it may process more input. */
enum smtpd_wait {
	SMTPD_W_NONE,
	SMTPD_W_HOOK,  /* an async smtpd_reply() from the owner */
	SMTPD_W_DELAY, /* the reply-delay timer (reply_delay_ms) */
};

/* Which step a hook reply belongs to (decides the transition when it arrives). */
enum smtpd_await {
	SMTPD_A_NONE,
	SMTPD_A_CONNECT,
	SMTPD_A_MAIL,
	SMTPD_A_RCPT,
	SMTPD_A_DATA,
	SMTPD_A_HELO,	    /* on_helo: 2xx commits helo_new, sends the standard reply */
	SMTPD_A_DATA_BEGIN, /* on_data_begin: 354 enters DATA, anything else resets */
	SMTPD_A_AUTH,	    /* on_auth: 235 authenticates (smtpd_auth.c) */
};

/* The AUTH continuation line a session expects (smtpd_auth.c). */
enum smtpd_auth_step {
	SMTPD_AUTH_NONE = 0,
	SMTPD_AUTH_PLAIN,      /* PLAIN's response after "334 " */
	SMTPD_AUTH_LOGIN_USER, /* LOGIN's user name after "334 VXNlcm5hbWU6" */
	SMTPD_AUTH_LOGIN_PASS, /* LOGIN's password after "334 UGFzc3dvcmQ6" */
};

struct smtpd_listener {
	int fd;
	int family;
	bool tls;	/* implicit TLS: the handshake comes before the greeting */
	char path[108]; /* UNIX path to unlink on close, "" otherwise */
};

struct smtpd_server {
	struct smtpd_config cfg;
	struct smtpd_hooks hooks;
	void *user;
	char hostname[256];
	char greeting[256];
	char ehlo_extra[SMTPD_EHLO_MAX]; /* preformatted "250-KEYWORD\r\n" lines */
	size_t ehlo_extra_len;
	char timeout_text[300]; /* "4.4.2 <hostname> Error: timeout exceeded" */
	struct smtpd_listener ls[SMTPD_MAX_LISTEN];
	unsigned nls;
	atomic_uint_fast64_t next_id;
	atomic_uint workers;
	atomic_uint sessions; /* admitted sessions of all workers (max_sessions) */
};

struct smtpd_worker;

/* One accept slot: one in-flight accept per (worker, listener). */
struct smtpd_accept {
	struct loop_op op;
	struct smtpd_worker *w;
	unsigned idx;
	bool armed;
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

struct smtpd_worker {
	struct smtpd_server *srv;
	struct loop *l;
	void *user;
	struct smtpd_accept acc[SMTPD_MAX_LISTEN];
	unsigned accepts_inflight;
	struct smtpd_session *head; /* live sessions, doubly linked */
	unsigned nsessions;
	struct smtpd_session *freelist;
	unsigned nfree;
	bool shutting_down;
	bool grace_over;
	bool done_called;
	bool iterating;
	struct loop_op grace_op;
	bool grace_armed;
	void (*done)(struct smtpd_worker *w, void *arg);
	void *done_arg;
};

struct smtpd_session {
	struct smtpd_worker *w;
	struct smtpd_session *prev, *next;
	uint64_t id;
	int fd;
	enum smtpd_state state;
	enum smtpd_wait wait;
	enum smtpd_await await;
	unsigned inflight;
	bool connected_hook; /* on_connect ran: on_close is owed */
	bool in_hook;
	int hook_code; /* code given by smtpd_reply inside a hook, 0 if none */
	bool recv_armed, send_armed, timer_armed;
	bool esmtp;
	bool esmtp_new;	   /* HELO/EHLO awaiting on_helo's verdict was EHLO */
	bool counted;	   /* admitted: counts in srv->sessions */
	bool dropped;	   /* smtpd_session_drop: no reply for the current step */
	bool smtputf8;	   /* MAIL ... SMTPUTF8 in this transaction */
	uint64_t deadline; /* loop ms: the current command line / DATA must be in by then; 0 none */
	bool skip_line;	   /* discarding the rest of an over-long line */
	bool body_8bit;
	bool body_over; /* body exceeded max_size: discarding to the terminator */
	bool lingering; /* CLOSING: our side shut down, draining input until EOF */
	uint64_t linger_end;
	bool quit_after; /* close after the current transaction (shutdown) */
	unsigned errors;
	struct loop_op timer_op;
	struct xport *x; /* the byte stream (plain or TLS) */
	/* TLS (smtpd_tls.c): tls_pending = a handshake is due or running (no command is read
	 * meanwhile); tls_first = it runs before anything is sent (implicit-TLS listener) */
	bool tls_pending, tls_first, tls_on, tls_hs;
	/* receive buffer: [rpos, rlen) unprocessed */
	uint32_t rpos, rlen;
	/* reply buffer: [woff, wsent_end) in flight, [woff, wlen) queued; bytes from hold on
	 * are held back by the reply delay */
	uint32_t woff, wlen, wsent_end, hold;
	/* envelope arena: sender at 0, then recipients, NUL-terminated */
	char *arena;
	uint32_t arena_len, arena_cap, arena_mark;
	uint32_t *rcpt_off;
	const char **rcpt_ptr;
	unsigned nrcpts, rcpt_cap;
	/* DSN (RFC 3461): per accepted recipient NOTIFY bits and the arena offset of the decoded
	 * ORCPT (SMTPD_NO_ORCPT: none), rcpt_cap entries like rcpt_off; orcpt_ptr is filled for
	 * on_data. notify_new / orcpt_new: those of the RCPT being decided. */
	uint8_t *rcpt_notify;
	uint32_t *orcpt_off;
	const char **orcpt_ptr;
	uint8_t notify_new;
	uint32_t orcpt_new;
	uint8_t ret;			/* MAIL ... RET= (SMTP_RET_*) */
	char envid[SMTP_ENVID_MAX + 1]; /* MAIL ... ENVID= decoded, "" if none */
	/* body */
	char *body;
	size_t body_len, body_cap;
	size_t body_total; /* client body bytes seen this DATA, kept or discarded */
	unsigned depth;	   /* >0 while inside smtpd_session_run: defer freeing */
	struct smtp_data_rx rx;
	char helo[SMTPD_HELO_MAX];
	char helo_new[SMTPD_HELO_MAX]; /* the name given to on_helo, committed on 2xx */
	/* AUTH and the injection policy (smtpd_auth.c) */
	bool secure;				   /* TLS is up (smtpd_session_set_secure) */
	bool authed;				   /* auth_user is the authenticated login */
	enum smtpd_auth_step auth_step;		   /* a continuation line is expected */
	unsigned rsets;				   /* RSETs since the last accepted message */
	char auth_user[SMTPD_AUTH_LOGIN_MAX];	   /* the login being verified, or authenticated */
	char auth_domains[SMTPD_AUTH_DOMAINS_MAX]; /* its extra sender domains (util list) */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	char rbuf[SMTPD_RBUF];
	char wbuf[SMTPD_WBUF];
	_Alignas(16) unsigned char data[]; /* session_data_size bytes of owner data */
};

/* smtpd_session.c */
void smtpd_session_start(struct smtpd_worker *w, int fd, const struct sockaddr_storage *peer,
			 socklen_t peer_len, bool tls_first);
void smtpd_session_run(struct smtpd_session *s);
void smtpd_set_state(struct smtpd_session *s, enum smtpd_state st);
void smtpd_emit(struct smtpd_session *s, int code, const char *text);
void smtpd_emit_raw(struct smtpd_session *s, const char *p, size_t n);
void smtpd_close(struct smtpd_session *s, int code, const char *text);
void smtpd_reset_tx(struct smtpd_session *s);
void smtpd_after_reply(struct smtpd_session *s, size_t mark);
void smtpd_session_kick_idle(struct smtpd_session *s);
void smtpd_session_force_close(struct smtpd_session *s, bool hard);

/* smtpd_tls.c */
enum smtpd_tls_io { SMTPD_TLS_NONE, SMTPD_TLS_WAIT, SMTPD_TLS_SEND_ONLY };
enum smtpd_tls_io smtpd_tls_io(struct smtpd_session *s);
void smtpd_tls_done(void *user, int res);
void smtpd_tls_starttls(struct smtpd_session *s, bool has_arg);
bool smtpd_tls_offer(const struct smtpd_session *s);

/* smtpd_cmd.c */
bool smtpd_cmd_step(struct smtpd_session *s);
void smtpd_session_bufs_free(struct smtpd_session *s);
bool smtpd_data_step(struct smtpd_session *s);
void smtpd_hook_done(struct smtpd_session *s, int ret, int def_code, const char *def_text,
		     size_t mark);
void smtpd_apply_reply(struct smtpd_session *s, int code);
void smtpd_emit_reply(struct smtpd_session *s, int code, const char *text);

void smtpd_say(struct smtpd_session *s, int code, const char *text);
void smtpd_error(struct smtpd_session *s, int code, const char *text);

/* smtpd_auth.c */
void smtpd_do_auth(struct smtpd_session *s, const struct smtp_cmd *c);
void smtpd_auth_line(struct smtpd_session *s, const char *line, size_t n);
void smtpd_auth_apply(struct smtpd_session *s, int code);
bool smtpd_auth_offered(const struct smtpd_session *s);
bool smtpd_policy_sender(struct smtpd_session *s, const char *addr, size_t n);
bool smtpd_policy_rcpt(struct smtpd_session *s, const char *addr, size_t n);
void smtpd_do_rset(struct smtpd_session *s);
void smtpd_do_vrfy(struct smtpd_session *s, const struct smtp_cmd *c);
void smtpd_do_expn(struct smtpd_session *s);
/* smtpd_session_set_secure: TLS is up on s (STARTTLS completed, or an implicit-TLS listener):
 * AUTH is offered from now on. Like RFC 3207 4.2 asks, whatever the session learnt before is
 * forgotten: an authentication (and a pending AUTH exchange) is dropped. */
void smtpd_session_set_secure(struct smtpd_session *s);

/* smtpd_dsn.c */
int smtpd_dsn_mail_param(struct smtpd_session *s, const struct smtp_param *prm, unsigned *seen,
			 const char **why);
int smtpd_rcpt_params(struct smtpd_session *s, const char *p, size_t len, char *orcpt,
		      const char **why);
void smtpd_dsn_rcpt_grow(struct smtpd_session *s, unsigned cap);
void smtpd_dsn_rcpt_push(struct smtpd_session *s, unsigned idx);
void smtpd_dsn_envelope(struct smtpd_session *s, struct smtpd_envelope *env);

/* smtpd.c */
void smtpd_worker_session_gone(struct smtpd_worker *w, struct smtpd_session *s);

#endif
