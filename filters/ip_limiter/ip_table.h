// filters/ip_limiter/ip_table.h — the per-IP table shared by all workers.
//
// Defines IpKey (a client address as a 128-bit key: IPv4 as ::ffff:a.b.c.d,
// IPv6 masked to a prefix), RateSpec and TokenBucket (a token bucket kept as
// one timestamp), SpinLock, and IpTable: a sharded, fixed-capacity,
// open-addressing table holding per address its concurrent connection count,
// its new-connection token bucket and when it was last seen.
//
// Bounded: the table never holds more than `max_entries` addresses and never
// allocates after construction (slots are calloc'ed once; untouched pages
// cost no RSS). Eviction rule, per shard:
//   - an entry with live connections (count > 0) is never evicted, so the
//     per-IP concurrency limit always holds;
//   - an idle entry (count == 0) expires `ttl` after it was last seen (swept
//     by sweep(), and reclaimed first when space is needed);
//   - when a new address needs space in a full shard, the least recently
//     seen idle entry among a sample of kEvictionSample idle entries (a clock
//     hand walks the shard) is evicted. The evicted address is forgotten:
//     its next connection starts with a full token bucket;
//   - if the shard holds only live entries, the new address is refused
//     (acquire() returns kTableFull): the table cap then acts as a cap on
//     distinct connected addresses.
//
// Thread-safety: every method may be called from any thread. Each shard has
// its own spin lock (held for a few dozen nanoseconds on the hot path); two
// workers contend only when their clients hash to the same shard.
// Time is passed in (`now_ns`, any monotonic nanosecond clock), so tests
// drive it with a fake clock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace gw {
namespace stats {
class Counter;
class Gauge;
}  // namespace stats

namespace ip_limiter {

// A client address as a 128-bit big-endian number: IPv6 as is, IPv4 as the
// IPv4-mapped IPv6 address ::ffff:a.b.c.d (so an IPv4 client reaching a
// dual-stack socket gets the same key as on an IPv4 socket).
struct IpKey {
  uint64_t hi = 0;  // first 8 bytes of the IPv6 address
  uint64_t lo = 0;  // last 8 bytes

  bool operator==(const IpKey& o) const { return hi == o.hi && lo == o.lo; }
  bool operator!=(const IpKey& o) const { return !(*this == o); }

  // The key of IPv4 address `addr` (host byte order: 0x7f000001 is 127.0.0.1).
  static IpKey fromV4(uint32_t addr) { return IpKey{0, (uint64_t{0xffff} << 32) | addr}; }
  // The key of the 16 IPv6 address bytes at `bytes` (network order).
  static IpKey fromV6(const uint8_t* bytes);
  // True for an IPv4 (or IPv4-mapped IPv6) address.
  bool isV4() const { return hi == 0 && (lo >> 32) == 0xffff; }
  // The first `bits` (0..128) bits of the key, the rest zero.
  IpKey masked(int bits) const;
  // "1.2.3.4" for IPv4, "2001:db8::" for IPv6.
  std::string toString() const;
};

// The key an address is limited under: IPv6 addresses are grouped by their
// first `ipv6_prefix` bits (one host usually owns a whole /64), IPv4
// addresses by their first `ipv4_prefix` bits (0..32; 32: each its own key).
inline IpKey limitKey(const IpKey& addr, int ipv6_prefix, int ipv4_prefix = 32) {
  return addr.isV4() ? (ipv4_prefix >= 32 ? addr : addr.masked(96 + ipv4_prefix))
                     : addr.masked(ipv6_prefix);
}

// A token bucket's parameters: `burst` tokens, refilled at `rate` per second.
struct RateSpec {
  int64_t interval_ns = 0;   // time to earn one token; 0 = unlimited
  int64_t tolerance_ns = 0;  // (burst - 1) * interval_ns

  // `per_second` > 0 and `burst` >= 1; per_second <= 0 makes an unlimited
  // spec. Rates are kept to the nanosecond (error < 1e-9 relative at 1/s).
  static RateSpec make(double per_second, uint32_t burst);
  bool unlimited() const { return interval_ns == 0; }
  // The bucket size.
  int64_t burst() const { return unlimited() ? 0 : tolerance_ns / interval_ns + 1; }
};

// A token bucket stored as one "theoretical arrival time" (the GCRA form):
// the bucket is full when tat_ns <= now, and holds
// floor((burst * interval - (tat_ns - now)) / interval) tokens otherwise.
// Exactly a token bucket of `burst` tokens refilled continuously at `rate`,
// in 8 bytes with no multiplication or division on take(). Not thread-safe
// by itself (IpTable guards it with the shard lock; a per-connection bucket
// is used by one thread).
struct TokenBucket {
  int64_t tat_ns = 0;  // 0: full (any clock value >= 0 is "later")

  // Takes one token at `now_ns`. Returns false (and changes nothing) when
  // the bucket is empty.
  bool take(const RateSpec& r, int64_t now_ns) {
    if (r.interval_ns == 0) return true;
    int64_t tat = tat_ns > now_ns ? tat_ns : now_ns;
    if (tat - now_ns > r.tolerance_ns) return false;
    tat_ns = tat + r.interval_ns;
    return true;
  }
  // Gives back the token of the last successful take().
  void refund(const RateSpec& r) { tat_ns -= r.interval_ns; }
  // Whole tokens available at `now_ns` (0..burst; burst when unlimited).
  int64_t tokens(const RateSpec& r, int64_t now_ns) const;
  // True when the bucket is full at `now_ns` (nothing to remember).
  bool full(int64_t now_ns) const { return tat_ns <= now_ns; }
};

// A test-and-test-and-set spin lock for very short critical sections; yields
// the CPU after a burst of spins so a preempted holder is not starved.
class SpinLock {
 public:
  void lock() {
    while (locked_.exchange(true, std::memory_order_acquire)) wait();
  }
  void unlock() { locked_.store(false, std::memory_order_release); }

 private:
  void wait();
  std::atomic<bool> locked_{false};
};

class IpTable {
 public:
  struct Options {
    // Most addresses tracked at once (split evenly across shards).
    size_t max_entries = 100000;
    // Number of independently locked shards (1..1024).
    size_t shards = 16;
    // Concurrent connections per key (>= 1).
    uint32_t max_per_key = 10;
    // New-connection token bucket per key.
    RateSpec rate = RateSpec::make(5, 10);
    // An idle entry expires this long after it was last seen.
    int64_t ttl_ns = int64_t{300} * 1000 * 1000 * 1000;
    // Hash seed; 0 picks a random one (keys are attacker-chosen: the seed
    // keeps probe sequences unpredictable).
    uint64_t seed = 0;
    // Optional metrics (may be null): entries tracked, evictions for space.
    stats::Gauge* entries_gauge = nullptr;
    stats::Counter* evictions_counter = nullptr;
  };

  enum class Verdict : uint8_t {
    kAdmitted,          // counted: call release() when the connection ends
    kPerIpConnections,  // the key already has max_per_key connections
    kPerIpRate,         // the key's token bucket is empty
    kTableFull,         // new key, and its shard holds only live entries
  };

  // An entry as seen by find() (tests, diagnostics).
  struct EntryView {
    uint32_t connections = 0;
    int64_t tokens = 0;
    int64_t last_seen_ns = 0;
  };

  explicit IpTable(const Options& options);
  ~IpTable();
  IpTable(const IpTable&) = delete;
  IpTable& operator=(const IpTable&) = delete;

  // Admits one new connection from `key` at `now_ns`: checks the
  // concurrency limit, then takes a token. On kAdmitted the count went up
  // by one. Inserts the key if it is new (evicting an idle entry if its
  // shard is full; *evicted is set to true then). Never allocates.
  Verdict acquire(const IpKey& key, int64_t now_ns, bool* evicted = nullptr) {
    return acquire(key, hash(key), now_ns, evicted);
  }
  // acquire() with the key's hash(), for callers that keep it for release().
  // On kAdmitted, *slot (if given) receives the entry's position: a hint for
  // release() (entries can move when others are erased; the hint is checked).
  Verdict acquire(const IpKey& key, uint64_t hash, int64_t now_ns, bool* evicted = nullptr,
                  uint32_t* slot = nullptr);
  // Ends one admitted connection of `key` (count down, last seen = now).
  void release(const IpKey& key, int64_t now_ns) { release(key, hash(key), now_ns); }
  // release() with the key's hash() (saves rehashing on the close path) and
  // the position acquire() reported (saves the probe when the entry has not
  // moved; kNoSlot: probe).
  void release(const IpKey& key, uint64_t hash, int64_t now_ns, uint32_t slot = kNoSlot);
  static constexpr uint32_t kNoSlot = 0xffffffffu;
  // Undoes the last kAdmitted acquire() of `key` (count down, token given
  // back), for a connection refused by a later check (the global cap).
  void cancel(const IpKey& key, int64_t now_ns);

  // Removes the idle entries of shard `shard` not seen for ttl. Returns how
  // many were removed. Takes the shard lock for one pass over the shard.
  size_t sweep(size_t shard, int64_t now_ns);
  // sweep() over every shard.
  size_t sweepAll(int64_t now_ns);

  // The entry of `key` now, or nullopt if it is not tracked.
  std::optional<EntryView> find(const IpKey& key, int64_t now_ns) const;

  // The table's seeded hash of `key` (pure; a few multiplications).
  uint64_t hash(const IpKey& key) const {
    uint64_t a = (key.lo ^ seed_) * 0x9E3779B97F4A7C15ULL;
    uint64_t b = (key.hi + seed_) * 0xC2B2AE3D27D4EB4FULL;
    uint64_t h = a ^ (b >> 7) ^ b;
    h ^= h >> 32;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 29;
    return h;
  }

  size_t shardCount() const { return shard_count_; }
  // Addresses tracked now (sum over shards; racy but never torn).
  size_t size() const;
  // The most addresses the table will hold.
  size_t capacity() const { return capacity_; }
  // Entries evicted to make room since construction.
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  // Bytes of slot memory reserved (the table's memory bound).
  size_t slotBytes() const;
  const Options& options() const { return options_; }

  // Idle entries looked at (at most) to choose one to evict.
  static constexpr int kEvictionSample = 8;

 private:
  // One address. All-zero bytes is an empty slot (the slots are calloc'ed).
  struct Slot {
    uint64_t hi;
    uint64_t lo;
    int64_t tat_ns;        // the token bucket (TokenBucket::tat_ns)
    int64_t last_seen_ns;  // last acquire/release/cancel
    uint32_t count;        // live connections
    uint32_t used;         // 1: occupied
  };

  struct alignas(64) Shard {
    ~Shard() { std::free(slots); }
    mutable SpinLock lock;
    Slot* slots = nullptr;
    uint32_t nslots = 0;                   // > cap, so a probe always ends at an empty slot
    uint32_t cap = 0;                      // most entries
    uint32_t size = 0;                     // entries (guarded by lock)
    uint32_t live = 0;                     // entries with count > 0 (guarded by lock)
    uint32_t hand = 0;                     // eviction clock hand (guarded by lock)
    std::atomic<uint32_t> size_mirror{0};  // `size` for lock-free readers
  };

  Shard& shardFor(uint64_t hash) const { return shards_[((hash >> 32) * shard_count_) >> 32]; }
  // The slot where a probe for `hash` starts.
  static uint32_t homeOf(uint64_t hash, uint32_t nslots) {
    return static_cast<uint32_t>(((hash & 0xffffffffULL) * nslots) >> 32);
  }
  // Index of `key` in `s`, or of the empty slot where it would go.
  uint32_t probe(const Shard& s, const IpKey& key, uint64_t hash, bool* found) const;
  // acquire()'s slow path for a key not in its shard: makes room (evicting
  // if the shard is full) and inserts it at a full bucket. Returns false
  // (kTableFull) if there is no room; else the key's new index in *index.
  bool insert(Shard& s, const IpKey& key, uint64_t hash, int64_t now_ns, bool* evicted,
              uint32_t* index);
  void eraseAt(Shard& s, uint32_t index);
  bool evictOne(Shard& s, int64_t now_ns);

  Options options_;
  uint64_t seed_;
  size_t shard_count_;
  size_t capacity_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<uint64_t> evictions_{0};
};

// The hot paths are inline (forced: GCC would keep acquire() out of line,
// ~1 ns per call): an admit and a release are each one locked instruction
// (the shard lock) and a few loads and stores (see BM_Limiter_Allow).

inline uint32_t IpTable::probe(const Shard& s, const IpKey& key, uint64_t hash,
                               bool* found) const {
  uint32_t i = homeOf(hash, s.nslots);
  for (;;) {
    const Slot& e = s.slots[i];
    if (e.used == 0) {
      *found = false;
      return i;
    }
    if (e.lo == key.lo && e.hi == key.hi) {
      *found = true;
      return i;
    }
    if (++i == s.nslots) i = 0;
  }
}

__attribute__((always_inline)) inline IpTable::Verdict IpTable::acquire(
    const IpKey& key, uint64_t h, int64_t now_ns, bool* evicted, uint32_t* slot) {
  Shard& s = shardFor(h);
  std::lock_guard<SpinLock> guard(s.lock);
  bool found;
  uint32_t i = probe(s, key, h, &found);
  if (!found && !insert(s, key, h, now_ns, evicted, &i)) return Verdict::kTableFull;
  Slot& e = s.slots[i];
  e.last_seen_ns = now_ns;
  if (e.count >= options_.max_per_key) return Verdict::kPerIpConnections;
  TokenBucket bucket{e.tat_ns};
  if (!bucket.take(options_.rate, now_ns)) return Verdict::kPerIpRate;
  e.tat_ns = bucket.tat_ns;
  if (e.count++ == 0) ++s.live;
  if (slot != nullptr) *slot = i;
  return Verdict::kAdmitted;
}

__attribute__((always_inline)) inline void IpTable::release(const IpKey& key, uint64_t h,
                                                            int64_t now_ns, uint32_t slot) {
  Shard& s = shardFor(h);
  std::lock_guard<SpinLock> guard(s.lock);
  uint32_t i = slot;
  if (i >= s.nslots || s.slots[i].used == 0 || s.slots[i].lo != key.lo ||
      s.slots[i].hi != key.hi) {
    bool found;
    i = probe(s, key, h, &found);
    if (!found) return;  // cannot happen: live entries are never evicted
  }
  Slot& e = s.slots[i];
  if (e.count > 0 && --e.count == 0) --s.live;
  e.last_seen_ns = now_ns;
}

}  // namespace ip_limiter
}  // namespace gw
