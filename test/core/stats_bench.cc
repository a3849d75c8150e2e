// Hot-path cost of the metrics in core/stats.h (Google Benchmark):
// Counter::inc on a worker shard from one and two threads (each thread its
// own shard, as workers are), Counter::inc on the shared shard (threads
// that are not workers: atomic add), Gauge inc/dec, Histogram::observe, and
// a scrape (StatsRegistry::serialize) of a registry the size of a real one.
//
//   bazel run -c opt //test/core:stats_bench
#include <benchmark/benchmark.h>

#include <string>

#include "core/sdk/stats.h"

namespace gw {
namespace stats {
namespace {

Counter& benchCounter() {
  static Counter& c = StatsRegistry::get().counter("bench_counter_total", "bench");
  return c;
}

void BM_CounterIncWorkerShard(benchmark::State& state) {
  setThreadShard(static_cast<size_t>(state.thread_index()));
  Counter& c = benchCounter();
  for (auto _ : state) c.inc();
  benchmark::DoNotOptimize(c.value());
}
BENCHMARK(BM_CounterIncWorkerShard)->Threads(1)->Threads(2);

void BM_CounterIncSharedShard(benchmark::State& state) {
  setThreadShard(kMaxWorkerShards);  // not a worker: atomic fetch_add
  Counter& c = benchCounter();
  for (auto _ : state) c.inc();
}
BENCHMARK(BM_CounterIncSharedShard)->Threads(1)->Threads(2);

void BM_GaugeIncDec(benchmark::State& state) {
  setThreadShard(static_cast<size_t>(state.thread_index()));
  static Gauge& g = StatsRegistry::get().gauge("bench_gauge", "bench");
  for (auto _ : state) {
    g.inc();
    g.dec();
  }
}
BENCHMARK(BM_GaugeIncDec)->Threads(1)->Threads(2);

void BM_HistogramObserve(benchmark::State& state) {
  setThreadShard(static_cast<size_t>(state.thread_index()));
  static Histogram& h =
      StatsRegistry::get().histogram("bench_latency_seconds", "bench", {}, latencyBuckets());
  double v = 0.0003;
  for (auto _ : state) {
    h.observe(v);
    v = v < 1 ? v * 1.7 : 0.0003;  // walk the buckets
  }
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2);

// A scrape: ~600 series (16 close reasons x 4 listeners, 40 hosts x 6
// series, 10 latency histograms), as /metrics serializes on every scrape.
void BM_SerializeScrape(benchmark::State& state) {
  auto& r = StatsRegistry::get();
  static bool once = [&r] {
    for (int l = 0; l < 4; ++l)
      for (int reason = 0; reason < 16; ++reason)
        r.counter("scrape_closes_total", "x",
                  {{"listener", "l" + std::to_string(l)}, {"reason", std::to_string(reason)}})
            .inc();
    for (int h = 0; h < 40; ++h)
      for (const char* s : {"a", "b", "c", "d", "e", "f"})
        r.gauge("scrape_pool", "x", {{"host", std::to_string(h)}, {"s", s}}).inc();
    for (int c = 0; c < 10; ++c)
      r.histogram("scrape_latency_seconds", "x", {{"cluster", std::to_string(c)}},
                  latencyBuckets())
          .observe(0.01);
    return true;
  }();
  benchmark::DoNotOptimize(once);
  for (auto _ : state) benchmark::DoNotOptimize(r.serialize());
}
BENCHMARK(BM_SerializeScrape)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace stats
}  // namespace gw

BENCHMARK_MAIN();
