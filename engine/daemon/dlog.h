/* dlog — the delivery log: one line per delivery outcome (and per daemon event), to a file or
 * stderr.
 *
 * Why: operators grep this file. Each shard appends to its own buffer (no lock on the hot path)
 * and flushes it once per loop iteration as one io_uring write on an O_APPEND descriptor (the
 * shard never blocks on the disk), so lines from different shards never interleave mid-line.
 *
 * Line format (space-separated key=value after the time and the message id):
 *   2026-11-22T10:00:00.123Z <msgid> status=delivered to=<rcpt> relay=<host:port> code=250
 *     dsn=2.0.0 attempts=1 delay=0.120 reply="250 2.0.0 Ok"
 * status is one of: queued, delivered, deferred, failed (one line per recipient outcome; queued
 * once per message). Lines about the daemon rather than a recipient carry event= instead of
 * status=: relay-unreachable, queue-write-failed, queue-write-recovered, queue-write-abandoned,
 * log-lines-dropped.
 * A shard never blocks on the log: when the disk is slow the buffer grows (bounded), beyond that
 * lines are dropped and counted (event=log-lines-dropped).
 */
#ifndef RIPTIDE_DLOG_H
#define RIPTIDE_DLOG_H

#include "engine/loop/loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dlog;
struct dlog_buf;

/* dlog_open: "stderr" or a path (created 0640, appended). Returns 0 or -errno. */
int dlog_open(const char *where, struct dlog **out);
void dlog_close(struct dlog *d);

/* dlog_reopen: (any thread) point the log at `where` again — the same path after logrotate
 * moved the file, or a new one. Returns 0 or -errno (the old target is kept). */
int dlog_reopen(struct dlog *d, const char *where);

/* dlog_buf_new: a per-thread line buffer; with a loop, flushes are io_uring writes on it (call
 * only on that loop's thread), without one they are write(2). */
struct dlog_buf *dlog_buf_new(struct dlog *d, struct loop *l);

/* dlog_buf_free: write what is buffered (synchronously) and free; no write may be in flight. */
void dlog_buf_free(struct dlog_buf *b);

/* dlog_busy: an io_uring write of this buffer is in flight. */
bool dlog_busy(const struct dlog_buf *b);

/* dlog_line: append one line: time + id + printf-formatted rest + '\n'. */
void dlog_line(struct dlog_buf *b, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* dlog_flush: start writing the buffered lines (one write; a no-op while one is in flight). */
void dlog_flush(struct dlog_buf *b);

/* dlog_quote: copy s into out as a log-safe quoted value (no quotes, CR, LF or control
 * characters; truncated to outlen). Returns out. */
const char *dlog_quote(const char *s, size_t len, char *out, size_t outlen);

#endif
