// test/bench/alloc_counter.cc — the counting replacements of the global
// operator new/delete, libevent's counting allocator, and the reporting
// helpers (see alloc_counter.h).
#include "core/sdk/testing/alloc_counter.h"

#include <benchmark/benchmark.h>
#include <event2/event.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace gw {
namespace bench {
namespace {

// Constant-initialized (no dynamic initialization, no TLS wrapper): safe to
// touch from operator new at any time, including static initialization.
std::atomic<uint64_t> g_allocs{0};
thread_local uint64_t t_allocs = 0;

inline void countOne() {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  ++t_allocs;
}

// malloc(0) may return nullptr; operator new must return a unique pointer.
inline size_t atLeastOne(size_t n) { return n == 0 ? 1 : n; }

// aligned_alloc wants a size that is a multiple of the alignment.
inline void* alignedMalloc(size_t n, std::align_val_t a) {
  const size_t al = static_cast<size_t>(a);
  return std::aligned_alloc(al, (atLeastOne(n) + al - 1) / al * al);
}

// The throwing forms: retry through the new_handler, as the standard asks.
void* countedNew(size_t n) {
  countOne();
  for (;;) {
    if (void* p = std::malloc(atLeastOne(n))) return p;
    std::new_handler h = std::get_new_handler();
    if (h == nullptr) throw std::bad_alloc();
    h();
  }
}

void* countedAlignedNew(size_t n, std::align_val_t a) {
  countOne();
  for (;;) {
    if (void* p = alignedMalloc(n, a)) return p;
    std::new_handler h = std::get_new_handler();
    if (h == nullptr) throw std::bad_alloc();
    h();
  }
}

// libevent's allocator (installLibeventCounting). libevent never asks for 0
// bytes here (its mm_malloc returns nullptr itself).
void* libeventMalloc(size_t n) {
  countOne();
  return std::malloc(n);
}
void* libeventRealloc(void* p, size_t n) {
  countOne();
  return std::realloc(p, n);
}
void libeventFree(void* p) { std::free(p); }

}  // namespace

uint64_t processAllocs() { return g_allocs.load(std::memory_order_relaxed); }

uint64_t threadAllocs() { return t_allocs; }

uint64_t allocs(AllocScope scope) {
  return scope == AllocScope::kThread ? threadAllocs() : processAllocs();
}

void installLibeventCounting() {
  event_set_mem_functions(libeventMalloc, libeventRealloc, libeventFree);
}

void reportAllocsPerOp(benchmark::State& state, uint64_t allocs, double items_per_iteration) {
  state.counters["allocs/op"] = benchmark::Counter(
      static_cast<double>(allocs) / items_per_iteration, benchmark::Counter::kAvgIterations);
}

AllocsPerOp::AllocsPerOp(benchmark::State& state, AllocScope scope)
    : state_(state), scope_(scope), start_(allocs(scope)) {}

AllocsPerOp::~AllocsPerOp() { stop(); }

void AllocsPerOp::pause() {
  if (paused_ || stopped_) return;
  paused_at_ = allocs(scope_);
  paused_ = true;
}

void AllocsPerOp::resume() {
  if (!paused_) return;
  excluded_ += allocs(scope_) - paused_at_;
  paused_ = false;
}

uint64_t AllocsPerOp::count() const {
  const uint64_t end = paused_ ? paused_at_ : allocs(scope_);
  return end - start_ - excluded_;
}

void AllocsPerOp::stop(double items_per_iteration) {
  if (stopped_) return;
  const uint64_t n = count();  // before the counter map allocates its entry
  pause();
  stopped_ = true;
  reportAllocsPerOp(state_, n, items_per_iteration);
}

int benchmarkMain(int argc, char** argv) {
  installLibeventCounting();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace bench
}  // namespace gw

// The replacements. Not inlined (nor the deletes): GCC would otherwise see
// the malloc/free pairs behind new and delete wherever these definitions are
// visible (same translation unit, LTO), warn (-Wmismatched-new-delete) and
// may elide the pairs, so the allocations would not be counted — counting
// them is what these replacements are built to do.
using gw::bench::countedAlignedNew;
using gw::bench::countedNew;

__attribute__((noinline)) void* operator new(size_t n) { return countedNew(n); }
__attribute__((noinline)) void* operator new[](size_t n) { return countedNew(n); }
__attribute__((noinline)) void* operator new(size_t n, const std::nothrow_t&) noexcept {
  gw::bench::countOne();
  return std::malloc(gw::bench::atLeastOne(n));
}
__attribute__((noinline)) void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  gw::bench::countOne();
  return std::malloc(gw::bench::atLeastOne(n));
}
__attribute__((noinline)) void* operator new(size_t n, std::align_val_t a) {
  return countedAlignedNew(n, a);
}
__attribute__((noinline)) void* operator new[](size_t n, std::align_val_t a) {
  return countedAlignedNew(n, a);
}
__attribute__((noinline)) void* operator new(size_t n, std::align_val_t a,
                                             const std::nothrow_t&) noexcept {
  gw::bench::countOne();
  return gw::bench::alignedMalloc(n, a);
}
__attribute__((noinline)) void* operator new[](size_t n, std::align_val_t a,
                                               const std::nothrow_t&) noexcept {
  gw::bench::countOne();
  return gw::bench::alignedMalloc(n, a);
}

__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete[](void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, size_t) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete[](void* p, size_t) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
__attribute__((noinline)) void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
__attribute__((noinline)) void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
__attribute__((noinline)) void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
__attribute__((noinline)) void operator delete(void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}
__attribute__((noinline)) void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}
__attribute__((noinline)) void operator delete(void* p, std::align_val_t,
                                               const std::nothrow_t&) noexcept {
  std::free(p);
}
__attribute__((noinline)) void operator delete[](void* p, std::align_val_t,
                                                 const std::nothrow_t&) noexcept {
  std::free(p);
}
