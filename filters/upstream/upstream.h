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
// State: UpstreamFilter (per client connection) holds the session id and
// its per-cluster affinity (host and backend connection). UpstreamFactory
// (per worker) owns the pools and the session -> filter map used to route
// backend frames; nothing is shared across workers except the immutable
// UpstreamConfig and the sharded stats.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/registry.h"
#include "core/session_info.h"
#include "core/upstream_events.h"
#include "filters/upstream/cluster_pool.h"
#include "filters/upstream/route_table.h"

namespace gw {
namespace upstream {

struct UpstreamConfig : FilterConfig {
  RouteTable routes;
  std::vector<ClusterConfig> clusters;  // only the ones routes reference; index = route target
  size_t max_backend_output_bytes = 8 * 1024 * 1024;
};

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
  // The backend connection this session used in `pool` is gone.
  void onBackendGone(ClusterPool& pool, BackendConnection* conn);
  // A frame queued on a connection that failed to connect: tells the client.
  void refuse(ClusterPool& pool, uint16_t msg_id, ErrorCode code);
  uint64_t sessionId() const { return session_ ? session_->id : 0; }
  SessionInfo* session() { return session_; }

 private:
  struct Affinity {
    ClusterPool* pool;
    int host = -1;
    BackendConnection* conn = nullptr;
    std::chrono::steady_clock::time_point sent_at{};  // oldest unanswered frame
    bool awaiting = false;
  };
  Affinity& affinityFor(ClusterPool& pool);
  void ensureSession();
  void sendError(ClusterPool* pool, uint16_t msg_id, ErrorCode code);

  UpstreamFactory& factory_;
  SessionInfo own_session_;            // used when no filter published one
  SessionInfo* session_ = nullptr;
  bool registered_ = false;
  std::vector<Affinity> affinity_;     // usually one entry per cluster used
};

class UpstreamFactory : public FilterFactory {
 public:
  UpstreamFactory(std::shared_ptr<const UpstreamConfig> config, WorkerContext& worker);
  ~UpstreamFactory() override;

  std::unique_ptr<Filter> createFilter() override;

  const UpstreamConfig& config() const { return *config_; }
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
  Dispatcher& dispatcher_;
  UpstreamEventBus& bus_;
  HostAvailabilitySlot& availability_;
  DropStats drops_;
  stats::Counter* no_route_;
  std::vector<std::unique_ptr<ClusterPool>> pools_;
  absl::flat_hash_map<uint64_t, UpstreamFilter*> sessions_;
};

}  // namespace upstream
}  // namespace gw
