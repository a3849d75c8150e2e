// filters/upstream/cluster_pool.h — one worker's connections to one cluster.
//
// Defines HostPool (one backend host: its multiplexed connections, its
// reconnect backoff) and ClusterPool (the hosts of a cluster and its load
// balancer: round_robin, least_request = fewest sessions pinned on this
// worker, consistent_hash on session id). The per-process connection limits
// (max_connections_per_service per host, max_connections per cluster) are
// split evenly across workers, each getting at least one. Per worker; not
// thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/sdk/cluster.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/upstream_events.h"
#include "filters/upstream/backend_connection.h"
#include "filters/upstream/reply_watchdog.h"
#include "filters/upstream/upstream_stats.h"

namespace gw {
namespace upstream {

class UpstreamFactory;

struct HostPool {
  size_t index = 0;
  Address address;
  std::string name;  // "127.0.0.1:9000"
  std::vector<std::unique_ptr<BackendConnection>> connections;
  std::chrono::steady_clock::time_point down_until{};  // in backoff until then
  std::chrono::milliseconds backoff{0};                // next backoff to apply
  size_t sessions = 0;                                 // sessions pinned here (this worker)
  // When kConnectionLost was last published for this host (epoch: not
  // since the last connect): losses within kLossCoalesce of it are one.
  std::chrono::steady_clock::time_point loss_published_at{};
  std::unique_ptr<HostStats> stats;
  int64_t reported_active = 0;  // this worker's contribution to the pool gauges
  int64_t reported_idle = 0;
};

class ClusterPool {
 public:
  ClusterPool(UpstreamFactory& factory, const ClusterConfig& config, size_t worker_index,
              size_t worker_count);
  ~ClusterPool();

  const ClusterConfig& config() const { return config_; }
  const std::string& name() const { return config_.name; }
  ClusterStats& stats() { return stats_; }
  UpstreamFactory& factory() { return factory_; }
  Dispatcher& dispatcher();
  // The cluster's reply watchdog on this worker (reply_watchdog.h).
  ReplyWatchdog& watchdog() { return watchdog_; }
  size_t hostCount() const { return hosts_.size(); }
  HostPool& host(size_t i) { return *hosts_[i]; }
  // Connections one worker may hold per host / per cluster.
  size_t perHostLimit() const { return per_host_limit_; }
  size_t perClusterLimit() const { return per_cluster_limit_; }

  // Picks a host for `session`: `preferred` (its affinity) while that host is
  // up, else the load balancer's choice. Returns -1 if no host is usable.
  int pickHost(uint64_t session, int preferred);
  // Picks (or opens) a connection on host `h`. nullptr if none can be had
  // (connect failed at once, or the cluster's connection cap is reached and
  // every existing connection is gone).
  BackendConnection* pickConnection(size_t h);

  // Called by a BackendConnection when it closed. `during_connect`: the
  // connect failed (backoff starts). `had_sessions`: sessions were on it
  // (only then is kConnectionLost published, and once for all of the
  // host's connections lost within kLossCoalesce: a backend going away
  // is one failure, not one per pooled connection). The connection is
  // deleted later in this loop turn.
  void onConnectionClosed(BackendConnection* conn, bool during_connect, bool had_sessions,
                          std::string_view detail);
  // Called when a connect succeeded (resets the host's backoff).
  void onConnected(HostPool& host);
  // Publishes an event on this worker's UpstreamEventBus.
  void publish(UpstreamEvent::Type type, HostPool& host, uint64_t session);
  // Keeps the pool gauges (active vs idle connections) right after a change.
  void updatePoolGauges(HostPool& host);

 private:
  bool hostUsable(const HostPool& h, std::chrono::steady_clock::time_point now);
  int pickByPolicy(uint64_t session, std::chrono::steady_clock::time_point now);

  UpstreamFactory& factory_;
  ClusterConfig config_;
  ClusterStats stats_;
  std::vector<std::unique_ptr<HostPool>> hosts_;
  std::vector<std::pair<uint64_t, size_t>> ring_;  // consistent hash: (point, host)
  size_t per_host_limit_;
  size_t per_cluster_limit_;
  size_t total_connections_ = 0;
  size_t rr_next_ = 0;
  std::minstd_rand rng_;
  ReplyWatchdog watchdog_;  // after hosts_: its destructor reads their stats
};

}  // namespace upstream
}  // namespace gw
