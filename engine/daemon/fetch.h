/* fetch — the body reader thread: loads a queued message's body from RocksDB when a session is
 * about to send it.
 *
 * Why: RAM holds what can be sent soon. The runner loads only envelopes into the destinations'
 * ready queues; a body is read when a session is about to take the transaction (fresh mail
 * keeps the body it was injected with). Reads block, so they run here, never on a shard: a
 * shard posts a request and gets the completion back through its loop's mailbox.
 */
#ifndef RIPTIDE_FETCH_H
#define RIPTIDE_FETCH_H

#include "engine/loop/loop.h"
#include "queue/queue.h"

struct fetch;

/* A request; the poster owns it until done.fn runs on `loop`, with result 0 and body/len set
 * (malloc'ed, the receiver frees it) or a negative errno (-ENOENT: no such message). */
struct fetch_req {
	struct fetch_req *next;
	struct queue_id id;
	char *body;
	size_t len;
	int result;
	struct loop *loop;
	struct loop_msg done;
};

/* fetch_start: start the thread over q. Returns 0 or -errno. */
int fetch_start(struct queue *q, struct fetch **out);

/* fetch_post: queue a request (any thread). */
void fetch_post(struct fetch *f, struct fetch_req *r);

/* fetch_free: finish the requests already posted, stop the thread and free f. NULL is fine. */
void fetch_free(struct fetch *f);

#endif
