// test/filters/framing/framing_bench.cc — Google Benchmark of the `framing`
// codec through a real FilterChain (framing -> no-op terminal) over a
// detached Connection.
//
// Run: bazel run -c opt //test/filters/framing:framing_bench
//
// Heap allocations are counted by //test/bench:alloc_counter (global
// operator new/delete, and libevent's allocator, routed through it in
// main()), process-wide; each benchmark reports "allocs/op". Benchmarks:
//   BM_Decode64_Stream     one 64-byte frame decoded per read, the stream
//                          split mid-header (a 4-byte residue stays buffered,
//                          so libevent reuses its chain): the steady state.
//   BM_Decode64_PerRead    one whole 64-byte frame per read; the input buffer
//                          empties every read, so libevent allocates a chain
//                          for each fed frame. codec_allocs/op counts only
//                          the allocations made inside the codec's read.
//   BM_Decode64_Batch/N    N frames per read; time and allocs are per frame.
//   BM_Encode64            writeFrame of a 64-byte payload from a backend
//                          buffer to the client's output.
//   BM_FeedBaseline        the benchmark's own feeding (append + drain one
//                          frame's bytes, no codec): subtract from _Stream.
#include <event2/buffer.h>
#include <benchmark/benchmark.h>
#include <rapidjson/document.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/sdk/connection.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/filter.h"
#include "core/sdk/filter_chain.h"
#include "core/sdk/registry.h"
#include "core/sdk/stats.h"
#include "core/sdk/wire.h"
#include "core/sdk/worker_services.h"
#include "core/sdk/testing/alloc_counter.h"

namespace gw {
namespace {

constexpr size_t kPayload = 64;

std::string frame64() {
  wire::ClientHeader h;
  h.length = kPayload;
  h.msg_id = 0x1234;
  h.server_id = wire::ClientHeader::makeServerId(3, 200, 1);
  std::string f(wire::kClientHeaderSize + kPayload, 'p');
  h.encode(reinterpret_cast<uint8_t*>(&f[0]));
  return f;
}

// Drops every frame (the chain discards the payload). Publishes its
// callbacks so the encode benchmark can write frames toward the client.
class NoopTerminal : public Filter {
 public:
  explicit NoopTerminal(FilterCallbacks** out) : out_(out) {}
  FilterStatus onNewConnection() override {
    *out_ = &callbacks();
    return FilterStatus::kContinue;
  }
  FilterStatus onFrame(Frame&) override { return FilterStatus::kStopIteration; }

 private:
  FilterCallbacks** out_;
};

class NoopTerminalFactory : public FilterFactory {
 public:
  std::unique_ptr<Filter> createFilter() override {
    return std::make_unique<NoopTerminal>(&callbacks);
  }
  FilterCallbacks* callbacks = nullptr;
};

// framing (config `json`, defaults: idle_timeout 5m, read_timeout 30s) ->
// no-op terminal, on a detached connection.
class BenchChain {
 public:
  explicit BenchChain(const char* json = "{}") : dispatcher_("bench") {
    const FilterConfigFactory* f = FilterRegistry::get().find("framing");
    if (f == nullptr) std::abort();
    rapidjson::Document doc;
    doc.Parse(json);
    static const std::vector<ClusterConfig> kNoClusters;
    ParseContext pctx(kNoClusters, "bench");
    auto cfg = f->parse(doc, pctx);
    if (cfg == nullptr) std::abort();
    WorkerContext wctx{dispatcher_, 0, 1, kNoClusters, "bench", services_};
    framing_ = f->createFactory(cfg, wctx);
    FilterTraits terminal;
    terminal.consumes = Layer::kFrames;
    terminal.terminal = true;
    std::vector<ChainElement> elements = {{framing_.get(), f->traits()}, {&noop_, terminal}};
    OutputLimits limits;
    limits.max_bytes = 0;  // the encode benchmark drains the output itself
    limits.high_watermark = 0;
    chain_ = std::make_unique<FilterChain>(
        std::make_unique<Connection>(dispatcher_, -1, Address(), false), elements, limits,
        [](FilterChain&, CloseReason r, std::string_view d) {
          fprintf(stderr, "unexpected close: %s (%.*s)\n", std::string(closeReasonName(r)).c_str(),
                  static_cast<int>(d.size()), d.data());
          std::abort();
        });
    chain_->start();
  }
  ~BenchChain() { chain_.reset(); }

  FilterChain& chain() { return *chain_; }
  evbuffer* input() { return chain_->connection().input(); }
  evbuffer* output() { return chain_->connection().output(); }
  // The terminal's callbacks (to write frames toward the client).
  FilterCallbacks& terminalCallbacks() { return *noop_.callbacks; }

 private:
  Dispatcher dispatcher_;
  WorkerServices services_;
  std::unique_ptr<FilterFactory> framing_;
  NoopTerminalFactory noop_;
  std::unique_ptr<FilterChain> chain_;
};

using bench::AllocScope;
using bench::AllocsPerOp;

void BM_Decode64_Stream(benchmark::State& state) {
  stats::setThreadShard(0);
  BenchChain b;
  const std::string f = frame64();
  // Shift the stream by 4 bytes: every read completes one frame and starts
  // the next, leaving its first 4 bytes buffered.
  const std::string step = f.substr(4) + f.substr(0, 4);
  evbuffer_add(b.input(), f.data(), 4);
  AllocsPerOp allocs(state, AllocScope::kProcess);
  for (auto _ : state) {
    evbuffer_add(b.input(), step.data(), step.size());
    b.chain().deliverInput(false);
  }
  allocs.stop();
  if (evbuffer_get_length(b.input()) != 4) state.SkipWithError("codec left the wrong residue");
}
BENCHMARK(BM_Decode64_Stream);

// What BM_Decode64_Stream spends outside the codec: appending the read's
// bytes and draining a frame's worth, with no chain. Subtract it to get the
// codec's own cost.
void BM_FeedBaseline(benchmark::State& state) {
  evbuffer* in = evbuffer_new();
  const std::string f = frame64();
  const std::string step = f.substr(4) + f.substr(0, 4);
  evbuffer_add(in, f.data(), 4);
  AllocsPerOp allocs(state, AllocScope::kProcess);
  for (auto _ : state) {
    evbuffer_add(in, step.data(), step.size());
    evbuffer_drain(in, step.size());
  }
  allocs.stop();
  evbuffer_free(in);
}
BENCHMARK(BM_FeedBaseline);

void BM_Decode64_PerRead(benchmark::State& state) {
  stats::setThreadShard(0);
  BenchChain b;
  const std::string f = frame64();
  uint64_t codec_allocs = 0;
  AllocsPerOp allocs(state, AllocScope::kProcess);
  for (auto _ : state) {
    evbuffer_add(b.input(), f.data(), f.size());
    uint64_t a = bench::processAllocs();
    b.chain().deliverInput(false);
    codec_allocs += bench::processAllocs() - a;
  }
  allocs.stop();
  state.counters["codec_allocs/op"] =
      benchmark::Counter(static_cast<double>(codec_allocs) / state.iterations());
  if (evbuffer_get_length(b.input()) != 0) state.SkipWithError("frame not decoded");
}
BENCHMARK(BM_Decode64_PerRead);

void BM_Decode64_Batch(benchmark::State& state) {
  stats::setThreadShard(0);
  BenchChain b;
  const size_t n = static_cast<size_t>(state.range(0));
  std::string batch;
  for (size_t i = 0; i < n; ++i) batch += frame64();
  // Keep a 4-byte residue so libevent keeps its chain (see BM_Decode64_Stream).
  const std::string f = frame64();
  std::string step = batch.substr(4) + f.substr(0, 4);
  evbuffer_add(b.input(), f.data(), 4);
  AllocsPerOp allocs(state, AllocScope::kProcess);
  for (auto _ : state) {
    evbuffer_add(b.input(), step.data(), step.size());
    b.chain().deliverInput(false);
  }
  allocs.stop(static_cast<double>(n));  // per frame
  // Seconds per frame (printed with an SI prefix: "25n" = 25 ns).
  state.counters["sec/frame"] = benchmark::Counter(
      static_cast<double>(n),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_Decode64_Batch)->Arg(1)->Arg(16)->Arg(64);

void BM_Encode64(benchmark::State& state) {
  stats::setThreadShard(0);
  BenchChain b;
  FilterCallbacks& cb = b.terminalCallbacks();
  // A backend input buffer that never empties, like a busy upstream: each op
  // appends one payload and writes the frame whose payload is at the front.
  evbuffer* backend = evbuffer_new();
  const std::string payload(kPayload, 'q');
  evbuffer_add(backend, payload.data(), payload.size());
  wire::ClientHeader h;
  h.length = kPayload;
  h.msg_id = 0x1234;
  AllocsPerOp allocs(state, AllocScope::kProcess);
  size_t n = 0;
  for (auto _ : state) {
    evbuffer_add(backend, payload.data(), payload.size());
    Frame frame(h, backend);
    cb.writeFrame(frame);
    if (++n % 256 == 0) {
      // Drain the client's output, keeping one byte so its chain is reused.
      evbuffer_drain(b.output(), evbuffer_get_length(b.output()) - 1);
    }
  }
  allocs.stop();
  if (evbuffer_get_length(backend) != kPayload) state.SkipWithError("payload not moved");
  evbuffer_free(backend);
}
BENCHMARK(BM_Encode64);

}  // namespace
}  // namespace gw

int main(int argc, char** argv) {
  // Before any libevent allocation, so every one of them is counted.
  gw::bench::installLibeventCounting();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
