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

#define SMTPC_IOV      64 /* iovecs per sendmsg (command bytes + body segments + dot) */
#define SMTPC_RBUF_MIN 4096
#define SMTPC_RBUF_MAX 65536
#define SMTPC_TEXT_MAX 512 /* saved reply text (close info, deferred result) */

struct smtpc {
	struct loop *loop;
	const struct smtpc_ops *ops;
	void *user;
	uint64_t id;
	struct util_addr addr;
	char *helo;
	struct smtpc_timeouts tmo;
	bool no_pipelining;
	unsigned max_txns;

	enum smtpc_state state;
	int fd;
	unsigned inflight; /* ops submitted and not completed: free only at 0 */
	struct loop_op op_conn, op_send, op_recv, op_fin;
	bool conn_busy, send_busy, recv_busy;
	enum smtpc_state recv_state; /* state the pending recv's timeout was chosen for */

	bool was_ready, quit_wanted, in_next, closing;
	uint32_t ext;
	uint64_t size_limit;
	unsigned txns;

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

	/* A result whose report waits until no send reads the body any more. */
	bool report_pending;
	struct smtpc_txn *pend_txn;
	struct smtpc_result pend_res;
	char pend_text[SMTPC_TEXT_MAX];
};

/* smtpc.c */
void smtpc_trace(struct smtpc *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void smtpc_close(struct smtpc *s, const char *err, const struct smtp_reply *rep);
void smtpc_txn_finish(struct smtpc *s, enum smtpc_stage stage, const struct smtp_reply *rep,
		      const char *err);
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
