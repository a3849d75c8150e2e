// msg_guard/msg_guard_bench.cc — Google Benchmark of msg_guard's per-frame
// cost, run by the gateway's tools/bench next to the built-ins.
//
//   BM_MsgGuard_Frame     one 64-byte client frame through framing ->
//                         msg_guard (10 denied ids, not this one) -> a
//                         terminal that drops it;
//   BM_MsgGuard_Baseline  the same chain without msg_guard: subtract.
// Both report allocs/op (//core/sdk:alloc_counter): must be 0.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "core/sdk/testing/alloc_counter.h"
#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/wire.h"

namespace studio {
namespace {

// Drops every frame: the cheapest terminal.
class Sink : public gw::Filter {
 public:
  gw::FilterStatus onFrame(gw::Frame& frame) override {
    frame.discardPayload();
    return gw::FilterStatus::kStopIteration;
  }
};

std::string clientFrame(uint16_t msg_id, size_t payload) {
  gw::wire::ClientHeader h;
  h.length = static_cast<uint16_t>(payload);
  h.msg_id = msg_id;
  std::string out(gw::wire::kClientHeaderSize, '\0');
  h.encode(reinterpret_cast<uint8_t*>(&out[0]));
  return out + std::string(payload, 'x');
}

void run(benchmark::State& state, bool with_guard) {
  gw::test::FunctionFilterFactory sink([] { return std::make_unique<Sink>(); });
  gw::test::EmbeddedChain ec;
  std::vector<gw::ChainElement> chain{*ec.registered("framing", "{}")};
  if (with_guard) {
    std::string err;
    auto guard = ec.registered("msg_guard", R"({"deny_msg_ids": [1,2,3,4,5,6,7,8,9,10]})", {},
                               &err);
    if (!guard) {
      state.SkipWithError(err.c_str());
      return;
    }
    chain.push_back(*guard);
  }
  chain.push_back({&sink, gw::FilterTraits::framesTerminal()});
  ec.start(chain);
  std::string frame = clientFrame(100, 64);
  for (int i = 0; i < 1000; ++i) ec.feedSteady(frame);  // warm up
  gw::bench::AllocsPerOp allocs(state, gw::bench::AllocScope::kThread);
  for (auto _ : state) ec.feedSteady(frame);
  allocs.stop();
  if (ec.closed()) state.SkipWithError("the connection closed");
}

void BM_MsgGuard_Frame(benchmark::State& state) { run(state, true); }
void BM_MsgGuard_Baseline(benchmark::State& state) { run(state, false); }

BENCHMARK(BM_MsgGuard_Frame);
BENCHMARK(BM_MsgGuard_Baseline);

}  // namespace
}  // namespace studio

GW_BENCHMARK_MAIN();
