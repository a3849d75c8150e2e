// plugins/example/msg_filter.h — `example_msg_filter`: a custom filter
// written as a studio would, and the worked example of
// docs/writing-a-filter.md (whose code blocks are regions of this package's
// files, marked [START name] ... [END name]).
//
// Frames layer, between `framing` and the terminal. Refuses client frames
// whose msg_id is in `deny_msg_ids`: answers each with a no_route error
// frame (the connection stays open) and counts it; with `close_after` N > 0
// the connection is closed after its Nth refused frame. Every other frame
// continues unchanged, its payload untouched.
//
// Where the state lives:
//   MsgFilterConfig   immutable, parsed once, shared by every worker: the
//                     deny list and the refusal counters (thread-safe).
//   MsgFilterFactory  one per worker thread, no locks: the worker's log
//                     throttle (at most one refusal warning per second).
//   MsgFilter         one per connection: how many frames it refused.
#pragma once

// [START header_includes]
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/registry.h"
#include "core/sdk/stats.h"
// [END header_includes]

namespace example {

// [START metrics]
// The filter's only metric, declared here once: frames refused on
// `listener` because their msg_id is `msg_id`
// (game_gateway_example_msg_filter_refused_total{listener,msg_id}). Creating
// it takes the registry's lock: call it while parsing, keep the reference.
gw::stats::Counter& refusedCounter(std::string_view listener, uint16_t msg_id);
// [END metrics]

// [START config]
// The parsed config. Immutable once parse() returns, shared by all workers.
struct MsgFilterConfig : gw::FilterConfig {
  // The refused msg_ids, sorted for a binary search on the hot path.
  std::vector<uint16_t> deny;
  // refused[i] counts refusals of deny[i]. Shared state: counters are
  // thread-safe (each worker writes its own shard).
  std::vector<gw::stats::Counter*> refused;
  // Close the connection after this many refused frames; 0: never.
  uint64_t close_after = 0;

  // The effective config for GET /config: {"deny_msg_ids": [...], "close_after": N}.
  void describe(rapidjson::Value& out, gw::JsonAllocator& alloc) const override;
};
// [END config]

class MsgFilterFactory;

// [START filter]
// One per connection; runs on its worker's thread only.
class MsgFilter : public gw::Filter {
 public:
  MsgFilter(MsgFilterFactory& factory, const MsgFilterConfig& config)
      : factory_(factory), config_(config) {}

  // Refuses a denied frame (error frame, kStopIteration), passes any other.
  gw::FilterStatus onFrame(gw::Frame& frame) override;

 private:
  MsgFilterFactory& factory_;     // this worker's factory: outlives the filter
  const MsgFilterConfig& config_;  // kept alive by the factory
  uint64_t refused_ = 0;           // per-connection state: frames refused so far
};
// [END filter]

// [START factory]
// One per worker thread (per listener): creates a MsgFilter per connection
// and holds the worker's own state, used without locks.
class MsgFilterFactory : public gw::FilterFactory {
 public:
  MsgFilterFactory(std::shared_ptr<const MsgFilterConfig> config, gw::WorkerContext& worker);

  std::unique_ptr<gw::Filter> createFilter() override;

  // Logs a refusal of `msg_id` from `peer`, at most once per second on this
  // worker; refusals in between are counted in the next line.
  void logRefusal(uint16_t msg_id, const gw::Address& peer);

 private:
  std::shared_ptr<const MsgFilterConfig> config_;
  const size_t worker_index_;
  int64_t next_log_ns_ = 0;  // per-worker state: the log throttle
  uint64_t unlogged_ = 0;    // refusals since the last line
};
// [END factory]

}  // namespace example
