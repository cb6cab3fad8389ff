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

#include <semaphore.h>
#include <stdatomic.h>

struct shard;
struct notice;
struct qstat;
struct susp;
struct ctl_server;
struct smtpd_server;
struct auth;

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
	atomic_uint slow_conns; /* of which to slow destinations (at most half the cap) */
	atomic_bool stopping;
	atomic_bool outgoing; /* cfg.outgoing, changeable by a reload (SIGHUP) */
};

/* rtls.c */
int rt_tls_open(struct rt *rt);
void rt_tls_close(struct rt *rt);

#endif
