/* blast_worker — one thread per -T: an io_uring loop driving its share of smtpc sessions.
 *
 * Why: this is the pull model the daemon uses too. A session that becomes READY asks for the
 * next message (blast_next claims a global sequence number), gets its result in blast_txn_done,
 * and when it closes (max messages per connection, server error) it is replaced by a new
 * connection while messages remain. Connection failures before any transaction do not consume
 * messages; they are retried with a growing delay, and a thread whose sessions keep failing to
 * connect gives up so the run ends (the unattempted messages make the exit status 1).
 * TLS (--tls, --tls-required, --smtps) is smtpc's; a session counts its connection when it first
 * becomes READY (with TLS or not), and under --tls a failed handshake makes that session
 * reconnect in plaintext from then on, like the daemon's opportunistic fallback. AUTH (--auth)
 * is smtpc's too: a session that cannot log in ends before MAIL and counts as a failed connect.
 */
#include "tools/blast/blast.h"
#include "engine/smtpc/smtpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BLAST_LOGBUF (64 * 1024)

struct blast_worker;

struct blast_sess {
	struct blast_worker *w;
	struct smtpc *sc;
	struct smtpc_txn txn;
	const char **rcpt_ptrs;
	char *rcpt_buf;
	char *body;
	size_t body_cap;
	uint64_t seq;
	uint64_t start_us, start_wall_us;
	struct loop_op retry_op;
	bool retry_armed;
	bool counted; /* this connection is in st.sessions */
	bool plain;   /* --tls: a handshake failed, connect without TLS from now on */
};

struct blast_worker {
	struct blast_cfg *cfg;
	unsigned idx;
	pthread_t th;
	struct loop *loop;
	struct blast_sess *sess;
	unsigned nsess, live;
	unsigned fail_streak;
	bool give_up, warned;
	uint64_t next_id;
	struct blast_stats st;
	char *logbuf;
	size_t loglen;
	int ret;
};

static void blast_connect(struct blast_sess *bs);

static uint64_t blast_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void blast_log_flush(struct blast_worker *w)
{
	size_t off = 0;
	ssize_t r;

	while (off < w->loglen && (r = write(w->cfg->log_fd, w->logbuf + off, w->loglen - off)) > 0)
		off += (size_t)r;
	w->loglen = 0;
}

/* The queue id is the token after "queued as " in the reply text, if any. */
static void blast_queue_id(const struct smtpc_reply *r, char *out, size_t cap)
{
	const char *p = r->text ? memmem(r->text, r->text_len, "queued as ", 10) : NULL;
	size_t n = 0;

	if (p) {
		p += 10;
		while (p + n < r->text + r->text_len && p[n] != ' ' && p[n] != '\t' && n + 1 < cap)
			n++;
	}
	if (!n) {
		snprintf(out, cap, "-");
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

static void blast_log(struct blast_sess *bs, int code, const struct smtpc_reply *r)
{
	struct blast_worker *w = bs->w;
	char id[96], qid[64];
	int n;

	if (w->cfg->log_fd < 0)
		return;
	if (w->loglen + 512 > BLAST_LOGBUF)
		blast_log_flush(w);
	blast_msg_id(w->cfg, bs->seq, id, sizeof(id));
	blast_queue_id(r, qid, sizeof(qid));
	n = snprintf(w->logbuf + w->loglen, BLAST_LOGBUF - w->loglen, "%s %d %s %llu %llu\n", id,
		     code, qid, (unsigned long long)bs->start_wall_us,
		     (unsigned long long)blast_wall_us());
	if (n > 0)
		w->loglen += (size_t)n;
}

static void blast_fill(struct blast_sess *bs, uint64_t seq)
{
	const struct blast_cfg *cfg = bs->w->cfg;

	bs->seq = seq;
	if (cfg->nrcpts) {
		bs->txn.rcpts = (const char *const *)cfg->rcpts;
		bs->txn.rcpt_count = cfg->nrcpts;
	} else {
		for (unsigned j = 0; j < cfg->rcpt_per_msg; j++)
			blast_rcpt(cfg, seq, j, bs->rcpt_buf + (size_t)j * BLAST_ADDR_MAX,
				   BLAST_ADDR_MAX);
		bs->txn.rcpts = bs->rcpt_ptrs;
		bs->txn.rcpt_count = cfg->rcpt_per_msg;
	}
	bs->txn.sender = cfg->sender;
	if (cfg->body) {
		bs->txn.body = cfg->body;
		bs->txn.body_len = cfg->body_len;
	} else {
		bs->txn.body_len =
		    blast_msg_build(cfg, seq, bs->txn.rcpts, &bs->body, &bs->body_cap);
		bs->txn.body = bs->body;
	}
}

/* Count a connection that reached READY (once), and whether TLS is up on it. */
static void blast_count_session(struct blast_sess *bs, struct smtpc *sc)
{
	struct blast_stats *st = &bs->w->st;
	struct tls_info i;

	bs->counted = true;
	st->sessions++;
	if (!smtpc_tls_info(sc, &i))
		return;
	st->tls_sessions++;
	if (!st->tls_desc[0])
		snprintf(st->tls_desc, sizeof(st->tls_desc), "%s %s", i.version, i.cipher);
}

static struct smtpc_txn *blast_next(struct smtpc *sc, void *user)
{
	struct blast_sess *bs = user;
	struct blast_cfg *cfg = bs->w->cfg;
	uint64_t seq = atomic_fetch_add(&cfg->next_seq, 1);

	if (!bs->counted)
		blast_count_session(bs, sc);
	if (seq >= cfg->n) {
		smtpc_quit(sc);
		return NULL;
	}
	blast_fill(bs, seq + 1);
	atomic_fetch_add(&cfg->started, 1);
	bs->start_wall_us = blast_wall_us();
	bs->start_us = util_mono_us();
	return &bs->txn;
}

static void blast_txn_done(struct smtpc *sc, struct smtpc_txn *t, const struct smtpc_result *res,
			   void *user)
{
	struct blast_sess *bs = user;
	struct blast_cfg *cfg = bs->w->cfg;
	int code = res->err ? 0 : res->reply.code;
	uint64_t lat = util_mono_us() - bs->start_us;

	if (code < 0 || code >= BLAST_MAX_CODE)
		code = 0;
	bs->w->st.codes[code]++;
	if (code)
		cfg->lat_us[bs->seq - 1] = lat + 1 >= UINT32_MAX ? UINT32_MAX : (uint32_t)(lat + 1);
	if (code >= 200 && code < 300)
		atomic_fetch_add(&cfg->ok, 1);
	atomic_fetch_add(&cfg->done, 1);
	blast_log(bs, code, &res->reply);
	if (cfg->verbose && res->err)
		fprintf(stderr, "riptide-blast: message %llu: %s\n", (unsigned long long)bs->seq,
			res->err);
}

static void blast_trace(struct smtpc *sc, const char *line, void *user)
{
	fprintf(stderr, "%s\n", line);
}

static bool blast_more(const struct blast_cfg *cfg)
{
	return atomic_load(&cfg->next_seq) < cfg->n;
}

static void blast_retry_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct blast_sess *bs = op->owner;
	struct blast_worker *w = bs->w;

	bs->retry_armed = false;
	if (w->give_up || !blast_more(w->cfg)) {
		if (--w->live == 0)
			loop_stop(w->loop);
		return;
	}
	blast_connect(bs);
}

static void blast_closed(struct smtpc *sc, const struct smtpc_close_info *info, void *user)
{
	struct blast_sess *bs = user;
	struct blast_worker *w = bs->w;
	uint64_t delay, round;

	bs->sc = NULL;
	if (info->auth_failed)
		w->st.auth_failed++;
	if (info->tls_failed) {
		w->st.tls_failed++;
		bs->plain = w->cfg->tls == BLAST_TLS_TRY; /* opportunistic: retry in plaintext */
	}
	if (info->was_ready) {
		w->fail_streak = 0;
	} else if (++w->fail_streak >= 5 * w->nsess + 5) {
		if (!w->give_up)
			fprintf(stderr, "riptide-blast: %s: giving up: %s\n", w->cfg->target,
				info->err ? info->err : "connection failed");
		w->give_up = true;
	}
	if (info->err && (w->cfg->verbose || !w->warned)) {
		fprintf(stderr, "riptide-blast: session closed in %s: %s%s%.*s\n",
			smtpc_state_name(info->state), info->err, info->reply.code ? ": " : "",
			(int)info->reply.text_len, info->reply.text ? info->reply.text : "");
		w->warned = true;
	}
	if (w->give_up || !blast_more(w->cfg)) {
		if (--w->live == 0)
			loop_stop(w->loop);
		return;
	}
	if (info->was_ready && !info->err) {
		blast_connect(bs);
		return;
	}
	round = w->fail_streak / w->nsess;
	delay = 50u << (round > 3 ? 3 : round);
	bs->retry_armed = true;
	loop_timer(w->loop, &bs->retry_op, delay);
}

static const struct smtpc_ops blast_ops = {
    .next = blast_next,
    .txn_done = blast_txn_done,
    .closed = blast_closed,
};

static const struct smtpc_ops blast_ops_trace = {
    .next = blast_next,
    .txn_done = blast_txn_done,
    .closed = blast_closed,
    .trace = blast_trace,
};

static const enum smtpc_tls blast_tls_mode[] = {
    [BLAST_TLS_NONE] = SMTPC_TLS_NONE,
    [BLAST_TLS_TRY] = SMTPC_TLS_TRY,
    [BLAST_TLS_REQUIRE] = SMTPC_TLS_REQUIRE,
    [BLAST_TLS_SMTPS] = SMTPC_TLS_IMPLICIT,
};

static void blast_connect(struct blast_sess *bs)
{
	struct blast_worker *w = bs->w;
	bool tls = w->cfg->tls != BLAST_TLS_NONE && !bs->plain;
	struct smtpc_config c = {
	    .addr = w->cfg->addr,
	    .helo_name = "riptide-blast.test",
	    .no_pipelining = w->cfg->no_pipelining,
	    .max_txns = w->cfg->max_per_conn,
	    .id = ((uint64_t)w->idx << 40) | w->next_id++,
	    .ops = w->cfg->verbose ? &blast_ops_trace : &blast_ops,
	    .user = bs,
	    .tls = tls ? blast_tls_mode[w->cfg->tls] : SMTPC_TLS_NONE,
	    .tls_ctx = tls ? w->cfg->tls_ctx : NULL,
	    .auth_user = w->cfg->auth_user,
	    .auth_password = w->cfg->auth_password,
	    .auth_plaintext = w->cfg->auth_plaintext,
	};
	int ret;

	bs->counted = false;
	smtpc_timeouts_default(&c.timeouts);
	c.timeouts.connect_ms = 10 * 1000;
	c.timeouts.idle_ms = 1000;
	ret = smtpc_new(w->loop, &c, &bs->sc);
	if (ret < 0) {
		fprintf(stderr, "riptide-blast: socket: %s\n", strerror(-ret));
		bs->retry_armed = true;
		loop_timer(w->loop, &bs->retry_op, 500);
	}
}

static void blast_sess_init(struct blast_worker *w, struct blast_sess *bs)
{
	unsigned r = w->cfg->rcpt_per_msg;

	bs->w = w;
	bs->retry_op = (struct loop_op){.cb = blast_retry_cb, .owner = bs};
	bs->rcpt_ptrs = util_xcalloc(r, sizeof(*bs->rcpt_ptrs));
	bs->rcpt_buf = util_xcalloc(r, BLAST_ADDR_MAX);
	for (unsigned j = 0; j < r; j++)
		bs->rcpt_ptrs[j] = bs->rcpt_buf + (size_t)j * BLAST_ADDR_MAX;
}

static void *blast_thread(void *arg)
{
	struct blast_worker *w = arg;

	w->ret = loop_new(&w->loop, 1024);
	if (w->ret < 0)
		return NULL;
	w->logbuf = util_xmalloc(BLAST_LOGBUF);
	for (unsigned i = 0; i < w->nsess; i++)
		blast_sess_init(w, &w->sess[i]);
	w->live = w->nsess;
	for (unsigned i = 0; i < w->nsess; i++)
		blast_connect(&w->sess[i]);
	if (w->live)
		w->ret = loop_run(w->loop);
	if (w->cfg->log_fd >= 0)
		blast_log_flush(w);
	for (unsigned i = 0; i < w->nsess; i++) {
		free(w->sess[i].rcpt_ptrs);
		free(w->sess[i].rcpt_buf);
		free(w->sess[i].body);
	}
	free(w->logbuf);
	loop_free(w->loop);
	return NULL;
}

/* blast_run: see blast.h. */
int blast_run(struct blast_cfg *cfg, struct blast_stats *st)
{
	struct blast_worker *ws = util_xcalloc(cfg->threads, sizeof(*ws));
	int ret = 0;

	for (unsigned t = 0; t < cfg->threads; t++) {
		ws[t].cfg = cfg;
		ws[t].idx = t;
		ws[t].nsess = cfg->conc / cfg->threads + (t < cfg->conc % cfg->threads ? 1 : 0);
		ws[t].sess = util_xcalloc(ws[t].nsess ? ws[t].nsess : 1, sizeof(*ws[t].sess));
		if (pthread_create(&ws[t].th, NULL, blast_thread, &ws[t]) != 0) {
			fprintf(stderr, "riptide-blast: pthread_create failed\n");
			abort();
		}
	}
	for (unsigned t = 0; t < cfg->threads; t++) {
		pthread_join(ws[t].th, NULL);
		if (ws[t].ret < 0)
			ret = ws[t].ret;
		for (unsigned c = 0; c < BLAST_MAX_CODE; c++)
			st->codes[c] += ws[t].st.codes[c];
		st->sessions += ws[t].st.sessions;
		st->tls_sessions += ws[t].st.tls_sessions;
		st->tls_failed += ws[t].st.tls_failed;
		st->auth_failed += ws[t].st.auth_failed;
		if (!st->tls_desc[0])
			memcpy(st->tls_desc, ws[t].st.tls_desc, sizeof(st->tls_desc));
		free(ws[t].sess);
	}
	free(ws);
	return ret;
}
