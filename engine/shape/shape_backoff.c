/* shape_backoff — the suspension and reduction of a shaping state, and their reporting.
 *
 * Why a seqlock: the factor is read on every rate decision from every shard, while actions
 * are applied rarely (on a matching reply). Readers copy the action's few fields and retry
 * if a writer ran meanwhile; they never block or write. Writers (shape_apply) serialise by
 * taking the sequence to an odd value with a CAS and spin only while another apply runs.
 *
 * Why phases for reporting: each action has a generation (bumped by every apply) and a phase
 * computed from the time (held, recovery step k, over). `seen` records the last (generation,
 * phase) reported; a poller that computes a later phase wins the report by CAS on `seen`, so
 * one caller among all threads logs each end or step, and skipped steps coalesce.
 */
#include "engine/shape/shape_int.h"

#include <string.h>

#include "engine/util/util.h"

#define RLX memory_order_relaxed

static uint64_t seen_pack(uint32_t gen, uint32_t phase)
{
	return (uint64_t)gen << 32 | phase;
}

static uint64_t bits_of(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static double double_of(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

/* shape_state_init: see shape_int.h. */
void shape_state_init(struct shape_state *s)
{
	atomic_store(&s->susp.seen, seen_pack(0, SHAPE_PHASE_END));
	atomic_store(&s->red.seen, seen_pack(0, SHAPE_PHASE_END));
	atomic_store(&s->red.factor_bits, bits_of(1.0));
}

/* shape_snap_read: see shape_int.h. */
void shape_snap_read(const struct shape_state *s, const struct shape_act *act,
		     struct shape_snap *out, bool with_name)
{
	uint32_t s1, s2;
	uint64_t name[SHAPE_NAME_WORDS];

	do {
		s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
		out->until_ms = atomic_load_explicit(&act->until_ms, RLX);
		out->factor = double_of(atomic_load_explicit(&act->factor_bits, RLX));
		out->interval_ms = atomic_load_explicit(&act->interval_ms, RLX);
		out->steps = atomic_load_explicit(&act->steps, RLX);
		out->gen = atomic_load_explicit(&act->gen, RLX);
		for (unsigned i = 0; with_name && i < SHAPE_NAME_WORDS; i++)
			name[i] = atomic_load_explicit(&act->name[i], RLX);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&s->seq, RLX);
	} while ((s1 & 1) || s1 != s2);
	if (with_name) {
		memcpy(out->name, name, sizeof(out->name));
		out->name[CONFIG_STR - 1] = '\0';
	}
}

/* shape_red_phase: see shape_int.h. */
uint32_t shape_red_phase(const struct shape_snap *r, uint64_t now_ms, double *factor)
{
	uint64_t k;

	if (factor)
		*factor = 1.0;
	if (r->gen == 0 || r->factor >= 1.0)
		return SHAPE_PHASE_END;
	if (now_ms < r->until_ms) {
		if (factor)
			*factor = r->factor;
		return 0;
	}
	k = r->interval_ms ? 1 + (now_ms - r->until_ms) / r->interval_ms : r->steps;
	if (k >= r->steps)
		return SHAPE_PHASE_END;
	if (factor)
		*factor = r->factor + (1.0 - r->factor) * (double)k / (double)r->steps;
	return (uint32_t)k;
}

/* shape_red_end: see shape_int.h. */
uint64_t shape_red_end(const struct shape_snap *r)
{
	if (r->steps <= 1)
		return r->until_ms;
	return r->until_ms + (uint64_t)(r->steps - 1) * r->interval_ms;
}

static inline void shape_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* Take the seqlock for writing; returns the (odd) sequence to release with seq_unlock. */
static uint32_t seq_lock(struct shape_state *s)
{
	uint32_t v = atomic_load_explicit(&s->seq, RLX);

	for (;;) {
		if (!(v & 1) && atomic_compare_exchange_weak_explicit(&s->seq, &v, v + 1,
								      memory_order_acquire, RLX))
			break;
		shape_cpu_relax();
		v = atomic_load_explicit(&s->seq, RLX);
	}
	atomic_thread_fence(memory_order_release);
	return v + 1;
}

static void seq_unlock(struct shape_state *s, uint32_t v)
{
	atomic_store_explicit(&s->seq, v + 1, memory_order_release);
}

/* Publish name into act and open a new generation with nothing reported (seqlock held). */
static void act_renew(struct shape_act *act, const char *name)
{
	uint64_t w[SHAPE_NAME_WORDS] = {0};
	uint32_t gen = atomic_load_explicit(&act->gen, RLX) + 1;

	strncpy((char *)w, name, sizeof(w) - 1);
	for (unsigned i = 0; i < SHAPE_NAME_WORDS; i++)
		atomic_store_explicit(&act->name[i], w[i], RLX);
	if (gen == 0) /* 0 means "never applied" */
		gen = 1;
	atomic_store_explicit(&act->gen, gen, RLX);
	atomic_store(&act->seen, seen_pack(gen, 0));
}

/* Merge a reduction by rule into s->red at now (seqlock held): the lower factor, the later
 * end of the hold, the rule's steps and interval. */
static void apply_reduce(struct shape_state *s, const struct config_backoff *rule, uint64_t now_ms)
{
	struct shape_snap cur = {
	    .until_ms = atomic_load_explicit(&s->red.until_ms, RLX),
	    .factor = double_of(atomic_load_explicit(&s->red.factor_bits, RLX)),
	    .interval_ms = atomic_load_explicit(&s->red.interval_ms, RLX),
	    .steps = atomic_load_explicit(&s->red.steps, RLX),
	    .gen = atomic_load_explicit(&s->red.gen, RLX),
	};
	double f = 1.0;
	uint64_t until = now_ms + rule->duration_ms;

	shape_red_phase(&cur, now_ms, &f);
	if (rule->factor < f)
		f = rule->factor;
	if (cur.gen && cur.until_ms > until)
		until = cur.until_ms;
	atomic_store_explicit(&s->red.until_ms, until, RLX);
	atomic_store_explicit(&s->red.factor_bits, bits_of(f), RLX);
	atomic_store_explicit(&s->red.interval_ms, rule->recover_interval_ms, RLX);
	atomic_store_explicit(&s->red.steps, rule->recover_steps, RLX);
	act_renew(&s->red, rule->name);
}

/* shape_apply: see shape.h. */
enum shape_action shape_apply(struct shape_state *s, const struct config_backoff *rule,
			      uint64_t now_ms)
{
	uint32_t v;

	if (rule->action == CONFIG_BACKOFF_BOUNCE)
		return SHAPE_NONE;
	v = seq_lock(s);
	if (rule->action == CONFIG_BACKOFF_SUSPEND) {
		uint64_t until = now_ms + rule->duration_ms;
		uint64_t cur = atomic_load_explicit(&s->susp.until_ms, RLX);

		atomic_store_explicit(&s->susp.until_ms, cur > until ? cur : until, RLX);
		act_renew(&s->susp, rule->name);
	} else {
		apply_reduce(s, rule, now_ms);
	}
	seq_unlock(s, v);
	return rule->action == CONFIG_BACKOFF_SUSPEND ? SHAPE_SUSPEND : SHAPE_REDUCE;
}

/* shape_suspended: see shape.h. */
bool shape_suspended(const struct shape_state *s, uint64_t now_ms, uint64_t *until_ms)
{
	struct shape_snap sn;

	shape_snap_read(s, &s->susp, &sn, false);
	if (until_ms)
		*until_ms = sn.until_ms;
	return sn.gen != 0 && now_ms < sn.until_ms;
}

/* shape_factor: see shape.h. No reduction ever applied: 1.0 without the seqlock. */
double shape_factor(const struct shape_state *s, uint64_t now_ms)
{
	struct shape_snap sn;
	double f;

	if (atomic_load_explicit(&s->red.gen, memory_order_acquire) == 0)
		return 1.0;
	shape_snap_read(s, &s->red, &sn, false);
	shape_red_phase(&sn, now_ms, &f);
	return f;
}
