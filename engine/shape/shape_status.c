/* shape_status — what a shaping state is doing, for logs (once per change) and for
 * `riptidectl queue summary`.
 *
 * Why here and not in the daemon: "exactly once across threads" needs the state's own
 * atomics (see shape_backoff.c: a CAS on the (generation, phase) last reported), and the
 * summary needs a consistent copy of the action, which only the seqlock reader can give.
 */
#include "engine/shape/shape_int.h"

#include <string.h>

/* The phase of a suspension snapshot at now: 0 while it runs, SHAPE_PHASE_END after. */
static uint32_t susp_phase(const struct shape_snap *sn, uint64_t now_ms)
{
	return sn->gen != 0 && now_ms < sn->until_ms ? 0 : SHAPE_PHASE_END;
}

/* Try to report a change of act (s->susp or s->red); see shape_poll_change. */
static bool poll_act(struct shape_state *s, struct shape_act *act, uint64_t now_ms,
		     struct shape_snap *sn, uint32_t *phase)
{
	for (;;) {
		uint64_t seen;

		shape_snap_read(s, act, sn, true);
		*phase =
		    act == &s->susp ? susp_phase(sn, now_ms) : shape_red_phase(sn, now_ms, NULL);
		seen = atomic_load(&act->seen);
		if ((uint32_t)(seen >> 32) != sn->gen)
			continue; /* an apply ran since the snapshot: look again */
		if ((uint32_t)seen >= *phase)
			return false;
		if (atomic_compare_exchange_strong(&act->seen, &seen,
						   (uint64_t)sn->gen << 32 | *phase))
			return true;
	}
}

/* shape_poll_change: see shape.h. */
bool shape_poll_change(struct shape_state *s, uint64_t now_ms, struct shape_status *out)
{
	struct shape_snap sn;
	uint32_t phase;

	memset(out, 0, sizeof(*out));
	if (poll_act(s, &s->susp, now_ms, &sn, &phase)) {
		out->action = SHAPE_SUSPEND;
		out->until_ms = sn.until_ms;
	} else if (poll_act(s, &s->red, now_ms, &sn, &phase)) {
		out->action = SHAPE_REDUCE;
		out->until_ms = shape_red_end(&sn);
	} else {
		out->factor = 1.0;
		return false;
	}
	out->change = phase == SHAPE_PHASE_END ? SHAPE_CHANGE_ENDED : SHAPE_CHANGE_STEP;
	memcpy(out->rule, sn.name, sizeof(out->rule));
	out->factor = shape_factor(s, now_ms);
	out->conns = shape_conns(s);
	return true;
}

/* shape_status_get: see shape.h. */
void shape_status_get(const struct shape_state *s, uint64_t now_ms, struct shape_status *out)
{
	struct shape_snap sn;

	memset(out, 0, sizeof(*out));
	shape_snap_read(s, &s->susp, &sn, true);
	if (susp_phase(&sn, now_ms) == 0) {
		out->action = SHAPE_SUSPEND;
		out->until_ms = sn.until_ms;
		memcpy(out->rule, sn.name, sizeof(out->rule));
	}
	shape_snap_read(s, &s->red, &sn, true);
	shape_red_phase(&sn, now_ms, &out->factor);
	if (out->action == SHAPE_NONE && out->factor < 1.0) {
		out->action = SHAPE_REDUCE;
		out->until_ms = shape_red_end(&sn);
		memcpy(out->rule, sn.name, sizeof(out->rule));
	}
	out->conns = shape_conns(s);
}
