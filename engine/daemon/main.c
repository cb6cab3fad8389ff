/* main — riptide daemon entry: arguments, configuration, start-up and bounded shutdown.
 *
 * Why: start-up order matters for durability. The queue opens first, then the commit thread,
 * then the shards (which start accepting), then the runner (which recovers the backlog). Shutdown
 * runs the other way round: stop the runner, stop accepting, give in-flight transactions
 * `shutdown_timeout` to finish, abort the rest (they stay queued), drain the commit thread,
 * join the shards, close the queue, exit 0.
 */
#include "engine/daemon/auth.h"
#include "engine/daemon/ctl.h"
#include "engine/daemon/notice.h"
#include "engine/daemon/susp.h"
#include "engine/daemon/qstat.h"
#include "engine/daemon/rt.h"
#include "engine/dsn/dsn.h"
#include "engine/daemon/shard.h"
#include "engine/daemon/snap.h"
#include "engine/shape/shape.h"
#include "engine/smtpd/smtpd.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: riptide [-c FILE] [--print-config] [--version]\n"
		   "  -c, --config FILE   INI configuration (default: embedded defaults)\n"
		   "  --print-config      print the effective configuration and exit\n"
		   "  --queue-count       print the number of queued messages (daemon stopped) and "
		   "exit\n");
}

/* The implicit-TLS listener (tls_listen), if configured. Returns 0 or -errno. */
static int rt_listen_tls(struct rt *rt)
{
	struct util_addr a;
	int ret;

	if (!rt->cfg.tls_listen[0])
		return 0;
	memset(&a, 0, sizeof(a));
	ret = util_addr_parse(rt->cfg.tls_listen, &a);
	if (ret == 0)
		ret = smtpd_server_listen_tls(rt->srv, &a);
	if (ret < 0)
		fprintf(stderr, "riptide: cannot listen on %s (tls_listen): %s\n",
			rt->cfg.tls_listen, strerror(-ret));
	return ret;
}

/* The injection policy of #8 into sc: AUTH when a users file is loaded, trusted networks
 * (parsed here; the config loader checked them), relay_domains, sender_policy, max_rset, vrfy.
 * Returns 0 or -EINVAL. */
static int rt_inject_policy(struct rt *rt, struct smtpd_config *sc)
{
	const struct config *c = &rt->cfg;
	char why[300];
	int n = util_nets_parse(c->trusted_networks, NULL, 0, why, sizeof(why));

	if (n >= 0) {
		rt->trusted = util_xcalloc(n ? (size_t)n : 1, sizeof(*rt->trusted));
		n = util_nets_parse(c->trusted_networks, rt->trusted, (unsigned)n, why,
				    sizeof(why));
	}
	if (n < 0) {
		fprintf(stderr, "riptide: trusted_networks: %s\n", why);
		return -EINVAL;
	}
	rt->ntrusted = (unsigned)n;
	sc->auth = rt->auth != NULL;
	sc->policy = true;
	sc->trusted = rt->trusted;
	sc->ntrusted = rt->ntrusted;
	sc->relay_domains = c->relay_domains;
	sc->vrfy = c->vrfy;
	sc->sender_policy = c->sender_policy == CONFIG_SENDER_OWN_ADDRESS ? SMTPD_SENDER_OWN_ADDRESS
			    : c->sender_policy == CONFIG_SENDER_OWN_DOMAIN ? SMTPD_SENDER_OWN_DOMAIN
									   : SMTPD_SENDER_ANY;
	sc->max_rset = c->max_rset;
	return 0;
}

static int rt_listen(struct rt *rt)
{
	const struct config *c = &rt->cfg;
	struct smtpd_config sc = {
	    .hostname = c->hostname,
	    .greeting = "riptide",
	    .max_size = c->max_message_size,
	    .max_rcpts = c->max_recipients,
	    .max_line = c->max_line_length,
	    .max_sessions = c->max_sessions,
	    .cmd_timeout_ms = c->inject_timeout_ms,
	    .data_timeout_ms = c->inject_timeout_ms,
	    .cmd_deadline_ms = c->inject_cmd_deadline_ms,
	    .data_deadline_ms = c->inject_data_deadline_ms,
	    .send_timeout_ms = c->inject_timeout_ms,
	    .session_data_size = shard_session_data_size,
	    .tls_ctx = rt->tls_server,
	};
	const char *addrs[2] = {c->listen, c->socket};
	char spec[CONFIG_STR + 8];
	int ret = rt_inject_policy(rt, &sc);

	if (ret == 0)
		ret = smtpd_server_new(&rt->srv, &sc, &shard_smtpd_hooks, NULL);
	if (ret < 0) {
		fprintf(stderr, "riptide: injection server: %s\n", strerror(-ret));
		return ret;
	}
	for (int i = 0; i < 2; i++) {
		if (!addrs[i][0])
			continue;
		snprintf(spec, sizeof(spec), "%s%s", i == 1 && addrs[i][0] == '/' ? "unix:" : "",
			 addrs[i]);
		if ((ret = smtpd_server_listen_str(rt->srv, spec)) < 0) {
			fprintf(stderr, "riptide: cannot listen on %s: %s\n", spec, strerror(-ret));
			return ret;
		}
	}
	return rt_listen_tls(rt);
}

static void rt_dispatch(void *arg, struct msg *m)
{
	struct rt *rt = arg;

	/* home shard: the one that accepted it (id bytes 8-9), spread otherwise */
	m->shard = (unsigned)((m->id.b[8] << 8) | m->id.b[9]) % rt->nshards;
	shard_dispatch(rt->shards[m->shard], m);
}

/* Commit thread: the queue stopped (or resumed) being writable. The shards read
 * commit_degraded() themselves; the runner must stop loading mail it could not record. */
static void rt_queue_state(void *arg, bool degraded)
{
	struct rt *rt = arg;

	runner_set_held(rt->runner, degraded);
}

static int rt_open_queue(struct rt *rt)
{
	struct queue_opts qo = {
	    .backend = QUEUE_BACKEND_ROCKSDB,
	    .path = rt->cfg.spool,
	    .write_buffer_size = rt->cfg.write_buffer_size,
	    .blob_bodies = rt->cfg.blob_bodies,
	};
	char err[512];
	int ret;

	mkdir(rt->cfg.spool, 0750);
	ret = queue_open(&qo, &rt->q, err, sizeof(err));
	if (ret < 0)
		fprintf(stderr, "riptide: cannot open queue in %s: %s\n", rt->cfg.spool, err);
	return ret;
}

/* A relay spec (host[:port], default port 25): a numeric address into *a, or a host name into
 * host (resolved later through dns/); name gets its printable form. Returns 0 or -EINVAL. */
static int rt_relay_addr(const char *key, const char *spec, struct util_addr *a, char *name,
			 size_t len, char *host, unsigned *port)
{
	uint16_t p = 0;
	int ret = util_relay_parse(spec, a, host, 256, &p);

	if (ret < 0) {
		fprintf(stderr, "riptide: %s = %s: not host[:port]\n", key, spec);
		return -EINVAL;
	}
	if (ret == 0) {
		host[0] = '\0';
		util_addr_format(a, name, len);
		return 0;
	}
	*port = p;
	snprintf(name, len, "%s:%u", host, (unsigned)p);
	return 0;
}

/* The resolver (dns/) with the [delivery] DNS keys: MX delivery, relays and hosts given by
 * name, MX sites (routes may need it in relay mode too). */
static int rt_open_dns(struct rt *rt)
{
	struct dns_opts o;
	int ret;

	rt_dns_opts(&rt->cfg, &o);
	ret = dns_open(&o, &rt->dns);
	if (ret < 0)
		fprintf(stderr, "riptide: cannot start the resolver (dns_servers = %s): %s\n",
			rt->cfg.dns_servers, strerror(-ret));
	return ret;
}

/* The delivery side of the configuration: relay, or resolver + fallback relay. */
static int rt_delivery(struct rt *rt)
{
	const struct config *c = &rt->cfg;

	if (c->mode == CONFIG_MODE_RELAY) {
		if (rt_relay_addr("relay", c->relay, &rt->relay, rt->relay_name,
				  sizeof(rt->relay_name), rt->relay_host, &rt->relay_port) < 0)
			return -EINVAL;
		return rt_open_dns(rt);
	}
	snprintf(rt->relay_name, sizeof(rt->relay_name), "mx");
	if (c->fallback_relay[0] &&
	    rt_relay_addr("fallback_relay", c->fallback_relay, &rt->fallback, rt->fallback_name,
			  sizeof(rt->fallback_name), rt->fallback_host, &rt->fallback_port) < 0)
		return -EINVAL;
	return rt_open_dns(rt);
}

/* The runner exists before the shards (they may rewind it at once), paused until they are all
 * up and for as long as outgoing mail is off. */
static int rt_start_runner(struct rt *rt)
{
	struct runner_opts ro = {
	    .susp = rt->susp,
	    .q = rt->q,
	    .res = rt->res,
	    .ready = rt->ready,
	    .budget_bytes = rt->cfg.memory_budget,
	    .interval_ms = rt->cfg.scan_interval_ms,
	    .dispatch = rt_dispatch,
	    .arg = rt,
	    .paused = true,
	};

	return runner_start(&ro, &rt->runner);
}

/* The queue counters: a view of the queue taken before the commit thread writes anything is
 * counted in the background (qstat.h). Returns 0 or -ENOMEM. */
static int rt_start_counters(struct rt *rt)
{
	struct queue_snap *snap = queue_snap_new(rt->q);

	rt->qstat = qstat_new();
	if (!snap) {
		fprintf(stderr, "riptide: cannot take a view of the queue to count it\n");
		return -ENOMEM;
	}
	return qstat_rebuild(rt->qstat, rt->q, snap);
}

/* The notice maker (its templates were checked at start-up: main). */
static int rt_open_notice(struct rt *rt)
{
	struct notice_env ne = {.cfg = &rt->cfg,
				.q = rt->q,
				.relay_name = rt->relay_name,
				.log = rt->log,
				.split = snap_split,
				.split_arg = rt};
	char err[512];
	int ret = notice_new(&ne, &rt->notice, err, sizeof(err));

	if (ret < 0)
		fprintf(stderr, "riptide: dsn_templates: %s\n", err);
	return ret;
}

/* The snapshot of the configuration loaded at start (its sets move into it). */
static int rt_first_snap(struct rt *rt)
{
	struct config c = rt->cfg;
	char err[512];
	int ret;

	pthread_mutex_init(&rt->snap_lock, NULL);
	pthread_mutex_init(&rt->reload_lock, NULL);
	pthread_cond_init(&rt->reload_cond, NULL);
	rt->shape = shape_table_new();
	rt->cfg.sets = NULL;
	if ((ret = snap_new(rt, &c, &rt->snap, err, sizeof(err))) < 0)
		fprintf(stderr, "riptide: %s\n", err);
	return ret;
}

static int rt_start(struct rt *rt)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int ret;

	rt->nshards = rt->cfg.shards ? rt->cfg.shards : (unsigned)(ncpu > 0 ? ncpu : 1);
	if ((ret = rt_delivery(rt)) < 0 || (ret = rt_first_snap(rt)) < 0)
		return ret;
	if ((ret = dlog_open(rt->cfg.log, &rt->log)) < 0) {
		fprintf(stderr, "riptide: cannot open log %s: %s\n", rt->cfg.log, strerror(-ret));
		return ret;
	}
	if ((ret = rt_open_queue(rt)) < 0 || (ret = rt_listen(rt)) < 0 ||
	    (ret = rt_open_notice(rt)) < 0)
		return ret;
	rt->res = resident_new();
	rt->susp = susp_new();
	rt->ready = ready_new(rt->cfg.max_ready_per_destination);
	if ((ret = rt_start_runner(rt)) < 0)
		return ret;
	if ((ret = rt_start_counters(rt)) < 0)
		return ret;
	if ((ret = commit_start(rt->q, rt_queue_state, rt, &rt->commit)) < 0 ||
	    (ret = fetch_start(rt->q, &rt->fetch)) < 0 ||
	    (rt->auth && (ret = auth_start(rt->auth)) < 0))
		return ret;
	commit_set_written_arg(rt->commit, rt->qstat);
	atomic_store(&rt->outgoing, rt->cfg.outgoing);
	rt->shards = util_xcalloc(rt->nshards, sizeof(*rt->shards));
	sem_init(&rt->all_up, 0, 0);
	for (unsigned i = 0; i < rt->nshards; i++)
		if ((ret = shard_start(rt, i, &rt->shards[i])) < 0)
			return ret;
	for (unsigned i = 0; i < rt->nshards; i++)
		sem_post(&rt->all_up);
	runner_set_paused(rt->runner, !rt->cfg.outgoing);
	return rt_ctl_start(rt);
}

static bool rt_wait_idle(struct rt *rt, uint64_t ms)
{
	uint64_t until = util_mono_ms() + ms;

	for (;;) {
		unsigned busy = 0;
		for (unsigned i = 0; i < rt->nshards; i++)
			busy += shard_busy(rt->shards[i]);
		if (busy == 0)
			return true;
		if (util_mono_ms() >= until)
			return false;
		usleep(20000);
	}
}

/* What only the stopped threads used (called when every shard ended cleanly). */
static void rt_free(struct rt *rt)
{
	dns_close(rt->dns);
	for (unsigned i = 0; i < rt->nxdns; i++)
		dns_close(rt->xdns[i].dns);
	free(rt->xdns);
	snap_unref(rt->snap);
	shape_table_free(rt->shape);
	runner_free(rt->runner);
	commit_free(rt->commit);
	free(rt->shards);
	resident_free(rt->res);
	ready_free(rt->ready);
	qstat_free(rt->qstat);
	susp_free(rt->susp);
	smtpd_server_free(rt->srv);
	rt_tls_close(rt);
	auth_free(rt->auth);
	free(rt->trusted);
}

/* Stop order: runner (no new hand-overs), shards (no new mail, transactions finish or are
 * aborted), commit thread (drains what was posted; completions still run on the live loops),
 * then the loops. Everything other threads may still touch is freed only after the joins, and
 * not at all if a shard could not end its sessions (the OS reclaims it at exit).
 * The whole stop fits in shutdown_timeout: 70% for transactions to finish, then an abort
 * (which also gives up outcomes a full disk kept from being written: those messages are
 * retried after the restart) with 20% to settle, the rest for the last commits. */
static void rt_stop(struct rt *rt)
{
	uint64_t t = rt->cfg.shutdown_timeout_ms, writes = 0, reqs = 0;
	uint64_t deadline = util_mono_ms() + t;
	bool clean = true;

	atomic_store(&rt->stopping, true);
	rt_ctl_stop(rt); /* no new action; one in progress is finished first */
	runner_halt(rt->runner);
	for (unsigned i = 0; i < rt->nshards; i++)
		shard_shutdown(rt->shards[i], false);
	/* lookups in flight are answered now (TEMPFAIL), to the live loops */
	dns_shutdown(rt->dns);
	for (unsigned i = 0; i < rt->nxdns; i++)
		dns_shutdown(rt->xdns[i].dns);
	if (!rt_wait_idle(rt, t * 7 / 10)) {
		fprintf(stderr, "riptide: shutdown timeout: aborting sessions in flight "
				"(their messages stay queued)\n");
		for (unsigned i = 0; i < rt->nshards; i++)
			shard_shutdown(rt->shards[i], true);
		rt_wait_idle(rt, t * 2 / 10);
	}
	commit_stats(rt->commit, &writes, &reqs);
	commit_halt(rt->commit);
	fetch_free(rt->fetch); /* reads still queued complete to the live loops */
	rt->fetch = NULL;
	if (rt->auth)
		auth_stop(rt->auth); /* likewise; a later AUTH gets 454 */
	rt_wait_idle(rt, deadline > util_mono_ms() ? deadline - util_mono_ms() : 0);
	for (unsigned i = 0; i < rt->nshards; i++)
		clean &= shard_join(rt->shards[i]);
	fprintf(stderr, "riptide: stopped (%llu queue writes for %llu requests)%s\n",
		(unsigned long long)writes, (unsigned long long)reqs,
		clean ? "" : "; some sessions were cut off");
	qstat_join(rt->qstat);
	queue_close(rt->q);
	notice_free(rt->notice); /* the commit thread is joined */
	dlog_close(rt->log);
	if (clean)
		rt_free(rt);
}

static int queue_count_cmd(struct rt *rt)
{
	uint64_t n = 0;

	if (rt_open_queue(rt) < 0)
		return 1;
	if (queue_count(rt->q, &n) < 0) {
		fprintf(stderr, "riptide: cannot count the queue in %s\n", rt->cfg.spool);
		queue_close(rt->q);
		return 1;
	}
	printf("%llu\n", (unsigned long long)n);
	queue_close(rt->q);
	return 0;
}

/* SIGHUP: reload (reload.c), said on stderr. */
static void rt_sighup(struct rt *rt, const char *path)
{
	char msg[1024];
	int ret = rt_reload(rt, path, msg, sizeof(msg));

	fprintf(stderr, "riptide: SIGHUP: %s\n", msg);
	rt_reload_served(rt, ret, msg);
}

enum cmd { CMD_RUN, CMD_PRINT_CONFIG, CMD_QUEUE_COUNT };

static int parse_args(int argc, char **argv, const char **cfgpath, enum cmd *cmd)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"print-config", no_argument, NULL, 'p'},
	    {"queue-count", no_argument, NULL, 'Q'},  {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			*cfgpath = optarg;
			break;
		case 'p':
			*cmd = CMD_PRINT_CONFIG;
			break;
		case 'Q':
			*cmd = CMD_QUEUE_COUNT;
			break;
		case 'V':
			printf("riptide 0.1.0\n");
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "riptide: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* SIGTERM, SIGINT and SIGHUP are taken by sigwait in main: blocked in every thread. */
static void rt_signals(sigset_t *set)
{
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL); /* every thread inherits the mask */
}

static void rt_started(const struct rt *rt)
{
	fprintf(stderr, "riptide: started: %u shards, listen %s%s%s, %s %s%s%s%s, spool %s\n",
		rt->nshards, rt->cfg.listen, rt->cfg.socket[0] ? " + unix:" : "", rt->cfg.socket,
		rt->cfg.outgoing ? "outgoing on," : "outgoing OFF,",
		rt->cfg.mode == CONFIG_MODE_RELAY ? "relay " : "independent (MX) delivery",
		rt->cfg.mode == CONFIG_MODE_RELAY ? rt->relay_name : "",
		rt->fallback_name[0] ? ", fallback relay " : "", rt->fallback_name, rt->cfg.spool);
	if (route_table_count(rt->snap->routes))
		fprintf(stderr,
			"riptide: %u static routes in use%s (static_routes = no turns them off)\n",
			route_table_count(rt->snap->routes),
			rt->cfg.mode == CONFIG_MODE_RELAY
			    ? ": in relay mode they still apply, their domains bypass the relay"
			    : "");
}

/* auth_users_file: a malformed file is a configuration error (exit 2, file:line); a file
 * others may read gets a warning. */
static int rt_load_auth(struct rt *rt)
{
	const char *path = rt->cfg.auth_users_file;
	char err[512];
	int ret;

	if (!path[0])
		return 0;
	if ((ret = auth_load(path, &rt->auth, err, sizeof(err))) < 0) {
		fprintf(stderr, "riptide: auth_users_file: %s\n", err);
		return ret;
	}
	if (auth_readable_by_others(rt->auth))
		fprintf(stderr,
			"riptide: warning: auth_users_file %s is readable by others (chmod o-r)\n",
			path);
	return 0;
}

/* A broken DSN template is a configuration error: exit 2 before anything starts. */
static int check_templates(const struct config *cfg)
{
	struct dsn_templates *t = NULL;
	char err[512];
	int ret = dsn_templates_load(cfg->dsn_templates, &t, err, sizeof(err));

	if (ret < 0)
		fprintf(stderr, "riptide: dsn_templates: %s\n", err);
	dsn_templates_free(t);
	return ret;
}

/* A password in a file others may read: warn (issue #8); the daemon starts anyway. */
static void warn_secret_mode(const struct config *cfg, const char *path)
{
	struct stat st;

	if (path && cfg->auth_password[0] && stat(path, &st) == 0 && (st.st_mode & S_IROTH))
		fprintf(stderr,
			"riptide: warning: %s holds auth_password and is readable by others "
			"(mode %03o): chmod o-r %s\n",
			path, (unsigned)(st.st_mode & 0777), path);
}

int main(int argc, char **argv)
{
	static struct rt rt;
	const char *cfgpath = NULL;
	enum cmd cmd = CMD_RUN;
	char err[512];
	sigset_t set;
	int sig;

	if (parse_args(argc, argv, &cfgpath, &cmd) < 0)
		return 2;
	if (config_load(&rt.cfg, cfgpath, err, sizeof(err)) < 0) {
		fprintf(stderr, "riptide: %s\n", err);
		return 2;
	}
	if (cmd == CMD_PRINT_CONFIG) {
		config_print(&rt.cfg, stdout);
		return 0;
	}
	if (cmd == CMD_QUEUE_COUNT)
		return queue_count_cmd(&rt);
	if (check_templates(&rt.cfg) < 0 || rt_tls_open(&rt) < 0 || rt_load_auth(&rt) < 0)
		return 2; /* a broken template, certificate or users file: a configuration error */
	warn_secret_mode(&rt.cfg, cfgpath);
	rt_signals(&set);
	if (rt_start(&rt) < 0)
		return 1;
	rt_started(&rt);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			rt_sighup(&rt, cfgpath);
			continue;
		}
		break;
	}
	fprintf(stderr, "riptide: signal %d: shutting down\n", sig);
	rt_stop(&rt);
	return 0;
}
