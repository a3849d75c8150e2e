// filters/upstream/upstream_stats.h — every metric of the `upstream` filter,
// declared in one place.
//
// ClusterStats is per cluster (shared by all workers: the counters are
// sharded per thread); HostStats per host of a cluster. The names the admin
// view (upstream_admin_view.h) reads back are constants here, so the two
// cannot drift apart.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "core/sdk/error_frame.h"
#include "core/sdk/stats.h"
#include "filters/upstream/output_shares.h"

namespace gw {
namespace upstream {

// Per host, label state="active" | "idle".
inline constexpr const char* kPoolConnectionsMetric = "game_gateway_upstream_pool_connections";
// Per host: failed connects / established connections that closed.
inline constexpr const char* kConnectFailuresMetric = "game_gateway_upstream_connect_failures_total";
inline constexpr const char* kConnectionsLostMetric = "game_gateway_upstream_connections_lost_total";
// Per host, labels cluster and backend ("ip:port", the Go gateway's label):
// connect attempts retried after a failure (cluster max_retries).
inline constexpr const char* kBackendRetriesMetric = "game_gateway_backend_retries_total";
// Per cluster, label direction="in" | "out".
inline constexpr const char* kFramesMetric = "game_gateway_upstream_frames_total";
inline constexpr const char* kBytesMetric = "game_gateway_upstream_bytes_total";
// Per cluster, label reason="reserved_msg_id": backend frames not forwarded.
inline constexpr const char* kBackendFramesRefusedMetric =
    "game_gateway_upstream_backend_frames_refused_total";
// Per cluster: client frame in to the next backend frame out.
inline constexpr const char* kLatencyMetric = "game_gateway_request_latency_seconds";
// Per host, set at scrape time (UpstreamAdminView::onScrape): the backend
// connections the gateway may open to the host, all workers.
inline constexpr const char* kPoolCapacityMetric = "game_gateway_upstream_pool_capacity";
inline constexpr const char* kPoolCapacityHelp =
    "Backend connections the gateway may open to a host (all workers).";

// Per cluster, label reason = session_share | ip_share | hard_cap |
// connect_queue: client frames refused (error frame upstream_overflow)
// because the backend connection's output or connect queue was full.
inline constexpr const char* kOutputRefusedMetric = "game_gateway_upstream_output_refused_total";
// Per host (reply_watchdog.h): workers on which the host is silent now, and
// silent episodes.
inline constexpr const char* kHostSilentMetric = "game_gateway_upstream_host_silent";
inline constexpr const char* kSilencesMetric = "game_gateway_upstream_silences_total";

// Per cluster: client sessions refused a backend connection of their own
// (compat connection_per_session) at max_connections_per_service /
// max_connections.
inline constexpr const char* kSessionConnectionsRefusedMetric =
    "game_gateway_upstream_session_connections_refused_total";
// The Go gateway's backend_* families (issue 16; docs/ops/go-metrics.md):
// per host, labels cluster and backend (the host's "ip:port", the Go label).
inline constexpr const char* kGoBackendRequestsMetric = "game_gateway_backend_requests_total";
inline constexpr const char* kGoBackendRequestLatencyMetric =
    "game_gateway_backend_request_latency_seconds";
inline constexpr const char* kGoBackendConnectionLatencyMetric =
    "game_gateway_backend_connection_latency_seconds";
inline constexpr const char* kGoBackendSetupLatencyMetric =
    "game_gateway_backend_connection_setup_latency_seconds";
inline constexpr const char* kGoBackendConnectionsActiveMetric =
    "game_gateway_backend_connections_active";
inline constexpr const char* kGoBackendErrorsMetric = "game_gateway_backend_errors_total";
inline constexpr const char* kGoBackendTimeoutsMetric = "game_gateway_backend_timeouts_total";
inline constexpr const char* kGoBackendHealthMetric = "game_gateway_backend_health_status";
inline constexpr const char* kGoBackendHealthHelp =
    "1: the host serves (ready or drain in the cluster manager), 0: it does not (maint, "
    "unhealthy). Set at scrape time.";
inline constexpr const char* kGoBackendBytesMetric = "game_gateway_backend_bytes_transmitted_total";
// Per cluster, labels direction (client_to_backend | backend_to_client) and
// service_type (the frame's server type, "200"), as the Go gateway's.
inline constexpr const char* kGoMessagesMetric = "game_gateway_messages_processed_total";
// Per cluster and service_type: client connection accepted to its first
// frame handed to a backend connection.
inline constexpr const char* kGoSetupLatencyMetric = "game_gateway_connection_setup_latency_seconds";
// Label error_type: frames upstream could not route (not_found) or place
// on a backend (connection_failed); the breaker and framing filters add
// their own error_type values to the same family.
inline constexpr const char* kGoRoutingErrorsMetric = "game_gateway_routing_errors_total";
inline constexpr const char* kGoRoutingErrorsHelp =
    "Client frames not routed to a backend, by error_type (the Go gateway's name).";

// Prometheus' exponential buckets: `count` bounds start, start*factor, ...
// (the Go gateway's: 1 ms doubling, 10 or 12 buckets).
inline std::vector<double> exponentialBuckets(double start, double factor, size_t count) {
  std::vector<double> b;
  for (size_t i = 0; i < count; ++i, start *= factor) b.push_back(start);
  return b;
}

// The Go gateway's backend_* series of one host (see above).
struct GoBackendStats {
  GoBackendStats(const std::string& cluster, const std::string& host) {
    auto& r = stats::StatsRegistry::get();
    stats::Labels l = {{"cluster", cluster}, {"backend", host}};
    auto with = [&](const char* k, const char* v) {
      stats::Labels x = l;
      x.emplace_back(k, v);
      return x;
    };
    const char* req_help =
        "Sessions placed on a backend connection (success) or refused one (error: the connect "
        "failed or timed out).";
    requests_success = &r.counter(kGoBackendRequestsMetric, req_help, with("status", "success"));
    requests_error = &r.counter(kGoBackendRequestsMetric, req_help, with("status", "error"));
    request_latency = &r.histogram(
        kGoBackendRequestLatencyMetric,
        "Client frame sent to this backend to its next reply for that session (seconds).", l,
        exponentialBuckets(0.001, 2, 12));
    connection_latency = &r.histogram(
        kGoBackendConnectionLatencyMetric,
        "Non-blocking connect() issued to the connection established (seconds).", l,
        exponentialBuckets(0.001, 2, 10));
    setup_latency = &r.histogram(
        kGoBackendSetupLatencyMetric,
        "New backend connection decided (socket created) to established (seconds).", l,
        exponentialBuckets(0.001, 2, 10));
    connections_active = &r.gauge(kGoBackendConnectionsActiveMetric,
                                  "Open connections to a backend (all workers).", l);
    const char* err_help = "Backend connection errors, by error_type.";
    errors_connection_failed = &r.counter(kGoBackendErrorsMetric, err_help,
                                          with("error_type", "connection_failed"));
    errors_timeout = &r.counter(kGoBackendErrorsMetric, err_help, with("error_type", "timeout"));
    errors_connection_lost = &r.counter(kGoBackendErrorsMetric, err_help,
                                        with("error_type", "connection_lost"));
    errors_protocol = &r.counter(kGoBackendErrorsMetric, err_help,
                                 with("error_type", "protocol_error"));
    timeouts = &r.counter(kGoBackendTimeoutsMetric,
                          "Backend connects that timed out (connect_timeout).", l);
    // Made here so the series exists from the start; its value is set at
    // scrape time (UpstreamAdminView::setHealthGauges).
    r.gauge(kGoBackendHealthMetric, kGoBackendHealthHelp, l).set(1);
    const char* bytes_help =
        "Bytes to (request) and from (response) a backend, server frame headers included.";
    bytes_request = &r.counter(kGoBackendBytesMetric, bytes_help, with("direction", "request"));
    bytes_response = &r.counter(kGoBackendBytesMetric, bytes_help, with("direction", "response"));
  }
  stats::Counter* requests_success;
  stats::Counter* requests_error;
  stats::Histogram* request_latency;
  stats::Histogram* connection_latency;
  stats::Histogram* setup_latency;
  stats::Gauge* connections_active;
  stats::Counter* errors_connection_failed;
  stats::Counter* errors_timeout;
  stats::Counter* errors_connection_lost;
  stats::Counter* errors_protocol;
  stats::Counter* timeouts;
  stats::Counter* bytes_request;
  stats::Counter* bytes_response;
};

// Per cluster, label code: error frames sent instead of forwarding.
inline constexpr const char* kErrorFramesMetric = "game_gateway_upstream_error_frames_total";

// Every family with a cluster label (and maybe a host label): what the
// admin view deletes when a reload removes the cluster or host.
inline constexpr const char* kClusterScopedMetrics[] = {
    kPoolConnectionsMetric, kConnectFailuresMetric, kConnectionsLostMetric,
    kFramesMetric,          kBytesMetric,           kLatencyMetric,
    kPoolCapacityMetric,    kErrorFramesMetric,     kBackendFramesRefusedMetric,
    kOutputRefusedMetric,   kHostSilentMetric,      kSilencesMetric,
    kSessionConnectionsRefusedMetric, kGoBackendRequestsMetric, kGoBackendRequestLatencyMetric,
    kGoBackendConnectionLatencyMetric, kGoBackendSetupLatencyMetric,
    kGoBackendConnectionsActiveMetric, kGoBackendErrorsMetric, kGoBackendTimeoutsMetric,
    kGoBackendHealthMetric, kGoBackendBytesMetric, kGoMessagesMetric, kGoSetupLatencyMetric,
    kBackendRetriesMetric};

struct HostStats {
  explicit HostStats(const std::string& cluster, const std::string& host) : go(cluster, host) {
    auto& r = stats::StatsRegistry::get();
    stats::Labels l = {{"cluster", cluster}, {"host", host}};
    connect_failures = &r.counter(kConnectFailuresMetric,
                                  "Failed connects to a backend host.", l);
    connections_lost = &r.counter(kConnectionsLostMetric,
                                  "Established backend connections that closed.", l);
    pool_active = &r.gauge(kPoolConnectionsMetric,
                           "Backend connections by state (active: carries sessions).",
                           {{"cluster", cluster}, {"host", host}, {"state", "active"}});
    pool_idle = &r.gauge(kPoolConnectionsMetric,
                         "Backend connections by state (active: carries sessions).",
                         {{"cluster", cluster}, {"host", host}, {"state", "idle"}});
    silent = &r.gauge(kHostSilentMetric,
                      "Workers on which frames went to the host and none came back for "
                      "silence_timeout (clusters without expect_reply); > 0: silent.",
                      l);
    silences = &r.counter(kSilencesMetric,
                          "Times a worker found the host silent (reply watchdog).", l);
    retries = &r.counter(kBackendRetriesMetric,
                         "Backend connect attempts retried after a failed one (max_retries).",
                         {{"cluster", cluster}, {"backend", host}});
  }
  stats::Counter* connect_failures;
  stats::Counter* connections_lost;
  stats::Gauge* pool_active;
  stats::Gauge* pool_idle;
  stats::Gauge* silent;
  stats::Counter* silences;
  GoBackendStats go;
  stats::Counter* retries;
};

struct ClusterStats {
  explicit ClusterStats(const std::string& cluster) : cluster_(cluster) {
    auto& r = stats::StatsRegistry::get();
    frames_out = &r.counter(kFramesMetric,
                            "Frames between the gateway and backends.",
                            {{"cluster", cluster}, {"direction", "out"}});
    frames_in = &r.counter(kFramesMetric,
                           "Frames between the gateway and backends.",
                           {{"cluster", cluster}, {"direction", "in"}});
    bytes_out = &r.counter(kBytesMetric,
                           "Bytes between the gateway and backends (headers included).",
                           {{"cluster", cluster}, {"direction", "out"}});
    bytes_in = &r.counter(kBytesMetric,
                          "Bytes between the gateway and backends (headers included).",
                          {{"cluster", cluster}, {"direction", "in"}});
    for (uint16_t c = 1; c <= 7; ++c) {
      errors[c] = &r.counter(kErrorFramesMetric,
                             "Error frames sent to clients instead of forwarding, by code.",
                             {{"cluster", cluster},
                              {"code", std::string(errorCodeName(static_cast<ErrorCode>(c)))}});
    }
    refused_reserved = &r.counter(
        kBackendFramesRefusedMetric,
        "Backend frames refused (not forwarded to the client), by reason.",
        {{"cluster", cluster}, {"reason", "reserved_msg_id"}});
    const char* refused_help =
        "Client frames refused with upstream_overflow: the backend connection's output "
        "(the session's or client IP's share, or the hard cap) or its connect queue was full.";
    for (ShareVerdict v : {ShareVerdict::kSessionShare, ShareVerdict::kIpShare,
                           ShareVerdict::kHardCap}) {
      output_refused[static_cast<size_t>(v)] = &r.counter(
          kOutputRefusedMetric, refused_help, {{"cluster", cluster}, {"reason", shareVerdictName(v)}});
    }
    connect_queue_refused = &r.counter(kOutputRefusedMetric, refused_help,
                                       {{"cluster", cluster}, {"reason", "connect_queue"}});
    session_connections_refused = &r.counter(
        kSessionConnectionsRefusedMetric,
        "Client sessions refused a backend connection of their own (compat "
        "connection_per_session): the host's max_connections_per_service or the cluster's "
        "max_connections was reached (error frame upstream_overflow).",
        {{"cluster", cluster}});
    routing_connection_failed = &r.counter(kGoRoutingErrorsMetric, kGoRoutingErrorsHelp,
                                           {{"error_type", "connection_failed"}});
  }
  // The series of server type `type` (the Go label service_type), made on
  // first use (the registry lock once per worker, cluster and type; then
  // one array load per frame).
  stats::Histogram& latency(uint8_t type) {
    stats::Histogram*& h = latency_[type];
    if (h == nullptr) {
      h = &stats::StatsRegistry::get().histogram(
          kLatencyMetric, "Client frame in to the next backend frame for that session out (seconds).",
          typed(type), stats::latencyBuckets());
    }
    return *h;
  }
  stats::Counter& messagesOut(uint8_t type) { return messages(messages_out_, type, "client_to_backend"); }
  stats::Counter& messagesIn(uint8_t type) { return messages(messages_in_, type, "backend_to_client"); }
  stats::Histogram& setupLatency(uint8_t type) {
    stats::Histogram*& h = setup_latency_[type];
    if (h == nullptr) {
      h = &stats::StatsRegistry::get().histogram(
          kGoSetupLatencyMetric,
          "Client connection accepted to its first frame handed to a backend connection "
          "(seconds).",
          typed(type), exponentialBuckets(0.001, 2, 10));
    }
    return *h;
  }
  stats::Counter* frames_out;
  stats::Counter* frames_in;
  stats::Counter* bytes_out;
  stats::Counter* bytes_in;
  std::array<stats::Counter*, 8> errors{};
  // Data frames whose type is a gateway-to-client control id (isReservedForGateway).
  stats::Counter* refused_reserved;
  // Client frames refused by OutputShares::check, indexed by ShareVerdict
  // ([kAdmit] unused), and for max_pending_frames during a connect.
  std::array<stats::Counter*, 4> output_refused{};
  stats::Counter* connect_queue_refused;
  stats::Counter* session_connections_refused;
  // routing_errors_total{error_type="connection_failed"} (process-wide).
  stats::Counter* routing_connection_failed;

 private:
  stats::Labels typed(uint8_t type) const {
    return {{"cluster", cluster_}, {"service_type", std::to_string(type)}};
  }
  stats::Counter& messages(std::array<stats::Counter*, 256>& by_type, uint8_t type,
                           const char* direction) {
    stats::Counter*& c = by_type[type];
    if (c == nullptr) {
      stats::Labels l = typed(type);
      l.emplace_back("direction", direction);
      c = &stats::StatsRegistry::get().counter(
          kGoMessagesMetric, "Frames between clients and backends, by server type.", l);
    }
    return *c;
  }
  std::string cluster_;
  std::array<stats::Histogram*, 256> latency_{};
  std::array<stats::Histogram*, 256> setup_latency_{};
  std::array<stats::Counter*, 256> messages_out_{};
  std::array<stats::Counter*, 256> messages_in_{};
};

// Frames from backends that reached no client.
struct DropStats {
  DropStats() {
    auto& r = stats::StatsRegistry::get();
    const char* help = "Backend frames dropped, by reason.";
    unknown_session = &r.counter("game_gateway_upstream_dropped_frames_total", help,
                                 {{"reason", "unknown_session"}});
    too_large = &r.counter("game_gateway_upstream_dropped_frames_total", help,
                           {{"reason", "too_large_for_client"}});
    unknown_opcode = &r.counter("game_gateway_upstream_dropped_frames_total", help,
                                {{"reason", "unknown_opcode"}});
    malformed = &r.counter("game_gateway_upstream_malformed_frames_total",
                           "Backend connections closed for a malformed server frame.");
    kicks = &r.counter("game_gateway_upstream_kicks_total", "Sessions kicked by a backend.");
    pool_cleanup_errors = &r.counter(
        "game_gateway_pool_cleanup_errors_total",
        "Errors closing idle backend connections (the Go gateway's name; closing never fails "
        "here, so it stays 0).");
  }
  stats::Counter* unknown_session;
  stats::Counter* too_large;
  stats::Counter* unknown_opcode;
  stats::Counter* malformed;
  stats::Counter* kicks;
  stats::Counter* pool_cleanup_errors;
};

}  // namespace upstream
}  // namespace gw
