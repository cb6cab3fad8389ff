/* dest — destination queue, client session pool and outcome bookkeeping (see dest.h).
 *
 * Flow: dest_enqueue splits a delivery unit into jobs -> dest_pump hands jobs to idle sessions
 * or opens sessions (within the global cap) -> smtpc pulls with dest_next -> per-recipient
 * replies (dest_rcpt) and the transaction outcome (dest_txn_done) record each recipient's
 * outcome in the unit -> the last job of a unit hands it back to its home shard (dest_unit_done),
 * which owns the message and writes the queue.
 */
#include "engine/daemon/dest_int.h"
#include "engine/daemon/snap.h"
#include "engine/shape/shape.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#define DEST_DEAD_MAX_MS 10000u
/* Connection attempts in flight while no session to the destination has come up: a dead relay
 * costs a handful of refused connects, not one per queued message (Postfix calls this the
 * initial destination concurrency). */
#define DEST_SLOW_START 4u
/* Jobs waiting while the global connection cap is held by other shards are re-pumped this
 * often (a closing session on another shard does not wake this one). */
#define DEST_REPUMP_MS 50u
/* A destination whose session set-up or last transaction took longer than this (or with a
 * session still being set up after it) is slow: a tarpit, an overloaded host. The sessions of
 * slow destinations hold at most half of the global connection cap (rt->slow_conns; a slow
 * destination over that share closes a session instead of reusing it), so slow hosts cannot
 * starve the others of connection slots. */
#define DEST_SLOW_MS 2000u
/* While some destination found no free connection slot in the last DEST_RECLAIM_MS, each
 * shard closes its sessions idle for DEST_RECLAIM_GRACE_MS (instead of idle_timeout), so
 * thousands of destinations share max_connections without waiting seconds, while a busy
 * destination keeps its connection between messages. */
#define DEST_RECLAIM_MS	      200u
#define DEST_RECLAIM_GRACE_MS 250u

/* No delivery may start while the queue cannot record its outcome (disk full). */
static bool dest_paused(const struct dest *d)
{
	return commit_degraded(d->env.rt->commit);
}

/* ---- outcomes ---- */

static void dest_record_reply(struct dest *d, struct job *j, unsigned k, struct osess *o,
			      const struct smtpc_reply *r)
{
	int enh[3] = {r->enh_class, r->enh_subject, r->enh_detail};
	const struct config_backoff *b;

	if (!o->tls_known) { /* once per connection: formatting the certificate costs */
		o->tls_on = smtpc_tls_info(o->c, &o->tls);
		o->tls_known = true;
	}
	j->u->r[j->idx[k]].peer_dsn = smtpc_peer_dsn(o->c);
	b = dest_shape_reply(d, o, r);
	if (b && b->action == CONFIG_BACKOFF_BOUNCE && r->code < 500) /* the rule's verdict */
		dest_record_bounce(d, j->u, j->idx[k], &o->tg, o->tls_on ? &o->tls : NULL, r,
				   b->name);
	else
		dest_record_tls(d, j->u, j->idx[k], &o->tg, o->tls_on ? &o->tls : NULL, r->code,
				enh, r->text, r->text_len);
	j->decided[k] = JOB_DECIDED;
}

/* ---- units ---- */

/* The unit's last job ended: its outcomes go back to the home shard. */
static void dest_unit_done(struct dest *d, struct unit *u)
{
	struct rt *rt = d->env.rt;
	uint64_t skipped = ready_release(rt->ready, u->ready);

	if (skipped) /* the destination has room again for what the runner left on disk */
		runner_rewind(rt->runner, skipped);
	d->env.unit_done(d->env.unit_done_arg, u);
}

/* ---- jobs ---- */

/* The DSN parameters of j's recipients (RFC 3461: passed on to a hop that offers DSN). */
static void job_dsn(struct job *j, const struct msg *m, const char **orcpts, uint8_t *notify)
{
	bool any = false;

	for (unsigned k = 0; k < j->n; k++) {
		const struct queue_rcpt *r = &m->env->rcpts[j->u->r[j->idx[k]].idx];
		orcpts[k] = r->orcpt;
		notify[k] = r->notify;
		any |= r->notify || r->orcpt[0];
	}
	j->txn.envid = m->env->envid;
	j->txn.ret = m->env->ret;
	j->txn.notify = any ? notify : NULL;
	j->txn.orcpts = any ? (const char *const *)orcpts : NULL;
}

struct job *job_new(struct unit *u, const unsigned *idx, unsigned n)
{
	size_t sz = sizeof(struct job) + n * (2 * sizeof(char *) + sizeof(unsigned) + 2);
	struct job *j = util_xcalloc(1, sz);
	const struct msg *m = u->m;
	const char **orcpts;

	j->u = u;
	j->n = n;
	j->rcpts = (const char **)(j + 1);
	orcpts = j->rcpts + n;
	j->idx = (unsigned *)(orcpts + n);
	j->decided = (uint8_t *)(j->idx + n);
	for (unsigned k = 0; k < n; k++) {
		j->idx[k] = idx[k];
		j->rcpts[k] = m->env->rcpts[u->r[idx[k]].idx].addr;
	}
	job_dsn(j, m, orcpts, j->decided + n);
	j->txn.sender = m->env->sender;
	j->txn.rcpts = j->rcpts;
	j->txn.rcpt_count = n;
	j->txn.body = m->body;
	j->txn.body_len = m->body_len;
	j->txn.eightbit = (m->env->flags & QUEUE_ENV_8BITMIME) != 0;
	j->txn.smtputf8 = (m->env->flags & QUEUE_ENV_SMTPUTF8) != 0;
	j->txn.user = j;
	return j;
}

/* Link j at the tail (a job already counted in its unit: moved here from another dest). */
void job_link(struct dest *d, struct job *j)
{
	j->next = NULL;
	*d->tail = j;
	d->tail = &j->next;
	d->queued++;
}

void job_push(struct dest *d, struct job *j)
{
	job_link(d, j);
	j->u->jobs_out++;
}

/* Move j, just pushed at the tail, to the head of the queue. */
void dest_job_to_front(struct dest *d, struct job *j)
{
	struct job **pp = &d->head;

	if (d->head == j)
		return;
	while (*pp != j)
		pp = &(*pp)->next;
	*pp = NULL; /* j was the tail */
	d->tail = pp;
	j->next = d->head;
	d->head = j;
}

/* Unlink j (queued on d). */
void job_unlink(struct dest *d, struct job *j)
{
	struct job **pp = &d->head;

	while (*pp != j)
		pp = &(*pp)->next;
	*pp = j->next;
	if (d->tail == &j->next)
		d->tail = pp;
	d->queued--;
}

/* MX walk over: record the outcomes j's recipients got at the last host that answered them
 * (their provisional 4xx), or a local error if none did, and end j. */
/* Record txn recipient k of j with its provisional outcome (the 4xx a host gave it during the
 * MX walk) as its outcome for this round; at target t (NULL: none). */
static void dest_record_provisional(struct dest *d, struct job *j, unsigned k,
				    const struct dest_target *t)
{
	struct unit_rcpt *r = &j->u->r[j->idx[k]];
	int enh[3] = {r->enh[0], r->enh[1], r->enh[2]};
	char text[512];

	if (!r->decided) {
		dest_record_err(d, j->u, j->idx[k], "no MX host left to try");
		return;
	}
	snprintf(text, sizeof(text), "%s", r->reply); /* unit_set replaces r->reply */
	dest_record(d, j->u, j->idx[k], t, r->code, enh, text, strlen(text));
}

void dest_end_provisional(struct dest *d, struct job *j)
{
	for (unsigned k = 0; k < j->n; k++)
		dest_record_provisional(d, j, k, NULL);
	job_end(d, j);
}

/* Whether j can be sent now (its body is in RAM); starts reading it if it is not. */
static bool job_sendable(struct dest *d, struct job *j)
{
	if (j->u->body_state == UNIT_BODY_NONE)
		dest_body_fetch(d, j->u);
	j->txn.body = unit_body(j->u, &j->txn.body_len);
	return j->txn.body != NULL;
}

/* A connection to a remote host was tried for j's recipients: their attempt counts. */
static void job_mark_tried(struct job *j)
{
	for (unsigned k = 0; k < j->n; k++)
		j->u->r[j->idx[k]].tried = true;
}

/* Unlink the first job that may go to target t (hop <= t) and, with `send`, whose body is in
 * RAM; any job with t = UINT_MAX and !send. Bodies are read in queue order (at most one more
 * read than sessions at a time), so with `send` the walk gives up after that many jobs whose
 * body is not in RAM: a queue of thousands of loaded units is not walked for every pull. */
static struct job *job_take(struct dest *d, unsigned t, bool send)
{
	struct job **pp = &d->head, *j;
	unsigned waiting = 0, max_waiting = d->nsess + 2;

	while (*pp && ((*pp)->hop > t || (send && !job_sendable(d, *pp)))) {
		if (send && (*pp)->hop <= t && ++waiting >= max_waiting)
			return NULL;
		pp = &(*pp)->next;
	}
	if (!(j = *pp))
		return NULL;
	*pp = j->next;
	if (d->tail == &j->next)
		d->tail = pp;
	d->queued--;
	if (send)
		job_mark_tried(j);
	return j;
}

struct job *job_pop(struct dest *d)
{
	return job_take(d, UINT_MAX, false);
}

/* job_end: the job's transaction is over; the unit goes home with its last job. */
void job_end(struct dest *d, struct job *j)
{
	struct unit *u = j->u;

	free(j);
	dest_unit_put(d, u);
}

void dest_unit_put(struct dest *d, struct unit *u)
{
	if (--u->jobs_out == 0)
		dest_unit_done(d, u);
}

/* Defer every queued job with err (destination dead, DNS temporary failure): to the fallback
 * relay if there is one, else recorded and back home. */
void dest_defer_all(struct dest *d, const char *err)
{
	struct job *j;

	while ((j = job_pop(d))) {
		if (dest_no_host(d, j))
			continue;
		for (unsigned k = 0; k < j->n; k++)
			dest_record_err(d, j->u, j->idx[k], err);
		job_end(d, j);
	}
}

/* End every queued job with the same outcome for each recipient (a DNS verdict). */
void dest_end_all(struct dest *d, int code, const int enh[3], const char *text)
{
	struct job *j;

	while ((j = job_pop(d))) {
		for (unsigned k = 0; k < j->n; k++)
			dest_record(d, j->u, j->idx[k], NULL, code, enh, text, strlen(text));
		job_end(d, j);
	}
}

void dest_enqueue(struct dest *d, struct unit *u)
{
	unsigned max = d->lim.max_rcpts ? d->lim.max_rcpts : 1, n = 0;
	unsigned *idx = util_xmalloc((u->n ? u->n : 1) * sizeof(unsigned));

	d->last_used = loop_now_ms(d->env.loop);
	u->jobs_out = 1; /* guard: the unit cannot end while jobs are being created */
	for (unsigned k = 0; k < u->n && !d->shutting; k++) {
		idx[n++] = k;
		if (n == max) {
			job_push(d, job_new(u, idx, n));
			n = 0;
		}
	}
	if (n)
		job_push(d, job_new(u, idx, n));
	free(idx);
	if (--u->jobs_out == 0) { /* nothing to send (or shutting down): back home at once */
		dest_unit_done(d, u);
		return;
	}
	if (d->dead_until > loop_now_ms(d->env.loop))
		dest_defer_all(d, "destination not reachable (recent connection failures)");
	else
		dest_pump(d);
}

/* ---- client sessions ---- */

/* Mark d slow or not; rt->slow_conns counts the sessions of slow destinations. */
static void dest_set_slow(struct dest *d, bool slow)
{
	if (d->slow == slow)
		return;
	d->slow = slow;
	if (slow)
		atomic_fetch_add(&d->env.rt->slow_conns, d->nsess);
	else
		atomic_fetch_sub(&d->env.rt->slow_conns, d->nsess);
}

/* Whether another destination wanted a connection slot and found none just now. */
static bool dest_slots_wanted(const struct dest *d)
{
	return loop_now_ms(d->env.loop) - atomic_load(&d->env.rt->slot_denied_ms) < DEST_RECLAIM_MS;
}

/* A slow destination over its share gives a connection back instead of reusing it. */
static bool dest_shed(const struct dest *d)
{
	return d->slow &&
	       atomic_load(&d->env.rt->slow_conns) > (d->env.rt->cfg.max_connections + 1) / 2;
}

/* The next job o may send, if the message rate of o's source lets one through now (else the
 * job stays first in the queue and d is pumped again when a token comes). */
static struct job *dest_take_paced(struct dest *d, struct osess *o)
{
	struct job *j = job_take(d, dest_sess_t(d, o), true);
	uint64_t wait = 0;

	if (!j || dest_shape_send(d, o, &wait))
		return j;
	job_link(d, j);
	dest_job_to_front(d, j);
	d->paced_until = loop_now_ms(d->env.loop) + wait;
	dest_arm_repump_in(d, wait);
	return NULL;
}

static struct smtpc_txn *dest_next(struct smtpc *c, void *user)
{
	struct osess *o = user;
	struct dest *d = o->d;
	struct job *j;
	bool first = !o->ready;

	if (first) {
		o->ready = true;
		d->nconnecting--;
		d->nready++;
		dest_set_slow(d, loop_now_ms(d->env.loop) - o->opened_ms > DEST_SLOW_MS);
	}
	/* a backoff rule suspended its source: it sends nothing more and gives its slot back */
	if (d->shutting || dest_shed(d) || dest_shape_stop(d, o)) {
		smtpc_quit(c);
		return NULL;
	}
	/* the queue cannot record an outcome now: start nothing (dest_pump re-polls) */
	j = dest_paused(d) ? NULL : dest_take_paced(d, o);
	o->idle = j == NULL;
	o->idle_since = loop_now_ms(d->env.loop);
	o->txn_start_ms = loop_now_ms(d->env.loop);
	if (first && d->queued)
		dest_pump(d); /* the destination is up: leave slow start for what is queued */
	return j ? &j->txn : NULL;
}

/* "452 4.5.3 Too many recipients" (RFC 5321 4.5.3.1.10): the server takes fewer recipients
 * per transaction than we sent. Not a verdict on the recipient: it is sent again at once. */
static bool dest_too_many(const struct smtpc_reply *r)
{
	if (r->code != 452)
		return false;
	if (r->enh_class)
		return r->enh_class == 4 && r->enh_subject == 5 && r->enh_detail == 3;
	return memmem(r->text, r->text_len, "ecipients", 9) != NULL;
}

/* MX walk: a 4xx for a recipient is not its outcome while another host (or, after the last
 * one, the fallback relay) may take it. */
static bool dest_may_fall(const struct dest *d, const struct osess *o)
{
	return d->kind == DEST_MX && !d->cfg->first_mx_only &&
	       (dest_next_host(d, o) >= 0 || (d->fb && !d->fb->shutting));
}

static void dest_rcpt(struct smtpc *c, struct smtpc_txn *t, unsigned k, const struct smtpc_reply *r,
		      void *user)
{
	struct osess *o = user;
	struct job *j = t->user;
	int enh[3] = {r->enh_class, r->enh_subject, r->enh_detail};

	(void)c;
	if (dest_too_many(r)) {
		j->decided[k] = JOB_TOO_MANY;
	} else if (r->code >= 400 && r->code < 500 && dest_may_fall(o->d, o)) {
		/* kept as its provisional outcome, logged only if no later host decides */
		unit_set(j->u, j->idx[k], QUEUE_RCPT_PENDING, r->code, r->text, r->text_len);
		unit_set_enh(j->u, j->idx[k], enh);
		j->decided[k] = JOB_FALL;
	} else if (r->code < 200 || r->code >= 300) {
		dest_record_reply(o->d, j, k, o, r);
	}
}

/* After a transaction that made progress, the recipients it refused with "too many recipients"
 * go at once, in a new transaction at the head of the queue: the session that just finished
 * pulls it next, on the same connection. Returns true if such a job was queued. */
static bool dest_resend_too_many(struct dest *d, struct job *j, const struct smtpc_result *res,
				 unsigned t)
{
	unsigned n = 0, *idx;
	struct job *nj;

	if (res->err || res->maybe_delivered || res->rcpt_accepted == 0 || d->shutting)
		return false; /* (shutting: no session would take the job; deferred instead) */
	idx = util_xmalloc(j->n * sizeof(*idx));
	for (unsigned k = 0; k < j->n; k++)
		if (j->decided[k] == JOB_TOO_MANY)
			idx[n++] = j->idx[k];
	if (n) {
		nj = job_new(j->u, idx, n);
		nj->hop = t; /* the same host took the others */
		job_push(d, nj);
		dest_job_to_front(d, nj);
	}
	free(idx);
	return n > 0;
}

static void dest_txn_done(struct smtpc *c, struct smtpc_txn *t, const struct smtpc_result *res,
			  void *user)
{
	struct osess *o = user;
	struct dest *d = o->d;
	struct job *j = t->user;
	const char *err = res->err;
	static const char too_many[] = "too many recipients in one transaction";
	int enh453[3] = {4, 5, 3};
	bool resent, fell;

	(void)c;
	dest_set_slow(d, loop_now_ms(d->env.loop) - o->txn_start_ms > DEST_SLOW_MS);
	if (!err && res->maybe_delivered)
		err = "connection lost after the final dot (may have been delivered)";
	resent = dest_resend_too_many(d, j, res, dest_sess_t(d, o));
	/* a lost connection or a 4xx for the whole transaction moves on to the next host too */
	fell = !res->maybe_delivered && dest_may_fall(d, o) && dest_fall_through(d, j, o, res);
	for (unsigned k = 0; k < j->n; k++) {
		if (j->decided[k] == JOB_DECIDED || (resent && j->decided[k] == JOB_TOO_MANY) ||
		    (fell && j->decided[k] == JOB_FALL))
			continue;
		if (j->decided[k] == JOB_FALL) /* not moved on: its own 4xx, never the DATA reply */
			dest_record_provisional(d, j, k, &o->tg);
		else if (err)
			dest_record_err(d, j->u, j->idx[k], err);
		else if (j->decided[k] == JOB_TOO_MANY) /* no progress: retried later */
			dest_record(d, j->u, j->idx[k], &o->tg, 452, enh453, too_many,
				    sizeof(too_many) - 1);
		else
			dest_record_reply(d, j, k, o, &res->reply);
	}
	job_end(d, j);
}

/* No session could be set up to any target: log once, defer what is queued (or send it to the
 * fallback relay), and defer new mail without trying for min(retry_delay, 10 s). */
static void dest_mark_dead(struct dest *d, uint64_t sess_id, const char *why)
{
	uint64_t back = d->cfg->retry_delay_ms;
	char sid[24];

	snprintf(sid, sizeof(sid), "session-%llx", (unsigned long long)sess_id);
	if (d->kind == DEST_RELAY)
		dlog_line(d->env.log, sid, "event=relay-unreachable relay=%s %s", d->name, why);
	else
		dlog_line(d->env.log, sid, "event=destination-unreachable dest=%s %s", d->name,
			  why);
	d->dead_until =
	    loop_now_ms(d->env.loop) + (back < DEST_DEAD_MAX_MS ? back : DEST_DEAD_MAX_MS);
	for (struct job *j = d->head; j; j = j->next) /* their connections were tried */
		job_mark_tried(j);
	dest_defer_all(d, why);
}

static void dest_unlink_session(struct dest *d, struct osess *o)
{
	struct osess **pp;

	for (pp = &d->sessions; *pp != o; pp = &(*pp)->next)
		;
	*pp = o->next;
	d->nsess--;
	if (o->ready)
		d->nready--;
	else
		d->nconnecting--;
	atomic_fetch_sub(&d->env.rt->out_conns, 1);
	if (d->slow)
		atomic_fetch_sub(&d->env.rt->slow_conns, 1);
}

static void dest_closed(struct smtpc *c, const struct smtpc_close_info *info, void *user)
{
	struct osess *o = user;
	struct dest *d = o->d;
	char why[600];

	dest_unlink_session(d, o);
	if (info->reply.code >= 400 && !d->shutting) /* a greeting or a reply that ended it */
		dest_shape_reply(d, o, &info->reply);
	dest_shape_closed(o);
	snap_unref(o->snap);
	if (info->tls_failed && d->lim.tls == CONFIG_TLS_OPPORTUNISTIC && !d->shutting) {
		dest_tls_fallback(d, o, smtpc_id(c), info->err);
		free(o);
		dest_pump(d); /* reconnects to the same host in plaintext */
		return;
	}
	if (info->auth_failed && !d->shutting) /* configuration, not the host: deferred */
		dest_auth_failed(d, o, smtpc_id(c), info);
	else if (!info->was_ready && !d->shutting)
		dest_target_down(d, o); /* refused, timed out, or a 4xx/5xx greeting */
	if (!info->was_ready && !info->auth_failed && !d->shutting && d->nready == 0 &&
	    d->nsess == 0 && dest_pick_target(d, 0) < 0) {
		/* every target has failed and nothing is up: the destination is dead a while */
		snprintf(why, sizeof(why), "cannot talk to %s: %s (in state %s, reply %d)",
			 d->ntargets > 1 ? "any MX host" : o->tg.ip,
			 info->err ? info->err : "rejected", smtpc_state_name(info->state),
			 info->reply.code);
		dest_mark_dead(d, smtpc_id(c), why);
	}
	free(o);
	if (!d->shutting)
		dest_pump(d);
}

/* Pump d again in ms (a shorter wait already armed stands). */
void dest_arm_repump_in(struct dest *d, uint64_t ms)
{
	if (d->timer_armed || d->shutting)
		return;
	d->timer_armed = true;
	loop_timer(d->env.loop, &d->timer, ms);
}

static void dest_arm_repump(struct dest *d)
{
	dest_arm_repump_in(d, DEST_REPUMP_MS);
}

/* A session still being set up after DEST_SLOW_MS makes its destination slow. */
static void dest_check_setups(struct dest *d)
{
	uint64_t now = loop_now_ms(d->env.loop);

	for (struct osess *o = d->sessions; o && !d->slow; o = o->next)
		if (!o->ready && now - o->opened_ms > DEST_SLOW_MS)
			dest_set_slow(d, true);
}

/* Connection attempts in flight while none is up: DEST_SLOW_START, or 1 once half the global
 * cap is in use (thousands of new destinations must not each take several slots before any
 * of them has shown it answers). */
static unsigned dest_slow_start(const struct dest *d)
{
	return atomic_load(&d->env.rt->out_conns) * 2 >= d->env.rt->cfg.max_connections
		   ? 1
		   : DEST_SLOW_START;
}

/* Connection attempts in flight allowed now: dest_slow_start while none is up, then as many as
 * are up (at least DEST_SLOW_START), so the pool at most doubles per set-up time. Without this
 * bound a backlog meeting slow set-ups (TLS handshakes, a busy peer) opened a session per
 * queued job at once: a handshake storm that made every set-up slower still. */
static unsigned dest_ramp(const struct dest *d)
{
	if (d->nready == 0)
		return dest_slow_start(d);
	return d->nready > DEST_SLOW_START ? d->nready : DEST_SLOW_START;
}

/* Hand queued jobs to idle sessions that may take them. */
static void dest_feed_idle(struct dest *d)
{
	for (struct osess *o = d->sessions; o && d->head; o = o->next) {
		struct job *j;
		if (o->idle && dest_shape_stop(d, o)) {
			o->idle = false;
			smtpc_quit(o->c);
			continue;
		}
		if (!o->idle || !(j = dest_take_paced(d, o)))
			continue;
		o->idle = false;
		o->txn_start_ms = loop_now_ms(d->env.loop);
		if (smtpc_send(o->c, &j->txn) != 0) { /* not usable after all (closing) */
			job_link(d, j);
			dest_job_to_front(d, j);
		}
	}
}

/* MX walk: a job that must go to a later host (hop > 0) and has no session there gets one;
 * if no host is left it ends (fallback relay, or its provisional outcomes are recorded). */
static void dest_feed_hops(struct dest *d)
{
	for (struct job *j = d->head, *next; j; j = next) {
		bool covered = false;
		next = j->next;
		if (j->hop == 0)
			continue;
		for (struct osess *o = d->sessions; o && !covered; o = o->next)
			covered = dest_sess_t(d, o) >= j->hop;
		if (covered || dest_open_session(d, j->hop) != -ENOENT)
			continue;
		job_unlink(d, j);
		if (!dest_no_host(d, j))
			dest_end_provisional(d, j);
	}
}

/* Give queued jobs to idle sessions, then open sessions for what is left (one per job not
 * yet covered by a connecting session), within the connection caps. While the queue is not
 * writable nothing starts: the jobs wait in RAM and the timer polls. */
void dest_pump(struct dest *d)
{
	if (dest_paused(d)) {
		if (d->queued)
			dest_arm_repump(d);
		return;
	}
	if (d->bo_active)
		dest_shape_poll(d);
	/* AUTH failed a moment ago; every source suspended by a backoff rule; a lookup is
	 * running (it pumps when answered) */
	if (dest_auth_held(d) || dest_shape_held(d) || !dest_mx_ready(d))
		return;
	dest_check_setups(d);
	dest_feed_idle(d);
	dest_feed_hops(d);
	/* while the message rate holds jobs back, the sessions open wait for it: no more */
	while (d->queued > d->nconnecting && d->nconnecting < dest_ramp(d) &&
	       d->paced_until <= loop_now_ms(d->env.loop) && dest_open_session(d, 0) == 0)
		;
	if (d->queued && d->nsess == 0 && dest_pick_target(d, 0) < 0 && d->nconnecting == 0)
		dest_mark_dead(d, 0, "no MX host left to try (all failed recently)");
	else if (d->queued && d->nsess == 0)
		dest_arm_repump(d);
}

static void dest_timer_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct dest *d = op->owner;

	(void)res;
	(void)flags;
	d->timer_armed = false;
	if (!d->shutting)
		dest_pump(d);
}

void dest_shutdown(struct dest *d, bool abort)
{
	struct job *j;

	d->shutting = true;
	while ((j = job_pop(d)))
		job_end(d, j);
	for (struct osess *o = d->sessions, *next; o; o = next) {
		next = o->next; /* abort/quit never free synchronously: closed() runs later */
		if (abort)
			smtpc_abort(o->c);
		else
			smtpc_quit(o->c);
	}
}

void dest_tick(struct dest *d)
{
	if (d->bo_active) /* log a backoff's end when it comes, mail or not */
		dest_shape_poll(d);
	dest_reclaim_idle(d);
}

void dest_reclaim_idle(struct dest *d)
{
	uint64_t now = loop_now_ms(d->env.loop);

	if (!dest_slots_wanted(d) || d->queued)
		return;
	for (struct osess *o = d->sessions; o; o = o->next)
		if (o->idle && o->ready && now - o->idle_since >= DEST_RECLAIM_GRACE_MS) {
			o->idle = false;
			smtpc_quit(o->c);
		}
}

unsigned dest_busy(const struct dest *d)
{
	return d->nsess + d->queued + d->timer_armed + d->resolving + d->fetching;
}

/* The part of a new destination common to both kinds. */
struct dest *dest_alloc(const struct dest_env *env, const char *name)
{
	struct dest *d = util_xcalloc(1, sizeof(*d));

	d->env = *env;
	d->cfg = &(*env->snap)->cfg; /* until dest_reconf */
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->tail = &d->head;
	d->ops.next = dest_next;
	d->ops.rcpt = dest_rcpt;
	d->ops.txn_done = dest_txn_done;
	d->ops.closed = dest_closed;
	d->timer.cb = dest_timer_cb;
	d->timer.owner = d;
	return d;
}

void dest_free(struct dest *d)
{
	if (!d)
		return;
	BUG_ON(d->nsess != 0 || d->resolving);
	dest_shutdown(d, true);
	dest_shape_free(d);
	snap_unref(d->snap);
	free(d->targets);
	free(d->hosts);
	free(d->acc);
	free(d);
}
