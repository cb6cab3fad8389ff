/* ready — how many delivery units wait at each destination, shared by every thread, so the
 * runner can leave a full destination's schedule entries on disk.
 *
 * Why: the runner loads due (message, destination) entries into RAM; a destination that is dead,
 * tarpitting or throttled must not take the whole memory budget and starve the others. Each
 * destination name has a counter of units queued or in flight there (fresh mail included);
 * the runner reads the destination name from the sched value, skips an entry whose destination
 * holds max units (remembering the earliest due it skipped) and loads the rest. When the
 * destination drains to half of max or less, whoever releases the unit gets that due back and
 * rewinds the runner to it: nothing skipped is passed over for long, and a backlog for one
 * destination is never re-read on every scan.
 *
 * Entries are created on first use and live until ready_free (one per destination seen).
 */
#ifndef RIPTIDE_READY_H
#define RIPTIDE_READY_H

#include <stdbool.h>
#include <stdint.h>

struct ready;
struct ready_dest;

/* ready_new: an empty registry; max: units per destination before the runner skips it
 * (>= 1). */
struct ready *ready_new(unsigned max);
void ready_free(struct ready *r);

/* ready_get: the entry for destination `name` (any thread; created if missing). */
struct ready_dest *ready_get(struct ready *r, const char *name);

/* ready_admit: a unit for rd wants into RAM (the runner loading it, or fresh mail): counted and
 * true if rd holds fewer than max units (fresh mail: 2 * max: new mail has a share of its own,
 * so a backlog loaded after a restart does not keep it waiting on disk behind itself), else
 * false and due remembered (the earliest skipped due is kept) so the runner comes back to it
 * when rd drains. */
bool ready_admit(struct ready *r, struct ready_dest *rd, uint64_t due, bool fresh);

/* ready_block / ready_blocked: (runner thread only) a runner scan (numbered from 1) found rd
 * full: later entries of rd in that scan are left on disk too, even if a unit leaves
 * meanwhile, so rd's mail is loaded in due order (the rewind to rd's earliest skipped due
 * picks them up in order). */
void ready_block(struct ready_dest *rd, uint64_t scan);
bool ready_blocked(const struct ready_dest *rd, uint64_t scan);

/* ready_add: count a unit regardless of max (one that was not admitted on its own), any
 * thread. */
void ready_add(struct ready_dest *rd);

/* ready_release: a unit of rd has left its destination. Returns the earliest due skipped while
 * rd was full if rd has drained to half of max or less (the caller rewinds the runner to it),
 * else 0. Each skipped due is returned once. */
uint64_t ready_release(struct ready *r, struct ready_dest *rd);

/* ready_count: units counted at rd now. */
unsigned ready_count(const struct ready_dest *rd);

#endif
