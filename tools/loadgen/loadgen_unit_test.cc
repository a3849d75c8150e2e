// Unit tests for the loadgen helpers: the log-linear latency histogram and the flag parsers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "tools/loadgen/histogram.h"
#include "tools/loadgen/tool_flags.h"

namespace gw {
namespace tools {
namespace {

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(100), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
}

TEST(LatencyHistogram, BucketsAreContiguousAndMonotonic) {
  for (int i = 0; i + 1 < LatencyHistogram::kBuckets; ++i) {
    ASSERT_EQ(LatencyHistogram::highestEquivalent(i) + 1, LatencyHistogram::lowestEquivalent(i + 1))
        << "bucket " << i;
    ASSERT_EQ(LatencyHistogram::bucketOf(LatencyHistogram::lowestEquivalent(i)), i);
    ASSERT_EQ(LatencyHistogram::bucketOf(LatencyHistogram::highestEquivalent(i)), i);
  }
  EXPECT_EQ(LatencyHistogram::bucketOf(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogram, RelativeErrorBelowOnePercent) {
  std::mt19937_64 rng(42);
  LatencyHistogram h;
  std::vector<uint64_t> values;
  for (int i = 0; i < 100000; ++i) {
    // Log-uniform over 1us .. 1s.
    double e = std::uniform_real_distribution<double>(3, 9)(rng);
    uint64_t v = static_cast<uint64_t>(std::pow(10.0, e));
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    size_t rank = static_cast<size_t>(std::ceil(p / 100 * values.size()));
    double exact = static_cast<double>(values[rank - 1]);
    double got = static_cast<double>(h.percentile(p));
    EXPECT_GE(got, exact) << "p" << p;
    EXPECT_LE(got, exact * 1.008) << "p" << p;
  }
  EXPECT_EQ(h.max(), values.back());
}

TEST(LatencyHistogram, EmptyAndMerge) {
  LatencyHistogram a, b;
  EXPECT_EQ(a.percentile(99), 0u);
  a.record(1000);
  b.record(5000000);
  a.merge(b);
  EXPECT_EQ(a.count(), 2u);
  EXPECT_EQ(a.max(), 5000000u);
  EXPECT_EQ(a.min(), 1000u);
  EXPECT_LE(a.percentile(50), 1007u);
  EXPECT_GE(a.percentile(50), 1000u);
}

TEST(ToolFlags, Durations) {
  EXPECT_EQ(parseDurationNs("0"), 0);
  EXPECT_EQ(parseDurationNs("100ms"), 100'000'000);
  EXPECT_EQ(parseDurationNs("1.5s"), 1'500'000'000);
  EXPECT_EQ(parseDurationNs("250us"), 250'000);
  EXPECT_EQ(parseDurationNs("2m"), 120'000'000'000);
  EXPECT_EQ(parseDurationNs("1h"), 3'600'000'000'000);
  EXPECT_EQ(parseDurationNs("7ns"), 7);
  EXPECT_FALSE(parseDurationNs(""));
  EXPECT_FALSE(parseDurationNs("10"));
  EXPECT_FALSE(parseDurationNs("ms"));
  EXPECT_FALSE(parseDurationNs("-1s"));
  EXPECT_FALSE(parseDurationNs("1..2s"));
  EXPECT_FALSE(parseDurationNs("5d"));
  EXPECT_FALSE(parseDurationNs("1000h"));
}

TEST(ToolFlags, UintsAndRates) {
  EXPECT_EQ(parseUint("0", 10), 0u);
  EXPECT_EQ(parseUint("65535", 65535), 65535u);
  EXPECT_FALSE(parseUint("65536", 65535));
  EXPECT_FALSE(parseUint("5", 0));
  EXPECT_FALSE(parseUint("", 10));
  EXPECT_FALSE(parseUint("1x", 10));
  EXPECT_FALSE(parseUint("99999999999999999999999", UINT64_MAX));
  EXPECT_EQ(parseUint("18446744073709551615", UINT64_MAX), UINT64_MAX);
  EXPECT_EQ(parseRate("100/s"), 100.0);
  EXPECT_EQ(parseRate("2.5"), 2.5);
  EXPECT_FALSE(parseRate("fast"));
  EXPECT_FALSE(parseRate("-3"));
}

}  // namespace
}  // namespace tools
}  // namespace gw
