/* shape_int — the types shared by engine/shape's files (not part of the public API).
 *
 * Why: the table creates and frees states, the rate and backoff files read and write their
 * fields; one definition here keeps shape.h opaque. Concurrency layout of a state:
 *  - refs: atomic; incremented only under the table's mutex, so a sweep (also under it) that
 *    sees 0 knows nobody holds or can take the state;
 *  - tat_msg / tat_conn / conns: lock-free atomics (CAS loops);
 *  - susp / red: the two backoff actions, written by shape_apply under the seqlock `seq`
 *    (writers take it by CAS to an odd value, spin briefly), read lock-free (retry on change);
 *    every field is an atomic accessed relaxed, so readers racing a writer are data-race free;
 *  - susp.seen / red.seen: which (generation, phase) was last reported by shape_poll_change.
 */
#ifndef RIPTIDE_SHAPE_INT_H
#define RIPTIDE_SHAPE_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "engine/shape/shape.h"

#define SHAPE_NAME_WORDS (CONFIG_STR / 8)
#define SHAPE_PHASE_END	 UINT32_MAX /* phase of an action that is over (or never ran) */
#define SHAPE_NS_PER_MS	 1000000ull

/* One backoff action (suspension or reduction) as published under the seqlock. */
struct shape_act {
	_Atomic uint64_t until_ms;    /* suspension: its end; reduction: end of the full hold */
	_Atomic uint64_t factor_bits; /* reduction: the held factor (a double's bits) */
	_Atomic uint64_t interval_ms; /* reduction: time between recovery steps */
	_Atomic uint32_t steps;	      /* reduction: recovery steps */
	_Atomic uint32_t gen;	      /* bumped by every apply; 0: never applied */
	_Atomic uint64_t name[SHAPE_NAME_WORDS]; /* the rule's name, NUL-padded */
	_Atomic uint64_t seen; /* gen << 32 | phase last reported (not under the seqlock) */
};

/* A plain copy of one action, read consistently. */
struct shape_snap {
	uint64_t until_ms;
	double factor;
	uint64_t interval_ms;
	uint32_t steps;
	uint32_t gen;
	char name[CONFIG_STR];
};

struct shape_state {
	struct shape_state *next; /* hash chain (table mutex) */
	uint32_t hash;
	_Atomic unsigned refs;
	_Atomic uint32_t seq; /* seqlock of susp and red */
	struct shape_act susp, red;
	_Alignas(64) _Atomic uint64_t tat_msg; /* GCRA theoretical arrival times, ns */
	_Atomic uint64_t tat_conn;
	_Atomic unsigned conns;
	char key[];
};

/* shape_state_init: zero a fresh state's limiters and actions (nothing to report). */
void shape_state_init(struct shape_state *s);

/* shape_snap_read: a consistent copy of act (s->susp or s->red) into out; with_name false
 * leaves out->name unset (the hot path does not need it). */
void shape_snap_read(const struct shape_state *s, const struct shape_act *act,
		     struct shape_snap *out, bool with_name);

/* shape_red_phase: the phase of reduction r at now_ms (0: held, k: step k, SHAPE_PHASE_END:
 * over) and, in *factor (may be NULL), its factor then. */
uint32_t shape_red_phase(const struct shape_snap *r, uint64_t now_ms, double *factor);

/* shape_red_end: when reduction r is back to 1.0. */
uint64_t shape_red_end(const struct shape_snap *r);

/* shape_idle: nothing in s is worth keeping at now_ms (used by the sweep; refs checked there). */
bool shape_idle(const struct shape_state *s, uint64_t now_ms);

#endif
