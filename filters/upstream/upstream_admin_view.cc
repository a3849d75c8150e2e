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
    setHealthGauges(c);
  }
  // Series of clusters and hosts a reload removed leave the exposition;
  // those of clusters a dynamic source keeps in the cluster manager (Go-format
  // rules' "go:ip:port") stay while the manager has them.
  ClusterManager& manager = ClusterManager::process();
  auto dynamic = [&](const stats::Labels& l) {
    auto set = manager.hosts(labelOf(l, "cluster"));
    if (set == nullptr || set->source == "static") return false;
    std::string_view host = labelOf(l, "host");
    return host.empty() || set->find(host) != nullptr;
  };
  for (const char* family : kClusterScopedMetrics) {
    reg.remove(family, [&](const stats::Labels& l) {
      return removedByReload(l, ctx.clusters) && !dynamic(l);
    });
  }
}

void UpstreamAdminView::setHealthGauges(const ClusterConfig& c) {
  auto& reg = stats::StatsRegistry::get();
  auto set = [&](const std::string& host, HostState state) {
    bool healthy = state == HostState::kReady || state == HostState::kDrain;
    reg.gauge(kGoBackendHealthMetric, kGoBackendHealthHelp, {{"cluster", c.name}, {"backend", host}})
        .set(healthy ? 1 : 0);
  };
  if (auto hosts = ClusterManager::process().hosts(c.name)) {
    for (const ClusterHost& h : hosts->hosts) set(h.name, h.state);
  } else {
    for (const auto& h : c.hosts) set(h.toString(), HostState::kReady);
  }
}

bool UpstreamAdminView::removedByReload(const stats::Labels& labels,
                                        const std::vector<ClusterConfig>& clusters) {
  const ClusterConfig* c = findCluster(clusters, labelOf(labels, "cluster"));
  if (c == nullptr) return true;
  std::string_view host = labelOf(labels, "host");
  if (host.empty()) host = labelOf(labels, "backend");  // the Go gateway's families
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
  if (c.compat.enabled) {
    rapidjson::Value compat(rapidjson::kObjectType);
    compat.AddMember("routing",
                     rapidjson::StringRef(c.compat.routing == CompatConfig::Routing::kPerFrame
                                              ? "per_frame"
                                              : "per_connection"),
                     alloc);
    compat.AddMember("connection_per_session", c.compat.connection_per_session, alloc);
    compat.AddMember("trace_propagation", c.compat.trace_propagation, alloc);
    out.AddMember("compat", compat, alloc);
  }
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
