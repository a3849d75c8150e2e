// filters/breaker/breaker_state.h — the circuit breaker's shared state.
//
// Defines, for the `breaker` filter (docs/filters/breaker.md):
//  - BreakerPolicy: the thresholds of one breaker (immutable).
//  - RollingWindow: success/failure counts over the last `window`, as a
//    fixed ring of 10 time buckets of atomic counters (no lock, no
//    allocation), striped so that workers do not write the same line.
//  - BreakerState: one breaker (a cluster, or one host of a cluster):
//    closed -> open -> half-open -> closed|open, shared by all workers.
//  - ClusterBreaker: a cluster's breaker, its hosts' breakers, the host
//    ejection cap and the in-flight (max_pending) count.
//  - BreakerRegistry: the process-wide ClusterBreaker per cluster name, so
//    every listener's breaker and every worker share one state per cluster.
//
// Concurrency. Everything here is shared by all worker threads.
//  - The allow check on the hot path is one atomic load of the state word
//    while closed; half-open adds a compare-exchange on the same word to
//    take a probe. No lock, no allocation.
//  - Outcomes go to the rolling window (one fetch_add on this thread's
//    stripe) and to the consecutive-failure counter.
//  - State changes take the state's mutex (they are rare), then
//    compare-exchange the word: two workers cannot both trip a breaker, and
//    the side effects (gauge, transition counter, log line, host ejection)
//    run once per transition, in transition order, as it happens.
// Time is passed in by the caller as steady nanoseconds (`now_ns`), so
// tests drive it with a fake clock.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "filters/breaker/breaker_stats.h"

namespace gw {
namespace breaker {

// The state of a breaker; the values are the state gauge's values.
enum class CircuitState : uint8_t { kClosed = 0, kOpen = 1, kHalfOpen = 2 };

// "closed", "open", "half_open" (metric label and log text).
std::string_view circuitStateName(CircuitState s);

// What counts as a failure (docs/filters/breaker.md, "What counts").
enum class FailureKind : uint8_t {
  kConnectFailed = 0,   // connect() to the host failed or timed out
  kConnectionLost = 1,  // an established connection with sessions on it closed
  kReplyTimeout = 2,    // expect_reply cluster: no backend frame in reply_timeout
};
inline constexpr size_t kFailureKinds = 3;

// "connect_failed", "connection_lost", "reply_timeout".
std::string_view failureKindName(FailureKind k);

// The thresholds of one breaker. Durations in nanoseconds.
struct BreakerPolicy {
  // Consecutive failures (no success in between) that open the breaker; 0: rule off.
  uint32_t failure_threshold = 5;
  // Failures / outcomes over `window` at or above which the breaker opens,
  // once the window holds at least `min_requests` outcomes; 0: rule off.
  double failure_ratio = 0.5;
  int64_t window_ns = 10'000'000'000;
  uint32_t min_requests = 20;
  // First open period; each trip from half-open doubles it, up to max.
  // Short, so a breaker that did open lets a recovered backend back soon.
  int64_t open_ns = 1'000'000'000;
  int64_t max_open_ns = 30'000'000'000;
  // Connection failures (connect failed, connection lost) of a host are
  // forgiven (not counted toward opening) until the host has been failing
  // this long while upstream reconnects with its backoff: a quick backend
  // restart opens nothing. 0: every failure counts at once.
  int64_t reconnect_grace_ns = 10'000'000'000;
  // Frames (or host placements) let through per half-open probe batch.
  uint32_t half_open_max_probes = 3;
  // expect_reply clusters: how long a client frame may wait for a backend
  // frame. Also the half-open probe batch length: a batch whose outcome is
  // unknown after this long no longer blocks a new batch.
  int64_t reply_timeout_ns = 5'000'000'000;

  bool operator==(const BreakerPolicy& o) const;
  bool operator!=(const BreakerPolicy& o) const { return !(*this == o); }
};

// Success/failure counts over a rolling window: 10 buckets of window/10
// each, so a sum covers between 9/10 and all of the window (the current
// bucket is partial). Each bucket counter is one 64-bit word: the bucket's
// sequence number (32 bits) and its count (32 bits); a writer that finds an
// old sequence number restarts the bucket with a compare-exchange, so a
// stale bucket is never mixed with a new one. Counts saturate nowhere: a
// bucket holds up to 2^32-1 outcomes (far beyond any real rate).
class RollingWindow {
 public:
  static constexpr size_t kBuckets = 10;
  static constexpr size_t kStripes = 4;

  // `window_ns` > 0; buckets are window_ns / 10 long (at least 1 ns).
  explicit RollingWindow(int64_t window_ns);

  // Adds one outcome at `now_ns` to the calling thread's stripe (chosen by
  // the thread's stats shard, i.e. its worker index). Lock-free.
  void add(bool failure, int64_t now_ns);

  struct Totals {
    uint64_t successes = 0;
    uint64_t failures = 0;
    uint64_t total() const { return successes + failures; }
  };
  // Sums the buckets that belong to the window ending at `now_ns`.
  Totals totals(int64_t now_ns) const;
  // Forgets every outcome (used when the breaker closes).
  void clear();

  int64_t bucketNs() const { return bucket_ns_; }

 private:
  struct alignas(64) Stripe {
    std::array<std::atomic<uint64_t>, kBuckets> ok{};
    std::array<std::atomic<uint64_t>, kBuckets> fail{};
  };
  static void addTo(std::atomic<uint64_t>& word, uint32_t seq);
  uint32_t seqOf(int64_t now_ns) const {
    return static_cast<uint32_t>(static_cast<uint64_t>(now_ns) / static_cast<uint64_t>(bucket_ns_));
  }

  int64_t bucket_ns_;
  std::array<Stripe, kStripes> stripes_;
};

// The result of allow().
enum class Admission : uint8_t {
  kAllow,       // closed: pass
  kProbe,       // half-open: pass as one of the batch's probes
  kRejectOpen,  // open, or half-open with the probe batch used up
};

class BreakerState;

// Told about every transition of a BreakerState, by the thread that made it,
// with the state's transition lock held (so calls are in transition order).
// Must not call back into the same BreakerState's transition methods.
class TransitionSink {
 public:
  virtual ~TransitionSink() = default;
  virtual void onTransition(BreakerState& state, CircuitState from, CircuitState to,
                            std::string_view reason, int64_t now_ns) = 0;
};

// What a record/tick call changed.
struct Transition {
  bool happened = false;
  CircuitState to = CircuitState::kClosed;
  // When to == kOpen: the steady time (ns) at which it may go half-open.
  int64_t open_until_ns = 0;
};

// One breaker. Thread-safe; shared by all workers. See the file banner.
class BreakerState {
 public:
  // `cluster` and `host` ("*" for a cluster-level breaker) label its
  // metrics and log lines. `sink` (may be null) sees every transition; it
  // must outlive this object.
  BreakerState(const BreakerPolicy& policy, std::string cluster, std::string host,
               TransitionSink* sink = nullptr);
  BreakerState(const BreakerState&) = delete;
  BreakerState& operator=(const BreakerState&) = delete;

  // Hot path: may a frame pass now? While closed this is one atomic load
  // and `now_ns()` is not called. Open: rejects until open_until, then goes
  // half-open (a transition) and admits the first probe. Half-open: admits
  // up to half_open_max_probes per batch (a compare-exchange each), then
  // rejects until reply_timeout after the batch started, when a new batch
  // begins. `now_ns` is a callable returning steady nanoseconds.
  template <class NowFn>
  Admission allow(NowFn&& now_ns) {
    uint64_t w = word_.load(std::memory_order_acquire);
    if ((w & kStateMask) == static_cast<uint64_t>(CircuitState::kClosed)) return Admission::kAllow;
    return allowSlow(w, now_ns());
  }
  // Gives back a probe taken by allow() for a frame that was then refused
  // for another reason (overflow). No-op unless half-open with probes taken.
  void releaseProbe();

  // Records a success (a backend frame; or, on clusters without
  // expect_reply, a completed connect). Half-open: closes the breaker.
  Transition recordSuccess(int64_t now_ns);
  // Records a failure. Closed: opens the breaker if a trip rule holds.
  // Half-open: reopens it with the next (doubled, capped) open period.
  // Open: only counted.
  Transition recordFailure(int64_t now_ns, FailureKind kind);
  // Time-driven transition: open -> half-open once open_until has passed
  // (the hub's timer calls this so the gauge changes on time, not at the
  // next frame). Returns the transition, if any.
  Transition tick(int64_t now_ns);

  CircuitState state() const {
    return static_cast<CircuitState>(word_.load(std::memory_order_acquire) & kStateMask);
  }
  // Open: when it may go half-open (steady ns, millisecond precision); else 0.
  int64_t openUntilNs() const;
  // Consecutive trips without a close (the backoff exponent); 0 when closed.
  uint32_t trips() const;
  // Probes taken in the current half-open batch (0 unless half-open).
  uint32_t probesTaken() const;
  uint32_t consecutiveFailures() const { return consecutive_.load(std::memory_order_relaxed); }
  RollingWindow::Totals windowTotals(int64_t now_ns) const { return window_.totals(now_ns); }

  // Host breakers: true while the host is taken out of load balancing
  // (set and cleared by ClusterBreaker within the transition lock).
  bool ejected() const { return ejected_.load(std::memory_order_acquire); }
  void setEjected(bool e) { ejected_.store(e, std::memory_order_release); }

  const BreakerPolicy& policy() const { return policy_; }
  const std::string& cluster() const { return cluster_; }
  const std::string& host() const { return host_; }
  BreakerStateStats& stats() { return stats_; }

  // The open period after `trips` consecutive trips: open_ns * 2^(trips-1),
  // capped at max_open_ns.
  int64_t openDurationNs(uint32_t trips) const;

 private:
  // The state word: bits 0-1 state, 2-11 probes taken in this half-open
  // batch, 12-16 trips (backoff exponent), 17-63 a time in milliseconds
  // (open: open_until; half-open: when the probe batch started).
  static constexpr uint64_t kStateMask = 0x3;
  static constexpr int kProbeShift = 2;
  static constexpr uint64_t kProbeMask = 0x3FF;
  static constexpr int kTripShift = 12;
  static constexpr uint64_t kTripMask = 0x1F;
  static constexpr int kTimeShift = 17;

  static uint64_t makeWord(CircuitState s, uint32_t probes, uint32_t trips, int64_t ms);
  static CircuitState stateOf(uint64_t w) { return static_cast<CircuitState>(w & kStateMask); }
  static uint32_t probesOf(uint64_t w) {
    return static_cast<uint32_t>((w >> kProbeShift) & kProbeMask);
  }
  static uint32_t tripsOf(uint64_t w) {
    return static_cast<uint32_t>((w >> kTripShift) & kTripMask);
  }
  static int64_t msOf(uint64_t w) { return static_cast<int64_t>(w >> kTimeShift); }

  Admission allowSlow(uint64_t w, int64_t now_ns);
  // Under mu_: moves the word from a state in `from_mask` to what `next`
  // computes; runs the side effects. Returns the transition (happened=false
  // if the word was no longer in an accepted state).
  template <class Next>
  Transition transition(uint32_t from_mask, int64_t now_ns, Next&& next);
  // Runs a transition's side effects (caller holds mu_).
  void published(CircuitState from, CircuitState to, std::string_view reason, int64_t now_ns);
  std::string tripReason(uint32_t consecutive, int64_t now_ns, FailureKind kind) const;

  const BreakerPolicy policy_;
  const std::string cluster_;
  const std::string host_;
  TransitionSink* sink_;

  alignas(64) std::atomic<uint64_t> word_;
  alignas(64) std::atomic<uint32_t> consecutive_{0};
  std::atomic<bool> ejected_{false};
  std::mutex mu_;  // serializes transitions and their side effects
  BreakerStateStats stats_;
  RollingWindow window_;
};

// Everything that defines a cluster's breakers; two equal specs share state.
struct ClusterBreakerSpec {
  std::string cluster;
  std::vector<std::string> hosts;  // addresses, "127.0.0.1:9000"
  bool expect_reply = false;
  BreakerPolicy policy;
  bool per_host = true;
  uint32_t max_pending = 0;            // 0: no limit
  uint32_t max_ejection_percent = 50;  // 0..100

  bool operator==(const ClusterBreakerSpec& o) const;
};

// A cluster's breakers, shared by all workers: the cluster-level breaker
// (host "*"), one per host when per_host, the count of ejected hosts with
// its cap, and the frames in flight for max_pending.
class ClusterBreaker : public std::enable_shared_from_this<ClusterBreaker>, private TransitionSink {
 public:
  explicit ClusterBreaker(ClusterBreakerSpec spec);
  ~ClusterBreaker() override;

  const ClusterBreakerSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.cluster; }
  bool expectReply() const { return spec_.expect_reply; }
  const BreakerPolicy& policy() const { return spec_.policy; }

  BreakerState& cluster() { return *cluster_; }
  // Host breakers exist only with per_host; nullptr otherwise or when out of range.
  BreakerState* host(size_t i) { return i < hosts_.size() ? hosts_[i].get() : nullptr; }
  size_t hostCount() const { return hosts_.size(); }

  // Hosts that may be ejected at once: floor(hosts * max_ejection_percent /
  // 100), at most hosts - 1 (so one host always serves).
  uint32_t maxEjected() const { return max_ejected_; }
  uint32_t ejectedCount() const { return ejected_.load(std::memory_order_relaxed); }

  // max_pending (expect_reply clusters only): frames sent and not yet
  // answered, timed out, lost or abandoned, all workers.
  bool overPending() const {
    return spec_.max_pending != 0 &&
           pending_.load(std::memory_order_relaxed) >= static_cast<int64_t>(spec_.max_pending);
  }
  void addPending(int64_t n);
  int64_t pending() const { return pending_.load(std::memory_order_relaxed); }

  ClusterBreakerStats& stats() { return stats_; }

  // Called for a connection failure (connect failed or connection lost) of
  // `host`: true when it is forgiven (counted only in the grace metric, not
  // toward opening), i.e. reconnect_grace > 0, the host's and the cluster's
  // breakers are closed, and the host's failure episode began less than
  // reconnect_grace ago. The first failure after a frame from the host, or
  // after a connection to it that stayed up for reconnect_grace, begins a
  // new episode (so a backend that accepts and drops at once cannot stay
  // forgiven). Lock-free; shared by all workers.
  bool forgive(size_t host, int64_t now_ns);
  // A connection to `host` was established at `now_ns` (ends the failure
  // episode once it has lasted reconnect_grace, see forgive()).
  void hostConnected(size_t host, int64_t now_ns);
  // A frame came from `host`: its failure episode ends now. One load when
  // there is no episode (the per-frame case).
  void hostAnswered(size_t host) {
    if (host < grace_.size() && grace_[host].failing_since.load(std::memory_order_relaxed) != 0)
      grace_[host].failing_since.store(0, std::memory_order_relaxed);
  }

 private:
  // A host's failure episode (see forgive()); times in steady ns, 0: none.
  struct alignas(64) HostGrace {
    std::atomic<int64_t> failing_since{0};
    std::atomic<int64_t> connected_at{0};
  };

  void onTransition(BreakerState& state, CircuitState from, CircuitState to,
                    std::string_view reason, int64_t now_ns) override;

  ClusterBreakerSpec spec_;
  ClusterBreakerStats stats_;
  std::unique_ptr<BreakerState> cluster_;
  std::vector<std::unique_ptr<BreakerState>> hosts_;
  uint32_t max_ejected_ = 0;
  std::atomic<uint32_t> ejected_{0};
  std::vector<HostGrace> grace_;  // one per host (sized once, never resized)
  alignas(64) std::atomic<int64_t> pending_{0};
};

// The process-wide ClusterBreaker of each cluster name. Listeners whose
// breaker configs give a cluster the same spec share one ClusterBreaker; a
// config reload with an unchanged spec keeps the state (an open breaker
// stays open). Each parsed config holds (acquire) the ClusterBreakers it
// uses and releases them when it is destroyed; a cluster's current
// ClusterBreaker is the most recently acquired one still held by a config,
// so a config that is parsed and then dropped (a refused reload,
// --check-config) leaves the running one current. Thread-safe (a mutex;
// used at config time and when a worker's cache is refreshed, never per
// frame).
class BreakerRegistry {
 public:
  static BreakerRegistry& get();

  // A held ClusterBreaker equal to `spec` if one exists, else a new one;
  // either way it becomes spec.cluster's current one and gains one holder.
  // Bumps generation() so workers refresh their caches.
  std::shared_ptr<ClusterBreaker> acquire(const ClusterBreakerSpec& spec);
  // Drops one holder of `cb` (the config that acquired it is going away).
  void release(const ClusterBreaker& cb);
  // The cluster's current ClusterBreaker, or nullptr if no config holds one.
  std::shared_ptr<ClusterBreaker> find(std::string_view cluster) const;
  // Changes whenever acquire() or release() ran.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  struct Entry {
    std::weak_ptr<ClusterBreaker> cb;
    const ClusterBreaker* raw = nullptr;
    size_t holders = 0;
  };
  mutable std::mutex mu_;
  // Per cluster, oldest first; the current one is the last with holders.
  std::map<std::string, std::vector<Entry>, std::less<>> by_name_;
  std::atomic<uint64_t> generation_{1};
};

}  // namespace breaker
}  // namespace gw
