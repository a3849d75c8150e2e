// test/filters/session/session_bench.cc — Google Benchmark of the session
// table (the memory store's SessionManager) and of the `session` filter's
// per-frame cost.
//
// Run: bazel run -c opt //test/filters/session:session_bench
//
// The Go gateway published Add 2500 ns/op and Get 600 ns/op for its
// SessionManager; the goal is 10x better (Add <= 250 ns, Get <= 60 ns, and
// the performance issue's Get <= 50 ns) with 1M sessions and no allocation
// on Get. Benchmarks (Threads(1) and Threads(2): each thread works on its
// own ids; time is per operation per thread):
//   BM_SessionManager_Add     1M sessions in the table, then each iteration
//                             adds a new one (1M per thread: the table grows
//                             to 2-3M). reserved:0 includes the doublings;
//                             reserved:1 sized the table up front.
//   BM_SessionManager_Get     1M sessions; each iteration looks one up, in a
//                             random order (every lookup is a cache miss).
//   BM_SessionManager_Remove  1M + 1M per thread sessions; each iteration
//                             removes one, down to 1M.
//   BM_SessionIdGenerator_Next  one session id (lock-free; shared by workers).
//   BM_Chain_Frame/session=0|1  one 64-byte client frame through framing ->
//                             [session ->] a no-op terminal: the difference
//                             is what the session filter adds per frame.
// Counters: allocs/op (global operator new, counted process-wide by
// //test/bench:alloc_counter; libevent's allocator is not counted), and
// table_growths (slot arrays allocated when a shard doubles: aligned_alloc,
// not new).
#include <benchmark/benchmark.h>
#include <event2/buffer.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/sdk/session_info.h"
#include "core/sdk/wire.h"
#include "filters/session/session_manager.h"
#include "core/sdk/testing/alloc_counter.h"
#include "core/sdk/testing/embedded_chain.h"

namespace {

using gw::bench::processAllocs;
using gw::bench::reportAllocsPerOp;
using gw::session::SessionManager;
using gw::session::SessionRecord;
using gw::session::SessionView;

constexpr size_t kSessions = 1000000;
constexpr size_t kPerThread = 1000000;

// Shared by the threads of one benchmark run; built by thread 0 before the
// timed loop (the other threads wait at the loop's start barrier).
struct Fixture {
  std::unique_ptr<SessionManager> manager;
  std::vector<uint64_t> base;                 // the 1M sessions present
  std::vector<std::vector<uint64_t>> extra;   // per thread: ids to add/remove
  SessionRecord record;
};
Fixture* g_fixture = nullptr;

// Real session ids, as the gateway makes them.
std::vector<uint64_t> makeIds(gw::SessionIdGenerator& gen, size_t n) {
  std::vector<uint64_t> ids(n);
  for (auto& id : ids) id = gen.next();
  return ids;
}

void setUp(benchmark::State& state, bool fill_extra, bool reserve = false) {
  auto* f = new Fixture();
  f->manager = std::make_unique<SessionManager>(16);
  if (reserve) f->manager->reserve(kSessions + kPerThread * static_cast<size_t>(state.threads()));
  gw::SessionIdGenerator gen("bench-node");
  f->base = makeIds(gen, kSessions);
  for (uint64_t id : f->base) f->manager->add(id, &f->record, 0);
  for (int t = 0; t < state.threads(); ++t) {
    f->extra.push_back(makeIds(gen, kPerThread));
    if (fill_extra)
      for (uint64_t id : f->extra.back()) f->manager->add(id, &f->record, 0);
  }
  g_fixture = f;
}

void tearDown() {
  delete g_fixture;
  g_fixture = nullptr;
}

// Called by thread 0 only, after the timed loop: the count is process-wide
// (all threads' allocations), and "allocs/op" divides it by the iterations
// of all threads.
void report(benchmark::State& state, uint64_t allocs_before, uint64_t growths_before) {
  reportAllocsPerOp(state, processAllocs() - allocs_before);
  state.counters["table_growths"] =
      static_cast<double>(SessionManager::tableGrowths() - growths_before);
}

void BM_SessionManager_Add(benchmark::State& state) {
  if (state.thread_index() == 0) setUp(state, false, state.range(0) != 0);
  uint64_t allocs = 0, growths = 0;
  size_t i = 0;
  for (auto _ : state) {
    if (i == 0) {
      allocs = processAllocs();
      growths = SessionManager::tableGrowths();
    }
    const auto& ids = g_fixture->extra[static_cast<size_t>(state.thread_index())];
    benchmark::DoNotOptimize(g_fixture->manager->add(ids[i], &g_fixture->record,
                                                     static_cast<uint16_t>(state.thread_index())));
    ++i;
  }
  if (state.thread_index() == 0) {
    report(state, allocs, growths);
    tearDown();
  }
}
// reserved:0 — the table doubles as it grows (included); reserved:1 — sized
// up front with SessionManager::reserve (the session filter's
// expected_sessions).
BENCHMARK(BM_SessionManager_Add)
    ->ArgName("reserved")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(kPerThread)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

void BM_SessionManager_Get(benchmark::State& state) {
  if (state.thread_index() == 0) setUp(state, false, state.range(0) != 0);
  // Each thread looks up the 1M sessions in its own random order.
  std::vector<uint64_t> order;
  // The timed loop reads the order through these two locals, not through
  // `order`: with order[i] and order.size() GCC reloads the vector's begin
  // and end from memory on every iteration (DoNotOptimize's memory clobber;
  // `order` escaped to std::shuffle), and that loop measured 5-7 ns/op
  // slower (about 52 ns instead of 45, same table code): harness, not lookup.
  const uint64_t* ids = nullptr;
  size_t count = 0;
  uint64_t allocs = 0;
  bool first = true;
  size_t i = 0;
  SessionView v;
  for (auto _ : state) {
    if (first) {
      state.PauseTiming();
      order = g_fixture->base;
      std::shuffle(order.begin(), order.end(), std::mt19937_64(state.thread_index() + 1));
      ids = order.data();
      count = order.size();
      allocs = processAllocs();
      first = false;
      state.ResumeTiming();
    }
    bool found = g_fixture->manager->get(ids[i], &v);
    benchmark::DoNotOptimize(found);
    benchmark::DoNotOptimize(v);
    if (++i == count) i = 0;
  }
  uint64_t allocs_in_loop = processAllocs() - allocs;
  if (state.thread_index() == 0) {
    reportAllocsPerOp(state, allocs_in_loop);  // thread 0 only: see report()
    tearDown();
  }
}
BENCHMARK(BM_SessionManager_Get)->ArgName("reserved")->Arg(0)->Arg(1)->Threads(1)->Threads(2)->UseRealTime();

void BM_SessionManager_Remove(benchmark::State& state) {
  if (state.thread_index() == 0) setUp(state, true);
  uint64_t allocs = 0, growths = 0;
  size_t i = 0;
  for (auto _ : state) {
    if (i == 0) {
      allocs = processAllocs();
      growths = SessionManager::tableGrowths();
    }
    const auto& ids = g_fixture->extra[static_cast<size_t>(state.thread_index())];
    benchmark::DoNotOptimize(g_fixture->manager->remove(ids[i]));
    ++i;
  }
  if (state.thread_index() == 0) {
    report(state, allocs, growths);
    tearDown();
  }
}
BENCHMARK(BM_SessionManager_Remove)->Iterations(kPerThread)->Threads(1)->Threads(2)->UseRealTime();

void BM_SessionIdGenerator_Next(benchmark::State& state) {
  static gw::SessionIdGenerator gen("bench-node");
  for (auto _ : state) benchmark::DoNotOptimize(gen.next());
}
BENCHMARK(BM_SessionIdGenerator_Next)->Threads(1)->Threads(2)->UseRealTime();

// A frames-layer terminal that drops every frame.
class NullTerminal : public gw::Filter {
 public:
  gw::FilterStatus onFrame(gw::Frame& frame) override {
    frame.discardPayload();
    return gw::FilterStatus::kStopIteration;
  }
};

void BM_Chain_Frame(benchmark::State& state) {
  bool with_session = state.range(0) != 0;
  gw::test::FunctionFilterFactory terminal([] { return std::make_unique<NullTerminal>(); });
  gw::FilterTraits tt;
  tt.consumes = gw::Layer::kFrames;
  tt.terminal = true;
  gw::test::EmbeddedChain ec;
  auto framing = ec.registered("framing", R"({"idle_timeout": "0s"})");
  std::vector<gw::ChainElement> elements = {*framing};
  if (with_session) elements.push_back(*ec.registered("session", "{}"));
  elements.push_back({&terminal, tt});
  ec.start(elements);
  std::string frame(gw::wire::kClientHeaderSize + 64, 'x');
  gw::wire::ClientHeader h;
  h.length = 64;
  h.msg_id = 7;
  h.server_id = 200 << 8;
  h.encode(reinterpret_cast<uint8_t*>(&frame[0]));
  ec.feed(frame);  // the first frame creates the session
  // A 4-byte residue stays in the input buffer, so libevent keeps reusing its
  // chain: the steady state of a stream (see framing_bench).
  std::string stream = frame + frame.substr(0, 4);
  ec.feed(stream.substr(frame.size()));
  std::string rest = frame.substr(4) + frame.substr(0, 4);
  gw::bench::AllocsPerOp allocs(state, gw::bench::AllocScope::kProcess);
  for (auto _ : state) ec.feed(rest);
  allocs.stop();
}
BENCHMARK(BM_Chain_Frame)->ArgName("session")->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
