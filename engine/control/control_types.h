/* control_types — what the files of engine/control/ share (not a public header).
 *
 * Why: the server (control_server.c), the commands (control_cmd.c, control_list.c), the
 * client (control_client.c), the framing and escaping (control_proto.c) and the socket I/O
 * (control_io.c) meet here: the parsed request, the output buffer every command writes its
 * data lines into, and the helpers between them.
 */
#ifndef RIPTIDE_CONTROL_TYPES_H
#define RIPTIDE_CONTROL_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/control/control.h"

#define CTL_PROTO	     "RIPTIDE-CTL/1"
#define CTL_REQ_MAX	     4096	 /* bytes of a request line, LF included */
#define CTL_MAX_ARGS	     16		 /* name=value pairs of a request */
#define CTL_READ_TIMEOUT_MS  5000	 /* the server waits this long for a request */
#define CTL_WRITE_TIMEOUT_MS 30000	 /* and this long for a client to take output */
#define CTL_CHUNK	     (32u << 10) /* list: output gathered per queue scan */
#define CTL_CHUNK_MSGS	     4096u	 /* list: messages read per queue scan at most */
#define CTL_MSG_MAX	     1280	 /* status text (a reload's report fits) */

/* A parsed request: pointers into the caller's line buffer (values percent-decoded). */
struct ctl_req {
	const char *cmd;
	size_t nargs;
	struct {
		const char *name, *value;
	} arg[CTL_MAX_ARGS];
	bool json;
};

/* The answer being written to one client: data lines gathered in buf and flushed to fd. While
 * hold is set (inside a queue scan) nothing is written: buf grows instead, so a slow client
 * never stalls a scan; the caller flushes after the scan. The first write error sticks in err
 * and every later call does nothing. */
struct ctl_out {
	int fd;			 /* the client */
	int stopfd;		 /* readable when the server stops (-1: none) */
	const atomic_bool *stop; /* set when the server stops (NULL: never) */
	char *buf;
	size_t len, cap;
	bool hold;
	bool json;
	int err;
	uint64_t now_ms;       /* wall clock at the start of the request */
	char msg[CTL_MSG_MAX]; /* the status text the command leaves */
};

/* ---- control_proto.c: requests ---- */

/* ctl_req_parse: parse the request line (NUL-terminated, without LF) in place into r.
 * Returns 0, -EPROTO (not version 1) or -EINVAL (malformed; reason in why, wl bytes). */
int ctl_req_parse(char *line, struct ctl_req *r, char *why, size_t wl);

/* ctl_req_arg: the value of argument name, or NULL when absent. */
const char *ctl_req_arg(const struct ctl_req *r, const char *name);

/* ctl_req_only: every argument of r is one of the NULL-terminated names (json always
 * allowed). Returns 0, or -EINVAL with the offending name in o->msg. */
int ctl_req_only(const struct ctl_req *r, const char *const *names, struct ctl_out *o);

/* ctl_req_format: the request line (with LF) for command and args into buf (cap bytes).
 * Returns its length, or -E2BIG when it does not fit CTL_REQ_MAX or cap, -EINVAL for a
 * command or name that is empty or holds a byte outside 0x21..0x7e, '=' or '%'. */
int ctl_req_format(char *buf, size_t cap, const char *command, const struct ctl_arg *args,
		   size_t nargs);

/* ---- control_proto.c: output ---- */

/* ctl_out_init / ctl_out_free: an empty answer to fd / release its buffer. */
void ctl_out_init(struct ctl_out *o, int fd, int stopfd, const atomic_bool *stop, bool json);
void ctl_out_free(struct ctl_out *o);

/* ctl_out_raw / ctl_out_printf: append bytes / formatted text (the caller's own, never data
 * from an envelope: that goes through ctl_out_str). */
void ctl_out_raw(struct ctl_out *o, const char *p, size_t n);
void ctl_out_printf(struct ctl_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ctl_out_str: append s escaped for the answer's mode: JSON: a quoted JSON string; text: the
 * string with control bytes, DEL, C1 controls, backslash and invalid UTF-8 escaped. NULL is
 * written as "". */
void ctl_out_str(struct ctl_out *o, const char *s);

/* ctl_out_line / ctl_out_end: begin a data line ("D ") / end it (LF); after the end, the
 * buffer is flushed when it holds CTL_CHUNK bytes or more and hold is off. */
void ctl_out_line(struct ctl_out *o);
void ctl_out_end(struct ctl_out *o);

/* ctl_out_flush: write everything gathered. Returns 0 or the sticky -errno. */
int ctl_out_flush(struct ctl_out *o);

/* ctl_out_msg: set the status text (printf-style). */
void ctl_out_msg(struct ctl_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ctl_out_status: append the status line for rc (0: OK o->msg; < 0: ERR name o->msg) and
 * flush. Returns as ctl_out_flush. */
int ctl_out_status(struct ctl_out *o, int rc);

/* ctl_errname / ctl_errnum: "ENOENT" for ENOENT (positive), and back (0 if unknown). */
const char *ctl_errname(int e);
int ctl_errnum(const char *name);

/* ---- control_proto.c: human formats ---- */

/* ctl_fmt_dur: a duration ("42s", "5m12s", "3h4m", "2d5h") into buf. */
void ctl_fmt_dur(uint64_t ms, char *buf, size_t len);
/* ctl_fmt_next: a next attempt relative to now ("-" for 0, "now", "in 5m"). */
void ctl_fmt_next(uint64_t due_ms, uint64_t now_ms, char *buf, size_t len);
/* ctl_fmt_size: bytes for a person ("812", "4.5K", "12.0M", "1.2G"). */
void ctl_fmt_size(uint64_t bytes, char *buf, size_t len);
/* ctl_fmt_time: "2024-05-01 12:00:00Z (3m ago)" / "(in 3m)"; "-" for 0. */
void ctl_fmt_time(uint64_t ms, uint64_t now_ms, char *buf, size_t len);

/* ---- control_io.c ---- */

/* ctl_io_wait: poll fd for events and stopfd (if >= 0) for input, at most timeout_ms.
 * Returns 0 (fd ready), -ETIMEDOUT, -ECANCELED (stopfd readable) or -errno. */
int ctl_io_wait(int fd, short events, int stopfd, unsigned timeout_ms);

/* ctl_io_write: write all n bytes to the non-blocking socket fd (MSG_NOSIGNAL), each wait at
 * most timeout_ms. Returns 0 or as ctl_io_wait, or -errno of send. */
int ctl_io_write(int fd, const void *p, size_t n, int stopfd, unsigned timeout_ms);

/* ctl_io_read: read up to n bytes from the non-blocking socket fd, waiting at most
 * timeout_ms. Returns bytes read (0 = end of stream) or as ctl_io_wait, or -errno of recv. */
ssize_t ctl_io_read(int fd, void *p, size_t n, int stopfd, unsigned timeout_ms);

/* ctl_io_connect: a non-blocking UNIX stream socket connected to path (waiting at most
 * timeout_ms). Returns the fd, or -errno (-ENAMETOOLONG for a path that does not fit). */
int ctl_io_connect(const char *path, unsigned timeout_ms);

/* ---- control_cmd.c / control_list.c: the commands ---- */

/* A command: reads its arguments from r, writes data lines to o and the status text to
 * o->msg. Returns 0 or -errno (the status line then says ERR). */
typedef int (*ctl_cmd_fn)(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o);

int ctl_cmd_summary(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o);
int ctl_cmd_delete(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o);
int ctl_cmd_bounce(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o);
int ctl_cmd_retry(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o);
int ctl_cmd_suspend(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o);
int ctl_cmd_resume(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o);
int ctl_cmd_clear(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o);
int ctl_cmd_reload(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o);
int ctl_cmd_list(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o);
int ctl_cmd_show(const struct ctl_engine *e, const struct ctl_req *r, struct ctl_out *o);

#endif
