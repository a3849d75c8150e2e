#include "filters/breaker/breaker_admin_view.h"

#include "core/sdk/cluster_manager.h"
#include "core/sdk/stats.h"
#include "filters/breaker/breaker_state.h"
#include "filters/breaker/breaker_stats.h"

namespace gw {
namespace breaker {

namespace {

// The value of label `key`, or "" when absent.
std::string_view labelOf(const stats::Labels& labels, std::string_view key) {
  for (const auto& [k, v] : labels)
    if (k == key) return v;
  return "";
}

std::string stateName(double v) {
  if (v == 0) return std::string(circuitStateName(CircuitState::kClosed));
  if (v == 1) return std::string(circuitStateName(CircuitState::kOpen));
  if (v == 2) return std::string(circuitStateName(CircuitState::kHalfOpen));
  return "unknown";
}

}  // namespace

void BreakerAdminView::onScrape(const AdminContext& ctx) const {
  auto& reg = stats::StatsRegistry::get();
  for (const char* family : kClusterScopedMetrics)
    reg.remove(family, [&](const stats::Labels& l) { return removedByReload(l, ctx.clusters); });
}

bool BreakerAdminView::removedByReload(const stats::Labels& labels,
                                       const std::vector<ClusterConfig>& clusters) {
  const ClusterConfig* c = findCluster(clusters, labelOf(labels, "cluster"));
  if (c == nullptr) return true;
  std::string_view host = labelOf(labels, "host");
  if (host.empty()) host = labelOf(labels, "backend");  // the Go gateway's series
  return !host.empty() && host != kClusterHost && !isCurrentHost(*c, host);
}

std::optional<std::string> BreakerAdminView::stateOf(const std::string& cluster,
                                                     const std::string& host) {
  std::optional<std::string> state;
  stats::StatsRegistry::get().visit(kStateMetric, [&](const stats::Labels& l, double v) {
    if (labelOf(l, "cluster") != cluster || !labelOf(l, "backend").empty()) return;
    std::string_view h = labelOf(l, "host");
    // A gauge without a host label counts as the cluster's own.
    if (h == host || (host == kClusterHost && h.empty())) state = stateName(v);
  });
  return state;
}

void BreakerAdminView::describeCluster(const AdminContext&, const ClusterConfig& c,
                                       rapidjson::Value& out, JsonAllocator& alloc) const {
  if (auto s = stateOf(c.name, kClusterHost))
    out.AddMember("breaker", jsonString(*s, alloc), alloc);
}

void BreakerAdminView::describeHost(const AdminContext&, const ClusterConfig& c,
                                    const Address& host, rapidjson::Value& out,
                                    JsonAllocator& alloc) const {
  std::optional<std::string> s = stateOf(c.name, host.toString());
  if (!s) s = stateOf(c.name, kClusterHost);
  out.AddMember("breaker", rapidjson::Value(s ? s->c_str() : "none", alloc), alloc);
}

}  // namespace breaker
}  // namespace gw
