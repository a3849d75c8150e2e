// core/sdk/worker_services.h — per-worker objects shared by filters.
//
// Defines WorkerServices: one instance per worker thread, holding objects
// keyed by type that several filters of that worker use without including
// each other (e.g. the UpstreamEventBus that `upstream` publishes on and
// `breaker` listens to). Used only on its worker's thread; no locks.
#pragma once

#include <memory>
#include <typeindex>
#include <unordered_map>

namespace gw {

class WorkerServices {
 public:
  // Returns this worker's T, default-constructing it on first use.
  template <class T>
  T& get() {
    auto& slot = objects_[std::type_index(typeid(T))];
    if (!slot) slot = std::shared_ptr<void>(new T(), [](void* p) { delete static_cast<T*>(p); });
    return *static_cast<T*>(slot.get());
  }
  // Returns this worker's T if something created it, else nullptr.
  template <class T>
  T* find() {
    auto it = objects_.find(std::type_index(typeid(T)));
    return it == objects_.end() ? nullptr : static_cast<T*>(it->second.get());
  }

 private:
  std::unordered_map<std::type_index, std::shared_ptr<void>> objects_;
};

}  // namespace gw
