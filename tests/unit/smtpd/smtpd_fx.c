/* smtpd_fx — the shared smtpd test fixture (see smtpd_fx.h). */
#include "tests/unit/smtpd/smtpd_fx.h"
#include "engine/smtpd/smtpd_types.h" /* the listening fd, for its ephemeral port */

/* ---- default hooks: record and accept ---- */

int fx_hook_mail(struct smtpd_session *s, const char *sender, const char *params, void *user)
{
	struct fx *f = user;

	f->mails++;
	logf_(f, "mail %s;", sender);
	return SMTPD_DEFAULT;
}

int fx_hook_rcpt(struct smtpd_session *s, const char *rcpt, void *user)
{
	logf_((struct fx *)user, "rcpt %s;", rcpt);
	return SMTPD_DEFAULT;
}

void fx_keep_body(struct fx *f, const char *b, size_t len)
{
	free(f->body);
	f->body = util_xmalloc(len + 1);
	memcpy(f->body, b, len + 1); /* including the NUL smtpd promises at b[len] */
	f->body_len = len;
}

int fx_hook_data(struct smtpd_session *s, const struct smtpd_envelope *env, void *user)
{
	struct fx *f = user;

	f->datas++;
	logf_(f, "data from %s to", env->sender);
	for (unsigned i = 0; i < env->nrcpts; i++)
		logf_(f, " %s", env->rcpts[i]);
	logf_(f, ";");
	fx_keep_body(f, env->body, env->body_len);
	return SMTPD_DEFAULT;
}

void fx_hook_close(struct smtpd_session *s, void *user)
{
	struct fx *f = user;

	f->closes++;
}

/* ---- loop-thread side of the script ---- */

void fx_worker_done(struct smtpd_worker *w, void *arg)
{
	struct fx *f = arg;

	f->done_calls++;
	loop_stop(f->l);
}

/* The peer's script is over: shut the worker down (a no-op if already shut down). */
void fx_end_script(void *user)
{
	struct fx *f = user;

	smtpd_worker_shutdown(f->w, 1000, fx_worker_done, f);
}

bool fx_session_closed(void *user)
{
	struct fx *f = user;

	return atomic_load(&f->closes) != 0;
}

/* ---- fixture ---- */

int fx_setup(void **state)
{
	struct fx *f = util_xcalloc(1, sizeof(*f));

	*state = f;
	if (peer_init(&f->peer, "smtpd", "smtpd.sock") < 0)
		return -1;
	f->cfg = (struct smtpd_config){
	    .hostname = "mx.test",
	    .max_size = MAX_SIZE,
	    .max_rcpts = MAX_RCPTS,
	    .max_line = MAX_LINE,
	};
	f->hooks = (struct smtpd_hooks){
	    .on_mail = fx_hook_mail,
	    .on_rcpt = fx_hook_rcpt,
	    .on_data = fx_hook_data,
	    .on_close = fx_hook_close,
	};
	return 0;
}

int fx_teardown(void **state)
{
	struct fx *f = *state;

	peer_fini(&f->peer);
	free(f->body);
	free(f);
	return 0;
}

/* Run one session: server + worker on a fresh loop, the peer plays steps, the loop runs until
 * the worker's shutdown completes. Then check that the worker drained and the one session
 * closed once, and compare what the peer read with what it wanted. */
/* Listen on 127.0.0.1, port chosen by the kernel, and point the peer at it. */
static void fx_listen_tcp(struct fx *f)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	assert_int_equal(smtpd_server_listen_str(f->srv, "127.0.0.1:0"), 0);
	assert_int_equal(getsockname(f->srv->ls[0].fd, (struct sockaddr *)&ss, &sl), 0);
	peer_tcp(&f->peer, (struct sockaddr *)&ss, sl, f->tcp_from);
}

void fx_run(struct fx *f, const struct peer_step *steps)
{
	char addr[160];

	peer_addr(&f->peer, addr, sizeof(addr));
	assert_int_equal(smtpd_server_new(&f->srv, &f->cfg, &f->hooks, f), 0);
	if (f->tcp_from)
		fx_listen_tcp(f);
	else
		assert_int_equal(smtpd_server_listen_str(f->srv, addr), 0);
	assert_int_equal(loop_new(&f->l, 64), 0);
	assert_int_equal(smtpd_worker_new(&f->w, f->srv, f->l, NULL), 0);
	assert_int_equal(peer_start(&f->peer, f->l, steps, f, fx_end_script), 0);
	assert_int_equal(loop_run(f->l), 0);
	assert_int_equal(peer_join(&f->peer), 0);
	assert_int_equal(smtpd_worker_sessions(f->w), 0);
	smtpd_worker_free(f->w);
	smtpd_server_free(f->srv);
	loop_free(f->l);
	assert_int_equal(f->done_calls, 1);
	assert_int_equal(f->closes, 1);
	peer_check(&f->peer);
}
