// riptide-bench entry point: all micro-benchmarks of bench/ in one binary.
#include <benchmark/benchmark.h>
BENCHMARK_MAIN();
