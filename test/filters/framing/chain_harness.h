// test/filters/framing/chain_harness.h — drives the `framing` codec through a
// real gw::FilterChain over a detached gw::Connection (fd -1).
//
// Defines RecordedFrame, TerminalState / RecordingTerminalFactory (a fake
// terminal frames-layer filter, created only through its FilterFactory and
// never registered, that records each frame and can run a hook on it) and
// ChainHarness (dispatcher + chain [optional filters before] -> framing ->
// recording terminal). Tests append client bytes with feed(), read what the
// chain wrote with takeOutput(), and run the event loop with runFor().
#pragma once

#include <event2/buffer.h>
#include <event2/event.h>
#include <rapidjson/document.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/sdk/schema_check.h"
#include "core/sdk/connection.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/filter.h"
#include "core/sdk/filter_chain.h"
#include "core/sdk/registry.h"
#include "core/sdk/stats.h"
#include "core/sdk/wire.h"
#include "core/sdk/worker_services.h"

namespace gw {
namespace framing_test {

// A frame as the terminal saw it: header and a copy of the payload.
struct RecordedFrame {
  wire::ClientHeader header;
  std::string payload;
};

// What the recording terminal shares with the test.
struct TerminalState {
  std::vector<RecordedFrame> frames;
  // Runs after a frame was recorded (echo it, pause reading, close, ...).
  std::function<void(Frame&, FilterCallbacks&)> on_frame;
  // The terminal's callbacks, set when the chain starts.
  FilterCallbacks* callbacks = nullptr;
};

class RecordingTerminal : public Filter {
 public:
  explicit RecordingTerminal(TerminalState& state) : state_(state) {}
  FilterStatus onNewConnection() override {
    state_.callbacks = &callbacks();
    return FilterStatus::kContinue;
  }
  FilterStatus onFrame(Frame& frame) override {
    RecordedFrame r{frame.header, std::string(frame.payloadLength(), '\0')};
    size_t got = frame.peekPayload(&r.payload[0], r.payload.size());
    r.payload.resize(got);
    state_.frames.push_back(std::move(r));
    if (state_.on_frame) state_.on_frame(frame, callbacks());
    return FilterStatus::kStopIteration;
  }

 private:
  TerminalState& state_;
};

class RecordingTerminalFactory : public FilterFactory {
 public:
  std::unique_ptr<Filter> createFilter() override {
    return std::make_unique<RecordingTerminal>(state);
  }
  static FilterTraits traits() {
    FilterTraits t;
    t.consumes = Layer::kFrames;
    t.terminal = true;
    return t;
  }
  TerminalState state;
};

// Parses `json` as the framing config (schema-checked, like the loader does).
// Throws std::runtime_error with the message on an invalid config.
inline std::shared_ptr<const FilterConfig> parseFramingConfig(const std::string& json,
                                                              const std::string& listener) {
  const FilterConfigFactory* f = FilterRegistry::get().find("framing");
  if (f == nullptr) throw std::runtime_error("framing is not registered");
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  if (doc.HasParseError()) throw std::runtime_error("bad JSON: " + json);
  if (auto e = config::checkSchema(f->schema(), doc, "")) throw std::runtime_error(*e);
  static const std::vector<ClusterConfig> kNoClusters;
  ParseContext ctx(kNoClusters, listener);
  auto cfg = f->parse(doc, ctx);
  if (!ctx.errors().empty())
    throw std::runtime_error(ctx.errors()[0].pointer + ": " + ctx.errors()[0].message);
  if (cfg == nullptr) throw std::runtime_error("parse returned nullptr");
  return cfg;
}

// Client frame bytes: header (encoded by core/wire.h) + payload.
inline std::string frameBytes(uint16_t msg_id, uint32_t server_id, std::string_view payload) {
  wire::ClientHeader h;
  h.length = static_cast<uint16_t>(payload.size());
  h.msg_id = msg_id;
  h.server_id = server_id;
  uint8_t raw[wire::kClientHeaderSize];
  h.encode(raw);
  std::string out(reinterpret_cast<const char*>(raw), sizeof(raw));
  out.append(payload.data(), payload.size());
  return out;
}

// A chain [before...] -> framing -> recording terminal on a detached
// connection. `listener` labels the metrics (use a unique one per test).
class ChainHarness {
 public:
  explicit ChainHarness(const std::string& framing_json, const std::string& listener = "test",
                        std::vector<ChainElement> before = {})
      : dispatcher("test") {
    const FilterConfigFactory* f = FilterRegistry::get().find("framing");
    if (f == nullptr) throw std::runtime_error("framing is not registered");
    static const std::vector<ClusterConfig> kNoClusters;
    WorkerContext ctx{dispatcher, 0, 1, kNoClusters, listener, services};
    framing_factory = f->createFactory(parseFramingConfig(framing_json, listener), ctx);
    std::vector<ChainElement> elements = std::move(before);
    elements.push_back({framing_factory.get(), f->traits()});
    elements.push_back({&terminal_factory, RecordingTerminalFactory::traits()});
    auto conn = std::make_unique<Connection>(dispatcher, -1, Address(), false);
    OutputLimits limits;
    chain = std::make_unique<FilterChain>(
        std::move(conn), elements, limits,
        [this](FilterChain&, CloseReason r, std::string_view d) {
          closed = true;
          reason = r;
          detail = std::string(d);
          close_time = std::chrono::steady_clock::now();
          event_base_loopbreak(dispatcher.base());
        });
    chain->start();
  }
  ~ChainHarness() { chain.reset(); }

  Connection& conn() { return chain->connection(); }
  std::vector<RecordedFrame>& frames() { return terminal_factory.state.frames; }
  TerminalState& terminal() { return terminal_factory.state; }

  // Appends `bytes` to the connection's input and delivers them.
  void feed(std::string_view bytes, bool end_stream = false) {
    evbuffer_add(conn().input(), bytes.data(), bytes.size());
    chain->deliverInput(end_stream);
  }
  // Appends each piece as its own evbuffer chain (moved, not copied), then
  // delivers once: headers and payloads can span chains.
  void feedChains(const std::vector<std::string>& pieces) {
    for (const std::string& p : pieces) {
      evbuffer* b = evbuffer_new();
      evbuffer_add(b, p.data(), p.size());
      evbuffer_add_buffer(conn().input(), b);
      evbuffer_free(b);
    }
    chain->deliverInput(false);
  }
  // Feeds one byte per delivery.
  void feedByteByByte(std::string_view bytes) {
    for (char c : bytes) feed(std::string_view(&c, 1));
  }
  // Removes and returns everything the chain wrote toward the client.
  std::string takeOutput() {
    evbuffer* out = conn().output();
    std::string s(evbuffer_get_length(out), '\0');
    if (!s.empty()) evbuffer_remove(out, &s[0], s.size());
    return s;
  }
  size_t bufferedInput() { return evbuffer_get_length(conn().input()); }
  // Runs the event loop for `d`, or until the connection closes.
  void runFor(std::chrono::milliseconds d) {
    if (closed) return;
    timeval tv{static_cast<time_t>(d.count() / 1000),
               static_cast<suseconds_t>((d.count() % 1000) * 1000)};
    event_base_loopexit(dispatcher.base(), &tv);
    dispatcher.run();
  }

  Dispatcher dispatcher;
  WorkerServices services;
  std::unique_ptr<FilterFactory> framing_factory;
  RecordingTerminalFactory terminal_factory;
  std::unique_ptr<FilterChain> chain;
  bool closed = false;
  CloseReason reason = CloseReason::kCount;
  std::string detail;
  std::chrono::steady_clock::time_point close_time;
};

// Current value of the codec's counter `name` with these labels.
inline uint64_t counterValue(const std::string& name, const stats::Labels& labels) {
  return stats::StatsRegistry::get().counter(name, "", labels).value();
}

}  // namespace framing_test
}  // namespace gw
