// bench_dns — micro-benchmark of a dns/ cache hit from a caller's thread: dns_resolve_mx()
// answered entirely from the shared cache (lookups of the MX set and of every host's A and
// AAAA, shuffle, result built and freed), on 1 and 4 threads at once.
//
// Why: a shard asks dns/ for every job of a destination; the hit path must cost well under a
// microsecond and scale across shards (one mutex per cache shard). The cache is filled from a
// real dnsmasq on 127.0.0.1 (ephemeral port), started on first use and stopped at exit.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <semaphore.h>

extern "C" {
#include "dns/dns.h"
#include "tests/unit/dns/dnsmasq_fx.h"
}

namespace
{

struct Env {
	struct dnsmasq m;
	struct dns *d = nullptr;
	char servers[64];
};

Env *g_env;

void on_mx(void *arg, struct dns_mx_result *r)
{
	dns_mx_result_free(r);
	sem_post(static_cast<sem_t *>(arg));
}

void env_stop()
{
	dns_close(g_env->d);
	dnsmasq_stop(&g_env->m);
	delete g_env;
	g_env = nullptr;
}

// Resolve NAME once through the resolver thread so the cache holds it.
void warm(struct dns *d, const char *name)
{
	sem_t sem;
	sem_init(&sem, 0, 0);
	if (dns_resolve_mx(d, name, on_mx, &sem, nullptr) != 0)
		std::abort();
	sem_wait(&sem);
	sem_destroy(&sem);
}

// The shared environment: dnsmasq serving d0..d3.test (1 MX host each) and five.test (5).
struct dns *env()
{
	static std::once_flag once;
	std::call_once(once, [] {
		static const char *const args[] = {"--local-ttl=3600",
						   "--mx-host=d0.test,mx.d0.test,10",
						   "--host-record=mx.d0.test,127.0.0.2,::2",
						   "--mx-host=d1.test,mx.d1.test,10",
						   "--host-record=mx.d1.test,127.0.0.3,::3",
						   "--mx-host=d2.test,mx.d2.test,10",
						   "--host-record=mx.d2.test,127.0.0.4,::4",
						   "--mx-host=d3.test,mx.d3.test,10",
						   "--host-record=mx.d3.test,127.0.0.5,::5",
						   "--mx-host=five.test,a.five.test,10",
						   "--mx-host=five.test,b.five.test,10",
						   "--mx-host=five.test,c.five.test,20",
						   "--mx-host=five.test,d.five.test,20",
						   "--mx-host=five.test,e.five.test,30",
						   "--host-record=a.five.test,127.0.1.1,::11",
						   "--host-record=b.five.test,127.0.1.2,::12",
						   "--host-record=c.five.test,127.0.1.3,::13",
						   "--host-record=d.five.test,127.0.1.4,::14",
						   "--host-record=e.five.test,127.0.1.5,::15",
						   nullptr};
		g_env = new Env();
		if (dnsmasq_start(&g_env->m, args) != 0)
			std::abort();
		std::snprintf(g_env->servers, sizeof(g_env->servers), "127.0.0.1:%d",
			      g_env->m.port);
		struct dns_opts o = {};
		o.servers = g_env->servers;
		o.implicit_mx = 1;
		if (dns_open(&o, &g_env->d) != 0)
			std::abort();
		for (const char *n : {"d0.test", "d1.test", "d2.test", "d3.test", "five.test"})
			warm(g_env->d, n);
		std::atexit(env_stop);
	});
	return g_env->d;
}

void cache_hit(benchmark::State &state, const char *name)
{
	struct dns *d = env();
	for (auto _ : state) {
		struct dns_mx_result *r = nullptr;
		if (dns_resolve_mx(d, name, on_mx, nullptr, &r) != 0 || !r) {
			state.SkipWithError("not answered from the cache");
			break;
		}
		benchmark::DoNotOptimize(r->hosts);
		dns_mx_result_free(r);
	}
	state.SetItemsProcessed(state.iterations());
}

// Each thread its own domain (as shards own disjoint destinations): 1 MX host, A + AAAA.
void BM_dns_cache_hit_1mx(benchmark::State &state)
{
	static const char *const names[] = {"d0.test", "d1.test", "d2.test", "d3.test"};
	cache_hit(state, names[state.thread_index() % 4]);
}

// Every thread the same domain: worst case, one cache shard and the same entries' refcounts.
void BM_dns_cache_hit_same_name(benchmark::State &state)
{
	cache_hit(state, "d0.test");
}

void BM_dns_cache_hit_5mx(benchmark::State &state)
{
	cache_hit(state, "five.test");
}

} // namespace

BENCHMARK(BM_dns_cache_hit_1mx)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();
BENCHMARK(BM_dns_cache_hit_same_name)->Threads(4)->UseRealTime();
BENCHMARK(BM_dns_cache_hit_5mx)->Threads(1)->Threads(4)->UseRealTime();
