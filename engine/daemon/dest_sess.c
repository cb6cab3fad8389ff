/* dest_sess — opening a client session: the connection slot under the global cap, the
 * source and throttles it passes (dest_shape.c), and the smtpc configuration it starts with.
 *
 * Why a file of its own: dest.c runs the queue and the sessions' callbacks; what a new
 * session is made of (target, source, EHLO name, timeouts, TLS, AUTH, limits) reads best in
 * one place.
 */
#include "engine/daemon/dest_int.h"
#include "engine/daemon/snap.h"
#include "engine/shape/shape.h"

#include <errno.h>

/* Take a connection slot under the global cap, and for a slow destination under half of it
 * among slow destinations (see DEST_SLOW_MS). Returns false if there is none. */
static bool dest_take_slot(struct dest *d)
{
	struct rt *rt = d->env.rt;
	unsigned cap = rt->cfg.max_connections;

	if (atomic_fetch_add(&rt->out_conns, 1) >= cap) {
		atomic_fetch_sub(&rt->out_conns, 1);
		atomic_store(&rt->slot_denied_ms, loop_now_ms(d->env.loop));
		return false;
	}
	if (d->slow && atomic_fetch_add(&rt->slow_conns, 1) >= (cap + 1) / 2) {
		atomic_fetch_sub(&rt->slow_conns, 1);
		atomic_fetch_sub(&rt->out_conns, 1);
		return false;
	}
	return true;
}

/* The config of a session to o (its target and source set), made under d's snapshot. */
static void dest_sess_config(struct dest *d, struct osess *o, struct smtpc_config *sc)
{
	const struct config *c = d->cfg;

	sc->addr = o->tg.addr;
	if (o->source)
		sc->source = *o->source;
	else
		sc->source = o->tg.addr.family == AF_INET6 ? c->source_v6 : c->source_v4;
	sc->helo_name = o->helo ? o->helo : c->helo_name[0] ? c->helo_name : c->hostname;
	dest_timeouts(c, &sc->timeouts);
	sc->timeouts.connect_ms = (uint32_t)d->lim.connect_timeout_ms;
	sc->max_txns = d->lim.max_msgs;
	dest_auth_config(d, sc);
	sc->id = ((uint64_t)d->env.shard << 48) | ++d->next_sess_id;
	sc->ops = &d->ops;
	sc->user = o;
	dest_tls(d, o, sc);
}

/* A new session object for target t at source src. */
static struct osess *dest_sess_new(struct dest *d, unsigned t, unsigned src)
{
	struct osess *o = util_xcalloc(1, sizeof(*o));

	o->d = d;
	o->t = t;
	o->opened_ms = loop_now_ms(d->env.loop);
	o->tg = d->targets[t];
	o->gen = d->tgen;
	o->snap = snap_ref(d->snap);
	dest_shape_session(d, o, src);
	return o;
}

/* Open a session to the first live target >= min_t. Returns 0, -EAGAIN (a connection cap or
 * rate is reached: the repump timer is armed for when a token comes), -ESRCH (every source is
 * suspended by a backoff rule), -ENOENT (no live target) or smtpc_new's error. */
int dest_open_session(struct dest *d, unsigned min_t)
{
	struct smtpc_config sc = {0};
	int t = dest_pick_target(d, min_t), ret;
	unsigned src = 0;
	uint64_t wait = 0;
	struct osess *o;

	if (t < 0)
		return -ENOENT;
	if ((ret = dest_shape_open(d, &src, &wait)) < 0) {
		if (wait)
			dest_arm_repump_in(d, wait);
		return ret;
	}
	if (!dest_take_slot(d)) {
		shape_conn_release(d->srcs[src].st);
		return -EAGAIN;
	}
	o = dest_sess_new(d, (unsigned)t, src);
	dest_sess_config(d, o, &sc);
	ret = smtpc_new(d->env.loop, &sc, &o->c);
	if (ret < 0) {
		atomic_fetch_sub(&d->env.rt->out_conns, 1);
		if (d->slow)
			atomic_fetch_sub(&d->env.rt->slow_conns, 1);
		dest_shape_closed(o);
		snap_unref(o->snap);
		free(o);
		return ret;
	}
	o->next = d->sessions;
	d->sessions = o;
	d->nsess++;
	d->nconnecting++;
	return 0;
}
