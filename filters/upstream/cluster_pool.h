// filters/upstream/cluster_pool.h — one worker's connections to one cluster.
//
// Defines HostPool (one backend host: its multiplexed connections, its
// reconnect backoff, its state from the cluster manager) and ClusterPool
// (the hosts of a cluster and its load balancer: round_robin, least_request
// = fewest sessions pinned on this worker, consistent_hash on session id).
// The per-process connection limits (max_connections_per_service per host,
// max_connections per cluster) are split evenly across workers, each
// getting at least one.
//
// A ClusterPool belongs to its worker's UpstreamWorker (upstream_worker.h),
// not to a config generation: every UpstreamFactory of the worker that
// routes to the cluster shares it, so the limits hold across reloads. The
// newest generation's ClusterConfig applies (configure()). Hosts come from
// the cluster manager (core/sdk/cluster_manager.h, read through
// ClusterHosts): a host the manager drops stops getting sessions and its
// HostPool lives on, out of the set, until its last connection and session
// are gone. Per worker; not thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/sdk/cluster.h"
#include "core/sdk/cluster_manager.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/upstream_events.h"
#include "core/sdk/clock.h"
#include "filters/upstream/backend_connection.h"
#include "filters/upstream/reply_watchdog.h"
#include "filters/upstream/upstream_stats.h"

namespace gw {
namespace upstream {

class UpstreamWorker;

struct HostPool {
  size_t index = 0;  // position in the cluster's current host set (event and breaker index)
  Address address;
  std::string name;  // "127.0.0.1:9000"
  HostState state = HostState::kReady;
  bool in_set = true;  // false once the manager dropped the host
  std::vector<std::unique_ptr<BackendConnection>> connections;
  std::chrono::steady_clock::time_point down_until{};  // in backoff until then
  std::chrono::milliseconds backoff{0};                // next backoff to apply
  size_t sessions = 0;  // sessions pinned here (this worker; lingering ones too)
  // When kConnectionLost was last published for this host (epoch: not
  // since the last connect): losses within kLossCoalesce of it are one.
  std::chrono::steady_clock::time_point loss_published_at{};
  // Reply watchdog (reply_watchdog.h): first frame sent since the last one
  // received (epoch: none awaited), and whether this worker counts the
  // host silent.
  MonoTime awaiting_since{};
  bool silent = false;
  std::unique_ptr<HostStats> stats;
  int64_t reported_active = 0;  // this worker's contribution to the pool gauges
  int64_t reported_idle = 0;
};

class ClusterPool {
 public:
  ClusterPool(UpstreamWorker& worker, const ClusterConfig& config);
  ~ClusterPool();

  // A generation built with `config` uses this pool: its settings (timeouts,
  // limits, configured hosts) apply from now on.
  void configure(const ClusterConfig& config);

  const ClusterConfig& config() const { return config_; }
  const std::string& name() const { return config_.name; }
  ClusterStats& stats() { return stats_; }
  UpstreamWorker& worker() { return worker_; }
  Dispatcher& dispatcher();
  // The cluster's reply watchdog on this worker (reply_watchdog.h).
  ReplyWatchdog& watchdog() { return watchdog_; }
  // Hosts of the current set, in the set's order.
  size_t hostCount() const { return hosts_.size(); }
  HostPool& host(size_t i) { return *hosts_[i]; }
  // The host of the current set named `name`, or nullptr.
  HostPool* findHost(std::string_view name);
  // Connections one worker may hold per host / per cluster.
  size_t perHostLimit() const { return per_host_limit_; }
  size_t perClusterLimit() const { return per_cluster_limit_; }
  // Backend connections of this worker to the cluster, all hosts.
  size_t connectionCount() const { return total_connections_; }
  // Sessions pinned on any host (lingering ones too).
  size_t sessionCount() const;
  // Generations (UpstreamFactory) of this worker using the pool.
  size_t users = 0;

  // Picks a host for `session`: `preferred` (its affinity) while it is in
  // the set, ready or drain, and up; else the load balancer's choice among
  // ready, up hosts. Returns nullptr if no host is usable.
  HostPool* pickHost(uint64_t session, HostPool* preferred);
  // Picks (or opens) a connection on `host`. nullptr if none can be had
  // (connect failed at once, or the cluster's connection cap is reached and
  // every existing connection is gone).
  BackendConnection* pickConnection(HostPool& host);
  // Opens a connection to `host` dedicated to `session` (compat
  // connection_per_session): never shared, never reused. nullptr with *why
  // set if the host's max_connections_per_service share or the cluster's
  // max_connections share on this worker is reached (counted in
  // game_gateway_upstream_session_connections_refused_total:
  // upstream_overflow) or the connect failed at once (upstream_unavailable).
  BackendConnection* openForSession(HostPool& host, uint64_t session, ErrorCode* why);
  // Closes `conn` (a dedicated one whose session ended), flushing what it
  // holds; quietly: no log line, no backoff, no loss counted.
  void closeSessionConnection(BackendConnection* conn);

  // Applies the manager's changes when the set moved (one atomic load
  // otherwise): new hosts, removed hosts, states; then sweep().
  void refreshIfStale();
  // Acts on host states: the live sessions of maint hosts move (their
  // backend gets session close; their next frame picks another host) and
  // the hosts' connections close; idle connections of removed hosts close;
  // removed hosts with nothing left are deleted. With `retire_all` (no
  // generation uses the pool any more) every idle connection closes.
  void sweep(bool retire_all = false);

  // Called by a BackendConnection when it closed. `during_connect`: the
  // connect failed (backoff starts). `had_sessions`: sessions were on it
  // (only then is kConnectionLost published, and once for all of the
  // host's connections lost within kLossCoalesce: a backend going away
  // is one failure, not one per pooled connection; never for a session's
  // own connection, which a backend may close to end the session). The
  // connection is deleted later in this loop turn.
  void onConnectionClosed(BackendConnection* conn, bool during_connect, bool had_sessions,
                          std::string_view detail);
  // Called for every failed connect attempt (retried or not): counts it
  // (connect_failures_total; the Go gateway's backend_errors_total as
  // timeout or connection_failed), and asks the cluster's DNS source to look its names up again.
  void onConnectAttemptFailed(HostPool& host, bool timed_out);
  // A value of this pool's generator (retry jitter).
  uint64_t random();
  // Called when a connect succeeded (resets the host's backoff).
  void onConnected(HostPool& host);
  // Called when a connection's last session left: a removed host's
  // connection closes then.
  void onConnectionIdle(BackendConnection* conn);
  // Publishes an event on this worker's UpstreamEventBus (not for hosts out
  // of the set: their index is no longer theirs).
  void publish(UpstreamEvent::Type type, HostPool& host, uint64_t session);
  // Keeps the pool gauges (active vs idle connections) right after a change.
  void updatePoolGauges(HostPool& host);

 private:
  void applySet(const HostSet& set);
  bool hostUsable(const HostPool& h, std::chrono::steady_clock::time_point now);
  HostPool* pickByPolicy(uint64_t session, std::chrono::steady_clock::time_point now);
  // Connects a new connection to `host` (dedicated to `dedicated_to`, or
  // multiplexed if 0), counted against the limits; nullptr if the connect
  // failed at once (counted, logged, published).
  BackendConnection* openConnection(HostPool& host, uint64_t dedicated_to);
  // Closes `conn` on purpose (not a failure: no backoff, no loss counted);
  // lingering sessions on it lose their binding.
  void retire(BackendConnection* conn);
  // Removes `conn` from its host; deleted at the end of this loop turn.
  void release(BackendConnection* conn);

  UpstreamWorker& worker_;
  ClusterConfig config_;
  ClusterStats stats_;
  ClusterHosts set_;
  std::map<std::string, std::unique_ptr<HostPool>, std::less<>> all_;  // in the set or not
  std::vector<HostPool*> hosts_;                                       // the current set
  std::vector<std::pair<uint64_t, HostPool*>> ring_;  // consistent hash: (point, host)
  size_t per_host_limit_ = 1;
  size_t per_cluster_limit_ = 1;
  size_t total_connections_ = 0;
  size_t rr_next_ = 0;
  std::minstd_rand rng_;
  ReplyWatchdog watchdog_;  // watches hosts_ (set in applySet)
};

}  // namespace upstream
}  // namespace gw
