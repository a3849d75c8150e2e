// filters/breaker/breaker_admin_view.h — what the `breaker` filter shows on
// the admin API.
//
// Defines BreakerAdminView, the breaker's AdminView (core/sdk/admin_view.h),
// returned by the breaker's FilterConfigFactory::adminView(). On GET
// /clusters it adds the breaker state read back from the breaker's own
// state gauge (kStateMetric, breaker_stats.h; 0 closed, 1 open, 2
// half-open), so the admin API needs no knowledge of the breaker:
//   cluster object: "breaker": "closed" | "open" | "half_open", only when
//     the cluster has a cluster-level breaker (host label "*");
//   host object:    "breaker": the host's own state, else the cluster's,
//     else "none" (no breaker configured for the cluster).
// On GET /metrics (onScrape) it deletes every breaker series of a cluster or
// host that is not in the config in force (a reload removed it;
// StatsRegistry::remove: a breaker still held by an older generation keeps
// updating it unseen, and it comes back if a reload adds the host again).
// Stateless; reads the process-wide StatsRegistry (thread-safe).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/sdk/admin_view.h"
#include "core/sdk/stats.h"

namespace gw {
namespace breaker {

class BreakerAdminView : public AdminView {
 public:
  void onScrape(const AdminContext& ctx) const override;
  void describeCluster(const AdminContext& ctx, const ClusterConfig& c, rapidjson::Value& out,
                       JsonAllocator& alloc) const override;
  void describeHost(const AdminContext& ctx, const ClusterConfig& c, const Address& host,
                    rapidjson::Value& out, JsonAllocator& alloc) const override;

  // The state name of the breaker of `cluster` and `host` ("*": the cluster
  // as a whole) from its gauge: "closed", "open", "half_open" ("unknown"
  // for any other value), or nullopt when the gauge does not exist.
  static std::optional<std::string> stateOf(const std::string& cluster, const std::string& host);
  // True when the series `labels` belong to a cluster not in `clusters`, or
  // to a host its cluster no longer has (host "*", the cluster's own
  // breaker, goes with the cluster).
  static bool removedByReload(const stats::Labels& labels,
                              const std::vector<ClusterConfig>& clusters);
};

}  // namespace breaker
}  // namespace gw
