// Unit tests of SessionManager (filters/session/session_manager.h): the
// sharded table against a reference map under random operations, the
// player map, the admin registry (describe, kick posted to the owning
// worker, the fleet fallback), and session-id uniqueness when every worker
// creates sessions at once.
#include "filters/session/session_manager.h"

#include <event2/event.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/sdk/session_info.h"

namespace gw {
namespace session {
namespace {

// A worker as the manager sees it: records kicks instead of closing.
class FakeHome : public SessionHome {
 public:
  FakeHome() : dispatcher_("fake-home") {}
  Dispatcher& dispatcher() override { return dispatcher_; }
  void kickLocal(uint64_t id, CloseReason reason, const std::string& why) override {
    kicks.push_back({id, reason, why});
  }
  void releaseMoved(uint64_t id, uint64_t serial) override { released.push_back({id, serial}); }
  // Runs posted tasks.
  void drain() {
    timeval tv{0, 20000};
    event_base_loopexit(dispatcher_.base(), &tv);
    dispatcher_.run();
  }
  struct Kick {
    uint64_t id;
    CloseReason reason;
    std::string why;
  };
  std::vector<Kick> kicks;
  std::vector<std::pair<uint64_t, uint64_t>> released;

 private:
  Dispatcher dispatcher_;
};

TEST(SessionManagerTest, AddGetRemove) {
  SessionManager m(4);
  SessionRecord r1, r2;
  EXPECT_EQ(m.add(11, &r1, 0), nullptr);
  EXPECT_EQ(m.add(22, &r2, 4095, SlotState::kLingering), nullptr);
  SessionView v;
  ASSERT_TRUE(m.get(22, &v));
  EXPECT_EQ(v.id, 22u);
  EXPECT_EQ(v.record, &r2);  // the packed pointer comes back whole
  EXPECT_EQ(v.worker, 4095);
  EXPECT_EQ(v.state, SlotState::kLingering);
  ASSERT_TRUE(m.get(11, &v));
  EXPECT_EQ(v.record, &r1);
  EXPECT_EQ(v.worker, 0);
  EXPECT_EQ(v.state, SlotState::kConnected);
  EXPECT_FALSE(m.get(33, &v));
  EXPECT_EQ(m.size(), 2u);
  // Replacing returns the old record.
  EXPECT_EQ(m.add(11, &r2, 0), &r1);
  EXPECT_EQ(m.size(), 2u);
  // remove() with a record only removes that record.
  EXPECT_FALSE(m.remove(11, &r1));
  EXPECT_TRUE(m.remove(11, &r2));
  EXPECT_FALSE(m.get(11, &v));
  EXPECT_TRUE(m.remove(22));
  EXPECT_EQ(m.size(), 0u);
}

TEST(SessionManagerTest, MatchesAReferenceMapUnderRandomOperations) {
  // Many ids in few shards: long probe runs, wrap-arounds and growth, so the
  // backward-shift deletion is exercised hard.
  SessionManager m(2);
  std::unordered_map<uint64_t, SessionRecord*> ref;
  std::vector<SessionRecord> records(64);
  std::mt19937_64 rng(42);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 3000; ++i) ids.push_back((rng() % 5000) + 1);
  for (int step = 0; step < 200000; ++step) {
    uint64_t id = ids[rng() % ids.size()];
    SessionRecord* rec = &records[rng() % records.size()];
    switch (rng() % 3) {
      case 0:
        EXPECT_EQ(m.add(id, rec, 0), ref.count(id) ? ref[id] : nullptr);
        ref[id] = rec;
        break;
      case 1:
        EXPECT_EQ(m.remove(id), ref.erase(id) == 1);
        break;
      default: {
        SessionView v;
        bool found = m.get(id, &v);
        ASSERT_EQ(found, ref.count(id) == 1) << "step " << step << " id " << id;
        if (found) {
          EXPECT_EQ(v.record, ref[id]);
        }
      }
    }
  }
  EXPECT_EQ(m.size(), ref.size());
  for (const auto& [id, rec] : ref) {
    SessionView v;
    ASSERT_TRUE(m.get(id, &v)) << id;
    EXPECT_EQ(v.record, rec);
  }
}

TEST(SessionManagerTest, OneMillionSessions) {
  SessionManager m(16);
  SessionRecord r;
  const uint64_t n = 1000000;
  for (uint64_t i = 1; i <= n; ++i) ASSERT_EQ(m.add(i * 4099, &r, 0), nullptr);
  EXPECT_EQ(m.size(), n);
  SessionView v;
  for (uint64_t i = 1; i <= n; i += 997) ASSERT_TRUE(m.get(i * 4099, &v));
  for (uint64_t i = 1; i <= n; i += 2) ASSERT_TRUE(m.remove(i * 4099));
  EXPECT_EQ(m.size(), n / 2);
  for (uint64_t i = 1; i <= n; ++i) ASSERT_EQ(m.get(i * 4099, &v), i % 2 == 0) << i;
}

TEST(SessionManagerTest, ReserveKeepsEntriesAndAvoidsGrowth) {
  SessionManager m(4);
  SessionRecord r;
  for (uint64_t i = 1; i <= 1000; ++i) m.add(i, &r, 0);
  m.reserve(100000);
  uint64_t growths = SessionManager::tableGrowths();
  for (uint64_t i = 1001; i <= 70000; ++i) m.add(i, &r, 0);
  EXPECT_EQ(SessionManager::tableGrowths(), growths);  // no doubling up to the reservation
  SessionView v;
  for (uint64_t i = 1; i <= 70000; ++i) ASSERT_TRUE(m.get(i, &v)) << i;
  EXPECT_EQ(m.size(), 70000u);
}

TEST(SessionManagerTest, LockFreeReadersNeverMissDuringWritesAndGrowth) {
  // Readers look up ids that are always present while writers insert and
  // remove others around them (probe runs shift, shards double): a lookup
  // must never miss a present id nor return another record.
  SessionManager m(2);
  const uint64_t stable = 2000;
  std::vector<SessionRecord> records(stable + 1);
  for (uint64_t i = 1; i <= stable; ++i) m.add(i, &records[i], static_cast<uint16_t>(i % 7));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> misses{0}, wrong{0}, lookups{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937_64 rng(r);
      SessionView v;
      while (!stop.load(std::memory_order_relaxed)) {
        uint64_t id = rng() % stable + 1;
        if (!m.get(id, &v)) {
          misses.fetch_add(1);
        } else if (v.record != &records[id] || v.worker != id % 7) {
          wrong.fetch_add(1);
        }
        lookups.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  SessionRecord churn;
  std::mt19937_64 rng(99);
  for (int round = 0; round < 20; ++round) {
    std::vector<uint64_t> added;
    for (int i = 0; i < 20000; ++i) {
      uint64_t id = stable + 1 + (rng() % 10000000);
      m.add(id, &churn, 0);
      added.push_back(id);
    }
    for (uint64_t id : added) m.remove(id, &churn);
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_GT(lookups.load(), 1000u);
  EXPECT_EQ(misses.load(), 0u);
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_EQ(m.size(), stable);
}

TEST(SessionManagerTest, PlayerBinding) {
  SessionManager m(4);
  EXPECT_EQ(m.bindPlayer(42, 100), 0u);
  EXPECT_EQ(m.sessionOfPlayer(42), 100u);
  EXPECT_EQ(m.bindPlayer(42, 100), 0u);    // same session again: nothing to report
  EXPECT_EQ(m.bindPlayer(42, 200), 100u);  // a second session: the first is returned
  m.unbindPlayer(42, 100);                 // stale: 200 holds it now
  EXPECT_EQ(m.sessionOfPlayer(42), 200u);
  m.unbindPlayer(42, 200);
  EXPECT_EQ(m.sessionOfPlayer(42), 0u);
}

TEST(SessionManagerTest, DescribeAndKickGoThroughTheOwningWorker) {
  SessionManager m(4);
  FakeHome home;
  auto cfg = std::make_shared<SessionConfig>();
  cfg->listener = "game";
  SessionRecord r;
  r.id = 777;
  r.home = &home;
  r.config = cfg;
  r.resumable = true;
  r.created_ms = 1234;
  r.client = *Address::parse("10.1.2.3:4567");
  r.affinity.assign(r.affinityNames(), {{"game", "127.0.0.1:9000"}});
  r.player_id = 42;
  r.last_active_s.store(coarseNowSeconds());
  m.add(777, &r, 3);
  auto json = m.describeJson(777);
  ASSERT_TRUE(json.has_value());
  EXPECT_NE(json->find("\"id\":\"777\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"worker\":3"), std::string::npos) << *json;
  EXPECT_NE(json->find("\"client\":\"10.1.2.3:4567\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"game\":\"127.0.0.1:9000\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"player_id\":\"42\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"state\":\"connected\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"idle_seconds\":0"), std::string::npos) << *json;
  EXPECT_FALSE(m.describeJson(778).has_value());

  // kick() from this (non-worker) thread posts to the owner's loop.
  EXPECT_TRUE(m.kick(777, "operator"));
  EXPECT_TRUE(home.kicks.empty());
  home.drain();
  ASSERT_EQ(home.kicks.size(), 1u);
  EXPECT_EQ(home.kicks[0].id, 777u);
  EXPECT_EQ(home.kicks[0].reason, CloseReason::kKicked);
  EXPECT_FALSE(m.kick(778, "operator"));
  m.remove(777);
}

TEST(SessionManagerTest, UnknownIdsFallBackToTheFleet) {
  class Fleet : public FleetView {
   public:
    std::optional<std::string> describe(uint64_t id) override {
      if (id != 5) return std::nullopt;
      return std::string("{\"id\":\"5\",\"local\":false}");
    }
    bool kick(uint64_t id, std::string_view) override {
      kicked.push_back(id);
      return id == 5;
    }
    std::vector<uint64_t> kicked;
  };
  SessionManager m(4);
  auto fleet = std::make_shared<Fleet>();
  m.setFleet(fleet);
  EXPECT_EQ(m.describeJson(5).value_or(""), "{\"id\":\"5\",\"local\":false}");
  EXPECT_FALSE(m.describeJson(6).has_value());
  EXPECT_TRUE(m.kick(5, "x"));
  EXPECT_FALSE(m.kick(6, "x"));
  EXPECT_EQ(fleet->kicked, (std::vector<uint64_t>{5, 6}));
}

TEST(SessionManagerTest, IdsAreUniqueWhenEveryWorkerCreatesAtOnce) {
  // Every worker thread creates sessions as fast as it can, from the one
  // process-wide generator, into the one shared table: no id may repeat
  // (an add() that replaces a record would mean a duplicate).
  const int threads = 8;
  const int per_thread = 100000;
  SessionManager m(16);
  SessionIdGenerator gen("test-node");
  std::vector<SessionRecord> records(threads);
  std::atomic<int> duplicates{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < per_thread; ++i) {
        uint64_t id = gen.next();
        if (id == 0 || m.add(id, &records[t], static_cast<uint16_t>(t)) != nullptr)
          duplicates.fetch_add(1);
      }
    });
  }
  go.store(true);
  for (auto& th : ts) th.join();
  EXPECT_EQ(duplicates.load(), 0);
  EXPECT_EQ(m.size(), static_cast<size_t>(threads) * per_thread);
}

TEST(SessionManagerTest, ReplicasWithDifferentNamesNeverCollide) {
  SessionIdGenerator a("gw-a"), b("gw-b");
  ASSERT_NE(a.nodeId(), b.nodeId());
  std::unordered_set<uint64_t> seen;
  for (int i = 0; i < 50000; ++i) {
    ASSERT_TRUE(seen.insert(a.next()).second);
    ASSERT_TRUE(seen.insert(b.next()).second);
  }
}

TEST(SessionManagerTest, ConcurrentMixedOperationsFromManyThreads) {
  SessionManager m(16);
  const int threads = 6;
  std::vector<SessionRecord> records(threads);
  std::vector<std::thread> ts;
  std::atomic<int> errors{0};
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      // Each thread owns ids ≡ t (mod threads): it can check its own view.
      std::unordered_set<uint64_t> mine;
      for (int i = 0; i < 100000; ++i) {
        uint64_t id = (rng() % 20000) * threads + t + 1;
        SessionView v;
        switch (rng() % 3) {
          case 0:
            m.add(id, &records[t], 0);
            mine.insert(id);
            break;
          case 1:
            if (m.remove(id) != (mine.erase(id) == 1)) errors.fetch_add(1);
            break;
          default:
            if (m.get(id, &v) != (mine.count(id) == 1)) errors.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(errors.load(), 0);
}

}  // namespace
}  // namespace session
}  // namespace gw
