/* shard — a worker thread with its own io_uring loop: the injection sessions it accepted, its
 * share of the destinations with their queues and SMTP client sessions, and its log buffer.
 *
 * Why: no locks on the hot path. Everything a shard owns is touched only by its thread; other
 * threads reach it through loop_post (runner hand-overs, commit completions, shutdown).
 */
#ifndef RIPTIDE_SHARD_H
#define RIPTIDE_SHARD_H

#include "engine/daemon/msg.h"
#include "engine/daemon/rt.h"

struct shard;

struct smtpd_hooks;
/* The injection hooks the shards implement; main gives them to smtpd_server_new. */
extern const struct smtpd_hooks shard_smtpd_hooks;
/* ...and the per-session owner data they need (smtpd_config.session_data_size). */
extern const size_t shard_session_data_size;

/* shard_start: create shard idx and start its thread (its smtpd worker accepts on rt->srv's
 * listeners). Returns 0 or -errno. */
int shard_start(struct rt *rt, unsigned idx, struct shard **out);

/* shard_snap: (main thread) tell s that rt->snap changed: it re-points its destinations. */
void shard_snap(struct shard *s);

/* shard_dispatch: hand a loaded message to shard s (any thread; s takes ownership). */
void shard_dispatch(struct shard *s, struct msg *m);

/* shard_shutdown: (any thread) stop accepting, let injections in flight finish, finish
 * current outbound transactions and QUIT; with `abort` close every session now. */
void shard_shutdown(struct shard *s, bool abort);

struct home_ctl;

/* shard_ctl: (any thread) hand an operator's action to shard s, its message's home shard
 * (home_ctl runs there). */
void shard_ctl(struct shard *s, struct home_ctl *c);

/* shard_busy: (any thread, after shard_shutdown) sessions, commits and timers still in flight
 * on s; at least 1 until the shard has acted on the shutdown request. */
unsigned shard_busy(struct shard *s);

/* shard_join: stop the loop, join the thread and free s with what it still holds in RAM
 * (those messages stay in the queue and are recovered at the next start). Returns true if every
 * session had ended (false: something was left open and deliberately not freed). */
bool shard_join(struct shard *s);

#endif
