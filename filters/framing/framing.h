// filters/framing/framing.h — the `framing` filter: the client-frame codec.
//
// Defines FramingConfig (parsed config), FramingStats (every metric of the
// filter, declared in one place), FramingFilter (per connection) and
// FramingFactory (per worker). Registered under the JSON name "framing".
//
// Consumes bytes, produces frames, not terminal (docs/filters/framing.md).
//   read path:  client bytes ──onData──▶ decode 8-byte headers ══passFrame══▶ frames filters
//   write path: frames filters ══onWriteFrame══▶ encode header ──writeBytes──▶ client
// The client frame is `length` u16 | msg_id u16 | server_id u32, little-endian,
// then `length` payload bytes (core/wire.h). Headers are read in place
// (evbuffer_peek) when the first chain holds them, else with
// evbuffer_copyout; the payload never leaves the connection's input buffer
// until a later filter moves it (zero-copy). No heap allocation per frame.
// Per frame the decode makes three libevent calls: a peek at the header, a
// drain of the header, and a length query after the frame was passed on
// (before the first frame of a read, a length query only when the first
// chain does not hold that whole frame). Per read: the counters once, and
// one coarse clock read when a timeout restarts.
//
// Closes the connection, with a reason and a metric, for: a length above
// max_frame_bytes (frame_too_large), EOF in the middle of a frame
// (malformed_frame), no complete frame within first_frame_timeout of the
// connect (first_frame_timeout), a frame started but not completed within
// read_timeout (read_timeout), no complete frame for idle_timeout
// (idle_timeout). A clean EOF between frames closes with remote_closed.
//
// Minimum progress: a frame that spanned reads and took longer than
// slow_frame_time from its first byte to its last is "slow" (counted): it is
// passed on, but does not restart idle_timeout. A connection whose slow frames
// keep it out of the idle list is closed (idle_timeout) at the first slow
// frame completing more than idle_timeout after its last prompt frame.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/sdk/clock.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/registry.h"
#include "core/sdk/stats.h"
#include "core/sdk/timeout_list.h"
#include "core/sdk/wire.h"

namespace gw {
namespace framing {

// Parsed `framing` config. Immutable; shared by every worker.
struct FramingConfig : FilterConfig {
  // Largest accepted `length` field (payload bytes, header excluded), 1..65535.
  size_t max_frame_bytes = 65535;
  // A frame whose first byte arrived must be complete within this. Always > 0.
  std::chrono::milliseconds read_timeout{30 * 1000};
  // No complete frame for this long closes the connection; 0 disables it.
  std::chrono::milliseconds idle_timeout{5 * 60 * 1000};
  // The first frame must be complete within this of the connect; 0 disables
  // it. Takes effect only when shorter than idle_timeout (or idle is off).
  std::chrono::milliseconds first_frame_timeout{5 * 1000};
  // A frame whose bytes took longer than this to arrive (first byte to last)
  // is slow: passed on, but it does not restart idle_timeout. 0 disables it.
  std::chrono::milliseconds slow_frame_time{2 * 1000};

  // {"max_frame_bytes": N, "read_timeout": "30s", "idle_timeout": "5m"}:
  // every field, defaults filled in ("0ms": idle_timeout off).
  void describe(rapidjson::Value& out, JsonAllocator& alloc) const override;
};

// Every metric of the filter, for one listener. The counters belong to the
// process-wide StatsRegistry (sharded per thread), so each worker's factory
// builds its own FramingStats pointing at the same counters.
struct FramingStats {
  explicit FramingStats(const std::string& listener);

  stats::Counter* frames_in;    // game_gateway_frames_total{direction="in"}
  stats::Counter* frames_out;   // game_gateway_frames_total{direction="out"}
  stats::Counter* bytes_in;     // game_gateway_frame_bytes_total{direction="in"}: header+payload
  stats::Counter* bytes_out;    // game_gateway_frame_bytes_total{direction="out"}
  stats::Counter* too_large;    // game_gateway_framing_errors_total{reason="frame_too_large"}
  stats::Counter* malformed;    // ...{reason="malformed_frame"}
  stats::Counter* read_timeout;  // ...{reason="read_timeout"}
  stats::Counter* idle_timeout;  // ...{reason="idle_timeout"}
  stats::Counter* first_frame_timeout;  // ...{reason="first_frame_timeout"}
  stats::Counter* slow_frames;  // game_gateway_framing_slow_frames_total
  // game_gateway_routing_errors_total{error_type="message_too_large"} (the
  // Go gateway's name; process-wide), counted with too_large.
  stats::Counter* routing_too_large;
};

class FramingFactory;

// One per client connection. Per-connection state, all in members (72 bytes
// with the Filter base, the same 80-byte malloc chunk as 64; no allocation
// besides the object itself):
//  - the TimeoutList::Entry base (24 bytes): the connection's place in one of
//    its factory's three per-worker timeout lists. Until the first frame
//    completes (awaiting_first_) it is in the first_frame_timeout list,
//    stamped with the connect (or in the read_timeout list when a started
//    first frame's read deadline comes earlier). Later, while a frame is in
//    progress (partial_) it is in the read_timeout list, stamped with the
//    time the frame's first byte was seen; otherwise, if idle_timeout is on,
//    in the idle_timeout list, stamped with the time of the last complete
//    frame (or of connect); otherwise in none. Reads move it (touch) once per
//    read, not per frame, with the coarse time read once for that read.
//  - partial_: a frame has started arriving and is not yet complete.
//  - was_paused_: the last expiry found reading paused (backpressure);
//    paused time counts toward none of the timeouts.
//  - awaiting_first_: no frame completed yet and the first-frame deadline is on.
//  - slow_frames_: slow frames since the last prompt one (saturates at 255).
//  - active_ticks_: coarse time of the last prompt frame (or connect), in
//    2^20 ns ticks (~1.05 ms), wrapping after ~52 days.
// The decode position needs no state: an incomplete frame stays in the
// connection's input buffer until all of it is there.
class FramingFilter : public Filter, private TimeoutList::Entry {
 public:
  explicit FramingFilter(FramingFactory& factory);

  FilterStatus onNewConnection() override;
  // Decodes every complete frame in `data` and passes each on; returns
  // kStopIteration (bytes never pass the codec).
  FilterStatus onData(evbuffer* data, bool end_stream) override;
  // Encodes the frame's header, then moves its payload toward the client;
  // returns kStopIteration.
  FilterStatus onWriteFrame(Frame& frame) override;
  void onClose(CloseReason reason) override;

 private:
  friend class FramingFactory;
  // Why decode() stopped.
  enum class Stop { kNeedMore, kPaused, kClosed };
  // What decode() did: why it stopped, the frames and bytes (headers
  // included) it passed on, and, for kNeedMore, the bytes left in the buffer
  // (so the caller need not ask libevent again).
  struct Decoded {
    Stop stop = Stop::kNeedMore;
    size_t remaining = 0;
    uint64_t frames = 0;
    uint64_t bytes = 0;
  };
  // Passes on the complete frames at the front of `buf`.
  Decoded decode(evbuffer* buf);
  // The header at the front of `buf` (which holds at least 8 bytes), copied
  // out: for a header that spans chains (rare; off the hot path).
  static wire::ClientHeader copyOutHeader(evbuffer* buf);
  // Closes for a `length` above max_frame_bytes (counted).
  void closeTooLarge(const wire::ClientHeader& h);
  // Closes for an EOF that arrived with `remaining` undecoded bytes.
  void closeAtEof(evbuffer* buf, size_t remaining);
  // "5 of 8 header bytes" / "10 of 100 payload bytes (msg_id 7)" for the
  // incomplete frame at the front of `buf`.
  static std::string describePartial(evbuffer* buf, size_t remaining);
  // Which of the factory's lists expired an entry.
  enum class Which { kRead, kIdle, kFirst };
  // Starts the idle timeout from `now_ns` (or stops all timeouts when
  // idle_timeout is off), and records `now_ns` as the last prompt activity.
  void trackIdle(int64_t now_ns);
  // A read while awaiting the first frame (off the hot path): returns true
  // when the first frame completed (the caller goes on as after any frame),
  // false when the read is fully handled.
  bool onReadAwaitingFirst(uint64_t frames, size_t remaining);
  // The frame in progress completed after more than slow_frame_time: counts
  // it and closes the connection when the last prompt frame is more than
  // idle_timeout old. Returns false when it closed.
  bool onSlowFrame(int64_t now_ns);
  // The entry's list expired it (it is already unlinked).
  void onExpired(Which which, int64_t now_ns);
  // input_, or the connection's input before any data arrived.
  evbuffer* lastInput() { return input_ != nullptr ? input_ : conn_->input(); }

  const FramingConfig& config() const;
  const FramingStats& stats() const;

  FramingFactory& factory_;
  Connection* conn_ = nullptr;  // callbacks().connection(), set in onNewConnection
  // The buffer onData last decoded from: the connection's input, or the
  // buffer of a bytes transformer before this filter (websocket, tls), where
  // a partial frame waits. The timeouts describe the partial frame from it.
  evbuffer* input_ = nullptr;
  bool partial_ = false;
  bool was_paused_ = false;
  bool awaiting_first_ = false;
  uint8_t slow_frames_ = 0;
  uint32_t active_ticks_ = 0;
};

// Coarse ns as the ~1.05 ms ticks of FramingFilter::active_ticks_ (a shift,
// no division on the read path).
inline uint32_t framingTicks(int64_t ns) { return static_cast<uint32_t>(ns >> 20); }

// One per worker per listener: holds the config, the listener's metrics and
// the worker's three timeout lists (read_timeout; idle_timeout when it is on;
// first_frame_timeout when it is on and shorter than idle_timeout), each one
// libevent timer for every connection of this worker and listener.
// Must outlive its filters (a chain keeps its factories alive).
class FramingFactory : public FilterFactory {
 public:
  // Metrics are labelled with worker.listener; the timeout lists run on
  // worker.dispatcher.
  FramingFactory(std::shared_ptr<const FramingConfig> config, WorkerContext& worker);
  std::unique_ptr<Filter> createFilter() override;

  const FramingConfig& config() const { return *config_; }
  const FramingStats& stats() const { return stats_; }
  TimeoutList& readTimeouts() { return read_timeouts_; }
  // nullptr when idle_timeout is 0 (off).
  TimeoutList* idleTimeouts() { return idle_timeouts_ ? &*idle_timeouts_ : nullptr; }
  // nullptr when first_frame_timeout is 0 or not shorter than idle_timeout.
  TimeoutList* firstFrameTimeouts() {
    return first_frame_timeouts_ ? &*first_frame_timeouts_ : nullptr;
  }
  // slow_frame_time in ns; 0 when the rule is off (or idle_timeout is off).
  int64_t slowFrameNs() const { return slow_frame_ns_; }

 private:
  std::shared_ptr<const FramingConfig> config_;
  FramingStats stats_;
  TimeoutList read_timeouts_;
  std::optional<TimeoutList> idle_timeouts_;
  std::optional<TimeoutList> first_frame_timeouts_;
  int64_t slow_frame_ns_ = 0;
};

inline const FramingConfig& FramingFilter::config() const { return factory_.config(); }
inline const FramingStats& FramingFilter::stats() const { return factory_.stats(); }

}  // namespace framing
}  // namespace gw
