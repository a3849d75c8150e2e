#include "filters/upstream/cluster_pool.h"

#include <algorithm>
#include <functional>

#include "core/sdk/clock.h"
#include "core/sdk/log.h"
#include "filters/upstream/connect_retry.h"
#include "filters/upstream/upstream.h"
#include "filters/upstream/upstream_worker.h"

namespace gw {
namespace upstream {

namespace {

// This worker's share of a per-process limit: an even split, at least one.
size_t share(size_t total, size_t worker, size_t workers) {
  size_t s = total / workers + (worker < total % workers ? 1 : 0);
  return std::max<size_t>(1, s);
}

// Connections of one host lost within this long of each other are one
// kConnectionLost (the backend went away once).
constexpr auto kLossCoalesce = std::chrono::seconds(1);

uint64_t mix(uint64_t x) {  // splitmix64 finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace

ClusterPool::ClusterPool(UpstreamWorker& worker, const ClusterConfig& config)
    : worker_(worker),
      config_(config),
      stats_(config.name),
      set_(worker.manager(), config.name, config.hosts),
      rng_(static_cast<unsigned>(worker.workerIndex() * 7919 + 17)),
      watchdog_(worker.dispatcher(), config_.name) {
  configure(config);
}

ClusterPool::~ClusterPool() {
  watchdog_.setHosts({});  // takes this worker's share out of the silent gauges
  for (auto& [name, h] : all_) {
    for (auto& c : h->connections) c->shutdown();
    h->stats->pool_active->dec(h->reported_active);
    h->stats->pool_idle->dec(h->reported_idle);
    h->stats->go.connections_active->dec(h->reported_active + h->reported_idle);
  }
}

void ClusterPool::configure(const ClusterConfig& config) {
  config_ = config;
  per_host_limit_ =
      share(config.max_connections_per_service, worker_.workerIndex(), worker_.workerCount());
  per_cluster_limit_ = share(config.max_connections, worker_.workerIndex(), worker_.workerCount());
  watchdog_.configure(config);
  set_.setConfigured(config.hosts);
  applySet(set_.get());
}

Dispatcher& ClusterPool::dispatcher() { return worker_.dispatcher(); }

size_t ClusterPool::sessionCount() const {
  size_t n = 0;
  for (const auto& [name, h] : all_) n += h->sessions;
  return n;
}

HostPool* ClusterPool::findHost(std::string_view name) {
  auto it = all_.find(name);
  return it == all_.end() || !it->second->in_set ? nullptr : it->second.get();
}

void ClusterPool::refreshIfStale() {
  if (!set_.stale()) return;
  applySet(set_.get());
  sweep(users == 0);
}

void ClusterPool::applySet(const HostSet& set) {
  for (auto& [name, h] : all_) h->in_set = false;
  hosts_.clear();
  ring_.clear();
  for (const ClusterHost& ch : set.hosts) {
    auto& slot = all_[ch.name];
    if (!slot) {
      slot = std::make_unique<HostPool>();
      slot->address = ch.address;
      slot->name = ch.name;
      slot->stats = std::make_unique<HostStats>(config_.name, ch.name);
      slot->in_set = false;  // set just below
    }
    HostPool* h = slot.get();
    if (h->in_set) continue;  // a duplicate entry in the set
    h->in_set = true;
    h->state = ch.state;
    h->index = hosts_.size();
    hosts_.push_back(h);
    uint64_t seed = std::hash<std::string>()(ch.name);
    for (uint64_t v = 0; v < 64; ++v) ring_.emplace_back(mix(seed ^ (v * 0x9e3779b97f4a7c15ull)), h);
  }
  std::sort(ring_.begin(), ring_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  watchdog_.setHosts(hosts_);
}

void ClusterPool::sweep(bool retire_all) {
  for (auto it = all_.begin(); it != all_.end();) {
    HostPool& h = *it->second;
    if (h.in_set && h.state == HostState::kMaint) {
      // Live sessions move: each filter closes its session here and re-picks
      // on its next frame. Then every connection closes (lingering
      // sessions' bindings on them are dropped).
      std::vector<BackendConnection*> conns;
      for (auto& c : h.connections) conns.push_back(c.get());
      for (BackendConnection* conn : conns) {
        std::vector<uint64_t> ids(conn->sessions().begin(), conn->sessions().end());
        for (uint64_t id : ids)
          if (UpstreamFilter* f = worker_.findSession(id)) f->leaveHost(*this, h);
      }
      // (A connection left idle may have been retired already.)
      while (!h.connections.empty()) retire(h.connections.back().get());
    } else if (!h.in_set || retire_all) {
      std::vector<BackendConnection*> idle;
      for (auto& c : h.connections)
        if (c->sessionCount() == 0) idle.push_back(c.get());
      for (BackendConnection* c : idle) retire(c);
    }
    if (!h.in_set && h.connections.empty() && h.sessions == 0) {
      h.stats->pool_active->dec(h.reported_active);
      h.stats->pool_idle->dec(h.reported_idle);
      h.stats->go.connections_active->dec(h.reported_active + h.reported_idle);
      it = all_.erase(it);
    } else {
      ++it;
    }
  }
}

bool ClusterPool::hostUsable(const HostPool& h, std::chrono::steady_clock::time_point now) {
  if (!h.in_set || h.state != HostState::kReady) return false;
  if (now < h.down_until) return false;
  HostAvailability* avail = worker_.availability().impl;
  return avail == nullptr || avail->available(config_.name, h.index);
}

HostPool* ClusterPool::pickHost(uint64_t session, HostPool* preferred) {
  refreshIfStale();
  auto now = coarseNow();
  if (preferred != nullptr && preferred->in_set && preferred->state == HostState::kDrain &&
      now >= preferred->down_until) {
    // Draining: no new sessions, but the session pinned here stays.
    HostAvailability* avail = worker_.availability().impl;
    if (avail == nullptr || avail->available(config_.name, preferred->index)) return preferred;
  }
  if (preferred != nullptr && hostUsable(*preferred, now)) return preferred;
  return pickByPolicy(session, now);
}

HostPool* ClusterPool::pickByPolicy(uint64_t session, std::chrono::steady_clock::time_point now) {
  size_t n = hosts_.size();
  switch (config_.lb) {
    case LbPolicy::kRoundRobin:
      for (size_t i = 0; i < n; ++i) {
        size_t h = (rr_next_ + i) % n;
        if (hostUsable(*hosts_[h], now)) {
          rr_next_ = h + 1;
          return hosts_[h];
        }
      }
      return nullptr;
    case LbPolicy::kLeastRequest: {
      HostPool* best = nullptr;
      for (HostPool* h : hosts_) {
        if (!hostUsable(*h, now)) continue;
        if (best == nullptr || h->sessions < best->sessions) best = h;
      }
      return best;
    }
    case LbPolicy::kConsistentHash: {
      uint64_t point = mix(session);
      auto it = std::lower_bound(ring_.begin(), ring_.end(), point,
                                 [](const auto& e, uint64_t p) { return e.first < p; });
      for (size_t i = 0; i < ring_.size(); ++i, ++it) {
        if (it == ring_.end()) it = ring_.begin();
        if (hostUsable(*it->second, now)) return it->second;
      }
      return nullptr;
    }
  }
  return nullptr;
}

BackendConnection* ClusterPool::pickConnection(HostPool& host) {
  // Reuse: the open connection with the fewest sessions, unless the host may
  // still grow and every connection already carries sessions.
  BackendConnection* best = nullptr;
  for (auto& c : host.connections) {
    if (!c->open() || c->dedicatedTo() != 0) continue;
    if (best == nullptr || c->sessionCount() < best->sessionCount()) best = c.get();
  }
  bool can_grow = host.connections.size() < per_host_limit_ &&
                  total_connections_ < per_cluster_limit_;
  if (best != nullptr && (!can_grow || best->sessionCount() == 0)) return best;
  if (!can_grow) return best;
  BackendConnection* fresh = openConnection(host, 0);
  return fresh != nullptr ? fresh : best;
}

BackendConnection* ClusterPool::openForSession(HostPool& host, uint64_t session, ErrorCode* why) {
  if (host.connections.size() >= per_host_limit_ || total_connections_ >= per_cluster_limit_) {
    stats_.session_connections_refused->inc();
    *why = ErrorCode::kUpstreamOverflow;
    return nullptr;
  }
  BackendConnection* conn = openConnection(host, session);
  if (conn == nullptr) *why = ErrorCode::kUpstreamUnavailable;
  return conn;
}

BackendConnection* ClusterPool::openConnection(HostPool& host, uint64_t dedicated_to) {
  std::string why;
  MonoTime setup_started = preciseNow();
  int fd = connectSocket(host.address, config_.liveness, &why);
  if (fd < 0) {
    onConnectAttemptFailed(host, /*timed_out=*/false);
    host.stats->go.requests_error->inc();
    GW_LOG(warn, "upstream: cluster '{}': {}", config_.name, why);
    publish(UpstreamEvent::Type::kConnectFailed, host, 0);
    return nullptr;
  }
  auto conn = std::make_unique<Connection>(dispatcher(), fd, host.address, true);
  host.connections.push_back(std::make_unique<BackendConnection>(*this, host, std::move(conn),
                                                                   setup_started, dedicated_to));
  ++total_connections_;
  updatePoolGauges(host);
  return host.connections.back().get();
}

void ClusterPool::closeSessionConnection(BackendConnection* conn) {
  conn->shutdown();
  release(conn);
}

void ClusterPool::onConnected(HostPool& host) {
  host.backoff = std::chrono::milliseconds(0);
  host.down_until = {};
  host.loss_published_at = {};
  publish(UpstreamEvent::Type::kConnected, host, 0);
}

void ClusterPool::onConnectAttemptFailed(HostPool& host, bool timed_out) {
  host.stats->connect_failures->inc();
  (timed_out ? host.stats->go.errors_timeout : host.stats->go.errors_connection_failed)->inc();
  // A host given by name may have moved: its source may look it up again.
  if (!config_.host_names.empty()) worker_.manager().requestRefresh(config_.name);
}

uint64_t ClusterPool::random() { return rng_(); }

void ClusterPool::onConnectionIdle(BackendConnection* conn) {
  if (!conn->host().in_set || users == 0) retire(conn);
}

void ClusterPool::retire(BackendConnection* conn) {
  HostPool& host = conn->host();
  for (uint64_t s : conn->sessions()) worker_.linger().backendGone(s, conn);
  conn->shutdown();
  GW_LOG(info, "upstream: cluster '{}' host {}: backend connection closed ({})", config_.name,
         host.name,
         !host.in_set ? "host removed from the cluster"
                      : host.state == HostState::kMaint ? "host in maint" : "pool unused");
  release(conn);
}

void ClusterPool::release(BackendConnection* conn) {
  HostPool& host = conn->host();
  for (size_t i = 0; i < host.connections.size(); ++i) {
    if (host.connections[i].get() == conn) {
      // Deleted at the end of this loop turn: its callbacks are on the stack.
      struct Holder : DeferredDeletable {
        std::unique_ptr<BackendConnection> c;
      };
      auto holder = std::make_unique<Holder>();
      holder->c = std::move(host.connections[i]);
      host.connections.erase(host.connections.begin() + static_cast<long>(i));
      dispatcher().deferredDelete(std::move(holder));
      --total_connections_;
      break;
    }
  }
  if (host.connections.empty()) watchdog_.onHostDown(host);
  updatePoolGauges(host);
}

void ClusterPool::onConnectionClosed(BackendConnection* conn, bool during_connect,
                                     bool had_sessions, std::string_view detail) {
  HostPool& host = conn->host();
  if (during_connect) {
    onConnectAttemptFailed(host, conn->timedOut());
    host.stats->go.requests_error->inc();
    // Exponential backoff with jitter: the host takes no new sessions until then.
    auto base = config_.reconnect_base;
    host.backoff = host.backoff.count() == 0 ? base : std::min(host.backoff * 2, config_.reconnect_max);
    auto jittered = halfJitter(host.backoff, rng_());
    host.down_until = coarseNow() + jittered;
    GW_LOG(warn, "upstream: cluster '{}' host {}: {} (retry in {}ms)", config_.name, host.name,
           detail, jittered.count());
    publish(UpstreamEvent::Type::kConnectFailed, host, 0);
  } else if (conn->dedicatedTo() != 0) {
    // A session's own connection (compat connection_per_session): the
    // backend ending it ends the session, as in the Go gateway — routine,
    // not a host failure (no warning, no kConnectionLost for the breaker).
    host.stats->connections_lost->inc();
    GW_LOG(debug, "upstream: cluster '{}' host {}: session {}'s backend connection closed: {}",
           config_.name, host.name, conn->dedicatedTo(), detail);
  } else {
    host.stats->connections_lost->inc();
    host.stats->go.errors_connection_lost->inc();
    GW_LOG(warn, "upstream: cluster '{}' host {}: backend connection closed: {}", config_.name,
           host.name, detail);
    auto now = coarseNow();
    if (had_sessions && (host.loss_published_at == std::chrono::steady_clock::time_point{} ||
                         now - host.loss_published_at >= kLossCoalesce)) {
      host.loss_published_at = now;
      publish(UpstreamEvent::Type::kConnectionLost, host, 0);
    }
  }
  release(conn);
}

void ClusterPool::publish(UpstreamEvent::Type type, HostPool& host, uint64_t session) {
  if (worker_.bus().empty() || !host.in_set) return;
  UpstreamEvent e{type, &config_.name, host.index, &host.address, session};
  worker_.bus().publish(e);
}

void ClusterPool::updatePoolGauges(HostPool& host) {
  // Single writer per (worker, host): recompute this worker's share and
  // adjust the gauges by the difference.
  int64_t active = 0, idle = 0;
  for (auto& c : host.connections) {
    if (!c->open()) continue;
    if (c->sessionCount() > 0) ++active;
    else ++idle;
  }
  host.stats->pool_active->inc(active - host.reported_active);
  host.stats->pool_idle->inc(idle - host.reported_idle);
  host.stats->go.connections_active->inc(active + idle - host.reported_active - host.reported_idle);
  host.reported_active = active;
  host.reported_idle = idle;
}

}  // namespace upstream
}  // namespace gw
