#include "filters/upstream/upstream_admin_view.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/sdk/cluster_manager.h"
#include "core/sdk/stats.h"
#include "filters/upstream/upstream_stats.h"

namespace gw {
namespace upstream {
namespace {

// The value of label `key`, or "" when absent.
std::string_view labelOf(const stats::Labels& labels, std::string_view key) {
  for (const auto& [k, v] : labels)
    if (k == key) return v;
  return {};
}

// The sum of metric `family` over the series whose labels include every
// (key, value) of `match`.
double sumWhere(const char* family,
                std::initializer_list<std::pair<std::string_view, std::string_view>> match) {
  double sum = 0;
  stats::StatsRegistry::get().visit(family, [&](const stats::Labels& l, double v) {
    for (const auto& [k, want] : match)
      if (labelOf(l, k) != want) return;
    sum += v;
  });
  return sum;
}

uint64_t count(double v) { return v > 0 ? static_cast<uint64_t>(v) : 0; }

}  // namespace

size_t UpstreamAdminView::poolCapacity(const ClusterConfig& c, size_t workers) {
  return std::max<size_t>(c.max_connections_per_service, workers);
}

void UpstreamAdminView::onScrape(const AdminContext& ctx) const {
  // Utilization is active / capacity, computed by Prometheus (the recording
  // rule game_gateway:upstream_pool_utilization:ratio in docs/ops/alerts.yaml).
  auto& reg = stats::StatsRegistry::get();
  for (const auto& c : ctx.clusters) {
    for (const auto& h : currentHosts(c)) {
      reg.gauge(kPoolCapacityMetric, kPoolCapacityHelp, {{"cluster", c.name}, {"host", h.name}})
          .set(static_cast<int64_t>(poolCapacity(c, ctx.workers)));
    }
  }
  // Series of clusters and hosts a reload removed leave the exposition.
  for (const char* family : kClusterScopedMetrics)
    reg.remove(family, [&](const stats::Labels& l) { return removedByReload(l, ctx.clusters); });
}

bool UpstreamAdminView::removedByReload(const stats::Labels& labels,
                                        const std::vector<ClusterConfig>& clusters) {
  const ClusterConfig* c = findCluster(clusters, labelOf(labels, "cluster"));
  if (c == nullptr) return true;
  std::string_view host = labelOf(labels, "host");
  return !host.empty() && !isCurrentHost(*c, host);
}

void UpstreamAdminView::describeCluster(const AdminContext&, const ClusterConfig& c,
                                        rapidjson::Value& out, JsonAllocator& alloc) const {
  std::string_view name = c.name;
  rapidjson::Value traffic(rapidjson::kObjectType);
  traffic.AddMember("frames_in", count(sumWhere(kFramesMetric, {{"cluster", name}, {"direction", "in"}})),
                    alloc);
  traffic.AddMember("frames_out",
                    count(sumWhere(kFramesMetric, {{"cluster", name}, {"direction", "out"}})), alloc);
  traffic.AddMember("bytes_in", count(sumWhere(kBytesMetric, {{"cluster", name}, {"direction", "in"}})),
                    alloc);
  traffic.AddMember("bytes_out",
                    count(sumWhere(kBytesMetric, {{"cluster", name}, {"direction", "out"}})), alloc);
  traffic.AddMember("requests_timed", count(sumWhere(kLatencyMetric, {{"cluster", name}})), alloc);
  out.AddMember("traffic", traffic, alloc);
}

void UpstreamAdminView::describeHost(const AdminContext& ctx, const ClusterConfig& c,
                                     const Address& host, rapidjson::Value& out,
                                     JsonAllocator& alloc) const {
  std::string address = host.toString();
  std::string_view cluster = c.name;
  double active =
      sumWhere(kPoolConnectionsMetric, {{"cluster", cluster}, {"host", address}, {"state", "active"}});
  double idle =
      sumWhere(kPoolConnectionsMetric, {{"cluster", cluster}, {"host", address}, {"state", "idle"}});
  double capacity = static_cast<double>(poolCapacity(c, ctx.workers));
  rapidjson::Value pool(rapidjson::kObjectType);
  pool.AddMember("active", static_cast<int64_t>(active), alloc);
  pool.AddMember("idle", static_cast<int64_t>(idle), alloc);
  pool.AddMember("capacity", static_cast<int64_t>(capacity), alloc);
  // Three decimals.
  pool.AddMember("utilization",
                 static_cast<double>(static_cast<int64_t>(active / capacity * 1000 + 0.5)) / 1000,
                 alloc);
  out.AddMember("pool", pool, alloc);
  out.AddMember("connect_failures",
                count(sumWhere(kConnectFailuresMetric, {{"cluster", cluster}, {"host", address}})),
                alloc);
  out.AddMember("connections_lost",
                count(sumWhere(kConnectionsLostMetric, {{"cluster", cluster}, {"host", address}})),
                alloc);
  // The host's state in the cluster manager (ready when it has no set for
  // the cluster: nothing set a state).
  HostState state = HostState::kReady;
  if (auto set = ClusterManager::process().hosts(cluster)) {
    if (const ClusterHost* h = set->find(address)) state = h->state;
  }
  out.AddMember("state", jsonString(hostStateName(state), alloc), alloc);
}

}  // namespace upstream
}  // namespace gw
