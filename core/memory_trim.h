// core/memory_trim.h — hands freed heap memory back to the kernel after a
// burst.
//
// Defines MemoryTrimmer: a timer on the main thread's loop that, every
// `memory_trim_interval`, reads how much heap glibc malloc holds free
// (mallinfo2: every arena's free chunks) and, when that is at least
// kTrimMinFreeBytes, calls malloc_trim(), which returns the free pages of
// every arena (not only each arena's top) to the kernel.
//
// Why: the workers allocate from their own arenas; after a burst (e.g.
// 170 MB of echoes a slow client did not read) the freed chunks sit between
// live ones, and glibc gives back only the part of an arena's top above
// M_TRIM_THRESHOLD (8 MiB, core/main.cc), so RSS stayed ~25 MB above its
// baseline for good. Steady load keeps less than kTrimMinFreeBytes free, so
// the trim does not run there and does not bring back the page-fault churn
// that M_TRIM_THRESHOLD was raised against (docs/performance.md).
//
// Metrics: game_gateway_memory_heap_free_bytes (free heap at the last
// check), game_gateway_memory_trims_total, and
// game_gateway_memory_trimmed_bytes_total (the RSS each trim gave back).
// Main thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

#include "core/sdk/dispatcher.h"
#include "core/sdk/stats.h"

namespace gw {

class MemoryTrimmer {
 public:
  // Free heap below this is left alone.
  static constexpr size_t kTrimMinFreeBytes = 8u << 20;

  // `interval` is asked before every arming, so a reload's new
  // `memory_trim_interval` applies from the next check; 0 turns checks off
  // until a later reload turns them on (the caller calls start() again).
  MemoryTrimmer(Dispatcher& main, std::function<std::chrono::milliseconds()> interval);

  // Arms the first check (no-op if the interval is 0 or already armed).
  void start();
  // Checks now: trims if at least kTrimMinFreeBytes are free. Returns the
  // RSS bytes the trim gave back (0 if it did not trim).
  size_t checkNow();

 private:
  void onTimer();

  std::function<std::chrono::milliseconds()> interval_;
  Timer timer_;
  stats::Gauge& heap_free_;
  stats::Counter& trims_;
  stats::Counter& trimmed_bytes_;
};

}  // namespace gw
