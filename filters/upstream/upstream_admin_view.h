// filters/upstream/upstream_admin_view.h — what `upstream` adds to the admin
// API.
//
// Defines UpstreamAdminView (core/sdk/admin_view.h), returned by upstream's
// registered filter type. Everything it shows is read back from upstream's
// own metrics (upstream_stats.h), which every worker updates:
//  - GET /clusters, each cluster: "traffic" {frames_in, frames_out,
//    bytes_in, bytes_out, requests_timed} (all workers, since start);
//  - each host: "pool" {active, idle, capacity, utilization},
//    "connect_failures", "connections_lost", and "state" (ready | drain |
//    maint | unhealthy, from the cluster manager);
//  - GET /metrics: game_gateway_upstream_pool_capacity per host, set from
//    the config in force; and every upstream series of a cluster or host
//    that is no longer in the config in force (a reload removed it) is
//    deleted (StatsRegistry::remove; it comes back if a reload adds the
//    host again).
// Main thread only (the admin API's).
#pragma once

#include <cstddef>
#include <vector>

#include "core/sdk/admin_view.h"
#include "core/sdk/cluster.h"
#include "core/sdk/stats.h"

namespace gw {
namespace upstream {

class UpstreamAdminView : public AdminView {
 public:
  void onScrape(const AdminContext& ctx) const override;
  void describeCluster(const AdminContext& ctx, const ClusterConfig& c, rapidjson::Value& out,
                       JsonAllocator& alloc) const override;
  void describeHost(const AdminContext& ctx, const ClusterConfig& c, const Address& host,
                    rapidjson::Value& out, JsonAllocator& alloc) const override;

  // Backend connections the gateway may open to one host of `c`: each
  // worker may open max(1, its share of max_connections_per_service), so
  // the process holds at most max(max_connections_per_service, workers).
  static size_t poolCapacity(const ClusterConfig& c, size_t workers);
  // True when the series `labels` belong to a cluster not in `clusters`, or
  // to a host (label "host") its cluster no longer has.
  // Sets game_gateway_backend_health_status of every host of `c` from the
  // cluster manager's states (1 ready or drain, 0 maint or unhealthy).
  static void setHealthGauges(const ClusterConfig& c);
  static bool removedByReload(const stats::Labels& labels,
                              const std::vector<ClusterConfig>& clusters);
};

}  // namespace upstream
}  // namespace gw
