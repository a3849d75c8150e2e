// tools/loadgen/histogram.h — a fixed-size log-linear latency histogram (HDR-like).
//
// Defines LatencyHistogram: records non-negative 64-bit values (nanoseconds) into 7,424
// counters laid out like an HdrHistogram with 8 significant bits: values below 256 are exact,
// larger values land in buckets at most 1/128 (0.8%) wide relative to the value. Recording is
// a few arithmetic operations with no allocation; percentiles walk the counters.
#pragma once

#include <array>
#include <cstdint>

namespace gw {
namespace tools {

class LatencyHistogram {
 public:
  // Counters: 256 exact values, then 56 power-of-two ranges of 128 buckets each.
  static constexpr int kSubBits = 8;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;  // 256
  static constexpr uint64_t kHalf = kSub / 2;                // 128
  static constexpr int kBuckets = static_cast<int>(kSub + (63 - (kSubBits - 1)) * kHalf);

  // Adds one observation of `value`.
  void record(uint64_t value) {
    ++counts_[bucketOf(value)];
    ++total_;
    if (value > max_) max_ = value;
    if (total_ == 1 || value < min_) min_ = value;
  }

  // Adds every observation of `other` to this histogram.
  void merge(const LatencyHistogram& other) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    if (other.total_ != 0) {
      if (total_ == 0 || other.min_ < min_) min_ = other.min_;
      if (other.max_ > max_) max_ = other.max_;
    }
    total_ += other.total_;
  }

  // Number of observations.
  uint64_t count() const { return total_; }
  // Largest observation (exact), 0 when empty.
  uint64_t max() const { return max_; }
  // Smallest observation (exact), 0 when empty.
  uint64_t min() const { return total_ == 0 ? 0 : min_; }

  // Returns the value at percentile `p` (0..100]: the highest value equivalent to the bucket
  // holding the ceil(p% * count)-th smallest observation, capped at max(). 0 when empty.
  uint64_t percentile(double p) const {
    if (total_ == 0) return 0;
    if (p >= 100.0) return max_;
    double want = p / 100.0 * static_cast<double>(total_);
    uint64_t rank = static_cast<uint64_t>(want);
    if (static_cast<double>(rank) < want) ++rank;
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        uint64_t hi = highestEquivalent(i);
        return hi < max_ ? hi : max_;
      }
    }
    return max_;
  }

  // Index of the counter that `value` falls into, in [0, kBuckets).
  static int bucketOf(uint64_t value) {
    if (value < kSub) return static_cast<int>(value);
    int msb = 63 - __builtin_clzll(value);  // >= kSubBits
    int shift = msb - (kSubBits - 1);       // >= 1
    uint64_t top = value >> shift;          // in [kHalf, kSub)
    return static_cast<int>(kSub + (shift - 1) * kHalf + (top - kHalf));
  }

  // Smallest value that lands in bucket `index`.
  static uint64_t lowestEquivalent(int index) {
    if (index < static_cast<int>(kSub)) return static_cast<uint64_t>(index);
    uint64_t rel = static_cast<uint64_t>(index) - kSub;
    int shift = static_cast<int>(rel / kHalf) + 1;
    uint64_t top = rel % kHalf + kHalf;
    return top << shift;
  }

  // Largest value that lands in bucket `index`.
  static uint64_t highestEquivalent(int index) {
    if (index + 1 >= kBuckets) return UINT64_MAX;
    return lowestEquivalent(index + 1) - 1;
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = 0;
};

}  // namespace tools
}  // namespace gw
