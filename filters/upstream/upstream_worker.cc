#include "filters/upstream/upstream_worker.h"

namespace gw {
namespace upstream {

UpstreamWorker::~UpstreamWorker() {
  if (manager_ != nullptr && subscription_ != 0) manager_->unsubscribe(subscription_);
}

void UpstreamWorker::init(Dispatcher& dispatcher, WorkerServices& services, size_t worker_index,
                          size_t worker_count, ClusterManager& manager) {
  if (dispatcher_ != nullptr) return;
  dispatcher_ = &dispatcher;
  linger_ = &services.get<LingerKeeper>();
  bus_ = &services.get<UpstreamEventBus>();
  availability_ = &services.get<HostAvailabilitySlot>();
  manager_ = &manager;
  worker_index_ = worker_index;
  worker_count_ = worker_count;
  drops_ = std::make_unique<DropStats>();
  linger_->init(dispatcher, services);
  // Runs on this worker's loop; the manager drops the callback (and any
  // posted copy) at unsubscribe, in the destructor.
  subscription_ = manager.subscribe(dispatcher, [this] { sweep(); });
}

ClusterPool& UpstreamWorker::acquire(const ClusterConfig& c) {
  auto it = pools_.find(c.name);
  if (it == pools_.end()) {
    it = pools_.emplace(c.name, std::make_unique<ClusterPool>(*this, c)).first;
  } else {
    it->second->configure(c);
  }
  ++it->second->users;
  return *it->second;
}

void UpstreamWorker::release(ClusterPool& pool) {
  if (pool.users > 0) --pool.users;
  if (pool.users == 0) {
    pool.sweep(true);
    collect();
  }
}

ClusterPool* UpstreamWorker::find(std::string_view name) {
  auto it = pools_.find(name);
  return it == pools_.end() ? nullptr : it->second.get();
}

void UpstreamWorker::sweep() {
  for (auto& [name, pool] : pools_) {
    pool->refreshIfStale();
    pool->sweep(pool->users == 0);
  }
  collect();
}

void UpstreamWorker::collect() {
  for (auto it = pools_.begin(); it != pools_.end();) {
    ClusterPool& p = *it->second;
    if (p.users == 0 && p.sessionCount() == 0 && p.connectionCount() == 0) {
      struct Holder : DeferredDeletable {
        std::unique_ptr<ClusterPool> pool;
      };
      auto holder = std::make_unique<Holder>();
      holder->pool = std::move(it->second);
      it = pools_.erase(it);
      dispatcher_->deferredDelete(std::move(holder));
    } else {
      ++it;
    }
  }
}

}  // namespace upstream
}  // namespace gw
