/* riptidectl.h — what the files of riptidectl share (not a public header).
 *
 * Why: riptidectl.c holds main and test-dns; riptidectl_queue.c the queue commands. They meet
 * here: the global options and the queue entry point.
 */
#ifndef RIPTIDE_RIPTIDECTL_H
#define RIPTIDE_RIPTIDECTL_H

#include <stdbool.h>
#include <stdio.h>

/* The options before the command. */
struct riptidectl_opts {
	const char *config;  /* -c FILE, NULL = defaults */
	const char *socket;  /* -s PATH: the control socket, NULL = from the configuration */
	bool json;	     /* --json before the command */
	unsigned timeout_ms; /* -t SECONDS: bound of each wait for the daemon */
};

/* riptidectl_queue: run `queue argv[0] ...` (argc >= 0 words after "queue") against the
 * running daemon; the answer goes to stdout, errors to stderr. Returns the exit code: 0 done,
 * 1 the daemon said no, 2 usage, configuration or no daemon to talk to. */
int riptidectl_queue(const struct riptidectl_opts *o, int argc, char **argv);

/* riptidectl_queue_usage: the queue commands' lines of the usage text, to f. */
void riptidectl_queue_usage(FILE *f);

#endif
