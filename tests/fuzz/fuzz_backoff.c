/* fuzz_backoff — libFuzzer harness for engine/shape's state machine: the input is a program of
 * operations on one state (apply a suspension or a reduction with any duration, factor, steps
 * and interval; move the clock; take a message or a connection slot; poll for changes; read
 * the summary), run against a tiny model of what must hold.
 *
 * Why: merging actions ("lower factor, later end"), stepwise recovery and once-only reports
 * interact through times the unit tests pick by hand; the fuzzer picks the awkward ones
 * (zero durations, zero intervals, steps of 0 or 255, factors near 0, huge jumps). Invariants:
 *  - the factor is in (0, 1], never decreases while no reduction is applied, is at most the
 *    factor just applied, and is 1.0 from the summary's until_ms on (while no suspension
 *    hides the reduction in the summary);
 *  - suspended exactly until the latest end applied (the model keeps max(now + duration));
 *  - a suspension's end is reported once, after its end, and never while it runs;
 *  - two messages passed by one limiter are at least ceil(per / (n * factor)) apart, with the
 *    factor at the first one;
 *  - the connection counter equals the model's, and the cap is max * factor, at least 1.
 */
#include "tests/fuzz/fuzz.h"
#include "engine/shape/shape.h"

#include <string.h>

struct model {
	uint64_t now, susp_end, last_pass, min_gap;
	bool susp_applied, susp_reported, passed;
	double factor; /* last factor seen while no reduction applied since */
	unsigned conns;
};

static unsigned take(const uint8_t **p, const uint8_t *end, unsigned bytes)
{
	unsigned v = 0;

	for (unsigned i = 0; i < bytes && *p < end; i++)
		v = v << 8 | *(*p)++;
	return v;
}

static void op_apply(struct shape_state *s, struct model *m, const uint8_t **p, const uint8_t *e,
		     bool suspend)
{
	struct config_backoff b;

	memset(&b, 0, sizeof(b));
	strcpy(b.name, suspend ? "fz-suspend" : "fz-reduce");
	b.enabled = true;
	b.action = suspend ? CONFIG_BACKOFF_SUSPEND : CONFIG_BACKOFF_REDUCE;
	b.duration_ms = take(p, e, 2);
	b.factor = (take(p, e, 1) + 1) / 256.0;
	b.recover_steps = take(p, e, 1);
	b.recover_interval_ms = take(p, e, 2);
	shape_apply(s, &b, m->now);
	if (suspend) {
		if (m->now + b.duration_ms > m->susp_end)
			m->susp_end = m->now + b.duration_ms;
		m->susp_applied = true;
		m->susp_reported = false;
	} else {
		/* held (duration > 0): at most the factor applied */
		FUZZ_CHECK(!b.duration_ms || shape_factor(s, m->now) <= b.factor,
			   "factor above the one applied");
		m->factor = 0; /* the factor may now be anything up to 1.0 */
	}
}

static void op_take(struct shape_state *s, struct model *m, const uint8_t **p, const uint8_t *e)
{
	struct config_rate r = {take(p, e, 1) + 1, 1000};
	double f = shape_factor(s, m->now);
	uint64_t now_ns = m->now * 1000000ull, wait = 0;

	if (!shape_take_msg(s, &r, now_ns, &wait)) {
		FUZZ_CHECK(wait > 0, "refused with no wait");
		return;
	}
	FUZZ_CHECK(!m->passed || now_ns - m->last_pass >= m->min_gap,
		   "passes %llu ns apart, %llu needed", (unsigned long long)(now_ns - m->last_pass),
		   (unsigned long long)m->min_gap);
	m->passed = true;
	m->last_pass = now_ns;
	m->min_gap = (uint64_t)(1e9 / (r.n * f)) - 1; /* minus rounding */
}

static void op_conn(struct shape_state *s, struct model *m, unsigned max)
{
	double f = shape_factor(s, m->now);
	unsigned cap = max;

	if (max && f < 1.0)
		cap = (unsigned)(max * f) ? (unsigned)(max * f) : 1;
	if (shape_conn_acquire(s, max, m->now)) {
		FUZZ_CHECK(max == 0 || m->conns < cap, "acquired at %u of cap %u", m->conns, cap);
		m->conns++;
	} else {
		FUZZ_CHECK(max && m->conns >= cap, "refused at %u of cap %u", m->conns, cap);
	}
	FUZZ_CHECK(shape_conns(s) == m->conns, "conns %u, model %u", shape_conns(s), m->conns);
}

static void check(struct shape_state *s, struct model *m)
{
	double f = shape_factor(s, m->now);
	uint64_t until;
	struct shape_status st;

	FUZZ_CHECK(f > 0 && f <= 1.0, "factor %g", f);
	FUZZ_CHECK(f >= m->factor, "factor went down from %g to %g", m->factor, f);
	m->factor = f;
	FUZZ_CHECK(shape_suspended(s, m->now, &until) == (m->now < m->susp_end),
		   "suspended at %llu, model's end %llu", (unsigned long long)m->now,
		   (unsigned long long)m->susp_end);
	shape_status_get(s, m->now, &st);
	if (st.action == SHAPE_REDUCE)
		FUZZ_CHECK(shape_factor(s, st.until_ms) == 1.0, "not recovered at until_ms");
	while (shape_poll_change(s, m->now, &st)) {
		if (st.action != SHAPE_SUSPEND)
			continue;
		FUZZ_CHECK(m->susp_applied && !m->susp_reported && m->now >= m->susp_end,
			   "suspension end reported wrongly");
		m->susp_reported = true;
	}
	FUZZ_CHECK(!m->susp_applied || m->susp_reported || m->now < m->susp_end,
		   "suspension over but its end not reported");
}

/* LLVMFuzzerTestOneInput: run the program in data on a fresh state. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *s = shape_table_get(t, "fz|example.com");
	struct model m = {.now = 1000, .factor = 1.0};
	const uint8_t *p = data, *e = data + size;

	while (p < e) {
		uint8_t op = *p++;

		switch (op % 6) {
		case 0:
			op_apply(s, &m, &p, e, true);
			break;
		case 1:
			op_apply(s, &m, &p, e, false);
			break;
		case 2:
			m.now += take(&p, e, op & 0x80 ? 3 : 1);
			break;
		case 3:
			op_take(s, &m, &p, e);
			break;
		case 4:
			op_conn(s, &m, take(&p, e, 1) % 8);
			break;
		default:
			if (m.conns) {
				shape_conn_release(s);
				m.conns--;
			}
		}
		check(s, &m);
	}
	while (m.conns--)
		shape_conn_release(s);
	shape_state_put(s);
	shape_table_free(t);
	return 0;
}
