// filters/upstream/connect_retry.h — how long upstream waits between
// connect attempts.
//
// Defines halfJitter() (the jitter of every upstream backoff: a delay d
// becomes a uniform pick in [d/2, d], so workers and gateways that failed
// together do not retry together) and retryDelay() (the wait before connect
// retry n of a cluster: retry_delay doubled per retry, capped at
// ClusterConfig::kMaxRetryDelay, jittered). Pure functions.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "core/sdk/cluster.h"

namespace gw {
namespace upstream {

// `d` jittered into [d/2, d] by `random` (any 64-bit value).
inline std::chrono::milliseconds halfJitter(std::chrono::milliseconds d, uint64_t random) {
  auto half = d / 2;
  return half + std::chrono::milliseconds(random % static_cast<uint64_t>(d.count() - half.count() + 1));
}

// The wait before retry `retry` (1 = the first) of a failed connect:
// base * 2^(retry-1), at most ClusterConfig::kMaxRetryDelay, jittered.
inline std::chrono::milliseconds retryDelay(std::chrono::milliseconds base, uint32_t retry,
                                            uint64_t random) {
  auto d = base;
  for (uint32_t i = 1; i < retry && d < ClusterConfig::kMaxRetryDelay; ++i) d *= 2;
  return halfJitter(std::min(d, ClusterConfig::kMaxRetryDelay), random);
}

}  // namespace upstream
}  // namespace gw
