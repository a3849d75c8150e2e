// test/filters/breaker/breaker_bench.cc — Google Benchmark of the breaker's
// shared state (filters/breaker/breaker_state.h), 1 and 2 threads on one
// BreakerState, as two workers share a cluster's breaker.
//
// Run: bazel run -c opt //test/filters/breaker:breaker_bench
//
// Heap allocations (global operator new; libevent's allocator is not
// counted) are counted per thread by //test/bench:alloc_counter; each
// benchmark reports allocs/op (must be 0). Each thread is bound to its own
// stats shard, as a worker is, so it writes its own stripe of the rolling
// window.
//   BM_Breaker_Allow          allow() on a closed breaker: the per-frame hot
//                             path (one atomic load; the clock is not read).
//   BM_Breaker_AllowOpen      allow() on an open breaker before its deadline:
//                             the per-frame cost during an outage (reads the
//                             clock the caller passes).
//   BM_Breaker_RecordSuccess  recordSuccess(): a backend frame arrived.
//   BM_Breaker_RecordFailure  recordFailure() on a closed breaker that does
//                             not trip (the ratio rule evaluates the whole
//                             window each time: the worst case).
//   BM_BreakerFilter_Frame    one client frame through a real chain (framing
//                             -> breaker -> a terminal that, like upstream,
//                             publishes kFrameSent and a kFrameReceived reply
//                             on the worker's bus) on an expect_reply
//                             cluster with 2 hosts: the breaker's whole
//                             per-frame cost, closed state.
//   BM_BreakerFilter_Baseline the same chain and events without the breaker:
//                             subtract from _Frame.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/log.h"
#include "core/sdk/session_info.h"
#include "core/sdk/stats.h"
#include "core/sdk/upstream_events.h"
#include "filters/breaker/breaker_state.h"
#include "core/sdk/testing/alloc_counter.h"
#include "core/sdk/testing/embedded_chain.h"
#include "test/harness/net.h"

namespace gw {
namespace breaker {
namespace {

constexpr int64_t kMs = 1'000'000;

int64_t steadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

BreakerPolicy benchPolicy() {
  BreakerPolicy p;
  p.failure_threshold = 0;  // consecutive rule off: recordFailure never trips
  p.failure_ratio = 0.5;
  p.min_requests = std::numeric_limits<uint32_t>::max();
  p.window_ns = 10'000 * kMs;
  p.open_ns = 3'600'000 * kMs;  // an hour: stays open for the whole run
  p.max_open_ns = 3'600'000 * kMs;
  return p;
}

// One breaker per benchmark, shared by its threads: thread 0 creates it
// before the timed loop (the library starts the loops of all threads
// together, after every thread's setup).
BreakerState* g_state = nullptr;

void setUp(benchmark::State& state, bool open) {
  stats::setThreadShard(static_cast<size_t>(state.thread_index()));
  if (state.thread_index() != 0) return;
  delete g_state;  // the previous benchmark's, finished by now
  BreakerPolicy p = benchPolicy();
  if (open) p.failure_threshold = 1;
  g_state = new BreakerState(p, "bench", open ? "open" : "closed");
  if (open) g_state->recordFailure(steadyNs(), FailureKind::kConnectFailed);
}

using bench::AllocScope;
using bench::AllocsPerOp;

void BM_Breaker_Allow(benchmark::State& state) {
  setUp(state, false);
  uint64_t allowed = 0;
  AllocsPerOp allocs(state, AllocScope::kThread);
  for (auto _ : state) {
    Admission a = g_state->allow([] { return int64_t{0}; });
    allowed += a == Admission::kAllow;
    benchmark::DoNotOptimize(allowed);
  }
  allocs.stop();
  if (allowed != static_cast<uint64_t>(state.iterations())) state.SkipWithError("not allowed");
}

void BM_Breaker_AllowOpen(benchmark::State& state) {
  setUp(state, true);
  uint64_t rejected = 0;
  int64_t now = steadyNs();
  AllocsPerOp allocs(state, AllocScope::kThread);
  for (auto _ : state) {
    Admission a = g_state->allow([now] { return now; });
    rejected += a == Admission::kRejectOpen;
    benchmark::DoNotOptimize(rejected);
  }
  allocs.stop();
  if (rejected != static_cast<uint64_t>(state.iterations())) state.SkipWithError("not rejected");
}

void BM_Breaker_RecordSuccess(benchmark::State& state) {
  setUp(state, false);
  int64_t now = steadyNs();
  AllocsPerOp allocs(state, AllocScope::kThread);
  for (auto _ : state) {
    g_state->recordSuccess(now);
    now += 1000;  // 1µs per outcome: crosses bucket boundaries as real time does
  }
  allocs.stop();
}

void BM_Breaker_RecordFailure(benchmark::State& state) {
  setUp(state, false);
  int64_t now = steadyNs();
  AllocsPerOp allocs(state, AllocScope::kThread);
  for (auto _ : state) {
    g_state->recordFailure(now, FailureKind::kReplyTimeout);
    now += 1000;
  }
  allocs.stop();
  if (g_state->state() != CircuitState::kClosed) state.SkipWithError("tripped");
}

// A terminal that behaves like upstream towards the breaker: publishes its
// RouteResolver and the session, and for each frame a kFrameSent, then a
// backend reply (kFrameReceived) for the same session.
class EchoTerminal : public Filter, public RouteResolver {
 public:
  EchoTerminal(UpstreamEventBus& bus, const std::string& route_name, const std::string& pool_name)
      : bus_(bus), route_name_(route_name), pool_name_(pool_name) {}
  FilterStatus onNewConnection() override {
    callbacks().slots().set<RouteResolver>(this);
    session_.id = SessionIdGenerator::process().next();
    callbacks().slots().set<SessionInfo>(&session_);
    return FilterStatus::kContinue;
  }
  const std::string* clusterFor(const wire::ClientHeader&) const override { return &route_name_; }
  FilterStatus onFrame(Frame& frame) override {
    frame.discardPayload();
    UpstreamEvent e{UpstreamEvent::Type::kFrameSent, &pool_name_, 1, nullptr, session_.id};
    bus_.publish(e);
    e.type = UpstreamEvent::Type::kFrameReceived;
    bus_.publish(e);
    return FilterStatus::kStopIteration;
  }

 private:
  UpstreamEventBus& bus_;
  const std::string& route_name_;
  const std::string& pool_name_;
  SessionInfo session_;
};

void runChain(benchmark::State& state, bool with_breaker) {
  stats::setThreadShard(0);
  ClusterConfig cluster;
  cluster.name = with_breaker ? "bench-filter" : "bench-baseline";
  cluster.hosts = {*Address::parse("127.0.0.1:9000"), *Address::parse("127.0.0.1:9001")};
  cluster.expect_reply = true;
  std::string route_name = cluster.name, pool_name = cluster.name;
  UpstreamEventBus* bus = nullptr;
  test::FunctionFilterFactory terminal(
      [&] { return std::make_unique<EchoTerminal>(*bus, route_name, pool_name); });
  test::EmbeddedChain ec;
  bus = &ec.services().get<UpstreamEventBus>();
  // Without the breaker, something still listens (as the breaker would).
  struct Null : UpstreamObserver {
    void onUpstreamEvent(const UpstreamEvent&) override {}
  } null_observer;
  if (!with_breaker) bus->subscribe(&null_observer);
  std::vector<ChainElement> chain;
  chain.push_back(*ec.registered("framing", "{}"));
  if (with_breaker) {
    std::string err;
    auto b = ec.registered("breaker", R"({"max_pending": 1000})", {cluster}, &err);
    if (!b) {
      state.SkipWithError(err.c_str());
      return;
    }
    chain.push_back(*b);
  }
  FilterTraits t;
  t.consumes = Layer::kFrames;
  t.terminal = true;
  chain.push_back({&terminal, t});
  ec.start(chain);
  std::string frame =
      test::encodeClientFrame(1, wire::ClientHeader::makeServerId(0, 200, 1), std::string(64, 'x'));
  for (int i = 0; i < 1000; ++i) ec.feed(frame);  // warm up: the session is registered
  AllocsPerOp allocs(state, AllocScope::kThread);
  for (auto _ : state) ec.feed(frame);
  allocs.stop();
  if (!with_breaker) bus->unsubscribe(&null_observer);
}

void BM_BreakerFilter_Frame(benchmark::State& state) { runChain(state, true); }
void BM_BreakerFilter_Baseline(benchmark::State& state) { runChain(state, false); }

BENCHMARK(BM_Breaker_Allow)->Threads(1)->Threads(2);
BENCHMARK(BM_Breaker_AllowOpen)->Threads(1)->Threads(2);
BENCHMARK(BM_Breaker_RecordSuccess)->Threads(1)->Threads(2);
BENCHMARK(BM_Breaker_RecordFailure)->Threads(1)->Threads(2);
BENCHMARK(BM_BreakerFilter_Frame);
BENCHMARK(BM_BreakerFilter_Baseline);

}  // namespace
}  // namespace breaker
}  // namespace gw

int main(int argc, char** argv) {
  gw::log::setLevel("error");  // the open benchmark trips a breaker per run: no log lines
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
