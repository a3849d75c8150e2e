// core/sdk/testing/alloc_counter.h — heap allocations per benchmark iteration.
//
// Defines the allocation counters every micro-benchmark (built-in or a studio's) reports
// as the Google Benchmark counter "allocs/op" (tools/bench reads it; a target
// holds only at < 0.001 allocs/op): processAllocs() and threadAllocs(),
// installLibeventCounting() to count libevent's allocations too, and
// AllocsPerOp / reportAllocsPerOp() to report them.
//
// Linking //core/sdk:alloc_counter (alwayslink) replaces every global
// operator new and new[] (plain, nothrow, align_val_t, align_val_t +
// nothrow) and the matching operator delete and delete[] (including sized)
// with wrappers over malloc / aligned_alloc / free that count each
// allocation twice: in one process-wide relaxed atomic and in a
// thread_local count of the allocating thread.
//
//   GW_BENCHMARK_MAIN();   // or a main() that calls benchmarkMain()
//   void BM_Something(benchmark::State& state) {
//     ... untimed set-up ...
//     gw::bench::AllocsPerOp allocs(state, gw::bench::AllocScope::kThread);
//     for (auto _ : state) { ... }
//     allocs.stop();  // right after the loop: "allocs/op" = allocations / iterations
//   }
//
// Limits: counts calls, not bytes; frees are not counted. Memory a library
// takes from malloc directly (not through operator new) is invisible, except
// libevent's once installLibeventCounting() has run. Only for benchmark
// binaries: one binary can link only one replacement of operator new.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

namespace gw {
namespace bench {

// Returns the number of heap allocations made by all threads of the process
// since it started. Relaxed: a thread sees the other threads' allocations
// once it has synchronized with them (Google Benchmark's barriers at the
// start and end of a timed loop do that).
uint64_t processAllocs();

// Returns the number of heap allocations made by the calling thread since it
// started. Allocations made for it by other threads (a thread pool, a
// background sweeper) are not in it.
uint64_t threadAllocs();

// Which count an AllocsPerOp reads.
enum class AllocScope {
  // The calling thread's (threadAllocs()). In a multi-threaded benchmark
  // every thread keeps and reports its own; Google Benchmark sums them and
  // divides by the iterations of all threads.
  kThread,
  // The whole process's (processAllocs()): also sees allocations made by
  // other threads. In a multi-threaded benchmark only one thread (e.g.
  // thread_index() 0) may count and report, or the allocations are counted
  // once per thread.
  kProcess,
};

// Returns processAllocs() or threadAllocs().
uint64_t allocs(AllocScope scope);

// Routes libevent's allocator (malloc, realloc, free: event_set_mem_functions)
// through the same counters; a realloc counts as one allocation. Call it
// once, at the start of main(), before libevent allocates anything (no
// event_base, evbuffer or bufferevent may exist yet): memory libevent took
// from the old allocator would be handed to the new one on free.
void installLibeventCounting();

// A benchmark binary's main(): installLibeventCounting() first, then runs
// the benchmarks the command line selects. Returns 0, or 1 when an argument
// is not recognized.
int benchmarkMain(int argc, char** argv);

// Sets state.counters["allocs/op"] to `allocs` / (iterations *
// items_per_iteration), as a kAvgIterations counter: `allocs` is the count
// over the whole timed loop; items_per_iteration > 1 reports per item when
// one iteration handles several (e.g. frames per read).
void reportAllocsPerOp(benchmark::State& state, uint64_t allocs, double items_per_iteration = 1);

// Counts the allocations of one benchmark's timed loop and reports them as
// "allocs/op" (see reportAllocsPerOp). Counting starts at construction (build
// it right before the loop, after the set-up) and ends at stop(); the
// destructor calls stop() if it was not called. pause()/resume() leave out
// untimed work done inside the loop (next to state.PauseTiming()).
class AllocsPerOp {
 public:
  AllocsPerOp(benchmark::State& state, AllocScope scope);
  ~AllocsPerOp();
  AllocsPerOp(const AllocsPerOp&) = delete;
  AllocsPerOp& operator=(const AllocsPerOp&) = delete;

  // Allocations made from now until resume() are not counted. No-op if
  // already paused or stopped.
  void pause();
  // Counts again after pause(). No-op if not paused.
  void resume();

  // Returns the allocations counted so far (paused spans left out).
  uint64_t count() const;

  // Stops counting and reports count() / (iterations * items_per_iteration)
  // as "allocs/op". Only the first call (or the destructor's) reports.
  void stop(double items_per_iteration = 1);

 private:
  benchmark::State& state_;
  const AllocScope scope_;
  const uint64_t start_;
  uint64_t excluded_ = 0;     // allocations made while paused
  uint64_t paused_at_ = 0;    // the count when pause() was called
  bool paused_ = false;
  bool stopped_ = false;
};

}  // namespace bench
}  // namespace gw

// Use instead of BENCHMARK_MAIN(): the same, with libevent's allocations
// counted too.
#define GW_BENCHMARK_MAIN() \
  int main(int argc, char** argv) { return ::gw::bench::benchmarkMain(argc, argv); }
