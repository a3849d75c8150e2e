// core/sdk/filter_chain.h — runs one connection's filters (see core/sdk/filter.h).
//
// Defines FilterChain: owns a client Connection and its Filter objects,
// drives the read path first-to-last and the write path last-to-first,
// holds the connection's Slots, enforces the output bound (a slow reader is
// disconnected with reason output_overflow), and reports the close to its
// owner. Per connection, on one worker thread.
//
// Memory per chain (an idle connection pays for all of it): the object (160
// bytes), one allocation holding every filter's Entry, the filters
// themselves and the Connection. The write-path buffers (staging for
// observing bytes filters, scratch for sendFrame()) and the record of bytes
// transformers' buffers (passData()) are allocated only when first used (a
// transformer that passes the connection's input itself needs none).
// A write through observing filters that all implement onWritePrefix (a
// WebSocket filter that is open or passing through) is not staged: the
// prefixes and the write's head are appended to the output in one call and
// its payload chains moved. Staging keeps one chain for good (it holds the last byte of the previous
// small write as a pad, dropped before the next write's observers run), so
// writes through observing filters allocate nothing in steady state. The worker's constructor keeps no copies: the output limits
// are its chain set's, and the close callback is a function pointer and a
// context pointer; the convenience constructor (tests, tools) makes one
// more allocation holding its limits and std::function.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/connection.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/filter.h"

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
  // The same, as a plain function with the context pointer given to the
  // constructor.
  using ClosedFn = void (*)(void* context, FilterChain&, CloseReason, std::string_view detail);

  // Most filters one chain can hold.
  static constexpr size_t kMaxFilters = 65535;
  // Writes through observing bytes filters up to this size are staged and
  // then copied into the output's last chain; larger ones move as chains.
  static constexpr size_t kCopyMax = 2048;
  // Writes whose contiguous part (`head`) is at most this long try the
  // observers' onWritePrefix (in a stack buffer); longer ones are staged.
  static constexpr size_t kMaxGatherHead = 128;
  // Room for the prefixes of observers in front of one write (on the stack).
  static constexpr size_t kPrefixRoom = 4 * Filter::kMaxWritePrefix;

  // Creates one filter per element (throws std::length_error past
  // kMaxFilters). Call start() to begin. `*limits` must outlive the chain
  // (the worker's chain set holds them); `on_closed` (may be null) gets
  // `context`.
  FilterChain(std::unique_ptr<Connection> conn, const std::vector<ChainElement>& elements,
              const OutputLimits* limits, ClosedFn on_closed, void* context);
  // The same with limits copied and any callable (one more allocation).
  FilterChain(std::unique_ptr<Connection> conn, const std::vector<ChainElement>& elements,
              OutputLimits limits, ClosedCallback on_closed);
  ~FilterChain() override;

  // Runs onNewConnection on the filters and starts reading.
  void start();

  Connection& connection() { return *conn_; }
  Slots& slots() { return slots_; }
  size_t size() const { return count_; }
  Filter& filter(size_t i);
  // Frames the codec decoded from the client (passFrame) and frames it took
  // to encode toward the client; 0 on a chain without a codec. For the
  // access log.
  uint64_t framesIn() const { return frames_in_; }
  // How far the connection got (FilterCallbacks::stage()).
  ConnectionStage stage() const {
    if (!has_codec_) return ConnectionStage::kNoCodec;
    return frames_in_ > 0 ? ConnectionStage::kEstablished : ConnectionStage::kAwaitingFirstFrame;
  }
  uint64_t framesOut() const { return frames_out_; }

  // Closes the client connection as FilterCallbacks::close() does (the
  // filters' close, and the owner's: the worker's at stop): for kFlush on an
  // open connection, runs the filters' onClosing once (last to first), then
  // ends the write stream (every observing bytes filter's onWriteData with
  // end_stream: held bytes and a TLS close_notify go out), then closes the
  // connection, which writes what is buffered, bounded by
  // Connection::kFlushTimeoutMs; kAbort drops it (also ending a flushing
  // close under way). The close callback runs once, when the socket closes.
  void close(CloseReason reason, std::string_view detail, Connection::CloseMode mode);

  // Delivers bytes already appended to connection().input() as if they were
  // read from the socket (used by tests and by the chain itself on resume).
  void deliverInput(bool end_stream) { onRead(*conn_, end_stream); }

 private:
  class Entry;
  friend class Entry;
  struct Owned;  // the convenience constructor's copies of limits and callback
  FilterChain(std::unique_ptr<Connection> conn, const std::vector<ChainElement>& elements,
              std::unique_ptr<Owned> owned);

  void onRead(Connection& conn, bool end_stream) override;
  void onClose(Connection& conn, CloseReason reason, std::string_view detail) override;
  void onAboveHighWatermark(Connection& conn) override;
  void onBelowLowWatermark(Connection& conn) override;

  void runNewConnection(size_t from);
  // Runs the bytes-layer filters from `from` on `src`, or, when null, on the
  // buffer the filters there read from (inputFor()).
  void runData(size_t from, bool end_stream, evbuffer* src = nullptr);
  // runData's loop: the bytes-layer filters from `from` on `src`.
  void runFilters(size_t from, bool end_stream, evbuffer* src);
  // The buffer filter `index` reads from: the one the nearest transformer
  // before it passed (passData()), else the connection's input.
  evbuffer* inputFor(size_t index);
  // FilterCallbacks::passData() of filter `transformer`. When `data` is the
  // connection's input and no transformer before it passed a buffer, only
  // input_passer_ / input_left_ record the pass (no lookup in Extra).
  void passData(size_t transformer, evbuffer* data, bool end_stream);
  // The index in Extra::sources of the record of `transformer`, inserted
  // (in order, buffer null) if it has none.
  size_t sourceRecord(size_t transformer);
  // Records what the filters after input_passer_ left in the connection's
  // input: in input_left_, or, past its range, in a record in Extra.
  void noteInputLeft(size_t left);
  // Records what the filters from `from` on left in `src`, when `src` is the
  // buffer the transformer before them passed (FilterCallbacks::passedLeft()).
  void noteLeft(size_t from, evbuffer* src);
  size_t passedLeft(size_t transformer) const;

  void runFrame(size_t from, Frame& frame);
  // The codec after bytes filter `index` (the first filter after it that
  // turns bytes into frames), or count_ if there is none.
  size_t codecAfter(size_t index) const;
  // Where a frame written by filter `index` starts down the write path: the
  // filter itself, or, for a bytes filter before the codec, just after the
  // codec (FilterCallbacks::writeFrame()).
  size_t writeFrameStart(size_t index) const;
  // Runs onDecodedFrame of the filters before `codec` that observe frames.
  // Returns false if one refused the frame or the connection closed.
  bool runFrameObservers(size_t codec, Frame& frame);
  void runWriteFrame(size_t below, Frame& frame);
  // One write from the filter at `below` toward the client: `head` (copied)
  // then the first `len` bytes of `src` (moved). Straight to the output when
  // no observing filter is before it, or when every one returns a prefix
  // (onWritePrefix); else staged through onWriteData (runObservers).
  void runWrite(size_t below, const uint8_t* head, size_t head_len, evbuffer* src, size_t len);
  // Appends the first `len` bytes of `src` to staging (copied when small).
  void stageFrom(evbuffer* src, size_t len);
  // Runs onWriteData of the observing filters before `below` on staging
  // (one write), then moves or copies what is left to the output.
  void runObservers(size_t below, evbuffer* staging);
  // FilterCallbacks::close() of filter `closer` (count_: the owner's close):
  // for a kFlush close of an open connection runs the filters' onClosing
  // (once), then endWrites(closer), then closes the connection.
  void close(size_t closer, CloseReason reason, std::string_view detail,
             Connection::CloseMode mode);
  void checkOutputBound();
  // The end of the write stream (a kFlush close or a half-close asked for by
  // filter `closer`): once per connection, runs onWriteData(buf, true) on
  // every observing bytes filter but the closer, last to first, with `buf`
  // empty at the start, so a transformer can put out what it holds and its
  // own closing bytes (a TLS close_notify) — also when the closer sits
  // before it (ip_limiter closing a TLS client after its error frame); what
  // buf holds then goes to the socket ahead of the close.
  void endWrites(size_t closer);
  bool closed() const { return conn_->state() == Connection::State::kClosed; }
  void destroyEntries();
  // The lazily created parts (most connections never need them), kept until
  // the chain is destroyed.
  struct Extra;
  Extra& extra();
  evbuffer* staging();
  evbuffer* scratch();

  std::unique_ptr<Connection> conn_;
  // One contiguous allocation of count_ entries, built in place: they never
  // move (each is its filter's FilterCallbacks).
  Entry* entries_ = nullptr;
  uint16_t count_ = 0;    // at most kMaxFilters
  uint16_t started_ = 0;  // filters whose onNewConnection has returned kContinue
  bool pending_eos_ = false;
  bool owns_context_ = false;  // context_ is an Owned (deleted with the chain)
  bool has_codec_ = false;     // a filter consumes bytes and produces frames
  // Whether the filters' onClosing ran (FilterChain::close()).
  enum class Closing : uint8_t { kNo, kRunning, kDone };
  Closing closing_ = Closing::kNo;
  bool frame_observers_ = false;  // a filter called observeFrames(): runFrame asks them
  bool writes_ended_ = false;  // endWrites() ran
  // The transformer whose last passData() passed the connection's input
  // itself (decoding in place), with no transformer before it holding a
  // passed buffer, or kNoPasser; input_left_ is then what the filters after
  // it left in the input (passedLeft()). The common WebSocket read path
  // hands off through these two fields, kept in the padding here.
  static constexpr uint16_t kNoPasser = 0xffff;  // past the last index (kMaxFilters - 1)
  uint16_t input_passer_ = kNoPasser;
  uint32_t input_left_ = 0;
  Slots slots_;
  const OutputLimits* limits_;
  ClosedFn on_closed_;
  void* context_;
  std::unique_ptr<Extra> extra_;  // staging, scratch, transformers' buffers (lazy)
  uint64_t frames_in_ = 0;
  uint64_t frames_out_ = 0;
};

}  // namespace gw
