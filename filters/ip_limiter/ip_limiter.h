// filters/ip_limiter/ip_limiter.h — the `ip_limiter` filter: the gateway's
// first line of defence.
//
// Bytes layer, not terminal, meant to be first in the chain:
//   - on connect: per client IP (IPv4/IPv6: per prefix; IPv6 also per
//     network, ipv6_network_prefix_length) at most
//     max_connections_per_ip concurrent connections and a new-connection
//     token bucket (connection_rate_limit/s, connection_burst); a global
//     max_connections across all workers and listeners; trusted_cidrs are
//     exempt from the per-IP checks. A refused connection is closed at once
//     (reason rate_limited, abort) before anything is read;
//   - optionally a per-connection frame rate (message_rate_limit): over it,
//     close the connection or drop the frame and answer with an error frame
//     (core/error_frame.h, code rate_limited). With a codec in the chain it
//     counts the frames the codec decodes (FilterCallbacks::observeFrames(),
//     so tls and websocket in between are seen through); without one
//     (tcp_proxy) it finds client frames in the raw bytes it reads;
//   - optionally the PROXY protocol (v1/v2) from trusted load balancers, so
//     the limits apply to the real client address;
//   - at max_connections (`"at_max_connections": "shed"`, the default), a
//     new connection sheds the worker's oldest connection that has not
//     completed a first frame (FilterCallbacks::stage()): that one gets an
//     error frame (code overloaded) and is closed, the new one is admitted.
// Shared state (IpLimiter: the IP table and the global count) lives in the
// parsed IpLimiterConfig, shared by every worker's factory. See
// docs/filters/ip_limiter.md for config, metrics and the eviction rule.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <string>

#include "core/sdk/clock.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/error_frame.h"
#include "core/sdk/registry.h"
#include "core/sdk/stats.h"
#include "filters/ip_limiter/cidr.h"
#include "filters/ip_limiter/limiter.h"
#include "filters/ip_limiter/message_rate.h"
#include "filters/ip_limiter/shed_list.h"

namespace gw {
namespace ip_limiter {

// Every metric of the filter, per listener, declared in one place.
struct IpLimiterStats {
  explicit IpLimiterStats(const std::string& listener);
  // game_gateway_rate_limit_rejected_total{listener, reason}
  stats::Counter& rejected(RejectReason r) { return *rejected_[static_cast<size_t>(r)]; }
  // game_gateway_connection_rejected_total{listener, reason} (the Go
  // gateway's name): connections refused, by the same reasons (not
  // message_rate, which refuses frames). For a reason without one: rejected().
  stats::Counter& connectionRejected(RejectReason r) {
    return *connection_rejected_[static_cast<size_t>(r)];
  }
  // game_gateway_ip_table_entries{listener}
  stats::Gauge* table_entries;
  // game_gateway_ip_table_evictions_total{listener} (either table)
  stats::Counter* evictions;
  // game_gateway_ip_network_table_entries{listener}
  stats::Gauge* network_table_entries;
  // game_gateway_proxy_protocol_errors_total{listener}
  stats::Counter* proxy_errors;
  // game_gateway_ip_limiter_shed_total{listener}: this listener's
  // connections shed at max_connections
  stats::Counter* shed;

 private:
  std::array<stats::Counter*, kRejectReasonCount> rejected_{};
  std::array<stats::Counter*, kRejectReasonCount> connection_rejected_{};
};

struct IpLimiterConfig : FilterConfig {
  uint32_t max_connections_per_ip = 10;
  double connection_rate_limit = 5;  // per second; 0 = no rate limit
  uint32_t connection_burst = 10;
  int64_t max_connections = 1000;
  double message_rate_limit = 0;  // frames per second per connection; 0 = off
  uint32_t message_burst = 0;     // 0 in JSON or absent: max(1, ceil(rate))
  MessageRateTracker::Action message_rate_action = MessageRateTracker::Action::kClose;
  int ipv6_prefix_length = 64;
  int ipv4_prefix_length = 32;
  // IPv6 networks (this prefix; 0: off) have their own limits too.
  int ipv6_network_prefix_length = 48;
  uint32_t max_connections_per_network = 100;
  double network_connection_rate_limit = 20;  // per second; 0 = no rate limit
  uint32_t network_connection_burst = 50;
  // What a new connection does at max_connections: shed the worker's oldest
  // connection without a complete first frame (and be admitted), or be refused.
  enum class AtMaxConnections { kShed, kRefuse } at_max_connections = AtMaxConnections::kShed;
  CidrSet trusted_cidrs;
  size_t max_tracked_ips = 100000;
  std::chrono::milliseconds entry_ttl{5 * 60 * 1000};
  size_t shards = 16;
  struct ProxyProtocol {
    bool enabled = false;
    CidrSet trusted_sources;
    std::chrono::milliseconds header_timeout{5000};
  } proxy_protocol;

  // Derived at parse time.
  RateSpec message_rate;
  std::string listener;
  std::shared_ptr<IpLimiterStats> stats;
  // The shared, thread-safe admission state (IP table + global count).
  // parseConfig() reuses the listener's live limiter when the settings are
  // unchanged, so a reload keeps the table and its counts.
  std::shared_ptr<IpLimiter> limiter;
  // The clock (nanoseconds); tests substitute a fake one before building
  // factories.
  int64_t (*clock)() = &coarseNowNs;
  // How often each worker sweeps its share of the table's shards.
  std::chrono::milliseconds sweepInterval() const;

  // Every setting in force, defaults filled in (message_burst as derived;
  // durations as "5m"; CIDR lists as "10.0.0.0/8" strings). No runtime state.
  void describe(rapidjson::Value& out, JsonAllocator& alloc) const override;
};

// Parses a schema-valid `config` object (errors go to ctx with their JSON
// pointer) and finds or builds the shared IpLimiter of ctx.listener(): the
// live one if its settings are the same, else a new one. Returns nullptr on
// error.
std::shared_ptr<IpLimiterConfig> parseConfig(const rapidjson::Value& json, ParseContext& ctx);

// The error frame the filter answers with (rate_limited for a dropped
// frame, overloaded when shed): client header (msg_id kErrorMsgId,
// server_id 0) + errorFramePayload(code, refused msg_id). Writes at most kMaxErrorFrameBytes into `out`; returns the size.
inline constexpr size_t kMaxErrorFrameBytes = 8 + 4 + 32;
size_t encodeErrorFrame(ErrorCode code, uint16_t refused_msg_id, uint8_t* out);

class IpLimiterFactory;

class IpLimiterFilter : public Filter,
                        private MessageRateTracker::DropSink,
                        private ShedList::Node {
 public:
  // `factory`: the worker's factory (config, dispatcher, the worker's share
  // of the global count); it outlives the filter.
  explicit IpLimiterFilter(IpLimiterFactory& factory);
  ~IpLimiterFilter() override;

  FilterStatus onNewConnection() override;
  FilterStatus onData(evbuffer* data, bool end_stream) override;
  // message_rate_limit with a codec: one token per decoded frame; over the
  // limit closes the connection or refuses the frame with an error frame.
  FilterStatus onDecodedFrame(Frame& frame) override;
  void onClose(CloseReason reason) override;

  // True once the connection was admitted (counted in the limits).
  bool admitted() const { return admitted_; }
  // The address the limits applied to ("" before admission).
  std::string clientAddress() const;

  // Sheds the oldest connection of `list` (a worker's) that is still open
  // and awaiting its first frame: it gets error frame code 8 (overloaded),
  // its place in the limits is given back at once, and it is closed (flush,
  // reason overloaded). Nodes passed over (established, no codec in their
  // chain, closing) leave the list for good: a stage never goes back.
  // Returns false when no connection of the worker can be shed.
  static bool shedOldest(ShedList& list);

 private:
  // Admits `addr` or closes the connection. Returns true if admitted.
  bool admit(const IpKey& addr);
  // shedOldest()'s part for one connection: sheds it if it is open and
  // awaiting its first frame; returns whether it did.
  bool shedIfAwaitingFirstFrame();
  // Parses the PROXY header from `data`. Returns kContinue once it is
  // stripped and the real client admitted.
  FilterStatus onProxyData(evbuffer* data, bool end_stream);
  void failProxy(CloseReason reason, const std::string& why);
  void onFrameDropped(uint16_t msg_id) override;
  // Closes the connection for exceeding message_rate_limit (counted).
  void closeOverMessageRate();
  // Answers the client with the gateway's error frame (`code`, refusing
  // `refused_msg_id`): encoded by the chain's codec and wrapped by the
  // transformers below it (websocket, tls), or, in a chain without a codec,
  // written as raw client-frame bytes.
  void sendErrorFrame(ErrorCode code, uint16_t refused_msg_id);

  const IpLimiterConfig& config() const;

  // Per connection (104 bytes: 88, plus the ShedList::Node base linking
  // it into its worker's ShedList while admitted). Config, dispatcher, the
  // LocalReserve and the ShedList are the factory's (per worker); the IP
  // table and global count are shared (IpLimiter, in the config).
  IpLimiterFactory& factory_;
  // The admission ticket. Its key is also the address the limits applied
  // to (clientAddress()): admit() stores it there on a refusal too (a
  // refused ticket is never released).
  IpLimiter::Ticket ticket_;
  bool client_set_ = false;  // ticket_.key holds the client's address
  bool admitted_ = false;
  bool released_ = false;
  bool proxy_pending_ = false;
  std::unique_ptr<Timer> proxy_timer_;                // PROXY protocol only, until the header
  std::unique_ptr<MessageRateTracker> message_rate_;  // message_rate_limit only
};

// Per worker: creates filters, holds the worker's LocalReserve of the global
// connection count (global_count.h), and every config.sweepInterval() offers
// to sweep the IP table of expired idle entries (the first worker to ask in
// an interval sweeps every shard; see IpLimiter::claimSweep). The timer is
// armed on the worker's thread by the first createFilter().
class IpLimiterFactory : public FilterFactory {
 public:
  // Runs its sweep timer on worker.dispatcher.
  IpLimiterFactory(std::shared_ptr<const IpLimiterConfig> config, WorkerContext& worker);
  std::unique_ptr<Filter> createFilter() override;
  const IpLimiterConfig& config() const { return *config_; }
  Dispatcher& dispatcher() { return dispatcher_; }
  LocalReserve& reserve() { return reserve_; }
  // The worker's connections admitted under at_max_connections "shed", in
  // admission order (shared by every listener and config generation of the
  // worker: it lives in WorkerServices).
  ShedList& shedList() { return shed_list_; }
  // Sweeps the whole table unless a worker did within the last interval.
  // Returns the entries removed.
  size_t sweep();

 private:
  std::shared_ptr<const IpLimiterConfig> config_;
  Dispatcher& dispatcher_;
  LocalReserve reserve_;
  ShedList& shed_list_;
  Timer sweep_timer_;
};

}  // namespace ip_limiter
}  // namespace gw
