// plugins/example/msg_filter_bench.cc — Google Benchmark of
// example_msg_filter on the hot path, on the embedded chain: the real
// `framing` codec, then (or not) the filter with 16 denied msg_ids, then a
// terminal that discards every frame. One 64-byte client frame per
// iteration.
//
//   BM_MsgFilter_Baseline  framing -> terminal: the chain without the filter
//   BM_MsgFilter_Pass      framing -> example_msg_filter -> terminal, the
//                          frame's msg_id is not denied (the common case)
//   BM_MsgFilter_Refuse    the same with a denied msg_id: the filter counts
//                          it and answers with an error frame
// The filter's own cost per frame is BM_MsgFilter_Pass - BM_MsgFilter_Baseline.
// Every benchmark reports "allocs/op" (core/sdk/testing/alloc_counter.h):
// 0 in steady state.
//
// Run: tools/bench --filter example   (or bazel run -c opt //plugins/example:msg_filter_bench)
// Exits 1 if a benchmark saw the filter misbehave (so `bazel test` fails).
#include <benchmark/benchmark.h>
#include <event2/buffer.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

#include "core/sdk/stats.h"
#include "core/sdk/testing/alloc_counter.h"
#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/wire.h"

namespace example {
namespace {

constexpr char kDeny16[] =
    R"({"deny_msg_ids": [100, 200, 300, 400, 500, 600, 666, 700,
                         800, 900, 1000, 1100, 1200, 1300, 1400, 1500]})";

std::atomic<bool> g_failed{false};

void fail(benchmark::State& state, const char* why) {
  g_failed = true;
  state.SkipWithError(why);
}

// A client frame with a 64-byte payload.
std::string frame64(uint16_t msg_id) {
  gw::wire::ClientHeader h;
  h.length = 64;
  h.msg_id = msg_id;
  std::string f(gw::wire::kClientHeaderSize + 64, 'p');
  h.encode(reinterpret_cast<uint8_t*>(&f[0]));
  return f;
}

// The terminal: drops every frame's payload and counts the frames.
class DiscardTerminal : public gw::Filter {
 public:
  explicit DiscardTerminal(uint64_t* seen) : seen_(seen) {}
  gw::FilterStatus onFrame(gw::Frame& frame) override {
    ++*seen_;
    frame.discardPayload();
    return gw::FilterStatus::kStopIteration;
  }

 private:
  uint64_t* seen_;
};

// Feeds one frame with msg_id `msg_id` per iteration through framing ->
// [example_msg_filter] -> terminal and returns what reached the terminal.
void run(benchmark::State& state, bool with_filter, uint16_t msg_id, bool expect_refused) {
  gw::stats::setThreadShard(0);  // as a worker thread does
  uint64_t seen = 0;
  gw::test::FunctionFilterFactory terminal(
      [&seen] { return std::make_unique<DiscardTerminal>(&seen); });
  gw::test::EmbeddedChain chain;
  std::string error;
  auto framing = chain.registered("framing", "{}", {}, &error);
  auto filter = chain.registered("example_msg_filter", kDeny16, {}, &error);
  if (!framing || !filter) {
    std::fprintf(stderr, "msg_filter_bench: %s\n", error.c_str());
    return fail(state, "a filter of the chain could not be built");
  }
  if (with_filter) {
    chain.start({*framing, *filter, {&terminal, gw::FilterTraits::framesTerminal()}});
  } else {
    chain.start({*framing, {&terminal, gw::FilterTraits::framesTerminal()}});
  }
  // The stream shifted by 4 bytes: every read completes one frame and leaves
  // the next one's first 4 bytes buffered, so libevent reuses its chain.
  const std::string f = frame64(msg_id);
  const std::string step = f.substr(4) + f.substr(0, 4);
  chain.feed(std::string_view(f).substr(0, 4));
  evbuffer* output = chain.connection().output();
  uint64_t n = 0;
  auto feedOne = [&] {
    chain.feed(step);
    if (++n % 32 == 0 && evbuffer_get_length(output) > 1) {
      // What the socket write would do; one byte stays so the chain is reused.
      evbuffer_drain(output, evbuffer_get_length(output) - 1);
    }
  };
  // [START bench_loop]
  for (int i = 0; i < 64; ++i) feedOne();  // untimed: first chains, first log line
  gw::bench::AllocsPerOp allocs(state, gw::bench::AllocScope::kProcess);
  for (auto _ : state) feedOne();
  allocs.stop();  // reports "allocs/op"
  // [END bench_loop]
  if (chain.closed()) return fail(state, "the connection closed");
  if (expect_refused ? seen != 0 : seen != n) return fail(state, "wrong frames reached the terminal");
  if (expect_refused && chain.chain().framesOut() != n) return fail(state, "refusals not answered");
  state.SetItemsProcessed(state.iterations());
}

void BM_MsgFilter_Baseline(benchmark::State& state) { run(state, false, 7, false); }
void BM_MsgFilter_Pass(benchmark::State& state) { run(state, true, 7, false); }
void BM_MsgFilter_Refuse(benchmark::State& state) { run(state, true, 666, true); }

BENCHMARK(BM_MsgFilter_Baseline);
BENCHMARK(BM_MsgFilter_Pass);
BENCHMARK(BM_MsgFilter_Refuse);

}  // namespace
}  // namespace example

// [START bench_main]
int main(int argc, char** argv) {
  // Every allocation counted, libevent's too (GW_BENCHMARK_MAIN() does just
  // this); then fail the run if a benchmark saw the filter misbehave.
  int rc = gw::bench::benchmarkMain(argc, argv);
  return example::g_failed ? 1 : rc;
}
// [END bench_main]
