/* dest — one delivery destination on one shard: a FIFO of jobs, a pool of SMTP client sessions
 * (engine/smtpc) and the outcome bookkeeping that turns replies into recipient outcomes.
 *
 * Why: a destination is the unit of throttling and failure. One slow or failing destination
 * must never hold up another, so each has its own queue, sessions and "dead" back-off. In relay
 * mode every shard owns its own instance of the smarthost destination (the global connection cap
 * is shared through an atomic in struct rt), so both cores deliver.
 *
 * Jobs: a delivery unit's recipients (unit.h) are split into jobs of at most
 * max_recipients_per_transaction; each job is one SMTP transaction. When a unit's last job
 * ends, the unit goes back to its home shard with one outcome per recipient it decided; the
 * home shard writes the queue.
 */
#ifndef RIPTIDE_DEST_H
#define RIPTIDE_DEST_H

#include "engine/daemon/rt.h"
#include "engine/daemon/unit.h"

struct dest;

/* What a destination needs from its shard. */
struct dest_env {
	struct rt *rt;
	struct loop *loop;
	struct dlog_buf *log;
	unsigned shard;
	/* a unit's outcomes are in: hand it back to its home shard (on this shard's thread) */
	void (*unit_done)(void *arg, struct unit *u);
	void *unit_done_arg;
	struct snap *const *snap;  /* the shard's current snapshot (snap.h) */
	struct dest_table *table;  /* the shard's destinations (fallback ones are made there) */
	struct dest *const *relay; /* the shard's default relay (relay mode), or NULL */
};

/* dest_new_relay: a destination delivering everything to addr (name: printable, for logs);
 * is_fallback: it is the fallback relay of MX destinations (log lines say so). */
struct dest *dest_new_relay(const struct dest_env *env, const struct util_addr *addr,
			    const char *name, bool is_fallback);

/* dest_new_relay_named: like dest_new_relay for a relay given by host name: its A/AAAA records
 * are resolved through env->rt->dns (re-resolved when their TTL runs out) and tried in order
 * on `port`; a name that does not resolve defers the mail (4.4.3), never fails it. */
struct dest *dest_new_relay_named(const struct dest_env *env, const char *host, unsigned port,
				  const char *name, bool is_fallback);

/* dest_new_mx: the destination for recipient domain `domain` (lower case), delivered to its MX
 * hosts resolved through env->rt->dns; `fallback` (may be NULL) takes the jobs no MX host could
 * take. */
struct dest *dest_new_mx(const struct dest_env *env, const char *domain, struct dest *fallback);

/* dest_name: the destination's name (relay address or domain). */
const char *dest_name(const struct dest *d);

/* A shard's MX destinations by name (zero-initialised = empty). */
struct dest_table {
	struct dest **b;
	unsigned cap, n;
};

/* dest_table_get: the destination named `name` (not retired), created (dest_create) on first
 * use. */
struct dest *dest_table_get(struct dest_table *t, const struct dest_env *env, const char *name,
			    struct dest *fallback);

/* dest_create: a new destination for `name` as the shard's snapshot routes it: "mx:h1,h2"
 * (an MX site: those hosts), "fallback:domain" (the default route of a domain whose route's
 * hosts all failed), a route's name (its relay or hosts), a domain (its MX hosts, with the
 * route's settings), each maybe behind "pool/". `fallback`: the fallback relay of MX kinds. */
struct dest *dest_create(const struct dest_env *env, const char *name, struct dest *fallback);

/* dest_reconf: after the shard's snapshot changed: take the new settings (throttles, sources,
 * TLS, timeouts...). Returns false when d's route now leads elsewhere (other kind, hosts or
 * relay): d is then retired (it drains; dest_table_get makes a new one). */
bool dest_reconf(struct dest *d);

/* dest_table_gc: free the destinations with nothing queued, open or in flight that took no
 * unit for idle_ms (a shard sees thousands of domains over a day; their state is rebuilt from
 * the DNS cache when mail for them comes again). */
void dest_table_gc(struct dest_table *t, uint64_t now_ms, uint64_t idle_ms);

/* dest_table_reconf: dest_reconf on every destination of the table (a new snapshot). */
void dest_table_reconf(struct dest_table *t);

/* dest_tick: (every SHARD_RECLAIM_MS) log the end of d's backoff actions when it comes, and
 * dest_reclaim_idle. */
void dest_tick(struct dest *d);

/* dest_table_reclaim: dest_tick on every destination of the table. */
void dest_table_reclaim(struct dest_table *t);

/* dest_table_busy / dest_table_shutdown / dest_table_free: dest_busy summed, dest_shutdown and
 * dest_free applied to every destination of the table. */
unsigned dest_table_busy(const struct dest_table *t);
void dest_table_shutdown(struct dest_table *t, bool abort);
void dest_table_free(struct dest_table *t);

/* dest_enqueue: take u and deliver its recipients; u goes back through env.unit_done (at once
 * if there is nothing to send or the destination is shutting down). */
void dest_enqueue(struct dest *d, struct unit *u);

/* dest_shutdown: stop starting transactions; queued units go home undecided (their messages
 * stay queued on disk); sessions QUIT after their running transaction, or close now with
 * `abort`. */
void dest_shutdown(struct dest *d, bool abort);

/* dest_reclaim_idle: while other destinations wait for a connection slot, close d's idle
 * sessions (d has nothing queued). */
void dest_reclaim_idle(struct dest *d);

/* dest_busy: sessions open + jobs queued + timers armed. */
unsigned dest_busy(const struct dest *d);

/* dest_free: free a destination that is no longer busy (remaining jobs go home undecided). */
void dest_free(struct dest *d);

#endif
