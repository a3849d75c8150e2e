// core/sdk/clock.h — the gateway's monotonic clocks.
//
// Defines MonoTime (a point on std::chrono::steady_clock) and two ways to
// read it:
//   - preciseNow(): steady_clock::now(), nanosecond resolution. On a VM's
//     kvm-clock it costs ~25-40 ns. Use it for latencies (histograms).
//   - coarseNow() / coarseNowNs(): CLOCK_MONOTONIC_COARSE, the time of the
//     last kernel tick (1-4 ms resolution), read from the vDSO without
//     touching the clock source: ~4-8 ns. Use it for timeouts, idle stamps,
//     backoff deadlines and rates, i.e. everything compared at millisecond
//     granularity or coarser.
// Both read the same clock (Linux's CLOCK_MONOTONIC, also libevent's timer
// clock), so their values can be compared and mixed, within the coarse
// clock's lag of at most one tick. Thread-safe; never allocate.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace gw {

using MonoTime = std::chrono::steady_clock::time_point;

// steady_clock::now(): precise, ~25-40 ns on a VM.
inline MonoTime preciseNow() { return std::chrono::steady_clock::now(); }

// CLOCK_MONOTONIC_COARSE in nanoseconds (same epoch as steady_clock).
inline int64_t coarseNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// coarseNowNs() as a MonoTime; may lag preciseNow() by one kernel tick.
inline MonoTime coarseNow() {
  return MonoTime(std::chrono::duration_cast<MonoTime::duration>(
      std::chrono::nanoseconds(coarseNowNs())));
}

// Whole seconds of the coarse clock (32 bits: wraps after 136 years of uptime).
inline uint32_t coarseNowSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint32_t>(ts.tv_sec);
}

}  // namespace gw
