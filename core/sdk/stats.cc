#include "core/sdk/stats.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <limits>
#include <stdexcept>

namespace gw {
namespace stats {

namespace internal {
thread_local size_t tls_shard = kMaxWorkerShards;
}

void setThreadShard(size_t index) {
  internal::tls_shard = index < kMaxWorkerShards ? index : kMaxWorkerShards;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), shards_(new Shard[kShards]) {
  for (size_t i = 0; i < kShards; ++i) {
    shards_[i].buckets = std::vector<std::atomic<uint64_t>>(bounds_.size() + 1);
  }
}

void Histogram::observe(double v) {
  size_t b = 0;
  while (b < bounds_.size() && v > bounds_[b]) ++b;
  size_t s = internal::tls_shard;
  Shard& sh = shards_[s];
  if (s != kMaxWorkerShards) {
    sh.buckets[b].store(sh.buckets[b].load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
    sh.sum.store(sh.sum.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  } else {
    sh.buckets[b].fetch_add(1, std::memory_order_relaxed);
    double old = sh.sum.load(std::memory_order_relaxed);
    while (!sh.sum.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
    }
  }
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  std::vector<uint64_t> counts(bounds_.size() + 1, 0);
  for (size_t i = 0; i < kShards; ++i) {
    for (size_t b = 0; b < counts.size(); ++b)
      counts[b] += shards_[i].buckets[b].load(std::memory_order_relaxed);
    s.sum += shards_[i].sum.load(std::memory_order_relaxed);
  }
  uint64_t run = 0;
  for (uint64_t c : counts) {
    run += c;
    s.cumulative.push_back(run);
  }
  s.count = run;
  return s;
}

const std::vector<double>& latencyBuckets() {
  static const std::vector<double> b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
                                        5,      10};
  return b;
}

namespace {

// The slot of `labels` in `live`, moved back from `removed` when remove()
// took it out earlier (null when neither has it: the caller creates it).
template <typename T>
std::unique_ptr<T>& liveSlot(std::map<Labels, std::unique_ptr<T>>& live,
                             std::map<Labels, std::unique_ptr<T>>& removed, const Labels& labels) {
  auto& slot = live[labels];
  if (!slot) {
    auto it = removed.find(labels);
    if (it != removed.end()) {
      slot = std::move(it->second);
      removed.erase(it);
    }
  }
  return slot;
}

// Moves the series of `live` that drop() selects to `removed`; returns how many.
template <typename T>
size_t moveOut(std::map<Labels, std::unique_ptr<T>>& live,
               std::map<Labels, std::unique_ptr<T>>& removed,
               const std::function<bool(const Labels&)>& drop) {
  size_t n = 0;
  for (auto it = live.begin(); it != live.end();) {
    if (drop(it->first)) {
      removed[it->first] = std::move(it->second);
      it = live.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

}  // namespace

StatsRegistry& StatsRegistry::get() {
  static StatsRegistry* r = new StatsRegistry();
  return *r;
}

StatsRegistry::Family& StatsRegistry::family(const std::string& name, const std::string& help,
                                             Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(name, Family{help, type, {}, {}, {}, {}, {}, {}}).first;
  } else if (it->second.type != type) {
    throw std::logic_error("metric " + name + " registered with two types");
  }
  return it->second;
}

Counter& StatsRegistry::counter(const std::string& name, const std::string& help,
                                const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = family(name, help, Type::kCounter);
  auto& slot = liveSlot(f.counters, f.removed_counters, labels);
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& StatsRegistry::gauge(const std::string& name, const std::string& help,
                            const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = family(name, help, Type::kGauge);
  auto& slot = liveSlot(f.gauges, f.removed_gauges, labels);
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& StatsRegistry::histogram(const std::string& name, const std::string& help,
                                    const Labels& labels, const std::vector<double>& bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = family(name, help, Type::kHistogram);
  auto& slot = liveSlot(f.histograms, f.removed_histograms, labels);
  if (!slot) slot = std::make_unique<Histogram>(bounds);
  return *slot;
}

void StatsRegistry::visit(const std::string& name,
                          const std::function<void(const Labels&, double)>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  const Family& f = it->second;
  for (const auto& [labels, c] : f.counters) fn(labels, static_cast<double>(c->value()));
  for (const auto& [labels, g] : f.gauges) fn(labels, static_cast<double>(g->value()));
  for (const auto& [labels, h] : f.histograms) fn(labels, static_cast<double>(h->snapshot().count));
}

size_t StatsRegistry::remove(const std::string& name,
                             const std::function<bool(const Labels&)>& drop) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  Family& f = it->second;
  return moveOut(f.counters, f.removed_counters, drop) +
         moveOut(f.gauges, f.removed_gauges, drop) +
         moveOut(f.histograms, f.removed_histograms, drop);
}

std::string StatsRegistry::serialize() const {
  std::vector<prometheus::MetricFamily> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, f] : families_) {
      prometheus::MetricFamily mf;
      mf.name = name;
      mf.help = f.help;
      auto labelsOf = [](const Labels& l) {
        std::vector<prometheus::ClientMetric::Label> v;
        for (const auto& [k, val] : l) v.push_back({k, val});
        return v;
      };
      switch (f.type) {
        case Type::kCounter:
          mf.type = prometheus::MetricType::Counter;
          for (const auto& [labels, c] : f.counters) {
            prometheus::ClientMetric m;
            m.label = labelsOf(labels);
            m.counter.value = static_cast<double>(c->value());
            mf.metric.push_back(std::move(m));
          }
          break;
        case Type::kGauge:
          mf.type = prometheus::MetricType::Gauge;
          for (const auto& [labels, g] : f.gauges) {
            prometheus::ClientMetric m;
            m.label = labelsOf(labels);
            m.gauge.value = static_cast<double>(g->value());
            mf.metric.push_back(std::move(m));
          }
          break;
        case Type::kHistogram:
          mf.type = prometheus::MetricType::Histogram;
          for (const auto& [labels, h] : f.histograms) {
            prometheus::ClientMetric m;
            m.label = labelsOf(labels);
            auto snap = h->snapshot();
            m.histogram.sample_count = snap.count;
            m.histogram.sample_sum = snap.sum;
            for (size_t b = 0; b < h->bounds().size(); ++b)
              m.histogram.bucket.push_back({snap.cumulative[b], h->bounds()[b]});
            m.histogram.bucket.push_back(
                {snap.count, std::numeric_limits<double>::infinity()});
            mf.metric.push_back(std::move(m));
          }
          break;
      }
      if (!mf.metric.empty()) out.push_back(std::move(mf));
    }
  }
  prometheus::TextSerializer serializer;
  return serializer.Serialize(out);
}

}  // namespace stats
}  // namespace gw
