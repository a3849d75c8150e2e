#include "filters/breaker/breaker_state.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <utility>

#include "core/sdk/log.h"

namespace gw {
namespace breaker {

namespace {

constexpr int64_t kNsPerMs = 1'000'000;

int64_t floorMs(int64_t ns) { return ns / kNsPerMs; }
int64_t ceilMs(int64_t ns) { return (ns + kNsPerMs - 1) / kNsPerMs; }

constexpr uint32_t bit(CircuitState s) { return 1u << static_cast<uint32_t>(s); }

}  // namespace

std::string_view circuitStateName(CircuitState s) {
  switch (s) {
    case CircuitState::kClosed:
      return "closed";
    case CircuitState::kOpen:
      return "open";
    case CircuitState::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

std::string_view failureKindName(FailureKind k) {
  switch (k) {
    case FailureKind::kConnectFailed:
      return "connect_failed";
    case FailureKind::kConnectionLost:
      return "connection_lost";
    case FailureKind::kReplyTimeout:
      return "reply_timeout";
  }
  return "failure";
}

bool BreakerPolicy::operator==(const BreakerPolicy& o) const {
  return failure_threshold == o.failure_threshold && failure_ratio == o.failure_ratio &&
         window_ns == o.window_ns && min_requests == o.min_requests && open_ns == o.open_ns &&
         max_open_ns == o.max_open_ns && half_open_max_probes == o.half_open_max_probes &&
         reply_timeout_ns == o.reply_timeout_ns && reconnect_grace_ns == o.reconnect_grace_ns;
}

// ---------------------------------------------------------------- RollingWindow

RollingWindow::RollingWindow(int64_t window_ns)
    : bucket_ns_(std::max<int64_t>(1, window_ns / static_cast<int64_t>(kBuckets))) {}

void RollingWindow::addTo(std::atomic<uint64_t>& word, uint32_t seq) {
  uint64_t w = word.load(std::memory_order_relaxed);
  for (;;) {
    uint32_t held = static_cast<uint32_t>(w >> 32);
    // The bucket already counts for `seq` (or for a later one, if another
    // thread read a slightly later clock): add to it.
    if (static_cast<int32_t>(seq - held) <= 0) {
      word.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // A stale bucket: restart it for `seq` with this outcome.
    if (word.compare_exchange_weak(w, (static_cast<uint64_t>(seq) << 32) | 1,
                                   std::memory_order_relaxed, std::memory_order_relaxed)) {
      return;
    }
  }
}

void RollingWindow::add(bool failure, int64_t now_ns) {
  Stripe& s = stripes_[stats::internal::tls_shard % kStripes];
  uint32_t seq = seqOf(now_ns);
  auto& arr = failure ? s.fail : s.ok;
  addTo(arr[seq % kBuckets], seq);
}

RollingWindow::Totals RollingWindow::totals(int64_t now_ns) const {
  uint32_t cur = seqOf(now_ns);
  Totals t;
  for (const Stripe& s : stripes_) {
    for (size_t b = 0; b < kBuckets; ++b) {
      uint64_t ok = s.ok[b].load(std::memory_order_relaxed);
      if (cur - static_cast<uint32_t>(ok >> 32) < kBuckets) t.successes += ok & 0xFFFFFFFFu;
      uint64_t fail = s.fail[b].load(std::memory_order_relaxed);
      if (cur - static_cast<uint32_t>(fail >> 32) < kBuckets) t.failures += fail & 0xFFFFFFFFu;
    }
  }
  return t;
}

void RollingWindow::clear() {
  for (Stripe& s : stripes_) {
    for (size_t b = 0; b < kBuckets; ++b) {
      s.ok[b].store(0, std::memory_order_relaxed);
      s.fail[b].store(0, std::memory_order_relaxed);
    }
  }
}

// ---------------------------------------------------------------- BreakerState

BreakerState::BreakerState(const BreakerPolicy& policy, std::string cluster, std::string host,
                           TransitionSink* sink)
    : policy_(policy),
      cluster_(std::move(cluster)),
      host_(std::move(host)),
      sink_(sink),
      word_(makeWord(CircuitState::kClosed, 0, 0, 0)),
      stats_(cluster_, host_),
      window_(policy.window_ns) {
  stats_.set(static_cast<int64_t>(CircuitState::kClosed));
}

uint64_t BreakerState::makeWord(CircuitState s, uint32_t probes, uint32_t trips, int64_t ms) {
  return static_cast<uint64_t>(s) | (static_cast<uint64_t>(probes & kProbeMask) << kProbeShift) |
         (static_cast<uint64_t>(trips & kTripMask) << kTripShift) |
         (static_cast<uint64_t>(std::max<int64_t>(ms, 0)) << kTimeShift);
}

int64_t BreakerState::openUntilNs() const {
  uint64_t w = word_.load(std::memory_order_acquire);
  return stateOf(w) == CircuitState::kOpen ? msOf(w) * kNsPerMs : 0;
}

uint32_t BreakerState::trips() const { return tripsOf(word_.load(std::memory_order_acquire)); }

uint32_t BreakerState::probesTaken() const {
  uint64_t w = word_.load(std::memory_order_acquire);
  return stateOf(w) == CircuitState::kHalfOpen ? probesOf(w) : 0;
}

int64_t BreakerState::openDurationNs(uint32_t trips) const {
  int64_t d = policy_.open_ns;
  for (uint32_t i = 1; i < trips && d < policy_.max_open_ns; ++i) {
    d = d > policy_.max_open_ns / 2 ? policy_.max_open_ns : d * 2;
  }
  return std::min(d, policy_.max_open_ns);
}

template <class Next>
Transition BreakerState::transition(uint32_t from_mask, int64_t now_ns, Next&& next) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t w = word_.load(std::memory_order_acquire);
  for (;;) {
    CircuitState from = stateOf(w);
    if ((from_mask & bit(from)) == 0) return {};
    std::string reason;
    uint64_t nw = next(w, &reason);
    if (nw == w) return {};  // `next` found the move no longer applies
    // Only probe counters change the word without the lock: retry on those.
    if (word_.compare_exchange_weak(w, nw, std::memory_order_acq_rel, std::memory_order_acquire)) {
      Transition t;
      t.happened = true;
      t.to = stateOf(nw);
      if (t.to == CircuitState::kOpen) t.open_until_ns = msOf(nw) * kNsPerMs;
      published(from, t.to, reason, now_ns);
      return t;
    }
  }
}

void BreakerState::published(CircuitState from, CircuitState to, std::string_view reason,
                             int64_t now_ns) {
  if (to == CircuitState::kClosed) {
    // A closed breaker starts from a clean slate: failures from before the
    // trip must not re-open it at once (flapping).
    window_.clear();
    consecutive_.store(0, std::memory_order_relaxed);
  }
  stats_.transitions[static_cast<size_t>(to)]->inc();
  stats_.set(static_cast<int64_t>(to));
  if (to == CircuitState::kOpen) {
    GW_LOG(warn, "breaker: cluster '{}' host {}: {} -> {}: {}", cluster_, host_,
           circuitStateName(from), circuitStateName(to), reason);
  } else {
    GW_LOG(info, "breaker: cluster '{}' host {}: {} -> {}: {}", cluster_, host_,
           circuitStateName(from), circuitStateName(to), reason);
  }
  if (sink_ != nullptr) sink_->onTransition(*this, from, to, reason, now_ns);
}

Admission BreakerState::allowSlow(uint64_t w, int64_t now_ns) {
  const int64_t now_ms = floorMs(now_ns);
  for (;;) {
    switch (stateOf(w)) {
      case CircuitState::kClosed:
        return Admission::kAllow;
      case CircuitState::kOpen: {
        if (now_ms < msOf(w)) return Admission::kRejectOpen;
        // Due: go half-open and take the first probe in the same step.
        Transition t = transition(
            bit(CircuitState::kOpen), now_ns, [&](uint64_t cur, std::string* reason) -> uint64_t {
              if (now_ms < msOf(cur)) return cur;  // reopened meanwhile
              *reason = "open period over, probing";
              return makeWord(CircuitState::kHalfOpen, 1, tripsOf(cur), now_ms);
            });
        if (t.happened && t.to == CircuitState::kHalfOpen) return Admission::kProbe;
        w = word_.load(std::memory_order_acquire);
        if (stateOf(w) == CircuitState::kOpen && now_ms < msOf(w)) return Admission::kRejectOpen;
        continue;
      }
      case CircuitState::kHalfOpen: {
        uint32_t p = probesOf(w);
        uint64_t nw;
        if (p < policy_.half_open_max_probes) {
          nw = w + (uint64_t{1} << kProbeShift);
        } else if (now_ms - msOf(w) >= floorMs(policy_.reply_timeout_ns)) {
          // The last batch's outcome is still unknown after reply_timeout:
          // start a new batch.
          nw = makeWord(CircuitState::kHalfOpen, 1, tripsOf(w), now_ms);
        } else {
          return Admission::kRejectOpen;
        }
        if (word_.compare_exchange_weak(w, nw, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
          return Admission::kProbe;
        }
        continue;
      }
    }
    return Admission::kRejectOpen;  // not reached: the state field has 3 values
  }
}

void BreakerState::releaseProbe() {
  uint64_t w = word_.load(std::memory_order_acquire);
  while (stateOf(w) == CircuitState::kHalfOpen && probesOf(w) > 0) {
    if (word_.compare_exchange_weak(w, w - (uint64_t{1} << kProbeShift), std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
      return;
    }
  }
}

Transition BreakerState::recordSuccess(int64_t now_ns) {
  window_.add(false, now_ns);
  if (consecutive_.load(std::memory_order_relaxed) != 0)
    consecutive_.store(0, std::memory_order_relaxed);
  if (state() != CircuitState::kHalfOpen) return {};
  return transition(bit(CircuitState::kHalfOpen), now_ns,
                    [](uint64_t, std::string* reason) -> uint64_t {
                      *reason = "probe succeeded";
                      return makeWord(CircuitState::kClosed, 0, 0, 0);
                    });
}

std::string BreakerState::tripReason(uint32_t consecutive, int64_t now_ns, FailureKind kind) const {
  char buf[160];
  if (policy_.failure_threshold > 0 && consecutive >= policy_.failure_threshold) {
    std::snprintf(buf, sizeof(buf), "%u consecutive failures (last: %.*s)", consecutive,
                  static_cast<int>(failureKindName(kind).size()), failureKindName(kind).data());
    return buf;
  }
  if (policy_.failure_ratio > 0) {
    RollingWindow::Totals t = window_.totals(now_ns);
    if (t.total() >= policy_.min_requests && t.total() > 0 &&
        static_cast<double>(t.failures) >= policy_.failure_ratio * static_cast<double>(t.total())) {
      std::snprintf(buf, sizeof(buf),
                    "failure ratio %.2f >= %.2f over %" PRId64 "ms (%" PRIu64 " of %" PRIu64
                    " outcomes failed; last: %.*s)",
                    static_cast<double>(t.failures) / static_cast<double>(t.total()),
                    policy_.failure_ratio, floorMs(policy_.window_ns), t.failures, t.total(),
                    static_cast<int>(failureKindName(kind).size()), failureKindName(kind).data());
      return buf;
    }
  }
  return std::string();
}

Transition BreakerState::recordFailure(int64_t now_ns, FailureKind kind) {
  window_.add(true, now_ns);
  uint32_t consecutive = consecutive_.fetch_add(1, std::memory_order_relaxed) + 1;
  switch (state()) {
    case CircuitState::kOpen:
      return {};
    case CircuitState::kClosed: {
      std::string why = tripReason(consecutive, now_ns, kind);
      if (why.empty()) return {};
      return transition(bit(CircuitState::kClosed), now_ns,
                        [&](uint64_t, std::string* reason) -> uint64_t {
                          int64_t d = openDurationNs(1);
                          *reason = why + "; open for " + std::to_string(floorMs(d)) + "ms";
                          return makeWord(CircuitState::kOpen, 0, 1, ceilMs(now_ns + d));
                        });
    }
    case CircuitState::kHalfOpen:
      return transition(
          bit(CircuitState::kHalfOpen), now_ns, [&](uint64_t cur, std::string* reason) -> uint64_t {
            uint32_t trips = std::min<uint32_t>(tripsOf(cur) + 1, kTripMask);
            int64_t d = openDurationNs(trips);
            *reason = "probe failed (" + std::string(failureKindName(kind)) + "); open for " +
                      std::to_string(floorMs(d)) + "ms (trip " + std::to_string(trips) + ")";
            return makeWord(CircuitState::kOpen, 0, trips, ceilMs(now_ns + d));
          });
  }
  return {};
}

Transition BreakerState::tick(int64_t now_ns) {
  const int64_t now_ms = floorMs(now_ns);
  uint64_t w = word_.load(std::memory_order_acquire);
  if (stateOf(w) != CircuitState::kOpen || now_ms < msOf(w)) return {};
  return transition(bit(CircuitState::kOpen), now_ns,
                    [&](uint64_t cur, std::string* reason) -> uint64_t {
                      if (now_ms < msOf(cur)) return cur;
                      *reason = "open period over, probing";
                      return makeWord(CircuitState::kHalfOpen, 0, tripsOf(cur), now_ms);
                    });
}

// ---------------------------------------------------------------- ClusterBreaker

bool ClusterBreakerSpec::operator==(const ClusterBreakerSpec& o) const {
  return cluster == o.cluster && hosts == o.hosts && expect_reply == o.expect_reply &&
         policy == o.policy && per_host == o.per_host && max_pending == o.max_pending &&
         max_ejection_percent == o.max_ejection_percent;
}

ClusterBreaker::ClusterBreaker(ClusterBreakerSpec spec)
    : spec_(std::move(spec)), stats_(spec_.cluster, spec_.hosts), grace_(spec_.hosts.size()) {
  TransitionSink* sink = this;
  cluster_ = std::make_unique<BreakerState>(spec_.policy, spec_.cluster, "*", sink);
  if (spec_.per_host) {
    for (const auto& h : spec_.hosts)
      hosts_.push_back(std::make_unique<BreakerState>(spec_.policy, spec_.cluster, h, sink));
  }
  size_t n = spec_.hosts.size();
  if (n >= 2) {
    size_t cap = n * std::min<uint32_t>(spec_.max_ejection_percent, 100) / 100;
    max_ejected_ = static_cast<uint32_t>(std::min(cap, n - 1));
  }
}

bool ClusterBreaker::forgive(size_t host, int64_t now_ns) {
  const int64_t grace = spec_.policy.reconnect_grace_ns;
  if (grace <= 0 || host >= grace_.size()) return false;
  if (cluster_->state() != CircuitState::kClosed) return false;
  if (BreakerState* hs = this->host(host); hs != nullptr && hs->state() != CircuitState::kClosed)
    return false;
  HostGrace& g = grace_[host];
  int64_t since = g.failing_since.load(std::memory_order_relaxed);
  int64_t up = g.connected_at.load(std::memory_order_relaxed);
  bool new_episode = since == 0 || (up > since && now_ns - up >= grace);
  if (new_episode) {
    // Another worker may begin the same episode at the same time: the
    // first one's start wins.
    if (g.failing_since.compare_exchange_strong(since, now_ns, std::memory_order_relaxed))
      since = now_ns;
  }
  if (now_ns - since >= grace) return false;
  if (host < stats_.forgiven.size()) stats_.forgiven[host]->inc();
  return true;
}

void ClusterBreaker::hostConnected(size_t host, int64_t now_ns) {
  if (host < grace_.size()) grace_[host].connected_at.store(now_ns, std::memory_order_relaxed);
}

ClusterBreaker::~ClusterBreaker() {
  // Leave the shared gauges as if this breaker had never been there.
  stats_.pending->dec(pending_.load(std::memory_order_relaxed));
  stats_.ejected->dec(ejected_.load(std::memory_order_relaxed));
}

void ClusterBreaker::addPending(int64_t n) {
  if (n == 0) return;
  pending_.fetch_add(n, std::memory_order_relaxed);
  stats_.pending->inc(n);
}

void ClusterBreaker::onTransition(BreakerState& state, CircuitState from, CircuitState to,
                                  std::string_view, int64_t) {
  (void)from;  // the state is what matters: ejected while not closed
  if (&state == cluster_.get()) return;
  // Host breakers: eject while not closed, within the cap. Runs under the
  // host state's transition lock, so it sees transitions in order.
  bool want = to != CircuitState::kClosed;
  if (want && !state.ejected()) {
    uint32_t n = ejected_.load(std::memory_order_relaxed);
    while (n < max_ejected_) {
      if (ejected_.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel)) {
        state.setEjected(true);
        stats_.ejected->inc();
        GW_LOG(warn,
               "breaker: cluster '{}' host {}: ejected from load balancing ({} of {} hosts "
               "ejected, cap {})",
               spec_.cluster, state.host(), n + 1, spec_.hosts.size(), max_ejected_);
        return;
      }
    }
    // A single-host cluster never ejects (its cluster-level breaker acts
    // instead): nothing to say. Otherwise say it once per trip.
    if (spec_.hosts.size() >= 2 && to == CircuitState::kOpen) {
      GW_LOG(warn,
             "breaker: cluster '{}' host {}: not ejected: max_ejection_percent {} allows {} "
             "of {} hosts to be ejected and that many already are",
             spec_.cluster, state.host(), spec_.max_ejection_percent, max_ejected_,
             spec_.hosts.size());
    }
  } else if (!want && state.ejected()) {
    state.setEjected(false);
    ejected_.fetch_sub(1, std::memory_order_acq_rel);
    stats_.ejected->dec();
    GW_LOG(info, "breaker: cluster '{}' host {}: back in load balancing", spec_.cluster,
           state.host());
  }
}

// ---------------------------------------------------------------- BreakerRegistry

BreakerRegistry& BreakerRegistry::get() {
  static BreakerRegistry* r = new BreakerRegistry();  // never destroyed: used at exit
  return *r;
}

std::shared_ptr<ClusterBreaker> BreakerRegistry::acquire(const ClusterBreakerSpec& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  auto& entries = by_name_[spec.cluster];
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [](const Entry& e) { return e.holders == 0 || e.cb.expired(); }),
                entries.end());
  for (size_t i = 0; i < entries.size(); ++i) {
    std::shared_ptr<ClusterBreaker> live = entries[i].cb.lock();
    if (live && live->spec() == spec) {
      Entry e = entries[i];
      ++e.holders;
      entries.erase(entries.begin() + static_cast<long>(i));
      entries.push_back(e);  // now the current one
      return live;
    }
  }
  if (!entries.empty()) {
    GW_LOG(info, "breaker: cluster '{}': new settings; its new breakers start closed",
           spec.cluster);
  }
  auto fresh = std::make_shared<ClusterBreaker>(spec);
  entries.push_back(Entry{fresh, fresh.get(), 1});
  return fresh;
}

void BreakerRegistry::release(const ClusterBreaker& cb) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_name_.find(cb.name());
  if (it == by_name_.end()) return;
  for (Entry& e : it->second) {
    if (e.raw == &cb && e.holders > 0) {
      --e.holders;
      generation_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
  }
}

std::shared_ptr<ClusterBreaker> BreakerRegistry::find(std::string_view cluster) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_name_.find(cluster);
  if (it == by_name_.end()) return nullptr;
  for (auto e = it->second.rbegin(); e != it->second.rend(); ++e) {
    if (e->holders == 0) continue;
    if (auto live = e->cb.lock()) return live;
  }
  return nullptr;
}

}  // namespace breaker
}  // namespace gw
