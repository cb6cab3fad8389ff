/* sink — shared types of riptide-sink (CLI/threads in sink_main.c, SMTP behaviour in
 * sink_hooks.c).
 *
 * Why: riptide-sink is a test and benchmark receiver built on engine/smtpd; its two files share
 * the options, the per-worker counters and log buffer, and the hook table.
 */
#ifndef RIPTIDE_SINK_H
#define RIPTIDE_SINK_H

#include "engine/loop/loop.h"
#include "engine/smtpd/smtpd.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SINK_MAX_LISTEN 16
#define SINK_LOG_FLUSH	(64u * 1024u) /* flush the per-worker log buffer beyond this */

struct sink_opts {
	const char *listen[SINK_MAX_LISTEN];
	unsigned nlisten;
	unsigned threads;
	const char *out_path; /* -o */
	const char *dir;      /* -d */
	const char *stats;    /* -c */
	int greet_code;	      /* -g, 0 = normal greeting */
	uint64_t drop_after;  /* -x */
	bool drop;
	uint64_t delay_ms; /* -w */
	uint64_t max_size; /* -s */
	bool quiet;	   /* -q */
};

/* Counters of one worker: written by its thread only, read by the main thread. */
struct sink_counters {
	atomic_uint_fast64_t messages, recipients, bytes, connections, rejected;
};

struct sink_worker {
	unsigned idx;
	pthread_t tid;
	struct loop *l;
	struct smtpd_worker *sw;
	struct smtpd_server *srv;
	struct sink_counters c;
	char *log;
	size_t log_len, log_cap;
	struct loop_op flush_op;
	struct loop_msg stop_msg;
	bool stopping;
	int err;
	sem_t *ready;
};

/* Per-session owner data (smtpd session_data_size). */
struct sink_sess {
	struct smtpd_session *s;
	struct loop_op delay_op;
	int data_code; /* 0, 450 or 550: the verdict for the end of DATA */
};

/* Process-wide state. */
struct sink {
	struct sink_opts o;
	int out_fd;		      /* -o file, O_APPEND, or -1 */
	atomic_uint_fast64_t eml_seq; /* -d file numbering */
};

extern struct sink sink_g;

/* sink_hooks: the smtpd hook table implementing the per-recipient behaviours (sink_hooks.c). */
extern const struct smtpd_hooks sink_hooks;

/* sink_log_flush: write w's buffered -o lines to the output file (loop thread of w, or after
 * it stopped). */
void sink_log_flush(struct sink_worker *w);

/* sink_fnv1a64: FNV-1a 64 of the n bytes at p. */
uint64_t sink_fnv1a64(const void *p, size_t n);

/* sink_fail_seen: count one more sighting of addr for "fail<N>-" and return how many times it
 * was seen before this one (process-wide, thread-safe). */
unsigned sink_fail_seen(const char *addr);

/* sink_fail_free: free the sightings table at exit. */
void sink_fail_free(void);

#endif
