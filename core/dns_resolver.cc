#include "core/dns_resolver.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include <algorithm>
#include <cstdio>

#include "core/sdk/log.h"
#include "core/sdk/stats.h"

namespace gw {

// One lookup of one name of one cluster (a round's part).
struct DnsResolver::Query {
  DnsResolver* owner = nullptr;
  std::string cluster;
  uint64_t epoch = 0;  // the round it belongs to (ClusterState::epoch)
  HostName name;
  evdns_getaddrinfo_request* handle = nullptr;
  bool starting = true;   // evdns_getaddrinfo() has not returned yet
  bool answered = false;  // the callback ran
  bool abandoned = false;  // its cluster or round is gone: drop the answer
  int result = 0;
  MonoTime started{};
  std::vector<Address> addresses;
};

// One cluster with names: its config and what its names resolved to.
struct DnsResolver::ClusterState {
  ClusterState(Dispatcher& d, std::function<void()> on_timer) : timer(d, std::move(on_timer)) {}
  ClusterConfig config;
  // The last good addresses of each name (absent: never resolved).
  std::map<std::string, std::vector<Address>> last_good;
  // When the last failure of each name was logged, and failures since.
  std::map<std::string, std::pair<MonoTime, uint64_t>> failure_log;
  std::vector<std::string> published;  // host names last given to the manager
  bool ever_published = false;
  uint64_t epoch = 0;   // current round; 0: none yet
  size_t pending = 0;   // lookups of the current round still out
  MonoTime round_started{};
  Timer timer;  // the next interval round
  // Made at run time (addRuntimeCluster), not from the config.
  bool runtime = false;
  // A runtime cluster asked for since the last configure().
  bool claimed = false;
};

namespace {

constexpr const char* kMetric = "game_gateway_dns_resolutions_total";
constexpr const char* kHelp =
    "DNS lookups of cluster host names, by cluster and result (ok, nxdomain, timeout, error).";

bool sameSettings(const DnsConfig& a, const DnsConfig& b) {
  return a.resolv_conf == b.resolv_conf && a.hosts_file == b.hosts_file && a.timeout == b.timeout;
}

// The metric's result for a lookup that ended with `result` (evutil's
// getaddrinfo codes) and `found` addresses after `took`. evdns reports a
// timeout and a SERVFAIL alike (EVUTIL_EAI_FAIL): a failure that took at
// least 90% of the query timeout (evdns's timer may fire a little before
// our clock says it is due) is counted as a timeout; answers come in
// milliseconds.
const char* resultName(int result, bool found, std::chrono::nanoseconds took,
                       std::chrono::milliseconds timeout) {
  if (result == 0) return found ? "ok" : "nxdomain";
  if (result == EVUTIL_EAI_NONAME || result == EVUTIL_EAI_NODATA) return "nxdomain";
  if (result == EVUTIL_EAI_AGAIN || took * 10 >= timeout * 9) return "timeout";
  return "error";
}

// evdns's own messages ("nameserver has failed", ...) go to the gateway's
// log at debug level: lookup failures are logged (rate-limited) above.
void evdnsLog(int severity, const char* msg) {
  if (severity >= EVENT_LOG_WARN) GW_LOG(debug, "dns: evdns: {}", msg);
  else GW_LOG(trace, "dns: evdns: {}", msg);
}

}  // namespace

DnsResolver::DnsResolver(Dispatcher& dispatcher, ClusterManager& manager)
    : dispatcher_(dispatcher), manager_(manager), self_(std::make_shared<DnsResolver*>(this)) {
  evdns_set_log_fn(&evdnsLog);
  std::weak_ptr<DnsResolver*> weak = self_;
  Dispatcher* d = &dispatcher_;
  manager_.setRefreshHandler([weak, d](const std::string& cluster) {
    d->post([weak, cluster] {
      if (auto self = weak.lock()) (*self)->refreshSoon(cluster);
    });
  });
  manager_.setNamesHandler([weak, d](const ClusterConfig& cluster) {
    d->post([weak, cluster] {
      if (auto self = weak.lock()) (*self)->addRuntimeCluster(cluster);
    });
  });
}

DnsResolver::~DnsResolver() {
  manager_.setRefreshHandler({});
  manager_.setNamesHandler({});
  self_.reset();
  clusters_.clear();
  if (base_ != nullptr) {
    // Requests still out are dropped without their callbacks; the Query
    // objects go with queries_.
    evdns_base_free(base_, 0);
  }
}

bool DnsResolver::applySettings(const DnsConfig& dns) {
  if (base_ != nullptr && configured_ && sameSettings(dns, settings_)) return false;
  if (base_ == nullptr) {
    base_ = evdns_base_new(dispatcher_.base(), EVDNS_BASE_DISABLE_WHEN_INACTIVE);
  } else {
    // Reconfigured in place: lookups in flight are sent again to the new servers.
    evdns_base_clear_nameservers_and_suspend(base_);
    evdns_base_search_clear(base_);
    evdns_base_clear_host_addresses(base_);
  }
  settings_ = dns;
  configured_ = true;
  int rc = evdns_base_resolv_conf_parse(base_, DNS_OPTIONS_ALL, dns.resolv_conf.c_str());
  if (rc != 0) {
    GW_LOG(error, "dns: cannot use {} (evdns error {}: {}); lookups use the hosts files and "
                  "libevent's default nameserver (127.0.0.1) until a reload fixes it",
           dns.resolv_conf, rc,
           rc == 1 ? "cannot open" : rc == 2 ? "cannot stat" : rc == 3 ? "too large" : "bad file");
  }
  if (!dns.hosts_file.empty() && evdns_base_load_hosts(base_, dns.hosts_file.c_str()) != 0)
    GW_LOG(error, "dns: cannot read hosts file {}", dns.hosts_file);
  char timeout[32];
  std::snprintf(timeout, sizeof(timeout), "%.3f", static_cast<double>(dns.timeout.count()) / 1000);
  evdns_base_set_option(base_, "timeout:", timeout);
  evdns_base_set_option(base_, "getaddrinfo-allow-skew:", timeout);
  evdns_base_resume(base_);
  return true;
}

std::unique_ptr<DnsResolver::ClusterState> DnsResolver::makeState(const std::string& name) {
  return std::make_unique<ClusterState>(dispatcher_, [this, name] {
    auto it = clusters_.find(name);
    if (it != clusters_.end()) startRound(*it->second);
  });
}

void DnsResolver::configure(const DnsConfig& dns, const std::vector<ClusterConfig>& clusters) {
  wanted_ = dns;
  bool any = false;
  for (const auto& c : clusters) any = any || !c.host_names.empty();
  // New settings (other servers, hosts file): every cluster looks up again now.
  bool new_settings = (any || base_ != nullptr) && applySettings(dns);
  // Clusters that no longer have names go back to the static source, as do
  // runtime clusters nobody asked for since the last configure().
  for (auto it = clusters_.begin(); it != clusters_.end();) {
    ClusterState& c = *it->second;
    const ClusterConfig* now = findCluster(clusters, it->first);
    bool keep = now != nullptr ? !now->host_names.empty() : c.runtime && c.claimed;
    c.claimed = false;
    if (keep) {
      if (now == nullptr && new_settings) startRound(c);
      ++it;
      continue;
    }
    manager_.releaseHosts(it->first, kSource);
    it = clusters_.erase(it);
  }
  for (const auto& c : clusters) {
    if (c.host_names.empty()) continue;
    auto& slot = clusters_[c.name];
    bool changed = !slot || slot->runtime || slot->config.host_names != c.host_names ||
                   slot->config.dns_refresh_interval != c.dns_refresh_interval ||
                   slot->config.hosts.size() != c.hosts.size();
    if (slot && !changed) {
      for (size_t i = 0; i < c.hosts.size(); ++i)
        changed = changed || slot->config.hosts[i].toString() != c.hosts[i].toString();
    }
    if (!slot) slot = makeState(c.name);
    slot->config = c;
    slot->runtime = false;
    if (changed || new_settings) {
      slot->pending = 0;  // answers of an older round are dropped (epoch)
      startRound(*slot);
    }
  }
  for (auto& [q, owned] : queries_) {
    auto it = clusters_.find(q->cluster);
    if (it == clusters_.end() || it->second->epoch != q->epoch) q->abandoned = true;
  }
}

void DnsResolver::addRuntimeCluster(const ClusterConfig& cluster) {
  if (cluster.host_names.empty()) return;
  auto& slot = clusters_[cluster.name];
  if (slot && !slot->runtime) return;  // a config cluster of that name: the config's
  if (base_ == nullptr) applySettings(wanted_);
  bool changed = !slot || slot->config.host_names != cluster.host_names ||
                 slot->config.dns_refresh_interval != cluster.dns_refresh_interval;
  if (!slot) {
    slot = makeState(cluster.name);
    GW_LOG(info, "dns: resolving cluster '{}' (made at run time)", cluster.name);
  }
  slot->config = cluster;
  slot->runtime = true;
  slot->claimed = true;
  if (changed) {
    slot->pending = 0;
    startRound(*slot);
  } else if (manager_.hosts(cluster.name) == nullptr) {
    publish(*slot, /*force=*/true);  // a reload removed its set: the last answer, now
  }
}

void DnsResolver::refreshSoon(const std::string& cluster) {
  auto it = clusters_.find(cluster);
  if (it == clusters_.end()) return;
  ClusterState& c = *it->second;
  if (c.pending > 0 || coarseNow() - c.round_started < kFailureRefreshGap) return;
  GW_LOG(debug, "dns: cluster '{}': a connect failed, looking its names up again", cluster);
  startRound(c);
}

void DnsResolver::startRound(ClusterState& c) {
  c.timer.disable();
  c.epoch = next_epoch_++;
  c.round_started = coarseNow();
  c.pending = c.config.host_names.size();
  std::string cluster = c.config.name;
  uint64_t epoch = c.epoch;
  for (const HostName& n : c.config.host_names) {
    auto owned = std::make_unique<Query>();
    Query* q = owned.get();
    q->owner = this;
    q->cluster = cluster;
    q->epoch = epoch;
    q->name = n;
    q->started = preciseNow();
    queries_.emplace(q, std::move(owned));
    evutil_addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    q->handle = evdns_getaddrinfo(base_, n.name.c_str(), nullptr, &hints, &DnsResolver::onAnswer, q);
    q->starting = false;
    // Answered at once (a hosts file entry, a cached error): finish it now.
    if (q->answered) onQueryDone(*q);
    // onQueryDone() may have finished the round and started none; `c` lives on.
  }
}

void DnsResolver::onAnswer(int result, ::addrinfo* res, void* arg) {
  auto* q = static_cast<Query*>(arg);
  q->answered = true;
  q->result = result;
  for (::addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    Address a(ai->ai_addr, static_cast<socklen_t>(ai->ai_addrlen));
    a.setPort(q->name.port);
    q->addresses.push_back(a);
  }
  if (res != nullptr) evutil_freeaddrinfo(res);
  if (!q->starting) q->owner->onQueryDone(*q);
}

void DnsResolver::onQueryDone(Query& q) {
  auto owned = queries_.find(&q);
  if (owned == queries_.end()) return;
  std::unique_ptr<Query> hold = std::move(owned->second);
  queries_.erase(owned);
  if (q.abandoned || q.result == EVUTIL_EAI_CANCEL) return;
  auto it = clusters_.find(q.cluster);
  if (it == clusters_.end() || it->second->epoch != q.epoch) return;
  ClusterState& c = *it->second;
  const char* result =
      resultName(q.result, !q.addresses.empty(), preciseNow() - q.started, settings_.timeout);
  countResult(c.config.name, result);
  std::string key = q.name.toString();
  if (q.result == 0 && !q.addresses.empty()) {
    c.last_good[key] = std::move(q.addresses);
    c.failure_log.erase(key);
  } else {
    auto& [logged_at, since] = c.failure_log[key];
    ++since;
    MonoTime now = coarseNow();
    if (logged_at == MonoTime{} || now - logged_at >= kFailureLogGap) {
      auto good = c.last_good.find(key);
      GW_LOG(warn, "dns: cluster '{}': lookup of {} failed: {} ({}); {}{}", c.config.name,
             q.name.name, result, evutil_gai_strerror(q.result),
             good == c.last_good.end()
                 ? std::string("no address yet")
                 : "keeping its last " + std::to_string(good->second.size()) + " address(es)",
             since > 1 ? " [" + std::to_string(since - 1) + " more failure(s) since the last line]"
                       : std::string());
      logged_at = now;
      since = 0;
    }
  }
  if (c.pending > 0 && --c.pending == 0) finishRound(c);
}

void DnsResolver::finishRound(ClusterState& c) {
  publish(c, /*force=*/false);
  c.timer.enable(c.config.dns_refresh_interval);
}

void DnsResolver::publish(ClusterState& c, bool force) {
  std::vector<ClusterHost> hosts;
  std::vector<std::string> names;
  auto add = [&](const Address& a) {
    std::string name = a.toString();
    if (std::find(names.begin(), names.end(), name) != names.end()) return;
    names.push_back(name);
    hosts.push_back(ClusterHost{a, name});
  };
  for (const Address& a : c.config.hosts) add(a);
  size_t resolved = 0;
  for (const HostName& n : c.config.host_names) {
    auto good = c.last_good.find(n.toString());
    if (good == c.last_good.end()) continue;
    ++resolved;
    for (const Address& a : good->second) add(a);
  }
  if (resolved == 0 || (!force && c.ever_published && names == c.published)) return;
  GW_LOG(info, "dns: cluster '{}': {} host(s) from {} name(s): {}", c.config.name, hosts.size(),
         c.config.host_names.size(), [&] {
           std::string all;
           for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
           return all;
         }());
  manager_.replaceHosts(c.config.name, kSource, std::move(hosts));
  c.published = std::move(names);
  c.ever_published = true;
}

void DnsResolver::countResult(const std::string& cluster, const char* result) {
  stats::StatsRegistry::get()
      .counter(kMetric, kHelp, {{"cluster", cluster}, {"result", result}})
      .inc();
}

}  // namespace gw
