/* riptidectl.h — what the files of riptidectl share (not a public header).
 *
 * Why: riptidectl.c holds main and test-dns; riptidectl_queue.c the queue commands;
 * riptidectl_route*.c test-route (riptidectl_conn.c its connection). They meet here: the global
 * options, the entry points and test-dns's lookup, which test-route reuses.
 */
#ifndef RIPTIDE_RIPTIDECTL_H
#define RIPTIDE_RIPTIDECTL_H

#include "dns/dns.h"
#include "engine/config/config.h"

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

/* riptidectl_reload: run `reload` (argc words after it: none) against the running daemon:
 * it reads its configuration file again and says what it applied (stdout), or why it refused
 * the file (stderr; the running configuration is kept). Returns the exit code: 0 reloaded,
 * 1 refused (or the daemon did not answer in time), 2 usage, configuration or no daemon. */
int riptidectl_reload(const struct riptidectl_opts *o, int argc, char **argv);

/* riptidectl_queue_usage: the queue commands' lines of the usage text, to f. */
void riptidectl_queue_usage(FILE *f);

/* riptidectl_route: run `test-route argv...` (argc words after "test-route") with the
 * configuration o->config: resolve, connect and talk to the relay or DOMAIN's MX hosts, each
 * step printed to stdout. Returns the exit code: 0 the route works (RCPT accepted), 1 it does
 * not (the last line names the failing step), 2 usage or configuration error. */
int riptidectl_route(const struct riptidectl_opts *o, int argc, char **argv);

/* riptidectl_route_usage: test-route's lines of the usage text, to f. */
void riptidectl_route_usage(FILE *f);

/* riptidectl_dns_opts: the resolver options of configuration c, asking `servers`. */
void riptidectl_dns_opts(const struct config *c, struct dns_opts *o, const char *servers);

/* riptidectl_lookup: resolve domain's MX hosts (host_only: its own A/AAAA, dns_resolve_host)
 * through a fresh resolver with opts; *ms gets the time taken. Returns the result (caller
 * frees with dns_mx_result_free) or NULL with a message on stderr. */
struct dns_mx_result *riptidectl_lookup(const struct dns_opts *opts, const char *domain,
					bool host_only, double *ms);

/* riptidectl_print_hosts: r's hosts in try order with their addresses and TTLs, to stdout. */
void riptidectl_print_hosts(const struct dns_mx_result *r);

#endif
