// filters/detect/detect.h — the `detect` filter: TCP, TLS, WebSocket and HTTP on one port.
//
// Defines DetectConfig (parsed config), DetectStats (every metric of the
// filter, declared in one place), DetectFilter (per connection) and
// DetectFactory (per worker). Registered under the JSON name "detect".
// docs/filters/detect.md and docs/transports.md.
//
// Bytes layer, not a transformer: it reads the connection's first bytes in
// place and never consumes them. Chain: ip_limiter → detect → tls →
// websocket → framing → ...
//
//   onNewConnection  publishes the connection's TransportInfo
//                    (core/sdk/transport.h, a member of this filter) in the
//                    Slots, undecided, and starts the deadline (`timeout`).
//                    Returns kContinue: later filters start as usual.
//   onData           until decided: classifies the buffered first bytes
//                    (classify.h, at most max_bytes of them); undecided →
//                    kStopIteration (the bytes stay buffered; the next read
//                    brings them again). Decided → sets TransportInfo and
//                    returns kContinue: tls / websocket / framing see the
//                    same bytes. Plain HTTP → writes 426 Upgrade Required
//                    (Upgrade: websocket, Connection: close) and closes.
//                    After the decision: kContinue, nothing else.
//   deadline         (per-worker TimeoutList) decides on what is buffered
//                    (too few bytes → raw TCP) and resumes the chain with
//                    continueReading().
//   onClose          counts the connection under its final transport
//                    (tcp, ws, tls, wss: websocket may have upgraded a TLS
//                    connection; http for the 426 answers).
//
// Per-connection state: the TransportInfo (3 bytes), the timeout entry, the
// input buffer pointer. Per worker: the deadline list (one libevent timer).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "core/sdk/registry.h"
#include "core/sdk/stats.h"
#include "core/sdk/timeout_list.h"
#include "core/sdk/transport.h"
#include "filters/detect/classify.h"

namespace gw {
namespace detect {

// Parsed `detect` config. Immutable; shared by every worker.
struct DetectConfig : FilterConfig {
  // How long to wait for bytes that decide; then raw TCP. 1ms..1m.
  std::chrono::milliseconds timeout{2000};
  // Most bytes looked at: an HTTP head not ended by then is decided on the
  // fields seen. 16..65536.
  size_t max_bytes = 8192;
  // The listener terminates TLS: ClientHellos are TLS. Off: they are raw
  // client frames (payload length 790). Set from the chain (a `tls` filter
  // after detect); the config key `tls`, now optional, must agree with it.
  bool tls = false;

  void describe(rapidjson::Value& out, JsonAllocator& alloc) const override;
};

// Every metric of the filter, for one listener (process-wide counters,
// sharded per thread; each worker's factory holds pointers to them).
struct DetectStats {
  explicit DetectStats(const std::string& listener);

  // game_gateway_connections_by_transport_total{transport=tcp|ws|tls|wss|http},
  // counted at close under the final transport.
  stats::Counter* by_transport[5];
  // game_gateway_detect_decisions_total{by="bytes"|"deadline"|"max_bytes"|"eof"}
  stats::Counter* by_bytes;
  stats::Counter* by_deadline;
  stats::Counter* by_max_bytes;
  stats::Counter* by_eof;
  // game_gateway_detect_http_refused_total: plain HTTP answered 426.
  stats::Counter* http_refused;
  // game_gateway_detect_tls_lookalikes_total{taken_as="tls"|"tcp"}: openings
  // starting 16 03 (a TLS record, or a raw frame of payload length 790).
  stats::Counter* lookalike_tls;
  stats::Counter* lookalike_tcp;
};

class DetectFactory;

// One per client connection.
class DetectFilter : public Filter, private TimeoutList::Entry {
 public:
  explicit DetectFilter(DetectFactory& factory);

  FilterStatus onNewConnection() override;
  FilterStatus onData(evbuffer* data, bool end_stream) override;
  void onClose(CloseReason reason) override;

  const TransportInfo& transport() const { return info_; }

 private:
  friend class DetectFactory;
  // Applies `c` (decided); returns false when the connection was closed
  // (plain HTTP).
  bool decide(const Classification& c, stats::Counter* how);
  // The deadline passed (entry already unlinked).
  void onDeadline();

  DetectFactory& factory_;
  evbuffer* input_ = nullptr;  // the buffer onData last saw (the connection's input)
  TransportInfo info_;
  bool http_ = false;  // answered 426
};

// One per worker per listener: the config, the metrics and the deadline list.
class DetectFactory : public FilterFactory {
 public:
  DetectFactory(std::shared_ptr<const DetectConfig> config, WorkerContext& worker);
  std::unique_ptr<Filter> createFilter() override;

  const DetectConfig& config() const { return *config_; }
  const DetectStats& stats() const { return stats_; }
  TimeoutList& deadlines() { return deadlines_; }

 private:
  std::shared_ptr<const DetectConfig> config_;
  DetectStats stats_;
  TimeoutList deadlines_;
};

// The 426 answer to a plain HTTP request.
inline constexpr std::string_view kUpgradeRequired =
    "HTTP/1.1 426 Upgrade Required\r\n"
    "Upgrade: websocket\r\n"
    "Connection: close\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 46\r\n"
    "\r\n"
    "This port speaks WebSocket or raw TCP frames.\n";

}  // namespace detect
}  // namespace gw
