/* ctl — the daemon's side of the control socket (engine/control): the struct ctl_engine table.
 *
 * Why: engine/control serves riptidectl and reads the queue itself; what needs the engine —
 * the counters, suspending a destination, and every action on a message — is here. An action
 * never writes the queue from the control thread: the message is read there, then handed to
 * its home shard (home_ctl), which owns every write of it, so an action and a delivery round
 * can never both write one message. Bulk actions (retry of a destination, clear) stream the
 * queue and keep at most CTL_INFLIGHT actions in flight.
 */
#ifndef RIPTIDE_CTL_H
#define RIPTIDE_CTL_H

#include "engine/daemon/rt.h"

/* rt_ctl_start: start the control socket (cfg.control_socket, "" = <spool>/control.sock).
 * Returns 0 or -errno with a message on stderr. */
int rt_ctl_start(struct rt *rt);

/* rt_ctl_stop: stop it (before the shards stop). NULL server is fine. */
void rt_ctl_stop(struct rt *rt);

#endif
