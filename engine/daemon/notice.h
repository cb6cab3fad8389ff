/* notice — delivery status notifications riptide makes itself: failure notices, delay
 * warnings and "relayed" success reports (RFC 3464, built by engine/dsn).
 *
 * Why: a notice must exist exactly when the original's outcome is recorded: a failure that is
 * written without its notice loses the bounce, a notice written without the failure bounces
 * twice after a crash. So notices are made on the commit thread, inside the fill of the
 * original's final write: the notice's put (meta, body, sched entries due now) and the
 * original's update or delete are one atomic batch. This is riptide's internal enqueue path:
 * no SMTP session, no shard; the runner picks the notice up from `sched` like any due mail.
 * The body of the original is read from the queue here when it is not in RAM (blocking reads
 * are fine on the commit thread). A message from the null sender or a notice itself never
 * causes a notice.
 */
#ifndef RIPTIDE_NOTICE_H
#define RIPTIDE_NOTICE_H

#include "engine/config/config.h"
#include "engine/daemon/dlog.h"
#include "engine/daemon/msg.h"
#include "queue/queue.h"

struct notice;

struct notice_env {
	const struct config *cfg;
	struct queue *q;
	const char *relay_name; /* relay mode: the destination name of every notice */
	/* route_split as the routes installed now say (NULL: relay or recipient domain only) */
	int (*split)(void *arg, const char *const *rcpts, unsigned n, uint16_t *group,
		     unsigned *first, char **names);
	void *split_arg;
	struct dlog *log;
};

/* notice_new: load the templates (cfg->dsn_templates, "" = built-in). Returns 0 or -errno
 * with the reason (file:line for a broken template) in err. */
int notice_new(const struct notice_env *env, struct notice **out, char *err, size_t errlen);

/* notice_free: NULL is fine. */
void notice_free(struct notice *n);

/* notice_marked: whether m's round marked a recipient for a notice (msg.fresh), whoever the
 * sender. */
bool notice_marked(const struct msg *m);

/* notice_due: whether m's round made a notice due (its msg.fresh marks) that may be sent: not
 * for the null sender nor for a notice. */
bool notice_due(const struct msg *m);

/* notice_fill: (commit thread) build the notices m's round made due (none unless notice_due)
 * and add each as a new
 * message to b: one failure notice for all its failed recipients (a copy to postmaster when
 * set), one delay warning, one relayed report. The notices' bytes are kept in m (freed with it
 * or by the next fill) until the batch is written. Returns the number of notices added. */
unsigned notice_fill(struct notice *n, struct msg *m, struct queue_batch *b);

/* notice_bytes: bytes of the notices the last notice_fill added for m (queue counters). */
uint64_t notice_bytes(const struct msg *m);

#endif
