// filters/ip_limiter/limiter.h — the connection admission decision.
//
// Defines RejectReason (the `reason` label of
// game_gateway_rate_limit_rejected_total) and IpLimiter: trusted ranges +
// IpTable + the global cap (GlobalConnectionCount, global_count.h), the
// thread-safe object a listener's workers share. It is what the benchmarks
// call "Limiter".
//
// admit() checks, in order:
//   1. the global count against max_connections (a relaxed load; cheap under
//      a flood once the gateway is full; skipped while the worker's reserve
//      holds a place)                                     -> kGlobal
//   2. trusted ranges: exempt from every per-IP check; still counted in the
//      global cap (it protects the process, not fairness)
//   3. IPv6 only, when network_prefix is on: the address's network (its
//      /48 by default) in the network table: concurrent connections
//      -> kPerNetworkConnections, new-connection bucket -> kPerNetworkRate,
//      table space -> kGlobal. Checked before the per-IP entry, so churning
//      through the /64s of one network cannot insert entries faster than
//      the network's bucket allows
//   4. per-IP (IPv4: per ipv4_prefix, IPv6: per ipv6_prefix) concurrent
//      connections                                        -> kPerIpConnections
//   5. per-IP new-connection token bucket                 -> kPerIpRate
//   6. table space for a new address (see ip_table.h)     -> kGlobal
//   7. the global reservation: from the worker's LocalReserve when one is
//      given (no atomic operation most of the time), else one atomic add;
//      undone on failure                                  -> kGlobal
// A refused attempt takes no token and changes no count.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "filters/ip_limiter/cidr.h"
#include "filters/ip_limiter/global_count.h"
#include "filters/ip_limiter/ip_table.h"

namespace gw {
namespace ip_limiter {

enum class RejectReason : uint8_t {
  kNone,              // admitted
  kPerIpConnections,  // too many concurrent connections from the address
  kPerIpRate,         // new connections from the address too fast
  kGlobal,            // max_connections reached, or the IP table is full of live entries
  kMessageRate,       // a connection sent frames faster than message_rate_limit
  kPerNetworkConnections,  // too many concurrent connections from the IPv6 network (/48)
  kPerNetworkRate,         // new connections from the IPv6 network too fast
  kCount,
};

inline constexpr size_t kRejectReasonCount = static_cast<size_t>(RejectReason::kCount);

// The metric label: "per_ip_connections", "per_ip_rate", "global",
// "message_rate" ("none" for kNone).
constexpr std::string_view rejectReasonName(RejectReason r) {
  switch (r) {
    case RejectReason::kNone: return "none";
    case RejectReason::kPerIpConnections: return "per_ip_connections";
    case RejectReason::kPerIpRate: return "per_ip_rate";
    case RejectReason::kGlobal: return "global";
    case RejectReason::kMessageRate: return "message_rate";
    case RejectReason::kPerNetworkConnections: return "per_network_connections";
    case RejectReason::kPerNetworkRate: return "per_network_rate";
    case RejectReason::kCount: break;
  }
  return "unknown";
}

class IpLimiter {
 public:
  struct Options {
    IpTable::Options table;
    int64_t max_connections = 1000;
    int ipv6_prefix = 64;
    // IPv4 addresses are limited per this prefix (32: one by one).
    int ipv4_prefix = 32;
    // IPv6 addresses are also limited per network of this prefix (< ipv6_prefix;
    // 0: off), in a second table with these settings (max_per_key: concurrent
    // connections per network; rate: its new-connection bucket).
    int network_prefix = 48;
    IpTable::Options network_table;
    CidrSet trusted;
    // null: GlobalConnectionCount::process(). Tests pass their own.
    GlobalConnectionCount* global = nullptr;
    // Names this limiter in log lines (the listener).
    std::string name;
  };

  // What admit() counted, to hand back to release().
  struct Ticket {
    IpKey key;             // the limited key (IPv6 masked to the prefix)
    uint64_t hash = 0;     // the table's hash of `key`
    uint32_t slot = IpTable::kNoSlot;  // where acquire() found the entry (a hint)
    bool tracked = false;  // counted in the IP table (false for trusted addresses)
    bool network_tracked = false;  // counted in the network table too (key.masked(network_prefix))
  };

  explicit IpLimiter(Options options);

  // Decides on a new connection from `addr` (the unmasked client address)
  // at `now_ns`. Returns kNone and fills *ticket when admitted: the caller
  // must call release() with the same ticket and reserve when the
  // connection ends. `reserve` (may be null: exact, one atomic add) is the
  // calling worker's LocalReserve on global(). Thread-safe (the reserve is
  // the caller's own); allocation-free.
  RejectReason admit(const IpKey& addr, int64_t now_ns, Ticket* ticket,
                     LocalReserve* reserve = nullptr);
  // Ends an admitted connection (`reserve`: the one given to admit()).
  void release(const Ticket& ticket, int64_t now_ns, LocalReserve* reserve = nullptr);

  // True if `o` describes the same limits as this limiter's options (table
  // size, shards, per-IP limits, ttl, global cap, IPv6 prefix, trusted
  // ranges); metrics, name and the global count object are not compared.
  bool sameSettings(const Options& o) const;

  // True if `addr` lies in a trusted range.
  bool trusted(const IpKey& addr) const { return options_.trusted.contains(addr); }
  IpTable& table() { return table_; }
  const IpTable& table() const { return table_; }
  // The IPv6 network table (idle and empty when network_prefix is 0).
  IpTable& networkTable() { return network_; }
  const IpTable& networkTable() const { return network_; }
  // True when IPv6 addresses are also limited per network.
  bool networkLimited() const {
    return options_.network_prefix > 0 && options_.network_prefix < options_.ipv6_prefix;
  }
  GlobalConnectionCount& global() { return *global_; }
  const Options& options() const { return options_; }

  // True for the first caller in each `interval_ns` (the caller then sweeps
  // the table); false if another thread claimed the sweep less than
  // interval_ns before `now_ns`. Lets several workers run a sweep timer
  // while the table is swept once per interval.
  bool claimSweep(int64_t now_ns, int64_t interval_ns) {
    int64_t last = last_sweep_ns_.load(std::memory_order_relaxed);
    if (last >= 0 && now_ns - last < interval_ns) return false;
    return last_sweep_ns_.compare_exchange_strong(last, now_ns, std::memory_order_relaxed);
  }

  // Table-full events (evictions, refusals) since construction.
  uint64_t tableFullRefusals() const { return refusals_total_.load(std::memory_order_relaxed); }

  // Shortest time between two "IP table full" log lines.
  static constexpr int64_t kLogIntervalNs = int64_t{10} * 1000 * 1000 * 1000;

 private:
  // Counts an eviction or a table-full refusal, and logs a summary at most
  // once per kLogIntervalNs (warn).
  void noteTableEvent(bool refused, int64_t now_ns);

  Options options_;
  IpTable table_;
  IpTable network_;
  GlobalConnectionCount* global_;
  std::atomic<int64_t> last_log_ns_{-1};
  std::atomic<int64_t> last_sweep_ns_{-1};
  std::atomic<uint64_t> evictions_since_log_{0};
  std::atomic<uint64_t> refusals_since_log_{0};
  std::atomic<uint64_t> refusals_total_{0};
};

}  // namespace ip_limiter
}  // namespace gw
