// filters/ip_limiter/message_rate.h — a per-connection frame rate limit.
//
// Defines MessageRateTracker: one token bucket per connection, one token per
// client frame. Two ways to learn of frames:
//   - take(): a frame the chain's codec decoded (ip_limiter observes them
//     with FilterCallbacks::observeFrames(), whatever transport — tls,
//     websocket — wraps them). The caller refuses or closes over the limit.
//   - attach() + scan(), for chains without a codec (tcp_proxy): finds
//     client-frame boundaries in the raw byte stream (8-byte header, u16 payload length first, see core/wire.h) as the
// bytes arrive, without copying payloads — per frame it copies 4 header
// bytes out of the buffer and skips the rest arithmetically — and takes one
// token per frame from a TokenBucket. A frame over the limit either stops
// the connection (action close) or is cut out of the input buffer, now and
// as its remaining bytes arrive (action drop), so the codec never sees it.
//
// It watches the connection's input buffer with an evbuffer callback to
// learn how many bytes each read appended; positions are kept as stream
// offsets, so bytes consumed by later filters (the codec drains whole
// frames) need no bookkeeping. A frame is counted when its first 4 header
// bytes have arrived. "drop" relies on the codec keeping incomplete frames
// buffered (framing does); with a terminal that forwards partial frames
// (tcp_proxy) use "close".
//
// Per connection, one thread; no allocation per frame (a scratch evbuffer
// is created on the first drop that is not at the buffer's start).
#pragma once

#include <cstddef>
#include <cstdint>

#include "filters/ip_limiter/ip_table.h"

struct evbuffer;
struct evbuffer_cb_entry;
struct evbuffer_cb_info;

namespace gw {
namespace ip_limiter {

class MessageRateTracker {
 public:
  enum class Action { kClose, kDrop };

  // Told about each dropped frame (action drop), in stream order.
  class DropSink {
   public:
    virtual ~DropSink() = default;
    virtual void onFrameDropped(uint16_t msg_id) = 0;
  };

  struct Result {
    uint32_t frames = 0;    // frames counted by this scan
    uint32_t dropped = 0;   // of which over the limit and cut out (drop)
    bool exceeded = false;  // a frame over the limit with action close
  };

  MessageRateTracker(RateSpec spec, Action action) : spec_(spec), action_(action) {}
  ~MessageRateTracker();
  MessageRateTracker(const MessageRateTracker&) = delete;
  MessageRateTracker& operator=(const MessageRateTracker&) = delete;

  // Starts counting bytes appended to `input` (call before any arrive).
  // `input` must outlive the tracker or detach() must be called first.
  void attach(evbuffer* input);
  void detach();

  // Scans the bytes appended since the last scan at `now_ns`. With action
  // close, stops at the first frame over the limit (exceeded = true; that
  // frame's bytes stay). With action drop, removes every over-limit frame's
  // bytes that are buffered and reports each to `sink` (may be null).
  Result scan(int64_t now_ns, DropSink* sink);

  // A frame decoded by the codec arrived at `now_ns`: takes its token.
  // Returns false when the connection is over the limit (no token taken).
  bool take(int64_t now_ns) { return bucket_.take(spec_, now_ns); }
  Action action() const { return action_; }

  // Tokens left at `now_ns` (tests).
  int64_t tokens(int64_t now_ns) const { return bucket_.tokens(spec_, now_ns); }

 private:
  static void onChanged(evbuffer* buf, const evbuffer_cb_info* info, void* arg);
  // Copies `n` (<= 4) stream bytes starting at next_hdr_ (from saved_ for
  // bytes already consumed by others, else from the buffer) into `out`.
  void copyHeader(uint64_t front, uint8_t* out, size_t n);
  // Removes `n` bytes at `offset` from the buffer, keeping the rest in order.
  void removeRange(size_t offset, size_t n);

  RateSpec spec_;
  Action action_;
  TokenBucket bucket_;
  evbuffer* input_ = nullptr;
  evbuffer_cb_entry* cb_ = nullptr;
  evbuffer* scratch_ = nullptr;
  uint64_t appended_ = 0;    // bytes appended and not yet scanned
  bool editing_ = false;     // our own removal is in progress: ignore callbacks
  uint64_t end_ = 0;         // stream offset of the buffer's end
  uint64_t next_hdr_ = 0;    // stream offset of the next frame header
  bool dropping_ = false;    // cutting out a frame
  uint64_t drop_from_ = 0;   // its part still to cut starts here...
  uint64_t drop_until_ = 0;  // ...and ends here (exclusive)
  uint8_t saved_[4] = {};    // header bytes seen at the end of the last scan
  uint8_t saved_len_ = 0;
};

}  // namespace ip_limiter
}  // namespace gw
