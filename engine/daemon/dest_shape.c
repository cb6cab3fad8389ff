/* dest_shape — a destination's throttles and adaptive backoff: its limits (its route's values
 * with its [shaping] rule over them), its egress sources (a pool's addresses, or the default
 * source) with their shared state in rt->shape (engine/shape), the gates a session passes
 * before it connects and before each message, and what remote replies do through the
 * [backoff] rules.
 *
 * Why shared state: one receiver is reached from every shard (relay mode keeps a relay
 * destination per shard; a site's domains may be accepted anywhere), so connection counts,
 * rates and backoff live in one table keyed by "source|destination", exact across threads
 * (GCRA on atomics). Per (source, destination): a block of one address at a receiver does not
 * stop the others of its pool.
 */
#include "engine/daemon/dest_int.h"
#include "engine/daemon/event.h"
#include "engine/daemon/snap.h"
#include "engine/shape/shape.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static uint64_t dest_now_ns(const struct dest *d)
{
	return loop_now_ms(d->env.loop) * 1000000ull;
}

/* The limits: the route's [delivery] values, then the [shaping] rule's keys over them. A relay
 * (the default relay, a route's relay) may use up to max_connections by default: it is one
 * host that takes everything; other destinations max_connections_per_destination. */
static void dest_limits(struct dest *d, const struct config_shaping *sh)
{
	const struct config *c = d->cfg;
	struct dest_limits *l = &d->lim;

	*l = (struct dest_limits){
	    .max_conns =
		d->kind == DEST_RELAY ? c->max_connections : c->max_connections_per_destination,
	    .max_msgs = c->max_messages_per_connection,
	    .max_rcpts = c->max_recipients_per_transaction,
	    .msg_rate = c->max_message_rate,
	    .conn_rate = c->max_connection_rate,
	    .connect_timeout_ms = c->connect_timeout_ms,
	    .tls = c->tls,
	};
	if (!sh)
		return;
	l->max_conns = sh->given & CONFIG_SHAPE_CONNS ? sh->max_connections : l->max_conns;
	l->max_msgs = sh->given & CONFIG_SHAPE_MSGS ? sh->max_messages_per_connection : l->max_msgs;
	l->max_rcpts =
	    sh->given & CONFIG_SHAPE_RCPTS ? sh->max_recipients_per_transaction : l->max_rcpts;
	l->msg_rate = sh->given & CONFIG_SHAPE_MSG_RATE ? sh->max_message_rate : l->msg_rate;
	l->conn_rate = sh->given & CONFIG_SHAPE_CONN_RATE ? sh->max_connection_rate : l->conn_rate;
	if (sh->given & CONFIG_SHAPE_CONNECT_TMO)
		l->connect_timeout_ms = sh->connect_timeout_ms;
	if (sh->given & CONFIG_SHAPE_TLS)
		l->tls = sh->tls;
}

void dest_shape_free(struct dest *d)
{
	for (unsigned i = 0; i < d->nsrcs; i++)
		shape_state_put(d->srcs[i].st);
	free(d->srcs);
	d->srcs = NULL;
	d->nsrcs = 0;
}

/* The sources: the pool named before the '/' of d's name, else the default source. */
static void dest_sources(struct dest *d, const char *base, size_t plen)
{
	const struct config_pool *p = plen ? snap_pool(d->snap, d->name, plen) : NULL;
	unsigned n = p ? p->nsources : 1;
	char key[CONFIG_STR + ROUTE_NAME_MAX + 8];

	dest_shape_free(d);
	d->srcs = util_xcalloc(n, sizeof(*d->srcs));
	for (unsigned i = 0; i < n; i++) {
		d->srcs[i].src = p ? &p->sources[i] : NULL;
		snprintf(key, sizeof(key), "%s|%s", p ? p->sources[i].text : "", base);
		d->srcs[i].st = shape_table_get(d->env.rt->shape, key);
	}
	d->nsrcs = n;
	d->src_rr %= n;
}

void dest_shape_conf(struct dest *d)
{
	size_t plen;
	const char *base = route_base(d->name, &plen);

	d->shaping = route_shaping(d->snap->routes, base);
	dest_limits(d, d->shaping);
	dest_sources(d, base, plen);
}

/* Take a connection slot and a connection token at source i. Returns 0, or -EAGAIN with
 * *wait_ms: how long until the rate lets one through (0: at the cap, a close frees one). */
static int dest_src_take(struct dest *d, unsigned i, uint64_t *wait_ms)
{
	struct shape_state *st = d->srcs[i].st;
	uint64_t now = loop_now_ms(d->env.loop), wait_ns = 0;

	*wait_ms = 0;
	if (shape_suspended(st, now, NULL))
		return -ESRCH;
	if (!shape_conn_acquire(st, d->lim.max_conns, now))
		return -EAGAIN;
	if (shape_take_conn(st, &d->lim.conn_rate, dest_now_ns(d), &wait_ns))
		return 0;
	shape_conn_release(st);
	*wait_ms = wait_ns / 1000000u + 1;
	return -EAGAIN;
}

int dest_shape_open(struct dest *d, unsigned *src, uint64_t *wait_ms)
{
	unsigned suspended = 0;
	uint64_t best = 0, w;

	for (unsigned k = 0; k < d->nsrcs; k++) {
		unsigned i = (d->src_rr + k) % d->nsrcs;
		int ret = dest_src_take(d, i, &w);
		if (ret == 0) {
			d->src_rr = (i + 1) % d->nsrcs;
			*src = i;
			return 0;
		}
		suspended += ret == -ESRCH;
		if (w && (!best || w < best))
			best = w;
	}
	*wait_ms = best;
	return suspended == d->nsrcs ? -ESRCH : -EAGAIN;
}

bool dest_shape_stop(struct dest *d, const struct osess *o)
{
	return o->st && shape_suspended(o->st, loop_now_ms(d->env.loop), NULL);
}

bool dest_shape_send(struct dest *d, const struct osess *o, uint64_t *wait_ms)
{
	uint64_t wait_ns = 0;

	if (shape_take_msg(o->st, &d->lim.msg_rate, dest_now_ns(d), &wait_ns))
		return true;
	*wait_ms = wait_ns / 1000000u + 1;
	return false;
}

void dest_shape_session(struct dest *d, struct osess *o, unsigned src)
{
	const struct config_source *cs = d->srcs[src].src;

	o->src = src;
	o->st = shape_table_get(d->env.rt->shape, shape_state_key(d->srcs[src].st));
	o->source = cs && cs->addr.family == o->tg.addr.family ? &cs->addr : NULL;
	if (o->source)
		snprintf(o->tg.src, sizeof(o->tg.src), "%s", cs->text);
	o->helo = cs && cs->helo[0] ? cs->helo : NULL;
}

void dest_shape_closed(struct osess *o)
{
	if (!o->st)
		return;
	shape_conn_release(o->st);
	shape_state_put(o->st);
	o->st = NULL;
}

/* ---- adaptive backoff ---- */

/* Log what rule did to source i's state (and what was already running). */
static void dest_backoff_log(struct dest *d, const struct osess *o, const struct config_backoff *b,
			     const struct smtpc_reply *r)
{
	const struct config_source *cs = d->srcs[o->src < d->nsrcs ? o->src : 0].src;
	static const char *const act[] = {"suspend", "reduce", "bounce"};

	dlog_line(d->env.log, d->name,
		  "event=backoff action=%s dest=%s source=%s rule=%s duration=%llus factor=%.2f "
		  "mx=%s reply=\"%d %.*s\"",
		  act[b->action], d->name, cs ? cs->text : "default", b->name,
		  (unsigned long long)(b->duration_ms / 1000),
		  b->action == CONFIG_BACKOFF_REDUCE ? b->factor : 1.0, o->tg.host, r->code,
		  (int)(r->text_len > 200 ? 200 : r->text_len), r->text);
}

const struct config_backoff *dest_shape_reply(struct dest *d, struct osess *o,
					      const struct smtpc_reply *r)
{
	int enh[3] = {r->enh_class, r->enh_subject, r->enh_detail};
	const struct config_backoff *b;
	uint64_t now = loop_now_ms(d->env.loop);
	bool was;

	if (r->code < 400 || !o->st ||
	    !(b = shape_rules_match(d->snap->rules, r->code, enh, r->text, r->text_len)))
		return NULL;
	if (b->action == CONFIG_BACKOFF_BOUNCE)
		return b;
	was = b->action == CONFIG_BACKOFF_SUSPEND ? shape_suspended(o->st, now, NULL)
						  : shape_factor(o->st, now) < 1.0;
	shape_apply(o->st, b, now);
	d->bo_active = true;
	if (!was)
		dest_backoff_log(d, o, b, r);
	return b;
}

/* Log the end (or a recovery step) of the actions on d's sources. */
void dest_shape_poll(struct dest *d)
{
	uint64_t now = loop_now_ms(d->env.loop);
	struct shape_status st;
	bool active = false;

	for (unsigned i = 0; i < d->nsrcs; i++) {
		struct shape_state *s = d->srcs[i].st;
		while (shape_poll_change(s, now, &st))
			dlog_line(
			    d->env.log, d->name,
			    "event=backoff-%s action=%s dest=%s source=%s rule=%s factor=%.2f",
			    st.change == SHAPE_CHANGE_ENDED ? "end" : "step",
			    st.action == SHAPE_SUSPEND ? "suspend" : "reduce", d->name,
			    d->srcs[i].src ? d->srcs[i].src->text : "default", st.rule, st.factor);
		shape_status_get(s, now, &st);
		active |= st.action != SHAPE_NONE;
	}
	d->bo_active = active;
}

/* While every source of d is suspended: the wall-clock ms it ends (the earliest), else 0. */
uint64_t dest_shape_suspended(struct dest *d)
{
	uint64_t now = loop_now_ms(d->env.loop), first = 0, until;

	for (unsigned i = 0; i < d->nsrcs; i++) {
		if (!shape_suspended(d->srcs[i].st, now, &until))
			return 0;
		if (!first || until < first)
			first = until;
	}
	return d->nsrcs ? util_wall_ms() + (first - now) : 0;
}

bool dest_shape_held(struct dest *d)
{
	static const int enh[3] = {4, 7, 0};
	uint64_t until = d->queued ? dest_shape_suspended(d) : 0;
	char why[160];
	struct job *j;
	int n;

	if (!until)
		return false;
	n = snprintf(why, sizeof(why),
		     "destination suspended by a backoff rule for %llu s more (not tried)",
		     (unsigned long long)((until - util_wall_ms()) / 1000));
	while ((j = job_pop(d))) {
		for (unsigned k = 0; k < j->n; k++)
			dest_record(d, j->u, j->idx[k], NULL, 451, enh, why, (size_t)n);
		if (until > j->u->retry_at)
			j->u->retry_at = until;
		job_end(d, j);
	}
	return true;
}
