// filters/breaker/breaker.h — the `breaker` filter: circuit breaking per
// cluster and per host (docs/filters/breaker.md).
//
// Frames layer, not terminal; sits before `upstream`:
//   read:  onFrame ─▶ RouteResolver (slot published by upstream) ─▶ cluster
//          ─▶ ClusterBreaker: closed → pass | open → error frame circuit_open
//          | in flight ≥ max_pending → error frame upstream_overflow
//   outcomes: UpstreamEventBus (per worker) ─▶ BreakerHub ─▶ BreakerState
//          (connect failed/lost = failure, backend frame = success, reply
//          timeout tracked here per session)
//   ejection: BreakerHub is the worker's HostAvailability; upstream's load
//          balancer skips hosts whose breaker is open (within the cap).
// The breaker never calls upstream and upstream never calls the breaker: it
// watches events and the chain. Left out of a chain, nothing changes.
//
// State: ClusterBreaker / BreakerState (breaker_state.h) are shared by all
// workers. BreakerHub is per worker (one for all listeners of the worker,
// in WorkerServices): the event subscription, the session -> filter map,
// the host availability hook, the timer that moves open breakers to
// half-open on time. BreakerFilter is per connection: the session's
// clusters (inline for the first), its host per cluster, its unanswered
// frames and, only once a frame awaits a reply, their timer.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/container/inlined_vector.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/dispatcher.h"
#include "core/sdk/error_frame.h"
#include "core/sdk/registry.h"
#include "core/sdk/upstream_events.h"
#include "filters/breaker/breaker_state.h"

namespace gw {
namespace breaker {

// The parsed `breaker` config: one ClusterBreaker per cluster of the
// gateway config (held here so the state lives as long as the config).
struct BreakerConfig : FilterConfig {
  ~BreakerConfig() override;
  // {"clusters": {"<name>": {failure_threshold, failure_ratio, window, ...,
  // expect_reply}}}: each cluster's merged settings (top level, then its
  // override), durations as "10s". No breaker state (that is GET /clusters).
  void describe(rapidjson::Value& out, JsonAllocator& alloc) const override;
  std::vector<std::shared_ptr<ClusterBreaker>> clusters;
};

// Parses a schema-valid `breaker` config against ctx.clusters() into specs,
// one per cluster (top-level fields, then the cluster's override). Errors
// (out-of-range values, unknown clusters, rules that contradict each other)
// are recorded in ctx. Returns ctx.ok(). Exposed for tests.
bool parseSpecs(const rapidjson::Value& json, ParseContext& ctx,
                std::vector<ClusterBreakerSpec>* out);

class BreakerFilter;

// Per worker; see the banner. Used only on its worker's thread.
class BreakerHub : public UpstreamObserver, public HostAvailability {
 public:
  BreakerHub() = default;
  ~BreakerHub() override;
  BreakerHub(const BreakerHub&) = delete;
  BreakerHub& operator=(const BreakerHub&) = delete;

  // A factory of this worker starts using the hub. The first attach
  // subscribes to `bus` and becomes `slot`'s HostAvailability (unless
  // another filter already is: then host ejection is off on this worker,
  // logged).
  void attach(Dispatcher& dispatcher, UpstreamEventBus& bus, HostAvailabilitySlot& slot);
  // The matching release; the last one unsubscribes and clears the slot.
  void detach();

  // The ClusterBreaker of the cluster named *name (cached by the string's
  // address, refreshed when the registry changes). nullptr: no breaker.
  const std::shared_ptr<ClusterBreaker>& resolve(const std::string* name);
  // Monotonic time in ns (the steady clock's base at the kernel tick's
  // resolution: cheap to read; see the definition).
  int64_t nowNs() const;
  Dispatcher& dispatcher() { return *dispatcher_; }

  // Outcomes, attributed to `host` of `cb` and to the cluster-level breaker
  // (see docs: a host failure counts for the cluster only when the host
  // cannot be ejected). Arms the half-open timer on a trip.
  void recordSuccess(ClusterBreaker& cb, size_t host, int64_t now_ns);
  void recordFailure(ClusterBreaker& cb, size_t host, FailureKind kind, int64_t now_ns);

  // The filter whose frame is on its way to upstream right now: the next
  // kFrameSent for its session registers it (a filter learns its session id
  // only once upstream or `session` published it).
  void forwarding(BreakerFilter* f) { forwarding_ = f; }
  void forget(BreakerFilter* f);
  void unregisterSession(uint64_t session, BreakerFilter* f);
  size_t sessionCount() const { return sessions_.size(); }

  // UpstreamObserver.
  void onUpstreamEvent(const UpstreamEvent& e) override;
  // HostAvailability: false while the host's breaker is open and it is
  // ejected; while half-open, true for one probe placement at a time (up to
  // half_open_max_probes per batch).
  bool available(const std::string& cluster, size_t host_index) override;

 private:
  struct CacheEntry {
    const std::string* name;
    std::shared_ptr<ClusterBreaker> cb;
  };
  // After a record call: a trip arms the timer and watches `cb` until none
  // of its breakers is open.
  void handle(ClusterBreaker& cb, const Transition& t);
  void armTick(int64_t at_ns);
  void onTick();
  BreakerFilter* sessionFilter(uint64_t session);
  // Clears the host pins (and unanswered frames) of this worker's sessions
  // on `host` of `cb`: their backend connection is gone, upstream re-homes them.
  void unpinHost(ClusterBreaker& cb, size_t host);

  int attached_ = 0;
  Dispatcher* dispatcher_ = nullptr;
  UpstreamEventBus* bus_ = nullptr;
  HostAvailabilitySlot* slot_ = nullptr;
  bool owns_slot_ = false;
  std::unique_ptr<Timer> tick_timer_;
  int64_t tick_at_ns_ = 0;
  std::vector<CacheEntry> cache_;
  std::vector<std::shared_ptr<ClusterBreaker>> watched_;  // tripped here, maybe still open
  uint64_t cache_generation_ = 0;
  absl::flat_hash_map<uint64_t, BreakerFilter*> sessions_;
  BreakerFilter* forwarding_ = nullptr;
  static const std::shared_ptr<ClusterBreaker> kNone;
};

// Per connection. See the banner.
class BreakerFilter : public Filter {
 public:
  explicit BreakerFilter(BreakerHub& hub) : hub_(hub) {}
  ~BreakerFilter() override;

  FilterStatus onFrame(Frame& frame) override;
  void onClose(CloseReason reason) override;

  // Called by the hub (events of this connection's session).
  void onSent(const std::shared_ptr<ClusterBreaker>& cb, size_t host, int64_t now_ns);
  void onReply(ClusterBreaker& cb);
  void unpin(ClusterBreaker& cb, size_t host);
  // The session id published in the connection's slots (0 if none yet).
  uint64_t currentSessionId();
  void setRegisteredSession(uint64_t id) { session_ = id; }

 private:
  struct Record {
    std::shared_ptr<ClusterBreaker> cb;
    const std::string* route_name = nullptr;  // RouteResolver's pointer, for the fast match
    int32_t host = -1;                        // host of the session's last frame sent
    uint32_t unanswered = 0;                  // expect_reply: frames without a backend frame since
    int64_t oldest_ns = 0;                    // when the oldest unanswered frame was sent
  };
  Record* recordByName(const std::string* name);
  Record* recordByBreaker(ClusterBreaker& cb);
  FilterStatus reject(ClusterBreaker& cb, Frame& frame, ErrorCode code);
  void armReplyTimer(int64_t at_ns);
  void onReplyTimer();
  void release();

  // The reply timer and when it fires; made on the first frame that
  // expects a reply (clusters with expect_reply only).
  struct ReplyTimer {
    ReplyTimer(Dispatcher& d, BreakerFilter* f) : timer(d, [f] { f->onReplyTimer(); }) {}
    Timer timer;
    int64_t at_ns = 0;
  };

  // Per connection (104 bytes).
  BreakerHub& hub_;                     // per worker
  RouteResolver* resolver_ = nullptr;   // upstream's, from the slots (first frame)
  uint64_t session_ = 0;  // registered in the hub under this id (0: not registered)
  // One per cluster the session used; inline for the first (a second
  // cluster moves them to the heap).
  absl::InlinedVector<Record, 1> records_;
  std::unique_ptr<ReplyTimer> reply_timer_;
  bool closed_ = false;
};

class BreakerFactory : public FilterFactory {
 public:
  BreakerFactory(std::shared_ptr<const BreakerConfig> config, WorkerContext& worker);
  ~BreakerFactory() override;
  std::unique_ptr<Filter> createFilter() override;
  BreakerHub& hub() { return hub_; }

 private:
  std::shared_ptr<const BreakerConfig> config_;
  BreakerHub& hub_;
};

}  // namespace breaker
}  // namespace gw
