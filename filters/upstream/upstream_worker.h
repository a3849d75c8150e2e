// filters/upstream/upstream_worker.h — what `upstream` keeps per worker
// across config generations.
//
// Defines UpstreamWorker, one per worker thread (in WorkerServices, so it
// lives as long as the worker): the ClusterPools by cluster name, shared by
// every UpstreamFactory (one per config generation) of the worker; the
// session id -> UpstreamFilter map backend frames are routed with (sessions
// of two generations may share a BackendConnection: ids are unique in the
// process, so one map serves both); and the drop counters. It subscribes to
// the cluster manager and sweeps its pools after every change (host states,
// removed hosts). Per worker; not thread-safe.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/sdk/cluster.h"
#include "core/sdk/cluster_manager.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/upstream_events.h"
#include "core/sdk/worker_services.h"
#include "filters/upstream/cluster_pool.h"
#include "filters/upstream/linger.h"
#include "filters/upstream/upstream_stats.h"

namespace gw {
namespace upstream {

class UpstreamFilter;

class UpstreamWorker {
 public:
  UpstreamWorker() = default;
  ~UpstreamWorker();

  // Binds to the worker (first upstream factory on it; later calls no-ops):
  // its dispatcher, services (event bus, availability, linger keeper),
  // index and worker count (the limits' split), and `manager`.
  void init(Dispatcher& dispatcher, WorkerServices& services, size_t worker_index,
            size_t worker_count, ClusterManager& manager);

  // The pool of cluster `c` (made on first use), configured with `c` and
  // counted as used by one more generation (release() when it goes).
  ClusterPool& acquire(const ClusterConfig& c);
  // A generation stopped using `pool`. A pool no generation uses closes its
  // idle connections and is deleted once it has no session or connection.
  void release(ClusterPool& pool);
  // The pool of cluster `name`, or nullptr.
  ClusterPool* find(std::string_view name);
  size_t poolCount() const { return pools_.size(); }

  // Session registry (this worker, all generations): backend frames find
  // their client here.
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

  // Sweeps every pool (the manager changed): see ClusterPool::sweep().
  void sweep();

  Dispatcher& dispatcher() { return *dispatcher_; }
  LingerKeeper& linger() { return *linger_; }
  UpstreamEventBus& bus() { return *bus_; }
  HostAvailabilitySlot& availability() { return *availability_; }
  DropStats& drops() { return *drops_; }
  ClusterManager& manager() { return *manager_; }
  size_t workerIndex() const { return worker_index_; }
  size_t workerCount() const { return worker_count_; }

 private:
  // Deletes pools no generation uses and nothing is left on (at the end of
  // this loop turn: a pool's own callbacks may be on the stack).
  void collect();

  Dispatcher* dispatcher_ = nullptr;
  LingerKeeper* linger_ = nullptr;
  UpstreamEventBus* bus_ = nullptr;
  HostAvailabilitySlot* availability_ = nullptr;
  ClusterManager* manager_ = nullptr;
  size_t worker_index_ = 0;
  size_t worker_count_ = 1;
  uint64_t subscription_ = 0;
  std::unique_ptr<DropStats> drops_;
  absl::flat_hash_map<uint64_t, UpstreamFilter*> sessions_;
  std::map<std::string, std::unique_ptr<ClusterPool>, std::less<>> pools_;
};

}  // namespace upstream
}  // namespace gw
