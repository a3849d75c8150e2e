#include "filters/ip_limiter/global_count.h"

#include <algorithm>

namespace gw {
namespace ip_limiter {

GlobalConnectionCount& GlobalConnectionCount::process() {
  static GlobalConnectionCount* count = new GlobalConnectionCount();
  return *count;
}

int64_t GlobalConnectionCount::take(int64_t want, int64_t max) {
  if (n_.load(std::memory_order_relaxed) >= max) return 0;
  int64_t old = n_.fetch_add(want, std::memory_order_relaxed);
  if (old + want <= max) return want;
  // Crossed the cap: keep what fits, give the rest back.
  int64_t got = std::max<int64_t>(0, max - old);
  n_.fetch_sub(want - got, std::memory_order_relaxed);
  return got;
}

int64_t GlobalConnectionCount::connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t held = 0;
  for (const LocalReserve* r : reserves_) held += r->held();
  return value() - held;
}

LocalReserve::LocalReserve(GlobalConnectionCount& global) : global_(global) {
  std::lock_guard<std::mutex> lock(global_.mu_);
  global_.reserves_.push_back(this);
  global_.slack_.fetch_add(2 * kBatch, std::memory_order_relaxed);
}

LocalReserve::~LocalReserve() {
  std::lock_guard<std::mutex> lock(global_.mu_);
  int64_t h = held_.exchange(0, std::memory_order_relaxed);
  if (h > 0) global_.n_.fetch_sub(h, std::memory_order_relaxed);
  auto& v = global_.reserves_;
  v.erase(std::remove(v.begin(), v.end(), this), v.end());
  global_.slack_.fetch_sub(2 * kBatch, std::memory_order_relaxed);
}

bool LocalReserve::refill(int64_t max) {
  // A batch only while every reserve filling up could not reach the cap.
  int64_t want = nearCap(max) ? 1 : kBatch;
  int64_t got = global_.take(want, max);
  if (got == 0) return false;
  held_.store(got - 1, std::memory_order_relaxed);
  return true;
}

void LocalReserve::giveBack(int64_t held, int64_t max) {
  // Near the cap every place goes back, so other workers can use it;
  // otherwise keep one batch.
  int64_t keep = nearCap(max) ? 0 : kBatch;
  if (held > keep) global_.n_.fetch_sub(held - keep, std::memory_order_relaxed);
  held_.store(std::min(held, keep), std::memory_order_relaxed);
}

}  // namespace ip_limiter
}  // namespace gw
