// bench_queue — micro-benchmarks of the persistent queue: the accept+done write pattern on
// RocksDB (per message without sync, and group-committed with one sync per 64 messages, as the
// commit thread does; one sched entry per message, destination group 0) and the envelope codec
// (recipients spread over destination groups).
//
// Why: the queue write path bounds riptide's accept rate; these numbers say how far group
// commit moves it and what the envelope costs per delivery attempt. Each RocksDB run uses a
// fresh mkdtemp directory removed afterwards.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <ftw.h>

extern "C" {
#include "queue/queue.h"
}

namespace
{

constexpr size_t kBodyLen = 2048;

int rm_one(const char *path, const struct stat *, int, struct FTW *)
{
	return remove(path);
}

// An open queue in a temp dir (RocksDB) or in memory, closed and removed on destruction.
class BenchQueue
{
      public:
	explicit BenchQueue(enum queue_backend backend)
	{
		char err[256] = "";
		struct queue_opts o;

		std::memset(&o, 0, sizeof(o));
		o.backend = backend;
		if (backend == QUEUE_BACKEND_ROCKSDB) {
			std::snprintf(dir_, sizeof(dir_), "/tmp/riptide-qbench-XXXXXX");
			if (!mkdtemp(dir_))
				std::abort();
			o.path = dir_;
		}
		if (queue_open(&o, &q_, err, sizeof(err)) != 0) {
			std::fprintf(stderr, "queue_open: %s\n", err);
			std::abort();
		}
		b_ = queue_batch_new();
	}
	~BenchQueue()
	{
		queue_batch_free(b_);
		queue_close(q_);
		if (dir_[0])
			nftw(dir_, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	void write(bool sync)
	{
		char err[256];

		if (queue_write(q_, b_, sync, err, sizeof(err)) != 0) {
			std::fprintf(stderr, "queue_write: %s\n", err);
			std::abort();
		}
		queue_batch_clear(b_);
	}
	struct queue_batch *batch()
	{
		return b_;
	}

      private:
	char dir_[64] = "";
	struct queue *q_ = nullptr;
	struct queue_batch *b_ = nullptr;
};

std::vector<uint8_t> make_body()
{
	std::vector<uint8_t> body(kBodyLen);

	for (size_t i = 0; i < body.size(); i++)
		body[i] = static_cast<uint8_t>("abcdefghijklmnopqrstuvwxyz0123456789 \r\n"[i % 39]);
	return body;
}

// Accept then done for `per_write` messages per iteration: one put batch (meta + body + one
// sched entry, group 0; synced or not), then one delete batch (meta + body + that sched entry;
// never synced, as in the engine).
void run_put_delete(benchmark::State &state, enum queue_backend backend, size_t per_write,
		    bool sync)
{
	BenchQueue q(backend);
	std::vector<uint8_t> body = make_body();
	static const char meta[200] = "envelope";
	uint64_t seq = 0, now = 1700000000000ull;
	std::vector<struct queue_id> ids(per_write);

	for (auto _ : state) {
		for (size_t i = 0; i < per_write; i++) {
			queue_id_make(&ids[i], now, 0, seq++);
			queue_batch_put(q.batch(), &ids[i], meta, sizeof(meta), body.data(),
					body.size());
			queue_batch_sched_put(q.batch(), now, &ids[i], 0, "d", 1);
		}
		q.write(sync);
		for (size_t i = 0; i < per_write; i++) {
			queue_batch_delete(q.batch(), &ids[i]);
			queue_batch_sched_del(q.batch(), now, &ids[i], 0);
		}
		q.write(false);
		now++;
	}
	state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * per_write));
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * per_write * kBodyLen));
}

void BM_QueuePutDelete_RocksDB_NoSync(benchmark::State &state)
{
	run_put_delete(state, QUEUE_BACKEND_ROCKSDB, 1, false);
}
BENCHMARK(BM_QueuePutDelete_RocksDB_NoSync);

void BM_QueuePutDelete_RocksDB_Sync64(benchmark::State &state)
{
	run_put_delete(state, QUEUE_BACKEND_ROCKSDB, 64, true);
}
BENCHMARK(BM_QueuePutDelete_RocksDB_Sync64)->UseRealTime();

void BM_QueuePutDelete_RocksDB_Sync1(benchmark::State &state)
{
	run_put_delete(state, QUEUE_BACKEND_ROCKSDB, 1, true);
}
BENCHMARK(BM_QueuePutDelete_RocksDB_Sync1)->UseRealTime();

void BM_QueuePutDelete_Memory(benchmark::State &state)
{
	run_put_delete(state, QUEUE_BACKEND_MEMORY, 1, false);
}
BENCHMARK(BM_QueuePutDelete_Memory);

// An envelope with n recipients over min(n, 50) destination groups (one per domain), owning
// its strings.
struct EnvFixture {
	std::vector<std::string> addrs, domains;
	std::vector<struct queue_rcpt> rcpts;
	std::vector<struct queue_dest> dests;
	std::string sender = "bounces+1234567@mail.sender.example";
	std::string reply = "451 4.7.1 Greylisted, try again in 300 seconds";
	struct queue_env env;

	explicit EnvFixture(size_t n)
	    : addrs(n), domains(n < 50 ? n : 50), rcpts(n), dests(domains.size())
	{
		for (size_t i = 0; i < domains.size(); i++) {
			domains[i] = "example" + std::to_string(i) + ".com";
			dests[i].name = &domains[i][0];
			dests[i].due = 1700000300000ull;
			dests[i].attempts = 1;
		}
		for (size_t i = 0; i < n; i++) {
			addrs[i] =
			    "recipient" + std::to_string(i) + "@" + domains[i % domains.size()];
			rcpts[i].addr = &addrs[i][0];
			rcpts[i].state = QUEUE_RCPT_PENDING;
			rcpts[i].dest = static_cast<uint16_t>(i % domains.size());
			rcpts[i].attempts = 2;
			rcpts[i].last_code = 451;
			rcpts[i].last_reply = &reply[0];
		}
		std::memset(&env, 0, sizeof(env));
		env.sender = &sender[0];
		env.created_ms = 1700000000000ull;
		env.body_len = kBodyLen;
		env.nrcpt = static_cast<uint32_t>(n);
		env.rcpts = rcpts.data();
		env.ndest = static_cast<uint32_t>(dests.size());
		env.dests = dests.data();
	}
};

void BM_QueueEnvEncode(benchmark::State &state)
{
	EnvFixture f(static_cast<size_t>(state.range(0)));
	std::vector<uint8_t> buf(queue_env_encoded_len(&f.env));

	if (queue_env_encode(&f.env, buf.data(), buf.size()) < 0)
		std::abort();
	for (auto _ : state) {
		ssize_t n = queue_env_encode(&f.env, buf.data(), buf.size());
		benchmark::DoNotOptimize(n);
	}
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buf.size()));
}
BENCHMARK(BM_QueueEnvEncode)->Arg(1)->Arg(10)->Arg(100);

void BM_QueueEnvDecode(benchmark::State &state)
{
	EnvFixture f(static_cast<size_t>(state.range(0)));
	std::vector<uint8_t> buf(queue_env_encoded_len(&f.env));

	if (queue_env_encode(&f.env, buf.data(), buf.size()) < 0)
		std::abort();
	for (auto _ : state) {
		struct queue_env *e = nullptr;
		int rc = queue_env_decode(buf.data(), buf.size(), &e);

		benchmark::DoNotOptimize(rc);
		queue_env_free(e);
	}
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buf.size()));
}
BENCHMARK(BM_QueueEnvDecode)->Arg(1)->Arg(10)->Arg(100);

} // namespace
