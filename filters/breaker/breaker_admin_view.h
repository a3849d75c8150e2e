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
// Stateless; reads the process-wide StatsRegistry (thread-safe).
#pragma once

#include <optional>
#include <string>

#include "core/sdk/admin_view.h"

namespace gw {
namespace breaker {

class BreakerAdminView : public AdminView {
 public:
  void describeCluster(const AdminContext& ctx, const ClusterConfig& c, rapidjson::Value& out,
                       JsonAllocator& alloc) const override;
  void describeHost(const AdminContext& ctx, const ClusterConfig& c, const Address& host,
                    rapidjson::Value& out, JsonAllocator& alloc) const override;

  // The state name of the breaker of `cluster` and `host` ("*": the cluster
  // as a whole) from its gauge: "closed", "open", "half_open" ("unknown"
  // for any other value), or nullopt when the gauge does not exist.
  static std::optional<std::string> stateOf(const std::string& cluster, const std::string& host);
};

}  // namespace breaker
}  // namespace gw
