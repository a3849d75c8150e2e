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
// without an owner there is none to keep. UpstreamFactory
// (per worker) owns the pools, the session -> filter map used to route
// backend frames and the route table in force (the static routes, or rules
// read from Redis: routes_from_redis, redis_routes.h); nothing is shared
// across workers except the immutable UpstreamConfig and the sharded stats.
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
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/sdk/registry.h"
#include "core/sdk/session_info.h"
#include "core/sdk/upstream_events.h"
#include "filters/upstream/cluster_pool.h"
#include "filters/upstream/linger.h"
#include "filters/upstream/redis_routes.h"
#include "filters/upstream/route_table.h"
#include "filters/upstream/upstream_config.h"

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
  // A frame queued on a connection that failed to connect: tells the client.
  void refuse(ClusterPool& pool, uint16_t msg_id, ErrorCode code);
  uint64_t sessionId() const { return session_ ? session_->id : 0; }
  SessionInfo* session() { return session_; }

 private:
  // The session's state in one cluster (32 bytes).
  struct Affinity {
    ClusterPool* pool;
    BackendConnection* conn = nullptr;
    std::chrono::steady_clock::time_point sent_at{};  // oldest unanswered frame
    int32_t host = -1;  // index in pool; -1: none yet
    bool awaiting = false;
  };
  Affinity& affinityFor(ClusterPool& pool);
  void ensureSession();
  // Host `h` of `pool` became the session's affinity (it differs from the
  // one it had): tells the session owner.
  void noteAffinity(ClusterPool& pool, int h);
  void sendError(ClusterPool* pool, uint16_t msg_id, ErrorCode code);

  // Per connection.
  UpstreamFactory& factory_;  // per worker: routes, pools, session map
  // The session served: published by its owner (`session`), or own_session_.
  SessionInfo* session_ = nullptr;
  // Made only when no filter published a session (no `session` filter).
  std::unique_ptr<SessionInfo> own_session_;
  // The id registered with the factory (0: not registered; ids are never
  // 0). Kept apart from session_->id: the publisher may be destroyed first.
  uint64_t registered_id_ = 0;
  // One entry per cluster used, inline for the first.
  absl::InlinedVector<Affinity, 1> affinity_;
};

class UpstreamFactory : public FilterFactory {
 public:
  // Built by the registered filter type (upstream_config.cc) for one worker.
  UpstreamFactory(std::shared_ptr<const UpstreamConfig> config, WorkerContext& worker);
  ~UpstreamFactory() override;

  std::unique_ptr<Filter> createFilter() override;

  const UpstreamConfig& config() const { return *config_; }
  // The route table in force on this worker.
  const RouteTable& routes() const { return *routes_; }
  LingerKeeper& linger() { return linger_; }
  Dispatcher& dispatcher() { return dispatcher_; }
  ClusterPool& pool(int index) { return *pools_[static_cast<size_t>(index)]; }
  UpstreamEventBus& bus() { return bus_; }
  HostAvailabilitySlot& availability() { return availability_; }
  DropStats& drops() { return drops_; }
  stats::Counter* noRoute() { return no_route_; }

  // Session registry (this worker): backend frames find their client here.
  void registerSession(uint64_t id, UpstreamFilter* f) { sessions_[id] = f; }
  void unregisterSession(uint64_t id, UpstreamFilter* f) {
    auto it = sessions_.find(id);
    if (it != sessions_.end() && it->second == f) sessions_.erase(it);
  }
  UpstreamFilter* findSession(uint64_t id) {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second;
  }
  size_t sessionCount() const { return sessions_.size(); }

 private:
  std::shared_ptr<const UpstreamConfig> config_;
  const RouteTable* routes_;                        // config_->routes or *redis_table_
  std::shared_ptr<const RouteTable> redis_table_;  // rules read from Redis, once any
  Dispatcher& dispatcher_;
  LingerKeeper& linger_;
  UpstreamEventBus& bus_;
  HostAvailabilitySlot& availability_;
  DropStats drops_;
  stats::Counter* no_route_;
  std::vector<std::unique_ptr<ClusterPool>> pools_;
  absl::flat_hash_map<uint64_t, UpstreamFilter*> sessions_;
  std::unique_ptr<RedisRoutes> redis_routes_;  // last: stops before the pools go
};

}  // namespace upstream
}  // namespace gw
