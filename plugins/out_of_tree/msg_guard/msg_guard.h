// msg_guard/msg_guard.h — `msg_guard`: a studio's own frames-layer filter.
//
// Defines MsgGuardConfig (the parsed config), MsgGuardFilter (one per
// connection) and MsgGuardFactory (one per worker). Between framing and
// upstream, it
//   * answers a client frame whose msg_id is in `deny_msg_ids` with a
//     no_route error frame, drops it and keeps the connection open;
//   * closes a connection (filter_error) once it has sent more than
//     `max_frames_per_connection` frames (0: no limit; denied frames count).
// Metrics (label listener): studio_msg_guard_denied_total,
// studio_msg_guard_closed_total.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/sdk/filter.h"
#include "core/sdk/registry.h"
#include "core/sdk/stats.h"

namespace studio {

// msg_guard's config, immutable and shared by every worker.
struct MsgGuardConfig : gw::FilterConfig {
  std::vector<uint16_t> deny;  // sorted, no duplicates
  uint64_t max_frames = 0;     // per connection; 0 = unlimited
  gw::stats::Counter* denied = nullptr;
  gw::stats::Counter* closed = nullptr;

  // True when `msg_id` is denied (binary search).
  bool denies(uint16_t msg_id) const;
  void describe(rapidjson::Value& out, gw::JsonAllocator& alloc) const override;
};

// One connection's guard: counts its frames.
class MsgGuardFilter : public gw::Filter {
 public:
  explicit MsgGuardFilter(const MsgGuardConfig& config) : config_(config) {}
  gw::FilterStatus onFrame(gw::Frame& frame) override;
  // Frames this connection has sent so far.
  uint64_t frames() const { return frames_; }

 private:
  const MsgGuardConfig& config_;
  uint64_t frames_ = 0;
};

// One worker's factory; msg_guard keeps no per-worker state.
class MsgGuardFactory : public gw::FilterFactory {
 public:
  MsgGuardFactory(std::shared_ptr<const MsgGuardConfig> config, gw::WorkerContext&)
      : config_(std::move(config)) {}
  std::unique_ptr<gw::Filter> createFilter() override;

 private:
  std::shared_ptr<const MsgGuardConfig> config_;
};

}  // namespace studio
