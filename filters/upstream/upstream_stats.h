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

// Per cluster, label code: error frames sent instead of forwarding.
inline constexpr const char* kErrorFramesMetric = "game_gateway_upstream_error_frames_total";

// Every family with a cluster label (and maybe a host label): what the
// admin view deletes when a reload removes the cluster or host.
inline constexpr const char* kClusterScopedMetrics[] = {
    kPoolConnectionsMetric, kConnectFailuresMetric, kConnectionsLostMetric,
    kFramesMetric,          kBytesMetric,           kLatencyMetric,
    kPoolCapacityMetric,    kErrorFramesMetric,     kBackendFramesRefusedMetric,
    kOutputRefusedMetric,   kHostSilentMetric,      kSilencesMetric,
    kBackendRetriesMetric};

struct HostStats {
  explicit HostStats(const std::string& cluster, const std::string& host) {
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
  stats::Counter* retries;
};

struct ClusterStats {
  explicit ClusterStats(const std::string& cluster) {
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
    latency = &r.histogram(
        kLatencyMetric,
        "Client frame in to the next backend frame for that session out (seconds).",
        {{"cluster", cluster}}, stats::latencyBuckets());
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
  stats::Histogram* latency;
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
  }
  stats::Counter* unknown_session;
  stats::Counter* too_large;
  stats::Counter* unknown_opcode;
  stats::Counter* malformed;
  stats::Counter* kicks;
};

}  // namespace upstream
}  // namespace gw
