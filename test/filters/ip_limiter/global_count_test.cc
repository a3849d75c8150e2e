// Unit tests of GlobalConnectionCount and LocalReserve: the cap is never
// exceeded, a reserve refuses early only by what idle reserves hold, and
// everything held goes back.
#include "filters/ip_limiter/global_count.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

namespace gw {
namespace ip_limiter {
namespace {

constexpr int64_t kBatch = LocalReserve::kBatch;

TEST(GlobalConnectionCountTest, ExactAcquireStopsAtTheCap) {
  GlobalConnectionCount g;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(g.tryAcquire(3));
  EXPECT_FALSE(g.tryAcquire(3));
  EXPECT_EQ(g.value(), 3);
  g.release();
  EXPECT_TRUE(g.tryAcquire(3));
  EXPECT_EQ(g.connections(), 3);
}

TEST(LocalReserveTest, FarFromTheCapTakesABatchAndKeepsOneOnRelease) {
  GlobalConnectionCount g;
  LocalReserve r(g);
  ASSERT_TRUE(r.tryAcquire(1000));
  EXPECT_EQ(g.value(), kBatch);  // one batch taken
  EXPECT_EQ(r.held(), kBatch - 1);
  EXPECT_EQ(g.connections(), 1);
  // The rest of the batch costs the shared count nothing.
  for (int i = 1; i < kBatch; ++i) ASSERT_TRUE(r.tryAcquire(1000));
  EXPECT_EQ(g.value(), kBatch);
  EXPECT_EQ(g.connections(), kBatch);
  // Releases fill the reserve up to 2 * kBatch, then give back down to kBatch.
  for (int i = 0; i < kBatch; ++i) r.release(1000);
  EXPECT_EQ(g.connections(), 0);
  EXPECT_LE(r.held(), 2 * kBatch);
  EXPECT_EQ(g.value(), r.held());
}

TEST(LocalReserveTest, NearTheCapItIsExact) {
  GlobalConnectionCount g;
  LocalReserve r(g);
  const int64_t max = 5;  // smaller than the slack: one place at a time
  for (int i = 0; i < max; ++i) ASSERT_TRUE(r.tryAcquire(max)) << i;
  EXPECT_FALSE(r.tryAcquire(max));
  EXPECT_EQ(g.value(), max);
  EXPECT_EQ(r.held(), 0);
  r.release(max);
  EXPECT_EQ(r.held(), 0);  // near the cap everything goes back
  EXPECT_EQ(g.value(), max - 1);
  EXPECT_TRUE(g.tryAcquire(max));  // another worker can use the place
  EXPECT_FALSE(r.tryAcquire(max));
}

TEST(LocalReserveTest, AnIdleReserveDelaysTheCapByAtMostWhatItHolds) {
  GlobalConnectionCount g;
  const int64_t max = 200;
  LocalReserve idle(g);
  LocalReserve busy(g);
  // The idle worker served one connection long ago and holds its batch.
  ASSERT_TRUE(idle.tryAcquire(max));
  idle.release(max);
  const int64_t held = idle.held();
  EXPECT_GT(held, 0);
  EXPECT_LE(held, 2 * kBatch);
  int64_t admitted = 0;
  while (busy.tryAcquire(max)) ++admitted;
  EXPECT_EQ(admitted, max - held);
  EXPECT_EQ(g.value(), max);
  // The idle worker's places are still usable by its own connections.
  for (int64_t i = 0; i < held; ++i) EXPECT_TRUE(idle.tryAcquire(max));
  EXPECT_FALSE(idle.tryAcquire(max));
  EXPECT_EQ(g.connections(), max);
}

TEST(LocalReserveTest, DestructionGivesEverythingBack) {
  GlobalConnectionCount g;
  {
    LocalReserve r(g);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(r.tryAcquire(1000));
    for (int i = 0; i < 3; ++i) r.release(1000);
    EXPECT_GT(g.value(), 0);
    EXPECT_EQ(g.connections(), 0);
  }
  EXPECT_EQ(g.value(), 0);
}

TEST(LocalReserveTest, TwoWorkersNeverExceedTheCap) {
  GlobalConnectionCount g;
  const int64_t max = 64;
  std::atomic<int64_t> live{0};
  std::atomic<bool> violated{false};
  auto worker = [&](uint32_t seed) {
    LocalReserve r(g);
    std::mt19937 rng(seed);
    int64_t mine = 0;
    for (int i = 0; i < 200000; ++i) {
      bool open = mine == 0 || (rng() % 100) < 55;
      if (open) {
        if (!r.tryAcquire(max)) continue;
        ++mine;
        if (live.fetch_add(1) + 1 > max) violated = true;
        if (g.value() > max + 2 * kBatch) violated = true;  // transient overshoot bound
      } else {
        --mine;
        live.fetch_sub(1);
        r.release(max);
      }
    }
    while (mine-- > 0) {
      live.fetch_sub(1);
      r.release(max);
    }
  };
  std::thread a(worker, 1), b(worker, 2);
  a.join();
  b.join();
  EXPECT_FALSE(violated);
  EXPECT_EQ(g.value(), 0);  // both reserves are gone
}

}  // namespace
}  // namespace ip_limiter
}  // namespace gw
