// core/sdk/admin_view.h — what a filter shows on the admin API.
//
// Defines AdminContext (what the admin API knows when it asks), jsonString()
// and jsonDuration() (values for views and FilterConfig::describe()), and
// AdminView: a filter type's contribution to the admin pages. The runtime
// never knows a filter's metric names; it asks every registered filter type
// for its view (FilterConfigFactory::adminView()) and lets it add fields to
// the JSON objects it serves. Today: the cluster and host objects of
// GET /clusters, and metrics computed at scrape time (GET /metrics).
// Called on the main thread only; an implementation reads shared,
// thread-safe state (metrics, its own registries), never a worker's.
#pragma once

#include <rapidjson/document.h>

#include <chrono>
#include <cstddef>
#include <string_view>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/cluster.h"
#include "core/sdk/parse_context.h"

namespace gw {

// What the admin API passes to every view.
struct AdminContext {
  // The clusters of the config in force.
  const std::vector<ClusterConfig>& clusters;
  // Worker threads.
  size_t workers;
};

using JsonAllocator = rapidjson::Document::AllocatorType;

// A JSON string holding a copy of `s` (for describe() and views).
inline rapidjson::Value jsonString(std::string_view s, JsonAllocator& alloc) {
  return rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), alloc);
}
// A duration as config writes it ("30s", "5m": formatDuration()).
inline rapidjson::Value jsonDuration(std::chrono::milliseconds d, JsonAllocator& alloc) {
  return jsonString(formatDuration(d), alloc);
}

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
