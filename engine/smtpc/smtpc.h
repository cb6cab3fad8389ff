/* smtpc — one outbound SMTP client session on an io_uring loop (used by the daemon's destination
 * queues and by riptide-blast).
 *
 * Why: delivery and load generation speak the same client protocol; both want a session that
 * pulls transactions from its owner, pipelines MAIL/RCPT/DATA when the server allows it, sends
 * the body without copying it, and reports per-recipient and per-transaction outcomes with the
 * exact "maybe delivered" semantics a queue needs. The session is an explicit state machine
 * (OpenSMTPD mta_session style): entering a state sends, the reply step decides.
 *
 * Lifecycle (all calls on the loop's thread):
 *   smtpc_new()  -> connects at once; greeting, EHLO (HELO fallback), AUTH if configured -> READY
 *   READY        -> ops->next() is called; return a transaction (or NULL and later smtpc_send())
 *   transaction  -> ops->rcpt() once per recipient refused locally (see "Local replies") and
 *                   once per RCPT reply received while MAIL was accepted,
 *                   then ops->txn_done() exactly once; after it returns smtpc holds no reference
 *                   to the transaction or anything it points to
 *   end          -> ops->closed() exactly once (after any txn_done); the handle is freed right
 *                   after closed() returns and must not be used again
 * Every callback may call smtpc_quit() or smtpc_abort(); none may free the session.
 *
 * Outcome rule for the owner: a recipient whose RCPT reply was not 2xx has that reply as its
 * outcome; every other recipient of the transaction has the transaction's outcome
 * (struct smtpc_result). result.maybe_delivered means the whole message incl. the final dot
 * was handed to the kernel and no final reply came back: retry it (a duplicate is possible),
 * never count it as delivered.
 */
#ifndef RIPTIDE_SMTPC_H
#define RIPTIDE_SMTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/loop/loop.h"
#include "tls/tls.h"
#include "engine/util/util.h"

struct smtpc;

/* Session states, in protocol order. AUTH: see "AUTH". */
enum smtpc_state {
	SMTPC_S_INIT = 0,
	SMTPC_S_CONNECT,
	SMTPC_S_GREETING,
	SMTPC_S_EHLO,
	SMTPC_S_HELO,
	SMTPC_S_STARTTLS,
	SMTPC_S_AUTH,
	SMTPC_S_READY,
	SMTPC_S_MAIL,
	SMTPC_S_RCPT,
	SMTPC_S_DATA,
	SMTPC_S_BODY,
	SMTPC_S_RSET,
	SMTPC_S_QUIT,
	SMTPC_S_CLOSING,
	SMTPC_S__COUNT
};

/* Where a transaction ended (which command's reply, or the phase a connection error hit). */
enum smtpc_stage {
	SMTPC_STAGE_MAIL = 0, /* MAIL FROM rejected, or connection lost before its reply */
	SMTPC_STAGE_RCPT,     /* no recipient accepted (see ops->rcpt for each reply) */
	SMTPC_STAGE_DATA,     /* DATA command rejected */
	SMTPC_STAGE_DOT,      /* final reply after the body (or lost while sending/awaiting it) */
};

/* Per-state timeouts in milliseconds (RFC 5321 4.5.3.2 for the protocol ones). */
struct smtpc_timeouts {
	uint32_t connect_ms;	/* TCP/UNIX connect                 default 30 s */
	uint32_t greeting_ms;	/* initial 220                       default 5 min */
	uint32_t helo_ms;	/* EHLO/HELO reply                   default 5 min */
	uint32_t mail_ms;	/* MAIL reply                        default 5 min */
	uint32_t rcpt_ms;	/* each RCPT reply                   default 5 min */
	uint32_t data_ms;	/* DATA 354 reply                    default 2 min */
	uint32_t data_block_ms; /* each send of body bytes           default 3 min */
	uint32_t data_done_ms;	/* final reply after the dot         default 10 min */
	uint32_t rset_ms;	/* RSET reply                        default 2 min */
	uint32_t quit_ms;	/* QUIT reply before closing         default 10 s */
	uint32_t idle_ms;	/* READY with nothing to send -> QUIT default 5 s */
};

/* smtpc_timeouts_default: fill t with the defaults listed above. */
void smtpc_timeouts_default(struct smtpc_timeouts *t);

/* A server reply as seen by callbacks. `text` is the last line's text after the code and the
 * enhanced code (not NUL-terminated); it is valid only during the callback. enh_class 0 means
 * the server sent no enhanced status code. */
struct smtpc_reply {
	int code;
	int enh_class, enh_subject, enh_detail;
	const char *text;
	size_t text_len;
	bool local; /* decided by smtpc itself, nothing sent for it (see "Local replies") */
};

/* A transaction, owned by the owner. Everything it points to (strings, rcpts array, body) must
 * stay valid and unchanged until ops->txn_done() has been called for it. */
struct smtpc_txn {
	const char *sender;	  /* reverse-path without <>; "" is the null sender */
	const char *const *rcpts; /* rcpt_count forward-paths without <> */
	unsigned rcpt_count;	  /* >= 1 */
	const char *body;	  /* CRLF-normalised message, NOT dot-stuffed, no final dot */
	size_t body_len;
	bool eightbit; /* add BODY=8BITMIME (only if the server offers it) */
	void *user;    /* owner's per-transaction pointer, untouched */
	bool smtputf8; /* the message came with MAIL ... SMTPUTF8 (RFC 6531) */
	/* DSN (RFC 3461), all optional, sent only to a server that offers DSN (see "DSN"): */
	const char *envid;	   /* ENVID, decoded (sent xtext-encoded); NULL or "" = none */
	uint8_t ret;		   /* SMTP_RET_FULL / SMTP_RET_HDRS; SMTP_RET_NONE (0) = none */
	const uint8_t *notify;	   /* NULL, or rcpt_count SMTP_NOTIFY_* bit sets (0 = none) */
	const char *const *orcpts; /* NULL, or rcpt_count decoded "addr-type;address" (the
				      address is sent xtext-encoded); NULL or "" = none */
};

/* DSN (RFC 3461). When the server's EHLO offers DSN, MAIL carries " RET=FULL|HDRS" (t->ret) and
 * " ENVID=<xtext>" (t->envid), after SIZE/BODY/SMTPUTF8, and each recipient's RCPT carries
 * " NOTIFY=<list>" (t->notify[i], formatted by smtp_dsn_notify_format: NEVER wins over other
 * bits) and " ORCPT=<addr-type>;<xtext>" (t->orcpts[i]), for the recipients that have them.
 * What a next hop would refuse with 501 is left out rather than sent: an envid over
 * SMTP_ENVID_MAX bytes, an orcpt that is not "<atom>;<address>" with an atom of at most
 * SMTP_ADDRTYPE_MAX bytes and an address of 1..SMTP_ORCPT_MAX bytes. When the server does not
 * offer DSN none of these parameters is sent; the owner learns it from result.dsn (or
 * smtpc_peer_dsn) and then owes the sender what the next hop will not report (RFC 3461 6.2.1:
 * a "relayed" notice for NOTIFY=SUCCESS). */

/* Local replies. Before MAIL, smtpc decides what this server can take; what it cannot is
 * reported with a reply that smtpc makes up (reply.local set, err NULL), always from the loop
 * (never from inside smtpc_send), and nothing of it is sent:
 *   - 8BITMIME downgrade (RFC 6152): if the server does not offer 8BITMIME (and SMTPUTF8 is
 *     not used for this transaction, RFC 6531 servers take 8-bit), a body with 8-bit bytes is
 *     converted to 7 bit (engine/mime: quoted-printable / base64 parts) into a buffer the
 *     session owns, and that is sent (SIZE= gives its length); if it cannot be converted
 *     (8-bit header fields, ...), the transaction ends at stage MAIL with
 *     "554 5.6.3 Conversion to 7bit not possible".
 *   - SMTPUTF8: a transaction needs it if t->smtputf8 or an address is not ASCII. If the server
 *     offers it, MAIL gets " SMTPUTF8". If not, a non-ASCII sender ends the transaction at
 *     stage MAIL with 553 5.6.7; a non-ASCII recipient gets 553 5.6.7 through ops->rcpt and is
 *     not sent, and so does every recipient if t->smtputf8 and the header section has a byte
 *     >= 0x80 (no RFC 6857 header downgrade); the other recipients are sent without the
 *     parameter. If none is left the transaction ends at stage RCPT with the last 553 5.6.7.
 *     Recipients refused this way are reported (in order) before MAIL is sent.
 * ops->rcpt is therefore called once per recipient refused locally plus once per RCPT reply
 * received while MAIL was accepted. */

/* The outcome of a transaction. With err == NULL the outcome is `reply` (the reply to MAIL,
 * the last RCPT, DATA or the final dot: see stage; or a local reply, reply.local). With err != NULL
 * no deciding reply came (connection error, timeout, abort): reply.code is 0 and the failure is
 * transient. A 421 at any point is reported as that reply (err NULL) and the session closes
 * afterwards. */
struct smtpc_result {
	struct smtpc_reply reply;
	const char *err; /* static string or NULL */
	enum smtpc_stage stage;
	bool maybe_delivered;	/* see the file comment: retry, never "delivered" */
	unsigned rcpt_accepted; /* recipients that got 2xx to RCPT */
	bool dsn;		/* the server offered DSN (EHLO) on this connection: the DSN
				   parameters the transaction had were sent (see "DSN") */
};

/* Why a session ended, for closed(). err NULL: QUIT exchange (or peer close after QUIT). */
struct smtpc_close_info {
	const char *err;	  /* static string or NULL; for a failed bind of the source
				     address, "cannot bind source address <ip>: <strerror>",
				     held by the session: valid until closed() returns */
	enum smtpc_state state;	  /* state in which the session failed or quit */
	struct smtpc_reply reply; /* the reply that caused it (e.g. 421, 554 greeting), code 0
				     if none */
	bool was_ready;		  /* greeting + EHLO/HELO completed */
	bool tls_failed;	  /* TLS was wanted and could not be had (see "TLS") */
	unsigned txns;		  /* transactions completed (txn_done called) */
	bool auth_failed;	  /* AUTH was configured and did not succeed (see "AUTH") */
};

struct smtpc_ops {
	/* READY and idle: return the next transaction or NULL (the session then waits, with the
	 * idle timeout, for smtpc_send(); calling smtpc_quit() here closes it now). Required. */
	struct smtpc_txn *(*next)(struct smtpc *s, void *user);
	/* One RCPT reply for recipient `idx` of t. Optional. */
	void (*rcpt)(struct smtpc *s, struct smtpc_txn *t, unsigned idx,
		     const struct smtpc_reply *r, void *user);
	/* The transaction is over; smtpc forgets t when this returns. Required. */
	void (*txn_done)(struct smtpc *s, struct smtpc_txn *t, const struct smtpc_result *res,
			 void *user);
	/* The session is over (socket closed); the handle dies when this returns. Required. */
	void (*closed)(struct smtpc *s, const struct smtpc_close_info *info, void *user);
	/* Debug trace: one preformatted line per transition / reply / error (no newline).
	 * Optional; when NULL nothing is formatted. */
	void (*trace)(struct smtpc *s, const char *line, void *user);
};

/* TLS (see "TLS" below). */
enum smtpc_tls {
	SMTPC_TLS_NONE = 0, /* never */
	SMTPC_TLS_TRY,	    /* STARTTLS when offered; refused (4xx/5xx): go on in plaintext */
	SMTPC_TLS_REQUIRE,  /* STARTTLS or close (tls_failed) */
	SMTPC_TLS_IMPLICIT, /* TLS on connect (smtps, port 465), before the greeting */
};

/* TLS. With tls != NONE and tls_ctx set (a client context of tls/), the session encrypts:
 *   - IMPLICIT: the handshake runs right after connect, then the greeting is read.
 *   - TRY / REQUIRE: after the EHLO reply, if the server offers STARTTLS, the session sends it;
 *     on 220 it refuses any byte that arrived behind the 220 (plaintext injected before the
 *     handshake, RFC 3207 / CVE-2011-0411 class: close, err "STARTTLS response injection"),
 *     runs the handshake, forgets the EHLO answer and sends EHLO again.
 *     No STARTTLS offered, or a non-220 answer: TRY goes on in plaintext; REQUIRE closes
 *     (closed() with tls_failed, err "STARTTLS not offered" / the reply).
 *   - A failed handshake (incl. certificate verification with a verifying context) closes the
 *     session with tls_failed set and err "TLS handshake failed: <why>"; the owner decides
 *     (opportunistic delivery reconnects without TLS).
 * The name sent as SNI and checked against the certificate is tls_host (NULL: none);
 * tls_cache_key selects the resumable session (tls_new). smtpc_tls_info tells what was
 * negotiated. */

struct smtpc_config {
	struct util_addr addr; /* copied */
	/* Source address of the outbound connection, copied: family AF_UNSPEC (0, as in a
	 * zeroed config) = the kernel's choice; AF_INET or AF_INET6: the socket is bound to it
	 * (its port is ignored: port 0, chosen at connect) before connecting. Its family should
	 * match addr's; a failed bind (wrong family, address not local...) ends the session like
	 * a failed connect: closed() with state CONNECT and err "cannot bind source address <ip>:
	 * <strerror>". */
	struct util_addr source;
	const char *helo_name;		/* copied; EHLO/HELO argument, no control byte */
	struct smtpc_timeouts timeouts; /* copied; use smtpc_timeouts_default() as a base */
	bool no_pipelining;		/* lock-step even if PIPELINING is offered */
	unsigned max_txns;		/* QUIT after this many transactions; 0 = unlimited */
	uint64_t id;			/* session id for trace lines */
	const struct smtpc_ops *ops;	/* must outlive the session */
	void *user;			/* passed to every callback */
	enum smtpc_tls tls;		/* see "TLS"; NONE when tls_ctx is NULL */
	struct tls_ctx *tls_ctx;	/* client context, must outlive the session */
	const char *tls_host;		/* copied; SNI + certificate name, NULL = none */
	const char *tls_cache_key;	/* copied; NULL = no resumption */
	/* SMTP AUTH (see "AUTH"): */
	const char *auth_user;	   /* copied; NULL or "" = no AUTH */
	const char *auth_password; /* copied; NULL = "" */
	bool auth_plaintext;	   /* AUTH also on a connection that is not encrypted */
};

/* AUTH (RFC 4954). With auth_user set, the session authenticates after EHLO, before READY:
 * AUTH PLAIN with the initial response (base64 of "\0user\0password") when the server offers
 * PLAIN, else AUTH LOGIN (user and password each answering a 334); 235 -> READY. It does so
 * only on a secure connection (TLS is active, or a UNIX socket) or with auth_plaintext. The
 * lines carrying credentials reach ops->trace only as "AUTH PLAIN ****" / "****". Failures end
 * the session before MAIL with closed() and info.auth_failed set (a courtesy QUIT is sent):
 *   - not secure and !auth_plaintext: nothing of AUTH is sent; err "AUTH refused: the
 *     connection is not encrypted (auth_plaintext = no)", reply code 0;
 *   - the server offers neither PLAIN nor LOGIN (or no AUTH, or only HELO worked): err
 *     "the server offers no AUTH PLAIN/LOGIN", reply code 0;
 *   - any reply to AUTH but 235 / 334 (535 5.7.8, 454 4.7.0, 504...): err "authentication
 *     failed", info.reply that reply.
 * A 421 is reported as any 421 (auth_failed not set). The owner decides what a failure means
 * for its mail: it is never a verdict on the message. */

/* smtpc_new: create a session on loop l and start connecting to cfg->addr. On success *out is
 * the handle and ops->closed() will be called exactly once, later, from the loop (never from
 * inside smtpc_new). Returns 0, -EINVAL (bad config: a callback missing, no address, an empty
 * helo_name or one with a control byte, a source family other than AF_UNSPEC, AF_INET or
 * AF_INET6) or -errno from socket(). */
int smtpc_new(struct loop *l, const struct smtpc_config *cfg, struct smtpc **out);

/* smtpc_send: start transaction t on a session that is READY and idle (ops->next returned
 * NULL). Not callable from inside ops->next (return the transaction instead).
 * The transaction's outcome may be local (see "Local replies"); it is never reported from
 * inside this call. Returns 0,
 * -EBUSY (not READY / transaction running / inside next / quitting), -ENOTCONN (closing) or
 * -EINVAL (no recipient, an empty recipient, or an address containing a control byte (any byte
 * < 0x20 -- CR, LF, TAB... -- or 0x7f), '<' or '>'; a transaction like that returned by
 * ops->next is failed at once with err "invalid transaction" and nothing of it is sent).
 * Defence in depth: every command line is checked again just before it is queued (exactly one
 * CRLF, at its end, and no other byte < 0x20 or 0x7f); a line failing that is never sent and
 * the session closes at once with err "refused to send a command line with a control byte"
 * (the running transaction gets that err: transient). */
int smtpc_send(struct smtpc *s, struct smtpc_txn *t);

/* smtpc_quit: graceful end: QUIT now if idle, else after the running transaction completes;
 * before READY it behaves like smtpc_abort. Idempotent. */
void smtpc_quit(struct smtpc *s);

/* smtpc_abort: hard close now. A running transaction gets txn_done with err "aborted"
 * (maybe_delivered if the dot was already sent); closed() follows from the loop. Idempotent. */
void smtpc_abort(struct smtpc *s);

/* smtpc_state / smtpc_state_name: current state, and the name of any state ("MAIL"). */
enum smtpc_state smtpc_state(const struct smtpc *s);
const char *smtpc_state_name(enum smtpc_state st);

/* smtpc_txn_count: transactions completed on this connection (each txn_done counts one). */
unsigned smtpc_txn_count(const struct smtpc *s);

/* smtpc_ext: SMTP_EXT_* flags from the server's EHLO reply (0 before EHLO or after HELO). */
uint32_t smtpc_ext(const struct smtpc *s);

/* smtpc_peer_dsn: true when the server's EHLO reply offered DSN (RFC 3461), so a transaction's
 * DSN parameters are sent to it (false before EHLO and after a HELO fallback). */
bool smtpc_peer_dsn(const struct smtpc *s);

/* smtpc_size_limit: the server's EHLO SIZE value (0 if none; the session does not enforce it:
 * the server will answer 552). */
uint64_t smtpc_size_limit(const struct smtpc *s);

/* smtpc_tls_info: whether the connection is encrypted now; if so, *i says how (tls_get_info).
 * i may be NULL. */
bool smtpc_tls_info(const struct smtpc *s, struct tls_info *i);

/* smtpc_user / smtpc_id: the config's user pointer and id. */
void *smtpc_user(const struct smtpc *s);
uint64_t smtpc_id(const struct smtpc *s);

#endif
