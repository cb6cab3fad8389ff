/* dnsmasq_fx — start and stop a real dnsmasq on 127.0.0.1 (ephemeral port) for dns/ tests,
 * and count the queries its --log-queries log shows.
 */
#ifndef RIPTIDE_TEST_DNSMASQ_FX_H
#define RIPTIDE_TEST_DNSMASQ_FX_H

#include <sys/types.h>

struct dnsmasq {
	pid_t pid; /* a watchdog that runs dnsmasq and stops it with us (see dnsmasq_fx.c) */
	int wfd;   /* write end of the watchdog's pipe, held by the test only */
	int port;
	char dir[64];  /* temp dir holding the log */
	char log[128]; /* query log path */
};

/* dnsmasq_start: run dnsmasq with the base options plus ARGS (NULL-terminated) and wait until
 * it accepts TCP on its port. Returns 0 or -1. */
int dnsmasq_start(struct dnsmasq *m, const char *const *args);

/* dnsmasq_stop: SIGTERM, reap, remove the temp dir (and a resolv.conf a test put there). */
void dnsmasq_stop(struct dnsmasq *m);

/* dnsmasq_queries: lines "query[TYPE] NAME from" (or "auth[...]") in the log. */
int dnsmasq_queries(const struct dnsmasq *m, const char *type, const char *name);

/* dnsmasq_free_port: a port free on 127.0.0.1 for both UDP and TCP right now (nobody on it). */
int dnsmasq_free_port(void);

#endif
