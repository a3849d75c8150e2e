// Benchmarks of the ip_limiter's hot paths (Google Benchmark):
//   BM_Limiter_Allow           admit + release of one address (the Go
//                              gateway's Limiter_Allow: 150 ns/op), each
//                              thread with its LocalReserve, as a worker
//   BM_Limiter_Allow_NoReserve the same with no reserve: every admit and
//                              release is an atomic op on the global count
//   BM_Limiter_Admit           admit() alone, never released
//   BM_Limiter_Allow_SameIp    both threads on one address (worst case: one
//                              shard lock and one entry shared)
//   BM_Limiter_Allow_100kIPs   admit + release of random addresses among
//                              100,000 tracked ones (cache misses included)
//   BM_Limiter_Admit_Refused   a refused connect (per-IP cap reached)
//   BM_Limiter_MessageRate     the per-frame token check
//   BM_Limiter_MessageScan     finding frames in the byte stream + token
//                              check, per frame (16 frames per read; the
//                              evbuffer append/drain of the test is included)
//   BM_Clock_MonotonicCoarse   the clock the filter reads per connect/close
// Each also runs with 2 threads. "allocs/op" counts the heap allocations
// (global operator new, per thread: //test/bench:alloc_counter; libevent's
// allocator is not counted) per iteration.
//
//   bazel run -c opt //test/filters/ip_limiter:ip_limiter_bench
#include <benchmark/benchmark.h>
#include <event2/buffer.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/sdk/clock.h"
#include "core/sdk/wire.h"
#include "filters/ip_limiter/ip_table.h"
#include "filters/ip_limiter/limiter.h"
#include "filters/ip_limiter/message_rate.h"
#include "core/sdk/testing/alloc_counter.h"

namespace gw {
namespace ip_limiter {
namespace {

// Each thread counts its own allocations (see the top comment).
using bench::AllocScope;
using bench::AllocsPerOp;

// A limiter with the defaults except a rate high enough that the loop's
// fake clock (1 µs per iteration) never runs out of tokens.
IpLimiter& sharedLimiter(size_t max_entries) {
  static GlobalConnectionCount global;
  auto make = [&](size_t n) {
    IpLimiter::Options o;
    o.table.max_entries = n;
    o.table.shards = 16;
    o.table.max_per_key = 10;
    o.table.rate = RateSpec::make(1e6, 10);
    o.max_connections = 1 << 30;
    o.global = &global;
    return new IpLimiter(o);
  };
  static IpLimiter* small = make(100000);
  static IpLimiter* big = make(200000);
  return max_entries == 100000 ? *small : *big;
}

// Admit + release of one address per thread; `reserve` as a worker has it.
void allowLoop(benchmark::State& state, bool reserve) {
  IpLimiter& limiter = sharedLimiter(100000);
  LocalReserve local(limiter.global());
  LocalReserve* r = reserve ? &local : nullptr;
  // Each thread is a worker serving its own client.
  IpKey key = IpKey::fromV4(0x0a000001 + static_cast<uint32_t>(state.thread_index()) * 7919);
  int64_t now = 1000000000;
  AllocsPerOp allocs(state, AllocScope::kThread);
  for (auto _ : state) {
    IpLimiter::Ticket t;
    RejectReason v = limiter.admit(key, now, &t, r);
    benchmark::DoNotOptimize(v);
    limiter.release(t, now, r);
    now += 1000;
  }
  allocs.stop();
}

void BM_Limiter_Allow(benchmark::State& state) { allowLoop(state, true); }
BENCHMARK(BM_Limiter_Allow);
BENCHMARK(BM_Limiter_Allow)->Threads(2);

void BM_Limiter_Allow_NoReserve(benchmark::State& state) { allowLoop(state, false); }
BENCHMARK(BM_Limiter_Allow_NoReserve);
BENCHMARK(BM_Limiter_Allow_NoReserve)->Threads(2);

void BM_Limiter_Admit(benchmark::State& state) {
  // admit() alone, never released (the Go gateway's Allow() has no release):
  // limits are set so that every attempt is admitted.
  static IpLimiter* limiter = [] {
    IpLimiter::Options o;
    o.table.max_per_key = 1u << 31;
    o.table.rate = RateSpec::make(1e9, 1000000);
    static GlobalConnectionCount global;
    o.global = &global;
    o.max_connections = int64_t{1} << 62;
    return new IpLimiter(o);
  }();
  IpKey key = IpKey::fromV4(0x0d000001 + static_cast<uint32_t>(state.thread_index()) * 7919);
  int64_t now = 1000000000;
  AllocsPerOp allocs(state, AllocScope::kThread);
  for (auto _ : state) {
    IpLimiter::Ticket t;
    RejectReason r = limiter->admit(key, now, &t);
    benchmark::DoNotOptimize(r);
    now += 1000;
  }
  allocs.stop();
}
BENCHMARK(BM_Limiter_Admit);
BENCHMARK(BM_Limiter_Admit)->Threads(2);

void BM_Limiter_Allow_SameIp(benchmark::State& state) {
  IpLimiter& limiter = sharedLimiter(100000);
  LocalReserve reserve(limiter.global());
  IpKey key = IpKey::fromV4(0x0b000001);
  int64_t now = 1000000000;
  AllocsPerOp allocs(state, AllocScope::kThread);
  for (auto _ : state) {
    IpLimiter::Ticket t;
    RejectReason r = limiter.admit(key, now, &t, &reserve);
    benchmark::DoNotOptimize(r);
    if (r == RejectReason::kNone) limiter.release(t, now, &reserve);
    now += 500;
  }
  allocs.stop();
}
BENCHMARK(BM_Limiter_Allow_SameIp)->Threads(2);

// 100,000 random addresses, tracked before the loop starts.
const std::vector<IpKey>& trackedKeys() {
  static std::vector<IpKey>* keys = [] {
    auto* v = new std::vector<IpKey>();
    std::mt19937 rng(42);
    IpLimiter& limiter = sharedLimiter(200000);
    while (v->size() < 100000) {
      IpKey k = IpKey::fromV4(rng());
      IpLimiter::Ticket t;
      if (limiter.admit(k, 1, &t) != RejectReason::kNone) continue;
      limiter.release(t, 1);
      v->push_back(k);
    }
    // Visit them in a random order.
    std::shuffle(v->begin(), v->end(), rng);
    return v;
  }();
  return *keys;
}

void BM_Limiter_Allow_100kIPs(benchmark::State& state) {
  const std::vector<IpKey>& keys = trackedKeys();
  IpLimiter& limiter = sharedLimiter(200000);
  LocalReserve reserve(limiter.global());
  size_t i = static_cast<size_t>(state.thread_index()) * 50000;
  int64_t now = 1000000000;
  AllocsPerOp allocs(state, AllocScope::kThread);
  for (auto _ : state) {
    const IpKey& k = keys[i];
    if (++i == keys.size()) i = 0;
    IpLimiter::Ticket t;
    RejectReason r = limiter.admit(k, now, &t, &reserve);
    benchmark::DoNotOptimize(r);
    if (r == RejectReason::kNone) limiter.release(t, now, &reserve);
    now += 1000;
  }
  allocs.stop();
  state.counters["tracked"] = benchmark::Counter(static_cast<double>(limiter.table().size()),
                                                 benchmark::Counter::kAvgThreads);
}
BENCHMARK(BM_Limiter_Allow_100kIPs);
BENCHMARK(BM_Limiter_Allow_100kIPs)->Threads(2);

void BM_Limiter_Admit_Refused(benchmark::State& state) {
  // The address already holds its 10 connections: every attempt is refused.
  static IpLimiter* limiter = [] {
    IpLimiter::Options o;
    o.table.rate = RateSpec::make(1e6, 100);
    static GlobalConnectionCount global;
    o.global = &global;
    o.max_connections = 1 << 30;
    auto* l = new IpLimiter(o);
    for (uint32_t t = 0; t < 2; ++t) {
      for (int i = 0; i < 10; ++i) {
        IpLimiter::Ticket ticket;
        l->admit(IpKey::fromV4(0x0c000001 + t * 7919), 1, &ticket);
      }
    }
    return l;
  }();
  IpKey key = IpKey::fromV4(0x0c000001 + static_cast<uint32_t>(state.thread_index()) * 7919);
  AllocsPerOp allocs(state, AllocScope::kThread);
  int64_t now = 2;
  for (auto _ : state) {
    IpLimiter::Ticket t;
    RejectReason r = limiter->admit(key, now++, &t);
    benchmark::DoNotOptimize(r);
  }
  allocs.stop();
}
BENCHMARK(BM_Limiter_Admit_Refused);
BENCHMARK(BM_Limiter_Admit_Refused)->Threads(2);

void BM_Limiter_MessageRate(benchmark::State& state) {
  // One connection's bucket (per connection: no sharing between threads).
  RateSpec spec = RateSpec::make(100, 200);
  TokenBucket bucket;
  int64_t now = 1000000000;
  uint64_t allowed = 0;
  AllocsPerOp allocs(state, AllocScope::kThread);
  for (auto _ : state) {
    allowed += bucket.take(spec, now);
    now += 11000000;  // 11 ms apart: just under the 100/s rate
  }
  allocs.stop();
  benchmark::DoNotOptimize(allowed);
  if (allowed != state.iterations()) state.SkipWithError("a frame was refused");
}
BENCHMARK(BM_Limiter_MessageRate);
BENCHMARK(BM_Limiter_MessageRate)->Threads(2);

void BM_Limiter_MessageScan(benchmark::State& state) {
  constexpr int kFramesPerRead = 16;
  std::string read;
  for (int f = 0; f < kFramesPerRead; ++f) {
    uint8_t h[8];
    wire::ClientHeader ch;
    ch.length = 32;
    ch.msg_id = static_cast<uint16_t>(f);
    ch.encode(h);
    read.append(reinterpret_cast<char*>(h), 8);
    read.append(32, 'p');
  }
  evbuffer* in = evbuffer_new();
  MessageRateTracker tracker(RateSpec::make(1e9, 1000000), MessageRateTracker::Action::kClose);
  tracker.attach(in);
  int64_t now = 1000000000;
  uint64_t frames = 0;
  // Warm up evbuffer chains so the loop reuses them.
  evbuffer_add(in, read.data(), read.size());
  tracker.scan(now, nullptr);
  evbuffer_drain(in, read.size());
  AllocsPerOp allocs(state, AllocScope::kThread);
  for (auto _ : state) {
    evbuffer_add(in, read.data(), read.size());  // a read from the socket
    frames += tracker.scan(now, nullptr).frames;
    evbuffer_drain(in, read.size());  // the codec takes the frames
    now += 1000000;
  }
  allocs.stop();
  tracker.detach();
  evbuffer_free(in);
  if (frames != static_cast<uint64_t>(state.iterations()) * kFramesPerRead)
    state.SkipWithError("frames miscounted");
  state.SetItemsProcessed(state.iterations() * kFramesPerRead);
}
BENCHMARK(BM_Limiter_MessageScan);
BENCHMARK(BM_Limiter_MessageScan)->Threads(2);

void BM_Clock_MonotonicCoarse(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(coarseNowNs());
}
BENCHMARK(BM_Clock_MonotonicCoarse);

// The floor: one uncontended locked read-modify-write (what a shard lock or
// an atomic counter costs on this machine). admit and release each need one
// on the shard lock plus one on the global count.
void BM_Floor_AtomicRmw(benchmark::State& state) {
  static std::atomic<int64_t> cell{0};
  static std::atomic<int64_t> cells[2][16];
  std::atomic<int64_t>& c = state.threads() == 1 ? cell : cells[state.thread_index()][0];
  for (auto _ : state) c.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_Floor_AtomicRmw);

}  // namespace
}  // namespace ip_limiter
}  // namespace gw
