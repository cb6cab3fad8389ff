/* susp — destinations an operator suspended (`riptidectl queue suspend DEST`).
 *
 * Why: an operator who sees a receiver blocking or a route misbehaving stops delivery to it
 * without touching the queue: the runner leaves its entries on disk and fresh mail for it
 * waits there too; `resume` rewinds the runner so it all goes. The set is small (operator
 * actions), read by the runner per entry and by the shards per fresh group: a lock-free count
 * keeps the common case (nothing suspended) to one atomic load. Suspensions live in RAM: a
 * restart resumes everything (logged when set and cleared).
 */
#ifndef RIPTIDE_SUSP_H
#define RIPTIDE_SUSP_H

#include <stdbool.h>
#include <stddef.h>

struct susp;

struct susp *susp_new(void);
void susp_free(struct susp *s);

/* susp_set: (any thread) suspend (on) or resume dest (case-insensitive). Returns true if that
 * changed anything. */
bool susp_set(struct susp *s, const char *dest, bool on);

/* susp_has: (any thread) whether dest is suspended. */
bool susp_has(struct susp *s, const char *dest);

/* susp_has_sval: susp_has for the destination named in a sched value. */
bool susp_has_sval(struct susp *s, const void *sval, size_t len);

#endif
