// core/sdk/cluster_manager.h — the hosts of every cluster, as they change at
// runtime, and their states.
//
// Defines HostState (ready | drain | maint | unhealthy), ClusterHost (one
// host of a cluster), HostSet (an immutable, versioned snapshot of one
// cluster's hosts), ClusterManager (the process-wide owner of every
// cluster's current HostSet) and ClusterHosts (one worker's lock-free handle
// on one cluster's set).
//
// Model (docs/architecture.md, "Cluster manager"):
//  - Sources. The config is the static source: the runtime calls
//    setStaticClusters() at start and after every accepted reload (a host
//    that stays keeps its state; clusters the config no longer has are
//    removed). Other sources (DNS, Consul) call replaceHosts() for a cluster
//    they own; from then on a reload leaves that cluster's hosts to them,
//    until the source releaseHosts() it. A user that finds a host failing
//    (a connect failure) calls requestRefresh(): the source that set the
//    hosts (DNS) may look again sooner than its interval. A user that makes
//    a cluster at run time whose hosts are DNS names (the upstream filter's
//    Go-format rules) calls resolveNames(): the DNS source resolves and
//    publishes it like a config cluster with names.
//    Operations (the admin API) call setHostState().
//  - States. ready takes new sessions. drain takes none, but sessions
//    already on the host (pinned, or affine through a resumed session) stay.
//    maint takes none, and users move their live sessions elsewhere.
//    unhealthy is skipped like a host in reconnect backoff (set by health
//    checks). Load balancers (upstream, tcp_proxy) pick only ready hosts.
//  - Threading. Every ClusterManager member is thread-safe (one mutex,
//    taken by writers and by refreshes only). Every change bumps version(),
//    an atomic; a worker's ClusterHosts compares it with the version it last
//    read (one acquire load, no lock) and re-reads the set only when it
//    moved. Users that must act on a change without waiting for traffic
//    (move a maint host's sessions, close a removed host's idle
//    connections) subscribe(): the manager posts their callback to their
//    dispatcher after every change.
//  - Metrics: game_gateway_cluster_host_state{cluster, host, state} is 1
//    for a host's current state and 0 for the others; a removed host's or
//    cluster's series are deleted.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/cluster.h"

namespace gw {

class Dispatcher;

enum class HostState : uint8_t { kReady, kDrain, kMaint, kUnhealthy };

// "ready", "drain", "maint", "unhealthy".
std::string_view hostStateName(HostState s);
// The state named `name` (as hostStateName writes it), or nullopt.
std::optional<HostState> parseHostState(std::string_view name);

// One host of a cluster.
struct ClusterHost {
  Address address;
  std::string name;  // address.toString(): "127.0.0.1:9000", as metrics and the admin API show it
  HostState state = HostState::kReady;
  // Relative share of new sessions a source asks for (default 1). Carried
  // for sources; today's load balancers treat every ready host alike.
  uint32_t weight = 1;
};

// One cluster's hosts at one version. Immutable; shared by every reader.
struct HostSet {
  std::string cluster;
  // The source that set the hosts: "static" (the config) or a dynamic
  // source's name ("dns", "consul").
  std::string source;
  uint64_t version = 0;  // ClusterManager::version() when made; 0: not from a manager
  std::vector<ClusterHost> hosts;

  // The host named `name`, or nullptr.
  const ClusterHost* find(std::string_view name) const;
};

class ClusterManager {
 public:
  ClusterManager();
  ~ClusterManager();
  ClusterManager(const ClusterManager&) = delete;
  ClusterManager& operator=(const ClusterManager&) = delete;

  // The process-wide manager (what the runtime feeds and filters read).
  static ClusterManager& process();

  // The static source: sets the hosts of every cluster of `clusters` (in
  // config order) except those a dynamic source owns, keeping the state of
  // every host that stays; removes the clusters not in `clusters`.
  void setStaticClusters(const std::vector<ClusterConfig>& clusters);
  // A dynamic source (`source`, e.g. "dns") replaces `cluster`'s hosts
  // (creating the cluster if needed) and owns them from now on. A host that
  // stays keeps its state; `hosts`' states apply only to new hosts. Empty
  // names are filled from the addresses.
  void replaceHosts(const std::string& cluster, const std::string& source,
                    std::vector<ClusterHost> hosts);
  // Sets host `host` ("ip:port") of `cluster` to `state`. Returns false
  // with *error set (naming the cluster or host) when there is no such
  // cluster or host. Setting the state it has is a success and no change.
  bool setHostState(std::string_view cluster, std::string_view host, HostState state,
                    std::string* error);
  // `source` gives `cluster` back to the static source: its hosts stay as
  // they are until the next setStaticClusters() replaces them. A no-op
  // when `source` does not own the cluster.
  void releaseHosts(const std::string& cluster, const std::string& source);

  // The dynamic source's hook for requestRefresh(); `handler` must be
  // thread-safe and cheap (it runs on the caller's thread: post work
  // elsewhere). An empty function removes it.
  void setRefreshHandler(std::function<void(const std::string& cluster)> handler);
  // Asks the source of `cluster`'s hosts to look them up again soon (a
  // connect to one of them failed). Thread-safe; the source rate-limits.
  void requestRefresh(const std::string& cluster);

  // The DNS source's hook for resolveNames(); same rules as
  // setRefreshHandler(). An empty function removes it.
  void setNamesHandler(std::function<void(const ClusterConfig& cluster)> handler);
  // Asks the DNS source to resolve `cluster.host_names` (a cluster made at
  // run time, not in the config) and replaceHosts() it with every address
  // (plus `cluster.hosts`) as for a config cluster with names; until then
  // the manager has no set for it. Asking again for a cluster it resolves
  // is cheap (it republishes its last answer when the set was removed, as a
  // reload removes it: the asker's next generation asks again). One not
  // asked for between two reloads is forgotten at the second. Thread-safe;
  // a no-op without a source (no runtime).
  void resolveNames(const ClusterConfig& cluster);

  // The current set of `cluster`, or nullptr when the manager has none.
  std::shared_ptr<const HostSet> hosts(std::string_view cluster) const;
  // Every cluster's current set, by name.
  std::vector<std::shared_ptr<const HostSet>> all() const;
  // Bumped by every change; readers compare it to skip re-reading.
  uint64_t version() const { return version_.load(std::memory_order_acquire); }

  // Posts `on_change` to `dispatcher` after every change, until
  // unsubscribe(id) (returns id). A callback already posted when its
  // subscriber unsubscribes does not run.
  uint64_t subscribe(Dispatcher& dispatcher, std::function<void()> on_change);
  void unsubscribe(uint64_t id);

 private:
  struct Subscriber {
    Dispatcher* dispatcher;
    std::shared_ptr<std::function<void()>> callback;  // the posted task holds a weak_ptr
  };
  // Publishes `next` as `cluster`'s set (mu_ held), keeping kept hosts'
  // states, and updates the state gauges.
  void publishLocked(const std::string& cluster, const std::string& source,
                     std::vector<ClusterHost> hosts);
  void removeLocked(const std::string& cluster);
  // Bumps the version and posts to subscribers (mu_ held).
  void changedLocked();
  void setGaugesLocked(const HostSet& set);

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const HostSet>, std::less<>> sets_;
  std::map<uint64_t, Subscriber> subscribers_;
  std::shared_ptr<const std::function<void(const std::string&)>> refresh_;
  std::shared_ptr<const std::function<void(const ClusterConfig&)>> names_;
  uint64_t next_subscriber_ = 1;
  std::atomic<uint64_t> version_{1};
};

// The hosts `c` has now: the process manager's set for it when there is
// one (DNS-resolved hosts included), else its configured IP hosts. For the
// admin API and scrapes, not the data path (takes the manager's lock).
std::vector<ClusterHost> currentHosts(const ClusterConfig& c);
// True when `address` ("ip:port") is one of `c`'s configured hosts or in
// the process manager's current set for it (a metric series of such a host
// stays on /metrics).
bool isCurrentHost(const ClusterConfig& c, std::string_view address);

// One worker's view of one cluster's hosts (per worker, per cluster; not
// thread-safe). get() costs one atomic load while the manager is unchanged.
// When the manager has no set for the cluster (a filter built outside the
// runtime, e.g. in a unit test), the configured hosts are used, all ready.
class ClusterHosts {
 public:
  ClusterHosts(ClusterManager& manager, std::string cluster, std::vector<Address> configured);
  // True when the manager changed since the last refresh().
  bool stale() const { return manager_->version() != seen_; }
  // Re-reads the set from the manager.
  void refresh();
  // The current set (refreshed first when stale).
  const HostSet& get() {
    if (stale()) refresh();
    return *set_;
  }
  // New configured hosts (a reload changed the cluster); takes effect at
  // the next refresh when the manager has no set for the cluster.
  void setConfigured(std::vector<Address> configured);
  ClusterManager& manager() { return *manager_; }

 private:
  ClusterManager* manager_;
  std::string cluster_;
  std::vector<Address> configured_;
  uint64_t seen_ = 0;
  std::shared_ptr<const HostSet> set_;
};

}  // namespace gw
