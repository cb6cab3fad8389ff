/* resident — the set of message ids currently held in RAM, and the bytes they hold.
 *
 * Why: the runner scans `sched` for due messages; a message that a shard already holds (freshly
 * injected, or loaded earlier and still being delivered) must not be loaded a second time. The
 * set is a striped-lock hash of intrusive chains (struct msg.res_next): no allocation per
 * message, and shards and the runner rarely touch the same stripe.
 */
#ifndef RIPTIDE_RESIDENT_H
#define RIPTIDE_RESIDENT_H

#include "engine/daemon/msg.h"

#include <stdbool.h>

struct resident;

/* resident_new / resident_free: the set (empty); resident_free does not free messages. */
struct resident *resident_new(void);
void resident_free(struct resident *r);

/* resident_cost: the bytes m holds in RAM as the memory budget counts them: body, encoded and
 * decoded envelope, the struct and its per-recipient and per-group arrays. */
uint64_t resident_cost(const struct msg *m);

/* resident_add: insert m (its id must not be present) and count its cost (resident_cost). */
void resident_add(struct resident *r, struct msg *m);

/* resident_claim: resident_add unless a message with m's id is resident already (checked and
 * added under one lock: the runner and an operator's action never both load one message).
 * Returns true if m was added. */
bool resident_claim(struct resident *r, struct msg *m);

/* resident_del: remove m (must be present) and uncount its bytes. */
void resident_del(struct resident *r, struct msg *m);

/* resident_has: whether a message with this id is in RAM. */
bool resident_has(struct resident *r, const struct queue_id *id);

/* resident_bytes / resident_count: current totals. */
uint64_t resident_bytes(const struct resident *r);
uint64_t resident_count(const struct resident *r);

#endif
