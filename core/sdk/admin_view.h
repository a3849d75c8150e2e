// core/sdk/admin_view.h — what a filter shows on the admin API.
//
// Defines AdminContext (what the admin API knows when it asks) and
// AdminView: a filter type's contribution to the admin pages. The runtime
// never knows a filter's metric names; it asks every registered filter type
// for its view (FilterConfigFactory::adminView()) and lets it add fields to
// the JSON objects it serves. Today: the cluster and host objects of
// GET /clusters, and metrics computed at scrape time (GET /metrics).
// Called on the main thread only; an implementation reads shared,
// thread-safe state (metrics, its own registries), never a worker's.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/cluster.h"

namespace gw {

// What the admin API passes to every view.
struct AdminContext {
  // The clusters of the config in force.
  const std::vector<ClusterConfig>& clusters;
  // Worker threads.
  size_t workers;
};

using JsonAllocator = rapidjson::Document::AllocatorType;

class AdminView {
 public:
  virtual ~AdminView() = default;
  // Before /metrics serializes: update gauges derived from config and other
  // metrics (e.g. pool capacity per host). Default: nothing.
  virtual void onScrape(const AdminContext& /*ctx*/) const {}
  // Adds members to cluster `c`'s object of GET /clusters (`out` is a JSON
  // object; allocate with `alloc`). Default: nothing.
  virtual void describeCluster(const AdminContext& /*ctx*/, const ClusterConfig& /*c*/,
                               rapidjson::Value& /*out*/, JsonAllocator& /*alloc*/) const {}
  // Adds members to host `host` of cluster `c` in GET /clusters. Default:
  // nothing.
  virtual void describeHost(const AdminContext& /*ctx*/, const ClusterConfig& /*c*/,
                            const Address& /*host*/, rapidjson::Value& /*out*/,
                            JsonAllocator& /*alloc*/) const {}
};

}  // namespace gw
