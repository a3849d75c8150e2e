// core/sdk/filter.h — the network filter contract.
//
// Defines Filter (per-connection hooks), FilterCallbacks (what a filter may
// do to its connection and chain), FilterTraits (which layer a filter works
// on) and FilterFactory (per-worker: creates one Filter per connection).
// The JSON-facing side — schema, config parsing, registration — is in
// core/sdk/registry.h.
//
// A chain is an ordered list of filters on one client connection. Each works
// on one layer: bytes (before the codec) or frames (after it). The codec
// (`framing`) consumes bytes and produces frames. The last filter is the
// terminal (`upstream` for frames, `tcp_proxy` for bytes).
//
//                       read path (first -> last)
//   socket ──▶ [0 ip_limiter] ──▶ [1 framing] ══▶ [2 session] ══▶ [3 upstream] ──▶ backend
//              onData(bytes)      onData(bytes)   onFrame(frame)  onFrame(frame)
//                                  └ passFrame() ══╝
//   socket ◀── [0 ip_limiter] ◀── [1 framing] ◀══ [2 session] ◀══ [3 upstream] ◀── backend
//              onWriteData        onWriteFrame    onWriteFrame    writeFrame()
//                       write path (last -> first)
//   ──  bytes       ══  frames
//
// Threading and state: a chain lives on one worker thread. A FilterFactory is
// created once per worker per listener from immutable config and owns that
// worker's state (pools, caches) without locks. A Filter object is created
// per connection; its members are per-connection state. State shared across
// workers (IP table, session store, breaker state, metrics) must be an
// explicit thread-safe object held by the parsed config.
//
// Hooks and return values. Every hook has a default that does nothing and
// returns kContinue, so a filter overrides only what it needs.
//
//   onNewConnection()   when: once, after accept, first to last, before any
//                       data. kContinue: the next filter's onNewConnection
//                       runs. kStopIteration: later filters wait (and no data
//                       is delivered) until this filter calls
//                       continueReading().
//   onData(buf, eos)    bytes layer, read path; when: bytes arrived (buf is
//                       the connection's input buffer; consume what you
//                       take) or the peer half-closed (eos). Each arrival
//                       starts again at the first filter. kContinue: the
//                       next filter's onData runs with the same buffer.
//                       kStopIteration: later filters do not see this
//                       arrival (a codec returns it after decoding; a
//                       filter waiting on something returns it and later
//                       calls continueReading()).
//   onFrame(frame)      frames layer, read path; when: the codec passed a
//                       decoded frame. kContinue: the next filter gets the
//                       frame. kStopIteration: this filter took the frame
//                       (forwarded, answered or dropped it; to hold it, move
//                       its payload into your own buffer). A payload nobody
//                       consumed is dropped when iteration ends.
//   onWriteFrame(frame) frames layer, write path (last to first); when: a
//                       filter after this one (or outside code through the
//                       terminal) writes a frame toward the client.
//                       kContinue: the filter before this one gets it.
//                       kStopIteration: this filter took it (the codec
//                       encodes it and writes bytes; another filter may drop
//                       it — answer the client instead of dropping silently).
//   onWriteData(buf,eos) bytes layer, write path; only called for filters
//                       whose traits set observes_writes. kContinue: passes
//                       down toward the socket what buf holds on return (a
//                       transformer rewrites it in place: wraps, encrypts).
//                       kStopIteration: this filter took the bytes (buf must
//                       be left empty or drained; e.g. held until a
//                       handshake completes, or until the end of the loop
//                       turn). eos: once per connection, when another filter
//                       closes it with CloseMode::kFlush or half-closes it
//                       (shutdownWrite), after every onClosing ran: buf
//                       starts empty; the last chance to put out held bytes
//                       and closing bytes (a TLS close_notify) before the
//                       close. Every observing filter but the closer gets
//                       it, last to first, whatever the ones after it
//                       returned.
//   onWritePrefix(write, prefix)
//                       bytes layer, write path; only for filters whose
//                       traits set observes_writes; runs for every write
//                       before onWriteData. For an observer that at most
//                       puts a few bytes in front of a write (a WebSocket
//                       frame header): it writes them to `prefix` (room for
//                       kMaxWritePrefix bytes) and returns how many (0: the
//                       write passes as it is); the chain then writes prefix
//                       and write to the socket's buffer in one append plus
//                       a move of the write's payload chains, without
//                       staging, and onWriteData is not called for this
//                       write. `write` shows the write as this filter would
//                       see it (prefixes of observers after it included);
//                       don't keep it. Returns kNoPrefix (the default) to
//                       get the write staged through onWriteData instead
//                       (transformers: tls; writes held or split).
//   onClosing(reason)   when: the connection is about to close with
//                       CloseMode::kFlush while it is open — a filter (or
//                       outside code through a filter's callbacks: a session
//                       kick, an admin kick) called FilterCallbacks::close.
//                       Runs once per connection, last to first (the layers
//                       nearest the application first, so what a filter
//                       writes still passes through the bytes filters before
//                       it: a WebSocket close frame through tls), before the
//                       close starts; bytes written here (writeBytes,
//                       writeFrame) go out before the socket closes. For a
//                       protocol's goodbye: a WebSocket close frame with a
//                       status code. Not called for kAbort (buffered output
//                       is dropped), after the peer or the socket closed, or
//                       for a second close. A close() from here does
//                       nothing (the close under way goes on, with its
//                       reason, once every onClosing returned). Default:
//                       nothing.
//   onDecodedFrame(frame) bytes layer, before the codec, read path; only
//                       for a filter that called observeFrames() on this
//                       connection; when: the codec passed a decoded frame,
//                       before the frames-layer filters get it (observers
//                       first to last). It sees client frames whatever
//                       transformers (tls, websocket) sit between it and
//                       the codec. kContinue: the frame goes on.
//                       kStopIteration: the frame is refused (nobody after
//                       sees it; its payload is dropped) — answer the client
//                       (writeFrame/sendFrame) or close, never drop silently.
//   onClose(reason)     once, first to last, after the connection closed.
//
// Bytes transformers (TLS, WebSocket): a bytes-layer filter whose output is
// not its input takes the bytes out of `buf` in onData, decodes them into a
// buffer of its own and hands that to the filters after it with
// FilterCallbacks::passData(), then returns kStopIteration. From then on the
// later filters read from (and leave their partial input in) that buffer,
// also when they resume with continueReading(). Because a resume after
// readDisable() starts again at the first filter, a transformer calls
// passData() on every onData while its buffer holds bytes, even when `buf`
// brought nothing new. A transformer may instead decode in place in `buf`
// (the output is never longer than the input: unmasking) and pass `buf`
// itself: the bytes the later filters leave at its front are then already
// decoded, and passedLeft() says how many (the rest was appended since). On
// the write path it sets observes_writes and rewrites the bytes in place in
// onWriteData (`buf` holds exactly the bytes of one write; what it holds on
// kContinue goes on, small amounts copied into the socket's buffer). A
// transformer whose output is a prefix plus its input (WebSocket framing)
// also implements onWritePrefix: the chain then skips staging.
//   onAboveWriteBufferHighWatermark / onBelowWriteBufferLowWatermark:
//                       the client's output buffer crossed a watermark;
//                       terminals use them to pause/resume their upstream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/sdk/close_reason.h"
#include "core/sdk/connection.h"
#include "core/sdk/frame.h"
#include "core/sdk/slots.h"

struct evbuffer;

namespace gw {

enum class FilterStatus {
  kContinue,       // pass on to the next filter
  kStopIteration,  // stop here (see the hook's comment for what it means)
};

enum class Layer { kBytes, kFrames };

// How far a client connection got, as its chain sees it
// (FilterCallbacks::stage()). Per connection; only ever moves forward.
enum class ConnectionStage : uint8_t {
  kNoCodec,             // the chain has no codec: whether a frame completed is never known
  kAwaitingFirstFrame,  // the codec has not passed a complete frame yet
  kEstablished,         // the codec passed at least one complete frame (passFrame)
};

// Which layer a filter consumes and produces, and whether it ends the chain.
struct FilterTraits {
  Layer consumes = Layer::kBytes;
  Layer produces = Layer::kBytes;  // ignored for a terminal
  bool terminal = false;
  // Bytes layer: call onWriteData for bytes written below the codec. Off by
  // default so the codec can encode straight into the socket's buffer.
  bool observes_writes = false;

  // The usual shapes:
  // A bytes-layer filter before the codec (ip_limiter).
  static constexpr FilterTraits bytes() { return {Layer::kBytes, Layer::kBytes, false, false}; }
  // The codec: bytes in, frames out (framing).
  static constexpr FilterTraits codec() { return {Layer::kBytes, Layer::kFrames, false, false}; }
  // A frames-layer filter after the codec (session, breaker).
  static constexpr FilterTraits frames() { return {Layer::kFrames, Layer::kFrames, false, false}; }
  // A terminal on the bytes layer (tcp_proxy).
  static constexpr FilterTraits bytesTerminal() { return {Layer::kBytes, Layer::kBytes, true, false}; }
  // A terminal on the frames layer (upstream).
  static constexpr FilterTraits framesTerminal() {
    return {Layer::kFrames, Layer::kFrames, true, false};
  }
};

class Dispatcher;

// One write toward the client as Filter::onWritePrefix sees it: the
// `head_len` contiguous bytes at `head`, then the first `tail_len` bytes of
// `tail` (null when tail_len is 0). Valid during the call only.
struct WriteView {
  const uint8_t* head = nullptr;
  size_t head_len = 0;
  evbuffer* tail = nullptr;
  size_t tail_len = 0;

  size_t length() const { return head_len + tail_len; }
  // Copies the write's first `n` bytes (n <= length()) to `out`.
  void copyFront(uint8_t* out, size_t n) const;
};

// What a filter can do to its connection and chain. One per filter per
// connection; valid until onClose returns.
class FilterCallbacks {
 public:
  virtual ~FilterCallbacks() = default;

  virtual Connection& connection() = 0;
  virtual Dispatcher& dispatcher() = 0;
  // Per-connection slots shared between filters.
  virtual Slots& slots() = 0;
  // Whether the connection completed its first frame: kEstablished once the
  // chain's codec called passFrame(); kNoCodec for a chain without a codec.
  // Lets a filter before the codec (ip_limiter) tell a player from a silent
  // socket without knowing which codec runs.
  virtual ConnectionStage stage() const = 0;

  // Resumes the read path after this filter returned kStopIteration from
  // onNewConnection or onData: the filters after this one run with the
  // buffered input.
  virtual void continueReading() = 0;

  // Bytes transformer only (see the banner): runs the bytes-layer filters
  // after this one on `data` (this filter's own buffer, which must live as
  // long as the filter) instead of the connection's input. What they leave
  // in `data` stays there for the next passData() or continueReading().
  virtual void passData(evbuffer* data, bool end_stream) = 0;
  // Bytes transformer only: the bytes the filters after this one left in the
  // buffer this filter last passed, counted when they last returned (from
  // passData() or from a continueReading() of theirs); 0 before the first
  // passData(). Only they consume from that buffer (from its front), so a
  // transformer that passes the buffer it reads from (decoding in place)
  // knows that its first passedLeft() bytes are decoded and the rest arrived
  // since. Passing the connection's input itself (with no transformer before
  // this one holding a passed buffer) is the cheap hand-off: the chain then
  // keeps this count in a field of its own, with no lookup per call.
  virtual size_t passedLeft() const = 0;

  // Codec only: hands a decoded frame to the frames-layer filters after this
  // one. The payload must be the first frame.payloadLength() bytes of
  // frame.source(). If nobody consumed it when this returns, it is dropped.
  virtual void passFrame(Frame& frame) = 0;

  // Sends a frame toward the client through the filters before this one.
  // The payload is consumed (moved) by the codec. From a bytes-layer filter
  // before the codec, the frame goes to the codec (and the frames-layer
  // filters between are skipped): it is encoded and written through the
  // bytes filters below the codec, so a transformer there (websocket, tls)
  // wraps it. Without a codec in the chain the frame is dropped.
  virtual void writeFrame(Frame& frame) = 0;
  // Convenience: builds a frame with this payload and writes it.
  virtual void sendFrame(uint16_t msg_id, uint32_t server_id, std::string_view payload) = 0;

  // Bytes toward the client through the bytes-layer filters before this one:
  // moves the first `len` bytes of `src` (or copies `data`). Each call is
  // one write for the observing filters (onWritePrefix / onWriteData).
  virtual void writeBytes(evbuffer* src, size_t len) = 0;
  virtual void writeBytes(const void* data, size_t len) = 0;
  // One write of `head` (copied) followed by the first `len` bytes of `src`
  // (moved): a codec's frame header and payload reach the observing filters
  // as one write (one WebSocket message, one TLS record).
  virtual void writeBytes(const void* head, size_t head_len, evbuffer* src, size_t len) = 0;
  // Half-closes the client (FIN after buffered output).
  virtual void shutdownWrite() = 0;

  // Bytes layer, before the codec: from now on this filter's
  // onDecodedFrame() runs for every frame the codec decodes on this
  // connection (per connection; cannot be undone). Lets a filter that must
  // sit first (ip_limiter) count or refuse client frames whatever transport
  // wraps them, without knowing which codec or transformers run. Returns
  // false (and changes nothing) if the chain has no codec after this
  // filter: then there are no frames to observe.
  virtual bool observeFrames() = 0;

  // Pauses/resumes reading from the client (counted). On resume, bytes
  // already buffered are delivered again from the first filter.
  virtual void readDisable(bool disable) = 0;
  // True while reading is paused (a codec stops decoding then).
  virtual bool readDisabled() const = 0;

  // Closes the client connection with a reason (logged, counted). With
  // kFlush on an open connection, the filters' onClosing runs first (last
  // to first) and what they write is flushed before the socket closes.
  virtual void close(CloseReason reason, std::string_view detail,
                     Connection::CloseMode mode = Connection::CloseMode::kFlush) = 0;
};

// Per-connection filter object. See the banner for each hook's contract.
class Filter {
 public:
  virtual ~Filter() = default;

  virtual FilterStatus onNewConnection() { return FilterStatus::kContinue; }
  virtual FilterStatus onData(evbuffer* /*data*/, bool /*end_stream*/) {
    return FilterStatus::kContinue;
  }
  virtual FilterStatus onFrame(Frame& /*frame*/) { return FilterStatus::kContinue; }
  virtual FilterStatus onWriteFrame(Frame& /*frame*/) { return FilterStatus::kContinue; }
  virtual FilterStatus onWriteData(evbuffer* /*data*/, bool /*end_stream*/) {
    return FilterStatus::kContinue;
  }
  // onWritePrefix's "no prefix: stage this write through onWriteData".
  static constexpr size_t kNoPrefix = static_cast<size_t>(-1);
  // Most bytes one onWritePrefix may return.
  static constexpr size_t kMaxWritePrefix = 16;
  virtual size_t onWritePrefix(const WriteView& /*write*/, uint8_t* /*prefix*/) {
    return kNoPrefix;
  }
  virtual void onClosing(CloseReason /*reason*/) {}
  virtual FilterStatus onDecodedFrame(Frame& /*frame*/) { return FilterStatus::kContinue; }
  virtual void onClose(CloseReason /*reason*/) {}
  virtual void onAboveWriteBufferHighWatermark() {}
  virtual void onBelowWriteBufferLowWatermark() {}

  // Set by the chain before any hook runs.
  void setCallbacks(FilterCallbacks& cb) { callbacks_ = &cb; }

 protected:
  FilterCallbacks& callbacks() { return *callbacks_; }

 private:
  FilterCallbacks* callbacks_ = nullptr;
};

// Built once per worker (per listener) from validated config; owns the
// worker's state for this filter; creates one Filter per connection. Used
// only on its worker's thread.
class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  virtual std::unique_ptr<Filter> createFilter() = 0;
};

}  // namespace gw
