// core/dns_resolver.h — the cluster manager's DNS source.
//
// Defines DnsResolver: resolves the cluster hosts given by name
// (ClusterConfig::host_names, "name:port") with libevent's evdns on the
// main thread's dispatcher, and publishes each cluster's addresses through
// ClusterManager::replaceHosts(cluster, "dns", ...).
//
// Clusters made at run time (the upstream filter's Go-format rule endpoints
// given as names, "go:name:port") come through
// ClusterManager::resolveNames(), posted here: resolved the same way, kept
// across a reload while their user asks again after it (the reload removes
// their set; the ask republishes the last answer at once), forgotten at a
// reload when nobody asked since the previous one.
//
// Why the main thread: it already runs an event loop (admin API, signals,
// reloads) and never carries client traffic, so a slow nameserver delays
// nothing that matters, no worker ever waits on DNS, and configure() (start
// and reload, also on the main thread) needs no locking. Workers only call
// ClusterManager::requestRefresh() and resolveNames() (thread-safe), which
// post here.
//
// Per cluster with names: every name is looked up (evdns_getaddrinfo: the
// hosts files first, then A and AAAA from the nameservers) when configured,
// every `dns_refresh_interval`, and after a connect failure (requestRefresh,
// at most once per kFailureRefreshGap). When a round has finished, the
// cluster's hosts are its IP hosts plus every address of every name (the
// last good answer of a name whose lookup failed): published when they
// changed. A host that left the set gets no new sessions; live sessions on
// it keep their connections until they end (ClusterPool, tcp_proxy).
// A failed lookup (NXDOMAIN, timeout, SERVFAIL) keeps the name's last good
// addresses, is counted and logged (at most once per kFailureLogGap per
// name). Until a name first resolves it contributes no host (clients get
// the no-backend error frame when the cluster has none).
//
// Metric: game_gateway_dns_resolutions_total{cluster, result} with result
// ok | nxdomain | timeout | error, one per lookup of one name.
//
// State: one DnsResolver per process (owned by Server), main thread only
// except for the refresh handler it installs in the ClusterManager.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/sdk/cluster.h"
#include "core/sdk/cluster_manager.h"
#include "core/sdk/clock.h"
#include "core/sdk/dispatcher.h"

struct evdns_base;
struct addrinfo;  // evutil_addrinfo (event2/util.h)

namespace gw {

class DnsResolver {
 public:
  // Least time between two lookups of a cluster asked by requestRefresh().
  static constexpr std::chrono::milliseconds kFailureRefreshGap{1000};
  // Least time between two log lines about one name's failed lookups.
  static constexpr std::chrono::milliseconds kFailureLogGap{30000};
  // The ClusterManager source name of the hosts it publishes.
  static constexpr const char* kSource = "dns";

  DnsResolver(Dispatcher& dispatcher, ClusterManager& manager);
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  // Applies a config (start and every accepted reload; call before
  // ClusterManager::setStaticClusters): (re)reads `dns` settings when they
  // changed, starts looking up the clusters with names (a changed name list
  // or interval starts a new round now), forgets the clusters without and
  // gives them back to the static source.
  void configure(const DnsConfig& dns, const std::vector<ClusterConfig>& clusters);
  // Resolves `cluster` (not in the config; host_names set) from now on, or
  // claims it again when it does: republishes its last answer if the
  // manager lost its set. Dispatcher thread only.
  void addRuntimeCluster(const ClusterConfig& cluster);
  // Starts a round for `cluster` now unless one runs or one started less
  // than kFailureRefreshGap ago. Dispatcher thread only.
  void refreshSoon(const std::string& cluster);
  // Clusters it resolves, for tests.
  size_t clusterCount() const { return clusters_.size(); }

 private:
  struct Query;
  struct ClusterState;

  // Creates the evdns base or reconfigures it in place from `dns`; false
  // when the settings are the ones in use (nothing done).
  bool applySettings(const DnsConfig& dns);
  void startRound(ClusterState& c);
  static void onAnswer(int result, ::addrinfo* res, void* arg);
  void onQueryDone(Query& q);
  void finishRound(ClusterState& c);
  // Gives the manager `c`'s hosts when any name resolved and they changed
  // since the last publish (always when `force`).
  void publish(ClusterState& c, bool force);
  // A ClusterState for `c`, whose timer starts a round.
  std::unique_ptr<ClusterState> makeState(const std::string& name);
  void countResult(const std::string& cluster, const char* result);

  Dispatcher& dispatcher_;
  ClusterManager& manager_;
  evdns_base* base_ = nullptr;
  bool configured_ = false;
  DnsConfig settings_;  // in use by base_
  DnsConfig wanted_;    // the config's (applied when a cluster needs a base)
  uint64_t next_epoch_ = 1;
  std::map<std::string, std::unique_ptr<ClusterState>, std::less<>> clusters_;
  // In-flight lookups (owned; an abandoned one is deleted when its answer comes).
  std::map<Query*, std::unique_ptr<Query>> queries_;
  // Set while alive; the refresh handler posted to the dispatcher checks it.
  std::shared_ptr<DnsResolver*> self_;
};

}  // namespace gw
