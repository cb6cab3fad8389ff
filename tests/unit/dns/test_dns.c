/* test_dns — unit tests for dns/ against a real dnsmasq on 127.0.0.1 (ephemeral port).
 *
 * Why this shape: every promise of the module (preference order, shuffle, A+AAAA, implicit
 * and null MX, NXDOMAIN vs temporary failures, TTL cache, merged lookups, eviction, fallback
 * to the resolv.conf servers) is checked against dnsmasq's own answers, and "how many queries
 * reached the server" is read from dnsmasq's --log-queries log, not from our counters alone.
 * Callbacks run on the resolver thread; they only store the result and post a semaphore, and
 * every assertion runs on the test thread.
 */
#include "dns/dns.h"
#include "tests/unit/dns/dnsmasq_fx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

struct fx {
	struct dnsmasq m;
	struct dnsmasq m2;   /* a second server some tests start; teardown stops it */
	int hole, hole_port; /* UDP socket nobody reads: the upstream of timeout.test */
	char servers[64];
	struct dns_opts o;
	struct dns *d;
};

struct wait {
	sem_t sem;
	struct dns_mx_result *r;
};

static void on_mx(void *arg, struct dns_mx_result *r)
{
	struct wait *w = arg;
	w->r = r;
	sem_post(&w->sem);
}

/* Resolve NAME: from the cache when possible (USE_CACHE), else through the resolver thread.
 * No assertion (callable from any thread); NULL when the call was refused. */
static struct dns_mx_result *resolve_any(struct dns *d, const char *name, int use_cache)
{
	struct wait w = {.r = NULL};
	struct dns_mx_result *c = NULL;
	sem_init(&w.sem, 0, 0);
	if (dns_resolve_mx(d, name, on_mx, &w, use_cache ? &c : NULL) == 0 && !c) {
		sem_wait(&w.sem);
		c = w.r;
	}
	sem_destroy(&w.sem);
	return c;
}

/* resolve_any on the test thread, asserting that an answer came. */
static struct dns_mx_result *resolve(struct dns *d, const char *name, int use_cache)
{
	struct dns_mx_result *r = resolve_any(d, name, use_cache);
	assert_non_null(r);
	return r;
}

static int hole_open(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	*port = ntohs(sa.sin_port);
	return fd;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char srv[64];
	if (!f || (f->hole = hole_open(&f->hole_port)) < 0)
		return -1;
	snprintf(srv, sizeof(srv), "--server=/timeout.test/127.0.0.1#%d", f->hole_port);
	const char *const args[] = {"--local-ttl=30",
				    "--mx-host=pref.test,mxlow.pref.test,5",
				    "--mx-host=pref.test,mxa.pref.test,10",
				    "--mx-host=pref.test,mxb.pref.test,10",
				    "--mx-host=pref.test,mxc.pref.test,10",
				    "--mx-host=pref.test,mxhigh.pref.test,20",
				    "--host-record=mxlow.pref.test,127.0.0.11",
				    "--host-record=mxa.pref.test,127.0.0.12",
				    "--host-record=mxb.pref.test,127.0.0.13",
				    "--host-record=mxc.pref.test,127.0.0.14",
				    "--host-record=mxhigh.pref.test,127.0.0.15",
				    "--mx-host=both.test,dual.both.test,10",
				    "--host-record=dual.both.test,127.0.0.2,::2",
				    "--mx-host=six.test,v6.six.test,10",
				    "--host-record=v6.six.test,::1",
				    "--mx-host=null.test,.,0",
				    "--address=/nx.test/",
				    srv,
				    "--auth-zone=auth.test",
				    "--auth-server=ns.auth.test",
				    "--host-record=implicit.auth.test,127.0.0.9",
				    NULL};
	if (dnsmasq_start(&f->m, args) < 0)
		return -1;
	snprintf(f->servers, sizeof(f->servers), "127.0.0.1:%d", f->m.port);
	f->o = (struct dns_opts){.servers = f->servers,
				 .timeout_ms = 300,
				 .tries = 1,
				 .implicit_mx = 1,
				 .max_mx_hosts = 10};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	dns_close(f->d);
	dnsmasq_stop(&f->m);
	dnsmasq_stop(&f->m2);
	close(f->hole);
	free(f);
	return 0;
}

static struct dns *fx_open(struct fx *f)
{
	assert_int_equal(dns_open(&f->o, &f->d), 0);
	return f->d;
}

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* ---- tests ---- */

/* Preference order holds on every lookup; the three hosts at preference 10 each come first
 * among their equals in a fair share of 90 lookups (expected 30 each; < 10 is ~1e-5 likely). */
static void test_pref_order_and_shuffle(void **state)
{
	struct fx *f = *state;
	struct dns *d = fx_open(f);
	int first[3] = {0, 0, 0};
	for (int i = 0; i < 90; i++) {
		struct dns_mx_result *r = resolve(d, "Pref.Test.", 1);
		assert_int_equal(r->status, DNS_OK);
		assert_int_equal(r->nhosts, 5);
		assert_string_equal(r->hosts[0].name, "mxlow.pref.test");
		assert_int_equal(r->hosts[0].pref, 5);
		for (int h = 1; h <= 3; h++)
			assert_int_equal(r->hosts[h].pref, 10);
		assert_string_equal(r->hosts[4].name, "mxhigh.pref.test");
		assert_string_equal(r->hosts[4].addrs[0].text, "127.0.0.15");
		first[r->hosts[1].name[2] - 'a']++;
		dns_mx_result_free(r);
	}
	for (int i = 0; i < 3; i++)
		assert_true(first[i] >= 10);
	assert_int_equal(dnsmasq_queries(&f->m, "MX", "pref.test"), 1);
}

/* max_mx_hosts caps the hosts of a result (the lowest preferences are kept). */
static void test_max_mx_hosts(void **state)
{
	struct fx *f = *state;
	f->o.max_mx_hosts = 2;
	struct dns_mx_result *r = resolve(fx_open(f), "pref.test", 1);
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->nhosts, 2);
	assert_string_equal(r->hosts[0].name, "mxlow.pref.test");
	assert_int_equal(r->hosts[1].pref, 10);
	assert_int_equal(dnsmasq_queries(&f->m, "A", "mxhigh.pref.test"), 0);
	dns_mx_result_free(r);
}

/* Each MX host is resolved to A and AAAA; an AAAA-only host has just its IPv6 address. */
static void test_a_and_aaaa(void **state)
{
	struct fx *f = *state;
	struct dns *d = fx_open(f);
	struct dns_mx_result *r = resolve(d, "both.test", 1);
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->hosts[0].naddrs, 2);
	assert_int_equal(r->hosts[0].addrs[0].family, AF_INET);
	assert_string_equal(r->hosts[0].addrs[0].text, "127.0.0.2");
	assert_int_equal(r->hosts[0].addrs[1].family, AF_INET6);
	assert_string_equal(r->hosts[0].addrs[1].text, "::2");
	assert_true(r->hosts[0].addrs[1].ttl > 0 && r->hosts[0].addrs[1].ttl <= 30);
	dns_mx_result_free(r);
	r = resolve(d, "six.test", 1);
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->hosts[0].naddrs, 1);
	assert_string_equal(r->hosts[0].addrs[0].text, "::1");
	assert_int_equal(dnsmasq_queries(&f->m, "A", "v6.six.test"), 1);
	assert_int_equal(dnsmasq_queries(&f->m, "AAAA", "v6.six.test"), 1);
	dns_mx_result_free(r);
}

/* No MX record: with implicit_mx the domain's own address is its MX (preference 0). */
static void test_implicit_mx_on(void **state)
{
	struct fx *f = *state;
	struct dns_mx_result *r = resolve(fx_open(f), "implicit.auth.test", 1);
	assert_int_equal(r->status, DNS_OK);
	assert_true(r->implicit);
	assert_int_equal(r->nhosts, 1);
	assert_string_equal(r->hosts[0].name, "implicit.auth.test");
	assert_int_equal(r->hosts[0].pref, 0);
	assert_string_equal(r->hosts[0].addrs[0].text, "127.0.0.9");
	dns_mx_result_free(r);
}

/* No MX record and implicit_mx off: a permanent DNS_NO_MX, and no address lookup. */
static void test_implicit_mx_off(void **state)
{
	struct fx *f = *state;
	f->o.implicit_mx = 0;
	struct dns_mx_result *r = resolve(fx_open(f), "implicit.auth.test", 1);
	assert_int_equal(r->status, DNS_NO_MX);
	assert_true(dns_status_permanent(r->status));
	assert_int_equal(r->nhosts, 0);
	assert_int_equal(dnsmasq_queries(&f->m, "A", "implicit.auth.test"), 0);
	dns_mx_result_free(r);
}

/* A single "0 ." MX is a null MX: permanent, no hosts. */
static void test_null_mx(void **state)
{
	struct fx *f = *state;
	struct dns_mx_result *r = resolve(fx_open(f), "null.test", 1);
	assert_int_equal(r->status, DNS_NULL_MX);
	assert_true(dns_status_permanent(r->status));
	assert_int_equal(r->nhosts, 0);
	assert_non_null(strstr(r->reason, "null MX"));
	dns_mx_result_free(r);
}

/* NXDOMAIN is permanent. Without a SOA (dnsmasq --address=/nx.test/) it is not cached (RFC
 * 2308 section 5) unless min_ttl says so. */
static void test_nxdomain(void **state)
{
	struct fx *f = *state;
	struct dns *d = fx_open(f);
	for (int i = 0; i < 2; i++) {
		struct dns_mx_result *r = resolve(d, "nope.nx.test", i);
		assert_int_equal(r->status, DNS_NXDOMAIN);
		assert_true(dns_status_permanent(r->status));
		assert_non_null(strstr(r->reason, "NXDOMAIN"));
		dns_mx_result_free(r);
	}
	assert_int_equal(dnsmasq_queries(&f->m, "MX", "nope.nx.test"), 2);
	dns_close(d);
	f->o.min_ttl = 5;
	f->d = NULL;
	d = fx_open(f);
	for (int i = 0; i < 2; i++)
		dns_mx_result_free(resolve(d, "nope.nx.test", 1));
	assert_int_equal(dnsmasq_queries(&f->m, "MX", "nope.nx.test"), 3);
}

/* Negative answers with the zone's SOA (an authoritative dnsmasq, SOA TTL 40) are cached per
 * RFC 2308, NXDOMAIN and NODATA alike, and expire by neg_max_ttl (1 s here). */
static void test_negative_cache_soa(void **state)
{
	struct fx *f = *state;
	char list[64];
	const char *const args[] = {"--auth-zone=auth.test", "--auth-server=ns.auth.test,127.0.0.1",
				    "--auth-ttl=40", "--host-record=noaddr.auth.test,127.0.0.8",
				    NULL};
	assert_int_equal(dnsmasq_start(&f->m2, args), 0);
	snprintf(list, sizeof(list), "127.0.0.1:%d", f->m2.port);
	f->o.servers = list;
	f->o.neg_max_ttl = 1;
	f->o.implicit_mx = 0;
	struct dns *d = fx_open(f);
	for (int i = 0; i < 3; i++) {
		if (i == 2)
			sleep_ms(1100);
		struct dns_mx_result *r = resolve(d, "gone.auth.test", 1);
		assert_int_equal(r->status, DNS_NXDOMAIN);
		assert_int_equal(r->ttl, 1);
		dns_mx_result_free(r);
		r = resolve(d, "noaddr.auth.test", 1);
		assert_int_equal(r->status, DNS_NO_MX);
		dns_mx_result_free(r);
	}
	assert_int_equal(dnsmasq_queries(&f->m2, "MX", "gone.auth.test"), 2);
	assert_int_equal(dnsmasq_queries(&f->m2, "MX", "noaddr.auth.test"), 2);
	dns_close(d);
	f->o.neg_max_ttl = 3600; /* unclamped: min(SOA TTL, SOA MINIMUM) = 40 s */
	f->d = NULL;
	struct dns_mx_result *r = resolve(fx_open(f), "gone.auth.test", 1);
	assert_int_equal(r->status, DNS_NXDOMAIN);
	assert_true(r->ttl > 35 && r->ttl <= 40);
	dns_mx_result_free(r);
	dnsmasq_stop(&f->m2);
}

/* An upstream that never answers gives a temporary failure after timeout_ms x tries; so does
 * REFUSED (dnsmasq refuses names it neither serves nor forwards). */
static void test_timeout_and_refused_tempfail(void **state)
{
	struct fx *f = *state;
	struct dns *d = fx_open(f);
	struct dns_mx_result *r = resolve(d, "x.timeout.test", 1);
	assert_int_equal(r->status, DNS_TEMPFAIL);
	assert_false(dns_status_permanent(r->status));
	assert_non_null(strstr(r->reason, "Timeout"));
	dns_mx_result_free(r);
	r = resolve(d, "elsewhere.example", 1);
	assert_int_equal(r->status, DNS_TEMPFAIL);
	dns_mx_result_free(r);
	r = resolve(d, "x.timeout.test", 1); /* temporary failures are not cached */
	assert_int_equal(r->status, DNS_TEMPFAIL);
	dns_mx_result_free(r);
	assert_int_equal(dnsmasq_queries(&f->m, "MX", "x.timeout.test"), 2);
}

/* Within the TTL a second lookup is answered from the cache on the caller's thread:
 * dnsmasq sees one MX, one A and one AAAA query; the counters say hit. */
static void test_cache_hit(void **state)
{
	struct fx *f = *state;
	struct dns *d = fx_open(f);
	struct dns_counters c;
	dns_mx_result_free(resolve(d, "both.test", 1));
	dns_counters_get(d, &c);
	assert_int_equal(c.queries_sent, 3);
	assert_int_equal(c.mx_from_cache, 0);
	dns_mx_result_free(resolve(d, "both.test", 1));
	dns_mx_result_free(resolve(d, "both.test", 0)); /* via the resolver thread: hits too */
	dns_counters_get(d, &c);
	assert_int_equal(c.queries_sent, 3);
	assert_int_equal(c.mx_from_cache, 1);
	assert_int_equal(c.cache_hits, 6);
	assert_int_equal(dnsmasq_queries(&f->m, "MX", "both.test"), 1);
	assert_int_equal(dnsmasq_queries(&f->m, "A", "dual.both.test"), 1);
	assert_int_equal(dnsmasq_queries(&f->m, "AAAA", "dual.both.test"), 1);
}

/* max_ttl clamps a 30 s TTL to 1 s: after it the name is asked again. */
static void test_expiry(void **state)
{
	struct fx *f = *state;
	f->o.max_ttl = 1;
	struct dns *d = fx_open(f);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 2; i++)
			dns_mx_result_free(resolve(d, "both.test", 1));
		assert_int_equal(dnsmasq_queries(&f->m, "MX", "both.test"), round + 1);
		assert_int_equal(dnsmasq_queries(&f->m, "AAAA", "dual.both.test"), round + 1);
		sleep_ms(1100);
	}
}

struct racer {
	pthread_barrier_t *bar;
	struct dns *d;
	const char *name;
	struct dns_mx_result *r;
};

static void *race(void *arg)
{
	struct racer *rc = arg;
	struct wait w = {.r = NULL};
	sem_init(&w.sem, 0, 0);
	pthread_barrier_wait(rc->bar);
	if (dns_resolve_mx(rc->d, rc->name, on_mx, &w, NULL) == 0) {
		sem_wait(&w.sem);
		rc->r = w.r;
	}
	sem_destroy(&w.sem);
	return NULL;
}

/* Run N threads asking NAME at once; returns how many got STATUS. */
static int race_all(struct dns *d, const char *name, enum dns_status status)
{
	enum { N = 16 };
	pthread_t th[N];
	struct racer rc[N];
	pthread_barrier_t bar;
	int good = 0;
	pthread_barrier_init(&bar, NULL, N);
	for (int i = 0; i < N; i++) {
		rc[i] = (struct racer){.bar = &bar, .d = d, .name = name};
		pthread_create(&th[i], NULL, race, &rc[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		good += rc[i].r && rc[i].r->status == status;
		dns_mx_result_free(rc[i].r);
	}
	pthread_barrier_destroy(&bar);
	return good;
}

/* 16 threads ask one name at once: one query reaches dnsmasq. With an upstream that never
 * answers (300 ms timeout) every later ask joins the one in flight: merged == 15. */
static void test_merged_lookups(void **state)
{
	struct fx *f = *state;
	struct dns *d = fx_open(f);
	struct dns_counters c;
	assert_int_equal(race_all(d, "slow.timeout.test", DNS_TEMPFAIL), 16);
	dns_counters_get(d, &c);
	assert_int_equal(c.merged, 15);
	assert_int_equal(c.queries_sent, 1);
	assert_int_equal(dnsmasq_queries(&f->m, "MX", "slow.timeout.test"), 1);
	assert_int_equal(race_all(d, "pref.test", DNS_OK), 16);
	assert_int_equal(dnsmasq_queries(&f->m, "MX", "pref.test"), 1);
	assert_int_equal(dnsmasq_queries(&f->m, "A", "mxa.pref.test"), 1);
}

/* max_entries bounds the cache: older record sets are evicted (LRU) and asked again. */
static void test_eviction_bound(void **state)
{
	struct fx *f = *state;
	f->o.max_entries = 4;
	struct dns *d = fx_open(f);
	struct dns_counters c;
	const char *names[] = {"both.test", "six.test", "pref.test", "null.test"};
	for (int i = 0; i < 4; i++) {
		dns_mx_result_free(resolve(d, names[i], 1));
		dns_counters_get(d, &c);
		assert_true(c.entries <= 4);
	}
	assert_true(c.evictions >= 4);
	struct dns_mx_result *r = resolve(d, "both.test", 1);
	assert_int_equal(r->status, DNS_OK);
	dns_mx_result_free(r);
	assert_int_equal(dnsmasq_queries(&f->m, "MX", "both.test"), 2);
}

/* Write a resolv.conf naming 127.0.0.1:PORT into DIR, after a scoped IPv6 server c-ares cannot
 * use (skipped); returns its path in PATH. */
static void write_resolv(const char *dir, int port, char *path, size_t cap)
{
	snprintf(path, cap, "%s/resolv.conf", dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp,
		"# test\nsearch nowhere.test\nnameserver fe80::1%%eth0\nnameserver 127.0.0.1:%d\n",
		port);
	fclose(fp);
}

/* Listed servers that never answer: with fallback_auto the resolv.conf server (a second
 * dnsmasq) answers; without it the lookup fails temporarily; "auto" uses it directly. */
static void test_fallback_auto(void **state)
{
	struct fx *f = *state;
	char path[200], list[64];
	const char *const args[] = {"--mx-host=fb.test,mx.fb.test,10",
				    "--host-record=mx.fb.test,127.0.0.7", NULL};
	assert_int_equal(dnsmasq_start(&f->m2, args), 0);
	write_resolv(f->m2.dir, f->m2.port, path, sizeof(path));
	snprintf(list, sizeof(list), "127.0.0.1:%d", f->hole_port);
	for (int mode = 0; mode < 3; mode++) {
		struct dns *d;
		struct dns_counters c;
		f->o.servers = mode == 2 ? "auto" : list;
		f->o.resolv_conf = path;
		f->o.fallback_auto = mode == 1;
		assert_int_equal(dns_open(&f->o, &d), 0);
		struct dns_mx_result *r = resolve(d, "fb.test", 1);
		dns_counters_get(d, &c);
		assert_int_equal(r->status, mode == 0 ? DNS_TEMPFAIL : DNS_OK);
		if (mode)
			assert_string_equal(r->hosts[0].addrs[0].text, "127.0.0.7");
		assert_int_equal(c.fallback_queries, mode == 1 ? 3 : 0);
		dns_mx_result_free(r);
		dns_close(d);
	}
	assert_int_equal(dnsmasq_queries(&f->m2, "MX", "fb.test"), 2);
	unlink(path);
	dnsmasq_stop(&f->m2);
}

/* Server lists: IPv4 and [IPv6] with ports are accepted, garbage is -EINVAL. */
static void test_server_lists(void **state)
{
	struct fx *f = *state;
	struct dns *d;
	const char *bad[] = {"nonsense", "127.0.0.1:99999", "[::1", "", "1.2.3.4:"};
	f->o.servers = "127.0.0.1:53;[::1]:5353; ::1";
	assert_int_equal(dns_open(&f->o, &d), 0);
	dns_close(d);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f->o.servers = bad[i];
		assert_int_equal(dns_open(&f->o, &d), -EINVAL);
	}
	f->o.servers = "auto";
	f->o.resolv_conf = "/nonexistent/resolv.conf";
	assert_int_equal(dns_open(&f->o, &d), -ENOENT);
	f->o.servers = f->servers;
	f->o.resolv_conf = NULL;
	d = fx_open(f);
	assert_int_equal(dns_resolve_mx(d, "bad name", on_mx, NULL, NULL), -EINVAL);
	assert_int_equal(dns_resolve_mx(d, "", on_mx, NULL, NULL), -EINVAL);
}

/* dns_close answers a lookup still in flight (DNS_TEMPFAIL) before it returns. */
static void test_close_answers_pending(void **state)
{
	struct fx *f = *state;
	f->o.timeout_ms = 5000;
	struct dns *d = fx_open(f);
	struct wait w = {.r = NULL};
	sem_init(&w.sem, 0, 0);
	assert_int_equal(dns_resolve_mx(d, "hang.timeout.test", on_mx, &w, NULL), 0);
	sleep_ms(50);
	dns_close(d);
	f->d = NULL;
	assert_int_equal(sem_trywait(&w.sem), 0);
	assert_int_equal(w.r->status, DNS_TEMPFAIL);
	dns_mx_result_free(w.r);
	sem_destroy(&w.sem);
}

struct reader {
	struct dns *d;
	int ok, bad;
};

static void *read_loop(void *arg)
{
	struct reader *rd = arg;
	const char *names[] = {"pref.test", "both.test", "six.test", "null.test"};
	uint64_t end = 0;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	end = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + 1500;
	for (int i = 0;; i++) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 > end)
			break;
		struct dns_mx_result *r = resolve_any(rd->d, names[i % 4], 1);
		if (r && r->status == (i % 4 == 3 ? DNS_NULL_MX : DNS_OK))
			rd->ok++;
		else
			rd->bad++;
		dns_mx_result_free(r);
	}
	return NULL;
}

/* 8 threads read the cache for 1.5 s while entries expire (max_ttl 1 s) and get evicted
 * (max_entries 8): every answer stays right, and far fewer queries than lookups are sent. */
static void test_concurrent_readers(void **state)
{
	struct fx *f = *state;
	f->o.max_ttl = 1;
	f->o.max_entries = 8;
	struct dns *d = fx_open(f);
	struct reader rd[8];
	pthread_t th[8];
	struct dns_counters c;
	for (int i = 0; i < 8; i++) {
		rd[i] = (struct reader){.d = d};
		pthread_create(&th[i], NULL, read_loop, &rd[i]);
	}
	int ok = 0, bad = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ok += rd[i].ok;
		bad += rd[i].bad;
	}
	dns_counters_get(d, &c);
	assert_int_equal(bad, 0);
	assert_true(ok > 100);
	assert_true(c.entries <= 8);
	assert_true(c.queries_sent < (uint64_t)ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
	    T(test_pref_order_and_shuffle),
	    T(test_max_mx_hosts),
	    T(test_a_and_aaaa),
	    T(test_implicit_mx_on),
	    T(test_implicit_mx_off),
	    T(test_null_mx),
	    T(test_nxdomain),
	    T(test_negative_cache_soa),
	    T(test_timeout_and_refused_tempfail),
	    T(test_cache_hit),
	    T(test_expiry),
	    T(test_merged_lookups),
	    T(test_eviction_bound),
	    T(test_fallback_auto),
	    T(test_server_lists),
	    T(test_close_answers_pending),
	    T(test_concurrent_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
