#include "filters/ip_limiter/limiter.h"

#include "core/sdk/log.h"

namespace gw {
namespace ip_limiter {

IpLimiter::IpLimiter(Options options)
    : options_(std::move(options)),
      table_(options_.table),
      global_(options_.global != nullptr ? options_.global : &GlobalConnectionCount::process()) {}

bool IpLimiter::sameSettings(const Options& o) const {
  const Options& m = options_;
  return m.table.max_entries == o.table.max_entries && m.table.shards == o.table.shards &&
         m.table.max_per_key == o.table.max_per_key &&
         m.table.rate.interval_ns == o.table.rate.interval_ns &&
         m.table.rate.tolerance_ns == o.table.rate.tolerance_ns &&
         m.table.ttl_ns == o.table.ttl_ns && m.max_connections == o.max_connections &&
         m.ipv6_prefix == o.ipv6_prefix && m.trusted == o.trusted;
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
    return RejectReason::kNone;
  }
  IpKey key = limitKey(addr, options_.ipv6_prefix);
  bool evicted = false;
  uint64_t hash = table_.hash(key);
  uint32_t slot = IpTable::kNoSlot;
  IpTable::Verdict v = table_.acquire(key, hash, now_ns, &evicted, &slot);
  if (evicted) noteTableEvent(false, now_ns);
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
    return RejectReason::kGlobal;
  }
  ticket->key = key;
  ticket->hash = hash;
  ticket->slot = slot;
  ticket->tracked = true;
  return RejectReason::kNone;
}

void IpLimiter::release(const Ticket& ticket, int64_t now_ns, LocalReserve* reserve) {
  if (ticket.tracked) table_.release(ticket.key, ticket.hash, now_ns, ticket.slot);
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
