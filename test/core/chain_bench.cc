// test/core/chain_bench.cc — Google Benchmark of the FilterChain's own cost
// per frame: the real `framing` codec, then N frames-layer filters (N - 1
// pass-through filters and a terminal that discards the frame), on a
// detached Connection (fd -1: no socket, input/output driven by hand).
//
// Run: bazel run -c opt //test/core:chain_bench
//      (or tools/bench --filter chain)
//
// Benchmarks (one 64-byte client frame per iteration):
//   BM_Chain_1Filter          framing -> terminal: decode + dispatch to one
//                             filter (the baseline)
//   BM_Chain_5Filters         framing -> 4 pass-through -> terminal
//   BM_Chain_1Filter_Write    terminal writes a frame toward the client:
//                             framing encodes it into the output buffer
//   BM_Chain_5Filters_Write   the same through 4 pass-through filters'
//                             onWriteFrame
// The chain's overhead per extra filter is
//   (BM_Chain_5Filters - BM_Chain_1Filter) / 4
// and tools/bench prints it. Both read benchmarks include the codec's
// decode and the benchmark's feeding (one evbuffer_add of the frame's bytes
// per iteration), so BM_Chain_5Filters is an upper bound of the 5-filter
// chain's overhead per frame.
//
// Feeding: the stream is shifted by 4 bytes, so every read completes one
// frame and leaves the next one's first 4 bytes buffered; libevent then
// reuses its buffer chain (the steady state of a busy connection).
//
// Heap allocations: //test/bench:alloc_counter replaces global operator
// new/delete with counting wrappers, and main() routes libevent's allocator
// through them; each benchmark reports the counter "allocs/op" (process-wide
// count; must be 0 in steady state).
#include <event2/buffer.h>
#include <benchmark/benchmark.h>
#include <rapidjson/document.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

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

// One client frame: 8-byte header + 64-byte payload, routed to 200:3.
std::string frame64() {
  wire::ClientHeader h;
  h.length = kPayload;
  h.msg_id = 0x1234;
  h.server_id = wire::ClientHeader::makeServerId(3, 200, 1);
  std::string f(wire::kClientHeaderSize + kPayload, 'p');
  h.encode(reinterpret_cast<uint8_t*>(&f[0]));
  return f;
}

// A frames-layer filter that does nothing: every hook returns kContinue.
// Counts the frames it saw so the benchmark can check they went through.
class PassThrough : public Filter {
 public:
  explicit PassThrough(uint64_t* seen) : seen_(seen) {}
  FilterStatus onFrame(Frame&) override {
    ++*seen_;
    return FilterStatus::kContinue;
  }

 private:
  uint64_t* seen_;
};

class PassThroughFactory : public FilterFactory {
 public:
  std::unique_ptr<Filter> createFilter() override { return std::make_unique<PassThrough>(&seen); }
  uint64_t seen = 0;
};

// The terminal: takes every frame and drops its payload. Publishes its
// callbacks so the write benchmarks can send frames toward the client.
class DiscardTerminal : public Filter {
 public:
  DiscardTerminal(FilterCallbacks** out, uint64_t* seen) : out_(out), seen_(seen) {}
  FilterStatus onNewConnection() override {
    *out_ = &callbacks();
    return FilterStatus::kContinue;
  }
  FilterStatus onFrame(Frame& frame) override {
    ++*seen_;
    frame.discardPayload();
    return FilterStatus::kStopIteration;
  }

 private:
  FilterCallbacks** out_;
  uint64_t* seen_;
};

class DiscardTerminalFactory : public FilterFactory {
 public:
  std::unique_ptr<Filter> createFilter() override {
    return std::make_unique<DiscardTerminal>(&callbacks, &seen);
  }
  FilterCallbacks* callbacks = nullptr;
  uint64_t seen = 0;
};

// framing (defaults) -> `filters - 1` pass-through filters -> terminal, on a
// detached connection of its own dispatcher (the loop never runs).
class BenchChain {
 public:
  explicit BenchChain(size_t filters) : dispatcher_("chain_bench") {
    const FilterConfigFactory* framing = FilterRegistry::get().find("framing");
    if (framing == nullptr) die("the framing filter is not registered");
    rapidjson::Document doc;
    doc.Parse("{}");
    static const std::vector<ClusterConfig> kNoClusters;
    ParseContext pctx(kNoClusters, "bench");
    auto cfg = framing->parse(doc, pctx);
    if (cfg == nullptr) die("framing rejected {}");
    WorkerContext wctx{dispatcher_, 0, 1, kNoClusters, "bench", services_};
    codec_ = framing->createFactory(cfg, wctx);

    FilterTraits frames;
    frames.consumes = Layer::kFrames;
    frames.produces = Layer::kFrames;
    FilterTraits terminal;
    terminal.consumes = Layer::kFrames;
    terminal.terminal = true;

    std::vector<ChainElement> elements = {{codec_.get(), framing->traits()}};
    for (size_t i = 0; i + 1 < filters; ++i) elements.push_back({&pass_, frames});
    elements.push_back({&terminal_, terminal});

    OutputLimits limits;
    limits.max_bytes = 0;  // the write benchmarks drain the output themselves
    limits.high_watermark = 0;
    limits.low_watermark = 0;
    chain_ = std::make_unique<FilterChain>(
        std::make_unique<Connection>(dispatcher_, -1, Address(), false), elements, limits,
        [](FilterChain&, CloseReason r, std::string_view d) {
          std::fprintf(stderr, "chain_bench: unexpected close: %s (%.*s)\n",
                       std::string(closeReasonName(r)).c_str(), static_cast<int>(d.size()),
                       d.data());
          std::abort();
        });
    chain_->start();
  }
  ~BenchChain() { chain_.reset(); }

  FilterChain& chain() { return *chain_; }
  evbuffer* input() { return chain_->connection().input(); }
  evbuffer* output() { return chain_->connection().output(); }
  FilterCallbacks& terminalCallbacks() { return *terminal_.callbacks; }
  uint64_t passSeen() const { return pass_.seen; }
  uint64_t terminalSeen() const { return terminal_.seen; }

 private:
  static void die(const char* why) {
    std::fprintf(stderr, "chain_bench: %s\n", why);
    std::abort();
  }

  Dispatcher dispatcher_;
  WorkerServices services_;
  std::unique_ptr<FilterFactory> codec_;
  PassThroughFactory pass_;
  DiscardTerminalFactory terminal_;
  std::unique_ptr<FilterChain> chain_;
};

// Read path: one frame per iteration through `filters` filters after the codec.
void runRead(benchmark::State& state, size_t filters) {
  stats::setThreadShard(0);
  BenchChain b(filters);
  const std::string f = frame64();
  const std::string step = f.substr(4) + f.substr(0, 4);
  evbuffer_add(b.input(), f.data(), 4);
  // One untimed frame first: the first read of a connection arms timers.
  evbuffer_add(b.input(), step.data(), step.size());
  b.chain().deliverInput(false);
  const uint64_t before_seen = b.terminalSeen();
  bench::AllocsPerOp allocs(state, bench::AllocScope::kProcess);
  for (auto _ : state) {
    evbuffer_add(b.input(), step.data(), step.size());
    b.chain().deliverInput(false);
  }
  allocs.stop();
  const uint64_t n = static_cast<uint64_t>(state.iterations());
  if (b.terminalSeen() - before_seen != n) state.SkipWithError("terminal missed frames");
  if (b.passSeen() != (n + 1) * (filters - 1)) state.SkipWithError("a filter missed frames");
  if (evbuffer_get_length(b.input()) != 4) state.SkipWithError("codec left the wrong residue");
  state.SetItemsProcessed(state.iterations());
}

// Write path: the terminal writes one 64-byte frame per iteration toward the
// client; it passes `filters - 1` filters' onWriteFrame, then the codec
// encodes it into the connection's output.
void runWrite(benchmark::State& state, size_t filters) {
  stats::setThreadShard(0);
  BenchChain b(filters);
  FilterCallbacks& cb = b.terminalCallbacks();
  // A backend input buffer that never empties (as on a busy backend
  // connection): each op appends one payload and writes the frame at the front.
  evbuffer* backend = evbuffer_new();
  const std::string payload(kPayload, 'q');
  evbuffer_add(backend, payload.data(), payload.size());
  wire::ClientHeader h;
  h.length = kPayload;
  h.msg_id = 0x1234;
  uint64_t n = 0;
  auto writeOne = [&] {
    evbuffer_add(backend, payload.data(), payload.size());
    Frame frame(h, backend);
    cb.writeFrame(frame);
    if (++n % 32 == 0) {
      // What the socket write would do, before the output outgrows its 4 KiB
      // chain; one byte stays so libevent reuses that chain.
      evbuffer_drain(b.output(), evbuffer_get_length(b.output()) - 1);
    }
  };
  // Untimed: the buffers' first chains are allocated here, not in the loop.
  for (int i = 0; i < 64; ++i) writeOne();
  bench::AllocsPerOp allocs(state, bench::AllocScope::kProcess);
  for (auto _ : state) writeOne();
  allocs.stop();
  if (evbuffer_get_length(backend) != kPayload) state.SkipWithError("payload not moved");
  if (b.chain().framesOut() != n) state.SkipWithError("codec did not encode every frame");
  evbuffer_free(backend);
  state.SetItemsProcessed(state.iterations());
}

void BM_Chain_1Filter(benchmark::State& state) { runRead(state, 1); }
void BM_Chain_5Filters(benchmark::State& state) { runRead(state, 5); }
void BM_Chain_1Filter_Write(benchmark::State& state) { runWrite(state, 1); }
void BM_Chain_5Filters_Write(benchmark::State& state) { runWrite(state, 5); }

BENCHMARK(BM_Chain_1Filter);
BENCHMARK(BM_Chain_5Filters);
BENCHMARK(BM_Chain_1Filter_Write);
BENCHMARK(BM_Chain_5Filters_Write);

}  // namespace
}  // namespace gw

GW_BENCHMARK_MAIN();
