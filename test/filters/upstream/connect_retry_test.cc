// test/filters/upstream/connect_retry_test.cc — the waits between connect
// attempts (filters/upstream/connect_retry.h): jitter bounds, doubling per
// retry, the cap.
#include "filters/upstream/connect_retry.h"

#include <gtest/gtest.h>

namespace gw {
namespace upstream {
namespace {

using namespace std::chrono_literals;

TEST(ConnectRetryTest, HalfJitterStaysWithinHalfAndWhole) {
  EXPECT_EQ(halfJitter(100ms, 0), 50ms);
  EXPECT_EQ(halfJitter(100ms, 50), 100ms);
  EXPECT_EQ(halfJitter(100ms, 51), 50ms);  // wraps within the range
  EXPECT_EQ(halfJitter(1ms, 1), 1ms);
  for (uint64_t r = 0; r < 1000; r += 7) {
    auto d = halfJitter(101ms, r * 0x9e3779b97f4a7c15ull);
    EXPECT_GE(d, 50ms);
    EXPECT_LE(d, 101ms);
  }
}

TEST(ConnectRetryTest, DelayDoublesPerRetryUpToTheCap) {
  // random 0: the lower bound (half) of each delay.
  EXPECT_EQ(retryDelay(100ms, 1, 0), 50ms);
  EXPECT_EQ(retryDelay(100ms, 2, 0), 100ms);
  EXPECT_EQ(retryDelay(100ms, 3, 0), 200ms);
  EXPECT_EQ(retryDelay(100ms, 6, 0), 1600ms);                             // 3.2 s
  EXPECT_EQ(retryDelay(100ms, 7, 0), ClusterConfig::kMaxRetryDelay / 2);  // 6.4 s capped to 5 s
  EXPECT_EQ(retryDelay(100ms, 1000, 0), ClusterConfig::kMaxRetryDelay / 2);
  EXPECT_EQ(retryDelay(5000ms, 2, 2500), ClusterConfig::kMaxRetryDelay);
}

}  // namespace
}  // namespace upstream
}  // namespace gw
