/* shard — worker thread: io_uring loop, injection sessions (smtpd worker), the home side of
 * the messages it accepted (home.c), the destinations it owns (dest.c) and the glue between
 * them, the other shards and the commit thread (see shard.h).
 *
 * Injection: on_data takes the body without copying, builds the message (id = wall ms, shard,
 * sequence; recipients grouped by destination), adds it to the resident set and posts a synced
 * PUT to the commit thread; the reply stays pending (SMTPD_ASYNC). Only the commit completion
 * answers "250 2.0.0 Ok: queued as <id>" and then starts the message's first round, still in
 * RAM with its body: one delivery unit per destination, to the shard that owns it.
 */
#include "engine/daemon/auth.h"
#include "engine/daemon/qstat.h"
#include "engine/daemon/shard.h"
#include "engine/daemon/dest.h"
#include "engine/daemon/home.h"
#include "engine/daemon/inject.h"
#include "engine/daemon/snap.h"
#include "engine/shape/shape.h"
#include "engine/route/route.h"
#include "engine/smtp/smtp.h"
#include "engine/smtpd/smtpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Idle MX destinations are freed after this long without mail, swept this often. */
#define SHARD_DEST_IDLE_MS (5u * 60u * 1000u)
#define SHARD_GC_MS	   (30u * 1000u)
#define SHARD_RECLAIM_MS   50u
/* A failed AUTH is answered this long after its verdict (password guessing tarpit). */
#define SHARD_AUTH_TARPIT_MS 1000u

struct shard {
	struct rt *rt;
	unsigned idx;
	pthread_t thread;
	sem_t started;
	int start_err;
	struct loop *loop;
	struct smtpd_worker *w;
	struct dlog_buf *log;
	struct home *home;
	struct dest_env de;
	struct dest *relay;	  /* relay mode: this shard's instance of the relay destination */
	struct dest *fallback;	  /* independent mode with fallback_relay set */
	struct dest_table dests;  /* the destinations this shard owns (domains, routes, sites) */
	struct snap *snap;	  /* the configuration snapshot it works under (a reference) */
	struct loop_msg snap_msg; /* a new snapshot was installed (shard_snap) */
	atomic_bool snap_posted;  /* snap_msg is on its way (posted once until it arrives) */
	uint64_t seq;
	unsigned commits;      /* injection PUTs in flight */
	atomic_uint busy;      /* published each loop iteration for shard_busy() */
	atomic_bool shut_seen; /* the shard has acted on shard_shutdown (busy is current) */
	bool shutting;
	bool stopping; /* stop requested: end the loop once no log write is in flight */
	bool clean_exit;
	uint64_t last_gc;      /* monotonic ms of the last idle-destination sweep */
	uint64_t last_reclaim; /* ... of the last idle-session reclaim (dest_table_reclaim) */
	struct loop_msg shut_msg;
	struct loop_msg abort_msg;
	struct loop_msg stop_msg;
};

/* ---- injection ---- */

/* Per injection session (smtpd session data): what the Received: header made at DATA needs
 * from the transaction, and what on_data then takes from it. */
struct shard_sess {
	struct queue_id id; /* made at the DATA command: the Received: header names it */
	uint32_t trace_len; /* bytes of that header at the start of the body */
	bool utf8;	    /* MAIL ... SMTPUTF8 */
	/* AUTH: the request on the auth thread, then the tarpit of a failure */
	struct smtpd_session *sess;
	struct auth_req auth;
	struct loop_op tarpit;
};

const size_t shard_session_data_size = sizeof(struct shard_sess);

/* An address we accept must be one we can send on: smtpc refuses CR, LF, '<' and '>' inside a
 * path (valid only in quoted local parts), so such mail would be deferred forever. Refuse it
 * at injection with a clear reply instead. */
static bool shard_addr_ok(const char *a)
{
	return strpbrk(a, "<>\r\n") == NULL;
}

/* max_queue_messages / max_queue_bytes: when the queue holds that much, new mail is refused
 * with 452 4.3.1 (the client keeps it; nothing queued is ever dropped to make room). Checked
 * at MAIL and again at DATA. Returns true when the reply was sent. */
static bool shard_queue_full(struct shard *s, struct smtpd_session *sess)
{
	const struct config *c = &s->rt->cfg;
	uint64_t msgs, bytes;
	char text[128];

	if (!c->max_queue_messages && !c->max_queue_bytes)
		return false;
	qstat_totals(s->rt->qstat, &msgs, NULL, &bytes);
	if ((!c->max_queue_messages || msgs < c->max_queue_messages) &&
	    (!c->max_queue_bytes || bytes < c->max_queue_bytes))
		return false;
	snprintf(text, sizeof(text),
		 "4.3.1 Queue full (%llu messages, %llu bytes), try again later",
		 (unsigned long long)msgs, (unsigned long long)bytes);
	smtpd_reply(sess, 452, text);
	return true;
}

static int shard_on_mail(struct smtpd_session *sess, const char *sender, const char *params,
			 void *user)
{
	struct shard *s = user;

	struct shard_sess *ss = smtpd_session_data(sess);
	struct smtp_param prm;
	size_t plen = strlen(params);

	ss->utf8 = false;
	while (smtp_param_next(&params, &plen, &prm) == 1)
		ss->utf8 |= smtp_param_is(&prm, "SMTPUTF8");
	if (commit_degraded(s->rt->commit))
		smtpd_reply(sess, 452, "4.3.1 Insufficient system storage");
	else if (shard_queue_full(s, sess))
		;
	else if (!shard_addr_ok(sender))
		smtpd_reply(sess, 553, "5.1.7 Sender address cannot be relayed");
	return SMTPD_DEFAULT;
}

static int shard_on_rcpt(struct smtpd_session *sess, const char *rcpt, void *user)
{
	(void)user;
	if (!shard_addr_ok(rcpt))
		smtpd_reply(sess, 553, "5.1.3 Recipient address cannot be relayed");
	return SMTPD_DEFAULT;
}

/* ---- AUTH: verified on the auth thread, a failure answered after a tarpit ---- */

static void shard_auth_tarpit_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct shard_sess *ss = op->owner;

	smtpd_auth_result(ss->sess, false, NULL);
}

static void shard_auth_tarpit(struct loop *l, struct shard_sess *ss)
{
	ss->tarpit = (struct loop_op){.cb = shard_auth_tarpit_cb, .owner = ss};
	loop_timer(l, &ss->tarpit, SHARD_AUTH_TARPIT_MS);
}

/* The auth thread's verdict, back on this shard. */
static void shard_auth_done(struct loop *l, struct loop_msg *lm)
{
	struct shard_sess *ss = container_of(lm, struct shard_sess, auth.done);

	if (ss->auth.result > 0)
		smtpd_auth_result(ss->sess, true, ss->auth.domains);
	else if (ss->auth.result < 0)
		smtpd_reply(ss->sess, 454, "4.7.0 Temporary authentication failure");
	else
		shard_auth_tarpit(l, ss);
}

/* on_auth: copy the credentials into the request (the session stays until the verdict) and
 * post it; crypt(3) never runs on the shard. */
static int shard_on_auth(struct smtpd_session *sess, const char *login, const char *password,
			 void *user)
{
	struct shard *s = user;
	struct shard_sess *ss = smtpd_session_data(sess);
	struct auth_req *r = &ss->auth;
	size_t ln = strlen(login), pn = strlen(password);

	ss->sess = sess;
	if (ln >= sizeof(r->login) || pn >= sizeof(r->password)) {
		shard_auth_tarpit(s->loop, ss); /* no such user can exist */
		return SMTPD_ASYNC;
	}
	memcpy(r->login, login, ln + 1);
	memcpy(r->password, password, pn + 1);
	r->loop = s->loop;
	r->done.fn = shard_auth_done;
	auth_post(s->rt->auth, r);
	return SMTPD_ASYNC;
}

/* The client's address as an RFC 5321 address literal, or NULL for a UNIX socket client. */
static const char *shard_addr_literal(struct smtpd_session *sess, char *buf, size_t len)
{
	socklen_t sl = 0;
	const struct sockaddr *sa = smtpd_session_peer(sess, &sl);
	char ip[INET6_ADDRSTRLEN] = "";

	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
	else
		return NULL;
	snprintf(buf, len, "[%s%s]", sa->sa_family == AF_INET6 ? "IPv6:" : "", ip);
	return buf;
}

/* s with every byte >= 0x80 written as '?' into buf (len bytes); returns buf. */
static const char *shard_ascii(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

/* The Received: header's "with" (RFC 3848): ESMTP / UTF8SMTP, "S" with TLS, "A" after AUTH. */
static const char *shard_with(const struct smtpd_session *sess, bool utf8)
{
	static const char *const names[2][2][2] = {
	    {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
	    {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}}};
	bool tls = smtpd_session_tls(sess, NULL), auth = smtpd_session_auth_user(sess) != NULL;

	if (!utf8 && !smtpd_session_esmtp(sess))
		return "SMTP";
	return names[utf8][tls][auth];
}

/* DATA: make the message id now and put a Received: trace header (RFC 5321 4.4) in front of
 * the body, without copying it later (smtpd_body_prepend). */
static int shard_on_data_begin(struct smtpd_session *sess, void *user)
{
	struct shard *s = user;
	struct shard_sess *ss = smtpd_session_data(sess);
	char hdr[1024], idstr[QUEUE_ID_STRLEN + 1], lit[INET6_ADDRSTRLEN + 8], helo[256];
	uint64_t now = util_wall_ms();
	struct smtp_received r = {
	    .helo = smtpd_session_helo(sess),
	    .addr_lit = shard_addr_literal(sess, lit, sizeof(lit)),
	    .by = s->rt->cfg.hostname,
	    .with = shard_with(sess, ss->utf8),
	    .id = idstr,
	    .when = (int64_t)(now / 1000),
	};
	size_t n;

	if (shard_queue_full(s, sess))
		return SMTPD_DEFAULT;
	if (!ss->utf8 || !smtp_utf8_valid(r.helo, strlen(r.helo)))
		r.helo = shard_ascii(r.helo, helo, sizeof(helo)); /* no 8-bit header without it */
	queue_id_make(&ss->id, now, (uint16_t)s->idx, s->seq++);
	queue_id_format(&ss->id, idstr);
	n = smtp_received_format(hdr, sizeof(hdr), &r);
	ss->trace_len = (uint32_t)n;
	if (n)
		smtpd_body_prepend(sess, hdr, n);
	return SMTPD_DEFAULT;
}

static void shard_route(struct shard *s, struct msg *m)
{
	struct rt *rt = s->rt;

	if (atomic_load_explicit(&rt->outgoing, memory_order_relaxed) && !s->shutting &&
	    resident_bytes(rt->res) <= rt->cfg.memory_budget) {
		home_start(s->home, m, HOME_ALL_GROUPS);
		return;
	}
	/* Not delivered from RAM now: it waits in the queue for the runner (or a restart). */
	resident_del(rt->res, m);
	runner_rewind(rt->runner, msg_next_due(m));
	msg_free(m);
}

static void shard_committed(struct loop *l, struct loop_msg *lm)
{
	struct msg *m = container_of(lm, struct msg, req.done);
	struct shard *s = loop_data(l);
	struct smtpd_session *sess = m->cookie;
	const char *au;
	char text[96];

	s->commits--;
	m->cookie = NULL;
	if (m->req.result < 0) {
		if (m->req.result == -ENOSPC)
			smtpd_reply(sess, 452, "4.3.1 Insufficient system storage");
		else
			smtpd_reply(sess, 451, "4.3.0 Queue write failed, try again later");
		resident_del(s->rt->res, m);
		msg_free(m);
		return;
	}
	snprintf(text, sizeof(text), "2.0.0 Ok: queued as %s", m->idstr);
	au = smtpd_session_auth_user(sess);
	dlog_line(s->log, m->idstr,
		  "status=queued from=<%s> nrcpt=%u size=%zu hops=%u session=%llu%s%s",
		  m->env->sender, m->env->nrcpt, m->body_len, m->hops,
		  (unsigned long long)smtpd_session_id(sess), au ? " auth=" : "", au ? au : "");
	smtpd_reply(sess, 250, text); /* (after the log line: it may end the session) */
	shard_route(s, m);
}

_Static_assert(SMTP_NOTIFY_SUCCESS == QUEUE_NOTIFY_SUCCESS &&
		   SMTP_NOTIFY_FAILURE == QUEUE_NOTIFY_FAILURE &&
		   SMTP_NOTIFY_DELAY == QUEUE_NOTIFY_DELAY &&
		   SMTP_NOTIFY_NEVER == QUEUE_NOTIFY_NEVER && SMTP_RET_FULL == QUEUE_RET_FULL &&
		   SMTP_RET_HDRS == QUEUE_RET_HDRS,
	       "injection and queue DSN values are the same numbers");

/* Whether a complete message must be refused at the end of DATA (the reply is sent): a mail
 * loop (more Received: fields than max_hops, ours excluded: RFC 5321 6.3). */
static bool shard_refuse_data(struct shard *s, struct smtpd_session *sess,
			      const struct shard_sess *ss, const char *body, size_t len)
{
	unsigned hops = smtp_count_received(body + ss->trace_len, len - ss->trace_len);
	char text[96];

	if (hops <= s->rt->cfg.max_hops)
		return false;
	snprintf(text, sizeof(text), "5.4.6 Too many hops (%u Received: fields, limit %u)", hops,
		 s->rt->cfg.max_hops);
	smtpd_reply(sess, 554, text);
	return true;
}

/* Write a new message (meta, body, one sched entry per group: synced; its client hears the
 * result in shard_committed). */
static void shard_post_put(struct shard *s, struct msg *m)
{
	struct commit_req *r = &m->req;

	memset(r, 0, sizeof(*r));
	r->fill = msg_fill_put;
	r->written = msg_written_put_cb;
	r->bytes = m->meta_len + m->body_len + 64u * m->env->ndest;
	r->sync = true;
	r->put = true;
	r->id = m->id;
	r->put_due = m->env->created_ms;
	r->put_ngroups = m->env->ndest;
	r->loop = s->loop;
	r->done.fn = shard_committed;
	s->commits++;
	commit_post(s->rt->commit, r);
}

static int shard_on_data(struct smtpd_session *sess, const struct smtpd_envelope *e, void *user)
{
	struct shard *s = user;
	struct shard_sess *ss = smtpd_session_data(sess);
	size_t len;
	char *body = smtpd_take_body(sess, &len), why[160];
	struct msg *m;
	int code;

	if (!body)
		return -EINVAL;
	if (shard_refuse_data(s, sess, ss, body, len)) {
		free(body);
		return SMTPD_DEFAULT;
	}
	/* smtpd grows the buffer by doubling: shrink it so that RAM held per message is what the
	 * memory budget counts (the body stays NUL-terminated) */
	body = util_xrealloc(body, len + 1);
	m = inject_msg(s->snap, &ss->id, e, &body, &len, &code, why, sizeof(why));
	if (!m) {
		free(body);
		smtpd_reply(sess, code, why);
		return SMTPD_DEFAULT;
	}
	m->hops = smtp_count_received(body + ss->trace_len, len - ss->trace_len);
	m->shard = s->idx;
	m->cookie = sess;
	resident_add(s->rt->res, m);
	shard_post_put(s, m);
	return SMTPD_ASYNC;
}

/* ---- hand-over from the runner ---- */

static void shard_handoff(struct loop *l, struct loop_msg *lm)
{
	struct msg *m = container_of(lm, struct msg, handoff);
	struct shard *s = loop_data(l);

	if (s->shutting) {
		if (m->load_ready)
			ready_release(s->rt->ready, m->load_ready);
		resident_del(s->rt->res, m);
		msg_free(m);
		return;
	}
	home_start(s->home, m, m->load_group);
}

/* ---- operator actions ---- */

static void shard_ctl_arrive(struct loop *l, struct loop_msg *lm)
{
	struct home_ctl *c = container_of(lm, struct home_ctl, lm);
	struct shard *s = loop_data(l);

	home_ctl(s->home, c);
}

void shard_ctl(struct shard *s, struct home_ctl *c)
{
	c->lm.fn = shard_ctl_arrive;
	loop_post(s->loop, &c->lm);
}

/* ---- delivery units between shards ---- */

static void shard_unit_done(void *arg, struct unit *u);

/* A unit arrives at the shard owning its destination. */
static void shard_take_unit(struct shard *s, struct unit *u)
{
	if (s->shutting) { /* no destination takes work now: home undecided */
		ready_release(s->rt->ready, u->ready);
		shard_unit_done(s, u);
		return;
	}
	if (s->relay && strcmp(u->dest, dest_name(s->relay)) == 0)
		dest_enqueue(s->relay, u);
	else
		dest_enqueue(dest_table_get(&s->dests, &s->de, u->dest, s->fallback), u);
}

static void shard_unit_in(struct loop *l, struct loop_msg *lm)
{
	shard_take_unit(loop_data(l), container_of(lm, struct unit, lm));
}

/* home_env.send: a unit leaves its home shard s for its owner (s itself in relay mode). */
static void shard_send_unit(void *arg, struct unit *u)
{
	struct shard *s = arg;

	if (u->owner == s->idx) {
		shard_take_unit(s, u);
		return;
	}
	u->lm.fn = shard_unit_in;
	loop_post(s->rt->shards[u->owner]->loop, &u->lm);
}

/* dest_env.unit_done: a unit's outcomes are in; back to its home shard. */
static void shard_unit_done(void *arg, struct unit *u)
{
	struct shard *s = arg;

	if (u->home_loop == s->loop) {
		home_unit_back(u->home, u);
		return;
	}
	u->lm.fn = home_unit_post;
	loop_post(u->home_loop, &u->lm);
}

void shard_dispatch(struct shard *s, struct msg *m)
{
	m->handoff.fn = shard_handoff;
	loop_post(s->loop, &m->handoff);
}

/* ---- thread, shutdown ---- */

static void shard_worker_done(struct smtpd_worker *w, void *arg)
{
	struct shard *s = arg;

	(void)w;
	smtpd_worker_free(s->w);
	s->w = NULL;
}

static unsigned shard_dests_busy(const struct shard *s)
{
	return (s->relay ? dest_busy(s->relay) : 0) + (s->fallback ? dest_busy(s->fallback) : 0) +
	       dest_table_busy(&s->dests);
}

/* Publish what is still in flight for shard_busy (read only after shard_shutdown, so counted
 * only then: summing thousands of destinations every loop iteration would cost real CPU). */
static void shard_publish_busy(struct shard *s)
{
	unsigned busy;

	if (!s->shutting)
		return;
	busy = s->commits + shard_dests_busy(s) + home_busy(s->home);
	if (s->w)
		busy += 1 + smtpd_worker_sessions(s->w);
	atomic_store_explicit(&s->busy, busy, memory_order_relaxed);
}

static void shard_idle(struct loop *l, void *data)
{
	struct shard *s = data;

	shard_publish_busy(s);
	if (!s->shutting && loop_now_ms(l) - s->last_reclaim >= SHARD_RECLAIM_MS) {
		s->last_reclaim = loop_now_ms(l);
		dest_table_reclaim(&s->dests);
		if (s->relay)
			dest_tick(s->relay);
	}
	if (!s->shutting && loop_now_ms(l) - s->last_gc >= SHARD_GC_MS) {
		s->last_gc = loop_now_ms(l);
		dest_table_gc(&s->dests, s->last_gc, SHARD_DEST_IDLE_MS);
		if (s->idx == 0) /* throttle states nobody holds and that hold nothing */
			shape_table_sweep(s->rt->shape, s->last_gc);
	}
	if (!s->stopping)
		dlog_flush(s->log);
	else if (!dlog_busy(s->log))
		loop_stop(l); /* the rest of the log is written synchronously by dlog_buf_free */
}

static void shard_on_shutdown(struct loop *l, struct loop_msg *lm)
{
	struct shard *s = loop_data(l);

	if (!s->shutting && s->w)
		smtpd_worker_shutdown(s->w, s->rt->cfg.shutdown_timeout_ms, shard_worker_done, s);
	s->shutting = true;
	home_shutdown(s->home, lm == &s->abort_msg);
	if (s->relay)
		dest_shutdown(s->relay, lm == &s->abort_msg);
	dest_table_shutdown(&s->dests, lm == &s->abort_msg);
	if (s->fallback) /* after the MX destinations: they may still hand it jobs */
		dest_shutdown(s->fallback, lm == &s->abort_msg);
	shard_idle(l, s);
	atomic_store(&s->shut_seen, true);
}

static void shard_on_stop(struct loop *l, struct loop_msg *lm)
{
	struct shard *s = loop_data(l);

	(void)lm;
	s->stopping = true; /* shard_idle ends the loop when the log write in flight is done */
}

/* The relay (relay mode) or the fallback relay (independent mode), by address or by name. */
static void shard_relays(struct shard *s)
{
	const struct rt *rt = s->rt;

	if (rt->cfg.mode == CONFIG_MODE_RELAY)
		s->relay = rt->relay_host[0]
			       ? dest_new_relay_named(&s->de, rt->relay_host, rt->relay_port,
						      rt->relay_name, false)
			       : dest_new_relay(&s->de, &rt->relay, rt->relay_name, false);
	else if (rt->fallback_name[0])
		s->fallback = rt->fallback_host[0]
				  ? dest_new_relay_named(&s->de, rt->fallback_host,
							 rt->fallback_port, rt->fallback_name, true)
				  : dest_new_relay(&s->de, &rt->fallback, rt->fallback_name, true);
	if (s->relay)
		dest_reconf(s->relay);
	if (s->fallback)
		dest_reconf(s->fallback);
}

/* ---- configuration snapshots ---- */

/* A new snapshot is installed: every destination takes its settings (a destination whose
 * route now leads elsewhere is retired and drains), then the old snapshot is let go. */
static void shard_snap_arrive(struct loop *l, struct loop_msg *lm)
{
	struct shard *s = loop_data(l);
	struct snap *old = s->snap;

	(void)lm;
	atomic_store(&s->snap_posted, false);
	s->snap = snap_current(s->rt);
	if (s->relay)
		dest_reconf(s->relay);
	if (s->fallback)
		dest_reconf(s->fallback);
	dest_table_reconf(&s->dests);
	snap_unref(old);
}

void shard_snap(struct shard *s)
{
	if (atomic_exchange(&s->snap_posted, true))
		return; /* the one on its way reads the snapshot installed when it arrives */
	s->snap_msg.fn = shard_snap_arrive;
	loop_post(s->loop, &s->snap_msg);
}

static int shard_setup(struct shard *s)
{
	struct home_env he;
	uint64_t rnd = 0;
	int ret;

	if ((ret = loop_new(&s->loop, 4096)) < 0)
		return ret;
	loop_set_data(s->loop, s);
	loop_set_idle(s->loop, shard_idle, s);
	s->log = dlog_buf_new(s->rt->log, s->loop);
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = util_mono_us();
	s->seq = (rnd & 0xffffffffu) << 8; /* ids stay unique even if the clock steps back */
	s->de = (struct dest_env){.rt = s->rt,
				  .loop = s->loop,
				  .log = s->log,
				  .shard = s->idx,
				  .unit_done = shard_unit_done,
				  .unit_done_arg = s,
				  .snap = &s->snap,
				  .table = &s->dests,
				  .relay = &s->relay};
	s->snap = snap_current(s->rt);
	shard_relays(s);
	he = (struct home_env){.rt = s->rt,
			       .loop = s->loop,
			       .log = s->log,
			       .shard = s->idx,
			       .send = shard_send_unit,
			       .send_arg = s,
			       .snap = &s->snap};
	s->home = home_new(&he);
	return smtpd_worker_new(&s->w, s->rt->srv, s->loop, s);
}

static void *shard_main(void *arg)
{
	struct shard *s = arg;
	char name[16];

	snprintf(name, sizeof(name), "rt-shard%u", s->idx);
	pthread_setname_np(pthread_self(), name);
	s->start_err = shard_setup(s);
	sem_post(&s->started);
	if (s->start_err < 0)
		return NULL;
	sem_wait(&s->rt->all_up); /* units may go to any shard: every loop must exist first */
	loop_run(s->loop);
	s->clean_exit = shard_dests_busy(s) == 0 && home_busy(s->home) == 0 && s->w == NULL;
	if (!s->clean_exit) {
		/* ops may still reference the ring and the sessions: leave them to process exit */
		fprintf(stderr, "riptide: shard %u: sessions still open at exit (left to the OS)\n",
			s->idx);
		if (!dlog_busy(s->log))
			dlog_buf_free(s->log);
		return NULL;
	}
	dest_free(s->relay);
	dest_table_free(&s->dests);
	dest_free(s->fallback);
	snap_unref(s->snap);
	home_free(s->home);
	dlog_buf_free(s->log);
	loop_free(s->loop);
	return NULL;
}

int shard_start(struct rt *rt, unsigned idx, struct shard **out)
{
	struct shard *s = util_xcalloc(1, sizeof(*s));
	int ret;

	s->rt = rt;
	s->idx = idx;
	sem_init(&s->started, 0, 0);
	ret = pthread_create(&s->thread, NULL, shard_main, s);
	if (ret) {
		free(s);
		return -ret;
	}
	sem_wait(&s->started);
	*out = s;
	if (s->start_err < 0) {
		fprintf(stderr, "riptide: shard %u: start failed: %s\n", idx,
			strerror(-s->start_err));
		return s->start_err;
	}
	return 0;
}

void shard_shutdown(struct shard *s, bool abort)
{
	struct loop_msg *lm = abort ? &s->abort_msg : &s->shut_msg;

	lm->fn = shard_on_shutdown;
	loop_post(s->loop, lm);
}

unsigned shard_busy(struct shard *s)
{
	/* until the shard has seen the shutdown, its published count may predate it */
	if (!atomic_load(&s->shut_seen))
		return 1;
	return atomic_load_explicit(&s->busy, memory_order_relaxed);
}

bool shard_join(struct shard *s)
{
	bool clean;

	s->stop_msg.fn = shard_on_stop;
	loop_post(s->loop, &s->stop_msg);
	pthread_join(s->thread, NULL);
	clean = s->clean_exit;
	sem_destroy(&s->started);
	if (clean)
		free(s);
	return clean;
}

/* hooks given to the smtpd server by main */
const struct smtpd_hooks shard_smtpd_hooks = {
    .on_mail = shard_on_mail,
    .on_data_begin = shard_on_data_begin,
    .on_rcpt = shard_on_rcpt,
    .on_data = shard_on_data,
    .on_auth = shard_on_auth,
};
