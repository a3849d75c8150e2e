// Unit tests of the breaker's shared state with a fake clock: every
// transition, rolling window edges, backoff growth and cap, the half-open
// probe limit, host ejection with its cap, the registry, and two threads
// updating one breaker at once.
#include "filters/breaker/breaker_state.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/sdk/stats.h"

namespace gw {
namespace breaker {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1000 * kMs;
// A fake steady clock far from 0 (as the real one is).
constexpr int64_t kT0 = 5'000 * kSec;

BreakerPolicy testPolicy() {
  BreakerPolicy p;
  p.failure_threshold = 3;
  p.failure_ratio = 0;  // most tests use the consecutive rule alone
  p.window_ns = 1 * kSec;
  p.min_requests = 10;
  p.open_ns = 100 * kMs;
  p.max_open_ns = 1000 * kMs;
  p.half_open_max_probes = 2;
  p.reply_timeout_ns = 50 * kMs;
  return p;
}

// A unique cluster name per breaker so metrics do not mix across tests.
std::string uniqueName(const std::string& base) {
  static std::atomic<int> n{0};
  return base + "-" + std::to_string(n.fetch_add(1));
}

int64_t gaugeValue(const std::string& cluster, const std::string& host) {
  return stats::StatsRegistry::get()
      .gauge("game_gateway_circuit_breaker_state", "", {{"cluster", cluster}, {"host", host}})
      .value();
}

uint64_t transitionsTo(const std::string& cluster, const std::string& host, const char* to) {
  return stats::StatsRegistry::get()
      .counter("game_gateway_circuit_breaker_transitions_total", "",
               {{"cluster", cluster}, {"host", host}, {"to", to}})
      .value();
}

// Records every transition in order (called under the state's lock).
struct RecordingSink : TransitionSink {
  struct Entry {
    CircuitState from, to;
    std::string reason;
  };
  void onTransition(BreakerState&, CircuitState from, CircuitState to, std::string_view reason,
                    int64_t) override {
    std::lock_guard<std::mutex> l(mu);
    log.push_back({from, to, std::string(reason)});
  }
  std::mutex mu;
  std::vector<Entry> log;
};

struct Fixture : ::testing::Test {
  Fixture() : name(uniqueName("state")), b(testPolicy(), name, "*", &sink) {}
  // Drives the breaker open with failure_threshold failures at `now`.
  void trip(int64_t at) {
    for (uint32_t i = 0; i < b.policy().failure_threshold; ++i)
      b.recordFailure(at, FailureKind::kConnectFailed);
    ASSERT_EQ(b.state(), CircuitState::kOpen);
  }
  int64_t now = kT0;
  std::string name;
  RecordingSink sink;
  BreakerState b;
};

using BreakerStateTest = Fixture;

TEST_F(BreakerStateTest, ClosedAllowsWithoutReadingTheClock) {
  bool clock_read = false;
  EXPECT_EQ(b.allow([&] {
    clock_read = true;
    return now;
  }),
            Admission::kAllow);
  EXPECT_FALSE(clock_read);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  EXPECT_EQ(gaugeValue(name, "*"), 0);
}

TEST_F(BreakerStateTest, ConsecutiveFailuresOpenAndASuccessResetsTheCount) {
  b.recordFailure(now, FailureKind::kConnectFailed);
  b.recordFailure(now, FailureKind::kReplyTimeout);
  EXPECT_EQ(b.consecutiveFailures(), 2u);
  b.recordSuccess(now);
  EXPECT_EQ(b.consecutiveFailures(), 0u);
  b.recordFailure(now, FailureKind::kConnectFailed);
  b.recordFailure(now, FailureKind::kConnectFailed);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  Transition t = b.recordFailure(now, FailureKind::kConnectionLost);
  EXPECT_TRUE(t.happened);
  EXPECT_EQ(t.to, CircuitState::kOpen);
  EXPECT_EQ(t.open_until_ns, now + 100 * kMs);
  EXPECT_EQ(b.state(), CircuitState::kOpen);
  EXPECT_EQ(b.trips(), 1u);
  EXPECT_EQ(gaugeValue(name, "*"), 1);
  EXPECT_EQ(transitionsTo(name, "*", "open"), 1u);
  ASSERT_EQ(sink.log.size(), 1u);
  EXPECT_EQ(sink.log[0].from, CircuitState::kClosed);
  EXPECT_NE(sink.log[0].reason.find("3 consecutive failures (last: connection_lost)"),
            std::string::npos)
      << sink.log[0].reason;
  // Further failures while open change nothing.
  EXPECT_FALSE(b.recordFailure(now, FailureKind::kConnectFailed).happened);
  EXPECT_EQ(sink.log.size(), 1u);
}

TEST_F(BreakerStateTest, OpenRejectsUntilTheDeadlineThenAdmitsAProbe) {
  trip(now);
  auto at = [](int64_t t) { return [t] { return t; }; };
  EXPECT_EQ(b.allow(at(now)), Admission::kRejectOpen);
  EXPECT_EQ(b.allow(at(now + 99 * kMs)), Admission::kRejectOpen);
  EXPECT_EQ(b.state(), CircuitState::kOpen);
  EXPECT_EQ(b.allow(at(now + 100 * kMs)), Admission::kProbe);
  EXPECT_EQ(b.state(), CircuitState::kHalfOpen);
  EXPECT_EQ(b.probesTaken(), 1u);
  EXPECT_EQ(gaugeValue(name, "*"), 2);
  EXPECT_EQ(transitionsTo(name, "*", "half_open"), 1u);
}

TEST_F(BreakerStateTest, TickMovesOpenToHalfOpenOnTime) {
  trip(now);
  EXPECT_FALSE(b.tick(now + 99 * kMs).happened);
  EXPECT_EQ(b.state(), CircuitState::kOpen);
  Transition t = b.tick(now + 100 * kMs);
  EXPECT_TRUE(t.happened);
  EXPECT_EQ(t.to, CircuitState::kHalfOpen);
  EXPECT_EQ(b.state(), CircuitState::kHalfOpen);
  EXPECT_EQ(b.probesTaken(), 0u);  // no probe taken by the timer
  EXPECT_EQ(gaugeValue(name, "*"), 2);
  EXPECT_FALSE(b.tick(now + 200 * kMs).happened);  // only from open
}

TEST_F(BreakerStateTest, HalfOpenAdmitsAtMostMaxProbesPerBatch) {
  trip(now);
  int64_t t = now + 100 * kMs;
  b.tick(t);
  auto at = [](int64_t v) { return [v] { return v; }; };
  EXPECT_EQ(b.allow(at(t)), Admission::kProbe);
  EXPECT_EQ(b.allow(at(t)), Admission::kProbe);
  EXPECT_EQ(b.allow(at(t)), Admission::kRejectOpen);
  EXPECT_EQ(b.allow(at(t + 49 * kMs)), Admission::kRejectOpen);
  EXPECT_EQ(b.probesTaken(), 2u);
  // A probe given back (refused for another reason) can be taken again.
  b.releaseProbe();
  EXPECT_EQ(b.allow(at(t + 49 * kMs)), Admission::kProbe);
  EXPECT_EQ(b.allow(at(t + 49 * kMs)), Admission::kRejectOpen);
  // No outcome within reply_timeout: a new batch starts.
  EXPECT_EQ(b.allow(at(t + 50 * kMs)), Admission::kProbe);
  EXPECT_EQ(b.probesTaken(), 1u);
  EXPECT_EQ(b.allow(at(t + 50 * kMs)), Admission::kProbe);
  EXPECT_EQ(b.allow(at(t + 50 * kMs)), Admission::kRejectOpen);
  EXPECT_EQ(b.state(), CircuitState::kHalfOpen);
}

TEST_F(BreakerStateTest, HalfOpenSuccessClosesAndForgetsThePast) {
  trip(now);
  int64_t t = now + 100 * kMs;
  b.tick(t);
  Transition c = b.recordSuccess(t + kMs);
  EXPECT_TRUE(c.happened);
  EXPECT_EQ(c.to, CircuitState::kClosed);
  EXPECT_EQ(b.state(), CircuitState::kClosed);
  EXPECT_EQ(b.trips(), 0u);
  EXPECT_EQ(b.consecutiveFailures(), 0u);
  RollingWindow::Totals w = b.windowTotals(t + kMs);
  EXPECT_EQ(w.total(), 0u);  // the pre-trip failures are gone
  EXPECT_EQ(gaugeValue(name, "*"), 0);
  EXPECT_EQ(transitionsTo(name, "*", "closed"), 1u);
  ASSERT_EQ(sink.log.size(), 3u);
  EXPECT_EQ(sink.log[1].from, CircuitState::kOpen);
  EXPECT_EQ(sink.log[1].to, CircuitState::kHalfOpen);
  EXPECT_EQ(sink.log[2].from, CircuitState::kHalfOpen);
  EXPECT_EQ(sink.log[2].to, CircuitState::kClosed);
  // A success while closed or open is no transition.
  EXPECT_FALSE(b.recordSuccess(t + 2 * kMs).happened);
}

TEST_F(BreakerStateTest, HalfOpenFailureReopensWithExponentialBackoffCapped) {
  trip(now);
  std::vector<int64_t> periods;
  int64_t t = now;
  for (int i = 0; i < 6; ++i) {
    int64_t until = b.openUntilNs();
    periods.push_back(until - t);
    t = until;
    ASSERT_TRUE(b.tick(t).happened);
    Transition r = b.recordFailure(t, FailureKind::kReplyTimeout);
    ASSERT_TRUE(r.happened);
    ASSERT_EQ(r.to, CircuitState::kOpen);
  }
  // 100, 200, 400, 800, then capped at max_open_duration (1000ms).
  std::vector<int64_t> want = {100 * kMs, 200 * kMs, 400 * kMs, 800 * kMs, 1000 * kMs, 1000 * kMs};
  EXPECT_EQ(periods, want);
  EXPECT_EQ(b.trips(), 7u);
  EXPECT_NE(sink.log.back().reason.find("probe failed (reply_timeout)"), std::string::npos);
  // A close resets the backoff: the next trip opens for open_duration again.
  t = b.openUntilNs();
  b.tick(t);
  b.recordSuccess(t);
  ASSERT_EQ(b.state(), CircuitState::kClosed);
  trip(t);
  EXPECT_EQ(b.openUntilNs() - t, 100 * kMs);
  EXPECT_EQ(b.trips(), 1u);
}

TEST(BreakerBackoff, OpenDurationDoublesAndCapsWithoutOverflow) {
  BreakerPolicy p = testPolicy();
  p.open_ns = 30 * kSec;
  p.max_open_ns = 300 * kSec;
  BreakerState s(p, uniqueName("backoff"), "*");
  EXPECT_EQ(s.openDurationNs(1), 30 * kSec);
  EXPECT_EQ(s.openDurationNs(2), 60 * kSec);
  EXPECT_EQ(s.openDurationNs(3), 120 * kSec);
  EXPECT_EQ(s.openDurationNs(4), 240 * kSec);
  EXPECT_EQ(s.openDurationNs(5), 300 * kSec);
  EXPECT_EQ(s.openDurationNs(31), 300 * kSec);
}

TEST(BreakerRatio, OpensAtTheRatioOnlyWithMinRequests) {
  BreakerPolicy p = testPolicy();
  p.failure_threshold = 0;
  p.failure_ratio = 0.5;
  p.min_requests = 10;
  BreakerState s(p, uniqueName("ratio"), "*");
  int64_t t = kT0;
  // 4 failures alone: ratio 1.0 but fewer than min_requests outcomes.
  for (int i = 0; i < 4; ++i) s.recordFailure(t, FailureKind::kConnectFailed);
  EXPECT_EQ(s.state(), CircuitState::kClosed);
  // 5 successes: 4 of 9 failed.
  for (int i = 0; i < 5; ++i) s.recordSuccess(t);
  EXPECT_EQ(s.state(), CircuitState::kClosed);
  // The 10th outcome is a failure: 5 of 10 = 0.5, at the threshold: opens.
  Transition tr = s.recordFailure(t, FailureKind::kConnectFailed);
  EXPECT_TRUE(tr.happened);
  EXPECT_EQ(s.state(), CircuitState::kOpen);
}

TEST(BreakerRatio, JustBelowTheRatioStaysClosed) {
  BreakerPolicy p = testPolicy();
  p.failure_threshold = 0;
  p.failure_ratio = 0.5;
  p.min_requests = 10;
  BreakerState s(p, uniqueName("ratio"), "*");
  int64_t t = kT0;
  for (int i = 0; i < 6; ++i) s.recordSuccess(t);
  for (int i = 0; i < 5; ++i) s.recordFailure(t, FailureKind::kConnectFailed);  // 5 of 11
  EXPECT_EQ(s.state(), CircuitState::kClosed);
  s.recordFailure(t, FailureKind::kConnectFailed);  // 6 of 12
  EXPECT_EQ(s.state(), CircuitState::kOpen);
}

TEST(BreakerRatio, OutcomesOlderThanTheWindowDoNotCount) {
  BreakerPolicy p = testPolicy();
  p.failure_threshold = 0;
  p.failure_ratio = 0.5;
  p.min_requests = 4;
  p.window_ns = 1 * kSec;
  BreakerState s(p, uniqueName("ratio"), "*");
  int64_t t = kT0;
  for (int i = 0; i < 3; ++i) s.recordFailure(t, FailureKind::kConnectFailed);
  // One window later those three have left: 1 outcome < min_requests.
  s.recordFailure(t + 1 * kSec, FailureKind::kConnectFailed);
  EXPECT_EQ(s.state(), CircuitState::kClosed);
  EXPECT_EQ(s.windowTotals(t + 1 * kSec).failures, 1u);
}

TEST(RollingWindowTest, BucketEdges) {
  // window 1s -> 10 buckets of 100ms. An outcome in bucket k counts while
  // the current bucket is k..k+9.
  RollingWindow w(1 * kSec);
  EXPECT_EQ(w.bucketNs(), 100 * kMs);
  int64_t b0 = kT0;  // kT0 is a multiple of 100ms: start of a bucket
  w.add(true, b0);
  w.add(false, b0 + 99 * kMs);  // same bucket
  EXPECT_EQ(w.totals(b0).failures, 1u);
  EXPECT_EQ(w.totals(b0).successes, 1u);
  EXPECT_EQ(w.totals(b0 + 999 * kMs).total(), 2u);   // current bucket k+9
  EXPECT_EQ(w.totals(b0 + 1000 * kMs).total(), 0u);  // k+10: gone
  // Before: a clock behind the bucket does not see it either.
  EXPECT_EQ(w.totals(b0 - 1).total(), 0u);
}

TEST(RollingWindowTest, AReusedSlotRestartsInsteadOfMixingOldCounts) {
  RollingWindow w(1 * kSec);
  int64_t b0 = kT0;
  for (int i = 0; i < 5; ++i) w.add(true, b0);
  // Bucket k+10 uses the same slot as bucket k.
  w.add(true, b0 + 1000 * kMs);
  RollingWindow::Totals t = w.totals(b0 + 1000 * kMs);
  EXPECT_EQ(t.failures, 1u);
  EXPECT_EQ(t.successes, 0u);
}

TEST(RollingWindowTest, SumsAcrossBucketsAndStripes) {
  RollingWindow w(1 * kSec);
  std::thread other([&] {
    stats::setThreadShard(1);
    for (int i = 0; i < 10; ++i) w.add(false, kT0 + i * 100 * kMs);
  });
  other.join();
  stats::setThreadShard(0);
  for (int i = 0; i < 10; ++i) w.add(true, kT0 + i * 100 * kMs);
  RollingWindow::Totals t = w.totals(kT0 + 950 * kMs);
  EXPECT_EQ(t.successes, 10u);
  EXPECT_EQ(t.failures, 10u);
  // 150ms later the first bucket (one of each) has left.
  t = w.totals(kT0 + 1050 * kMs);
  EXPECT_EQ(t.successes, 9u);
  EXPECT_EQ(t.failures, 9u);
  w.clear();
  EXPECT_EQ(w.totals(kT0 + 950 * kMs).total(), 0u);
}

// Two workers hammer one breaker: random allow / success / failure calls
// and a shared clock. The transitions must form one valid chain, the
// counters and the gauge must agree with it, and no trip is counted twice.
TEST(BreakerConcurrency, TwoThreadsKeepTransitionsConsistent) {
  BreakerPolicy p = testPolicy();
  p.failure_threshold = 4;
  p.failure_ratio = 0.6;
  p.min_requests = 20;
  p.open_ns = 2 * kMs;
  p.max_open_ns = 20 * kMs;
  p.reply_timeout_ns = 1 * kMs;
  p.half_open_max_probes = 3;
  std::string name = uniqueName("concurrent");
  RecordingSink sink;
  BreakerState s(p, name, "*", &sink);
  std::atomic<int64_t> clock{kT0};
  std::atomic<uint64_t> probes{0};
  auto worker = [&](int index) {
    stats::setThreadShard(static_cast<size_t>(index));
    std::minstd_rand rng(static_cast<unsigned>(index * 7919 + 1));
    for (int i = 0; i < 200000; ++i) {
      int64_t now = clock.fetch_add(1000, std::memory_order_relaxed);  // 1µs per op
      switch (rng() % 4) {
        case 0:
        case 1:
          if (s.allow([&] { return now; }) == Admission::kProbe)
            probes.fetch_add(1, std::memory_order_relaxed);
          break;
        case 2:
          s.recordSuccess(now);
          break;
        default:
          s.recordFailure(now, FailureKind::kConnectFailed);
          break;
      }
      if (i % 1000 == 0) s.tick(now);
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();

  ASSERT_FALSE(sink.log.empty()) << "the mix must have tripped the breaker";
  CircuitState cur = CircuitState::kClosed;
  uint64_t to[3] = {0, 0, 0};
  for (const auto& e : sink.log) {
    ASSERT_EQ(e.from, cur) << "transition out of a state the breaker was not in";
    ASSERT_NE(e.from, e.to);
    // Only legal moves: closed->open, open->half_open, half_open->closed|open.
    bool legal = (e.from == CircuitState::kClosed && e.to == CircuitState::kOpen) ||
                 (e.from == CircuitState::kOpen && e.to == CircuitState::kHalfOpen) ||
                 (e.from == CircuitState::kHalfOpen && e.to != CircuitState::kHalfOpen);
    ASSERT_TRUE(legal) << circuitStateName(e.from) << " -> " << circuitStateName(e.to);
    ++to[static_cast<size_t>(e.to)];
    cur = e.to;
  }
  EXPECT_EQ(cur, s.state());
  EXPECT_EQ(gaugeValue(name, "*"), static_cast<int64_t>(s.state()));
  EXPECT_EQ(transitionsTo(name, "*", "closed"), to[0]);
  EXPECT_EQ(transitionsTo(name, "*", "open"), to[1]);
  EXPECT_EQ(transitionsTo(name, "*", "half_open"), to[2]);
  EXPECT_GT(to[2], 0u);
  EXPECT_GT(probes.load(), 0u);
}

// Both threads push the same closed breaker over its threshold at once:
// exactly one trip.
TEST(BreakerConcurrency, NoDoubleTrip) {
  for (int round = 0; round < 200; ++round) {
    BreakerPolicy p = testPolicy();
    p.failure_threshold = 2;
    RecordingSink sink;
    BreakerState s(p, "double-trip", "*", &sink);
    std::atomic<int> go{0};
    auto worker = [&](int index) {
      stats::setThreadShard(static_cast<size_t>(index));
      go.fetch_add(1);
      while (go.load() < 2) {
      }
      for (int i = 0; i < 4; ++i) s.recordFailure(kT0, FailureKind::kConnectFailed);
    };
    std::thread a(worker, 0), b(worker, 1);
    a.join();
    b.join();
    ASSERT_EQ(sink.log.size(), 1u) << "round " << round;
    EXPECT_EQ(s.state(), CircuitState::kOpen);
  }
}

ClusterBreakerSpec specWithHosts(size_t hosts, uint32_t percent) {
  ClusterBreakerSpec spec;
  spec.cluster = uniqueName("cluster");
  for (size_t i = 0; i < hosts; ++i) spec.hosts.push_back("127.0.0.1:" + std::to_string(9000 + i));
  spec.policy = testPolicy();
  spec.per_host = true;
  spec.max_ejection_percent = percent;
  return spec;
}

TEST(ClusterBreakerTest, EjectionCap) {
  EXPECT_EQ(ClusterBreaker(specWithHosts(1, 50)).maxEjected(), 0u);
  EXPECT_EQ(ClusterBreaker(specWithHosts(2, 50)).maxEjected(), 1u);
  EXPECT_EQ(ClusterBreaker(specWithHosts(3, 50)).maxEjected(), 1u);
  EXPECT_EQ(ClusterBreaker(specWithHosts(4, 50)).maxEjected(), 2u);
  EXPECT_EQ(ClusterBreaker(specWithHosts(2, 100)).maxEjected(), 1u);  // one always serves
  EXPECT_EQ(ClusterBreaker(specWithHosts(4, 0)).maxEjected(), 0u);
}

TEST(ClusterBreakerTest, OpenHostsAreEjectedWithinTheCap) {
  ClusterBreaker cb(specWithHosts(3, 50));  // cap 1
  auto openHost = [&](size_t h, int64_t t) {
    for (int i = 0; i < 3; ++i) cb.host(h)->recordFailure(t, FailureKind::kConnectFailed);
    ASSERT_EQ(cb.host(h)->state(), CircuitState::kOpen);
  };
  openHost(0, kT0);
  EXPECT_TRUE(cb.host(0)->ejected());
  EXPECT_EQ(cb.ejectedCount(), 1u);
  openHost(1, kT0);
  EXPECT_FALSE(cb.host(1)->ejected()) << "cap reached: host 1 keeps serving";
  EXPECT_EQ(cb.ejectedCount(), 1u);
  // Half-open keeps the ejection; closing releases it.
  cb.host(0)->tick(kT0 + 100 * kMs);
  EXPECT_TRUE(cb.host(0)->ejected());
  cb.host(0)->recordSuccess(kT0 + 100 * kMs);
  EXPECT_FALSE(cb.host(0)->ejected());
  EXPECT_EQ(cb.ejectedCount(), 0u);
  // Host 1 gets the slot at its next transition (half-open -> open).
  cb.host(1)->tick(kT0 + 100 * kMs);
  cb.host(1)->recordFailure(kT0 + 100 * kMs, FailureKind::kConnectFailed);
  EXPECT_EQ(cb.host(1)->state(), CircuitState::kOpen);
  EXPECT_TRUE(cb.host(1)->ejected());
  EXPECT_EQ(stats::StatsRegistry::get()
                .gauge("game_gateway_circuit_breaker_ejected_hosts", "", {{"cluster", cb.name()}})
                .value(),
            1);
}

// reconnect_grace: a host's connection failures are forgiven for the
// grace after the first one; a frame from the host ends the episode; a
// connect alone ends it only once it stayed up for the grace (a backend
// that accepts and drops at once stays in its episode); nothing is
// forgiven while a breaker is not closed; 0 turns it off.
TEST(ClusterBreakerTest, ConnectionFailuresWithinReconnectGraceAreForgiven) {
  ClusterBreakerSpec spec = specWithHosts(2, 50);
  spec.policy.reconnect_grace_ns = 10 * kSec;
  ClusterBreaker cb(spec);
  auto forgiven = [&](size_t h) {
    return stats::StatsRegistry::get()
        .counter("game_gateway_circuit_breaker_forgiven_failures_total", "",
                 {{"cluster", cb.name()}, {"host", spec.hosts[h]}})
        .value();
  };
  EXPECT_TRUE(cb.forgive(0, kT0));
  EXPECT_TRUE(cb.forgive(0, kT0 + 9 * kSec));
  EXPECT_FALSE(cb.forgive(0, kT0 + 10 * kSec)) << "the grace is over: failures count";
  EXPECT_FALSE(cb.forgive(0, kT0 + 11 * kSec));
  EXPECT_EQ(forgiven(0), 2u);
  EXPECT_TRUE(cb.forgive(1, kT0 + 11 * kSec)) << "each host has its own episode";
  // A connect that drops at once does not end the episode.
  cb.hostConnected(0, kT0 + 12 * kSec);
  EXPECT_FALSE(cb.forgive(0, kT0 + 13 * kSec));
  // A connection that stayed up for the grace does.
  cb.hostConnected(0, kT0 + 14 * kSec);
  EXPECT_TRUE(cb.forgive(0, kT0 + 24 * kSec));
  EXPECT_TRUE(cb.forgive(0, kT0 + 33 * kSec));
  EXPECT_FALSE(cb.forgive(0, kT0 + 34 * kSec));
  // A frame from the host ends it at once.
  cb.hostAnswered(0);
  EXPECT_TRUE(cb.forgive(0, kT0 + 35 * kSec));
  // Not while the host's breaker (or the cluster's) is open.
  for (int i = 0; i < 3; ++i) cb.host(1)->recordFailure(kT0, FailureKind::kConnectFailed);
  ASSERT_EQ(cb.host(1)->state(), CircuitState::kOpen);
  EXPECT_FALSE(cb.forgive(1, kT0 + 11 * kSec + kMs));
  for (int i = 0; i < 3; ++i) cb.cluster().recordFailure(kT0, FailureKind::kConnectFailed);
  EXPECT_FALSE(cb.forgive(0, kT0 + 35 * kSec));
  // Off.
  ClusterBreakerSpec off = specWithHosts(1, 50);
  off.policy.reconnect_grace_ns = 0;
  EXPECT_FALSE(ClusterBreaker(off).forgive(0, kT0));
}

TEST(ClusterBreakerTest, PendingCountsAgainstMaxPending) {
  ClusterBreakerSpec spec = specWithHosts(1, 50);
  spec.expect_reply = true;
  spec.max_pending = 2;
  ClusterBreaker cb(spec);
  EXPECT_FALSE(cb.overPending());
  cb.addPending(2);
  EXPECT_TRUE(cb.overPending());
  cb.addPending(-1);
  EXPECT_FALSE(cb.overPending());
  EXPECT_EQ(cb.pending(), 1);
}

TEST(BreakerRegistryTest, SharesEqualSpecsAndFallsBackWhenAConfigIsDropped) {
  auto& reg = BreakerRegistry::get();
  ClusterBreakerSpec spec = specWithHosts(2, 50);
  uint64_t g0 = reg.generation();
  auto a = reg.acquire(spec);
  EXPECT_NE(reg.generation(), g0);
  auto a2 = reg.acquire(spec);
  EXPECT_EQ(a, a2) << "same spec: same state (two listeners, or a reload)";
  EXPECT_EQ(reg.find(spec.cluster), a);

  ClusterBreakerSpec changed = spec;
  changed.policy.failure_threshold = 9;
  auto b = reg.acquire(changed);
  EXPECT_NE(a, b);
  EXPECT_EQ(reg.find(spec.cluster), b) << "the newest config's breaker is current";
  // The new config is dropped (a refused reload): the running one is current again.
  reg.release(*b);
  EXPECT_EQ(reg.find(spec.cluster), a);
  reg.release(*a);
  EXPECT_EQ(reg.find(spec.cluster), a) << "still held once";
  reg.release(*a);
  EXPECT_EQ(reg.find(spec.cluster), nullptr);
}

}  // namespace
}  // namespace breaker
}  // namespace gw
