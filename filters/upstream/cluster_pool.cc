#include "filters/upstream/cluster_pool.h"

#include <algorithm>

#include "core/sdk/clock.h"
#include "core/sdk/log.h"
#include "filters/upstream/upstream.h"

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

ClusterPool::ClusterPool(UpstreamFactory& factory, const ClusterConfig& config,
                         size_t worker_index, size_t worker_count)
    : factory_(factory),
      config_(config),
      stats_(config.name),
      per_host_limit_(share(config.max_connections_per_service, worker_index, worker_count)),
      per_cluster_limit_(share(config.max_connections, worker_index, worker_count)),
      rng_(static_cast<unsigned>(worker_index * 7919 + 17)),
      watchdog_(factory.dispatcher(), config_, config_.hosts.size()) {
  for (size_t i = 0; i < config_.hosts.size(); ++i) {
    auto h = std::make_unique<HostPool>();
    h->index = i;
    h->address = config_.hosts[i];
    h->name = h->address.toString();
    h->stats = std::make_unique<HostStats>(config_.name, h->name);
    for (uint64_t v = 0; v < 64; ++v) ring_.emplace_back(mix((i << 32) ^ v ^ 0x9e3779b9u), i);
    hosts_.push_back(std::move(h));
  }
  std::sort(ring_.begin(), ring_.end());
  std::vector<HostPool*> watched;
  for (auto& h : hosts_) watched.push_back(h.get());
  watchdog_.setHosts(std::move(watched));
}

ClusterPool::~ClusterPool() {
  for (auto& h : hosts_) {
    for (auto& c : h->connections) c->shutdown();
    h->stats->pool_active->dec(h->reported_active);
    h->stats->pool_idle->dec(h->reported_idle);
  }
}

Dispatcher& ClusterPool::dispatcher() { return factory_.dispatcher(); }

bool ClusterPool::hostUsable(const HostPool& h, std::chrono::steady_clock::time_point now) {
  if (now < h.down_until) return false;
  HostAvailability* avail = factory_.availability().impl;
  return avail == nullptr || avail->available(config_.name, h.index);
}

int ClusterPool::pickHost(uint64_t session, int preferred) {
  auto now = coarseNow();
  if (preferred >= 0 && hostUsable(*hosts_[static_cast<size_t>(preferred)], now)) return preferred;
  return pickByPolicy(session, now);
}

int ClusterPool::pickByPolicy(uint64_t session, std::chrono::steady_clock::time_point now) {
  size_t n = hosts_.size();
  switch (config_.lb) {
    case LbPolicy::kRoundRobin:
      for (size_t i = 0; i < n; ++i) {
        size_t h = (rr_next_ + i) % n;
        if (hostUsable(*hosts_[h], now)) {
          rr_next_ = h + 1;
          return static_cast<int>(h);
        }
      }
      return -1;
    case LbPolicy::kLeastRequest: {
      int best = -1;
      for (size_t h = 0; h < n; ++h) {
        if (!hostUsable(*hosts_[h], now)) continue;
        if (best < 0 || hosts_[h]->sessions < hosts_[static_cast<size_t>(best)]->sessions)
          best = static_cast<int>(h);
      }
      return best;
    }
    case LbPolicy::kConsistentHash: {
      uint64_t point = mix(session);
      auto it = std::lower_bound(ring_.begin(), ring_.end(), std::make_pair(point, size_t{0}));
      for (size_t i = 0; i < ring_.size(); ++i, ++it) {
        if (it == ring_.end()) it = ring_.begin();
        if (hostUsable(*hosts_[it->second], now)) return static_cast<int>(it->second);
      }
      return -1;
    }
  }
  return -1;
}

BackendConnection* ClusterPool::pickConnection(size_t h) {
  HostPool& host = *hosts_[h];
  // Reuse: the open connection with the fewest sessions, unless the host may
  // still grow and every connection already carries sessions.
  BackendConnection* best = nullptr;
  for (auto& c : host.connections) {
    if (!c->open()) continue;
    if (best == nullptr || c->sessionCount() < best->sessionCount()) best = c.get();
  }
  bool can_grow = host.connections.size() < per_host_limit_ &&
                  total_connections_ < per_cluster_limit_;
  if (best != nullptr && (!can_grow || best->sessionCount() == 0)) return best;
  if (!can_grow) return best;
  std::string why;
  int fd = connectSocket(host.address, config_.liveness, &why);
  if (fd < 0) {
    host.stats->connect_failures->inc();
    GW_LOG(warn, "upstream: cluster '{}': {}", config_.name, why);
    publish(UpstreamEvent::Type::kConnectFailed, host, 0);
    return best;
  }
  auto conn = std::make_unique<Connection>(dispatcher(), fd, host.address, true);
  host.connections.push_back(std::make_unique<BackendConnection>(*this, host, std::move(conn)));
  ++total_connections_;
  updatePoolGauges(host);
  return host.connections.back().get();
}

void ClusterPool::onConnected(HostPool& host) {
  host.backoff = std::chrono::milliseconds(0);
  host.down_until = {};
  host.loss_published_at = {};
  publish(UpstreamEvent::Type::kConnected, host, 0);
}

void ClusterPool::onConnectionClosed(BackendConnection* conn, bool during_connect,
                                     bool had_sessions, std::string_view detail) {
  HostPool& host = conn->host();
  if (during_connect) {
    host.stats->connect_failures->inc();
    // Exponential backoff with jitter: the host takes no new sessions until then.
    auto base = config_.reconnect_base;
    host.backoff = host.backoff.count() == 0 ? base : std::min(host.backoff * 2, config_.reconnect_max);
    auto jittered = host.backoff / 2 +
                    std::chrono::milliseconds(rng_() % static_cast<uint64_t>(host.backoff.count() / 2 + 1));
    host.down_until = coarseNow() + jittered;
    GW_LOG(warn, "upstream: cluster '{}' host {}: {} (retry in {}ms)", config_.name, host.name,
           detail, jittered.count());
    publish(UpstreamEvent::Type::kConnectFailed, host, 0);
  } else {
    host.stats->connections_lost->inc();
    GW_LOG(warn, "upstream: cluster '{}' host {}: backend connection closed: {}", config_.name,
           host.name, detail);
    auto now = coarseNow();
    if (had_sessions && (host.loss_published_at == std::chrono::steady_clock::time_point{} ||
                         now - host.loss_published_at >= kLossCoalesce)) {
      host.loss_published_at = now;
      publish(UpstreamEvent::Type::kConnectionLost, host, 0);
    }
  }
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

void ClusterPool::publish(UpstreamEvent::Type type, HostPool& host, uint64_t session) {
  if (factory_.bus().empty()) return;
  UpstreamEvent e{type, &config_.name, host.index, &host.address, session};
  factory_.bus().publish(e);
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
  host.reported_active = active;
  host.reported_idle = idle;
}

}  // namespace upstream
}  // namespace gw
