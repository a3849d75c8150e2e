// filters/ip_limiter/global_count.h — the process-wide connection count
// behind ip_limiter's `max_connections`.
//
// Defines GlobalConnectionCount (one atomic count of connections admitted by
// every ip_limiter of every listener and worker) and LocalReserve (a
// worker's private batch of places in that count, so that most admits and
// releases touch no shared cache line and run no atomic read-modify-write).
//
// Where state lives: GlobalConnectionCount is shared by all threads;
// LocalReserve is per worker (one per ip_limiter factory), used only on that
// worker's thread.
//
// The count includes the places reserves hold unused. Rules that keep
// `max_connections` exact where it matters:
//   - the shared count never settles above max (a batch that would cross it
//     is cut down, and a failed reservation is given back at once);
//   - a reserve takes a batch (kBatch) only while the shared count plus the
//     most all reserves could hold (2 * kBatch each) stays under max; closer
//     to the cap it takes one place at a time;
//   - a release near the cap returns everything the reserve holds, and a
//     reserve never holds more than 2 * kBatch.
// So the gateway never admits more than max connections, and can refuse
// early only by what idle workers hold: at most 2 * kBatch per worker that
// has seen no connect or close since the count came near the cap.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace gw {
namespace ip_limiter {

class LocalReserve;

class GlobalConnectionCount {
 public:
  // The process-wide count, shared by every ip_limiter (never destroyed).
  static GlobalConnectionCount& process();

  GlobalConnectionCount() = default;
  // Reserves must be destroyed first.
  ~GlobalConnectionCount() = default;
  GlobalConnectionCount(const GlobalConnectionCount&) = delete;
  GlobalConnectionCount& operator=(const GlobalConnectionCount&) = delete;

  // Counts one connection if fewer than `max` places are taken (one atomic
  // add). Returns false, counting nothing, at the cap.
  bool tryAcquire(int64_t max) { return take(1, max) == 1; }
  // Uncounts one connection counted by tryAcquire().
  void release() { n_.fetch_sub(1, std::memory_order_relaxed); }

  // Places taken: connections plus what reserves hold unused. The value the
  // cap is checked against; cheap (one relaxed load).
  int64_t value() const { return n_.load(std::memory_order_relaxed); }
  // Connections counted now: value() minus what reserves hold (takes a
  // lock to visit the reserves; for metrics, logs and tests).
  int64_t connections() const;

 private:
  friend class LocalReserve;

  // Takes up to `want` places without settling above `max`. Returns how
  // many it took (0 at the cap).
  int64_t take(int64_t want, int64_t max);
  // The most places all reserves may hold together.
  int64_t reserveSlack() const { return slack_.load(std::memory_order_relaxed); }

  alignas(64) std::atomic<int64_t> n_{0};
  alignas(64) std::atomic<int64_t> slack_{0};
  mutable std::mutex mu_;                // guards reserves_
  std::vector<const LocalReserve*> reserves_;
};

// A worker's batch of places in a GlobalConnectionCount. An admit takes a
// place from the batch (a plain load and store) and refills it with one
// atomic add per kBatch connections; a release puts the place back and
// returns surplus. Not thread-safe: one thread at a time (the worker's).
// Destroying the reserve gives back everything it holds.
class LocalReserve {
 public:
  // Places taken from the shared count per refill.
  static constexpr int64_t kBatch = 8;

  explicit LocalReserve(GlobalConnectionCount& global);
  ~LocalReserve();
  LocalReserve(const LocalReserve&) = delete;
  LocalReserve& operator=(const LocalReserve&) = delete;

  // Counts one connection against `max` (see the rules at the top of the
  // file). Returns false, counting nothing, at the cap.
  bool tryAcquire(int64_t max) {
    int64_t h = held_.load(std::memory_order_relaxed);
    if (h > 0) {
      held_.store(h - 1, std::memory_order_relaxed);
      return true;
    }
    return refill(max);
  }
  // Uncounts one connection counted by this reserve's tryAcquire().
  void release(int64_t max) {
    int64_t h = held_.load(std::memory_order_relaxed) + 1;
    if (h <= 2 * kBatch && !nearCap(max)) {
      held_.store(h, std::memory_order_relaxed);
      return;
    }
    giveBack(h, max);
  }

  // Places held unused (any thread may read it).
  int64_t held() const { return held_.load(std::memory_order_relaxed); }
  GlobalConnectionCount& global() const { return global_; }

 private:
  bool nearCap(int64_t max) const {
    return global_.value() + global_.reserveSlack() + kBatch > max;
  }
  bool refill(int64_t max);
  void giveBack(int64_t held, int64_t max);

  GlobalConnectionCount& global_;
  // Written only by the owning thread; atomic so connections() may read it.
  std::atomic<int64_t> held_{0};
};

}  // namespace ip_limiter
}  // namespace gw
