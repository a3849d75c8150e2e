// core/sdk/testing/embedded_chain.h — drive a filter chain without sockets.
//
// Defines EmbeddedChain (like Netty's EmbeddedChannel): a Dispatcher and a
// FilterChain over a detached Connection (fd -1, see core/connection.h).
// A test feeds client bytes in, reads what the chain wrote toward the
// client, checks how and why it closed, and runs the event loop briefly for
// timers and redelivery. Filters that open real connections (tcp_proxy,
// upstream) work too: they use the same dispatcher, and runFor() drives it.
//
// Also defines FunctionFilterFactory (a FilterFactory from a lambda, for
// test filters), FrameRecorder (a frames-layer terminal that records every
// frame it gets, for testing what a codec or frames filter passes on) and
// buildFilter() (a registered filter's factory from its JSON config,
// schema-checked as the loader does).
//
//   FrameRecorder recorder;
//   EmbeddedChain ec;
//   auto framing = ec.registered("framing", R"({"max_frame_bytes": 1024})");
//   ec.start({*framing, recorder.element()});
//   ec.feed(encodeClientFrame(1, 0, "hi"));
//   EXPECT_EQ(recorder.frames[0].payload, "hi");
//   recorder.callbacks->sendFrame(2, 0, "back");
//   EXPECT_EQ(ec.takeOutput(), ...);
//
// Single-threaded: everything runs on the test's thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/cluster.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/filter_chain.h"
#include "core/sdk/registry.h"
#include "core/sdk/wire.h"
#include "core/sdk/worker_services.h"

namespace gw {
namespace test {

// A FilterFactory that calls `make` for each connection.
class FunctionFilterFactory : public FilterFactory {
 public:
  explicit FunctionFilterFactory(std::function<std::unique_ptr<Filter>()> make)
      : make_(std::move(make)) {}
  std::unique_ptr<Filter> createFilter() override { return make_(); }

 private:
  std::function<std::unique_ptr<Filter>()> make_;
};

// A frame as a FrameRecorder got it: its header and a copy of its payload.
struct RecordedFrame {
  wire::ClientHeader header;
  std::string payload;
};

// A frames-layer terminal (created only through this factory, never
// registered) that records each frame it gets, then runs on_frame on it
// (echo it, pause reading, close, ...). Shared by every filter it creates;
// meant for one connection. Must outlive the chain (declare it before the
// EmbeddedChain).
class FrameRecorder : public FilterFactory {
 public:
  std::unique_ptr<Filter> createFilter() override;
  // {this, FilterTraits::framesTerminal()}, for EmbeddedChain::start().
  ChainElement element() { return {this, FilterTraits::framesTerminal()}; }

  // Every frame received, in order.
  std::vector<RecordedFrame> frames;
  // Runs after a frame was recorded; the frame is dropped afterwards unless
  // the hook consumed it (writeFrame). Empty: nothing.
  std::function<void(Frame&, FilterCallbacks&)> on_frame;
  // The last created filter's callbacks (set in its onNewConnection): send
  // frames toward the client with sendFrame()/writeFrame().
  FilterCallbacks* callbacks = nullptr;
};

struct BuiltFilter;

class EmbeddedChain {
 public:
  struct Options {
    OutputLimits limits;
    // The client's address as filters see it (connection().peer()).
    std::string peer = "127.0.0.1:40000";
    // The listener name registered() filters are parsed and built for
    // (filters label their metrics with it: use a unique one per test to
    // start from zero).
    std::string listener = "test";
  };

  // Creates the dispatcher only; call start() with the chain's elements.
  // Two steps so that factories needing the dispatcher (buildFilter) can be
  // built in between.
  EmbeddedChain() : EmbeddedChain(Options{}) {}
  explicit EmbeddedChain(Options options);
  // Creates the dispatcher, builds the chain and starts it.
  explicit EmbeddedChain(const std::vector<ChainElement>& elements);
  EmbeddedChain(const std::vector<ChainElement>& elements, Options options);
  // Destroys the chain (filters first), then the registered filters'
  // factories, the worker services and the dispatcher.
  ~EmbeddedChain();
  EmbeddedChain(const EmbeddedChain&) = delete;
  EmbeddedChain& operator=(const EmbeddedChain&) = delete;

  // Builds the chain (one filter per element) and runs onNewConnection.
  // Call once. The factories must outlive the chain: declare them before
  // this object, or use registered().
  void start(const std::vector<ChainElement>& elements);

  // Builds the filter registered as `name` from `config_json` (see
  // buildFilter) for this chain's dispatcher and worker services, keeps its
  // factory alive as long as the chain, and returns its element for
  // start(). Returns nullopt with *error set on failure.
  std::optional<ChainElement> registered(std::string_view name, std::string_view config_json,
                                         const std::vector<ClusterConfig>& clusters = {},
                                         std::string* error = nullptr);

  // Appends `bytes` to the connection's input and delivers them as one read
  // from the first filter (the chain holds them while a filter has stopped
  // onNewConnection); with end_stream, the peer's half-close comes with them
  // (a read that returned the bytes, then EOF). While reading is paused
  // (readDisable) the bytes only wait in the input, as they would in the
  // kernel: the connection delivers them again after the resume, during
  // runFor() (and the half-close after them). No-op once closed.
  void feed(std::string_view bytes, bool end_stream = false);
  // Like feed(), but each piece becomes its own chain of the input buffer
  // (moved in, not copied into the last chain), then all are delivered as
  // one read: for filters that must handle data spanning chains.
  void feedChains(const std::vector<std::string>& pieces);
  // For benchmarks: feeds client frame `frame` (whole, header included) the
  // way a socket does in steady state. Each call completes one frame and
  // leaves the next one's first 4 bytes buffered (the first call feeds those
  // too), so libevent reuses the input's chain; feeding whole frames would
  // drain the input to empty, which frees its chain, and every feed would
  // allocate one — the harness's cost, not the filter's. Always pass the
  // same frame.
  void feedSteady(std::string_view frame);
  // Delivers the peer's half-close (end_stream) with whatever input is left;
  // while reading is paused, during the first runFor() after the resume.
  void feedEof();

  // Drains and returns everything the chain wrote toward the client, as if
  // the client read it (the connection then reports dropping under its low
  // watermark, if it was above the high one).
  std::string takeOutput();
  // Bytes written toward the client and not yet taken.
  size_t outputLength() const;
  // Client bytes delivered but not yet consumed by any filter.
  size_t inputLength() const;

  // True once the connection closed (filters' onClose has run).
  bool closed() const { return close_count_ > 0; }
  // Why it closed; kCount until closed.
  CloseReason closeReason() const { return reason_; }
  // The close detail text ("" until closed).
  const std::string& closeDetail() const { return detail_; }
  // How many times the chain reported a close (must never exceed 1).
  int closeCount() const { return close_count_; }
  // When the chain reported the close (steady clock); meaningless until
  // closed().
  std::chrono::steady_clock::time_point closeTime() const { return close_time_; }

  // Runs the event loop for `d` (timers, posted tasks, redelivery after
  // readDisable(false), real sockets of upstream connections).
  void runFor(std::chrono::milliseconds d);
  // Runs the loop until `pred` holds or `timeout` passes (checking about
  // every millisecond). Returns pred().
  bool runUntil(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Runs the loop until the connection closes (the loop stops in the
  // callback that closed it, so closeTime() is exact) or `timeout` passes.
  // Returns closed().
  bool runUntilClosed(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  Dispatcher& dispatcher() { return dispatcher_; }
  // The worker's shared objects, as a real worker gives its factories.
  WorkerServices& services() { return services_; }
  // The chain (valid after start()).
  FilterChain& chain() { return *chain_; }
  Connection& connection() { return chain_->connection(); }
  // Filter `i` of the chain, cast to its concrete type.
  template <class T>
  T& filter(size_t i) {
    return static_cast<T&>(chain_->filter(i));
  }

 private:
  void deliverPendingEof();

  Options options_;
  Dispatcher dispatcher_;
  WorkerServices services_;
  std::vector<std::unique_ptr<BuiltFilter>> built_;
  std::unique_ptr<FilterChain> chain_;
  bool pending_eof_ = false;
  bool steady_started_ = false;  // feedSteady() fed the first frame's head
  bool stop_on_close_ = false;  // runUntilClosed() is running
  CloseReason reason_ = CloseReason::kCount;
  std::string detail_;
  std::chrono::steady_clock::time_point close_time_;
  int close_count_ = 0;
};

// A registered filter type made ready for an EmbeddedChain: its parsed
// config, the clusters it was parsed against, and its per-worker factory.
struct BuiltFilter {
  std::string name;
  FilterTraits traits;
  std::vector<ClusterConfig> clusters;  // referenced by the factory: keep alive
  std::shared_ptr<const FilterConfig> config;
  std::unique_ptr<FilterFactory> factory;
  // {factory, traits}, for EmbeddedChain::start().
  ChainElement element() const { return {factory.get(), traits}; }
};

// Finds the filter registered as `name` (its library must be linked into the
// test), checks `config_json` against its schema, parses it (against
// `clusters`) and builds its factory for `dispatcher` and `services` as
// worker 0 of 1 on `listener`. Returns nullptr with *error set to the first
// error ("/cluster: must be a string ...") on any failure.
std::unique_ptr<BuiltFilter> buildFilter(std::string_view name, std::string_view config_json,
                                         Dispatcher& dispatcher, WorkerServices& services,
                                         const std::vector<ClusterConfig>& clusters = {},
                                         std::string* error = nullptr,
                                         std::string_view listener = "test");

}  // namespace test
}  // namespace gw
