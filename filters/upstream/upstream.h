// filters/upstream/upstream.h — the `upstream` filter: routes client frames
// to multiplexed backend connections and delivers backend frames back.
//
// Terminal, frames layer.
//   read:  onFrame ─▶ RouteTable (server_type:world_id) ─▶ ClusterPool ─▶
//          HostPool (affinity / load balancer) ─▶ BackendConnection (shared)
//   write: BackendConnection ─▶ UpstreamFactory::deliver(session) ─▶
//          UpstreamFilter::callbacks().writeFrame ─▶ ... framing ─▶ client
// A frame that cannot be forwarded (no route, no host, overflow) is answered
// with an error frame (core/error_frame.h); the connection stays open.
//
// State: UpstreamFilter (per client connection) holds the session it serves
// (a pointer to the published SessionInfo) and its per-cluster state (host
// index, backend connection, reply latency start), inline for the usual one
// cluster. The session's affinity by name is the session owner's (asked
// through SessionObserver::affinityFor, told through onAffinityChanged);
// without an owner there is none to keep. UpstreamFactory (per worker, per
// config generation) holds the route table in force (the static routes, or
// rules read from Redis: routes_from_redis, redis_routes.h) and uses the
// worker's pools; UpstreamWorker (per worker, all generations:
// upstream_worker.h) owns the pools and the session -> filter map used to
// route backend frames. Nothing is shared across workers except the
// immutable UpstreamConfig, the cluster manager and the sharded stats.
//
// Host states (core/sdk/cluster_manager.h): new sessions go to ready hosts
// only; a session pinned on a draining host stays; a session on a maint
// host is moved (leaveHost: its backend gets session close, its next frame
// opens it on another host).
//
// Compat clusters (ClusterConfig::compat, the Go gateway's TCP mode): with
// routing per_connection the cluster the session's first routed frame went
// to takes every later frame (pinned_pool_); with connection_per_session
// the session gets a backend connection of its own (ClusterPool::
// openForSession), closed when the session ends, and the session ends
// (the client connection closes) when that connection closes. Such a
// session never lingers.
//
// Sessions published by a `session` filter (core/session_info.h): the
// affinity it carries (a resumed session) is preferred when picking hosts,
// and affinity changes and player bindings are reported to its observer.
// When a resumable session's client leaves, its backend bindings linger
// (linger.h) instead of being closed at once: backends see the session
// continue if the client resumes it, here or on another replica.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/container/inlined_vector.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/sdk/registry.h"
#include "core/sdk/session_info.h"
#include "core/sdk/upstream_events.h"
#include "filters/upstream/cluster_pool.h"
#include "filters/upstream/go_routes.h"
#include "filters/upstream/linger.h"
#include "filters/upstream/redis_routes.h"
#include "filters/upstream/route_table.h"
#include "filters/upstream/upstream_config.h"
#include "filters/upstream/upstream_worker.h"

namespace gw {
namespace upstream {

class UpstreamFactory;

class UpstreamFilter : public Filter, public RouteResolver {
 public:
  explicit UpstreamFilter(UpstreamFactory& factory);
  ~UpstreamFilter() override;

  FilterStatus onNewConnection() override;
  FilterStatus onFrame(Frame& frame) override;
  void onClose(CloseReason reason) override;

  // RouteResolver (published in the connection's slots).
  const std::string* clusterFor(const wire::ClientHeader& header) const override;

  // A backend frame for this session: sends it to the client.
  void deliver(ClusterPool& pool, const wire::ServerHeader& header, evbuffer* payload_src);
  // A backend asked to close this session.
  void kick(const std::string& by);
  // A backend bound a player id to this session (opcode 5).
  void bindPlayer(uint64_t player_id);
  // The backend connection this session used in `pool` is gone.
  void onBackendGone(ClusterPool& pool, BackendConnection* conn);
  // The connection dedicated to this session in `pool` closed: the session
  // ends (the client connection closes with `reason`), as in the Go gateway.
  void endWithBackend(ClusterPool& pool, BackendConnection* conn, CloseReason reason,
                      std::string_view detail);
  // Host `host` of `pool` went into maint: closes this session there (the
  // backend gets session close) and forgets the host, so the next frame
  // picks another one.
  void leaveHost(ClusterPool& pool, HostPool& host);
  // A frame queued on a connection that failed to connect: tells the client.
  void refuse(ClusterPool& pool, uint16_t msg_id, ErrorCode code);
  uint64_t sessionId() const { return session_ ? session_->id : 0; }
  // True when this session is on a host of `pool` (Go round robin keeps it).
  bool usesPool(const ClusterPool* pool) const {
    for (const auto& a : affinity_)
      if (a.pool == pool && a.host != nullptr) return true;
    return false;
  }
  SessionInfo* session() { return session_; }

 private:
  // The session's state in one cluster (32 bytes).
  struct Affinity {
    ClusterPool* pool;
    BackendConnection* conn = nullptr;
    // Oldest unanswered frame; the epoch when none is awaited.
    std::chrono::steady_clock::time_point sent_at{};
    HostPool* host = nullptr;  // counted in its `sessions`; nullptr: none yet
    // Server type of the last frame sent (the Go label service_type of the
    // replies' latency and messages_processed_total).
    uint8_t service_type = 0;
    bool awaiting() const { return sent_at != std::chrono::steady_clock::time_point{}; }
  };
  Affinity& affinityFor(ClusterPool& pool);
  void ensureSession();
  // Host `h` of `pool` became the session's affinity (it differs from the
  // one it had): tells the session owner.
  void noteAffinity(ClusterPool& pool, HostPool& h);
  void sendError(ClusterPool* pool, uint16_t msg_id, ErrorCode code);
  // The backend connection for this session's frame to `pool` on host `h`:
  // a shared one, or one of its own (compat connection_per_session).
  // nullptr with *why set if none can be had.
  BackendConnection* connectionFor(ClusterPool& pool, HostPool& h, ErrorCode* why);
  // Closes the connections dedicated to this session (compat
  // connection_per_session) and forgets them: the session is over.
  void closeDedicated();

  // Per connection.
  UpstreamFactory& factory_;  // per worker and generation: routes, pools
  // The session served: published by its owner (`session`), or own_session_.
  SessionInfo* session_ = nullptr;
  // Made only when no filter published a session (no `session` filter).
  std::unique_ptr<SessionInfo> own_session_;
  // The id registered with the factory (0: not registered; ids are never
  // 0). Kept apart from session_->id: the publisher may be destroyed first.
  uint64_t registered_id_ = 0;
  // Compat routing per_connection: the pool every frame goes to since the
  // first one routed there (static routes, Redis or Go tables alike; the
  // factory keeps it acquired for its lifetime); nullptr: none.
  ClusterPool* pinned_pool_ = nullptr;
  // When the filter was made (the client connection accepted), until its
  // first frame went to a backend (then the epoch: observed once).
  std::chrono::steady_clock::time_point created_at_;
  // One entry per cluster used, inline for the first.
  absl::InlinedVector<Affinity, 1> affinity_;
};

class UpstreamFactory : public FilterFactory {
 public:
  // Built by the registered filter type (upstream_config.cc) for one worker;
  // acquires the worker's pools of its clusters (releases them when gone).
  UpstreamFactory(std::shared_ptr<const UpstreamConfig> config, WorkerContext& worker);
  ~UpstreamFactory() override;

  std::unique_ptr<Filter> createFilter() override;

  const UpstreamConfig& config() const { return *config_; }
  // The pool a client frame with header `h` goes to, or nullptr (no route):
  // by the route table in force on this worker, or the Go table (go_routes.h)
  // once rules in the Go format are read. `session` is the frame's filter
  // (Go round robin keeps the endpoint it uses); `commit`: a round-robin
  // pick advances its counter (false: a preview, e.g. for the breaker).
  ClusterPool* route(const wire::ClientHeader& h, const UpstreamFilter& session, bool commit) {
    if (go_table_) {
      int e = go_table_->pick(
          h, [&](uint32_t i) { return session.usesPool(go_pools_[i]); }, commit);
      return e == GoRouteTable::kNoRoute ? nullptr : go_pools_[static_cast<size_t>(e)];
    }
    int c = routes_->resolve(h);
    return c == RouteTable::kNoRoute ? nullptr : pools_[static_cast<size_t>(c)];
  }
  UpstreamWorker& worker() { return worker_; }
  // The pool of static route target `index` (config().clusters[index]).
  ClusterPool& pool(int index) { return *pools_[static_cast<size_t>(index)]; }
  LingerKeeper& linger() { return worker_.linger(); }
  Dispatcher& dispatcher() { return worker_.dispatcher(); }
  UpstreamEventBus& bus() { return worker_.bus(); }
  stats::Counter* noRoute() { return no_route_; }
  // routing_errors_total{error_type="not_found"} (the Go gateway's name).
  stats::Counter* routingNotFound() { return routing_not_found_; }

 private:
  // Installs a Go table: acquires the pools of its endpoints' clusters
  // (made from routes_from_redis's template; kept until this factory goes)
  // and, on worker 0, adds those clusters to the cluster manager (source
  // "go_routes") so /clusters and host states cover them.
  void applyGo(std::shared_ptr<const GoRouteTable> table);

  std::shared_ptr<const UpstreamConfig> config_;
  const RouteTable* routes_;                        // config_->routes or *redis_table_
  std::shared_ptr<const RouteTable> redis_table_;  // rules read from Redis, once any
  UpstreamWorker& worker_;
  stats::Counter* no_route_;
  stats::Counter* routing_not_found_;
  std::vector<ClusterPool*> pools_;  // the worker's, acquired in the constructor
  // Go format: the table in force (null: routes_ applies), its endpoint
  // index -> pool, and every endpoint pool acquired (by cluster name).
  std::shared_ptr<const GoRouteTable> go_table_;
  std::vector<ClusterPool*> go_pools_;
  std::map<std::string, ClusterPool*, std::less<>> go_acquired_;
  std::unique_ptr<RedisRoutes> redis_routes_;  // last: stops before the pools are released
};

}  // namespace upstream
}  // namespace gw
