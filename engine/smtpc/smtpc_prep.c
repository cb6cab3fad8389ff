/* smtpc_prep — what of a transaction this server can take, decided before MAIL: the 8BITMIME
 * downgrade (RFC 6152) and SMTPUTF8 (RFC 6531); see "Local replies" in smtpc.h. Also the DSN
 * parameters (RFC 3461) of MAIL and RCPT, which depend on the same EHLO offer (see "DSN").
 *
 * Why here and this way: both depend only on the EHLO extensions and the transaction, and both
 * may end (part of) the transaction without a byte on the wire. Doing it when the transaction
 * starts keeps the protocol steps in smtpc_fsm.c unchanged: they send the recipients listed
 * in ridx and stream xbody. A local outcome is reported from a NOP completion (op_local), never
 * from inside smtpc_send, so an owner that starts a transaction from its own code is not
 * re-entered. The 8-bit scan and the conversion run on the loop thread: mime_has_8bit reads
 * 8 bytes a step, and only bodies for a hop without 8BITMIME are converted.
 */
#include "engine/mime/mime.h"
#include "engine/smtpc/smtpc_types.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char smtpc_txt_conv[] = "Conversion to 7bit not possible";
static const char smtpc_txt_sender[] = "Sender address needs SMTPUTF8, not offered by the server";
static const char smtpc_txt_rcpt[] = "Recipient address needs SMTPUTF8, not offered by the server";
static const char smtpc_txt_head[] =
    "Message header needs SMTPUTF8, not offered by the server (no header downgrade)";

static struct smtpc_reply smtpc_local_reply(int code, int enh_subject, int enh_detail,
					    const char *text)
{
	return (struct smtpc_reply){.code = code,
				    .enh_class = 5,
				    .enh_subject = enh_subject,
				    .enh_detail = enh_detail,
				    .text = text,
				    .text_len = strlen(text),
				    .local = true};
}

static bool smtpc_ascii(const char *a)
{
	return !mime_has_8bit(a, strlen(a));
}

/* A byte >= 0x80 in the header section (up to the first empty line). */
static bool smtpc_head_8bit(const char *b, size_t len)
{
	const char *end = b + len, *p = b, *lf;

	while (p < end && *p != '\n' && !(*p == '\r' && p + 1 < end && p[1] == '\n')) {
		lf = memchr(p, '\n', (size_t)(end - p));
		if (mime_has_8bit(p, (size_t)((lf ? lf : end) - p)))
			return true;
		p = lf ? lf + 1 : end;
	}
	return false;
}

/* smtpc_rcpt_idx: the index in txn->rcpts of the i-th recipient sent. */
unsigned smtpc_rcpt_idx(const struct smtpc *s, unsigned i)
{
	return s->nrefused ? s->ridx[i] : i;
}

/* smtpc_dsn_mail: the DSN parameters of MAIL for this server into out (cap >=
 * SMTPC_DSN_MAIL_MAX): " RET=..." and " ENVID=<xtext>" when it offers DSN and the transaction
 * has them (an ENVID over SMTP_ENVID_MAX bytes is left out), else "". */
void smtpc_dsn_mail(const struct smtpc *s, char *out, size_t cap)
{
	const struct smtpc_txn *t = s->txn;
	size_t n = 0, k;

	out[0] = '\0';
	if (!smtpc_peer_dsn(s))
		return;
	if (t->ret == SMTP_RET_FULL || t->ret == SMTP_RET_HDRS)
		n = (size_t)snprintf(out, cap, " RET=%s",
				     t->ret == SMTP_RET_FULL ? "FULL" : "HDRS");
	k = t->envid ? strlen(t->envid) : 0;
	if (k == 0 || k > SMTP_ENVID_MAX || cap - n < 8)
		return;
	memcpy(out + n, " ENVID=", 7);
	if (smtp_xtext_encode(t->envid, k, out + n + 7, cap - n - 7) < 0)
		out[n] = '\0';
}

/* An ORCPT the next hop can take: "<atom>;<address>" within the limits of RFC 3461. */
static bool smtpc_orcpt_ok(const char *o)
{
	const char *semi = strchr(o, ';');

	return semi && (size_t)(semi - o) <= SMTP_ADDRTYPE_MAX &&
	       strlen(semi + 1) <= SMTP_ORCPT_MAX;
}

/* smtpc_dsn_rcpt: the DSN parameters of the RCPT for txn->rcpts[i] into out (cap >=
 * SMTPC_DSN_RCPT_MAX): " NOTIFY=..." and " ORCPT=<type>;<xtext>" when the server offers DSN
 * and the recipient has them (an unusable ORCPT is left out), else "". */
void smtpc_dsn_rcpt(const struct smtpc *s, unsigned i, char *out, size_t cap)
{
	const struct smtpc_txn *t = s->txn;
	const char *o = t->orcpts ? t->orcpts[i] : NULL;
	char nt[SMTP_NOTIFY_TEXT];
	size_t n = 0;

	out[0] = '\0';
	if (!smtpc_peer_dsn(s))
		return;
	if (t->notify && smtp_dsn_notify_format(t->notify[i], nt, sizeof(nt)))
		n = (size_t)snprintf(out, cap, " NOTIFY=%s", nt);
	if (!o || !o[0] || !smtpc_orcpt_ok(o) || cap - n < 8)
		return;
	memcpy(out + n, " ORCPT=", 7);
	if (smtp_dsn_orcpt_format(o, out + n + 7, cap - n - 7) < 0)
		out[n] = '\0';
}

/* Without SMTPUTF8 at the server: list the recipients that can go (ASCII, and the header does
 * not need SMTPUTF8) in ridx; s->nrcpt becomes their number. */
static void smtpc_filter_rcpts(struct smtpc *s, const struct smtpc_txn *t)
{
	s->head_utf8 = t->smtputf8 && smtpc_head_8bit(t->body, t->body_len);
	if (s->ridx_cap < t->rcpt_count) {
		s->ridx = util_xrealloc(s->ridx, t->rcpt_count * sizeof(*s->ridx));
		s->ridx_cap = t->rcpt_count;
	}
	s->nrcpt = 0;
	for (unsigned i = 0; i < t->rcpt_count; i++) {
		if (!s->head_utf8 && smtpc_ascii(t->rcpts[i]))
			s->ridx[s->nrcpt++] = i;
		else
			s->nrefused++;
	}
}

/* Convert the body for a server without 8BITMIME; false if it cannot be converted. */
static bool smtpc_downgrade(struct smtpc *s, const struct smtpc_txn *t)
{
	int ret = mime_to_7bit(t->body, t->body_len, &s->conv, &s->conv_len);

	BUG_ON(ret == -ENOMEM); /* as util_xmalloc: out of memory is not recoverable here */
	if (ret == 0) {
		s->xbody = s->conv;
		s->xlen = s->conv_len;
		smtpc_trace(s, "body converted to 7 bit: %zu -> %zu bytes", t->body_len,
			    s->conv_len);
	}
	return ret >= 0;
}

/* smtpc_txn_prepare: decide what of t goes to this server (fills xbody/xlen, ridx, nrcpt, utf8,
 * local). Returns true if a local outcome must be reported before (or instead of) MAIL. */
bool smtpc_txn_prepare(struct smtpc *s, struct smtpc_txn *t)
{
	bool need_utf8 = t->smtputf8 || !smtpc_ascii(t->sender), offered;

	for (unsigned i = 0; i < t->rcpt_count && !need_utf8; i++)
		need_utf8 = !smtpc_ascii(t->rcpts[i]);
	offered = (s->ext & SMTP_EXT_SMTPUTF8) != 0;
	s->utf8 = need_utf8 && offered;
	s->xbody = t->body;
	s->xlen = t->body_len;
	s->nrcpt = t->rcpt_count;
	s->nrefused = 0;
	s->local = SMTPC_LOCAL_NONE;
	if (need_utf8 && !offered) {
		if (!smtpc_ascii(t->sender)) {
			s->local = SMTPC_LOCAL_SENDER;
			return true;
		}
		smtpc_filter_rcpts(s, t);
		s->local = s->nrcpt ? (s->nrefused ? SMTPC_LOCAL_RCPTS : 0) : SMTPC_LOCAL_NORCPT;
	}
	if (s->nrcpt && !(s->ext & SMTP_EXT_8BITMIME) && !s->utf8 && !smtpc_downgrade(s, t))
		s->local = SMTPC_LOCAL_CONV;
	return s->local != SMTPC_LOCAL_NONE;
}

/* Tell the owner about each recipient refused locally, in order. False if that closed us. */
static bool smtpc_local_rcpts(struct smtpc *s)
{
	struct smtpc_reply rr =
	    smtpc_local_reply(553, 6, 7, s->head_utf8 ? smtpc_txt_head : smtpc_txt_rcpt);
	unsigned j = 0;

	for (unsigned i = 0; i < s->txn->rcpt_count && s->nrefused; i++) {
		if (j < s->nrcpt && s->ridx[j] == i) {
			j++;
			continue;
		}
		smtpc_trace(s, "local: rcpt %u: 553 5.6.7 %s", i, rr.text);
		if (s->ops->rcpt)
			s->ops->rcpt(s, s->txn, i, &rr, s->user);
		if (s->closing)
			return false;
	}
	return true;
}

static void smtpc_local_report(struct smtpc *s)
{
	struct smtpc_reply rr;

	if (s->local != SMTPC_LOCAL_SENDER && !smtpc_local_rcpts(s))
		return;
	switch (s->local) {
	case SMTPC_LOCAL_RCPTS:
		smtpc_mail_send(s);
		return;
	case SMTPC_LOCAL_SENDER:
		rr = smtpc_local_reply(553, 6, 7, smtpc_txt_sender);
		break;
	case SMTPC_LOCAL_NORCPT:
		rr = smtpc_local_reply(553, 6, 7, s->head_utf8 ? smtpc_txt_head : smtpc_txt_rcpt);
		break;
	default:
		rr = smtpc_local_reply(554, 6, 3, smtpc_txt_conv);
		break;
	}
	smtpc_trace(s, "local: %d %d.%d.%d %s", rr.code, rr.enh_class, rr.enh_subject,
		    rr.enh_detail, rr.text);
	smtpc_txn_finish_local(
	    s, s->local == SMTPC_LOCAL_NORCPT ? SMTPC_STAGE_RCPT : SMTPC_STAGE_MAIL, &rr);
	if (!s->closing)
		smtpc_enter(s, SMTPC_S_READY);
}

static void smtpc_local_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct smtpc *s = op->owner;

	s->inflight--;
	s->local_busy = false;
	if (s->closing) {
		smtpc_op_done(s);
		return;
	}
	smtpc_local_report(s);
}

/* smtpc_local_arm: report the local outcome from a NOP completion (state MAIL, nothing sent). */
void smtpc_local_arm(struct smtpc *s)
{
	struct io_uring_sqe *sqe = loop_get_sqe(s->loop);

	io_uring_prep_nop(sqe);
	loop_sqe_op(sqe, &s->op_local);
	s->local_busy = true;
	s->inflight++;
}

/* smtpc_prep_init: set up the session's local-outcome op. */
void smtpc_prep_init(struct smtpc *s)
{
	s->op_local = (struct loop_op){.cb = smtpc_local_cb, .owner = s};
}

/* smtpc_prep_done: free the converted body of the transaction that ended (no send reads it). */
void smtpc_prep_done(struct smtpc *s)
{
	free(s->conv);
	s->conv = NULL;
	s->conv_len = 0;
}
