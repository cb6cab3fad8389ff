/* control — the control socket: a thread in the daemon that answers `riptidectl queue ...`
 * while riptide runs, and the client side of the same protocol (used by riptidectl).
 *
 * Why: an operator must see and act on the queue without stopping the daemon. The control
 * thread is not a shard: it may block (RocksDB reads, waiting for the engine), so it lives on
 * its own thread and serves one client at a time. `list` and `show` read the queue directly
 * (queue_scan_meta, queue_get: the shards are not bothered by a listing of a million
 * messages); `summary` and every action go through the engine's table (struct ctl_engine),
 * which the daemon implements. Both ends of the protocol live here so they cannot drift.
 *
 * ---- Protocol, version 1 ----
 * A UNIX stream socket, mode 0600 (owner only; peers whose uid is neither ours nor root are
 * refused). One request per connection; the server closes after its answer.
 *
 *   request  = "RIPTIDE-CTL/1" SP command *(SP name "=" value) LF     (4096 bytes at most)
 *   value    = bytes 0x21..0x7e except "%"; any other byte as "%" HEX HEX
 *   response = *("D" SP data LF) status LF
 *   status   = "OK" [SP text]  |  "ERR" SP errname SP text        (errname: ENOENT, EINVAL, ...)
 *
 * The server reads the request within 5 s. A data line carries one line of output, already
 * formatted by the server: for a person (text), or with json=1 one JSON object (so the data
 * lines of a JSON answer are JSON Lines: one object per line). A data line never holds CR, LF
 * or NUL, so it can never be taken for a status line: strings from envelopes (addresses,
 * replies, ENVID) are escaped — in text as "\\" and "\xNN" for control bytes, DEL, C1 controls
 * and invalid UTF-8; in JSON with JSON escapes, an invalid UTF-8 byte as "\u00NN" (the output
 * is always valid UTF-8). Times in JSON are wall-clock ms since the epoch, 0 = none/unknown.
 * An unknown version is answered "ERR EPROTO"; an unknown command or argument "ERR EINVAL".
 *
 * Commands (names of arguments after the command; every command takes json=1):
 *   summary                 totals, then one row per destination, messages descending.
 *                           JSON: {"type":"totals",messages,recipients,bytes,counting}, then
 *                           {"type":"destination",name,messages,recipients,bytes,oldest_ms,
 *                           next_ms,suspended,backoff} per destination. backoff is null, or
 *                           {action:"suspend"|"reduce",rule,until_ms,factor,source}: an
 *                           adaptive backoff ([backoff] rule) running for the destination
 *                           (source "" = the default source). Text: the STATE column says
 *                           "suspended" (by the operator), else "backoff:suspend(RULE) 4m12s
 *                           left" / "backoff:reduce 0.50(RULE) 3m left", else "active". A
 *                           destination with a running backoff and nothing queued has a row
 *                           too (0 messages).
 *   list [dest=D] [sender=S] [rcpt=R] [older=MS] [limit=N]
 *                           one line per message in id (creation) order: id, age, size,
 *                           pending/total recipients, next attempt, sender. dest matches a
 *                           destination group with pending recipients; sender and rcpt match a
 *                           whole address if they hold "@", else the domain ("<>" = the null
 *                           sender); all case-insensitive; rcpt matches any recipient; older =
 *                           created at least MS ms ago. Streams: the server reads the queue in
 *                           chunks of ~32 KiB of output (one envelope decoded at a time) and
 *                           writes each chunk outside the scan; each chunk is its own snapshot,
 *                           so a message queued during a listing may or may not appear, and
 *                           none appears twice. JSON: {id,created_ms,age_s,size,sender,pending,
 *                           recipients,next_ms,destinations:[...]}; OK text: "N messages".
 *   show id=ID              the envelope, each recipient and each destination group. JSON: one
 *                           object {id,sender,created_ms,size,flags:[..],envid,ret,recipients:
 *                           [{address,state,destination,attempts,last_code,last_enh,last_reply,
 *                           last_mta,last_ms,notify:[..],orcpt}],destinations:[{name,attempts,
 *                           next_ms}]}.
 *   delete id=ID | bounce id=ID | retry id=ID | retry dest=D | retry all=1
 *   suspend dest=D | resume dest=D | clear yes=1 (refused without yes=1)
 *                           text: the OK line says what was done; JSON: one data line
 *                           {"action":..., "id"|"destination"|"count":...}.
 *   reload                  read the configuration file again, as SIGHUP does, and wait for
 *                           the outcome: OK with what was applied ("reloaded FILE: ..."), or
 *                           ERR EINVAL with why the file was refused (it names file:line; the
 *                           running configuration is kept), ERR ETIMEDOUT when the daemon did
 *                           not answer in time. JSON: one data line {"action":"reloaded",
 *                           "message":...} on success.
 */
#ifndef RIPTIDE_CONTROL_H
#define RIPTIDE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "queue/queue.h"

/* One destination's row of `queue summary`, handed to a ctl_dest_fn (valid during the call). */
struct ctl_dest_stat {
	const char *name;
	uint64_t messages;   /* messages with recipients pending for this destination */
	uint64_t recipients; /* pending recipients */
	uint64_t bytes;	     /* body bytes of those messages */
	uint64_t oldest_ms;  /* creation (wall ms) of its oldest message, 0 = unknown */
	uint64_t next_ms;    /* its earliest next attempt (wall ms), 0 = unknown */
	bool suspended;	     /* by the operator (queue suspend) */
	/* The adaptive backoff running for the destination (engine/shape), if any: action NULL
	 * when none. When several egress sources of the destination have one, the engine
	 * reports the strongest (a suspension over a reduction; the later end; the lower
	 * factor). The strings are valid during the ctl_dest_fn call only. */
	struct ctl_backoff {
		const char *action; /* "suspend" or "reduce"; NULL: no backoff */
		const char *rule;   /* the [backoff] rule that acted */
		const char *source; /* its egress source address, "" = the default source */
		uint64_t until_ms;  /* wall ms it ends (reduce: when the factor is back at 1.0) */
		double factor;	    /* rates and connections kept now, in (0, 1] */
	} backoff;
};

struct ctl_totals {
	uint64_t messages, recipients, bytes;
	bool counting; /* still being counted after a start */
};

/* Called once per destination by ctl_engine.summary; nonzero: stop. */
typedef int (*ctl_dest_fn)(void *cookie, const struct ctl_dest_stat *s);

enum ctl_act { CTL_ACT_DELETE, CTL_ACT_BOUNCE, CTL_ACT_RETRY };

/* What the daemon gives the control thread. Every function is called from the control thread
 * only, one call at a time; a NULL function makes its commands answer ERR ENOSYS. */
struct ctl_engine {
	void *arg;
	struct queue *q; /* list and show read the queue directly: queue_scan_meta, queue_get */
	/* Fill *t and call fn per destination (any order; the server sorts). 0 or -errno. */
	int (*summary)(void *arg, struct ctl_totals *t, ctl_dest_fn fn, void *cookie);
	/* Delete (no notice), bounce (fail now, with notice) or retry now one message; blocks
	 * until done. 0, -ENOENT (no such message) or -errno. */
	int (*message)(void *arg, enum ctl_act a, const struct queue_id *id);
	/* Make the groups of dest (NULL = all) due now. Returns how many, or -errno. */
	int64_t (*retry)(void *arg, const char *dest);
	/* Suspend (on) or resume delivery to dest. 0 or -errno. */
	int (*suspend)(void *arg, const char *dest, bool on);
	/* Delete every queued message, no notices. Returns how many, or -errno. */
	int64_t (*clear)(void *arg);
	/* Reload the configuration file (as SIGHUP) and wait for the outcome; msg (len bytes,
	 * NUL-terminated) says what happened. 0, -EINVAL (the file was refused; the running
	 * configuration is kept), -ETIMEDOUT or -errno. */
	int (*reload)(void *arg, char *msg, size_t len);
};

struct ctl_server;

/* ctl_start: listen on the UNIX socket at path (created mode 0600, never wider; a stale socket
 * file nobody listens on is replaced; a live one, or a file that is not a socket, is an
 * error) and start the control thread serving eng (copied; eng->arg and eng->q must outlive
 * the server). Returns 0 with *out set, or a negative errno with a message in err (errlen
 * bytes): -ENAMETOOLONG (path too long), -ENOENT (its directory is missing), -EADDRINUSE
 * (another process serves it), -EEXIST (not a socket), or what socket/bind/listen said. */
int ctl_start(const char *path, const struct ctl_engine *eng, struct ctl_server **out, char *err,
	      size_t errlen);

/* ctl_stop: stop the thread (an engine call in progress finishes first; a client being
 * served is dropped), close and unlink the socket (if it is still ours), free s. NULL is
 * fine. */
void ctl_stop(struct ctl_server *s);

/* ctl_socket_path: the control socket path from the config: control_socket itself
 * (optionally "unix:"-prefixed), or "<spool>/control.sock" when it is "". The daemon and
 * riptidectl both use this. Returns 0, or -ENAMETOOLONG when the result does not fit len
 * bytes or a socket address. */
int ctl_socket_path(const char *control_socket, const char *spool, char *out, size_t len);

/* A request argument for ctl_call: name=value (value NULL is sent as "1"). */
struct ctl_arg {
	const char *name, *value;
};

/* ctl_call: connect to the control socket at path, send command with args, and copy each data
 * line of the answer (the output, without the framing, with its LF) to out as it arrives (in
 * constant memory). timeout_ms bounds each wait for the server (connect, send, each read).
 * Returns 0 (the server said OK; its text, maybe "", in msg), a positive errno (the server
 * said ERR: ENOENT for an unknown id, EPROTO for a version it does not speak, ...; its text
 * in msg), or a negative errno (could not connect, send, or the answer broke off; the reason
 * in msg). msg gets msglen bytes at most, always NUL-terminated. */
int ctl_call(const char *path, const char *command, const struct ctl_arg *args, size_t nargs,
	     unsigned timeout_ms, FILE *out, char *msg, size_t msglen);

#endif
