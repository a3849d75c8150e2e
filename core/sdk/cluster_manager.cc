#include "core/sdk/cluster_manager.h"

#include "core/sdk/dispatcher.h"
#include "core/sdk/stats.h"

namespace gw {
namespace {

constexpr const char* kHostStateMetric = "game_gateway_cluster_host_state";
constexpr const char* kHostStateHelp =
    "Host state from the cluster manager: 1 for the state a host is in, 0 for the others.";
constexpr HostState kAllStates[] = {HostState::kReady, HostState::kDrain, HostState::kMaint,
                                    HostState::kUnhealthy};
constexpr const char* kStaticSource = "static";

std::string labelOf(const stats::Labels& labels, std::string_view key) {
  for (const auto& [k, v] : labels)
    if (k == key) return v;
  return {};
}

}  // namespace

std::string_view hostStateName(HostState s) {
  switch (s) {
    case HostState::kReady: return "ready";
    case HostState::kDrain: return "drain";
    case HostState::kMaint: return "maint";
    case HostState::kUnhealthy: return "unhealthy";
  }
  return "ready";
}

std::optional<HostState> parseHostState(std::string_view name) {
  for (HostState s : kAllStates)
    if (hostStateName(s) == name) return s;
  return std::nullopt;
}

const ClusterHost* HostSet::find(std::string_view name) const {
  for (const auto& h : hosts)
    if (h.name == name) return &h;
  return nullptr;
}

ClusterManager::ClusterManager() = default;
ClusterManager::~ClusterManager() = default;

ClusterManager& ClusterManager::process() {
  static ClusterManager* manager = new ClusterManager();  // never destroyed: workers may outlive exit paths
  return *manager;
}

void ClusterManager::setStaticClusters(const std::vector<ClusterConfig>& clusters) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> gone;
  for (const auto& [name, set] : sets_)
    if (findCluster(clusters, name) == nullptr) gone.push_back(name);
  for (const auto& name : gone) removeLocked(name);
  for (const auto& c : clusters) {
    auto it = sets_.find(c.name);
    if (it != sets_.end() && it->second->source != kStaticSource) continue;  // a source owns it
    std::vector<ClusterHost> hosts;
    for (const auto& a : c.hosts) hosts.push_back(ClusterHost{a, a.toString()});
    publishLocked(c.name, kStaticSource, std::move(hosts));
  }
  changedLocked();
}

void ClusterManager::replaceHosts(const std::string& cluster, const std::string& source,
                                  std::vector<ClusterHost> hosts) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& h : hosts)
    if (h.name.empty()) h.name = h.address.toString();
  publishLocked(cluster, source, std::move(hosts));
  changedLocked();
}

bool ClusterManager::setHostState(std::string_view cluster, std::string_view host,
                                  HostState state, std::string* error) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sets_.find(cluster);
  if (it == sets_.end()) {
    *error = "no cluster '" + std::string(cluster) + "'";
    return false;
  }
  const ClusterHost* h = it->second->find(host);
  if (h == nullptr) {
    *error = "cluster '" + std::string(cluster) + "' has no host '" + std::string(host) + "'";
    return false;
  }
  if (h->state == state) return true;
  auto next = std::make_shared<HostSet>(*it->second);
  for (auto& nh : next->hosts)
    if (nh.name == host) nh.state = state;
  next->version = version_.load(std::memory_order_relaxed) + 1;
  setGaugesLocked(*next);
  it->second = std::move(next);
  changedLocked();
  return true;
}

void ClusterManager::releaseHosts(const std::string& cluster, const std::string& source) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sets_.find(cluster);
  if (it == sets_.end() || it->second->source != source) return;
  auto next = std::make_shared<HostSet>(*it->second);
  next->source = kStaticSource;
  next->version = version_.load(std::memory_order_relaxed) + 1;
  it->second = std::move(next);
  changedLocked();
}

void ClusterManager::setRefreshHandler(std::function<void(const std::string&)> handler) {
  std::lock_guard<std::mutex> lock(mu_);
  refresh_ = handler ? std::make_shared<const std::function<void(const std::string&)>>(
                           std::move(handler))
                     : nullptr;
}

void ClusterManager::requestRefresh(const std::string& cluster) {
  std::shared_ptr<const std::function<void(const std::string&)>> handler;
  {
    std::lock_guard<std::mutex> lock(mu_);
    handler = refresh_;
  }
  if (handler) (*handler)(cluster);
}

void ClusterManager::setNamesHandler(std::function<void(const ClusterConfig&)> handler) {
  std::lock_guard<std::mutex> lock(mu_);
  names_ = handler ? std::make_shared<const std::function<void(const ClusterConfig&)>>(
                         std::move(handler))
                   : nullptr;
}

void ClusterManager::resolveNames(const ClusterConfig& cluster) {
  std::shared_ptr<const std::function<void(const ClusterConfig&)>> handler;
  {
    std::lock_guard<std::mutex> lock(mu_);
    handler = names_;
  }
  if (handler) (*handler)(cluster);
}

void ClusterManager::publishLocked(const std::string& cluster, const std::string& source,
                                   std::vector<ClusterHost> hosts) {
  auto next = std::make_shared<HostSet>();
  next->cluster = cluster;
  next->source = source;
  next->version = version_.load(std::memory_order_relaxed) + 1;
  auto it = sets_.find(cluster);
  if (it != sets_.end()) {
    for (auto& h : hosts)
      if (const ClusterHost* old = it->second->find(h.name)) h.state = old->state;
    // Series of hosts that left.
    std::vector<std::string> left;
    for (const auto& old : it->second->hosts) {
      bool kept = false;
      for (const auto& h : hosts) kept = kept || h.name == old.name;
      if (!kept) left.push_back(old.name);
    }
    if (!left.empty()) {
      stats::StatsRegistry::get().remove(kHostStateMetric, [&](const stats::Labels& l) {
        if (labelOf(l, "cluster") != cluster) return false;
        std::string host = labelOf(l, "host");
        for (const auto& name : left)
          if (name == host) return true;
        return false;
      });
    }
  }
  next->hosts = std::move(hosts);
  setGaugesLocked(*next);
  sets_[cluster] = std::move(next);
}

void ClusterManager::removeLocked(const std::string& cluster) {
  sets_.erase(cluster);
  stats::StatsRegistry::get().remove(
      kHostStateMetric, [&](const stats::Labels& l) { return labelOf(l, "cluster") == cluster; });
}

void ClusterManager::setGaugesLocked(const HostSet& set) {
  auto& reg = stats::StatsRegistry::get();
  for (const auto& h : set.hosts) {
    for (HostState s : kAllStates) {
      reg.gauge(kHostStateMetric, kHostStateHelp,
                {{"cluster", set.cluster}, {"host", h.name}, {"state", std::string(hostStateName(s))}})
          .set(h.state == s ? 1 : 0);
    }
  }
}

void ClusterManager::changedLocked() {
  version_.fetch_add(1, std::memory_order_acq_rel);
  for (const auto& [id, sub] : subscribers_) {
    std::weak_ptr<std::function<void()>> weak = sub.callback;
    sub.dispatcher->post([weak] {
      if (auto cb = weak.lock()) (*cb)();
    });
  }
}

std::shared_ptr<const HostSet> ClusterManager::hosts(std::string_view cluster) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sets_.find(cluster);
  return it == sets_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const HostSet>> ClusterManager::all() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const HostSet>> out;
  for (const auto& [name, set] : sets_) out.push_back(set);
  return out;
}

uint64_t ClusterManager::subscribe(Dispatcher& dispatcher, std::function<void()> on_change) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t id = next_subscriber_++;
  subscribers_[id] =
      Subscriber{&dispatcher, std::make_shared<std::function<void()>>(std::move(on_change))};
  return id;
}

void ClusterManager::unsubscribe(uint64_t id) {
  std::shared_ptr<std::function<void()>> dropped;  // destroyed outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  dropped = std::move(it->second.callback);
  subscribers_.erase(it);
}

std::vector<ClusterHost> currentHosts(const ClusterConfig& c) {
  if (auto set = ClusterManager::process().hosts(c.name)) return set->hosts;
  std::vector<ClusterHost> out;
  for (const auto& a : c.hosts) out.push_back(ClusterHost{a, a.toString()});
  return out;
}

bool isCurrentHost(const ClusterConfig& c, std::string_view address) {
  if (hasHost(c, address)) return true;
  auto set = ClusterManager::process().hosts(c.name);
  return set != nullptr && set->find(address) != nullptr;
}

ClusterHosts::ClusterHosts(ClusterManager& manager, std::string cluster,
                           std::vector<Address> configured)
    : manager_(&manager), cluster_(std::move(cluster)), configured_(std::move(configured)) {
  refresh();
}

void ClusterHosts::refresh() {
  seen_ = manager_->version();
  set_ = manager_->hosts(cluster_);
  if (set_ == nullptr) {
    auto own = std::make_shared<HostSet>();
    own->cluster = cluster_;
    own->source = kStaticSource;
    for (const auto& a : configured_) own->hosts.push_back(ClusterHost{a, a.toString()});
    set_ = std::move(own);
  }
}

void ClusterHosts::setConfigured(std::vector<Address> configured) {
  configured_ = std::move(configured);
  seen_ = 0;  // versions start at 1: the next get() refreshes
}

}  // namespace gw
