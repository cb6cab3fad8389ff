// bench_smtp — micro-benchmarks of the SMTP protocol module: command parsing (MAIL with
// parameters, RCPT), reply parsing (one line, an 8-line EHLO reply), dot-stuffing and DATA
// receiving of 2 KB and 64 KB bodies.
//
// Why: these functions run for every message (and every recipient) on the daemon's hot path;
// at 10,000 msg/s on 2 cores a message has ~200 us of CPU in total, so each of these should be
// well under a microsecond per command and several GB/s on bodies. Bodies are realistic mail
// text: CRLF lines of 60-78 bytes, blank lines, and a few lines starting with '.'.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "engine/smtp/smtp.h"
}

namespace
{

// A deterministic CRLF-normalised body of exactly len bytes; with dots, every 23rd line starts
// with '.' (so it needs stuffing).
std::string make_body(size_t len, bool dots = true)
{
	static const char words[] = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
				    "eiusmod tempor incididunt ut labore et dolore magna aliqua ";
	std::string b;
	uint32_t x = 12345;
	size_t line = 0;

	b.reserve(len + 100);
	while (b.size() < len) {
		x = x * 1103515245u + 12345u;
		size_t n = 60 + (x >> 16) % 19;
		if (dots && line % 23 == 7)
			b += '.';
		if (line % 17 != 16)
			b.append(words + (x >> 8) % 40, n - 2);
		b += "\r\n";
		line++;
	}
	b.resize(len - 2);
	b += "\r\n";
	return b;
}

void BM_cmd_mail_from(benchmark::State &state)
{
	const char *line = "MAIL FROM:<bounces+12345-abcdef@mail.bulk-sender.example.com> "
			   "SIZE=23456 BODY=8BITMIME";
	size_t len = strlen(line);
	struct smtp_cmd c;
	struct smtp_param p;

	for (auto _ : state) {
		int rc = smtp_cmd_parse(line, len, &c);
		const char *s = c.params;
		size_t n = c.params_len;
		while (smtp_param_next(&s, &n, &p) == 1)
			benchmark::DoNotOptimize(smtp_param_is(&p, "SIZE"));
		benchmark::DoNotOptimize(rc);
		benchmark::DoNotOptimize(c);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cmd_mail_from);

void BM_cmd_rcpt_to(benchmark::State &state)
{
	const char *line = "RCPT TO:<first.last+newsletter@destination-mx.example.org>";
	size_t len = strlen(line);
	struct smtp_cmd c;

	for (auto _ : state) {
		int rc = smtp_cmd_parse(line, len, &c);
		benchmark::DoNotOptimize(rc);
		benchmark::DoNotOptimize(c);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cmd_rcpt_to);

void BM_reply_single(benchmark::State &state)
{
	const char *in = "250 2.0.0 Ok: queued as 4Xk2pQ1zZ7z9sJ\r\n";
	size_t len = strlen(in);
	struct smtp_reply r;

	for (auto _ : state) {
		ssize_t n = smtp_reply_parse(in, len, &r);
		benchmark::DoNotOptimize(n);
		benchmark::DoNotOptimize(r);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_reply_single);

const char kEhlo[] = "250-mx.destination.example.org Hello relay.sender.example [192.0.2.1]\r\n"
		     "250-PIPELINING\r\n"
		     "250-SIZE 52428800\r\n"
		     "250-8BITMIME\r\n"
		     "250-ENHANCEDSTATUSCODES\r\n"
		     "250-STARTTLS\r\n"
		     "250-SMTPUTF8\r\n"
		     "250 CHUNKING\r\n";

void BM_reply_ehlo8(benchmark::State &state)
{
	struct smtp_reply r;

	for (auto _ : state) {
		ssize_t n = smtp_reply_parse(kEhlo, sizeof(kEhlo) - 1, &r);
		benchmark::DoNotOptimize(n);
		benchmark::DoNotOptimize(r);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_reply_ehlo8);

void BM_reply_ehlo8_extensions(benchmark::State &state)
{
	struct smtp_reply r;
	struct smtp_ehlo e;

	for (auto _ : state) {
		smtp_reply_parse(kEhlo, sizeof(kEhlo) - 1, &r);
		smtp_ehlo_parse(&r, &e);
		benchmark::DoNotOptimize(e);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_reply_ehlo8_extensions);

void BM_dot_stuff(benchmark::State &state)
{
	std::string body = make_body((size_t)state.range(0));
	std::vector<char> out(2 * body.size());

	for (auto _ : state) {
		struct smtp_stuff st = {true};
		size_t n = smtp_dot_stuff(&st, body.data(), body.size(), out.data());
		benchmark::DoNotOptimize(n);
		benchmark::ClobberMemory();
	}
	state.SetBytesProcessed((int64_t)(state.iterations() * body.size()));
}
BENCHMARK(BM_dot_stuff)->Arg(2048)->Arg(65536);

// Worst case: a body with no line starting with '.', scanned to the end.
void BM_dot_stuff_needed(benchmark::State &state)
{
	std::string body = make_body((size_t)state.range(0), false);

	for (auto _ : state)
		benchmark::DoNotOptimize(smtp_dot_stuff_needed(body.data(), body.size()));
	state.SetBytesProcessed((int64_t)(state.iterations() * body.size()));
}
BENCHMARK(BM_dot_stuff_needed)->Arg(2048)->Arg(65536);

// The wire form of a body: stuffed and terminated.
std::string make_wire(size_t len)
{
	std::string body = make_body(len);
	std::string wire(2 * body.size() + 5, '\0');
	struct smtp_stuff st = {true};
	size_t n = smtp_dot_stuff(&st, body.data(), body.size(), &wire[0]);

	wire.resize(n);
	wire += smtp_data_end(body.data(), body.size());
	return wire;
}

// range(0): body size; range(1): read size the input arrives in (0: all at once).
void BM_data_rx(benchmark::State &state)
{
	std::string wire = make_wire((size_t)state.range(0));
	size_t chunk = state.range(1) ? (size_t)state.range(1) : wire.size();
	std::vector<char> out(2 * wire.size());

	for (auto _ : state) {
		struct smtp_data_rx rx;
		size_t off = 0, olen = 0, n;
		bool done = false;

		smtp_data_rx_init(&rx);
		while (!done && off < wire.size()) {
			size_t c = wire.size() - off < chunk ? wire.size() - off : chunk;
			off += smtp_data_rx_feed(&rx, wire.data() + off, c, out.data() + olen,
						 out.size() - olen, &n, &done);
			olen += n;
		}
		benchmark::DoNotOptimize(olen);
		benchmark::ClobberMemory();
	}
	state.SetBytesProcessed((int64_t)(state.iterations() * wire.size()));
}
BENCHMARK(BM_data_rx)->Args({2048, 0})->Args({65536, 0})->Args({65536, 1448});

} // namespace
