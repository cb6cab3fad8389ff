// bench_tls — micro-benchmarks of tls/: a full TLS handshake (client and server in one thread,
// over memory buffers, as the shards run them), a resumed one, and the record layer on a 2 KB
// message each way; plus the memory one established server-side TLS connection holds.
//
// Why: the issue asks for the handshake rate per core and the RSS per TLS session. Both sides
// of a handshake run in the same thread here, so "handshakes/s" is the rate one core does
// both halves at; a server core alone does more (its half is the cheaper one for ECDHE-ECDSA).
// Certificates: tests/integration/mkcerts.sh into a temp dir at the first use (EC P-256).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

extern "C" {
#include "tls/tls.h"
}

namespace
{

struct pki {
	std::string dir;
	tls_ctx *server = nullptr, *client = nullptr, *client_cache = nullptr;
};

// The throwaway PKI and three contexts, made once (nullptr if the script failed).
pki *bench_pki()
{
	static pki *p;
	char tmpl[] = "/tmp/riptide-bench-tls.XXXXXX", err[256];

	if (p)
		return p;
	if (!mkdtemp(tmpl))
		return nullptr;
	p = new pki;
	p->dir = tmpl;
	std::string cmd = std::string(RIPTIDE_SRC "/tests/integration/mkcerts.sh ") + tmpl;
	if (system(cmd.c_str()) != 0)
		return nullptr;
	std::string cert = p->dir + "/server.pem", key = p->dir + "/server.key";
	tls_server_opts so = {cert.c_str(), key.c_str()};
	tls_client_opts co = {TLS_VERIFY_NONE, nullptr, 0}, cc = {TLS_VERIFY_NONE, nullptr, 64};
	if (tls_ctx_server_new(&so, &p->server, err, sizeof(err)) < 0 ||
	    tls_ctx_client_new(&co, &p->client, err, sizeof(err)) < 0 ||
	    tls_ctx_client_new(&cc, &p->client_cache, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_tls: %s\n", err);
		return nullptr;
	}
	return p;
}

// Move what from produced into to. Returns the bytes moved.
size_t pump(tls *from, tls *to)
{
	size_t n = 0;
	const void *p = tls_out(from, &n);

	if (p && n) {
		tls_feed(to, p, n);
		tls_out_consume(from, n);
	}
	return p ? n : 0;
}

// Both handshakes to the end. Returns true when both completed.
bool handshake(tls *c, tls *s)
{
	for (int i = 0; i < 20; i++) {
		int rc = tls_handshake(c);
		pump(c, s);
		int rs = tls_handshake(s);
		pump(s, c);
		if (rc == 0 && rs == 0) {
			char buf[64];
			tls_read(c, buf, sizeof(buf)); /* TLS 1.3 tickets, as a session would */
			return true;
		}
		if ((rc < 0 && rc != -EAGAIN) || (rs < 0 && rs != -EAGAIN))
			return false;
	}
	return false;
}

void BM_tls_handshake(benchmark::State &state, bool resume)
{
	pki *p = bench_pki();
	tls *c, *s;

	if (!p) {
		state.SkipWithError("no PKI (mkcerts.sh failed)");
		return;
	}
	for (auto _ : state) {
		tls_new(resume ? p->client_cache : p->client, "mx.test",
			resume ? "127.0.0.1:25" : nullptr, &c);
		tls_new(p->server, nullptr, nullptr, &s);
		if (!handshake(c, s)) {
			state.SkipWithError("handshake failed");
			break;
		}
		if (resume && state.iterations() > 2) {
			tls_info i;
			tls_get_info(c, &i);
			if (!i.resumed) {
				state.SkipWithError("not resumed");
				break;
			}
		}
		tls_free(c);
		tls_free(s);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_tls_handshake, full, false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_tls_handshake, resumed, true)->Unit(benchmark::kMicrosecond);

// A 2 KB message each way through an established connection (encrypt, carry, decrypt).
void BM_tls_record_2k(benchmark::State &state)
{
	pki *p = bench_pki();
	std::vector<char> msg(2048, 'x'), buf(4096);
	tls *c, *s;

	if (!p || (tls_new(p->client, "mx.test", nullptr, &c), tls_new(p->server, 0, 0, &s),
		   !handshake(c, s))) {
		state.SkipWithError("no connection");
		return;
	}
	for (auto _ : state) {
		tls_write(c, msg.data(), msg.size());
		pump(c, s);
		benchmark::DoNotOptimize(tls_read(s, buf.data(), buf.size()));
		tls_write(s, msg.data(), msg.size());
		pump(s, c);
		benchmark::DoNotOptimize(tls_read(c, buf.data(), buf.size()));
	}
	state.SetBytesProcessed(state.iterations() * 2 * (int64_t)msg.size());
	tls_free(c);
	tls_free(s);
}
BENCHMARK(BM_tls_record_2k);

// Resident memory per established server-side connection: RSS growth over 2000 of them (the
// client halves are made and freed one by one so only the servers stay).
long rss_kb()
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	if (f)
		fclose(f);
	return rss * sysconf(_SC_PAGESIZE) / 1024;
}

void BM_tls_session_memory(benchmark::State &state)
{
	pki *p = bench_pki();
	const int n = 2000;
	std::vector<tls *> keep(n);
	char buf[64];

	for (auto _ : state) {
		long before = rss_kb();
		for (int i = 0; p && i < n; i++) {
			tls *c;
			tls_new(p->client, "mx.test", nullptr, &c);
			tls_new(p->server, nullptr, nullptr, &keep[i]);
			handshake(c, keep[i]);
			/* one record each way: buffers as in a live session */
			tls_write(c, "x", 1);
			pump(c, keep[i]);
			tls_read(keep[i], buf, sizeof(buf));
			tls_free(c);
		}
		long after = rss_kb();
		state.counters["server_session_bytes"] = (double)(after - before) * 1024 / n;
		for (int i = 0; p && i < n; i++)
			tls_free(keep[i]);
	}
}
BENCHMARK(BM_tls_session_memory)->Iterations(1)->Unit(benchmark::kMillisecond);

} // namespace
