/* home — the home shard's side of a message: it owns the message, sends one delivery unit per
 * destination, takes the outcomes back and finalises the message in the queue.
 *
 * Why: the message's state (envelope, recipient states, commit request) has exactly one writer,
 * whichever shards deliver its recipients. A round starts when the message is accepted (every
 * group) or when the runner finds a group due; it ends when every unit of it is back; then one
 * commit request records it (delete, or meta + the decided groups' sched entries moved) and the
 * message leaves RAM. A write that fails (disk full) keeps the message in RAM, still resident so
 * the runner leaves it alone, and is written again once the queue is writable.
 */
#ifndef RIPTIDE_HOME_H
#define RIPTIDE_HOME_H

#include "engine/daemon/rt.h"
#include "engine/daemon/unit.h"

struct home;

/* Hands a unit to its owner shard (u->owner): called on the home shard. */
typedef void (*home_send_fn)(void *arg, struct unit *u);

struct home_env {
	struct rt *rt;
	struct loop *loop;
	struct dlog_buf *log;
	unsigned shard;
	home_send_fn send;
	void *send_arg;
	struct snap *const *snap; /* the shard's current snapshot (routes, schedules) */
};

/* home_new / home_free: the home side of one shard (home_free: when home_busy is 0, or at
 * exit with what is left in RAM: those messages stay queued). */
struct home *home_new(const struct home_env *env);
void home_free(struct home *h);

/* Which groups a round starts with. */
#define HOME_ALL_GROUPS 0xffffffffu

/* home_start: start a round for m (resident, owned by this shard): one unit per destination
 * of the pending recipients of group `group` and of every other group already due (the runner
 * loaded it for `group`), or of every group (HOME_ALL_GROUPS: fresh mail). A message that is
 * already in a round is left alone (a group that falls due while it is out is picked up when
 * the runner is rewound at the round's end). */
void home_start(struct home *h, struct msg *m, unsigned group);

/* home_unit_back: u's outcomes are in (home shard thread): record them; the round ends with
 * the last unit. Frees u. */
void home_unit_back(struct home *h, struct unit *u);

/* home_unit_post: loop_msg handler for a unit posted back from another shard. */
void home_unit_post(struct loop *l, struct loop_msg *lm);

/* home_shutdown: rounds that end from now on retry at once (no retry delay); with `abort`
 * outcomes that could not be written are given up (they are retried after the restart). */
void home_shutdown(struct home *h, bool abort);

/* An operator's action on one message (riptidectl queue delete / bounce / retry). */
enum home_act { HOME_ACT_DELETE, HOME_ACT_BOUNCE, HOME_ACT_RETRY };

/* A request from the control thread to the message's home shard. The poster owns it; `done`
 * runs on the shard once the action is applied or scheduled (result 0) and may not touch the
 * request afterwards from the shard's side. */
struct home_ctl {
	struct loop_msg lm;
	/* read from the queue by the poster after claiming it (resident_claim: ownership passes
	 * to the shard), or NULL: the message was in RAM, the action waits for its round's end */
	struct msg *m;
	struct queue_id id;
	enum home_act act;
	int result;
	void (*done)(struct home_ctl *c);
};

/* home_ctl: (home shard) apply c: a message the poster claimed is written at once (delete: removed
 * without notice; bounce: every pending recipient fails with a notice; retry: every group due now);
 * a message in RAM (being delivered) gets the action at the end of its round (retry: nothing to
 * do). */
void home_ctl(struct home *h, struct home_ctl *c);

/* home_busy: messages in a round, queue writes in flight and writes waiting to be retried. */
unsigned home_busy(const struct home *h);

#endif
