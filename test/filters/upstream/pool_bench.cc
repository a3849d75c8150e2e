// test/filters/upstream/pool_bench.cc — Google Benchmark of the `upstream`
// filter's per-worker pool operations (filters/upstream/cluster_pool.h and
// the session registry in filters/upstream/upstream.h).
//
// Run: bazel run -c opt //test/filters/upstream:pool_bench
//      (or tools/bench --filter upstream)
//
// What the names mean here. The upstream pool is not a free list of
// connections: backend connections are multiplexed and shared, so a session
// "gets" a connection by being pinned to one and "puts" it back by leaving.
//   BM_Pool_Get     a session acquires its backend connection: what
//                   UpstreamFilter::onFrame does for a session's first frame
//                   in a cluster — ClusterPool::pickHost (round robin over 4
//                   hosts, each checked for backoff and availability against
//                   the worker clock) + ClusterPool::pickConnection (the
//                   least-loaded of the host's 4 open connections) +
//                   HostPool::sessions++ + UpstreamFactory::registerSession
//                   (so backend frames find the client). With 10,000
//                   sessions already registered on the worker.
//   BM_Pool_Put     the session gives it back, as UpstreamFilter::onClose
//                   does: UpstreamFactory::unregisterSession +
//                   HostPool::sessions--. (The session-close frame it also
//                   writes to the backend is a write, not a pool operation.)
//   BM_Pool_Find    what every backend frame pays to find its client:
//                   UpstreamWorker::findSession among 10,000 sessions.
//   BM_Pool_PickAffinity  pickHost for a session whose preferred host is up
//                   (its connection dropped; the host is kept).
// Get and Put each run in batches of 1024: after 1024 timed Gets the timer
// is paused while those sessions are Put back (and the other way round), so
// the registry stays between 10,000 and 11,024 sessions and every timed
// operation is a real insert or erase. The pause costs two clock reads per
// batch (< 0.1 ns per op).
//
// The hosts are 4 listening sockets of this process that never accept; the
// connections stay "connecting" (the event loop never runs), which the pool
// counts as open. Heap allocations inside the timed sections (global
// operator new and libevent's allocator, process-wide) are counted by
// //test/bench:alloc_counter and reported as "allocs/op".
#include <benchmark/benchmark.h>
#include <event2/buffer.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/registry.h"
#include "core/sdk/session_info.h"
#include "core/sdk/stats.h"
#include "core/sdk/worker_services.h"
#include "filters/upstream/cluster_pool.h"
#include "filters/upstream/upstream.h"
#include "core/sdk/testing/alloc_counter.h"

namespace gw {
namespace upstream {
namespace {

constexpr size_t kHosts = 4;
constexpr size_t kConnsPerHost = 4;
constexpr size_t kResident = 10000;  // sessions registered before any benchmark
constexpr size_t kBatch = 1024;      // Gets (or Puts) between two untimed reversals
constexpr size_t kFresh = 64 * kBatch;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "pool_bench: %s\n", why.c_str());
  std::abort();
}

// One worker's upstream factory with one cluster of kHosts hosts, each with
// kConnsPerHost connections, and kResident registered sessions. Built once
// and never destroyed (the pool's shutdown would need a running loop).
class PoolFixture {
 public:
  PoolFixture() : dispatcher_("pool_bench") {
    ClusterConfig cluster;
    cluster.name = "game";
    cluster.lb = LbPolicy::kRoundRobin;
    cluster.max_connections_per_service = kConnsPerHost;
    cluster.max_connections = kHosts * kConnsPerHost;
    for (size_t i = 0; i < kHosts; ++i) {
      std::string why;
      int fd = listenSocket(*Address::parse("127.0.0.1:0"), 64, &why);
      if (fd < 0) die(why);
      listeners_.push_back(fd);
      cluster.hosts.push_back(localAddress(fd));
    }
    auto config = std::make_shared<UpstreamConfig>();
    config->clusters.push_back(cluster);
    clusters_.push_back(cluster);
    WorkerContext wctx{dispatcher_, 0, 1, clusters_, "bench", services_};
    factory_ = std::make_unique<UpstreamFactory>(config, wctx);
    owner_ = factory_->createFilter();
    owner_ptr_ = static_cast<UpstreamFilter*>(owner_.get());

    // Open every connection: a connection with no session is reused before
    // the pool grows, so each gets one session through a real data frame.
    ClusterPool& p = pool();
    evbuffer* payload = evbuffer_new();
    uint64_t seed = 1;
    for (size_t h = 0; h < kHosts; ++h) {
      for (size_t c = 0; c < kConnsPerHost; ++c) {
        BackendConnection* conn = p.pickConnection(p.host(h));
        if (conn == nullptr) die("pickConnection failed while filling the pool");
        evbuffer_add(payload, "x", 1);
        wire::ClientHeader hdr;
        hdr.length = 1;
        Frame frame(hdr, payload);
        SessionInfo s;
        s.id = seed++;
        conn->sendData(s, upstream::PeerKey{}, frame);
      }
      if (p.host(h).connections.size() != kConnsPerHost) die("pool did not grow to 4 per host");
    }
    evbuffer_free(payload);

    SessionIdGenerator gen("pool-bench");
    for (size_t i = 0; i < kResident; ++i) {
      uint64_t id = gen.next();
      resident_.push_back(id);
      factory_->worker().registerSession(id, owner_ptr_);
    }
    for (size_t i = 0; i < kFresh; ++i) fresh_.push_back(gen.next());
    host_of_.assign(kFresh, 0);
  }

  ClusterPool& pool() { return factory_->pool(0); }
  UpstreamFactory& factory() { return *factory_; }
  UpstreamFilter* owner() { return owner_ptr_; }
  const std::vector<uint64_t>& resident() const { return resident_; }
  const std::vector<uint64_t>& fresh() const { return fresh_; }
  std::vector<int>& hostOf() { return host_of_; }

  // A session acquires its connection (see BM_Pool_Get). Returns the host.
  int get(uint64_t id) {
    ClusterPool& p = pool();
    HostPool* h = p.pickHost(id, nullptr);
    BackendConnection* conn = p.pickConnection(*h);
    benchmark::DoNotOptimize(conn);
    ++h->sessions;
    factory_->worker().registerSession(id, owner_ptr_);
    return static_cast<int>(h->index);
  }
  // The session leaves (see BM_Pool_Put).
  void put(uint64_t id, int h) {
    factory_->worker().unregisterSession(id, owner_ptr_);
    --pool().host(static_cast<size_t>(h)).sessions;
  }

 private:
  Dispatcher dispatcher_;
  WorkerServices services_;
  std::vector<ClusterConfig> clusters_;
  std::vector<int> listeners_;
  std::unique_ptr<UpstreamFactory> factory_;
  std::unique_ptr<Filter> owner_;
  UpstreamFilter* owner_ptr_ = nullptr;
  std::vector<uint64_t> resident_;
  std::vector<uint64_t> fresh_;
  std::vector<int> host_of_;
};

PoolFixture& fixture() {
  static PoolFixture* f = new PoolFixture();  // never destroyed: see the class comment
  return *f;
}

using bench::AllocScope;
using bench::AllocsPerOp;

void BM_Pool_Get(benchmark::State& state) {
  stats::setThreadShard(0);
  PoolFixture& f = fixture();
  const auto& ids = f.fresh();
  auto& host_of = f.hostOf();
  size_t next = 0;        // index into ids of the next Get
  size_t batch_start = 0; // first index of the current batch
  // One untimed round so the registry has grown to its working size.
  for (size_t i = 0; i < kBatch; ++i) host_of[i] = f.get(ids[i]);
  for (size_t i = 0; i < kBatch; ++i) f.put(ids[i], host_of[i]);
  AllocsPerOp allocs(state, AllocScope::kProcess);
  for (auto _ : state) {
    host_of[next] = f.get(ids[next]);
    if (++next - batch_start == kBatch) {
      state.PauseTiming();
      allocs.pause();
      for (size_t i = batch_start; i < next; ++i) f.put(ids[i], host_of[i]);
      if (next == kFresh) next = 0;
      batch_start = next;
      allocs.resume();
      state.ResumeTiming();
    }
  }
  allocs.stop();
  for (size_t i = batch_start; i < next; ++i) f.put(ids[i], host_of[i]);
  if (f.factory().worker().sessionCount() != kResident) state.SkipWithError("registry size drifted");
}
BENCHMARK(BM_Pool_Get);

void BM_Pool_Put(benchmark::State& state) {
  stats::setThreadShard(0);
  PoolFixture& f = fixture();
  const auto& ids = f.fresh();
  auto& host_of = f.hostOf();
  size_t next = 0;  // index of the next Put; sessions [next, batch_end) are registered
  size_t batch_end = 0;
  AllocsPerOp allocs(state, AllocScope::kProcess);
  for (auto _ : state) {
    if (next == batch_end) {
      state.PauseTiming();
      allocs.pause();
      if (next == kFresh) next = 0;
      batch_end = next + kBatch;
      for (size_t i = next; i < batch_end; ++i) host_of[i] = f.get(ids[i]);
      allocs.resume();
      state.ResumeTiming();
    }
    f.put(ids[next], host_of[next]);
    ++next;
  }
  allocs.stop();
  for (size_t i = next; i < batch_end; ++i) f.put(ids[i], host_of[i]);
  if (f.factory().worker().sessionCount() != kResident) state.SkipWithError("registry size drifted");
}
BENCHMARK(BM_Pool_Put);

void BM_Pool_Find(benchmark::State& state) {
  PoolFixture& f = fixture();
  const auto& ids = f.resident();
  size_t i = 0;
  uint64_t found = 0;
  AllocsPerOp allocs(state, AllocScope::kProcess);
  for (auto _ : state) {
    // A scattered walk over the resident sessions (7919 is prime to 10,000).
    i += 7919;
    if (i >= ids.size()) i -= ids.size();
    found += f.factory().worker().findSession(ids[i]) != nullptr;
  }
  allocs.stop();
  if (found != static_cast<uint64_t>(state.iterations())) state.SkipWithError("lookup missed");
}
BENCHMARK(BM_Pool_Find);

void BM_Pool_PickAffinity(benchmark::State& state) {
  PoolFixture& f = fixture();
  ClusterPool& p = f.pool();
  const auto& ids = f.resident();
  size_t i = 0;
  int64_t sum = 0;
  AllocsPerOp allocs(state, AllocScope::kProcess);
  for (auto _ : state) {
    if (++i == ids.size()) i = 0;
    HostPool* preferred = &p.host(i % kHosts);
    HostPool* h = p.pickHost(ids[i], preferred);
    sum += h == preferred;
  }
  allocs.stop();
  if (sum != static_cast<int64_t>(state.iterations())) state.SkipWithError("affinity not kept");
}
BENCHMARK(BM_Pool_PickAffinity);

}  // namespace
}  // namespace upstream
}  // namespace gw

int main(int argc, char** argv) {
  gw::bench::installLibeventCounting();  // before libevent allocates anything
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  gw::upstream::fixture();  // built before any timing
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
