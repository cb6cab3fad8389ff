/* home — message ownership on the home shard (see home.h).
 *
 * Flow: home_start -> one unit per (group, destination) -> send to the owner shard (directly
 * when it is this shard) -> the destination fills in outcomes -> home_unit_back applies them ->
 * the last unit ends the round: msg_plan decides the write, commit_post writes it,
 * home_commit_done frees the message (or keeps it for a retry of the write).
 */
#include "engine/daemon/home.h"
#include "engine/daemon/event.h"
#include "engine/daemon/notice.h"
#include "engine/daemon/ready.h"
#include "engine/daemon/snap.h"
#include "engine/daemon/susp.h"
#include "engine/route/route.h"

#include <errno.h>
#include <string.h>

/* A queue write that failed is retried this often, with the message kept in RAM (and resident,
 * so the runner leaves it alone): freeing it would re-send to recipients already delivered. */
#define HOME_REWRITE_MS 1000u

struct home {
	struct home_env env;
	const struct config *cfg;
	unsigned in_round; /* messages with units out */
	unsigned commits;
	struct msg *failed; /* messages whose final write failed, to write again */
	unsigned nfailed;
	bool rewrite_armed;
	bool shutting;
	bool aborted;
	struct loop_op rewrite;
	struct msg_sched sched;	      /* the retry schedule ([delivery] keys) */
	struct home_pending *pending; /* operator actions for messages in a round */
	uint64_t rng;		      /* its jitter */
};

/* ---- leaving RAM ---- */

static void home_leave(struct home *h, struct msg *m, uint64_t rewind_to)
{
	if (m->ctl) /* an operator's action: done once written (or given up) */
		m->ctl->done(m->ctl);
	resident_del(h->env.rt->res, m);
	if (rewind_to)
		runner_rewind(h->env.rt->runner, rewind_to);
	msg_free(m);
}

/* Shutdown abort: an outcome that could not be written is given up (the queue still holds the
 * message as it was before this round: retried after the restart, a duplicate for what was
 * delivered, never a loss). */
static void home_give_up(struct home *h, struct msg *m)
{
	dlog_line(h->env.log, m->idstr,
		  "event=queue-write-abandoned outcome not recorded at shutdown: retried after "
		  "the restart");
	home_leave(h, m, 0);
}

static void home_keep_failed(struct home *h, struct msg *m)
{
	if (!m->unrecorded)
		dlog_line(h->env.log, m->idstr,
			  "event=queue-write-failed error=%d outcome kept in RAM, written again "
			  "when the queue is writable",
			  m->req.result);
	m->unrecorded = true;
	m->retry_next = h->failed;
	h->failed = m;
	h->nfailed++;
	if (!h->rewrite_armed) {
		h->rewrite_armed = true;
		loop_timer(h->env.loop, &h->rewrite, HOME_REWRITE_MS);
	}
}

/* The earliest due time that has already come (0 if none): a group the runner passed while the
 * message was in RAM (not in this round, or back undecided) must be looked at again. */
static uint64_t home_overdue(const struct msg *m, uint64_t now)
{
	uint64_t min = 0;

	for (uint32_t g = 0; g < m->env->ndest; g++) {
		uint64_t d = m->env->dests[g].due;
		if (d && d <= now && (min == 0 || d < min))
			min = d;
	}
	return min;
}

static void home_commit_done(struct loop *l, struct loop_msg *lm)
{
	struct msg *m = container_of(lm, struct msg, req.done);
	struct home *h = m->cookie;

	(void)l;
	h->commits--;
	if (m->req.result < 0 && (h->aborted || m->req.result == -ESHUTDOWN)) {
		home_give_up(h, m);
		return;
	}
	if (m->req.result < 0) {
		home_keep_failed(h, m);
		return;
	}
	if (m->unrecorded)
		dlog_line(h->env.log, m->idstr, "event=queue-write-recovered outcome recorded");
	/* groups that came due while the message was in RAM were passed by the runner */
	home_leave(h, m, m->delete ? 0 : home_overdue(m, util_wall_ms()));
}

static void home_rewrite_cb(struct loop_op *op, int res, uint32_t flags)
{
	struct home *h = op->owner;
	struct msg *m;

	(void)res;
	(void)flags;
	h->rewrite_armed = false;
	if (h->aborted)
		return; /* home_shutdown gave them up */
	if (commit_degraded(h->env.rt->commit)) {
		h->rewrite_armed = true; /* would fail at once: wait for the queue */
		loop_timer(h->env.loop, &h->rewrite, HOME_REWRITE_MS);
		return;
	}
	while ((m = h->failed)) {
		h->failed = m->retry_next;
		h->nfailed--;
		h->commits++;
		commit_post(h->env.rt->commit, &m->req);
	}
}

/* ---- the end of a round ---- */

static void home_pending_apply(struct home *h, struct msg *m, uint64_t now);

/* The earliest due of the groups out in this round (0 if none). */
static uint64_t home_out_due(const struct msg *m)
{
	uint64_t min = 0;

	for (uint32_t g = 0; g < m->env->ndest; g++) {
		uint64_t d = m->env->dests[g].due;
		if (m->groups[g].out && d && (min == 0 || d < min))
			min = d;
	}
	return min;
}

/* A recipient failed by its lifetime or attempt limit: its delivery line. */
static void home_expired(void *arg, struct msg *m, unsigned i, const char *reason)
{
	struct home *h = arg;
	const struct queue_rcpt *r = &m->env->rcpts[i];
	struct event ev = {
	    .id = m->idstr,
	    .state = QUEUE_RCPT_FAILED,
	    .rcpt = r->addr,
	    .dest = m->env->dests[r->dest].name,
	    .mx = r->last_mta[0] ? r->last_mta : NULL,
	    .code = r->last_code,
	    .enh = {r->enh[0], r->enh[1], r->enh[2]},
	    .attempts = r->attempts,
	    .delay_s = (double)(util_wall_ms() * 1000 - m->accepted_us) / 1e6,
	    .reply = r->last_reply,
	    .reply_len = strlen(r->last_reply),
	    .reason = reason,
	};

	event_log(h->env.log, &ev);
}

/* ---- operator actions ---- */

/* An action waiting for a message that was in RAM when it came. */
struct home_pending {
	struct home_pending *next;
	struct queue_id id;
	enum home_act act;
};

/* Apply act to m now: pending recipients fail (bounce: with a notice and a log line each;
 * delete: silently) or every group with an entry is due now (retry). */
static void home_act(struct home *h, struct msg *m, enum home_act act, uint64_t now)
{
	for (uint32_t i = 0; act != HOME_ACT_RETRY && i < m->env->nrcpt; i++) {
		struct queue_rcpt *r = &m->env->rcpts[i];
		if (r->state != QUEUE_RCPT_PENDING)
			continue;
		r->state = QUEUE_RCPT_FAILED;
		r->enh[0] = 5, r->enh[1] = 0, r->enh[2] = 0;
		r->last_ms = now;
		m->fresh[i] = act == HOME_ACT_BOUNCE ? MSG_FRESH_FAILED : 0;
		if (act == HOME_ACT_BOUNCE) {
			home_expired(h, m, i, "bounced by the operator");
			msg_local_reason(m, i, "bounced by the operator");
		}
	}
	for (uint32_t g = 0; act == HOME_ACT_RETRY && g < m->env->ndest; g++)
		if (m->env->dests[g].due > now)
			m->env->dests[g].due = now;
	if (act == HOME_ACT_DELETE)
		dlog_line(h->env.log, m->idstr, "event=operator-delete recipients left unsent");
	m->dirty = true;
}

/* At a round's end: an action that came while m was in RAM. */
static void home_pending_apply(struct home *h, struct msg *m, uint64_t now)
{
	for (struct home_pending **pp = &h->pending, *p; (p = *pp);) {
		if (memcmp(&p->id, &m->id, sizeof(m->id)) != 0) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		if (p->act != HOME_ACT_RETRY)
			home_act(h, m, p->act, now);
		free(p);
	}
}

/* The commit fill of a round's end: the message's write, and the notices it made due. */
static void home_fill_final(struct commit_req *r, struct queue_batch *b)
{
	struct msg *m = container_of(r, struct msg, req);
	struct home *h = m->cookie;

	msg_fill_final(r, b);
	if (notice_due(m))
		notice_fill(h->env.rt->notice, m, b);
}

/* Expiry and the delay warning, before the plan; a notice that may not be sent is logged. */
static void home_decide(struct home *h, struct msg *m, uint64_t now)
{
	msg_expire(m, now, &h->sched, home_expired, h);
	msg_warn(m, now, h->cfg->warn_after_ms);
	if (!notice_marked(m))
		return;
	if (m->env->sender[0] == '\0' || (m->env->flags & QUEUE_ENV_BOUNCE)) {
		dlog_line(h->env.log, m->idstr,
			  "event=notice-suppressed from=<%s> a notice about a notice or a message "
			  "from the null sender is never sent",
			  m->env->sender);
		memset(m->fresh, 0, m->env->nrcpt);
	}
}

/* Post the write plan decided for m (the message's final write of a round or an action). */
static void home_commit(struct home *h, struct msg *m, enum msg_plan plan)
{
	struct commit_req *r = &m->req;

	memset(r, 0, sizeof(*r));
	r->id = m->id;
	r->fill = home_fill_final;
	r->written = msg_written_cb;
	r->bytes =
	    m->meta_len + 64u * m->env->ndest + (notice_due(m) ? m->env->body_len + 8192 : 0);
	r->sync = plan == MSG_PLAN_UPDATE; /* a lost delete only means a duplicate */
	r->loop = h->env.loop;
	r->done.fn = home_commit_done;
	m->cookie = h;
	h->commits++;
	commit_post(h->env.rt->commit, r);
}

static void home_round_end(struct home *h, struct msg *m)
{
	uint64_t now = util_wall_ms(), out_due = home_out_due(m);
	struct msg_sched now_sched = h->sched;
	enum msg_plan plan;

	if (h->shutting) /* undecided at shutdown: due again at once after the restart */
		now_sched.retry_ms = now_sched.max_ms = 0, now_sched.rng = NULL;
	home_pending_apply(h, m, now);
	home_decide(h, m, now);
	plan = msg_plan(m, now, &now_sched);
	h->in_round--;
	if (plan == MSG_PLAN_NONE) { /* back undecided: the runner passed those entries */
		home_leave(h, m, out_due);
		return;
	}
	home_commit(h, m, plan);
}

void home_unit_back(struct home *h, struct unit *u)
{
	struct msg *m = u->m;

	uint64_t now = util_wall_ms();

	for (unsigned k = 0; k < u->n; k++) {
		const struct unit_rcpt *r = &u->r[k];
		struct msg_outcome o = {r->state, r->code,     {r->enh[0], r->enh[1], r->enh[2]},
					r->reply, 0,	       r->mta,
					r->tried, r->peer_dsn, now};
		if (!r->decided)
			continue;
		o.reply_len = strlen(r->reply);
		msg_record(m, r->idx, &o);
	}
	if (u->retry_at > m->groups[u->group].retry_at)
		m->groups[u->group].retry_at = u->retry_at;
	unit_free(u);
	if (--m->units_out == 0)
		home_round_end(h, m);
}

void home_unit_post(struct loop *l, struct loop_msg *lm)
{
	struct unit *u = container_of(lm, struct unit, lm);

	(void)l;
	home_unit_back(u->home, u);
}

void home_ctl(struct home *h, struct home_ctl *c)
{
	struct msg *m = c->m;
	uint64_t now = util_wall_ms();
	enum msg_plan plan;

	c->m = NULL;
	c->result = 0;
	if (!m && c->act == HOME_ACT_RETRY) { /* in RAM: being delivered already */
		c->done(c);
		return;
	}
	if (!m) { /* in RAM, being delivered: at its round's end */
		struct home_pending *p = util_xcalloc(1, sizeof(*p));
		p->id = c->id;
		p->act = c->act;
		p->next = h->pending;
		h->pending = p;
		c->done(c);
		return;
	}
	m->shard = h->env.shard;
	m->ctl = c;
	home_act(h, m, c->act, now);
	home_decide(h, m, now);
	plan = msg_plan(m, now, &h->sched);
	if (plan == MSG_PLAN_NONE) {
		home_leave(h, m, 0);
		return;
	}
	home_commit(h, m, plan);
}

/* ---- the start of a round ---- */

/* Give back a unit count reserved for a unit that is not sent after all. */
static void home_unreserve(struct home *h, struct ready_dest *rd)
{
	uint64_t skipped = rd ? ready_release(h->env.rt->ready, rd) : 0;

	if (skipped)
		runner_rewind(h->env.rt->runner, skipped);
}

/* Send one unit: group g's recipients idx[0..n) to destination `name`; rd is the count
 * already reserved for it at that destination, or NULL (counted here). */
static void home_send(struct home *h, struct msg *m, unsigned g, const char *name,
		      const unsigned *idx, unsigned n, struct ready_dest *rd)
{
	struct rt *rt = h->env.rt;
	struct unit *u = unit_new(m, (uint16_t)g, name, idx, n);

	u->home = h;
	u->home_loop = h->env.loop;
	/* the default relay has an instance on every shard; any other destination one owner */
	u->owner =
	    strcmp(u->dest, rt->relay_name) == 0 ? h->env.shard : route_owner(u->dest, rt->nshards);
	if (!rd) {
		rd = ready_get(rt->ready, u->dest);
		ready_add(rd);
	}
	u->ready = rd;
	m->units_out++;
	h->env.send(h->env.send_arg, u);
}

/* The group's pending recipients by destination as routed now, from the group's egress pool
 * (one unit unless the routes changed since the message was accepted; rd, reserved for the
 * group's destination, goes with that one unit, and is given back if there are several). */
static void home_send_split(struct home *h, struct msg *m, unsigned g, unsigned *idx, unsigned n,
			    struct ready_dest *rd)
{
	const char **addrs = util_xmalloc(n * sizeof(*addrs));
	uint16_t *grp = util_xmalloc(n * sizeof(*grp));
	unsigned *first = util_xmalloc(n * sizeof(*first)), *sub = util_xmalloc(n * sizeof(*sub));
	char pool[64], *names = NULL;
	struct route_ctx ctx;
	size_t plen;
	int ng;

	route_base(m->env->dests[g].name, &plen);
	snprintf(pool, sizeof(pool), "%.*s", (int)plen, m->env->dests[g].name);
	snap_route_ctx(*h->env.snap, pool, &ctx);
	for (unsigned k = 0; k < n; k++)
		addrs[k] = m->env->rcpts[idx[k]].addr;
	ng = route_split(&ctx, addrs, n, grp, first, &names);
	if (ng != 1) {
		home_unreserve(h, rd);
		rd = NULL;
	}
	for (int s = 0; s < ng; s++) {
		unsigned cnt = 0;
		for (unsigned k = 0; k < n; k++)
			if (grp[k] == s)
				sub[cnt++] = idx[k];
		home_send(h, m, g, names + (size_t)s * ROUTE_NAME_MAX, sub, cnt, rd);
	}
	free(names);
	free(addrs);
	free(grp);
	free(first);
	free(sub);
}

/* Start group g: rd is the unit count the runner reserved for it (or NULL). Fresh mail for a
 * destination that already holds its share waits on disk instead: the runner loads it when
 * the destination drains (ready.h), so a tarpit cannot fill RAM with injected mail. A group
 * without pending recipients sends nothing: the round's end drops its sched entry. */
static void home_start_group(struct home *h, struct msg *m, unsigned g, unsigned *idx,
			     struct ready_dest *rd, bool fresh)
{
	struct rt *rt = h->env.rt;
	unsigned n = msg_group_rcpts(m, g, idx);

	if (fresh && n && susp_has(rt->susp, m->env->dests[g].name))
		return; /* suspended: waits on disk (resume rewinds the runner) */
	if (fresh && n) {
		rd = ready_get(rt->ready, m->env->dests[g].name);
		if (!ready_admit(rt->ready, rd, m->env->dests[g].due, true))
			return;
	}
	m->groups[g].out = true;
	if (n == 0)
		home_unreserve(h, rd);
	else
		home_send_split(h, m, g, idx, n, rd);
}

/* Whether group g starts in a round for `group` (see home_start). */
static bool home_due(const struct msg *m, unsigned g, unsigned group, uint64_t now)
{
	uint64_t due = m->env->dests[g].due;

	if (group == HOME_ALL_GROUPS)
		return due != 0;
	return g == group || (due != 0 && due <= now);
}

void home_start(struct home *h, struct msg *m, unsigned group)
{
	uint64_t now = util_wall_ms();
	struct ready_dest *reserved = m->load_ready;
	unsigned *idx;

	m->load_ready = NULL;
	if (m->units_out) {
		home_unreserve(h, reserved);
		return;
	}
	idx = util_xmalloc((m->env->nrcpt ? m->env->nrcpt : 1) * sizeof(*idx));
	m->units_out = 1; /* guard: the round cannot end while units are being sent */
	h->in_round++;
	for (uint32_t g = 0; g < m->env->ndest; g++)
		if (home_due(m, g, group, now))
			home_start_group(h, m, g, idx, g == group ? reserved : NULL,
					 group == HOME_ALL_GROUPS);
	free(idx);
	if (--m->units_out == 0)
		home_round_end(h, m);
}

/* ---- life cycle ---- */

void home_shutdown(struct home *h, bool abort)
{
	struct msg *m;

	h->shutting = true;
	if (!abort)
		return;
	h->aborted = true;
	while ((m = h->failed)) {
		h->failed = m->retry_next;
		h->nfailed--;
		home_give_up(h, m);
	}
	if (h->rewrite_armed)
		loop_cancel(h->env.loop, &h->rewrite);
}

unsigned home_busy(const struct home *h)
{
	return h->in_round + h->commits + h->nfailed + h->rewrite_armed;
}

/* msg_sched.of_dest: a destination's schedule from its route in the shard's snapshot. */
static void home_sched_of(void *arg, const char *dest, struct msg_sched *out)
{
	const struct home *h = arg;

	snap_sched(*h->env.snap, dest, out);
}

struct home *home_new(const struct home_env *env)
{
	struct home *h = util_xcalloc(1, sizeof(*h));

	h->env = *env;
	h->cfg = &env->rt->cfg;
	h->rng = (util_wall_ms() << 8 | env->shard) * 0x9e3779b97f4a7c15ull | 1;
	h->sched = (struct msg_sched){.retry_ms = h->cfg->retry_delay_ms,
				      .backoff = h->cfg->retry_backoff,
				      .max_ms = h->cfg->retry_max_delay_ms,
				      .lifetime_ms = h->cfg->lifetime_ms,
				      .max_attempts = h->cfg->max_attempts,
				      .rng = &h->rng,
				      .of_dest = home_sched_of,
				      .of_dest_arg = h};
	h->rewrite.cb = home_rewrite_cb;
	h->rewrite.owner = h;
	return h;
}

void home_free(struct home *h)
{
	for (struct home_pending *p = h->pending, *next; p; p = next) {
		next = p->next;
		free(p);
	}
	free(h);
}
