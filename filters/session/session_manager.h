// filters/session/session_manager.h — the process-wide session table.
//
// Defines SessionManager, the memory store's shared part: a sharded table
// (`shards`, default 16) mapping session id -> SessionSlot, serving lookups
// and updates from every worker and from the admin API, plus a sharded
// player id -> session id map for duplicate-login checks. It is the
// SessionRegistry the admin API asks (GET /sessions/{id}, POST .../kick);
// with a Redis store it also answers for sessions on other replicas through
// a FleetView.
//
// Also defines SessionRecord (everything known about one session, owned by
// the worker that serves it), SessionHome (that worker, as other threads
// see it), SessionView (what get() copies out) and processReplicaName().
//
// Table: per shard, an open-addressing hash table with linear probing and
// backward-shift deletion over 16-byte slots (the id, and the record pointer
// packed with the worker and the state), so a lookup touches one cache line
// of a table half the size a 32-byte slot would need (tables of 2 MiB and
// more are mapped directly and asked for transparent huge pages).
// Writers (add, remove, every locked() call) take the shard's spin lock,
// on its own cache line; get() takes no lock at all: it reads optimistically
// under the shard's sequence counter (a seqlock: odd while a writer works)
// and retries if a writer interfered, so concurrent lookups never bounce a
// lock's cache line between cores. A shard that doubles never frees its old
// slot array while running (a mapped one's memory is returned with
// MADV_DONTNEED and reads as zeros), so a reader still looking at it reads
// stale slots or zeros — then sees the sequence change and retries — never
// freed memory. Nothing is allocated per
// lookup and, once a shard has grown to its working size, nothing per insert
// or removal. Lock hold times are a few dozen nanoseconds, except while a
// shard doubles (rare; amortized).
//
// Threads: every method is thread-safe. Fields of a SessionRecord marked
// "guarded" may be read by any thread only inside locked() for that id, and
// written by the owning worker only there too.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/close_reason.h"
#include "core/sdk/clock.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/session_registry.h"
#include "filters/session/session_config.h"
#include "filters/session/token.h"

namespace gw {
namespace session {

class SessionFilter;
class SessionStore;

// The name of this replica in records and admin output: $GATEWAY_NODE_NAME,
// else $HOSTNAME, else the host name. The same name SessionIdGenerator
// hashes into its node id when none is configured.
const std::string& processReplicaName();

// Milliseconds since the Unix epoch (records and Redis fields).
int64_t unixMillis();

// The worker a record lives on, as other threads see it.
class SessionHome {
 public:
  virtual ~SessionHome() = default;
  // The worker's loop: other threads post() to it.
  virtual Dispatcher& dispatcher() = 0;
  // On the worker's thread: closes session `id` if this worker serves it
  // (connected: closes the client with `reason`; lingering: ends it so it
  // cannot be resumed). No-op otherwise.
  virtual void kickLocal(uint64_t id, CloseReason reason, const std::string& why) = 0;
  // On the worker's thread: record `serial` of session `id` was superseded
  // (the session was resumed elsewhere): closes its connection, or drops its
  // lingering state, without telling backends. No-op if it is gone.
  virtual void releaseMoved(uint64_t id, uint64_t serial) = 0;
};

enum class SlotState : uint8_t {
  kConnected = 1,  // a client connection serves the session
  kLingering = 2,  // the client left; it may resume until linger_until_s
};

// Everything known about one session. Owned by its worker (SessionHome);
// the table points to the current record of each id. One per session, on
// the heap of the worker that serves it (connected or lingering); fields
// are ordered to pack (144 bytes plus the client Address).
struct SessionRecord {
  // --- Set at creation, then immutable ---
  uint64_t id = 0;
  uint64_t serial = 0;  // unique per record in this process
  SessionHome* home = nullptr;
  std::shared_ptr<const SessionConfig> config;  // also names the affinity's indexes
  SessionStore* store = nullptr;
  int64_t created_ms = 0;  // Unix ms when the session (not this record) began
  Address client;
  Token token{};
  uint16_t worker = 0;
  bool resumable = false;  // the client holds a resume token

  // --- Guarded by the shard lock of `id` ---
  bool lingering = false;
  uint32_t linger_until_s = 0;  // lingering: coarseNowSeconds() when resume closes
  uint64_t player_id = 0;
  // cluster -> host, as indexes into config->affinity_names (names it does
  // not know are kept as names); see affinity.h.
  SessionAffinity affinity;

  // --- Lock-free ---
  std::atomic<uint32_t> last_active_s{0};  // coarseNowSeconds() of the last frame either way

  // --- Owning worker only ---
  uint32_t refreshed_active_s = 0;  // last_active_s the store last refreshed
  SessionFilter* filter = nullptr;  // nullptr while lingering
  bool persisted = false;           // the Redis record was written

  // The names affinity's indexes refer to.
  const AffinityNames& affinityNames() const {
    return config ? config->affinity_names : AffinityNames::empty();
  }
  // Owning worker only: a token that expires when the record is destroyed;
  // asynchronous callbacks hold it and do nothing once it expired. Made on
  // first use (only the Redis store's callbacks need one).
  std::weak_ptr<char> lifeToken() {
    if (!life_) life_ = std::make_shared<char>(0);
    return life_;
  }

 private:
  std::shared_ptr<char> life_;  // see lifeToken(); nullptr until then
};

// A table slot: 16 bytes, four per cache line. id 0 = empty. The second
// word packs the record pointer (x86-64 user pointers fit in 48 bits), the
// worker (12 bits) and the state (2 bits).
struct alignas(16) SessionSlot {
  uint64_t id = 0;
  uint64_t bits = 0;

  static constexpr uint64_t kPointerMask = (uint64_t{1} << 48) - 1;
  static constexpr int kWorkerShift = 48;
  static constexpr int kStateShift = 60;

  SessionSlot() = default;
  SessionSlot(const SessionSlot& o) = default;
  // Copies with relaxed atomic stores: lock-free readers may be reading the
  // slot (they detect the change through the shard's sequence counter).
  SessionSlot& operator=(const SessionSlot& o) {
    __atomic_store_n(&id, o.id, __ATOMIC_RELAXED);
    __atomic_store_n(&bits, o.bits, __ATOMIC_RELAXED);
    return *this;
  }
  SessionSlot(uint64_t session, SessionRecord* rec, uint16_t worker, SlotState state)
      : id(session),
        bits((reinterpret_cast<uint64_t>(rec) & kPointerMask) |
             (uint64_t{worker & 0xfffu} << kWorkerShift) |
             (uint64_t{static_cast<uint8_t>(state)} << kStateShift)) {}

  SessionRecord* record() const { return reinterpret_cast<SessionRecord*>(bits & kPointerMask); }
  uint16_t worker() const { return static_cast<uint16_t>((bits >> kWorkerShift) & 0xfff); }
  SlotState state() const { return static_cast<SlotState>((bits >> kStateShift) & 3); }
  void setState(SlotState s) {
    uint64_t v =
        (bits & ~(uint64_t{3} << kStateShift)) | (uint64_t{static_cast<uint8_t>(s)} << kStateShift);
    __atomic_store_n(&bits, v, __ATOMIC_RELAXED);
  }
};
static_assert(sizeof(SessionSlot) == 16, "four slots per cache line");

// What get() copies out.
struct SessionView {
  uint64_t id = 0;
  uint16_t worker = 0;
  SlotState state = SlotState::kConnected;
  SessionRecord* record = nullptr;  // compare only: deref needs the shard lock
};

// Cross-replica answers for the admin API (the Redis store's blocking view).
class FleetView {
 public:
  virtual ~FleetView() = default;
  // JSON for session `id` on another replica, or nullopt if unknown.
  virtual std::optional<std::string> describe(uint64_t id) = 0;
  // Asks the replica serving `id` to kick it. False if the fleet does not
  // know the session (or cannot be asked).
  virtual bool kick(uint64_t id, std::string_view why) = 0;
};

class SessionManager : public SessionRegistry {
 public:
  // `shards` (>= 1) independent locks and tables.
  explicit SessionManager(size_t shards = 16);
  ~SessionManager() override;
  SessionManager(const SessionManager&) = delete;
  SessionManager& operator=(const SessionManager&) = delete;

  // The process-wide manager: created (with `shards`) and installed as the
  // SessionRegistry on first call; later calls return it whatever their
  // `shards` (the shard count cannot change while running).
  static std::shared_ptr<SessionManager> process(size_t shards);

  // Sizes every shard for `sessions` in total (at most 3/4 full), so the
  // table does not double (a pause of a few ms per shard) until it holds
  // more. Never shrinks.
  void reserve(size_t sessions);

  // One shard's table, for locked().
  class Shard;
  class Table {
   public:
    // The slot of `id`, or nullptr.
    SessionSlot* find(uint64_t id);
    // Inserts `slot` (slot.id != 0), replacing the slot of the same id.
    // Returns the record it replaced, or nullptr. The returned slot pointer
    // is valid until the next insert/erase.
    SessionSlot* insert(const SessionSlot& slot, SessionRecord** replaced = nullptr);
    // Removes `id`. Returns true if it was there.
    bool erase(uint64_t id);

   private:
    friend class SessionManager;
    explicit Table(Shard& s) : s_(s) {}
    Shard& s_;
  };

  // Runs fn(Table&) with the shard of `id` locked and returns its result.
  // fn must be short and must not call back into this manager.
  template <class F>
  auto locked(uint64_t id, F&& fn) -> decltype(fn(std::declval<Table&>()));

  // Convenience wrappers over locked():
  // Inserts or replaces `id`. Returns the replaced record (or nullptr).
  SessionRecord* add(uint64_t id, SessionRecord* record, uint16_t worker,
                     SlotState state = SlotState::kConnected);
  // Copies the slot of `id` into *out. False if unknown. Never allocates.
  bool get(uint64_t id, SessionView* out) const;
  // Removes `id` if it maps to `only_if` (any record if nullptr). Returns
  // true if removed.
  bool remove(uint64_t id, const SessionRecord* only_if = nullptr);
  // Entries (connected and lingering), all shards.
  size_t size() const;
  size_t shardCount() const { return shard_count_; }

  // Binds `player` to `session`. Returns the session the player was bound
  // to before if it was another one, else 0.
  uint64_t bindPlayer(uint64_t player, uint64_t session);
  // Removes the binding if it still names `session`.
  void unbindPlayer(uint64_t player, uint64_t session);
  // The session bound to `player`, or 0.
  uint64_t sessionOfPlayer(uint64_t player) const;

  // Times any shard's table doubled, all managers of the process (the only
  // allocations the table makes; for benchmarks).
  static uint64_t tableGrowths();

  // Connected sessions in this process (kept by the workers).
  void addConnected(int64_t delta) { connected_.fetch_add(delta, std::memory_order_relaxed); }

  // Adds a view of other replicas (the Redis store installs one); the
  // admin API falls back to it for ids unknown here. Thread-safe.
  void setFleet(std::shared_ptr<FleetView> fleet);

  // SessionRegistry (admin API, any thread).
  std::optional<std::string> describeJson(uint64_t id) override;
  bool kick(uint64_t id, std::string_view why) override;
  size_t activeSessions() override;

 private:
  Shard& shardOf(uint64_t hash) const;

  size_t shard_count_;
  std::unique_ptr<Shard[]> shards_;
  struct PlayerShard;
  std::unique_ptr<PlayerShard[]> players_;
  std::atomic<int64_t> connected_{0};
  mutable std::mutex fleet_mu_;
  std::shared_ptr<FleetView> fleet_;
};

// --- implementation details of locked() ---

// A test-and-test-and-set spin lock that yields after a short spin.
class SpinLock {
 public:
  void lock() {
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
    slowLock();
  }
  void unlock() { locked_.store(false, std::memory_order_release); }

 private:
  void slowLock();
  std::atomic<bool> locked_{false};
};

// splitmix64's finalizer: spreads sequential ids over the table.
inline uint64_t mixId(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// A shard's slot storage (the writer's bookkeeping).
struct SlotArray {
  SessionSlot* slots = nullptr;
  size_t capacity = 0;   // a power of two
  size_t bytes = 0;      // of the storage
  bool mapped = false;   // from mmap (else aligned_alloc)
};

class SessionManager::Shard {
 public:
  Shard() = default;
  ~Shard();
  alignas(64) SpinLock lock;
  std::atomic<uint32_t> seq{0};  // odd while a writer changes the table
  // The published table: slots pointer | log2(capacity) << 56, one word so a
  // reader loads both consistently.
  std::atomic<uint64_t> table{0};
  SlotArray current;              // what `table` points to (writer only)
  size_t count = 0;
  std::vector<SlotArray> retired;  // replaced arrays (see the banner)

  static uint64_t pack(const SlotArray& a) {
    return reinterpret_cast<uint64_t>(a.slots) |
           (static_cast<uint64_t>(__builtin_ctzll(a.capacity)) << 56);
  }
  static SessionSlot* slotsOf(uint64_t t) {
    return reinterpret_cast<SessionSlot*>(t & ((uint64_t{1} << 56) - 1));
  }
  static size_t maskOf(uint64_t t) { return (size_t{1} << (t >> 56)) - 1; }

  // With the lock held:
  SessionSlot* find(uint64_t id, uint64_t h);
  SessionSlot* insert(const SessionSlot& slot, uint64_t h, SessionRecord** replaced);
  bool erase(uint64_t id, uint64_t h);
  // Rehashes into `capacity` slots (a power of two; 0: double).
  void grow(size_t capacity = 0);
  void beginWrite() {
    seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }
  void endWrite() { seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

  // Without the lock: copies the slot of `id` into *out; false if absent.
  // Inline (below): lookups are a few dozen instructions around one cache
  // miss, so back-to-back lookups overlap their misses.
  bool read(uint64_t id, uint64_t h, SessionView* out) const;
  void waitForWriter(int attempt) const;
  char pad[64];  // keeps the next shard's lock off this cache line
};

inline SessionManager::Shard& SessionManager::shardOf(uint64_t hash) const {
  // The high half picks the shard (fast range); the low bits pick the slot.
  return shards_[((hash >> 32) * shard_count_) >> 32];
}

inline bool SessionManager::Shard::read(uint64_t id, uint64_t h, SessionView* out) const {
  for (int attempt = 0;; ++attempt) {
    uint32_t before = seq.load(std::memory_order_acquire);
    if (before & 1) {
      waitForWriter(attempt);  // a writer is at work
      continue;
    }
    uint64_t t = table.load(std::memory_order_acquire);
    uint64_t bits = 0;
    if (t != 0) {
      size_t mask = maskOf(t);
      const SessionSlot* slots = slotsOf(t);
      // Ends at an empty slot: every version of an array is at most 3/4
      // full (a retired one reads as zeros), even while a writer moves slots.
      for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint64_t k = __atomic_load_n(&slots[i].id, __ATOMIC_RELAXED);
        if (k == id) {
          bits = __atomic_load_n(&slots[i].bits, __ATOMIC_RELAXED);
          break;
        }
        if (k == 0) break;
      }
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (seq.load(std::memory_order_relaxed) != before) continue;
    if (bits == 0) return false;  // a present slot never has 0 state bits
    out->id = id;
    out->worker = static_cast<uint16_t>((bits >> SessionSlot::kWorkerShift) & 0xfff);
    out->state = static_cast<SlotState>((bits >> SessionSlot::kStateShift) & 3);
    out->record = reinterpret_cast<SessionRecord*>(bits & SessionSlot::kPointerMask);
    return true;
  }
}

inline bool SessionManager::get(uint64_t id, SessionView* out) const {
  uint64_t h = mixId(id);
  return shardOf(h).read(id, h, out);
}

template <class F>
auto SessionManager::locked(uint64_t id, F&& fn) -> decltype(fn(std::declval<Table&>())) {
  Shard& s = shardOf(mixId(id));
  struct Guard {
    Shard& s;
    explicit Guard(Shard& x) : s(x) {
      s.lock.lock();
      s.beginWrite();
    }
    ~Guard() {
      s.endWrite();
      s.lock.unlock();
    }
  } guard(s);
  Table t(s);
  return fn(t);
}

}  // namespace session
}  // namespace gw
