/* shape — traffic shaping and adaptive backoff per destination, as a pure, thread-safe library.
 *
 * Why: a receiver (Gmail, Outlook, Yahoo...) is reached from every shard, so its throttles and
 * backoff state must be shared and exact across threads, cost next to nothing on the hot path,
 * and be testable without a loop or a clock. Hence:
 *  - a table of refcounted states keyed by a string ("source|destination"), a mutex held only
 *    for lookup/insert/sweep, never on the hot path;
 *  - two GCRA limiters per state (messages, connections) on one atomic each (CAS on the
 *    theoretical arrival time), strict pacing: over any window of length per_ms at most n
 *    events pass (n + 1 for a closed window that has an event on both boundaries);
 *  - a connection counter (atomic) with a cap;
 *  - backoff: reply rules (code, enhanced code, POSIX ERE on the text) compiled once, and per
 *    state a suspension and a reduction (factor on rates and connection caps, then stepwise
 *    recovery), published through a seqlock so readers never block;
 *  - no clock reads: every function takes the time. now_ns and now_ms are the same clock
 *    (CLOCK_MONOTONIC), now_ms = now_ns / 1000000.
 */
#ifndef RIPTIDE_SHAPE_H
#define RIPTIDE_SHAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/config/config.h"

struct shape_table;
struct shape_state;
struct shape_rules;

/* ---- table of states ---- */

/* shape_table_new: an empty table. The caller owns it (shape_table_free). Never NULL. */
struct shape_table *shape_table_new(void);

/* shape_table_free: free t and every state in it. No reference may be held any more (BUG_ON). */
void shape_table_free(struct shape_table *t);

/* shape_table_get: the state of key (any bytes up to the NUL; "" allowed), created fresh
 * (no limits consumed, no backoff) if absent. Takes a reference the caller returns with
 * shape_state_put. Thread-safe (short mutex). Never NULL. */
struct shape_state *shape_table_get(struct shape_table *t, const char *key);

/* shape_state_put: return a reference taken by shape_table_get. A state without references
 * stays in the table (keeping its limiter and backoff) until shape_table_sweep frees it. */
void shape_state_put(struct shape_state *s);

/* shape_state_key: the state's key (valid while a reference is held). */
const char *shape_state_key(const struct shape_state *s);

/* shape_table_sweep: free the states nobody references that hold nothing worth keeping at
 * now: no running suspension or reduction, limiters idle (their next arrival time passed), no
 * connection. Returns how many were freed. Thread-safe (holds the mutex while it walks). */
unsigned shape_table_sweep(struct shape_table *t, uint64_t now_ms);

/* shape_table_count: number of states in the table (referenced or not). */
unsigned shape_table_count(struct shape_table *t);

/* shape_table_each: call fn(state, arg) on every state, under the table's mutex (fn must not
 * call shape_table_* on t; it may read the state and call shape_status_get). */
void shape_table_each(struct shape_table *t, void (*fn)(struct shape_state *s, void *arg),
		      void *arg);

/* ---- rates and connections (lock-free) ---- */

/* shape_take_msg: may one message be sent at now_ns under rate r (times the state's current
 * backoff factor)? true: yes, and the event is counted. false: no; *wait_ns (may be NULL)
 * receives how long until the next one may pass if nobody else takes it. r->n == 0 or
 * r->per_ms == 0: unlimited, always true (no atomic write). */
bool shape_take_msg(struct shape_state *s, const struct config_rate *r, uint64_t now_ns,
		    uint64_t *wait_ns);

/* shape_take_conn: the same for opening a connection (its own, independent limiter). */
bool shape_take_conn(struct shape_state *s, const struct config_rate *r, uint64_t now_ns,
		     uint64_t *wait_ns);

/* shape_conn_acquire: count one more open connection if fewer than the cap are open; the cap
 * is max times the backoff factor at now_ms, at least 1 (max 0: no cap). true: counted (give
 * it back with shape_conn_release); false: at the cap. */
bool shape_conn_acquire(struct shape_state *s, unsigned max, uint64_t now_ms);

/* shape_conn_release: one connection counted by shape_conn_acquire closed. */
void shape_conn_release(struct shape_state *s);

/* shape_conns: open connections now counted. */
unsigned shape_conns(const struct shape_state *s);

/* ---- backoff rules ---- */

/* shape_rules_new: compile the n rules (copied; rules may be freed afterwards). Disabled rules
 * are skipped. text: POSIX ERE, case-insensitive, "" = any; enhanced: "" or "C.S.D"; code 0 =
 * any; reduce needs 0 < factor <= 1. Returns the caller-owned set, or NULL with a message
 * naming the rule in err (errlen bytes). */
struct shape_rules *shape_rules_new(const struct config_backoff *rules, unsigned n, char *err,
				    size_t errlen);

/* shape_rules_free: free r (NULL allowed). Rules returned by shape_rules_match die with it. */
void shape_rules_free(struct shape_rules *r);

/* shape_rules_match: the first enabled rule matching a reply: code, enhanced code enh ({0,0,0}
 * when the reply has none; a rule with an enhanced code never matches that), and text (len
 * bytes, lines joined by "\n", NUL not needed). Returns a rule owned by r, or NULL.
 * Thread-safe (glibc's regexec serialises on the regex's own lock). */
const struct config_backoff *shape_rules_match(const struct shape_rules *r, int code,
					       const int enh[3], const char *text, size_t len);

/* ---- backoff state ---- */

enum shape_action {
	SHAPE_NONE = 0,
	SHAPE_SUSPEND = 1,
	SHAPE_REDUCE = 2,
};

enum shape_change {
	SHAPE_CHANGE_NONE = 0,
	SHAPE_CHANGE_ENDED = 1, /* the action is over (reduce: factor back to 1.0) */
	SHAPE_CHANGE_STEP = 2,	/* a reduction recovered by one or more steps */
};

struct shape_status {
	enum shape_action action; /* get: SUSPEND if suspended, else REDUCE if factor < 1;
				   * poll: the action that changed */
	enum shape_change change; /* poll only (get: NONE) */
	char rule[CONFIG_STR];	  /* the last rule applied for that action ("" for NONE) */
	uint64_t until_ms;	  /* SUSPEND: its end; REDUCE: when the factor is back to 1.0 */
	double factor;		  /* the factor at now (1.0 without a reduction) */
	unsigned conns;		  /* open connections */
};

/* shape_apply: act on s for rule (from shape_rules_match) at now_ms. SUSPEND: suspended until
 * now + duration (a running suspension ends at the later end). REDUCE: factor for duration,
 * then recover_steps equal steps toward 1.0: the first at the end of duration, then one per
 * recover_interval; over a running reduction the lower factor (the current, partly recovered
 * one or the rule's) and the later end of duration win, steps and interval are the rule's.
 * Suspension and reduction are independent (both can run). BOUNCE: nothing (the caller fails
 * the recipient). An apply resets that action's change reporting (an unreported end is
 * dropped: the caller logs the new action). Returns the action taken (NONE for BOUNCE). */
enum shape_action shape_apply(struct shape_state *s, const struct config_backoff *rule,
			      uint64_t now_ms);

/* shape_suspended: is s suspended at now_ms? *until_ms (may be NULL) receives the end. */
bool shape_suspended(const struct shape_state *s, uint64_t now_ms, uint64_t *until_ms);

/* shape_factor: the reduction factor at now_ms, in (0, 1]; 1.0 without a reduction. */
double shape_factor(const struct shape_state *s, uint64_t now_ms);

/* shape_poll_change: true for exactly one caller across all threads each time an action ended
 * or a reduction stepped since the last report (skipped steps are reported once, with the
 * current factor), filling out; false otherwise. A suspension's end is reported before a
 * reduction's change (the next call reports that one). */
bool shape_poll_change(struct shape_state *s, uint64_t now_ms, struct shape_status *out);

/* shape_status_get: the state's picture at now_ms for `queue summary`. */
void shape_status_get(const struct shape_state *s, uint64_t now_ms, struct shape_status *out);

#endif
