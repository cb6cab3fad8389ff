/* smtpc — public API and lifecycle of an SMTP client session: create, send, quit, abort,
 * reporting transaction outcomes, closing and freeing.
 *
 * Why this shape: the owner must be able to call smtpc_quit/smtpc_abort from inside any of its
 * callbacks, so closing only marks the session, cancels its I/O and queues a NOP; the memory is
 * released (and closed() called) from a completion once nothing is in flight, never from inside
 * an API call. A transaction whose body may still be read by an in-flight sendmsg is reported
 * only when that send completes, so the owner can free the body in txn_done.
 */
#include "engine/smtpc/smtpc_types.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* smtpc_timeouts_default: RFC 5321 4.5.3.2 timeouts plus riptide's connect/quit/idle ones. */
void smtpc_timeouts_default(struct smtpc_timeouts *t)
{
	*t = (struct smtpc_timeouts){
	    .connect_ms = 30 * 1000,
	    .greeting_ms = 5 * 60 * 1000,
	    .helo_ms = 5 * 60 * 1000,
	    .mail_ms = 5 * 60 * 1000,
	    .rcpt_ms = 5 * 60 * 1000,
	    .data_ms = 2 * 60 * 1000,
	    .data_block_ms = 3 * 60 * 1000,
	    .data_done_ms = 10 * 60 * 1000,
	    .rset_ms = 2 * 60 * 1000,
	    .quit_ms = 10 * 1000,
	    .idle_ms = 5 * 1000,
	};
}

/* smtpc_trace: format one trace line (prefixed with the session id) for ops->trace, if set. */
void smtpc_trace(struct smtpc *s, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	int n;

	if (!s->ops->trace || s->trace_mute) /* trace_mute: a line with credentials */
		return;
	n = snprintf(line, sizeof(line), "smtpc %llu: ", (unsigned long long)s->id);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	s->ops->trace(s, line, s->user);
}

/* smtpc_reply_of: the callback view of a parsed reply (text still points into the buffer). */
struct smtpc_reply smtpc_reply_of(const struct smtp_reply *r)
{
	return (struct smtpc_reply){
	    .code = r->code,
	    .enh_class = r->enh_class,
	    .enh_subject = r->enh_subject,
	    .enh_detail = r->enh_detail,
	    .text = r->text,
	    .text_len = r->text_len,
	};
}

static void smtpc_copy_text(struct smtpc_reply *rr, char *buf, size_t cap)
{
	size_t n = rr->text_len < cap ? rr->text_len : cap - 1;

	if (rr->text)
		memcpy(buf, rr->text, n);
	buf[n] = '\0';
	rr->text = buf;
	rr->text_len = n;
}

static void smtpc_report(struct smtpc *s, struct smtpc_txn *t, struct smtpc_result *res)
{
	res->maybe_delivered = res->err && res->stage == SMTPC_STAGE_DOT && s->dot_sent;
	smtpc_trace(s, "txn done: stage %d code %d err %s%s", (int)res->stage, res->reply.code,
		    res->err ? res->err : "-", res->maybe_delivered ? " (maybe delivered)" : "");
	s->ops->txn_done(s, t, res, s->user);
}

/* Report res for the running transaction and forget it. If a sendmsg may still read the body,
 * the report (and the freeing of a converted body) waits for that send's completion
 * (smtpc_report_pending). */
static void smtpc_txn_end(struct smtpc *s, struct smtpc_result *res)
{
	struct smtpc_txn *t = s->txn;

	s->txn = NULL;
	s->txns++;
	if (s->send_busy && s->body_active) {
		s->pend_txn = t;
		s->pend_res = *res;
		smtpc_copy_text(&s->pend_res.reply, s->pend_text, sizeof(s->pend_text));
		s->pend_conv = s->conv;
		s->conv = NULL;
		s->report_pending = true;
		return;
	}
	smtpc_prep_done(
	    s); /* nothing reads the body now; a new transaction may start in txn_done */
	smtpc_report(s, t, res);
}

/* smtpc_txn_finish: report the running transaction (if any) and forget it. With rep (and err
 * NULL) the outcome is that reply; with err it is a transient failure. */
void smtpc_txn_finish(struct smtpc *s, enum smtpc_stage stage, const struct smtp_reply *rep,
		      const char *err)
{
	struct smtpc_result res = {
	    .stage = stage, .err = err, .rcpt_accepted = s->rcpt_ok, .dsn = smtpc_peer_dsn(s)};

	if (!s->txn)
		return;
	if (rep && !err)
		res.reply = smtpc_reply_of(rep);
	smtpc_txn_end(s, &res);
}

/* smtpc_txn_finish_local: end the running transaction with a reply smtpc made up (rr, local
 * set, text static); nothing of it was sent. */
void smtpc_txn_finish_local(struct smtpc *s, enum smtpc_stage stage, const struct smtpc_reply *rr)
{
	struct smtpc_result res = {
	    .stage = stage, .reply = *rr, .rcpt_accepted = s->rcpt_ok, .dsn = smtpc_peer_dsn(s)};

	if (s->txn)
		smtpc_txn_end(s, &res);
}

/* smtpc_report_pending: deliver a report deferred by smtpc_txn_end (send now complete). */
void smtpc_report_pending(struct smtpc *s)
{
	s->report_pending = false;
	free(s->pend_conv);
	s->pend_conv = NULL;
	smtpc_report(s, s->pend_txn, &s->pend_res);
	s->pend_txn = NULL;
}

/* smtpc_close: end the session: record why (first call wins), fail the running transaction
 * (with rep as its outcome if given, else err), cancel I/O. Freed later by smtpc_op_done. */
void smtpc_close(struct smtpc *s, const char *err, const struct smtp_reply *rep)
{
	enum smtpc_stage stage = smtpc_state_stage(s->state);

	if (s->closing)
		return;
	s->closing = true;
	s->cinfo.err = err;
	s->cinfo.state = s->state;
	if (rep) {
		s->cinfo.reply = smtpc_reply_of(rep);
		smtpc_copy_text(&s->cinfo.reply, s->ctext, sizeof(s->ctext));
	}
	smtpc_trace(s, "closing in %s: %s", smtpc_state_name(s->state), err ? err : "quit");
	s->state = SMTPC_S_CLOSING;
	smtpc_txn_finish(s, stage, rep, rep ? NULL : (err ? err : "session closed"));
	smtpc_io_shutdown(s);
}

static void smtpc_free(struct smtpc *s)
{
	xport_free(s->x);
	smtpc_tls_free(s);
	if (s->fd >= 0)
		close(s->fd);
	s->cinfo.was_ready = s->was_ready;
	s->cinfo.txns = s->txns;
	s->ops->closed(s, &s->cinfo, s->user);
	smtpc_prep_done(s);
	free(s->pend_conv);
	free(s->ridx);
	free(s->obuf);
	free(s->obuf_old);
	free(s->rbuf);
	free(s->helo);
	smtpc_auth_free(s);
	free(s);
}

/* smtpc_op_done: called after every completion of a closing session; frees it (and calls
 * ops->closed) once no op is in flight. */
void smtpc_op_done(struct smtpc *s)
{
	if (s->closing && s->inflight == 0)
		smtpc_free(s);
}

static bool smtpc_config_ok(const struct smtpc_config *cfg)
{
	const struct smtpc_ops *o = cfg->ops;

	int sf = cfg->source.family;

	return o && o->next && o->txn_done && o->closed && cfg->helo_name && cfg->helo_name[0] &&
	       cfg->addr.len > 0 && smtpc_text_ok(cfg->helo_name) &&
	       (sf == AF_UNSPEC || sf == AF_INET || sf == AF_INET6);
}

/* smtpc_new: see smtpc.h. */
int smtpc_new(struct loop *l, const struct smtpc_config *cfg, struct smtpc **out)
{
	struct smtpc *s;
	int ret;

	if (!smtpc_config_ok(cfg))
		return -EINVAL;
	s = util_xcalloc(1, sizeof(*s));
	s->loop = l;
	s->ops = cfg->ops;
	s->user = cfg->user;
	s->id = cfg->id;
	s->addr = cfg->addr;
	s->source = cfg->source;
	s->helo = util_xstrndup(cfg->helo_name, strlen(cfg->helo_name));
	s->tmo = cfg->timeouts;
	s->no_pipelining = cfg->no_pipelining;
	s->max_txns = cfg->max_txns;
	s->fd = -1;
	s->tls_mode = cfg->tls_ctx ? cfg->tls : SMTPC_TLS_NONE;
	s->tls_ctx = cfg->tls_ctx;
	s->tls_host = cfg->tls_host ? strdup(cfg->tls_host) : NULL;
	s->tls_key = cfg->tls_cache_key ? strdup(cfg->tls_cache_key) : NULL;
	smtpc_prep_init(s);
	ret = smtpc_io_connect(s);
	if (ret < 0) {
		smtpc_tls_free(s);
		free(s->helo);
		free(s);
		return ret;
	}
	smtpc_auth_init(s, cfg);
	smtpc_enter(s, SMTPC_S_CONNECT);
	*out = s;
	return 0;
}

/* smtpc_send: see smtpc.h. */
int smtpc_send(struct smtpc *s, struct smtpc_txn *t)
{
	if (s->closing)
		return -ENOTCONN;
	if (s->state != SMTPC_S_READY || s->txn || s->in_next || s->quit_wanted)
		return -EBUSY;
	if (!smtpc_txn_valid(t))
		return -EINVAL;
	smtpc_txn_begin(s, t);
	return 0;
}

/* smtpc_quit: see smtpc.h. */
void smtpc_quit(struct smtpc *s)
{
	if (s->closing || s->quit_wanted)
		return;
	s->quit_wanted = true;
	if (s->state < SMTPC_S_READY)
		smtpc_close(s, "quit before ready", NULL);
	else if (s->state == SMTPC_S_READY && !s->in_next && !s->txn)
		smtpc_enter(s, SMTPC_S_QUIT);
}

/* smtpc_abort: see smtpc.h. */
void smtpc_abort(struct smtpc *s)
{
	smtpc_close(s, "aborted", NULL);
}

/* smtpc_state: current state. */
enum smtpc_state smtpc_state(const struct smtpc *s)
{
	return s->state;
}

/* smtpc_txn_count: transactions completed on this connection. */
unsigned smtpc_txn_count(const struct smtpc *s)
{
	return s->txns;
}

/* smtpc_ext: the server's EHLO extensions (SMTP_EXT_*). */
uint32_t smtpc_ext(const struct smtpc *s)
{
	return s->ext;
}

/* smtpc_peer_dsn: see smtpc.h. */
bool smtpc_peer_dsn(const struct smtpc *s)
{
	return (s->ext & SMTP_EXT_DSN) != 0;
}

/* smtpc_size_limit: the server's EHLO SIZE limit in bytes (0: none announced). */
uint64_t smtpc_size_limit(const struct smtpc *s)
{
	return s->size_limit;
}

/* smtpc_user: the config's user pointer. */
void *smtpc_user(const struct smtpc *s)
{
	return s->user;
}

/* smtpc_id: the config's session id. */
uint64_t smtpc_id(const struct smtpc *s)
{
	return s->id;
}
