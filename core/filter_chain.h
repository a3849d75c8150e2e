// core/filter_chain.h — runs one connection's filters (see core/filter.h).
//
// Defines FilterChain: owns a client Connection and its Filter objects,
// drives the read path first-to-last and the write path last-to-first,
// holds the connection's Slots, enforces the output bound (a slow reader is
// disconnected with reason output_overflow), and reports the close to its
// owner. Per connection, on one worker thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/connection.h"
#include "core/dispatcher.h"
#include "core/filter.h"

namespace gw {

// One position in a chain: the worker's factory for it and its traits.
struct ChainElement {
  FilterFactory* factory = nullptr;
  FilterTraits traits;
};

// Output limits of a client connection.
struct OutputLimits {
  size_t high_watermark = 64 * 1024;   // above: onAboveWriteBufferHighWatermark
  size_t low_watermark = 16 * 1024;    // under again: onBelowWriteBufferLowWatermark
  size_t max_bytes = 4 * 1024 * 1024;  // above: close with kOutputOverflow
};

class FilterChain : public DeferredDeletable, private ConnectionCallbacks {
 public:
  // Called once when the client connection closed (after filters' onClose).
  using ClosedCallback =
      std::function<void(FilterChain&, CloseReason, std::string_view detail)>;

  // Creates one filter per element. Call start() to begin.
  FilterChain(std::unique_ptr<Connection> conn, const std::vector<ChainElement>& elements,
              OutputLimits limits, ClosedCallback on_closed);
  ~FilterChain() override;

  // Runs onNewConnection on the filters and starts reading.
  void start();

  Connection& connection() { return *conn_; }
  Slots& slots() { return slots_; }
  size_t size() const { return entries_.size(); }
  Filter& filter(size_t i);
  // Frames the codec decoded from the client (passFrame) and frames it took
  // to encode toward the client; 0 on a chain without a codec. For the
  // access log.
  uint64_t framesIn() const { return frames_in_; }
  uint64_t framesOut() const { return frames_out_; }

  // Delivers bytes already appended to connection().input() as if they were
  // read from the socket (used by tests and by the chain itself on resume).
  void deliverInput(bool end_stream) { onRead(*conn_, end_stream); }

 private:
  class Entry;
  friend class Entry;

  void onRead(Connection& conn, bool end_stream) override;
  void onClose(Connection& conn, CloseReason reason, std::string_view detail) override;
  void onAboveHighWatermark(Connection& conn) override;
  void onBelowLowWatermark(Connection& conn) override;

  void runNewConnection(size_t from);
  void runData(size_t from, bool end_stream);
  void runFrame(size_t from, Frame& frame);
  void runWriteFrame(size_t below, Frame& frame);
  void runWriteBytes(size_t below, evbuffer* src, size_t len);
  void checkOutputBound();
  bool closed() const { return conn_->state() == Connection::State::kClosed; }

  std::unique_ptr<Connection> conn_;
  std::vector<std::unique_ptr<Entry>> entries_;
  Slots slots_;
  OutputLimits limits_;
  ClosedCallback on_closed_;
  evbuffer* staging_;  // bytes passing through observing write filters
  evbuffer* scratch_;  // payloads of frames built by sendFrame()
  uint64_t frames_in_ = 0;
  uint64_t frames_out_ = 0;
  size_t started_ = 0;  // filters whose onNewConnection has returned kContinue
  bool pending_eos_ = false;
};

}  // namespace gw
