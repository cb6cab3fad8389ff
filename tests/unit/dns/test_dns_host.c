/* test_dns_host — unit tests for dns_resolve_host (a relay given by host name) against real
 * dnsmasq servers on 127.0.0.1 (ephemeral ports).
 *
 * Why this shape: the promises are about the wire (only A and AAAA of the name are asked, never
 * its MX; answers are cached for their TTL, negative ones per RFC 2308; concurrent lookups are
 * merged), so dnsmasq's --log-queries log is the witness, beside the module's counters. Two
 * servers: an authoritative one for host.test (NODATA / NXDOMAIN with a SOA, so negative answers
 * are cacheable) and a plain one (per-record TTLs, REFUSED for unknown types, and timeout.test
 * forwarded to a UDP socket nobody reads). Callbacks only store the result and post a
 * semaphore; every assertion runs on the test thread.
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
	struct dnsmasq auth;  /* authoritative for host.test */
	struct dnsmasq plain; /* ttl.test, timeout.test, nx.test */
	int hole, hole_port;  /* UDP socket nobody reads: the upstream of timeout.test */
	char auth_srv[64], plain_srv[64];
	struct dns_opts o;
	struct dns *d;
};

struct wait {
	sem_t sem;
	struct dns_mx_result *r;
};

static void on_answer(void *arg, struct dns_mx_result *r)
{
	struct wait *w = arg;
	w->r = r;
	sem_post(&w->sem);
}

/* Resolve host NAME: from the cache when possible (USE_CACHE), else through the resolver
 * thread. *VIA_CACHE (optional) tells which. No assertion; NULL when the call was refused. */
static struct dns_mx_result *host_any(struct dns *d, const char *name, int use_cache,
				      int *via_cache)
{
	struct wait w = {.r = NULL};
	struct dns_mx_result *c = NULL;
	sem_init(&w.sem, 0, 0);
	int rc = dns_resolve_host(d, name, on_answer, &w, use_cache ? &c : NULL);
	if (via_cache)
		*via_cache = c != NULL;
	if (rc == 0 && !c) {
		sem_wait(&w.sem);
		c = w.r;
	}
	sem_destroy(&w.sem);
	return c;
}

/* host_any on the test thread: asserts an answer with one host named NAME (normalised). */
static struct dns_mx_result *host(struct dns *d, const char *name, int use_cache)
{
	struct dns_mx_result *r = host_any(d, name, use_cache, NULL);
	assert_non_null(r);
	assert_int_equal(r->nhosts, 1);
	assert_int_equal(r->hosts[0].pref, 0);
	assert_int_equal(r->hosts[0].status, r->status);
	assert_int_equal(r->hosts[0].ttl, r->ttl);
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

static int start_servers(struct fx *f)
{
	char srv[64];
	const char *const auth[] = {"--auth-zone=host.test",
				    "--auth-server=ns.host.test,127.0.0.1",
				    "--auth-ttl=30",
				    "--host-record=a4.host.test,127.0.0.21",
				    "--host-record=a6.host.test,::21",
				    "--host-record=both.host.test,127.0.0.22,::22",
				    "--mx-host=mxonly.host.test,a4.host.test,10",
				    NULL};
	snprintf(srv, sizeof(srv), "--server=/timeout.test/127.0.0.1#%d", f->hole_port);
	const char *const plain[] = {"--local-ttl=30",
				     "--host-record=both.ttl.test,127.0.0.23,40",
				     "--host-record=both.ttl.test,::23,20",
				     "--host-record=two.ttl.test,127.0.0.24,50",
				     "--host-record=two.ttl.test,127.0.0.25,25",
				     "--address=/nx.test/",
				     srv,
				     NULL};
	if (dnsmasq_start(&f->auth, auth) < 0 || dnsmasq_start(&f->plain, plain) < 0)
		return -1;
	snprintf(f->auth_srv, sizeof(f->auth_srv), "127.0.0.1:%d", f->auth.port);
	snprintf(f->plain_srv, sizeof(f->plain_srv), "127.0.0.1:%d", f->plain.port);
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	*state = f;
	if ((f->hole = hole_open(&f->hole_port)) < 0 || start_servers(f) < 0)
		return -1;
	f->o = (struct dns_opts){.servers = f->auth_srv,
				 .timeout_ms = 300,
				 .tries = 1,
				 .implicit_mx = 1,
				 .max_mx_hosts = 10};
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	dns_close(f->d);
	dnsmasq_stop(&f->auth);
	dnsmasq_stop(&f->plain);
	if (f->hole > 0)
		close(f->hole);
	free(f);
	return 0;
}

/* Open the resolver on the authoritative server (PLAIN = 0) or the plain one. */
static struct dns *fx_open(struct fx *f, int plain)
{
	f->o.servers = plain ? f->plain_srv : f->auth_srv;
	assert_int_equal(dns_open(&f->o, &f->d), 0);
	return f->d;
}

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* Queries of TYPE for NAME that reached the authoritative server. */
static int auth_q(struct fx *f, const char *type, const char *name)
{
	return dnsmasq_queries(&f->auth, type, name);
}

/* ---- tests ---- */

/* A-only name: its one IPv4 address, TTL from the answer; AAAA asked (NODATA), MX never. */
static void test_a_only(void **state)
{
	struct fx *f = *state;
	struct dns_mx_result *r = host(fx_open(f, 0), "A4.Host.Test.", 1);
	assert_int_equal(r->status, DNS_OK);
	assert_string_equal(r->domain, "a4.host.test");
	assert_string_equal(r->hosts[0].name, "a4.host.test");
	assert_int_equal(r->hosts[0].naddrs, 1);
	assert_int_equal(r->hosts[0].addrs[0].family, AF_INET);
	assert_string_equal(r->hosts[0].addrs[0].text, "127.0.0.21");
	assert_true(r->ttl > 25 && r->ttl <= 30);
	dns_mx_result_free(r);
	assert_int_equal(auth_q(f, "A", "a4.host.test"), 1);
	assert_int_equal(auth_q(f, "AAAA", "a4.host.test"), 1);
	assert_int_equal(auth_q(f, "MX", "a4.host.test"), 0);
}

/* AAAA-only name: its one IPv6 address. */
static void test_aaaa_only(void **state)
{
	struct fx *f = *state;
	struct dns_mx_result *r = host(fx_open(f, 0), "a6.host.test", 1);
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->hosts[0].naddrs, 1);
	assert_int_equal(r->hosts[0].addrs[0].family, AF_INET6);
	assert_string_equal(r->hosts[0].addrs[0].text, "::21");
	dns_mx_result_free(r);
	assert_int_equal(auth_q(f, "MX", "a6.host.test"), 0);
}

/* Both families: A first, then AAAA, each address with its own TTL; the result's TTL is the
 * smallest (A 40 s, AAAA 20 s). Same order from the authoritative server. */
static void test_both_smallest_ttl(void **state)
{
	struct fx *f = *state;
	struct dns_mx_result *r = host(fx_open(f, 1), "both.ttl.test", 1);
	assert_int_equal(r->status, DNS_OK);
	assert_int_equal(r->hosts[0].naddrs, 2);
	assert_string_equal(r->hosts[0].addrs[0].text, "127.0.0.23");
	assert_int_equal(r->hosts[0].addrs[1].family, AF_INET6);
	assert_string_equal(r->hosts[0].addrs[1].text, "::23");
	assert_true(r->hosts[0].addrs[0].ttl > 35 && r->hosts[0].addrs[0].ttl <= 40);
	assert_true(r->hosts[0].addrs[1].ttl > 15 && r->hosts[0].addrs[1].ttl <= 20);
	assert_true(r->ttl > 15 && r->ttl <= 20);
	dns_mx_result_free(r);
	dns_close(f->d);
	r = host(fx_open(f, 0), "both.host.test", 1);
	assert_int_equal(r->status, DNS_OK);
	assert_string_equal(r->hosts[0].addrs[0].text, "127.0.0.22");
	assert_string_equal(r->hosts[0].addrs[1].text, "::22");
	dns_mx_result_free(r);
}

/* A answered, AAAA refused (a temporary failure): the A addresses are used (DNS_OK) with the
 * smallest A TTL (50 and 25 s); the refused AAAA is not cached, so it is asked again. */
static void test_a_with_aaaa_failed(void **state)
{
	struct fx *f = *state;
	struct dns *d = fx_open(f, 1);
	struct dns_counters c;
	for (int i = 0; i < 2; i++) {
		struct dns_mx_result *r = host(d, "two.ttl.test", 1);
		assert_int_equal(r->status, DNS_OK);
		assert_int_equal(r->hosts[0].naddrs, 2);
		assert_int_equal(r->hosts[0].addrs[1].family, AF_INET);
		assert_true(r->ttl > 20 && r->ttl <= 25);
		dns_mx_result_free(r);
	}
	dns_counters_get(d, &c);
	assert_int_equal(c.host_from_cache, 0);
	assert_int_equal(dnsmasq_queries(&f->plain, "A", "two.ttl.test"), 1);
	assert_int_equal(dnsmasq_queries(&f->plain, "AAAA", "two.ttl.test"), 2);
}

/* NXDOMAIN: permanent, no address, the negative TTL of the zone's SOA (30 s), cached: a second
 * lookup is answered on the caller's thread without a query. */
static void test_nxdomain(void **state)
{
	struct fx *f = *state;
	struct dns *d = fx_open(f, 0);
	struct dns_counters c;
	for (int i = 0; i < 2; i++) {
		int via = -1;
		struct dns_mx_result *r = host_any(d, "gone.host.test", 1, &via);
		assert_non_null(r);
		assert_int_equal(via, i);
		assert_int_equal(r->status, DNS_NXDOMAIN);
		assert_true(dns_status_permanent(r->status));
		assert_int_equal(r->nhosts, 1);
		assert_int_equal(r->hosts[0].naddrs, 0);
		assert_true(r->ttl > 25 && r->ttl <= 30);
		assert_non_null(strstr(r->reason, "NXDOMAIN"));
		dns_mx_result_free(r);
	}
	dns_counters_get(d, &c);
	assert_int_equal(c.queries_sent, 2);
	assert_int_equal(c.host_from_cache, 1);
	assert_int_equal(auth_q(f, "A", "gone.host.test"), 1);
	assert_int_equal(auth_q(f, "MX", "gone.host.test"), 0);
	dns_close(d);
	struct dns_mx_result *r = host(fx_open(f, 1), "nope.nx.test", 1); /* no SOA: ttl 0 */
	assert_int_equal(r->status, DNS_NXDOMAIN);
	assert_int_equal(r->ttl, 0);
	dns_mx_result_free(r);
}

/* A name with only an MX record: DNS_NO_ADDRESS with the negative TTL; the MX is neither asked
 * nor followed (its target's A is never asked), with implicit_mx on or off. */
static void test_mx_only_no_address(void **state)
{
	struct fx *f = *state;
	for (int imx = 1; imx >= 0; imx--) {
		f->o.implicit_mx = imx;
		struct dns_mx_result *r = host(fx_open(f, 0), "mxonly.host.test", 1);
		assert_int_equal(r->status, DNS_NO_ADDRESS);
		assert_true(dns_status_permanent(r->status));
		assert_int_equal(r->hosts[0].naddrs, 0);
		assert_true(r->ttl > 25 && r->ttl <= 30);
		dns_mx_result_free(r);
		dns_close(f->d);
		f->d = NULL;
	}
	assert_int_equal(auth_q(f, "A", "mxonly.host.test"), 2);
	assert_int_equal(auth_q(f, "AAAA", "mxonly.host.test"), 2);
	assert_int_equal(auth_q(f, "MX", "mxonly.host.test"), 0);
	assert_int_equal(auth_q(f, "A", "a4.host.test"), 0);
}

/* A server that never answers: DNS_TEMPFAIL (not permanent, ttl 0), not cached. */
static void test_timeout_tempfail(void **state)
{
	struct fx *f = *state;
	struct dns *d = fx_open(f, 1);
	for (int i = 0; i < 2; i++) {
		struct dns_mx_result *r = host(d, "x.timeout.test", 1);
		assert_int_equal(r->status, DNS_TEMPFAIL);
		assert_false(dns_status_permanent(r->status));
		assert_int_equal(r->ttl, 0);
		assert_int_equal(r->hosts[0].naddrs, 0);
		assert_non_null(strstr(r->reason, "Timeout"));
		dns_mx_result_free(r);
	}
	assert_int_equal(dnsmasq_queries(&f->plain, "A", "x.timeout.test"), 2);
	assert_int_equal(dnsmasq_queries(&f->plain, "AAAA", "x.timeout.test"), 2);
	assert_int_equal(dnsmasq_queries(&f->plain, "MX", "x.timeout.test"), 0);
}

/* Within the TTL the second lookup comes from the cache on the caller's thread; without
 * `cached` the resolver thread answers from the cache too. One A and one AAAA query in all. */
static void test_cache_hit(void **state)
{
	struct fx *f = *state;
	struct dns *d = fx_open(f, 0);
	struct dns_counters c;
	int via = -1;
	dns_mx_result_free(host_any(d, "a4.host.test", 1, &via));
	assert_int_equal(via, 0);
	dns_counters_get(d, &c);
	assert_int_equal(c.queries_sent, 2);
	assert_int_equal(c.cache_misses, 2);
	assert_int_equal(c.host_from_cache, 0);
	struct dns_mx_result *r = host_any(d, "a4.host.test", 1, &via);
	assert_int_equal(via, 1);
	assert_string_equal(r->hosts[0].addrs[0].text, "127.0.0.21");
	dns_mx_result_free(r);
	dns_mx_result_free(host(d, "a4.host.test", 0));
	dns_counters_get(d, &c);
	assert_int_equal(c.queries_sent, 2);
	assert_int_equal(c.host_from_cache, 1);
	assert_int_equal(c.cache_hits, 4);
	assert_int_equal(c.mx_from_cache, 0);
	assert_int_equal(auth_q(f, "A", "a4.host.test"), 1);
	assert_int_equal(auth_q(f, "AAAA", "a4.host.test"), 1);
}

/* max_ttl clamps the 30 s TTLs to 1 s: the result says 1, and after it the name is asked
 * again (positive and negative answers alike). */
static void test_ttl_expiry(void **state)
{
	struct fx *f = *state;
	f->o.max_ttl = 1;
	struct dns *d = fx_open(f, 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 2; i++) {
			struct dns_mx_result *r = host(d, "a4.host.test", 1);
			assert_int_equal(r->status, DNS_OK);
			assert_true(r->ttl <= 1);
			dns_mx_result_free(r);
		}
		assert_int_equal(auth_q(f, "A", "a4.host.test"), round + 1);
		assert_int_equal(auth_q(f, "AAAA", "a4.host.test"), round + 1);
		sleep_ms(1100);
	}
}

/* Numeric addresses are answered at once, without a query: in *cached, or through the
 * callback when no `cached` is given. */
static void test_literals(void **state)
{
	struct fx *f = *state;
	struct dns *d = fx_open(f, 0);
	struct dns_counters c;
	const char *in[] = {"127.0.0.1", "::1", "[::1]", "2001:DB8::A", "[192.0.2.7]", "10.1.2.3."};
	const char *out[] = {"127.0.0.1", "::1", "::1", "2001:db8::a", "192.0.2.7", "10.1.2.3"};
	const int fam[] = {AF_INET, AF_INET6, AF_INET6, AF_INET6, AF_INET, AF_INET};
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		for (int use_cache = 1; use_cache >= 0; use_cache--) {
			int via = -1;
			struct dns_mx_result *r = host_any(d, in[i], use_cache, &via);
			assert_non_null(r);
			assert_int_equal(via, use_cache);
			assert_int_equal(r->status, DNS_OK);
			assert_int_equal(r->ttl, DNS_LITERAL_TTL);
			assert_int_equal(r->nhosts, 1);
			assert_int_equal(r->hosts[0].naddrs, 1);
			assert_int_equal(r->hosts[0].addrs[0].family, fam[i]);
			assert_string_equal(r->hosts[0].addrs[0].text, out[i]);
			dns_mx_result_free(r);
		}
	}
	dns_counters_get(d, &c);
	assert_int_equal(c.queries_sent, 0);
	assert_int_equal(c.cache_misses, 0);
	assert_int_equal(auth_q(f, "A", "127.0.0.1"), 0);
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
	pthread_barrier_wait(rc->bar);
	rc->r = host_any(rc->d, rc->name, 0, NULL);
	return NULL;
}

/* Run N threads asking host NAME at once (no cache fast path); returns how many got STATUS. */
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
		good += rc[i].r && rc[i].r->nhosts == 1 && rc[i].r->status == status;
		dns_mx_result_free(rc[i].r);
	}
	pthread_barrier_destroy(&bar);
	return good;
}

/* 16 threads ask one name at once: one A and one AAAA query reach the server. With a server
 * that never answers (300 ms) every later ask joins the queries in flight: merged == 2 x 15. */
static void test_merged_lookups(void **state)
{
	struct fx *f = *state;
	struct dns *d = fx_open(f, 1);
	struct dns_counters c;
	assert_int_equal(race_all(d, "slow.timeout.test", DNS_TEMPFAIL), 16);
	dns_counters_get(d, &c);
	assert_int_equal(c.merged, 30);
	assert_int_equal(c.queries_sent, 2);
	assert_int_equal(dnsmasq_queries(&f->plain, "A", "slow.timeout.test"), 1);
	assert_int_equal(dnsmasq_queries(&f->plain, "AAAA", "slow.timeout.test"), 1);
	dns_close(d);
	d = fx_open(f, 0);
	assert_int_equal(race_all(d, "both.host.test", DNS_OK), 16);
	assert_int_equal(auth_q(f, "A", "both.host.test"), 1);
	assert_int_equal(auth_q(f, "AAAA", "both.host.test"), 1);
}

/* The cache is shared with MX lookups: the implicit MX of a4.host.test fetched its A/AAAA, so
 * the host lookup of that name is a cache hit; and an MX lookup still asks MX. */
static void test_shares_mx_cache(void **state)
{
	struct fx *f = *state;
	struct dns *d = fx_open(f, 0);
	struct dns_counters c;
	struct wait w = {.r = NULL};
	sem_init(&w.sem, 0, 0);
	assert_int_equal(dns_resolve_mx(d, "a4.host.test", on_answer, &w, NULL), 0);
	sem_wait(&w.sem);
	sem_destroy(&w.sem);
	assert_int_equal(w.r->status, DNS_OK);
	assert_true(w.r->implicit);
	dns_mx_result_free(w.r);
	int via = -1;
	struct dns_mx_result *r = host_any(d, "a4.host.test", 1, &via);
	assert_int_equal(via, 1);
	assert_string_equal(r->hosts[0].addrs[0].text, "127.0.0.21");
	dns_mx_result_free(r);
	dns_counters_get(d, &c);
	assert_int_equal(c.queries_sent, 3);
	assert_int_equal(c.host_from_cache, 1);
	assert_int_equal(auth_q(f, "MX", "a4.host.test"), 1);
}

/* Bad names and a missing callback are -EINVAL; dns_close answers a host lookup still in
 * flight with DNS_TEMPFAIL (one host, no address) before it returns. */
static void test_einval_and_close(void **state)
{
	struct fx *f = *state;
	f->o.timeout_ms = 5000;
	struct dns *d = fx_open(f, 1);
	struct dns_mx_result *c = NULL;
	struct wait w = {.r = NULL};
	assert_int_equal(dns_resolve_host(d, "bad name", on_answer, NULL, NULL), -EINVAL);
	assert_int_equal(dns_resolve_host(d, "", on_answer, NULL, &c), -EINVAL);
	assert_int_equal(dns_resolve_host(d, "127.0.0.1", NULL, NULL, &c), -EINVAL);
	assert_null(c);
	sem_init(&w.sem, 0, 0);
	assert_int_equal(dns_resolve_host(d, "hang.timeout.test", on_answer, &w, &c), 0);
	assert_null(c);
	sleep_ms(50);
	dns_close(d);
	f->d = NULL;
	assert_int_equal(sem_trywait(&w.sem), 0);
	assert_int_equal(w.r->status, DNS_TEMPFAIL);
	assert_int_equal(w.r->nhosts, 1);
	assert_int_equal(w.r->hosts[0].naddrs, 0);
	dns_mx_result_free(w.r);
	sem_destroy(&w.sem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
	    T(test_a_only),
	    T(test_aaaa_only),
	    T(test_both_smallest_ttl),
	    T(test_a_with_aaaa_failed),
	    T(test_nxdomain),
	    T(test_mx_only_no_address),
	    T(test_timeout_tempfail),
	    T(test_cache_hit),
	    T(test_ttl_expiry),
	    T(test_literals),
	    T(test_merged_lookups),
	    T(test_shares_mx_cache),
	    T(test_einval_and_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
