// test/plugins/plugin_bench.cc — a plugin filter on the hot path against the
// same filter compiled in (Google Benchmark).
//
// count_filter.cc is linked into this binary as `builtin_count` and loaded
// from count_plugin.so, through the gateway's own PluginLoader, as
// `plugin_count`. Each benchmark runs one 64-byte client frame per
// iteration through an EmbeddedChain: framing -> N count filters -> a
// terminal that discards the frame. Reports ns/op and allocs/op.
//
//   BM_CompiledIn/N   N x builtin_count
//   BM_Plugin/N       N x plugin_count
//
// Interleaved A/B runs (medians are what to compare):
//   bazel run -c opt //test/plugins:plugin_bench -- --benchmark_repetitions=10
//     --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
//   (one command line)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/filter.h"
#include "core/sdk/registry.h"
#include "core/sdk/stats.h"
#include "core/sdk/testing/alloc_counter.h"
#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/wire.h"
#include "plugins/loader.h"
#include "test/harness/runfiles.h"

namespace gw {
namespace {

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "plugin_bench: %s\n", why.c_str());
  std::exit(1);
}

// One client frame: 8-byte header + 64-byte payload.
std::string frame64() {
  wire::ClientHeader h;
  h.length = 64;
  h.msg_id = 0x1234;
  h.server_id = wire::ClientHeader::makeServerId(3, 200, 1);
  std::string f(wire::kClientHeaderSize + 64, 'p');
  h.encode(reinterpret_cast<uint8_t*>(&f[0]));
  return f;
}

// The terminal: takes every frame and drops its payload; counts them.
class DiscardTerminal : public Filter {
 public:
  explicit DiscardTerminal(uint64_t* seen) : seen_(seen) {}
  FilterStatus onFrame(Frame& frame) override {
    ++*seen_;
    frame.discardPayload();
    return FilterStatus::kStopIteration;
  }

 private:
  uint64_t* seen_;
};

void runChain(benchmark::State& state, const char* filter) {
  stats::setThreadShard(0);
  const size_t n = static_cast<size_t>(state.range(0));
  uint64_t seen = 0;
  test::FunctionFilterFactory terminal([&seen] { return std::make_unique<DiscardTerminal>(&seen); });
  test::EmbeddedChain ec;
  std::string error;
  std::vector<ChainElement> elements;
  auto framing = ec.registered("framing", "{}", {}, &error);
  if (!framing) die("framing: " + error);
  elements.push_back(*framing);
  for (size_t i = 0; i < n; ++i) {
    auto f = ec.registered(filter, "{}", {}, &error);
    if (!f) die(std::string(filter) + ": " + error);
    elements.push_back(*f);
  }
  elements.push_back({&terminal, FilterTraits::framesTerminal()});
  ec.start(elements);
  // Shifted by 4 bytes: each feed completes one frame and leaves the next
  // one's first 4 bytes buffered (a busy connection's steady state).
  const std::string f = frame64();
  const std::string step = f.substr(4) + f.substr(0, 4);
  ec.feed(std::string_view(f).substr(0, 4));
  ec.feed(step);
  const uint64_t before = seen;
  bench::AllocsPerOp allocs(state, bench::AllocScope::kProcess);
  for (auto _ : state) ec.feed(step);
  allocs.stop();
  if (seen - before != static_cast<uint64_t>(state.iterations()))
    state.SkipWithError("the terminal missed frames");
}

void BM_CompiledIn(benchmark::State& state) { runChain(state, "builtin_count"); }
void BM_Plugin(benchmark::State& state) { runChain(state, "plugin_count"); }
BENCHMARK(BM_CompiledIn)->Arg(1)->Arg(4);
BENCHMARK(BM_Plugin)->Arg(1)->Arg(4);

}  // namespace
}  // namespace gw

int main(int argc, char** argv) {
  // Before libevent allocates anything, so every allocation is counted.
  gw::bench::installLibeventCounting();
  static gw::plugins::PluginLoader loader;
  std::string error;
  if (loader.load(gw::test::runfile("test/plugins/count_plugin.so"), &error) == nullptr)
    gw::die(error);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
