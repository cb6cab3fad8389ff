/* ctl_fx — the fixture of the control tests: a real RocksDB queue in a temp directory, a
 * small engine table implemented on that queue (its delete really deletes, its retry really
 * moves the sched entries, ...), a control server on a socket in the temp directory, and a
 * runner for the built riptidectl binary (path in $RIPTIDECTL) that captures its output, exit
 * status and peak RSS.
 *
 * Why: the tests drive the real client against the real server over a real socket, and check
 * outcomes in the real queue; only the daemon's side of the engine table is stood in for (the
 * daemon is not part of this module), and it is written on the queue, not mocked.
 */
#ifndef RIPTIDE_TESTS_CONTROL_FX_H
#define RIPTIDE_TESTS_CONTROL_FX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/control/control.h"
#include "queue/queue.h"

#define CFX_MAX_SUSP	8
#define CFX_MAX_BOUNCED 16

/* The engine table's state (the arg of struct ctl_engine). */
struct cfx_engine {
	struct queue *q;
	char suspended[CFX_MAX_SUSP][64];
	size_t nsusp;
	struct queue_id bounced[CFX_MAX_BOUNCED];
	size_t nbounced;
	unsigned calls; /* engine calls made */
	/* summary: backoff reported for destination bo_dest[i] ("": unused); a name with nothing
	 * queued gets a row of its own, as the daemon does */
	char bo_dest[2][64];
	struct ctl_backoff bo[2];
	/* reload: what it answers */
	int reload_ret;
	char reload_msg[1200];
};

struct cfx {
	char dir[64];
	char sock[128];
	struct queue *q;
	struct cfx_engine eng;
	struct ctl_engine table;
	struct ctl_server *srv;
	char *out, *err; /* the last run's stdout / stderr (NUL-terminated) */
	char outpath[128], errpath[128];
	long maxrss_kb; /* the last run's peak RSS */
	char msg[1400];
};

/* cfx_setup / cfx_teardown: cmocka fixture: state gets a struct cfx with an empty queue and a
 * running server on <dir>/ctl.sock / stop, close and remove everything. */
int cfx_setup(void **state);
int cfx_teardown(void **state);

/* cfx_table: the engine table on e (every function set). */
struct ctl_engine cfx_table(struct cfx_engine *e);

/* cfx_put: write e as message (id from e->created_ms and seq), its body of e->body_len
 * bytes, and one sched entry per group with a due time. Returns the id. */
struct queue_id cfx_put(struct cfx *f, const struct queue_env *e, uint64_t seq);

/* cfx_simple: a message from sender created age_ms ago with one pending recipient per
 * address in rcpts (NULL-terminated), grouped by domain, each group due at due_ms. */
struct queue_id cfx_simple(struct cfx *f, uint64_t seq, const char *sender, uint64_t age_ms,
			   uint64_t body_len, const char *const *rcpts, uint64_t due_ms);

/* cfx_bulk: n messages (created a day ago, 1 ms apart; two recipients in two groups due an
 * hour after creation; body_len 2048), written in unsynced batches of 2000. */
void cfx_bulk(struct cfx *f, uint32_t n);

/* cfx_get: message id's envelope (decoded; free with queue_env_free), or NULL if absent. */
struct queue_env *cfx_get(struct cfx *f, const struct queue_id *id);

/* cfx_count: queue_count, asserted to succeed. */
uint64_t cfx_count(struct cfx *f);

/* cfx_run: run riptidectl -s <sock> args... (NULL-terminated); stdout and stderr are in
 * f->out / f->err, the peak RSS in f->maxrss_kb. Returns the exit status (-1 if killed). */
int cfx_run(struct cfx *f, const char *const *args);

/* cfx_run_sock: as cfx_run with another socket path. */
int cfx_run_sock(struct cfx *f, const char *sock, const char *const *args);

/* cfx_lines: number of lines in s. */
size_t cfx_lines(const char *s);

/* cfx_python: run /usr/bin/python3 -c script with f->outpath (the last run's stdout) as
 * argv[1]. Returns its exit status. */
int cfx_python(struct cfx *f, const char *script);

/* cfx_id_hex: the hex form of id in a static ring of buffers. */
const char *cfx_id_hex(const struct queue_id *id);

/* cfx_now: wall clock ms. */
uint64_t cfx_now(void);

#endif
