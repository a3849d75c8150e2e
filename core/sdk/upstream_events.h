// core/sdk/upstream_events.h — what the upstream side tells the rest of a worker.
//
// Defines the seams between the terminal `upstream` filter and filters that
// watch it without being called by it (`breaker`):
//  - UpstreamEvent / UpstreamEventBus: outcomes of backend connections and
//    frames, published per worker (in WorkerServices) by `upstream`.
//  - RouteResolver: published by `upstream` in each connection's Slots, so a
//    filter before it can learn which cluster a frame will go to.
//  - HostAvailability: published in WorkerServices by a filter that ejects
//    hosts (`breaker`); `upstream`'s load balancer skips hosts it rejects.
// All per worker thread; no locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/wire.h"

namespace gw {

struct UpstreamEvent {
  enum class Type {
    kConnectFailed,   // connect() to a host failed or timed out
    kConnected,       // a backend connection was established
    kConnectionLost,  // an established backend connection closed with sessions on it
    kFrameSent,       // a client frame was written to a backend connection
    kFrameReceived,   // a backend frame for a session arrived
    kReplyTimeout,    // expect_reply cluster: no backend frame for a session in time
  };
  Type type;
  const std::string* cluster = nullptr;
  size_t host_index = 0;
  const Address* host = nullptr;
  uint64_t session = 0;
};

class UpstreamObserver {
 public:
  virtual ~UpstreamObserver() = default;
  virtual void onUpstreamEvent(const UpstreamEvent& event) = 0;
};

// Per worker. Observers must unsubscribe before they are destroyed.
class UpstreamEventBus {
 public:
  void subscribe(UpstreamObserver* o) { observers_.push_back(o); }
  void unsubscribe(UpstreamObserver* o) {
    for (size_t i = 0; i < observers_.size(); ++i) {
      if (observers_[i] == o) {
        observers_.erase(observers_.begin() + static_cast<long>(i));
        return;
      }
    }
  }
  bool empty() const { return observers_.empty(); }
  void publish(const UpstreamEvent& e) const {
    for (UpstreamObserver* o : observers_) o->onUpstreamEvent(e);
  }

 private:
  std::vector<UpstreamObserver*> observers_;
};

// Which cluster a client frame routes to.
class RouteResolver {
 public:
  virtual ~RouteResolver() = default;
  // The cluster's name for this header, or nullptr when no route matches.
  virtual const std::string* clusterFor(const wire::ClientHeader& header) const = 0;
};

// Lets a filter eject hosts from load balancing.
class HostAvailability {
 public:
  virtual ~HostAvailability() = default;
  // False if `host_index` of `cluster` must not get new sessions now.
  virtual bool available(const std::string& cluster, size_t host_index) = 0;
};

// WorkerServices slot holding the current HostAvailability (nullptr = all up).
struct HostAvailabilitySlot {
  HostAvailability* impl = nullptr;
};

}  // namespace gw
