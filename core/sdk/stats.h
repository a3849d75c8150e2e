// core/sdk/stats.h — metrics that cost a few nanoseconds on the hot path.
//
// Defines Counter, Gauge and Histogram, sharded per thread: a worker writes
// only its own cache-line-padded shard (relaxed load + store, no locked
// instruction, no sharing), and a scrape sums the shards. StatsRegistry owns
// every metric by (name, labels) and serializes them in the Prometheus text
// format with prometheus-cpp's TextSerializer. Creating a metric takes a
// lock (do it at config time and keep the reference); updating never does.
//
// Threads: Worker threads call stats::setThreadShard(worker_index) at start.
// Any other thread shares one extra shard updated with atomic adds.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace gw {
namespace stats {

// Shards: one per worker thread (up to kMaxWorkerShards), plus one shared.
inline constexpr size_t kMaxWorkerShards = 63;
inline constexpr size_t kShards = kMaxWorkerShards + 1;

// Binds the calling thread to shard `index` (a worker index). Indices past
// kMaxWorkerShards fall back to the shared shard.
void setThreadShard(size_t index);

namespace internal {
extern thread_local size_t tls_shard;  // kMaxWorkerShards = shared
struct alignas(64) Cell {
  std::atomic<int64_t> v{0};
};
inline void add(Cell* cells, int64_t n) {
  size_t s = tls_shard;
  std::atomic<int64_t>& c = cells[s].v;
  if (s != kMaxWorkerShards) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  } else {
    c.fetch_add(n, std::memory_order_relaxed);
  }
}
inline int64_t sum(const Cell* cells) {
  int64_t t = 0;
  for (size_t i = 0; i < kShards; ++i) t += cells[i].v.load(std::memory_order_relaxed);
  return t;
}
}  // namespace internal

// Monotonic count.
class Counter {
 public:
  void inc(uint64_t n = 1) { internal::add(cells_.data(), static_cast<int64_t>(n)); }
  uint64_t value() const { return static_cast<uint64_t>(internal::sum(cells_.data())); }

 private:
  std::array<internal::Cell, kShards> cells_{};
};

// A value that goes up and down (inc/dec may come from different threads;
// the scrape shows the sum). set() is for single-writer gauges only.
class Gauge {
 public:
  void inc(int64_t n = 1) { internal::add(cells_.data(), n); }
  void dec(int64_t n = 1) { internal::add(cells_.data(), -n); }
  void set(int64_t v) { base_.store(v - internal::sum(cells_.data()), std::memory_order_relaxed); }
  int64_t value() const { return base_.load(std::memory_order_relaxed) + internal::sum(cells_.data()); }

 private:
  std::array<internal::Cell, kShards> cells_{};
  std::atomic<int64_t> base_{0};
};

// Fixed-bucket histogram. observe() finds the bucket by linear scan (bucket
// lists are short) and adds to this thread's shard.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, then +Inf
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot snapshot() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  struct alignas(64) Shard {
    std::vector<std::atomic<uint64_t>> buckets;
    std::atomic<double> sum{0};
  };
  std::vector<double> bounds_;
  std::unique_ptr<Shard[]> shards_;
};

// Latency buckets in seconds, 100 µs to 10 s.
const std::vector<double>& latencyBuckets();

using Labels = std::vector<std::pair<std::string, std::string>>;

class StatsRegistry {
 public:
  // The process-wide registry.
  static StatsRegistry& get();

  // Returns the metric for (name, labels), creating it on first use (or
  // bringing back a series remove() took out of the exposition, with its
  // value). The reference stays valid for the life of the process. `help` is
  // taken from the first call for a name.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, const Labels& labels,
                       const std::vector<double>& bounds);

  // Everything, in the Prometheus text exposition format.
  std::string serialize() const;

  // Calls fn(labels, value) for every metric of family `name` that exists:
  // a counter's or gauge's current value, a histogram's sample count. Does
  // nothing for an unknown name. Holds the registry lock while it runs: fn
  // must not create metrics. For the admin API (not the hot path).
  void visit(const std::string& name,
             const std::function<void(const Labels&, double)>& fn) const;
  // Takes every series of family `name` for which drop(labels) is true out
  // of serialize() and visit() (e.g. the series of a host a reload removed).
  // Returns how many. The objects stay alive (references held elsewhere stay
  // valid; updates through them are kept but not shown), and the next
  // counter()/gauge()/histogram() call for the same (name, labels) brings
  // the series back. Nothing for an unknown name. drop runs under the
  // registry lock: it must not call the registry. Not for the hot path.
  size_t remove(const std::string& name, const std::function<bool(const Labels&)>& drop);

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    std::string help;
    Type type;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
    // Series remove() took out, by type; brought back by the next get.
    std::map<Labels, std::unique_ptr<Counter>> removed_counters;
    std::map<Labels, std::unique_ptr<Gauge>> removed_gauges;
    std::map<Labels, std::unique_ptr<Histogram>> removed_histograms;
  };
  Family& family(const std::string& name, const std::string& help, Type type);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

}  // namespace stats
}  // namespace gw
