// bench_shape — micro-benchmark of engine/shape: the cost of the shaping decision.
//
// Why: every message and connection to every destination passes shape_take_msg /
// shape_take_conn, and every deferral passes shape_rules_match, from every shard. They must
// cost next to nothing next to an SMTP transaction (tens of microseconds): an unlimited rate
// a few ns (no atomic write), a limited one one CAS, and a contended one bounded by the cache
// line's ping-pong between cores. Cases:
//  - take_unlimited: rate 0 (no limit);
//  - take_limited/refused: 100/s probed every microsecond (nearly all refused: no write);
//  - take_limited/passing: 1e9/s probed every 2 ns of simulated time (every call a CAS);
//  - take_clock/threads:1|2: CLOCK_MONOTONIC read + take at 1e9/s on ONE shared state;
//    with 2 threads the CAS line bounces between the cores (clock cost included);
//  - rules_match: the three built-in-like rules (Gmail, Outlook, Yahoo with a text regex) on
//    a 250 reply (no rule's code), a 421 4.7.0 without [TSS04] (the regex runs and fails), and
//    the Yahoo reply (the regex runs and matches).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <ctime>

extern "C" {
#include "engine/shape/shape.h"
}

namespace
{

uint64_t mono_ns()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void BM_shape_take_unlimited(benchmark::State &state)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *s = shape_table_get(t, "127.0.0.2|example.com");
	struct config_rate r = {0, 1000};
	uint64_t now = 1, wait;

	for (auto _ : state) {
		benchmark::DoNotOptimize(shape_take_msg(s, &r, now, &wait));
		now += 1000;
	}
	shape_state_put(s);
	shape_table_free(t);
}
BENCHMARK(BM_shape_take_unlimited);

void BM_shape_take_limited(benchmark::State &state)
{
	struct shape_table *t = shape_table_new();
	struct shape_state *s = shape_table_get(t, "127.0.0.2|example.com");
	bool passing = state.range(0) != 0;
	struct config_rate r = passing ? config_rate{1000000000u, 1000} : config_rate{100, 1000};
	uint64_t now = 1, wait, step = passing ? 2 : 1000, passed = 0;

	for (auto _ : state) {
		passed += shape_take_msg(s, &r, now, &wait);
		now += step;
	}
	state.counters["passed"] = benchmark::Counter((double)passed / (double)state.iterations());
	state.SetLabel(passing ? "passing" : "refused");
	shape_state_put(s);
	shape_table_free(t);
}
BENCHMARK(BM_shape_take_limited)->Arg(0)->Arg(1);

struct shape_table *g_table;
struct shape_state *g_state;

void BM_shape_take_clock(benchmark::State &state)
{
	struct config_rate r = {1000000000u, 1000};
	uint64_t wait, passed = 0;

	if (state.thread_index() == 0) {
		g_table = shape_table_new();
		g_state = shape_table_get(g_table, "127.0.0.2|example.com");
	}
	for (auto _ : state)
		passed += shape_take_msg(g_state, &r, mono_ns(), &wait);
	state.counters["passed"] = benchmark::Counter((double)passed / (double)state.iterations(),
						      benchmark::Counter::kAvgThreads);
	if (state.thread_index() == 0) {
		shape_state_put(g_state);
		shape_table_free(g_table);
	}
}
BENCHMARK(BM_shape_take_clock)->Threads(1)->Threads(2)->UseRealTime();

struct config_backoff rule(const char *name, unsigned code, const char *enh, const char *text)
{
	struct config_backoff b;

	memset(&b, 0, sizeof(b));
	strcpy(b.name, name);
	b.enabled = true;
	b.code = code;
	strcpy(b.enhanced, enh);
	strcpy(b.text, text);
	b.action = CONFIG_BACKOFF_SUSPEND;
	b.duration_ms = 600000;
	return b;
}

void BM_shape_rules_match(benchmark::State &state)
{
	struct config_backoff b[3] = {
	    rule("gmail", 421, "4.7.28", ""),
	    rule("outlook", 451, "4.7.650", ""),
	    rule("yahoo", 421, "4.7.0", "\\[TSS04\\]"),
	};
	static const char *const texts[] = {
	    "2.0.0 OK: queued as 4Xyz",
	    "4.7.0 Temporary deferral: please try again later\nmore text on a second line",
	    "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume "
	    "or user complaints - see https://postmaster.yahooinc.com/error-codes",
	};
	static const int codes[] = {250, 421, 421};
	static const int enhs[][3] = {{2, 0, 0}, {4, 7, 0}, {4, 7, 0}};
	int k = (int)state.range(0);
	char err[256];
	struct shape_rules *r = shape_rules_new(b, 3, err, sizeof(err));
	size_t len = strlen(texts[k]);
	bool matched = false;

	for (auto _ : state)
		benchmark::DoNotOptimize(
		    matched = shape_rules_match(r, codes[k], enhs[k], texts[k], len) != nullptr);
	state.SetLabel(k == 0 ? "250, no rule" : k == 1 ? "421 4.7.0, regex fails" : "yahoo match");
	if (matched != (k == 2))
		state.SkipWithError("unexpected match result");
	shape_rules_free(r);
}
BENCHMARK(BM_shape_rules_match)->Arg(0)->Arg(1)->Arg(2);

} // namespace
