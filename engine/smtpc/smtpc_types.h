/* smtpc_types — the session object and the prototypes shared by the smtpc_*.c files.
 *
 * Why: the module is split into the public API and lifecycle (smtpc.c), the protocol state
 * machine (smtpc_fsm.c) and the socket I/O (smtpc_io.c); they share one struct. Nothing outside
 * engine/smtpc/ includes this header.
 */
#ifndef RIPTIDE_SMTPC_TYPES_H
#define RIPTIDE_SMTPC_TYPES_H

#include <sys/socket.h>
#include <sys/uio.h>

#include "engine/smtp/smtp.h"
#include "engine/smtpc/smtpc.h"
#include "engine/xport/xport.h"

#define SMTPC_IOV	   64 /* iovecs per sendmsg (command bytes + body segments + dot) */
#define SMTPC_RBUF_MIN	   4096
#define SMTPC_RBUF_MAX	   65536
#define SMTPC_TEXT_MAX	   512 /* saved reply text (close info, deferred result) */
#define SMTPC_BIND_ERR_MAX 160 /* "cannot bind source address <IPv6>: <strerror>" */
/* Room for the DSN parameters of MAIL (" RET=HDRS ENVID=" + 3 bytes per ENVID byte) and RCPT
 * (" NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=" + the addr-type, ';', 3 bytes per address byte). */
#define SMTPC_DSN_MAIL_MAX (16 + 3 * SMTP_ENVID_MAX + 1)
#define SMTPC_DSN_RCPT_MAX                                                                         \
	(8 + SMTP_NOTIFY_TEXT + 7 + SMTP_ADDRTYPE_MAX + 1 + 3 * SMTP_ORCPT_MAX + 1)

struct smtpc {
	struct loop *loop;
	const struct smtpc_ops *ops;
	void *user;
	uint64_t id;
	struct util_addr addr;
	struct util_addr source; /* family AF_UNSPEC: no bind */
	char *helo;
	struct smtpc_timeouts tmo;
	bool no_pipelining;
	unsigned max_txns;

	enum smtpc_state state;
	int fd;
	unsigned inflight; /* ops submitted and not completed: free only at 0 */
	struct loop_op op_conn, op_fin;
	struct xport *x; /* the byte stream (plain or TLS): recv, send, TLS start */
	bool conn_busy, send_busy, recv_busy;
	enum smtpc_state recv_state; /* state the pending recv's timeout was chosen for */

	/* TLS (smtpc_tls.c) */
	enum smtpc_tls tls_mode;
	struct tls_ctx *tls_ctx;
	char *tls_host, *tls_key;
	bool tls_hs;	   /* handshake running: no recv/send of our own */
	bool tls_on;	   /* the connection is encrypted */
	bool tls_start;	   /* 220 to STARTTLS seen, handshake waits for the send to finish */
	size_t rest;	   /* bytes in rbuf behind the reply being dispatched */
	char tls_err[256]; /* close reason with the TLS error text */

	bool was_ready, quit_wanted, in_next, closing;
	uint32_t ext;
	uint64_t size_limit;
	unsigned txns;

	/* A failed bind of the source address: reported by op_conn (a NOP) from the loop. */
	bool bind_failed;
	char bind_err[SMTPC_BIND_ERR_MAX];

	/* Why the session ends: filled by the first smtpc_close(). */
	struct smtpc_close_info cinfo;
	char ctext[SMTPC_TEXT_MAX];
	const char *quit_err; /* error to report after a courtesy QUIT */

	/* Output: command bytes (obuf) then the body stream, gathered into iov. */
	char *obuf, *obuf_old; /* obuf_old: replaced while a send still read it */
	size_t ocap, olen, osent;
	struct iovec iov[SMTPC_IOV];
	struct msghdr msg;

	/* Body stream (dot-stuffed on the fly by splitting, never copied). */
	bool body_active, stuff, bdup, dot_sent;
	const char *body;
	size_t blen, bpos;
	const char *term;
	size_t tlen, tpos;

	/* Input. */
	char *rbuf;
	size_t rcap, rlen;

	/* Current transaction (NULL once reported; replies may still be drained). */
	struct smtpc_txn *txn;
	unsigned nrcpt, rcpt_sent, rcpt_replied, rcpt_ok;
	bool mail_ok, pipelined;

	/* What of the current transaction this server gets (smtpc_prep.c): the body to stream
	 * (the owner's, or conv, its 7-bit conversion, owned), the recipients to send (ridx:
	 * indexes into txn->rcpts when some were refused locally, else NULL), SMTPUTF8 on MAIL,
	 * and a local outcome waiting for op_local to be reported. */
	const char *xbody;
	size_t xlen;
	char *conv;
	size_t conv_len;
	unsigned *ridx, ridx_cap, nrefused;
	bool utf8, local_busy, head_utf8;
	int local; /* SMTPC_LOCAL_* */
	struct loop_op op_local;

	/* A result whose report waits until no send reads the body any more. */
	bool report_pending;
	struct smtpc_txn *pend_txn;
	struct smtpc_result pend_res;
	char *pend_conv; /* conv of that transaction: the send may still read it */
	char pend_text[SMTPC_TEXT_MAX];

	/* SMTP AUTH (smtpc_auth.c): the credentials (owned, wiped when freed; NULL: no AUTH),
	 * whether AUTH may go over a connection that is not encrypted, the server's SMTP_AUTH_*
	 * mechanisms, the step of the exchange, and trace_mute while a line with credentials is
	 * queued (smtpc_trace then formats nothing). */
	char *auth_user, *auth_pass;
	bool auth_plaintext;
	uint32_t auth_mechs;
	int auth_step; /* SMTPC_AUTH_* */
	bool trace_mute;
};

/* Local outcomes decided before MAIL (smtpc_prep.c). */
enum {
	SMTPC_LOCAL_NONE = 0,
	SMTPC_LOCAL_RCPTS,  /* some recipients refused (553 5.6.7), the rest is sent */
	SMTPC_LOCAL_SENDER, /* 553 5.6.7 at stage MAIL: the sender needs SMTPUTF8 */
	SMTPC_LOCAL_NORCPT, /* 553 5.6.7 at stage RCPT: every recipient refused */
	SMTPC_LOCAL_CONV,   /* 554 5.6.3 at stage MAIL: no 7-bit conversion possible */
};

/* smtpc.c */
void smtpc_trace(struct smtpc *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void smtpc_close(struct smtpc *s, const char *err, const struct smtp_reply *rep);
void smtpc_txn_finish(struct smtpc *s, enum smtpc_stage stage, const struct smtp_reply *rep,
		      const char *err);
void smtpc_txn_finish_local(struct smtpc *s, enum smtpc_stage stage, const struct smtpc_reply *rr);
void smtpc_report_pending(struct smtpc *s);
void smtpc_op_done(struct smtpc *s);
struct smtpc_reply smtpc_reply_of(const struct smtp_reply *r);

/* smtpc_fsm.c */
void smtpc_enter(struct smtpc *s, enum smtpc_state st);
void smtpc_on_input(struct smtpc *s);
void smtpc_txn_begin(struct smtpc *s, struct smtpc_txn *t);
bool smtpc_txn_valid(const struct smtpc_txn *t);
bool smtpc_text_ok(const char *a);
uint32_t smtpc_state_timeout(const struct smtpc *s, enum smtpc_state st);
const char *smtpc_state_timeout_err(enum smtpc_state st);
enum smtpc_stage smtpc_state_stage(enum smtpc_state st);

void smtpc_mail_send(struct smtpc *s);
void smtpc_quit_with(struct smtpc *s, const char *err, const struct smtp_reply *r);

/* smtpc_tls.c */
bool smtpc_tls_after_hello(struct smtpc *s);
void smtpc_tls_connected(struct smtpc *s);
void smtpc_tls_send_idle(struct smtpc *s);
void smtpc_starttls_enter(struct smtpc *s);
void smtpc_starttls_reply(struct smtpc *s, const struct smtp_reply *r);
void smtpc_tls_done(void *user, int res);
void smtpc_tls_free(struct smtpc *s);

/* smtpc_prep.c */
void smtpc_prep_init(struct smtpc *s);
bool smtpc_txn_prepare(struct smtpc *s, struct smtpc_txn *t);
void smtpc_local_arm(struct smtpc *s);
unsigned smtpc_rcpt_idx(const struct smtpc *s, unsigned i);
void smtpc_dsn_mail(const struct smtpc *s, char *out, size_t cap);
void smtpc_dsn_rcpt(const struct smtpc *s, unsigned i, char *out, size_t cap);
void smtpc_prep_done(struct smtpc *s);

/* smtpc_auth.c */
void smtpc_auth_init(struct smtpc *s, const struct smtpc_config *cfg);
void smtpc_auth_free(struct smtpc *s);
bool smtpc_secure(const struct smtpc *s);
void smtpc_auth_start(struct smtpc *s);
void smtpc_auth_enter(struct smtpc *s);
void smtpc_auth_reply(struct smtpc *s, const struct smtp_reply *r);

/* smtpc_io.c */
int smtpc_io_connect(struct smtpc *s);
bool smtpc_io_line_ok(const char *p, size_t n);
void smtpc_io_out(struct smtpc *s, const char *p, size_t n);
void smtpc_io_outf(struct smtpc *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void smtpc_io_body(struct smtpc *s, const char *body, size_t len);
void smtpc_io_kick(struct smtpc *s);
void smtpc_io_recv(struct smtpc *s);
void smtpc_io_shutdown(struct smtpc *s);

#endif
