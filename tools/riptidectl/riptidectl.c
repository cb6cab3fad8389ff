/* riptidectl — riptide's admin program: `test-dns` (the classic servers' "Test DNS"),
 * `test-route` (the classic servers' "Test outgoing route", riptidectl_route.c) and
 * `queue ...` (the queue of the running daemon, riptidectl_queue.c).
 *
 * Why a separate program that needs no daemon for test-dns: an operator checks the DNS setup
 * before starting (or while riptide refuses mail for a domain) with the very resolver module
 * and configuration file the daemon uses (engine/config, dns/): which configured servers
 * answer and how fast, and for a domain the MX hosts in the order riptide would try them, with
 * addresses and TTLs, or the exact reason it cannot deliver there (null MX, NXDOMAIN, timeout,
 * no MX).
 *
 *   riptidectl [-c FILE] test-dns [DOMAIN]     exit 0: DOMAIN deliverable (or no DOMAIN and
 *                                              every server answered), 1: not, 2: usage/config
 * Without DOMAIN the servers are asked for riptide-probe.invalid: every recursive resolver
 * answers a .invalid name at once (NXDOMAIN, RFC 6761), so an answer of any kind proves the
 * server works; a server that cannot resolve anything (refuses, times out) is named.
 *
 *   riptidectl [-c FILE] test-route [--rcpt ADDR] [--port N] DOMAIN|relay
 *                                              exit 0: the route works, 1: not, 2: usage/config
 *   riptidectl [-c FILE] [-s SOCKET] [-t SECONDS] [--json] queue COMMAND ...
 *                                              exit 0 done, 1 the daemon said no,
 *                                              2 usage/config/no daemon
 *   riptidectl [-c FILE] [-s SOCKET] [-t SECONDS] reload
 *                                              exit 0 reloaded, 1 the file was refused,
 *                                              2 usage/config/no daemon
 */
#include "dns/dns.h"
#include "engine/config/config.h"
#include "tools/riptidectl/riptidectl.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CTL_MAX_SERVERS 16

/* ---- one synchronous lookup ---- */

struct ctl_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct dns_mx_result *r;
};

static void ctl_done(void *arg, struct dns_mx_result *r)
{
	struct ctl_wait *w = arg;

	pthread_mutex_lock(&w->lock);
	w->r = r;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static double ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* riptidectl_lookup: resolve domain's MX hosts (host_only: its own A/AAAA, dns_resolve_host)
 * through a fresh resolver with opts; *ms gets the time taken. Returns the result (caller
 * frees with dns_mx_result_free) or NULL with a message on stderr. */
struct dns_mx_result *riptidectl_lookup(const struct dns_opts *opts, const char *domain,
					bool host_only, double *ms)
{
	struct ctl_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL};
	struct dns_mx_result *cached = NULL;
	struct dns *d = NULL;
	double t0 = ctl_now_ms();
	int ret = dns_open(opts, &d);

	if (ret == 0)
		ret = host_only ? dns_resolve_host(d, domain, ctl_done, &w, &cached)
				: dns_resolve_mx(d, domain, ctl_done, &w, &cached);
	if (ret < 0) {
		fprintf(stderr, "riptidectl: %s: %s\n", domain, strerror(-ret));
		dns_close(d);
		return NULL;
	}
	pthread_mutex_lock(&w.lock);
	while (!cached && !w.r)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	*ms = ctl_now_ms() - t0;
	dns_close(d);
	return cached ? cached : w.r;
}

/* ---- servers ---- */

/* The servers "auto" stands for: the nameserver lines of resolv_conf. Returns their number. */
static unsigned ctl_resolv_servers(const char *path, char out[][64], unsigned max)
{
	FILE *f = fopen(path, "r");
	char line[256], addr[64];
	unsigned n = 0;

	if (!f) {
		fprintf(stderr, "riptidectl: cannot read %s: %s\n", path, strerror(errno));
		return 0;
	}
	while (n < max && fgets(line, sizeof(line), f))
		if (sscanf(line, " nameserver %63s", addr) == 1)
			snprintf(out[n++], 64, "%s", addr);
	fclose(f);
	return n;
}

/* The configured servers one by one ("a;b;c", or auto). Returns their number. */
static unsigned ctl_servers(const struct config *c, char out[][64], unsigned max)
{
	const char *p = c->dns_servers, *e;
	unsigned n = 0;

	if (strcmp(p, "auto") == 0)
		return ctl_resolv_servers(c->resolv_conf, out, max);
	for (; *p && n < max; p = *e ? e + 1 : e) {
		e = strchr(p, ';');
		if (!e)
			e = p + strlen(p);
		snprintf(out[n++], 64, "%.*s", (int)(e - p), p);
	}
	return n;
}

/* ---- output ---- */

/* riptidectl_print_hosts: r's hosts in try order with their addresses and TTLs, to stdout. */
void riptidectl_print_hosts(const struct dns_mx_result *r)
{
	for (size_t i = 0; i < r->nhosts; i++) {
		const struct dns_mx_host *h = &r->hosts[i];

		printf("  %zu. %s  preference %u%s, ttl %us%s%s\n", i + 1, h->name, h->pref,
		       r->implicit ? " (implicit MX: the domain's own address)" : "", h->ttl,
		       h->status == DNS_OK ? "" : "  -- ",
		       h->status == DNS_OK ? "" : dns_status_name(h->status));
		for (size_t k = 0; k < h->naddrs; k++)
			printf("       %-4s %s  ttl %us\n",
			       h->addrs[k].family == AF_INET ? "A" : "AAAA", h->addrs[k].text,
			       h->addrs[k].ttl);
	}
}

static void ctl_print_result(const struct dns_mx_result *r)
{
	printf("%s: %s", r->domain, dns_status_name(r->status));
	if (r->status != DNS_OK)
		printf(" (%s: %s)", dns_status_permanent(r->status) ? "permanent" : "temporary",
		       r->reason);
	printf(", answer ttl %us\n", r->ttl);
	riptidectl_print_hosts(r);
}

/* ---- test-dns ---- */

/* riptidectl_dns_opts: the resolver options of configuration c, asking servers. */
void riptidectl_dns_opts(const struct config *c, struct dns_opts *o, const char *servers)
{
	*o = (struct dns_opts){
	    .servers = servers,
	    .resolv_conf = c->resolv_conf,
	    .fallback_auto = c->dns_fallback_auto,
	    .timeout_ms = (unsigned)c->dns_timeout_ms,
	    .tries = c->dns_tries,
	    .implicit_mx = c->implicit_mx,
	    .max_mx_hosts = c->max_mx_hosts,
	    .min_ttl = (uint32_t)(c->dns_min_ttl_ms / 1000),
	    .max_ttl = (uint32_t)(c->dns_max_ttl_ms / 1000),
	    .neg_max_ttl = (uint32_t)(c->dns_negative_ttl_ms / 1000),
	    .max_entries = c->dns_cache_entries,
	};
}

/* Ask each configured server alone (no fallback, one try) and say how it did. Returns the
 * number of servers that answered. */
static unsigned ctl_probe_servers(const struct config *c, const char *domain)
{
	char servers[CTL_MAX_SERVERS][64];
	unsigned n = ctl_servers(c, servers, CTL_MAX_SERVERS), ok = 0;
	struct dns_opts o;

	printf("servers (%s%s):\n", c->dns_servers,
	       strcmp(c->dns_servers, "auto") == 0 ? ", from resolv_conf" : "");
	for (unsigned i = 0; i < n; i++) {
		struct dns_mx_result *r;
		double ms = 0;

		riptidectl_dns_opts(c, &o, servers[i]);
		o.fallback_auto = 0;
		o.tries = 1;
		r = riptidectl_lookup(&o, domain, false, &ms);
		if (r && r->status != DNS_TEMPFAIL) {
			printf("  %-28s answered in %.1f ms (%s)\n", servers[i], ms,
			       dns_status_name(r->status));
			ok++;
		} else {
			printf("  %-28s no answer after %.1f ms (%s)\n", servers[i], ms,
			       r ? r->reason : "lookup not started");
		}
		dns_mx_result_free(r);
	}
	if (n == 0)
		printf("  (none)\n");
	return n && ok == n ? n : 0;
}

static int ctl_test_dns(const struct config *c, const char *domain)
{
	const char *probe = domain ? domain : "riptide-probe.invalid";
	unsigned answered = ctl_probe_servers(c, probe);
	struct dns_mx_result *r;
	struct dns_opts o;
	double ms = 0;
	int rc;

	if (!domain)
		return answered ? 0 : 1;
	riptidectl_dns_opts(c, &o, c->dns_servers);
	r = riptidectl_lookup(&o, domain, false, &ms);
	if (!r)
		return 1;
	printf("lookup with the configuration (fallback_auto %s, implicit_mx %s): %.1f ms\n",
	       c->dns_fallback_auto ? "yes" : "no", c->implicit_mx ? "yes" : "no", ms);
	ctl_print_result(r);
	rc = r->status == DNS_OK ? 0 : 1;
	dns_mx_result_free(r);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: riptidectl [-c FILE] [-s SOCKET] [-t SECONDS] [--json] COMMAND ...\n"
		"  -c FILE    riptide's configuration ([delivery] dns_servers, [queue]\n"
		"             control_socket, spool, ...)\n"
		"  -s SOCKET  the control socket (default: [queue] control_socket, or\n"
		"             <spool>/control.sock)\n"
		"  -t SECONDS how long to wait for the daemon at each step (default 120)\n"
		"  --json     queue commands: one JSON object per line\n"
		"  test-dns [DOMAIN]  ask each configured DNS server (time, answer); with DOMAIN,\n"
		"             print its MX hosts in the order riptide tries them, their addresses\n"
		"             and TTLs, or why it cannot be delivered. Exit 0 when deliverable.\n");
	riptidectl_route_usage(f);
	fprintf(f, "  reload     the running riptide reads its configuration file again (as\n"
		   "             SIGHUP); prints what it applied, or why it refused the file\n"
		   "             (file:line; the running configuration is kept). Exit 0 / 1.\n");
	riptidectl_queue_usage(f);
}

/* Parse the options before the command into o. Returns -1 to go on, else an exit code. */
static int parse_opts(int argc, char **argv, struct riptidectl_opts *o)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	unsigned long t;
	char *end;
	int ch;

	while ((ch = getopt_long(argc, argv, "+c:s:t:h", longopts, NULL)) != -1) {
		if (ch == 'c') {
			o->config = optarg;
		} else if (ch == 's') {
			o->socket = optarg;
		} else if (ch == 'j') {
			o->json = true;
		} else if (ch == 't' && (t = strtoul(optarg, &end, 10)) > 0 && !*end && t < 86400) {
			o->timeout_ms = (unsigned)t * 1000;
		} else {
			usage(ch == 'h' ? stdout : stderr);
			return ch == 'h' ? 0 : 2;
		}
	}
	return -1;
}

/* main: options, then test-dns or queue; returns the exit code of the command. */
int main(int argc, char **argv)
{
	static struct config cfg;
	struct riptidectl_opts o = {.timeout_ms = 120000};
	char err[512];
	int rc = parse_opts(argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (optind < argc && strcmp(argv[optind], "queue") == 0)
		return riptidectl_queue(&o, argc - optind - 1, argv + optind + 1);
	if (optind < argc && strcmp(argv[optind], "reload") == 0)
		return riptidectl_reload(&o, argc - optind - 1, argv + optind + 1);
	if (optind < argc && strcmp(argv[optind], "test-route") == 0)
		return riptidectl_route(&o, argc - optind - 1, argv + optind + 1);
	if (optind >= argc || strcmp(argv[optind], "test-dns") != 0 || argc - optind > 2) {
		usage(stderr);
		return 2;
	}
	if (config_load(&cfg, o.config, err, sizeof(err)) < 0) {
		fprintf(stderr, "riptidectl: %s\n", err);
		return 2;
	}
	rc = ctl_test_dns(&cfg, argc - optind == 2 ? argv[optind + 1] : NULL);
	config_free(&cfg);
	return rc;
}
