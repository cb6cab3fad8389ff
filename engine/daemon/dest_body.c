/* dest_body — bodies read from the queue when a session is about to send them (see fetch.h).
 *
 * A unit the runner loaded has only its envelope in RAM. When a destination looks for a job to
 * hand a session and finds one whose body is not in RAM, it asks the fetch thread for it (a few
 * reads at a time: one more than its sessions) and takes the next sendable job meanwhile; the
 * completion pumps the destination. The read holds the unit (jobs_out) so a shutdown that ends
 * its jobs cannot free it under the read. A failed read defers the unit's queued jobs.
 */
#include "engine/daemon/dest_int.h"

#include <string.h>

/* The read failed: end u's jobs queued at d with a local error. */
static void dest_body_failed(struct dest *d, struct unit *u, int err)
{
	char why[96];

	if (!d)
		return;
	snprintf(why, sizeof(why), "cannot read the message body from the queue (%s)",
		 strerror(-err));
	for (struct job *j = d->head, *next; j; j = next) {
		next = j->next;
		if (j->u != u)
			continue;
		job_unlink(d, j);
		for (unsigned k = 0; k < j->n; k++)
			dest_record_err(d, u, j->idx[k], why);
		job_end(d, j);
	}
}

static void dest_body_done(struct loop *l, struct loop_msg *lm)
{
	struct unit *u = container_of(lm, struct unit, freq.done);
	struct dest *d = u->fetch_dest;

	(void)l;
	d->fetching--;
	if (u->freq.result == 0) {
		u->body = u->freq.body;
		u->body_len = u->freq.len;
		u->body_state = UNIT_BODY_READY;
	} else { /* its jobs may have moved to the fallback relay meanwhile */
		u->body_state = UNIT_BODY_FAILED;
		dest_body_failed(d, u, u->freq.result);
		dest_body_failed(d->fb, u, u->freq.result);
	}
	dest_unit_put(d, u);
	if (!d->shutting)
		dest_pump(d);
	if (d->fb && !d->fb->shutting)
		dest_pump(d->fb);
}

void dest_body_fetch(struct dest *d, struct unit *u)
{
	if (d->fetching > d->nsess || d->shutting)
		return;
	u->body_state = UNIT_BODY_FETCHING;
	u->fetch_dest = d;
	u->jobs_out++;
	memset(&u->freq, 0, sizeof(u->freq));
	u->freq.id = u->m->id;
	u->freq.loop = d->env.loop;
	u->freq.done.fn = dest_body_done;
	d->fetching++;
	fetch_post(d->env.rt->fetch, &u->freq);
}
