// bench_dsn — micro-benchmark of engine/dsn: one failure notice (dsn_build, built-in template)
// for a 2 KB and a 100 KB original attached in full, with 1 and 10 failed recipients.
//
// Why: notices are built on the daemon's commit thread, next to the queue's writes, so one
// must cost little compared with a delivery (a few microseconds for a 2 KB original) and grow
// with the original only at memory-copy speed (the original is scanned once, searched for the
// boundary once and copied once). Reported: ns per notice, bytes/s of original processed, and
// the notice size (counter "notice_bytes").
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "engine/dsn/dsn.h"
}

namespace
{

// A realistic original of exactly len bytes: a header block, then CRLF text lines of 60-78.
std::string dsn_body(size_t len)
{
	static const char words[] = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
				    "eiusmod tempor incididunt ut labore et dolore magna aliqua ";
	std::string b = "Return-Path: <news@bulk-sender.example.com>\r\n"
			"From: News <news@bulk-sender.example.com>\r\n"
			"To: someone@example.net\r\n"
			"Subject: This week's offers\r\n"
			"Date: Tue, 14 Jan 2025 10:20:00 +0000\r\n"
			"Message-ID: <20250114102000.12345@bulk-sender.example.com>\r\n"
			"MIME-Version: 1.0\r\n"
			"Content-Type: text/plain; charset=us-ascii\r\n"
			"\r\n";
	uint32_t x = 12345;

	while (b.size() < len) {
		x = x * 1103515245u + 12345u;
		b.append(words + (x >> 8) % 40, 58 + (x >> 16) % 19);
		b += "\r\n";
	}
	b.resize(len - 2);
	b += "\r\n";
	return b;
}

void BM_dsn_failure(benchmark::State &state)
{
	std::string body = dsn_body((size_t)state.range(0));
	unsigned n = (unsigned)state.range(1);
	std::vector<std::string> addrs(n);
	std::vector<dsn_rcpt> r(n);
	struct dsn_templates *t = nullptr;
	char err[256];
	size_t notice = 0;

	if (dsn_templates_load(nullptr, &t, err, sizeof(err)) != 0) {
		state.SkipWithError(err);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		addrs[i] = "user" + std::to_string(i) + "@example.net";
		r[i] = dsn_rcpt{addrs[i].c_str(),
				"rfc822;someone@example.net",
				550,
				{5, 1, 1},
				"mx1.example.net",
				"550 5.1.1 <someone@example.net>: Recipient address rejected: User "
				"unknown in virtual mailbox table",
				true,
				1736850122000ull};
	}
	dsn_input in{};
	in.kind = DSN_FAILURE;
	in.reporting_mta = "mta1.riptide.example";
	in.sender = "bounces+12345-abcdef@bulk-sender.example.com";
	in.queue_id = "0123456789abcdef0123456789abcdef";
	in.envid = "campaign-42-msg-12345";
	in.arrival_ms = 1736850121000ull;
	in.now_ms = 1737282121000ull;
	in.rcpts = r.data();
	in.nrcpt = n;
	in.original = DSN_ORIG_FULL;
	in.body = body.data();
	in.body_len = body.size();
	for (auto _ : state) {
		char *out;
		size_t len;
		bool eight;

		if (dsn_build(t, &in, &out, &len, &eight) != 0) {
			state.SkipWithError("dsn_build failed");
			break;
		}
		benchmark::DoNotOptimize(out);
		notice = len;
		free(out);
	}
	state.SetBytesProcessed((int64_t)(state.iterations() * body.size()));
	state.counters["notice_bytes"] = (double)notice;
	dsn_templates_free(t);
}
BENCHMARK(BM_dsn_failure)
    ->ArgNames({"orig", "rcpts"})
    ->Args({2048, 1})
    ->Args({2048, 10})
    ->Args({102400, 1})
    ->Args({102400, 10});

} // namespace
