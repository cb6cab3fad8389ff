/* rt — the daemon-wide context shared (read-mostly) by the main thread and every shard.
 *
 * Why: one struct names everything a shard may reach outside itself: the configuration, the
 * queue, the commit thread, the resident set, the runner, the log and the other shards. Only
 * the atomics in it change after start-up.
 */
#ifndef RIPTIDE_RT_H
#define RIPTIDE_RT_H

#include "engine/config/config.h"
#include "tls/tls.h"
#include "engine/daemon/commit.h"
#include "engine/daemon/dlog.h"
#include "engine/daemon/fetch.h"
#include "engine/daemon/fetch.h"
#include "engine/daemon/ready.h"
#include "engine/daemon/resident.h"
#include "engine/daemon/runner.h"
#include "dns/dns.h"
#include "engine/util/util.h"
#include "queue/queue.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

struct shard;
struct notice;
struct qstat;
struct susp;
struct ctl_server;
struct smtpd_server;
struct auth;
struct snap;
struct shape_table;

/* A resolver made for routes whose DNS settings differ from [delivery]'s (main thread only;
 * kept until exit, so no shard ever waits for a resolver thread to stop). */
struct rt_dns {
	struct dns_opts opts; /* servers and resolv_conf point into key */
	char key[2 * CONFIG_STR];
	struct dns *dns;
};

struct rt {
	struct config cfg;
	struct queue *q;
	struct commit *commit;
	struct resident *res;
	struct ready *ready;   /* units per destination (ready.h) */
	struct fetch *fetch;   /* body reader thread (fetch.h) */
	struct runner *runner; /* NULL when outgoing is disabled */
	struct dlog *log;
	struct shard **shards;
	unsigned nshards;
	struct util_addr relay; /* relay mode: the relay, when given as an address */
	char relay_name[300];	/* its printable form: "ip:port" or "host:port" */
	char relay_host[256];	/* a relay given by host name (resolved through dns/), else "" */
	unsigned relay_port;
	struct util_addr fallback; /* independent mode: fallback_relay, if fallback_name[0] */
	char fallback_name[300];
	char fallback_host[256]; /* given by host name, else "" */
	unsigned fallback_port;
	struct dns *dns;	    /* resolver (independent mode), NULL otherwise */
	struct notice *notice;	    /* DSN maker, used on the commit thread (notice.h) */
	struct qstat *qstat;	    /* queue counters (qstat.h) */
	struct susp *susp;	    /* destinations the operator suspended (susp.h) */
	struct ctl_server *ctl;	    /* the control socket (ctl.h) */
	sem_t all_up;		    /* posted once per shard when every shard is up (rt_start) */
	struct smtpd_server *srv;   /* injection listeners (TCP and/or UNIX), shared by shards */
	struct tls_ctx *tls_client; /* outbound TLS (rtls.c), NULL with tls = none */
	struct tls_ctx *tls_server; /* injection STARTTLS / tls_listen, NULL without tls_cert */
	struct auth *auth;	    /* AUTH users and verifier thread (auth.h), NULL: no AUTH */
	struct util_net *trusted;   /* trusted_networks, parsed (smtpd's policy reads them) */
	unsigned ntrusted;
	atomic_uint out_conns; /* outbound connections open, all shards (cap: max_connections) */
	atomic_uint_fast64_t slot_denied_ms; /* monotonic ms a destination last found no slot */
	atomic_uint slow_conns;	   /* of which to slow destinations (at most half the cap) */
	pthread_mutex_t snap_lock; /* guards snap (snap.c) */
	struct snap *snap;	   /* the configuration snapshot installed now (snap.h) */
	struct shape_table *shape; /* throttles and backoff per (source, destination) */
	struct rt_dns *xdns;	   /* resolvers of routes with their own DNS settings */
	unsigned nxdns;
	/* `riptidectl reload`: the control thread asks (reload_asked++ and SIGHUP), the main
	 * thread reloads and answers (reload_done = the asks it served, reload_msg) */
	pthread_mutex_t reload_lock;
	pthread_cond_t reload_cond;
	uint64_t reload_asked, reload_done;
	int reload_ret;
	char reload_msg[1024];
	atomic_bool stopping;
	atomic_bool outgoing; /* cfg.outgoing, changeable by a reload (SIGHUP) */
};

/* main.c */
/* rt_dns_opts: the resolver options of settings c. */
void rt_dns_opts(const struct config *c, struct dns_opts *o);
/* rt_dns_for: the resolver for settings c: rt->dns when they match [delivery]'s, else one made
 * for them (main thread). Returns NULL if it cannot be started (message on stderr). */
struct dns *rt_dns_for(struct rt *rt, const struct config *c);

/* reload.c */
/* rt_reload: read path again and apply what a reload can (main thread); msg (len bytes)
 * receives what happened, for stderr and riptidectl. Returns 0, or -EINVAL when the file was
 * refused (the running configuration is kept). */
int rt_reload(struct rt *rt, const char *path, char *msg, size_t len);

/* rt_reload_request: (control thread) have the main thread reload the configuration file as
 * SIGHUP does, and wait for it (at most 30 s). Returns its rt_reload result with what happened
 * in msg, or -ETIMEDOUT. */
int rt_reload_request(struct rt *rt, char *msg, size_t len);
/* rt_reload_served: (main thread, after a reload) wake the requests it served. */
void rt_reload_served(struct rt *rt, int ret, const char *msg);

/* rtls.c */
int rt_tls_open(struct rt *rt);
void rt_tls_close(struct rt *rt);

#endif
