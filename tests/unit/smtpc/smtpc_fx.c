/* smtpc_fx — the shared smtpc test fixture (see smtpc_fx.h).
 *
 * Why a .c: both test executables link the same owner callbacks and helpers instead of copies.
 */
#include "tests/unit/smtpc/smtpc_fx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <setjmp.h>
#include <cmocka.h>

static void save_reply(struct saved_reply *d, const struct smtpc_reply *r)
{
	size_t n = r->text_len < TEXT_MAX - 1 ? r->text_len : TEXT_MAX - 1;

	d->code = r->code;
	d->enh_class = r->enh_class;
	d->enh_subject = r->enh_subject;
	d->enh_detail = r->enh_detail;
	d->local = r->local;
	if (r->text)
		memcpy(d->text, r->text, n);
	d->text[r->text ? n : 0] = '\0';
}

/* ---- the owner's callbacks (loop thread) ---- */

static struct smtpc_txn *op_next(struct smtpc *s, void *user)
{
	struct fx *f = user;

	f->nexts++;
	f->ext_at_next = smtpc_ext(s);
	f->size_at_next = smtpc_size_limit(s);
	if (f->give_txn) {
		f->give_txn = false;
		return &f->txn;
	}
	if (f->send_later) {
		f->send_later = false;
		loop_timer(f->l, &f->send_op, 10);
	}
	if (f->quit_when_idle)
		smtpc_quit(s);
	return NULL;
}

static void op_rcpt(struct smtpc *s, struct smtpc_txn *t, unsigned idx, const struct smtpc_reply *r,
		    void *user)
{
	logf_((struct fx *)user, "rcpt %u %d%s;", idx, r->code, r->local ? "L" : "");
}

static void op_txn_done(struct smtpc *s, struct smtpc_txn *t, const struct smtpc_result *res,
			void *user)
{
	struct fx *f = user;

	f->txn_dones++;
	f->res = *res;
	f->res.reply.text = NULL;
	save_reply(&f->res_reply, &res->reply);
	logf_(f, "done;");
}

static void op_closed(struct smtpc *s, const struct smtpc_close_info *info, void *user)
{
	struct fx *f = user;

	f->closes++;
	f->info = *info;
	f->info.reply.text = NULL;
	if (info->err) { /* not always static: a bind error lives in the session */
		snprintf(f->info_err, sizeof(f->info_err), "%s", info->err);
		f->info.err = f->info_err;
	}
	save_reply(&f->info_reply, &info->reply);
	loop_stop(f->l);
}

/* ---- fixture ---- */

int fx_setup(void **state)
{
	struct fx *f = util_xcalloc(1, sizeof(*f));
	char addr[160];

	*state = f;
	if (peer_init(&f->peer, "smtpc", "mx.sock") < 0 || peer_listen(&f->peer) < 0)
		return -1;
	peer_addr(&f->peer, addr, sizeof(addr));
	if (util_addr_parse(addr, &f->cfg.addr) < 0)
		return -1;
	f->ops = (struct smtpc_ops){
	    .next = op_next, .rcpt = op_rcpt, .txn_done = op_txn_done, .closed = op_closed};
	f->cfg.helo_name = "client.test";
	smtpc_timeouts_default(&f->cfg.timeouts);
	f->cfg.ops = &f->ops;
	f->cfg.user = f;
	f->rcpts[0] = "b@y.test";
	f->rcpts[1] = "c@y.test";
	f->rcpts[2] = "d@y.test";
	f->txn = (struct smtpc_txn){
	    .sender = "a@x.test", .rcpts = f->rcpts, .rcpt_count = 3, .body = BODY};
	f->txn.body_len = strlen(BODY);
	f->give_txn = true;
	f->quit_when_idle = true;
	return 0;
}

int fx_teardown(void **state)
{
	struct fx *f = *state;

	peer_fini(&f->peer);
	free(f->big);
	free(f->big_wire);
	free(f);
	return 0;
}

/* Run one session against the scripted server until ops->closed, the owner's transaction
 * carrying the first rcpts of f->rcpts; then compare what the server read with what each step
 * wanted. */
void fx_run(struct fx *f, unsigned rcpts, const struct peer_step *steps)
{
	f->txn.rcpt_count = rcpts;
	assert_int_equal(loop_new(&f->l, 64), 0);
	assert_int_equal(peer_start(&f->peer, f->l, steps, f, NULL), 0);
	assert_int_equal(smtpc_new(f->l, &f->cfg, &f->c), 0);
	assert_int_equal(loop_run(f->l), 0);
	assert_int_equal(peer_join(&f->peer), 0);
	loop_free(f->l);
	assert_int_equal(f->closes, 1);
	peer_check(&f->peer);
}

/* The one transaction ended with the server's reply code at stage, accepted rcpts. */
void fx_assert_txn(const struct fx *f, int code, enum smtpc_stage stage, unsigned accepted)
{
	assert_int_equal(f->txn_dones, 1);
	assert_null(f->res.err);
	assert_int_equal(f->res_reply.code, code);
	assert_int_equal(f->res.stage, stage);
	assert_int_equal(f->res.rcpt_accepted, accepted);
	assert_false(f->res.maybe_delivered);
}

/* The one transaction failed without a reply: err (any if NULL) at stage, maybe_delivered. */
void fx_assert_txn_err(const struct fx *f, const char *err, enum smtpc_stage stage,
		       bool maybe_delivered)
{
	assert_int_equal(f->txn_dones, 1);
	assert_non_null(f->res.err);
	if (err)
		assert_string_equal(f->res.err, err);
	assert_int_equal(f->res_reply.code, 0);
	assert_int_equal(f->res.stage, stage);
	assert_int_equal(f->res.maybe_delivered, maybe_delivered);
}

/* The session was ready, asked next() once and closed without an error. */
void fx_assert_idle_close(const struct fx *f)
{
	assert_int_equal(f->nexts, 1);
	assert_null(f->info.err);
	assert_true(f->info.was_ready);
}

void fx_do_abort(void *user)
{
	struct fx *f = user;

	smtpc_abort(f->c);
}

/* From a loop timer, after next() returned NULL: start the transaction from outside. */
void fx_send_timer_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct fx *f = container_of(op, struct fx, send_op);

	unsigned before = f->txn_dones;

	f->send_ret = smtpc_send(f->c, &f->txn);
	f->dones_in_send = f->txn_dones - before;
	f->quit_when_idle = true; /* after this transaction */
}
