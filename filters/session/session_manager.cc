#include "filters/session/session_manager.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <absl/container/flat_hash_map.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "filters/session/session_store.h"

namespace gw {
namespace session {

const std::string& processReplicaName() {
  static const std::string* name = [] {
    const char* n = std::getenv("GATEWAY_NODE_NAME");
    if (n == nullptr || *n == '\0') n = std::getenv("HOSTNAME");
    char buf[256] = {0};
    if (n == nullptr || *n == '\0') {
      gethostname(buf, sizeof(buf) - 1);
      n = buf;
    }
    return new std::string(n);
  }();
  return *name;
}

int64_t unixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SpinLock::slowLock() {
  int spins = 0;
  for (;;) {
    while (locked_.load(std::memory_order_relaxed)) {
      if (++spins < 64) {
        __builtin_ia32_pause();
      } else {
        sched_yield();  // the holder may be descheduled (or growing a shard)
      }
    }
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
  }
}

namespace {

constexpr size_t kMinCapacity = 16;
std::atomic<uint64_t> g_table_growths{0};
constexpr size_t kHugePage = 2 * 1024 * 1024;

// Zeroed storage for `capacity` slots. From 2 MiB up: an anonymous mapping
// (zero-filled by the kernel, so it is not written twice), 2 MiB-aligned and
// advised for transparent huge pages (fewer TLB misses on lookups in a big
// table).
SlotArray allocArray(size_t capacity) {
  SlotArray a;
  size_t bytes = capacity * sizeof(SessionSlot);
  if (bytes >= kHugePage) {
    bytes = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    size_t span = bytes + kHugePage;
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    // Trim to a 2 MiB-aligned range.
    uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    uintptr_t aligned = (start + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
    if (aligned > start) munmap(raw, aligned - start);
    size_t tail = start + span - (aligned + bytes);
    if (tail > 0) munmap(reinterpret_cast<void*>(aligned + bytes), tail);
    madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);
    a.slots = reinterpret_cast<SessionSlot*>(aligned);
    a.mapped = true;
  } else {
    bytes = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (p == nullptr) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    a.slots = static_cast<SessionSlot*>(p);
  }
  a.capacity = capacity;
  a.bytes = bytes;
  return a;
}

void freeArray(const SlotArray& a) {
  if (a.slots == nullptr) return;
  if (a.mapped) {
    munmap(a.slots, a.bytes);
  } else {
    std::free(a.slots);
  }
}

}  // namespace

SessionManager::Shard::~Shard() {
  freeArray(current);
  for (const SlotArray& a : retired) freeArray(a);
}

SessionSlot* SessionManager::Shard::find(uint64_t id, uint64_t h) {
  if (current.slots == nullptr) return nullptr;
  SessionSlot* slots = current.slots;
  size_t mask = current.capacity - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    SessionSlot& s = slots[i];
    if (s.id == id) return &s;
    if (s.id == 0) return nullptr;
  }
}

void SessionManager::Shard::waitForWriter(int attempt) const {
  if (attempt < 64) {
    __builtin_ia32_pause();
  } else {
    sched_yield();  // the writer may be descheduled, or doubling the shard
  }
}

uint64_t SessionManager::tableGrowths() { return g_table_growths.load(std::memory_order_relaxed); }

void SessionManager::Shard::grow(size_t capacity) {
  g_table_growths.fetch_add(1, std::memory_order_relaxed);
  SlotArray old = current;
  size_t cap = capacity != 0 ? capacity : old.slots == nullptr ? kMinCapacity : old.capacity * 2;
  SlotArray fresh = allocArray(cap);
  SessionSlot* to = fresh.slots;
  size_t new_mask = cap - 1;
  if (old.slots != nullptr) {
    // The old slots are read in order; their new homes are random: prefetch
    // the home of the entry a few ahead so the moves overlap their misses.
    // `fresh` is not published yet: plain stores.
    constexpr size_t kAhead = 16;
    SessionSlot* from = old.slots;
    for (size_t i = 0; i < old.capacity; ++i) {
      if (i + kAhead < old.capacity && from[i + kAhead].id != 0)
        __builtin_prefetch(&to[mixId(from[i + kAhead].id) & new_mask], 1);
      if (from[i].id == 0) continue;
      size_t j = mixId(from[i].id) & new_mask;
      while (to[j].id != 0) j = (j + 1) & new_mask;
      to[j].id = from[i].id;
      to[j].bits = from[i].bits;
    }
  }
  current = fresh;
  table.store(pack(fresh), std::memory_order_release);
  if (old.slots != nullptr) {
    // A lock-free reader may still be probing `old`: keep it mapped, give
    // its memory back (it then reads as zeros: the reader sees "absent",
    // then the changed sequence, and retries).
    if (old.mapped) madvise(old.slots, old.bytes, MADV_DONTNEED);
    retired.push_back(old);
  }
}

SessionSlot* SessionManager::Shard::insert(const SessionSlot& slot, uint64_t h,
                                           SessionRecord** replaced) {
  if (replaced) *replaced = nullptr;
  // Load factor at most 3/4: short probe runs for linear probing.
  if (current.slots == nullptr || (count + 1) * 4 > current.capacity * 3) grow();
  SessionSlot* slots = current.slots;
  size_t mask = current.capacity - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    SessionSlot& s = slots[i];
    if (s.id == slot.id) {
      if (replaced) *replaced = s.record();
      s = slot;
      return &s;
    }
    if (s.id == 0) {
      s = slot;
      ++count;
      return &s;
    }
  }
}

bool SessionManager::Shard::erase(uint64_t id, uint64_t h) {
  if (current.slots == nullptr) return false;
  SessionSlot* slots = current.slots;
  size_t mask = current.capacity - 1;
  size_t i = h & mask;
  for (;; i = (i + 1) & mask) {
    if (slots[i].id == id) break;
    if (slots[i].id == 0) return false;
  }
  // Backward-shift deletion: pull later members of the probe run into the
  // hole unless their home lies cyclically after the hole.
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (slots[j].id == 0) break;
    size_t k = mixId(slots[j].id) & mask;
    bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (stays) continue;
    slots[i] = slots[j];
    i = j;
  }
  slots[i] = SessionSlot();
  --count;
  return true;
}

SessionSlot* SessionManager::Table::find(uint64_t id) { return s_.find(id, mixId(id)); }

SessionSlot* SessionManager::Table::insert(const SessionSlot& slot, SessionRecord** replaced) {
  return s_.insert(slot, mixId(slot.id), replaced);
}

bool SessionManager::Table::erase(uint64_t id) { return s_.erase(id, mixId(id)); }

struct SessionManager::PlayerShard {
  alignas(64) SpinLock lock;
  absl::flat_hash_map<uint64_t, uint64_t> sessions;  // player -> session
};

SessionManager::SessionManager(size_t shards)
    : shard_count_(shards == 0 ? 1 : shards),
      shards_(new Shard[shard_count_]),
      players_(new PlayerShard[shard_count_]) {}

SessionManager::~SessionManager() {
  if (SessionRegistry::get() == this) SessionRegistry::install(nullptr);
}

std::shared_ptr<SessionManager> SessionManager::process(size_t shards) {
  static std::mutex mu;
  static std::shared_ptr<SessionManager>* manager = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (manager == nullptr) {
    // Never destroyed: workers may still touch it while the process exits.
    manager = new std::shared_ptr<SessionManager>(std::make_shared<SessionManager>(shards));
    SessionRegistry::install(manager->get());
  }
  return *manager;
}

void SessionManager::reserve(size_t sessions) {
  size_t per_shard = sessions / shard_count_ + 1;
  size_t cap = kMinCapacity;
  while (cap * 3 < per_shard * 4) cap *= 2;
  for (size_t i = 0; i < shard_count_; ++i) {
    Shard& s = shards_[i];
    s.lock.lock();
    if (s.current.slots == nullptr || s.current.capacity < cap) {
      s.beginWrite();
      s.grow(cap);
      s.endWrite();
    }
    s.lock.unlock();
  }
}

SessionRecord* SessionManager::add(uint64_t id, SessionRecord* record, uint16_t worker,
                                   SlotState state) {
  SessionSlot slot(id, record, worker, state);
  return locked(id, [&](Table& t) {
    SessionRecord* replaced = nullptr;
    t.insert(slot, &replaced);
    return replaced;
  });
}

bool SessionManager::remove(uint64_t id, const SessionRecord* only_if) {
  return locked(id, [&](Table& t) {
    SessionSlot* s = t.find(id);
    if (s == nullptr || (only_if != nullptr && s->record() != only_if)) return false;
    return t.erase(id);
  });
}

size_t SessionManager::size() const {
  size_t n = 0;
  for (size_t i = 0; i < shard_count_; ++i) {
    shards_[i].lock.lock();
    n += shards_[i].count;
    shards_[i].lock.unlock();
  }
  return n;
}

uint64_t SessionManager::bindPlayer(uint64_t player, uint64_t session) {
  PlayerShard& p = players_[mixId(player) % shard_count_];
  p.lock.lock();
  uint64_t& slot = p.sessions[player];
  uint64_t previous = slot;
  slot = session;
  p.lock.unlock();
  return previous == session ? 0 : previous;
}

void SessionManager::unbindPlayer(uint64_t player, uint64_t session) {
  PlayerShard& p = players_[mixId(player) % shard_count_];
  p.lock.lock();
  auto it = p.sessions.find(player);
  if (it != p.sessions.end() && it->second == session) p.sessions.erase(it);
  p.lock.unlock();
}

uint64_t SessionManager::sessionOfPlayer(uint64_t player) const {
  PlayerShard& p = players_[mixId(player) % shard_count_];
  p.lock.lock();
  auto it = p.sessions.find(player);
  uint64_t s = it == p.sessions.end() ? 0 : it->second;
  p.lock.unlock();
  return s;
}

void SessionManager::setFleet(std::shared_ptr<FleetView> fleet) {
  std::lock_guard<std::mutex> lock(fleet_mu_);
  fleet_ = std::move(fleet);
}

size_t SessionManager::activeSessions() {
  int64_t n = connected_.load(std::memory_order_relaxed);
  return n < 0 ? 0 : static_cast<size_t>(n);
}

std::optional<std::string> SessionManager::describeJson(uint64_t id) {
  // Copy under the lock, format outside it.
  struct Copy {
    SessionSlot slot;
    std::string listener, client, store;
    std::vector<std::pair<std::string, std::string>> affinity;
    uint32_t last_active_s = 0;
    uint32_t linger_until_s = 0;
    int64_t created_ms = 0;
    uint64_t player_id = 0;
    bool resumable = false;
  } c;
  bool found = locked(id, [&](Table& t) {
    SessionSlot* s = t.find(id);
    if (s == nullptr) return false;
    c.slot = *s;
    if (SessionRecord* r = s->record()) {
      c.listener = r->config ? r->config->listener : "";
      c.store = r->config && r->config->redis ? "redis" : "memory";
      c.client = r->client.toString();
      c.affinity = r->affinity.toPairs(r->affinityNames());
      c.last_active_s = r->last_active_s.load(std::memory_order_relaxed);
      c.linger_until_s = r->lingering ? r->linger_until_s : 0;
      c.created_ms = r->created_ms;
      c.player_id = r->player_id;
      c.resumable = r->resumable;
    }
    return true;
  });
  if (!found) {
    std::shared_ptr<FleetView> fleet;
    {
      std::lock_guard<std::mutex> lock(fleet_mu_);
      fleet = fleet_;
    }
    if (fleet) return fleet->describe(id);
    return std::nullopt;
  }
  uint32_t now = coarseNowSeconds();
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("id");
  w.String(std::to_string(id).c_str());
  w.Key("replica");
  w.String(processReplicaName().c_str());
  w.Key("local");
  w.Bool(true);
  w.Key("worker");
  w.Uint(c.slot.worker());
  w.Key("listener");
  w.String(c.listener.c_str());
  w.Key("store");
  w.String(c.store.c_str());
  w.Key("state");
  w.String(c.slot.state() == SlotState::kLingering ? "lingering" : "connected");
  w.Key("client");
  w.String(c.client.c_str());
  w.Key("created_unix_ms");
  w.Int64(c.created_ms);
  w.Key("idle_seconds");
  w.Uint(now >= c.last_active_s ? now - c.last_active_s : 0);
  w.Key("player_id");
  w.String(std::to_string(c.player_id).c_str());
  w.Key("resumable");
  w.Bool(c.resumable);
  if (c.slot.state() == SlotState::kLingering) {
    w.Key("resume_seconds_left");
    w.Uint(c.linger_until_s > now ? c.linger_until_s - now : 0);
  }
  w.Key("backends");
  w.StartObject();
  for (const auto& [cluster, host] : c.affinity) {
    w.Key(cluster.c_str());
    w.String(host.c_str());
  }
  w.EndObject();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

bool SessionManager::kick(uint64_t id, std::string_view why) {
  std::string reason(why);
  bool found = locked(id, [&](Table& t) {
    SessionSlot* s = t.find(id);
    if (s == nullptr || s->record() == nullptr || s->record()->home == nullptr) return false;
    // Posted while the slot exists: its worker (and dispatcher) is alive.
    SessionHome* home = s->record()->home;
    home->dispatcher().post(
        [home, id, reason] { home->kickLocal(id, CloseReason::kKicked, reason); });
    return true;
  });
  if (found) return true;
  std::shared_ptr<FleetView> fleet;
  {
    std::lock_guard<std::mutex> lock(fleet_mu_);
    fleet = fleet_;
  }
  return fleet ? fleet->kick(id, why) : false;
}

}  // namespace session
}  // namespace gw
