#include "filters/ip_limiter/limiter.h"

#include "core/sdk/log.h"

namespace gw {
namespace ip_limiter {

namespace {
// The network table's options; a minimal table (one entry) when the network
// limit is off, so an unused table costs nothing.
IpTable::Options networkTableOptions(const IpLimiter::Options& o) {
  IpTable::Options t = o.network_table;
  if (o.network_prefix <= 0 || o.network_prefix >= o.ipv6_prefix) {
    t.max_entries = 1;
    t.shards = 1;
    t.entries_gauge = nullptr;
    t.evictions_counter = nullptr;
  }
  return t;
}
}  // namespace

IpLimiter::IpLimiter(Options options)
    : options_(std::move(options)),
      table_(options_.table),
      network_(networkTableOptions(options_)),
      global_(options_.global != nullptr ? options_.global : &GlobalConnectionCount::process()) {}

bool IpLimiter::sameSettings(const Options& o) const {
  const Options& m = options_;
  return m.table.max_entries == o.table.max_entries && m.table.shards == o.table.shards &&
         m.table.max_per_key == o.table.max_per_key &&
         m.table.rate.interval_ns == o.table.rate.interval_ns &&
         m.table.rate.tolerance_ns == o.table.rate.tolerance_ns &&
         m.table.ttl_ns == o.table.ttl_ns && m.max_connections == o.max_connections &&
         m.ipv6_prefix == o.ipv6_prefix && m.trusted == o.trusted &&
         m.ipv4_prefix == o.ipv4_prefix && m.network_prefix == o.network_prefix &&
         m.network_table.max_entries == o.network_table.max_entries &&
         m.network_table.max_per_key == o.network_table.max_per_key &&
         m.network_table.rate.interval_ns == o.network_table.rate.interval_ns &&
         m.network_table.rate.tolerance_ns == o.network_table.rate.tolerance_ns;
}

namespace {
inline bool acquireGlobal(GlobalConnectionCount& global, LocalReserve* reserve, int64_t max) {
  return reserve != nullptr ? reserve->tryAcquire(max) : global.tryAcquire(max);
}
}  // namespace

RejectReason IpLimiter::admit(const IpKey& addr, int64_t now_ns, Ticket* ticket,
                              LocalReserve* reserve) {
  const int64_t max = options_.max_connections;
  if ((reserve == nullptr || reserve->held() == 0) && global_->value() >= max)
    return RejectReason::kGlobal;
  if (!options_.trusted.empty() && options_.trusted.contains(addr)) {
    if (!acquireGlobal(*global_, reserve, max)) return RejectReason::kGlobal;
    ticket->key = addr;
    ticket->tracked = false;
    ticket->network_tracked = false;
    return RejectReason::kNone;
  }
  IpKey key = limitKey(addr, options_.ipv6_prefix, options_.ipv4_prefix);
  const bool by_network = !addr.isV4() && networkLimited();
  IpKey net;
  if (by_network) {
    net = addr.masked(options_.network_prefix);
    bool net_evicted = false;
    IpTable::Verdict nv = network_.acquire(net, now_ns, &net_evicted);
    if (net_evicted) noteTableEvent(false, now_ns);
    switch (nv) {
      case IpTable::Verdict::kAdmitted:
        break;
      case IpTable::Verdict::kPerIpConnections:
        return RejectReason::kPerNetworkConnections;
      case IpTable::Verdict::kPerIpRate:
        return RejectReason::kPerNetworkRate;
      case IpTable::Verdict::kTableFull:
        noteTableEvent(true, now_ns);
        return RejectReason::kGlobal;
    }
  }
  bool evicted = false;
  uint64_t hash = table_.hash(key);
  uint32_t slot = IpTable::kNoSlot;
  IpTable::Verdict v = table_.acquire(key, hash, now_ns, &evicted, &slot);
  if (evicted) noteTableEvent(false, now_ns);
  if (v != IpTable::Verdict::kAdmitted && by_network) network_.cancel(net, now_ns);
  switch (v) {
    case IpTable::Verdict::kAdmitted:
      break;
    case IpTable::Verdict::kPerIpConnections:
      return RejectReason::kPerIpConnections;
    case IpTable::Verdict::kPerIpRate:
      return RejectReason::kPerIpRate;
    case IpTable::Verdict::kTableFull:
      noteTableEvent(true, now_ns);
      return RejectReason::kGlobal;
  }
  if (!acquireGlobal(*global_, reserve, max)) {
    table_.cancel(key, now_ns);
    if (by_network) network_.cancel(net, now_ns);
    return RejectReason::kGlobal;
  }
  ticket->network_tracked = by_network;
  ticket->key = key;
  ticket->hash = hash;
  ticket->slot = slot;
  ticket->tracked = true;
  return RejectReason::kNone;
}

void IpLimiter::release(const Ticket& ticket, int64_t now_ns, LocalReserve* reserve) {
  if (ticket.tracked) table_.release(ticket.key, ticket.hash, now_ns, ticket.slot);
  if (ticket.network_tracked) network_.release(ticket.key.masked(options_.network_prefix), now_ns);
  if (reserve != nullptr) {
    reserve->release(options_.max_connections);
  } else {
    global_->release();
  }
}

void IpLimiter::noteTableEvent(bool refused, int64_t now_ns) {
  if (refused) {
    refusals_since_log_.fetch_add(1, std::memory_order_relaxed);
    refusals_total_.fetch_add(1, std::memory_order_relaxed);
  } else {
    evictions_since_log_.fetch_add(1, std::memory_order_relaxed);
  }
  int64_t last = last_log_ns_.load(std::memory_order_relaxed);
  if (last >= 0 && now_ns - last < kLogIntervalNs) return;
  if (!last_log_ns_.compare_exchange_strong(last, now_ns, std::memory_order_relaxed)) return;
  uint64_t evicted = evictions_since_log_.exchange(0, std::memory_order_relaxed);
  uint64_t refusals = refusals_since_log_.exchange(0, std::memory_order_relaxed);
  GW_LOG(warn,
         "ip_limiter '{}': IP table full (a shard reached its share of max_tracked_ips {}; {} "
         "addresses tracked): {} idle entries evicted, {} connections refused (reason global) "
         "since the last report; raise max_tracked_ips unless this is a flood",
         options_.name, table_.capacity(), table_.size(), evicted, refusals);
}

}  // namespace ip_limiter
}  // namespace gw
