// Tests of the sharded metrics in core/stats.h: values written by several
// threads (each on its own shard, plus the shared shard) sum correctly, and
// the registry serializes them in the Prometheus text format.
#include "core/sdk/stats.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace gw {
namespace stats {
namespace {

constexpr int kPerThread = 100000;

// Runs `fn` on two worker threads bound to shards 0 and 1, and on this
// thread (the shared shard) at the same time.
template <class Fn>
void onTwoWorkersAndShared(Fn fn) {
  std::vector<std::thread> threads;
  for (size_t shard : {0u, 1u}) {
    threads.emplace_back([shard, &fn] {
      setThreadShard(shard);
      fn();
    });
  }
  fn();
  for (auto& t : threads) t.join();
}

TEST(StatsTest, CounterSumsAcrossThreads) {
  Counter c;
  onTwoWorkersAndShared([&] {
    for (int i = 0; i < kPerThread; ++i) c.inc();
    c.inc(5);
  });
  EXPECT_EQ(c.value(), 3u * (kPerThread + 5));
}

TEST(StatsTest, GaugeSumsIncAndDecFromDifferentThreads) {
  Gauge g;
  std::thread up([&] {
    setThreadShard(0);
    for (int i = 0; i < kPerThread; ++i) g.inc();
  });
  std::thread down([&] {
    setThreadShard(1);
    for (int i = 0; i < kPerThread / 2; ++i) g.dec();
  });
  up.join();
  down.join();
  EXPECT_EQ(g.value(), kPerThread / 2);
  g.dec(kPerThread);  // may go negative
  EXPECT_EQ(g.value(), -kPerThread / 2);
}

TEST(StatsTest, GaugeSetOverridesTheSum) {
  Gauge g;
  g.inc(10);
  g.set(3);
  EXPECT_EQ(g.value(), 3);
  g.inc(2);
  EXPECT_EQ(g.value(), 5);
}

TEST(StatsTest, HistogramBucketsCountAndSumAcrossThreads) {
  Histogram h({1.0, 10.0});
  onTwoWorkersAndShared([&] {
    for (int i = 0; i < 1000; ++i) {
      h.observe(0.5);   // bucket le=1
      h.observe(1.0);   // le=1 (bounds are inclusive)
      h.observe(5.0);   // le=10
      h.observe(50.0);  // +Inf
    }
  });
  auto s = h.snapshot();
  ASSERT_EQ(s.cumulative.size(), 3u);
  EXPECT_EQ(s.cumulative[0], 3u * 2000);
  EXPECT_EQ(s.cumulative[1], 3u * 3000);
  EXPECT_EQ(s.cumulative[2], 3u * 4000);
  EXPECT_EQ(s.count, 3u * 4000);
  EXPECT_DOUBLE_EQ(s.sum, 3.0 * 1000 * (0.5 + 1.0 + 5.0 + 50.0));
}

TEST(StatsTest, ShardIndexPastTheLimitFallsBackToTheSharedShard) {
  Counter c;
  std::thread t([&] {
    setThreadShard(kMaxWorkerShards + 10);
    for (int i = 0; i < kPerThread; ++i) c.inc();
  });
  for (int i = 0; i < kPerThread; ++i) c.inc();  // also the shared shard
  t.join();
  EXPECT_EQ(c.value(), 2u * kPerThread);
}

TEST(StatsTest, RegistryReturnsTheSameMetricAndSerializesIt) {
  auto& reg = StatsRegistry::get();
  Counter& a = reg.counter("stats_test_total", "A test counter.", {{"listener", "game"}});
  Counter& again = reg.counter("stats_test_total", "ignored", {{"listener", "game"}});
  Counter& other = reg.counter("stats_test_total", "ignored", {{"listener", "raw"}});
  EXPECT_EQ(&a, &again);
  EXPECT_NE(&a, &other);
  a.inc(3);
  reg.gauge("stats_test_active", "A test gauge.").set(-2);
  reg.histogram("stats_test_seconds", "A test histogram.", {}, {0.5}).observe(0.25);
  std::string text = reg.serialize();
  EXPECT_NE(text.find("# HELP stats_test_total A test counter."), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE stats_test_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find("stats_test_total{listener=\"game\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("stats_test_total{listener=\"raw\"} 0"), std::string::npos) << text;
  EXPECT_NE(text.find("stats_test_active -2"), std::string::npos) << text;
  EXPECT_NE(text.find("stats_test_seconds_bucket{le=\"0.5\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("stats_test_seconds_count 1"), std::string::npos) << text;
  EXPECT_THROW(reg.gauge("stats_test_total", "wrong type"), std::logic_error);
}

TEST(StatsTest, RemoveTakesSeriesOutUntilTheyAreAskedForAgain) {
  auto& reg = StatsRegistry::get();
  Gauge& kept = reg.gauge("stats_test_remove", "Removal.", {{"host", "a"}});
  Gauge& gone = reg.gauge("stats_test_remove", "Removal.", {{"host", "b"}});
  reg.counter("stats_test_remove_total", "Removal.", {{"host", "b"}}).inc();
  kept.set(1);
  gone.set(2);
  auto isB = [](const Labels& l) { return l == Labels{{"host", "b"}}; };
  EXPECT_EQ(reg.remove("stats_test_remove", isB), 1u);
  EXPECT_EQ(reg.remove("stats_test_remove_total", isB), 1u);
  EXPECT_EQ(reg.remove("stats_test_remove", isB), 0u);
  EXPECT_EQ(reg.remove("stats_test_no_such_family", isB), 0u);
  std::string text = reg.serialize();
  EXPECT_NE(text.find("stats_test_remove{host=\"a\"} 1"), std::string::npos) << text;
  EXPECT_EQ(text.find("host=\"b\""), std::string::npos) << text;
  // Only the counter had series of its family: the family goes too.
  EXPECT_EQ(text.find("stats_test_remove_total"), std::string::npos) << text;
  size_t visited = 0;
  reg.visit("stats_test_remove", [&](const Labels&, double) { ++visited; });
  EXPECT_EQ(visited, 1u);
  // A holder's reference stays usable; asking again brings the same series
  // back, with what it counted meanwhile.
  gone.inc();
  EXPECT_EQ(&reg.gauge("stats_test_remove", "Removal.", {{"host", "b"}}), &gone);
  EXPECT_NE(reg.serialize().find("stats_test_remove{host=\"b\"} 3"), std::string::npos);
}

}  // namespace
}  // namespace stats
}  // namespace gw
