// test/filters/websocket/websocket_bench.cc — Google Benchmark of the
// `websocket` filter: unmask + unwrap of client messages and wrap of frames
// to the client, through a real FilterChain (websocket → framing → no-op
// terminal) over a detached Connection, and the wrap alone.
//
// Run: bazel run -c opt //test/filters/websocket:websocket_bench
//
// Heap allocations are counted process-wide (//core/sdk:alloc_counter, with
// libevent's allocator routed through it); each benchmark reports
// "allocs/op". Benchmarks (a "frame" is a client frame of 8 + 64 bytes; a
// "message" a WebSocket binary message of 6 + 72 bytes, masked):
//   BM_Unwrap64_Stream     one message carrying one frame per read, the
//                          stream split 10 bytes into the next message (its
//                          header and 4 payload bytes arrive with this read),
//                          so libevent keeps a chain in both the input and the
//                          filter's buffer: the steady state. Includes
//                          framing's decode of the frame.
//   BM_Unwrap64_PerRead    one whole message per read: the input empties
//                          every read and libevent allocates a chain for the
//                          next feed (as for raw TCP: BM_Framing64_PerRead);
//                          ws_allocs/op counts the chain's own allocations,
//                          not the harness's feed.
//   BM_Framing64_PerRead   the same frames, one per read, without websocket.
//   BM_Framing64_Stream    the same frames with no websocket filter (framing
//                          → terminal, raw bytes): subtract from _Stream for
//                          the filter's own cost.
//   BM_Wrap64              writeFrame of a 64-byte payload through framing
//                          and websocket to the client's output (framing's
//                          one gather write; websocket's onWritePrefix).
//   BM_Encode64_NoWs       the same without the websocket filter.
//   BM_WrapOnly            the filter's onWriteData (the staged path, used
//                          under a transforming filter or for writes in
//                          pieces) alone on a frame written in two pieces
//                          (8-byte header, 64-byte payload) in a bench-owned
//                          buffer, moved to a sink after each.
//   BM_WrapOnlyBaseline    the same buffer work without the filter: subtract.
#include <event2/buffer.h>
#include <benchmark/benchmark.h>
#include <rapidjson/document.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/sdk/connection.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/filter.h"
#include "core/sdk/filter_chain.h"
#include "core/sdk/registry.h"
#include "core/sdk/stats.h"
#include "core/sdk/testing/alloc_counter.h"
#include "core/sdk/wire.h"
#include "core/sdk/worker_services.h"
#include "filters/websocket/websocket.h"
#include "test/filters/websocket/ws_wire.h"

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

// [websocket →] framing → no-op terminal on a detached connection; with
// websocket, the handshake is done.
class BenchChain {
 public:
  explicit BenchChain(bool with_ws) : dispatcher_("bench") {
    static const std::vector<ClusterConfig> kNoClusters;
    WorkerContext wctx{dispatcher_, 0, 1, kNoClusters, "bench", services_};
    std::vector<ChainElement> elements;
    for (const char* name : {"websocket", "framing"}) {
      if (!with_ws && std::string(name) == "websocket") continue;
      const FilterConfigFactory* f = FilterRegistry::get().find(name);
      if (f == nullptr) std::abort();
      rapidjson::Document doc;
      doc.Parse("{}");
      ParseContext pctx(kNoClusters, "bench");
      auto cfg = f->parse(doc, pctx);
      if (cfg == nullptr) std::abort();
      factories_.push_back(f->createFactory(cfg, wctx));
      elements.push_back({factories_.back().get(), f->traits()});
    }
    FilterTraits terminal;
    terminal.consumes = Layer::kFrames;
    terminal.terminal = true;
    elements.push_back({&noop_, terminal});
    OutputLimits limits;
    limits.max_bytes = 0;
    limits.high_watermark = 0;
    chain_ = std::make_unique<FilterChain>(
        std::make_unique<Connection>(dispatcher_, -1, Address(), false), elements, limits,
        [](FilterChain&, CloseReason r, std::string_view d) {
          fprintf(stderr, "unexpected close: %s (%.*s)\n", std::string(closeReasonName(r)).c_str(),
                  static_cast<int>(d.size()), d.data());
          std::abort();
        });
    chain_->start();
    if (with_ws) {
      std::string req = ws_test::upgradeRequest();
      evbuffer_add(input(), req.data(), req.size());
      chain_->deliverInput(false);
      evbuffer_drain(output(), evbuffer_get_length(output()));
    }
  }
  ~BenchChain() { chain_.reset(); }

  FilterChain& chain() { return *chain_; }
  evbuffer* input() { return chain_->connection().input(); }
  evbuffer* output() { return chain_->connection().output(); }
  FilterCallbacks& terminalCallbacks() { return *noop_.callbacks; }

 private:
  Dispatcher dispatcher_;
  WorkerServices services_;
  std::vector<std::unique_ptr<FilterFactory>> factories_;
  NoopTerminalFactory noop_;
  std::unique_ptr<FilterChain> chain_;
};

using bench::AllocScope;
using bench::AllocsPerOp;

// Feeds `stream` (one message's or frame's bytes) shifted by `shift`: each
// op completes one unit and brings the next one's first `shift` bytes.
void runStream(benchmark::State& state, BenchChain& b, const std::string& unit, size_t shift) {
  const std::string step = unit.substr(shift) + unit.substr(0, shift);
  evbuffer_add(b.input(), unit.data(), shift);
  AllocsPerOp allocs(state, AllocScope::kProcess);
  for (auto _ : state) {
    evbuffer_add(b.input(), step.data(), step.size());
    b.chain().deliverInput(false);
  }
  allocs.stop();
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_Unwrap64_Stream(benchmark::State& state) {
  stats::setThreadShard(0);
  BenchChain b(true);
  runStream(state, b, ws_test::binary(frame64()), 10);
  // (Decoded in place: the next frame's first 4 bytes wait in the input.)
  if (b.chain().framesIn() < static_cast<uint64_t>(state.iterations())) {
    state.SkipWithError("messages not decoded");
  }
}
BENCHMARK(BM_Unwrap64_Stream);

void BM_Unwrap64_PerRead(benchmark::State& state) {
  stats::setThreadShard(0);
  BenchChain b(true);
  const std::string m = ws_test::binary(frame64());
  uint64_t chain_allocs = 0;
  AllocsPerOp allocs(state, AllocScope::kProcess);
  for (auto _ : state) {
    evbuffer_add(b.input(), m.data(), m.size());
    uint64_t a = bench::processAllocs();
    b.chain().deliverInput(false);
    chain_allocs += bench::processAllocs() - a;
  }
  allocs.stop();
  state.counters["ws_allocs/op"] =
      benchmark::Counter(static_cast<double>(chain_allocs) / state.iterations());
}
BENCHMARK(BM_Unwrap64_PerRead);

// One whole frame per read without the websocket filter: the raw-TCP
// counterpart of BM_Unwrap64_PerRead (its input empties every read too).
void BM_Framing64_PerRead(benchmark::State& state) {
  stats::setThreadShard(0);
  BenchChain b(false);
  const std::string f = frame64();
  AllocsPerOp allocs(state, AllocScope::kProcess);
  for (auto _ : state) {
    evbuffer_add(b.input(), f.data(), f.size());
    b.chain().deliverInput(false);
  }
  allocs.stop();
}
BENCHMARK(BM_Framing64_PerRead);

void BM_Framing64_Stream(benchmark::State& state) {
  stats::setThreadShard(0);
  BenchChain b(false);
  runStream(state, b, frame64(), 4);
}
BENCHMARK(BM_Framing64_Stream);

void runEncode(benchmark::State& state, BenchChain& b) {
  FilterCallbacks& cb = b.terminalCallbacks();
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
    if (++n % 256 == 0) evbuffer_drain(b.output(), evbuffer_get_length(b.output()) - 1);
  }
  allocs.stop();
  evbuffer_free(backend);
}

void BM_Wrap64(benchmark::State& state) {
  stats::setThreadShard(0);
  BenchChain b(true);
  runEncode(state, b);
}
BENCHMARK(BM_Wrap64);

void BM_Encode64_NoWs(benchmark::State& state) {
  stats::setThreadShard(0);
  BenchChain b(false);
  runEncode(state, b);
}
BENCHMARK(BM_Encode64_NoWs);

// framing's two writes of one frame, each in `buf` then moved to `sink`
// (as FilterChain does with its staging buffer), with or without the filter.
void runWrapOnly(benchmark::State& state, bool with_filter) {
  stats::setThreadShard(0);
  BenchChain b(true);
  auto& ws = static_cast<websocket::WebsocketFilter&>(b.chain().filter(0));
  const std::string f = frame64();
  evbuffer* buf = evbuffer_new();
  evbuffer* sink = evbuffer_new();
  evbuffer_add(sink, "s", 1);
  uint64_t filter_allocs = 0;
  size_t n = 0;
  AllocsPerOp allocs(state, AllocScope::kProcess);
  for (auto _ : state) {
    evbuffer_add(buf, f.data(), wire::kClientHeaderSize);
    uint64_t a = bench::processAllocs();
    if (with_filter) ws.onWriteData(buf, false);
    filter_allocs += bench::processAllocs() - a;
    evbuffer_add_buffer(sink, buf);
    evbuffer_add(buf, f.data() + wire::kClientHeaderSize, kPayload);
    a = bench::processAllocs();
    if (with_filter) ws.onWriteData(buf, false);
    filter_allocs += bench::processAllocs() - a;
    evbuffer_add_buffer(sink, buf);
    if (++n % 256 == 0) evbuffer_drain(sink, evbuffer_get_length(sink) - 1);
  }
  allocs.stop();
  state.counters["filter_allocs/op"] =
      benchmark::Counter(static_cast<double>(filter_allocs) / state.iterations());
  evbuffer_free(buf);
  evbuffer_free(sink);
}

void BM_WrapOnly(benchmark::State& state) { runWrapOnly(state, true); }
BENCHMARK(BM_WrapOnly);
void BM_WrapOnlyBaseline(benchmark::State& state) { runWrapOnly(state, false); }
BENCHMARK(BM_WrapOnlyBaseline);

}  // namespace
}  // namespace gw

GW_BENCHMARK_MAIN();
