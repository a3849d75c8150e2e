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
// then `length` payload bytes (core/wire.h). Headers are read with
// evbuffer_copyout; the payload never leaves the connection's input buffer
// until a later filter moves it (zero-copy). No heap allocation per frame.
//
// Closes the connection, with a reason and a metric, for: a length above
// max_frame_bytes (frame_too_large), EOF in the middle of a frame
// (malformed_frame), a frame started but not completed within read_timeout
// (read_timeout), no complete frame for idle_timeout (idle_timeout). A clean
// EOF between frames closes with remote_closed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/dispatcher.h"
#include "core/registry.h"
#include "core/stats.h"

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
};

class FramingFactory;

// One per client connection. Per-connection state, all in members:
//  - timer_: one timer for both timeouts, created on first need (at connect
//    when idle_timeout is on, else when a read first leaves a frame incomplete);
//    timer_deadline_/timer_armed_ say when it fires. Reads never re-arm it
//    unless a new partial frame needs an earlier deadline; on fire it checks
//    the timestamps below and re-arms for the remainder.
//  - last_frame_: coarse time of the last complete frame (or of connect).
//  - partial_, partial_since_: a frame has started arriving and is not yet
//    complete, and the coarse time its first byte was seen.
//  - was_paused_: the last timer check found reading paused (backpressure);
//    paused time counts toward neither timeout.
// The decode position needs no state: an incomplete frame stays in the
// connection's input buffer until all of it is there.
class FramingFilter : public Filter {
 public:
  FramingFilter(const FramingConfig& config, const FramingStats& stats);

  FilterStatus onNewConnection() override;
  // Decodes every complete frame in `data` and passes each on; returns
  // kStopIteration (bytes never pass the codec).
  FilterStatus onData(evbuffer* data, bool end_stream) override;
  // Encodes the frame's header, then moves its payload toward the client;
  // returns kStopIteration.
  FilterStatus onWriteFrame(Frame& frame) override;
  void onClose(CloseReason reason) override;

 private:
  // Why decode() stopped.
  enum class Stop { kNeedMore, kPaused, kClosed };
  // Passes on the complete frames at the front of `buf`. Adds to *frames and
  // *bytes what it decoded.
  Stop decode(evbuffer* buf, uint64_t* frames, uint64_t* bytes);
  // Closes for an EOF that arrived with `remaining` undecoded bytes.
  void closeAtEof(evbuffer* buf, size_t remaining);
  // "5 of 8 header bytes" / "10 of 100 payload bytes (msg_id 7)" for the
  // incomplete frame at the front of `buf`.
  static std::string describePartial(evbuffer* buf, size_t remaining);
  // Arms the timer to fire by `deadline` unless it already fires no later.
  void armBy(std::chrono::steady_clock::time_point deadline,
             std::chrono::steady_clock::time_point now);
  void onTimer();

  const FramingConfig& config_;
  const FramingStats& stats_;
  Connection* conn_ = nullptr;  // callbacks().connection(), set in onNewConnection
  std::optional<Timer> timer_;
  std::chrono::steady_clock::time_point timer_deadline_;
  std::chrono::steady_clock::time_point last_frame_;
  std::chrono::steady_clock::time_point partial_since_;
  bool timer_armed_ = false;
  bool partial_ = false;
  bool was_paused_ = false;
};

// One per worker per listener: holds the config and the listener's metrics.
class FramingFactory : public FilterFactory {
 public:
  FramingFactory(std::shared_ptr<const FramingConfig> config, const std::string& listener)
      : config_(std::move(config)), stats_(listener) {}
  std::unique_ptr<Filter> createFilter() override;

 private:
  std::shared_ptr<const FramingConfig> config_;
  FramingStats stats_;
};

}  // namespace framing
}  // namespace gw
