/* dest_int — types and functions shared by the files of the destination layer (dest.c: jobs,
 * outcomes, the session pool; dest_mx.c: MX resolution, targets, the MX walk, the fallback
 * relay). Not a public header: the rest of the daemon uses dest.h.
 */
#ifndef RIPTIDE_DEST_INT_H
#define RIPTIDE_DEST_INT_H

#include "dns/dns.h"
#include "engine/daemon/dest.h"
#include "engine/smtpc/smtpc.h"

#include <arpa/inet.h>

/* Where a session connects: one address of one MX host (or the relay). */
struct dest_target {
	struct util_addr addr;
	char host[256];		       /* MX host name (relay: its configured name) */
	char ip[INET6_ADDRSTRLEN + 8]; /* printable address:port */
	uint64_t down_until;	       /* monotonic ms: not tried again before */
	uint64_t tls_bad_until;	       /* monotonic ms: opportunistic TLS failed, plaintext */
	char src[64]; /* a session\'s pool source address ("" = the default source) */
};

struct job {
	struct job *next;
	struct unit *u;
	struct smtpc_txn txn;
	unsigned hop; /* lowest target index it may go to (MX walk: later hosts only) */
	unsigned n;
	unsigned *idx;	  /* position in u->r for each txn rcpt */
	uint8_t *decided; /* per txn rcpt: JOB_OPEN, JOB_DECIDED, JOB_TOO_MANY or JOB_FALL */
	const char **rcpts;
};

enum { JOB_OPEN = 0, JOB_DECIDED = 1, JOB_TOO_MANY = 2, JOB_FALL = 3 };

struct osess {
	struct osess *next;
	struct dest *d;
	struct smtpc *c;
	struct dest_target tg; /* where it is connected (a copy: targets change on a lookup) */
	unsigned t;	       /* its index in d->targets while gen == d->tgen */
	unsigned gen;	       /* d->tgen when it was opened */
	uint64_t opened_ms;    /* monotonic: when the connection was started */
	uint64_t txn_start_ms; /* monotonic: when its current transaction was handed over */
	uint64_t idle_since;   /* monotonic: when it last ran out of work */
	bool idle;
	bool ready;
	unsigned src;			/* index in d->srcs it was opened with */
	struct shape_state *st;		/* that source's state (a reference: d->srcs may change) */
	struct snap *snap;		/* the snapshot it was opened under (its TLS context) */
	const struct util_addr *source; /* its pool source's address to bind, NULL: default */
	const char *helo;		/* its pool source's EHLO name, NULL: the default */
	bool tls_known;			/* tls/tls_on filled (first outcome on this connection) */
	bool tls_on;			/* the connection is encrypted: tls says how */
	struct tls_info tls;		/* for the delivery log lines */
	char tls_name[256];		/* the name TLS checks (host without :port) */
};

enum dest_kind { DEST_RELAY, DEST_MX, DEST_HOSTS };

/* One host of a hosts destination (a route's `hosts`, or an MX site's hosts). */
struct dest_host {
	char name[256]; /* host name or address literal */
	unsigned port;
};

/* An egress source of the destination and its throttle / backoff state there (shape.h),
 * shared by every shard through rt->shape under the key "source|destination". */
struct dest_src {
	const struct config_source *src; /* NULL: the default source (source_address) */
	struct shape_state *st;		 /* a reference */
};

/* The destination's throttles: its route's values with its [shaping] rule over them. */
struct dest_limits {
	unsigned max_conns;
	unsigned max_msgs; /* per connection */
	unsigned max_rcpts;
	struct config_rate msg_rate, conn_rate;
	uint64_t connect_timeout_ms;
	enum config_tls tls;
};

struct dest {
	struct dest_env env;
	const struct config *cfg;	      /* its route's settings, in the shard's snapshot */
	const struct config_route *route;     /* NULL: the default route */
	const struct config_shaping *shaping; /* NULL: none */
	struct dest_limits lim;
	struct dest_src *srcs; /* egress sources (1 without a pool) */
	unsigned nsrcs, src_rr;
	struct dest_host *hosts; /* DEST_HOSTS: tried in order */
	unsigned nhosts, hosts_i;
	struct dest_target *acc; /* DEST_HOSTS: targets of the lookups so far */
	unsigned nacc;
	uint32_t acc_ttl;	   /* the smallest TTL of those lookups (s) */
	enum dns_status acc_worst; /* TEMPFAIL if any failed temporarily */
	bool fb_default;	   /* hosts all failed: the default route takes the jobs */
	bool is_site;		   /* an MX site ("mx:..."): the fallback relay applies as to MX */
	bool bo_active;	      /* a backoff action runs on one of its sources (dest_shape_poll) */
	uint64_t paced_until; /* monotonic ms: the message rate holds jobs back until then */
	struct snap *snap;    /* the snapshot cfg, route and shaping point into (a reference) */
	struct dns *dns;      /* resolver for its route's DNS settings */
	char domain[256];     /* MX kinds: the domain resolved (its name without "pool/") */
	char sig[CONFIG_STR + 32]; /* what its name meant when it was made (dest_route.c) */
	bool retired;		   /* a reload changed its route: drains, new mail goes elsewhere */
	enum dest_kind kind;
	bool is_fallback; /* the fallback relay: log lines say via=fallback-relay */
	char name[ROUTE_NAME_MAX];
	struct dest *fb;      /* MX: the shard's fallback relay, or NULL */
	char relay_host[256]; /* a relay given by host name (resolved, A/AAAA), else "" */
	unsigned port;	      /* port of the resolved targets */
	/* targets in try order; MX: valid until targets_until, re-resolved after */
	struct dest_target *targets;
	unsigned ntargets;
	unsigned tgen;		    /* bumped each time targets is rebuilt */
	uint64_t targets_until;	    /* monotonic ms */
	enum dns_status dns_status; /* of the last answer (DNS_OK for a relay) */
	char dns_reason[256];
	bool resolving;
	unsigned fetching;		  /* body reads in flight */
	struct dns_mx_result *dns_answer; /* posted from the resolver thread */
	struct loop_msg dns_msg;
	struct job *head, **tail;
	unsigned queued;
	struct osess *sessions;
	unsigned nsess, nconnecting, nready;
	bool slow; /* its last session set-up or transaction took over DEST_SLOW_MS */
	uint64_t dead_until;
	uint64_t next_sess_id;
	bool shutting;
	bool timer_armed;
	struct loop_op timer; /* re-pump while jobs wait for a connection slot */
	struct smtpc_ops ops;
	struct dest *tab_next; /* shard's destination table chain */
	uint64_t last_used;    /* monotonic ms of the last unit it took */
	/* AUTH failed at this relay (dest_auth.c): until auth_hold_until (monotonic ms) new mail
	 * is deferred with that failure instead of each message trying to log in again. */
	uint64_t auth_hold_until;
	int auth_code, auth_enh[3];
	char auth_text[256];
};

struct event;

/* dest.c */
void dest_pump(struct dest *d);
/* dest_arm_repump_in: pump d again in ms (a wait already armed stands). */
void dest_arm_repump_in(struct dest *d, uint64_t ms);
/* dest_sess.c */
/* dest_open_session: open a session to the first live target >= min_t. Returns 0, -EAGAIN (a
 * connection cap or rate is reached: d is pumped again when a token comes), -ESRCH (every
 * source is suspended by a backoff rule), -ENOENT (no live target) or smtpc_new's error. */
int dest_open_session(struct dest *d, unsigned min_t);
void dest_record_tls(struct dest *d, struct unit *u, unsigned k, const struct dest_target *t,
		     const struct tls_info *tls, int code, const int enh[3], const char *text,
		     size_t text_len);
/* dest_record_ev: record recipient k of u with the outcome the caller put in ev (state, code,
 * enh, reply, reason, tls), at target t (NULL: a local outcome); fills ev's other fields,
 * stores it in the unit and writes the delivery line. dest_record: the same with the state
 * the code implies and no reason. */
void dest_record_ev(struct dest *d, struct unit *u, unsigned k, const struct dest_target *t,
		    struct event *ev);
void dest_record(struct dest *d, struct unit *u, unsigned k, const struct dest_target *t, int code,
		 const int enh[3], const char *text, size_t text_len);
void dest_record_err(struct dest *d, struct unit *u, unsigned k, const char *err);
/* dest_record_bounce: recipient k failed by backoff rule `rule` on reply r (a 4xx made
 * permanent: the reply is kept, the reason names the rule). */
void dest_record_bounce(struct dest *d, struct unit *u, unsigned k, const struct dest_target *t,
			const struct tls_info *tls, const struct smtpc_reply *r, const char *rule);
void job_push(struct dest *d, struct job *j);
void job_link(struct dest *d, struct job *j);
void job_unlink(struct dest *d, struct job *j);
void dest_end_provisional(struct dest *d, struct job *j);
void dest_defer_all(struct dest *d, const char *err);
void dest_end_all(struct dest *d, int code, const int enh[3], const char *text);
struct dest *dest_alloc(const struct dest_env *env, const char *name);
void dest_job_to_front(struct dest *d, struct job *j);
struct job *job_pop(struct dest *d);
void job_end(struct dest *d, struct job *j);
/* dest_unit_put: one of u's holds (a job, a body read) is over; the last sends u home. */
void dest_unit_put(struct dest *d, struct unit *u);
struct job *job_new(struct unit *u, const unsigned *idx, unsigned n);

/* dest_body.c */
/* dest_body_fetch: start reading u's body from the queue if d has room for another read
 * (bounded by its sessions); d is pumped when it is in. */
void dest_body_fetch(struct dest *d, struct unit *u);

/* dest_mx.c */
/* dest_mx_ready: true when d has targets to connect to; starts a lookup when they are stale
 * (MX) and, when the last answer was a permanent failure, ends the queued jobs with it. */
bool dest_mx_ready(struct dest *d);
/* dest_pick_target: the first target index >= min that is not down, or -1. */
int dest_pick_target(const struct dest *d, unsigned min);
/* dest_sess_t: the index of o's target in d->targets for the MX walk (0 if d->targets was
 * rebuilt since o was opened: its index means nothing any more). */
unsigned dest_sess_t(const struct dest *d, const struct osess *o);
/* dest_target_down: connecting to / talking with o's target failed: skip it for a while. */
void dest_target_down(struct dest *d, const struct osess *o);
/* dest_next_host: the index of the first target after o's on another host, or -1. */
int dest_next_host(const struct dest *d, const struct osess *o);
/* dest_fall_through: MX walk: the recipients of j marked JOB_FALL (and, when the whole
 * transaction failed with an error or a 4xx, those still open) move on to the next host in the same
 * attempt, in a new job at the queue's head, or after the last host to the fallback relay.
 * Returns true if such a job was made (their outcomes then wait for it). */
bool dest_fall_through(struct dest *d, struct job *j, const struct osess *o,
		       const struct smtpc_result *res);
/* dest_has_fallback: whether jobs no host of d could take have somewhere to go: the fallback
 * relay (MX, sites) or the default route (a route's hosts with fallback_to_default). */
bool dest_has_fallback(const struct dest *d);
/* dest_target_set: target t is address a of host `host`, on port. */
void dest_target_set(struct dest_target *t, const struct dns_addr *a, const char *host,
		     unsigned port);
/* dest_dns_cb: (resolver thread) an answer for d (arg): posted to d's shard. */
void dest_dns_cb(void *arg, struct dns_mx_result *r);
/* dest_no_host: nothing can take j here (every host tried or down): to the fallback relay if
 * there is one (returns true), else false. */
bool dest_no_host(struct dest *d, struct job *j);

/* dest_auth.c */
/* dest_auth_config: the AUTH part of a session's config: the [delivery] credentials toward a
 * relay (relay mode, the fallback relay), none toward MX hosts. */
void dest_auth_config(const struct dest *d, struct smtpc_config *sc);
/* dest_auth_failed: session o closed with info->auth_failed: log the configuration error once,
 * defer every queued job with the failure (never failed, never bounced) and hold the
 * destination a while (dest_auth_held). */
void dest_auth_failed(struct dest *d, const struct osess *o, uint64_t sess_id,
		      const struct smtpc_close_info *info);
/* dest_auth_held: while an AUTH failure holds d, defer every queued job with it and return
 * true; else false. */
bool dest_auth_held(struct dest *d);

/* dest_dns_posted: a lookup's answer arrived on the shard (dest_mx.c). */
void dest_dns_posted(struct loop *l, struct loop_msg *lm);

/* dest_route.c */
/* dest_hosts_start: a new resolution of d's hosts, from the first (dest_hosts_resolve). */
void dest_hosts_start(struct dest *d);
/* dest_hosts_resolve: resolve d's hosts in order from hosts_i (answers in the cache are taken
 * at once; d->resolving while one is on the resolver thread). */
void dest_hosts_resolve(struct dest *d);
/* dest_hosts_answer: the answer for host hosts_i (r is freed): its addresses are added; the
 * next lookup starts. Returns true once every host is answered (d->targets then replaced). */
bool dest_hosts_answer(struct dest *d, struct dns_mx_result *r);
/* dest_fb_default: j's recipients (a route's hosts all failed) go to the default route: the
 * shard's relay (relay mode) or each domain's MX hosts ("fallback:domain"). Returns true. */
bool dest_fb_default(struct dest *d, struct job *j);

/* dest_shape.c */
/* dest_shape_conf: d's throttles and sources from its snapshot (d->cfg set). */
void dest_shape_conf(struct dest *d);
/* dest_shape_free: drop d's sources' states. */
void dest_shape_free(struct dest *d);
/* dest_shape_open: pick a source for a new session (round robin, skipping suspended ones) and
 * take a connection slot and a connection token there. Returns 0 and *src; -EAGAIN with
 * *wait_ms (when a token comes; 0: when a connection closes); -ESRCH: every source suspended. */
int dest_shape_open(struct dest *d, unsigned *src, uint64_t *wait_ms);
/* dest_shape_session: o (its target set) is opened at source src: it holds the state. */
void dest_shape_session(struct dest *d, struct osess *o, unsigned src);
/* dest_shape_closed: o closed: its connection slot and state reference are given back. */
void dest_shape_closed(struct osess *o);
/* dest_shape_stop: whether o's source is suspended by a backoff rule (o must stop). */
bool dest_shape_stop(struct dest *d, const struct osess *o);
/* dest_shape_send: may o send one more message now (message rate)? false: *wait_ms. */
bool dest_shape_send(struct dest *d, const struct osess *o, uint64_t *wait_ms);
/* dest_shape_reply: a remote reply r on o: the first [backoff] rule it matches acts (suspend,
 * reduce: on o's source state, logged when it starts); returns that rule (the caller fails the
 * recipient for a bounce rule), or NULL. */
const struct config_backoff *dest_shape_reply(struct dest *d, struct osess *o,
					      const struct smtpc_reply *r);
/* dest_shape_poll: log the ends and recovery steps of d's backoff actions. */
void dest_shape_poll(struct dest *d);
/* dest_shape_suspended: while every source of d is suspended, when that ends (wall ms). */
uint64_t dest_shape_suspended(struct dest *d);
/* dest_shape_held: while every source of d is suspended, defer every queued job without
 * trying (451 4.7.0, retried when the suspension ends) and return true; else false. */
bool dest_shape_held(struct dest *d);

/* dest_tls.c */
/* dest_timeouts: fill to with the configured per-state timeouts (smtpc defaults otherwise). */
void dest_timeouts(const struct config *cfg, struct smtpc_timeouts *to);
/* dest_tls: the TLS settings of a new session to o's target (o->tls_name holds the name). */
void dest_tls(struct dest *d, struct osess *o, struct smtpc_config *sc);
/* dest_tls_fallback: opportunistic TLS failed with o's host (why): log it once and use
 * plaintext with that host for a while. */
void dest_tls_fallback(struct dest *d, struct osess *o, uint64_t sess_id, const char *why);

#endif
