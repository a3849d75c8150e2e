#include "filters/ip_limiter/ip_table.h"

#include <arpa/inet.h>
#include <sched.h>
#include <time.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>

#include "core/sdk/stats.h"

namespace gw {
namespace ip_limiter {

IpKey IpKey::fromV6(const uint8_t* bytes) {
  IpKey k;
  for (int i = 0; i < 8; ++i) k.hi = (k.hi << 8) | bytes[i];
  for (int i = 8; i < 16; ++i) k.lo = (k.lo << 8) | bytes[i];
  return k;
}

IpKey IpKey::masked(int bits) const {
  if (bits >= 128) return *this;
  if (bits <= 0) return IpKey{};
  if (bits <= 64) return IpKey{bits == 64 ? hi : hi & (~uint64_t{0} << (64 - bits)), 0};
  return IpKey{hi, lo & (~uint64_t{0} << (128 - bits))};
}

std::string IpKey::toString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (isV4()) {
    in_addr a;
    a.s_addr = htonl(static_cast<uint32_t>(lo));
    inet_ntop(AF_INET, &a, buf, sizeof(buf));
  } else {
    uint8_t b[16];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(hi >> (56 - 8 * i));
    for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<uint8_t>(lo >> (56 - 8 * i));
    inet_ntop(AF_INET6, b, buf, sizeof(buf));
  }
  return buf;
}

RateSpec RateSpec::make(double per_second, uint32_t burst) {
  RateSpec r;
  if (!(per_second > 0)) return r;
  double interval = std::llround(1e9 / per_second);
  r.interval_ns = interval < 1 ? 1 : static_cast<int64_t>(interval);
  if (burst < 1) burst = 1;
  r.tolerance_ns = static_cast<int64_t>(burst - 1) * r.interval_ns;
  return r;
}

int64_t TokenBucket::tokens(const RateSpec& r, int64_t now_ns) const {
  if (r.interval_ns == 0) return INT64_MAX;
  int64_t debt = tat_ns > now_ns ? tat_ns - now_ns : 0;
  int64_t t = (r.tolerance_ns + r.interval_ns - debt) / r.interval_ns;
  return t < 0 ? 0 : t;
}

void SpinLock::wait() {
  int spins = 0;
  while (locked_.load(std::memory_order_relaxed)) {
    if (++spins < 128) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      sched_yield();
      spins = 0;
    }
  }
}

IpTable::IpTable(const Options& options) : options_(options) {
  if (options_.max_entries < 1) options_.max_entries = 1;
  if (options_.max_per_key < 1) options_.max_per_key = 1;
  shard_count_ = options_.shards < 1 ? 1 : options_.shards;
  if (shard_count_ > 1024) shard_count_ = 1024;
  if (shard_count_ > options_.max_entries) shard_count_ = options_.max_entries;
  capacity_ = options_.max_entries;
  seed_ = options_.seed;
  if (seed_ == 0) {
    std::random_device rd;
    seed_ = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ 0x5bd1e9955bd1e995ULL;
  }
  shards_.reset(new Shard[shard_count_]);
  size_t base = capacity_ / shard_count_;
  size_t extra = capacity_ % shard_count_;
  for (size_t i = 0; i < shard_count_; ++i) {
    Shard& s = shards_[i];
    s.cap = static_cast<uint32_t>(base + (i < extra ? 1 : 0));
    // Load factor at most 0.7: short linear probes even when full.
    size_t n = s.cap + s.cap * 3 / 7 + 1;
    s.nslots = static_cast<uint32_t>(n);
    s.slots = static_cast<Slot*>(std::calloc(n, sizeof(Slot)));
    if (s.slots == nullptr) throw std::bad_alloc();
  }
}

IpTable::~IpTable() {
  if (options_.entries_gauge != nullptr) options_.entries_gauge->dec(static_cast<int64_t>(size()));
}

// Backward-shift deletion for linear probing: later entries of the same
// cluster move up so every entry stays reachable from its home slot.
void IpTable::eraseAt(Shard& s, uint32_t index) {
  uint32_t hole = index;
  uint32_t j = index;
  for (;;) {
    if (++j == s.nslots) j = 0;
    Slot& e = s.slots[j];
    if (e.used == 0) break;
    uint32_t home = homeOf(hash(IpKey{e.hi, e.lo}), s.nslots);
    // The entry at j may move into the hole unless its home lies cyclically
    // in (hole, j].
    bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    s.slots[hole] = e;
    hole = j;
  }
  std::memset(&s.slots[hole], 0, sizeof(Slot));
}

bool IpTable::evictOne(Shard& s, int64_t now_ns) {
  if (s.live >= s.size) return false;  // every entry has live connections
  int64_t best = -1;
  int64_t best_seen = 0;
  int sampled = 0;
  for (uint32_t n = 0; n < s.nslots; ++n) {
    uint32_t i = s.hand;
    s.hand = i + 1 == s.nslots ? 0 : i + 1;
    const Slot& e = s.slots[i];
    if (e.used == 0 || e.count != 0) continue;
    if (now_ns - e.last_seen_ns >= options_.ttl_ns) {
      best = i;  // expired anyway: take it
      break;
    }
    if (best < 0 || e.last_seen_ns < best_seen) {
      best = i;
      best_seen = e.last_seen_ns;
    }
    if (++sampled >= kEvictionSample) break;
  }
  if (best < 0) return false;
  eraseAt(s, static_cast<uint32_t>(best));
  --s.size;
  s.size_mirror.store(s.size, std::memory_order_relaxed);
  evictions_.fetch_add(1, std::memory_order_relaxed);
  if (options_.entries_gauge != nullptr) options_.entries_gauge->dec();
  if (options_.evictions_counter != nullptr) options_.evictions_counter->inc();
  return true;
}

bool IpTable::insert(Shard& s, const IpKey& key, uint64_t h, int64_t now_ns, bool* evicted,
                     uint32_t* index) {
  if (s.size >= s.cap) {
    if (!evictOne(s, now_ns)) return false;
    if (evicted != nullptr) *evicted = true;
    bool found;
    *index = probe(s, key, h, &found);  // the eviction may have moved entries
  }
  Slot& n = s.slots[*index];
  n.hi = key.hi;
  n.lo = key.lo;
  n.tat_ns = now_ns;  // a full bucket
  n.count = 0;
  n.used = 1;
  ++s.size;
  s.size_mirror.store(s.size, std::memory_order_relaxed);
  if (options_.entries_gauge != nullptr) options_.entries_gauge->inc();
  return true;
}

void IpTable::cancel(const IpKey& key, int64_t now_ns) {
  uint64_t h = hash(key);
  Shard& s = shardFor(h);
  std::lock_guard<SpinLock> guard(s.lock);
  bool found;
  uint32_t i = probe(s, key, h, &found);
  if (!found) return;
  Slot& e = s.slots[i];
  if (e.count > 0 && --e.count == 0) --s.live;
  TokenBucket bucket{e.tat_ns};
  bucket.refund(options_.rate);
  e.tat_ns = bucket.tat_ns;
  e.last_seen_ns = now_ns;
}

size_t IpTable::sweep(size_t shard, int64_t now_ns) {
  if (shard >= shard_count_) return 0;
  Shard& s = shards_[shard];
  std::lock_guard<SpinLock> guard(s.lock);
  // An empty shard has nothing to expire. Its slots may never have been
  // touched (calloc'd): walking them would fault in every page (1,280 page
  // faults for the default 100,000 entries, seen once per process in
  // tools/e2e_bench).
  if (s.size == 0) return 0;
  size_t removed = 0;
  for (uint32_t i = 0; i < s.nslots;) {
    const Slot& e = s.slots[i];
    if (e.used != 0 && e.count == 0 && now_ns - e.last_seen_ns >= options_.ttl_ns) {
      eraseAt(s, i);  // a later entry may have moved into i: look again
      ++removed;
      continue;
    }
    ++i;
  }
  if (removed > 0) {
    s.size -= static_cast<uint32_t>(removed);
    s.size_mirror.store(s.size, std::memory_order_relaxed);
    if (options_.entries_gauge != nullptr)
      options_.entries_gauge->dec(static_cast<int64_t>(removed));
  }
  return removed;
}

size_t IpTable::sweepAll(int64_t now_ns) {
  size_t removed = 0;
  for (size_t i = 0; i < shard_count_; ++i) removed += sweep(i, now_ns);
  return removed;
}

std::optional<IpTable::EntryView> IpTable::find(const IpKey& key, int64_t now_ns) const {
  uint64_t h = hash(key);
  Shard& s = shardFor(h);
  std::lock_guard<SpinLock> guard(s.lock);
  bool found;
  uint32_t i = probe(s, key, h, &found);
  if (!found) return std::nullopt;
  const Slot& e = s.slots[i];
  EntryView v;
  v.connections = e.count;
  v.tokens = TokenBucket{e.tat_ns}.tokens(options_.rate, now_ns);
  v.last_seen_ns = e.last_seen_ns;
  return v;
}

size_t IpTable::size() const {
  size_t n = 0;
  for (size_t i = 0; i < shard_count_; ++i)
    n += shards_[i].size_mirror.load(std::memory_order_relaxed);
  return n;
}

size_t IpTable::slotBytes() const {
  size_t n = 0;
  for (size_t i = 0; i < shard_count_; ++i) n += shards_[i].nslots * sizeof(Slot);
  return n;
}

}  // namespace ip_limiter
}  // namespace gw
