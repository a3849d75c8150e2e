// Tests of the `breaker` filter through a real FilterChain over a detached
// connection (test/harness EmbeddedChain): framing -> breaker -> a fake
// terminal that behaves like `upstream` towards the breaker — it publishes
// a RouteResolver slot, a SessionInfo, and kFrameSent on the worker's
// UpstreamEventBus, picks hosts through the worker's HostAvailability —
// while the test publishes the other outcomes (connect failures, backend
// frames) on the bus itself. Covers config validation, error frames while
// open (the connection stays open), half-open on time, probes, recovery,
// reply timeouts, max_pending, host ejection and pinned sessions.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/clock.h"
#include "core/sdk/error_frame.h"
#include "core/sdk/session_info.h"
#include "core/sdk/stats.h"
#include "core/sdk/upstream_events.h"
#include "filters/breaker/breaker.h"
#include "core/sdk/testing/embedded_chain.h"
#include "test/harness/net.h"

namespace gw {
namespace breaker {
namespace {

using std::chrono::milliseconds;
using test::ClientFrame;
using test::EmbeddedChain;

// server_type 200 routes to the first cluster, 10 to the second.
const uint32_t kToFirst = wire::ClientHeader::makeServerId(0, 200, 1);
const uint32_t kToSecond = wire::ClientHeader::makeServerId(0, 10, 1);
const uint32_t kNoRoute = wire::ClientHeader::makeServerId(0, 99, 1);

std::string uniqueName(const std::string& base) {
  static int n = 0;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return base + "-" + info->name() + "-" + std::to_string(n++);
}

ClusterConfig makeCluster(const std::string& name, size_t hosts, bool expect_reply) {
  ClusterConfig c;
  c.name = name;
  for (size_t i = 0; i < hosts; ++i)
    c.hosts.push_back(*Address::parse("127.0.0.1:" + std::to_string(19000 + i)));
  c.expect_reply = expect_reply;
  return c;
}

// Stands in for `upstream`: the cluster names it resolves live in its
// "route table" (route_names_) and the ones in its events in its "pools"
// (pool_names_), two different string objects as in the real filter.
class FakeUpstreamFactory;

class FakeUpstream : public Filter, public RouteResolver {
 public:
  explicit FakeUpstream(FakeUpstreamFactory& f) : factory_(f) {}
  FilterStatus onNewConnection() override {
    callbacks().slots().set<RouteResolver>(this);
    return FilterStatus::kContinue;
  }
  const std::string* clusterFor(const wire::ClientHeader& h) const override;
  FilterStatus onFrame(Frame& frame) override;
  // A backend frame for this session: written toward the client, then
  // published, as upstream's deliver() does.
  void deliver(size_t cluster, size_t host, uint16_t msg_id, const std::string& payload);
  uint64_t session() const { return session_.id; }
  int pinned(size_t cluster) const { return pinned_[cluster]; }
  void unpin(size_t cluster) { pinned_[cluster] = -1; }

 private:
  FakeUpstreamFactory& factory_;
  SessionInfo session_;
  int pinned_[2] = {-1, -1};
};

class FakeUpstreamFactory : public FilterFactory {
 public:
  std::unique_ptr<Filter> createFilter() override {
    auto f = std::make_unique<FakeUpstream>(*this);
    last = f.get();
    return f;
  }
  void bind(WorkerServices& services, const std::vector<ClusterConfig>& clusters) {
    bus = &services.get<UpstreamEventBus>();
    slot = &services.get<HostAvailabilitySlot>();
    for (const auto& c : clusters) {
      route_names.push_back(std::make_unique<std::string>(c.name));
      pool_names.push_back(std::make_unique<std::string>(c.name));
      host_counts.push_back(c.hosts.size());
    }
  }
  void publish(UpstreamEvent::Type type, size_t cluster, size_t host, uint64_t session = 0) {
    UpstreamEvent e{type, pool_names[cluster].get(), host, nullptr, session};
    bus->publish(e);
  }
  // The host a new or re-homed session gets: the first one available.
  int pickHost(size_t cluster) {
    for (size_t h = 0; h < host_counts[cluster]; ++h) {
      if (slot->impl == nullptr || slot->impl->available(*pool_names[cluster], h))
        return static_cast<int>(h);
    }
    return -1;
  }

  UpstreamEventBus* bus = nullptr;
  HostAvailabilitySlot* slot = nullptr;
  std::vector<std::unique_ptr<std::string>> route_names;
  std::vector<std::unique_ptr<std::string>> pool_names;
  std::vector<size_t> host_counts;
  std::vector<ClientFrame> received;  // frames that reached the terminal
  int unavailable = 0;                // frames refused for want of a host
  int no_route = 0;                   // frames that matched no route
  FakeUpstream* last = nullptr;
};

const std::string* FakeUpstream::clusterFor(const wire::ClientHeader& h) const {
  uint8_t type = h.serverType();
  if (type == 200 && !factory_.route_names.empty()) return factory_.route_names[0].get();
  if (type == 10 && factory_.route_names.size() > 1) return factory_.route_names[1].get();
  return nullptr;
}

FilterStatus FakeUpstream::onFrame(Frame& frame) {
  if (session_.id == 0) {
    session_.id = SessionIdGenerator::process().next();
    callbacks().slots().set<SessionInfo>(&session_);
  }
  const std::string* name = clusterFor(frame.header);
  if (name == nullptr) {  // upstream would answer no_route
    frame.discardPayload();
    ++factory_.no_route;
    return FilterStatus::kStopIteration;
  }
  size_t c = name == factory_.route_names[0].get() ? 0 : 1;
  ClientFrame got;
  got.header = frame.header;
  got.payload.resize(frame.payloadLength());
  frame.peekPayload(&got.payload[0], got.payload.size());
  frame.discardPayload();
  if (pinned_[c] < 0) pinned_[c] = factory_.pickHost(c);
  if (pinned_[c] < 0) {
    ++factory_.unavailable;
    return FilterStatus::kStopIteration;
  }
  factory_.received.push_back(got);
  factory_.publish(UpstreamEvent::Type::kFrameSent, c, static_cast<size_t>(pinned_[c]),
                   session_.id);
  return FilterStatus::kStopIteration;
}

void FakeUpstream::deliver(size_t cluster, size_t host, uint16_t msg_id,
                           const std::string& payload) {
  callbacks().sendFrame(msg_id, 0, payload);
  factory_.publish(UpstreamEvent::Type::kFrameReceived, cluster, host, session_.id);
}

// framing -> breaker -> FakeUpstream on one detached connection.
struct Rig {
  explicit Rig(std::vector<ClusterConfig> cs, const std::string& breaker_json)
      : clusters(std::move(cs)) {
    terminal.bind(ec.services(), clusters);
    std::string err;
    auto framing = ec.registered("framing", "{}", clusters, &err);
    EXPECT_TRUE(framing) << err;
    auto breaker = ec.registered("breaker", breaker_json, clusters, &err);
    EXPECT_TRUE(breaker) << err;
    if (!framing || !breaker) return;
    FilterTraits t;
    t.consumes = Layer::kFrames;
    t.terminal = true;
    ec.start({*framing, *breaker, {&terminal, t}});
    ok = true;
  }
  void send(uint16_t msg_id, uint32_t server_id, const std::string& payload = "x") {
    ec.feed(test::encodeClientFrame(msg_id, server_id, payload));
  }
  // Frames written toward the client since the last call.
  std::vector<ClientFrame> output() {
    std::vector<ClientFrame> out;
    std::string bytes = ec.takeOutput();
    test::decodeClientFrames(bytes, &out);
    return out;
  }
  ClusterBreaker& breaker(size_t i) { return *BreakerRegistry::get().find(clusters[i].name); }
  FakeUpstream& upstream() { return *terminal.last; }

  std::vector<ClusterConfig> clusters;
  FakeUpstreamFactory terminal;  // before ec: outlives the chain
  EmbeddedChain ec;
  bool ok = false;
};

// Checks one error frame: msg_id 65535, server_id 0, code, refused msg_id, name.
void expectErrorFrame(const ClientFrame& f, ErrorCode code, uint16_t refused) {
  EXPECT_EQ(f.header.msg_id, kErrorMsgId);
  EXPECT_EQ(f.header.server_id, 0u);
  EXPECT_EQ(f.payload, errorFramePayload(code, refused));
}

uint64_t counter(const std::string& name, const stats::Labels& labels) {
  return stats::StatsRegistry::get().counter(name, "", labels).value();
}
int64_t stateGauge(const std::string& cluster, const std::string& host) {
  return stats::StatsRegistry::get()
      .gauge("game_gateway_circuit_breaker_state", "", {{"cluster", cluster}, {"host", host}})
      .value();
}

// ---- config ----------------------------------------------------------------

std::string buildError(const std::string& json, const std::vector<ClusterConfig>& clusters) {
  EmbeddedChain ec;
  std::string err;
  auto e = ec.registered("breaker", json, clusters, &err);
  return e ? "" : err;
}

TEST(BreakerConfig, DefaultsAndOverrides) {
  std::vector<ClusterConfig> cs = {makeCluster(uniqueName("game"), 2, true),
                                   makeCluster(uniqueName("login"), 1, false)};
  EmbeddedChain ec;
  std::string err;
  ASSERT_TRUE(ec.registered("breaker",
                            R"({"failure_threshold": 7, "clusters": {")" + cs[1].name +
                                R"(": {"open_duration": "2s", "per_host": false}}})",
                            cs, &err))
      << err;
  ClusterBreaker& game = *BreakerRegistry::get().find(cs[0].name);
  ClusterBreaker& login = *BreakerRegistry::get().find(cs[1].name);
  EXPECT_EQ(game.policy().failure_threshold, 7u);
  EXPECT_EQ(game.policy().failure_ratio, 0.5);
  EXPECT_EQ(game.policy().window_ns, 10'000'000'000);
  EXPECT_EQ(game.policy().min_requests, 20u);
  EXPECT_EQ(game.policy().open_ns, 1'000'000'000);
  EXPECT_EQ(game.policy().max_open_ns, 30'000'000'000);
  EXPECT_EQ(game.policy().reconnect_grace_ns, 10'000'000'000);
  EXPECT_EQ(game.policy().half_open_max_probes, 3u);
  EXPECT_EQ(game.policy().reply_timeout_ns, 5'000'000'000);
  EXPECT_EQ(game.hostCount(), 2u);
  EXPECT_EQ(game.maxEjected(), 1u);
  EXPECT_EQ(login.policy().failure_threshold, 7u) << "overrides merge over the top level";
  EXPECT_EQ(login.policy().open_ns, 2'000'000'000);
  EXPECT_EQ(login.hostCount(), 0u) << "per_host false: no host breakers";
}

TEST(BreakerConfig, Errors) {
  std::vector<ClusterConfig> cs = {makeCluster("game", 1, false), makeCluster("rr", 1, true)};
  EXPECT_NE(buildError(R"({"nope": 1})", cs), "");
  EXPECT_NE(buildError(R"({"failure_ratio": 1.5})", cs).find("/failure_ratio"), std::string::npos);
  EXPECT_NE(buildError(R"({"window": "10 s"})", cs).find("/window"), std::string::npos);
  EXPECT_NE(buildError(R"({"half_open_max_probes": 0})", cs).find("/half_open_max_probes"),
            std::string::npos);
  std::string e = buildError(R"({"clusters": {"gmae": {}}})", cs);
  EXPECT_NE(e.find("/clusters/gmae"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown cluster \"gmae\"; defined clusters: game, rr"), std::string::npos) << e;
  e = buildError(R"({"open_duration": "1m", "max_open_duration": "30s"})", cs);
  EXPECT_NE(e.find("/max_open_duration: must be ≥ open_duration (60000ms)"), std::string::npos)
      << e;
  e = buildError(R"({"clusters": {"rr": {"failure_threshold": 0, "failure_ratio": 0}}})", cs);
  EXPECT_NE(e.find("/clusters/rr: failure_threshold and failure_ratio are both 0"),
            std::string::npos)
      << e;
  e = buildError(R"({"clusters": {"game": {"max_pending": 10}}})", cs);
  EXPECT_NE(e.find("/clusters/game/max_pending: cluster 'game' is not request/response"),
            std::string::npos)
      << e;
  EXPECT_EQ(buildError(R"({"clusters": {"rr": {"max_pending": 10}}})", cs), "");
  // One policy for durations out of range (ParseContext::duration).
  EXPECT_EQ(buildError(R"({"window": "5ms"})", cs).find("/window: must be a duration from 10ms"),
            0u);
  EXPECT_EQ(buildError(R"({"open_duration": "0s"})", cs)
                .find("/open_duration: must be a duration from 1ms to 720h"),
            0u);
}

// A duration the schema's pattern allows but that is too long to parse
// ("721h" is over the 30-day limit) is a clean error naming the field, at
// the top level and in a cluster's override (it used to be ignored).
TEST(BreakerConfig, DurationOverTheLimitIsAnError) {
  std::vector<ClusterConfig> cs = {makeCluster("game", 1, false), makeCluster("rr", 1, true)};
  for (const char* key : {"window", "open_duration", "max_open_duration", "reply_timeout"}) {
    std::string e = buildError(std::string(R"({")") + key + R"(": "721h"})", cs);
    EXPECT_EQ(e, std::string("/") + key +
                     ": must be a duration from " + (std::string(key) == "window" ? "10ms" : "1ms") +
                     " to 720h (digits then ms, s, m or h: \"250ms\", \"30s\", \"5m\"), got "
                     "\"721h\"");
  }
  std::string e = buildError(R"({"clusters": {"rr": {"reply_timeout": "721h"}}})", cs);
  EXPECT_EQ(e.find("/clusters/rr/reply_timeout: must be a duration from 1ms to 720h"), 0u) << e;
  EXPECT_EQ(buildError(R"({"max_open_duration": "720h"})", cs), "") << "the limit itself is fine";
}

TEST(BreakerConfig, DescribeShowsEachClustersMergedSettings) {
  std::vector<ClusterConfig> cs = {makeCluster(uniqueName("game"), 2, false),
                                   makeCluster(uniqueName("rr"), 1, true)};
  Dispatcher d("test");
  WorkerServices services;
  std::string err;
  auto built = test::buildFilter("breaker",
                                 R"({"failure_threshold": 4, "window": "30s", "clusters": {")" +
                                     cs[1].name +
                                     R"(": {"reply_timeout": "1500ms", "max_pending": 8,
                                          "per_host": false}}})",
                                 d, services, cs, &err);
  ASSERT_NE(built, nullptr) << err;
  rapidjson::Document doc(rapidjson::kObjectType);
  built->config->describe(doc, doc.GetAllocator());
  ASSERT_TRUE(doc.HasMember("clusters"));
  const rapidjson::Value& all = doc["clusters"];
  ASSERT_TRUE(all.HasMember(cs[0].name.c_str()));
  ASSERT_TRUE(all.HasMember(cs[1].name.c_str()));
  const rapidjson::Value& game = all[cs[0].name.c_str()];
  EXPECT_EQ(game["failure_threshold"].GetUint(), 4u);
  EXPECT_EQ(game["failure_ratio"].GetDouble(), 0.5);
  EXPECT_STREQ(game["window"].GetString(), "30s");
  EXPECT_EQ(game["min_requests"].GetUint(), 20u);
  EXPECT_STREQ(game["open_duration"].GetString(), "1s");
  EXPECT_STREQ(game["max_open_duration"].GetString(), "30s");
  EXPECT_STREQ(game["reconnect_grace"].GetString(), "10s");
  EXPECT_EQ(game["half_open_max_probes"].GetUint(), 3u);
  EXPECT_STREQ(game["reply_timeout"].GetString(), "5s");
  EXPECT_EQ(game["max_pending"].GetUint(), 0u);
  EXPECT_TRUE(game["per_host"].GetBool());
  EXPECT_EQ(game["max_ejection_percent"].GetUint(), 50u);
  EXPECT_FALSE(game["expect_reply"].GetBool());
  const rapidjson::Value& rr = all[cs[1].name.c_str()];
  EXPECT_EQ(rr["failure_threshold"].GetUint(), 4u) << "the override merges over the top level";
  EXPECT_STREQ(rr["window"].GetString(), "30s");
  EXPECT_STREQ(rr["reply_timeout"].GetString(), "1500ms");
  EXPECT_EQ(rr["max_pending"].GetUint(), 8u);
  EXPECT_FALSE(rr["per_host"].GetBool());
  EXPECT_TRUE(rr["expect_reply"].GetBool());
}

// ---- data path -------------------------------------------------------------

TEST(BreakerFilter, ClosedPassesAndUnroutedFramesPassThrough) {
  Rig rig({makeCluster(uniqueName("game"), 1, false)}, "{}");
  ASSERT_TRUE(rig.ok);
  rig.send(1, kToFirst, "a");
  rig.send(2, kNoRoute, "b");
  ASSERT_EQ(rig.terminal.received.size(), 1u);
  EXPECT_EQ(rig.terminal.received[0].payload, "a");
  EXPECT_EQ(rig.terminal.no_route, 1) << "an unrouted frame passes on for upstream to answer";
  EXPECT_TRUE(rig.output().empty());
  EXPECT_FALSE(rig.ec.closed());
}

TEST(BreakerFilter, WithoutARouteResolverFramesPassUntouched) {
  EmbeddedChain ec;
  std::vector<ClusterConfig> cs = {makeCluster(uniqueName("game"), 1, false)};
  auto framing = ec.registered("framing", "{}");
  auto breaker = ec.registered("breaker", "{}", cs);
  ASSERT_TRUE(framing && breaker);
  int seen = 0;
  test::FunctionFilterFactory sink([&] {
    struct Sink : Filter {
      explicit Sink(int& n) : n(n) {}
      FilterStatus onFrame(Frame& f) override {
        ++n;
        f.discardPayload();
        return FilterStatus::kStopIteration;
      }
      int& n;
    };
    return std::make_unique<Sink>(seen);
  });
  FilterTraits t;
  t.consumes = Layer::kFrames;
  t.terminal = true;
  ec.start({*framing, *breaker, {&sink, t}});
  ec.feed(test::encodeClientFrame(1, kToFirst, "x"));
  ec.feed(test::encodeClientFrame(2, kToFirst, "y"));
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(ec.takeOutput(), "");
}

// Connect failures open a single-host cluster: each later frame gets an
// immediate circuit_open error frame, the connection stays open, the other
// cluster is unaffected; the timer moves it to half-open on time (without
// traffic), probes are limited, and a backend frame closes it.
TEST(BreakerFilter, OpenAnswersErrorFramesThenRecoversThroughHalfOpen) {
  Rig rig({makeCluster(uniqueName("game"), 1, false), makeCluster(uniqueName("login"), 1, false)},
          R"({"reconnect_grace": "0s", "failure_threshold": 3, "open_duration": "150ms", "half_open_max_probes": 2,
              "reply_timeout": "5s"})");
  ASSERT_TRUE(rig.ok);
  const std::string& game = rig.clusters[0].name;
  rig.send(1, kToFirst);  // a session exists
  ASSERT_EQ(rig.terminal.received.size(), 1u);
  for (int i = 0; i < 3; ++i) rig.terminal.publish(UpstreamEvent::Type::kConnectFailed, 0, 0);
  EXPECT_EQ(rig.breaker(0).cluster().state(), CircuitState::kOpen);
  EXPECT_EQ(stateGauge(game, "*"), 1);
  EXPECT_EQ(rig.breaker(0).host(0)->state(), CircuitState::kOpen);
  EXPECT_FALSE(rig.breaker(0).host(0)->ejected()) << "single host: never ejected";
  EXPECT_EQ(counter("game_gateway_circuit_breaker_failures_total",
                    {{"cluster", game}, {"host", "127.0.0.1:19000"}, {"kind", "connect_failed"}}),
            3u);

  rig.send(0x1234, kToFirst, "while open");
  std::vector<ClientFrame> out = rig.output();
  ASSERT_EQ(out.size(), 1u);
  expectErrorFrame(out[0], ErrorCode::kCircuitOpen, 0x1234);
  EXPECT_EQ(rig.terminal.received.size(), 1u) << "the frame must not reach upstream";
  EXPECT_FALSE(rig.ec.closed());
  EXPECT_EQ(rig.ec.inputLength(), 0u) << "the refused payload is consumed, not left behind";
  EXPECT_EQ(counter("game_gateway_circuit_breaker_rejected_total",
                    {{"cluster", game}, {"reason", "open"}}),
            1u);

  // The other cluster still serves.
  rig.send(7, kToSecond, "login");
  EXPECT_EQ(rig.terminal.received.size(), 2u);
  EXPECT_TRUE(rig.output().empty());

  // No traffic: the gauge still turns half-open on time.
  auto opened = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      rig.ec.runUntil([&] { return rig.breaker(0).cluster().state() == CircuitState::kHalfOpen; },
                      milliseconds(2000)));
  auto waited = std::chrono::steady_clock::now() - opened;
  EXPECT_LE(waited, milliseconds(400));
  EXPECT_EQ(stateGauge(game, "*"), 2);

  // Two probes pass; the third frame is refused.
  rig.send(11, kToFirst);
  rig.send(12, kToFirst);
  rig.send(13, kToFirst);
  EXPECT_EQ(rig.terminal.received.size(), 4u);
  out = rig.output();
  ASSERT_EQ(out.size(), 1u);
  expectErrorFrame(out[0], ErrorCode::kCircuitOpen, 13);

  // A backend frame closes it; traffic flows again.
  rig.upstream().deliver(0, 0, 500, "pong");
  EXPECT_EQ(rig.breaker(0).cluster().state(), CircuitState::kClosed);
  EXPECT_EQ(stateGauge(game, "*"), 0);
  out = rig.output();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].header.msg_id, 500);
  rig.send(14, kToFirst);
  rig.send(15, kToFirst);
  rig.send(16, kToFirst);
  EXPECT_EQ(rig.terminal.received.size(), 7u);
  EXPECT_TRUE(rig.output().empty());
}

TEST(BreakerFilter, HalfOpenProbeFailureReopensWithBackoff) {
  Rig rig({makeCluster(uniqueName("game"), 1, false)},
          R"({"reconnect_grace": "0s", "failure_threshold": 2, "open_duration": "100ms", "max_open_duration": "1s"})");
  ASSERT_TRUE(rig.ok);
  ClusterBreaker& cb = rig.breaker(0);
  rig.terminal.publish(UpstreamEvent::Type::kConnectFailed, 0, 0);
  rig.terminal.publish(UpstreamEvent::Type::kConnectFailed, 0, 0);
  ASSERT_EQ(cb.cluster().state(), CircuitState::kOpen);
  ASSERT_TRUE(rig.ec.runUntil([&] { return cb.cluster().state() == CircuitState::kHalfOpen; }));
  rig.send(1, kToFirst);  // the probe
  // The trip reads the clock between `before` and `after` (the coarse clock;
  // the deadline is rounded up to whole ms): bounding it from both sides
  // holds however long this thread is descheduled between the statements.
  int64_t before = coarseNowNs();
  rig.terminal.publish(UpstreamEvent::Type::kConnectFailed, 0, 0);
  int64_t until = cb.cluster().openUntilNs();
  int64_t after = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
  ASSERT_EQ(cb.cluster().state(), CircuitState::kOpen);
  EXPECT_EQ(cb.cluster().trips(), 2u);
  EXPECT_GE(until - before, 200'000'000) << "second trip: 200ms";
  EXPECT_LE(until - after, 201'000'000);
}

// expect_reply: a frame with no backend frame within reply_timeout is a
// failure; a reply in time is not. Two timeouts trip the cluster.
TEST(BreakerFilter, ReplyTimeoutsTripARequestResponseCluster) {
  // "In time" is wall-clock time: the reply timer fires on the first loop
  // iteration past the deadline, so a test process descheduled for longer
  // than reply_timeout between send and deliver (a loaded CI machine: the
  // 20 ms runFor took over 60 ms) sees a genuine timeout. 400 ms leaves the
  // 20 ms answer a wide margin; the timeouts below still need the timer.
  constexpr auto kReplyTimeout = milliseconds(400);
  Rig rig({makeCluster(uniqueName("rr"), 1, true)},
          R"({"failure_threshold": 2, "reply_timeout": "400ms", "open_duration": "10s"})");
  ASSERT_TRUE(rig.ok);
  ClusterBreaker& cb = rig.breaker(0);
  const std::string& name = rig.clusters[0].name;
  auto timeouts = [&] {
    return counter("game_gateway_circuit_breaker_failures_total",
                   {{"cluster", name}, {"host", "127.0.0.1:19000"}, {"kind", "reply_timeout"}});
  };
  // Answered in time: nothing counted, also once the deadline has passed.
  rig.send(1, kToFirst);
  EXPECT_EQ(cb.pending(), 1);
  rig.ec.runFor(milliseconds(20));
  rig.upstream().deliver(0, 0, 1, "ok");
  EXPECT_EQ(cb.pending(), 0);
  rig.ec.runFor(kReplyTimeout + milliseconds(100));
  EXPECT_EQ(timeouts(), 0u);
  EXPECT_EQ(cb.cluster().state(), CircuitState::kClosed);

  // Unanswered: one failure per oldest unanswered frame. (The deadlines
  // only bound how long the test waits for the timer.)
  rig.send(2, kToFirst);
  rig.send(3, kToFirst);
  EXPECT_EQ(cb.pending(), 2);
  ASSERT_TRUE(rig.ec.runUntil([&] { return timeouts() == 1; }, milliseconds(5000)));
  EXPECT_EQ(cb.pending(), 0);
  EXPECT_EQ(cb.cluster().state(), CircuitState::kClosed);
  rig.send(4, kToFirst);
  ASSERT_TRUE(rig.ec.runUntil([&] { return timeouts() == 2; }, milliseconds(5000)));
  EXPECT_EQ(cb.cluster().state(), CircuitState::kOpen);
  rig.output();
  rig.send(5, kToFirst);
  std::vector<ClientFrame> out = rig.output();
  ASSERT_EQ(out.size(), 1u);
  expectErrorFrame(out[0], ErrorCode::kCircuitOpen, 5);
}

TEST(BreakerFilter, MaxPendingRefusesWithOverflowAndRecovers) {
  std::vector<ClusterConfig> cs = {makeCluster(uniqueName("rr"), 1, true)};
  Rig rig(cs, R"({"clusters": {")" + cs[0].name + R"(": {"max_pending": 2}}})");
  ASSERT_TRUE(rig.ok);
  ClusterBreaker& cb = rig.breaker(0);
  rig.send(1, kToFirst);
  rig.send(2, kToFirst);
  rig.send(3, kToFirst);
  EXPECT_EQ(rig.terminal.received.size(), 2u);
  std::vector<ClientFrame> out = rig.output();
  ASSERT_EQ(out.size(), 1u);
  expectErrorFrame(out[0], ErrorCode::kUpstreamOverflow, 3);
  EXPECT_EQ(counter("game_gateway_circuit_breaker_rejected_total",
                    {{"cluster", cs[0].name}, {"reason", "overflow"}}),
            1u);
  EXPECT_EQ(stats::StatsRegistry::get()
                .gauge("game_gateway_circuit_breaker_pending", "", {{"cluster", cs[0].name}})
                .value(),
            2);
  rig.upstream().deliver(0, 0, 1, "answer");
  EXPECT_EQ(cb.pending(), 0);
  rig.output();
  rig.send(4, kToFirst);
  EXPECT_EQ(rig.terminal.received.size(), 3u);
  EXPECT_TRUE(rig.output().empty());
  EXPECT_EQ(cb.cluster().state(), CircuitState::kClosed) << "overflow is not a failure";
}

TEST(BreakerFilter, ClosingTheConnectionAbandonsPendingFramesWithoutFailure) {
  std::vector<ClusterConfig> cs = {makeCluster(uniqueName("rr"), 1, true)};
  std::shared_ptr<ClusterBreaker> keep;
  {
    Rig rig(cs, R"({"reply_timeout": "50ms"})");
    ASSERT_TRUE(rig.ok);
    keep = BreakerRegistry::get().find(cs[0].name);
    rig.send(1, kToFirst);
    rig.send(2, kToFirst);
    EXPECT_EQ(keep->pending(), 2);
    rig.ec.connection().close(CloseReason::kRemoteClosed, "test");
    rig.ec.runFor(milliseconds(100));
    EXPECT_EQ(keep->pending(), 0);
  }
  EXPECT_EQ(
      counter("game_gateway_circuit_breaker_failures_total",
              {{"cluster", cs[0].name}, {"host", "127.0.0.1:19000"}, {"kind", "reply_timeout"}}),
      0u);
}

// One bad host of two: its breaker opens and it is ejected (the load
// balancer skips it) while the cluster-level breaker stays closed and the
// other host serves; after open_duration it takes probes again.
TEST(BreakerFilter, ABadHostIsEjectedWhileTheOtherServes) {
  Rig rig({makeCluster(uniqueName("game"), 2, false)},
          R"({"reconnect_grace": "0s", "failure_threshold": 3, "open_duration": "150ms", "half_open_max_probes": 1})");
  ASSERT_TRUE(rig.ok);
  ClusterBreaker& cb = rig.breaker(0);
  HostAvailability* avail = rig.terminal.slot->impl;
  ASSERT_NE(avail, nullptr) << "the breaker publishes the worker's HostAvailability";
  for (int i = 0; i < 3; ++i) rig.terminal.publish(UpstreamEvent::Type::kConnectFailed, 0, 1);
  EXPECT_EQ(cb.host(1)->state(), CircuitState::kOpen);
  EXPECT_TRUE(cb.host(1)->ejected());
  EXPECT_EQ(cb.cluster().state(), CircuitState::kClosed) << "ejection absorbs one bad host";
  EXPECT_EQ(stateGauge(rig.clusters[0].name, "127.0.0.1:19001"), 1);
  EXPECT_FALSE(avail->available(*rig.terminal.pool_names[0], 1));
  EXPECT_TRUE(avail->available(*rig.terminal.pool_names[0], 0));
  rig.send(1, kToFirst);
  EXPECT_EQ(rig.upstream().pinned(0), 0);
  EXPECT_EQ(rig.terminal.received.size(), 1u);

  // The cap: host 0 failing too cannot be ejected, so its failures now
  // count against the cluster, which opens.
  for (int i = 0; i < 3; ++i) rig.terminal.publish(UpstreamEvent::Type::kConnectFailed, 0, 0);
  EXPECT_EQ(cb.host(0)->state(), CircuitState::kOpen);
  EXPECT_FALSE(cb.host(0)->ejected());
  EXPECT_EQ(cb.cluster().state(), CircuitState::kOpen);
  EXPECT_TRUE(avail->available(*rig.terminal.pool_names[0], 0));

  // Host 1 half-open: one placement (probe) per batch.
  ASSERT_TRUE(rig.ec.runUntil([&] { return cb.host(1)->state() == CircuitState::kHalfOpen; }));
  EXPECT_TRUE(avail->available(*rig.terminal.pool_names[0], 1));
  EXPECT_FALSE(avail->available(*rig.terminal.pool_names[0], 1));
  rig.terminal.publish(UpstreamEvent::Type::kConnected, 0, 1);
  EXPECT_EQ(cb.host(1)->state(), CircuitState::kClosed);
  EXPECT_FALSE(cb.host(1)->ejected());
  EXPECT_TRUE(avail->available(*rig.terminal.pool_names[0], 1));
  EXPECT_EQ(stateGauge(rig.clusters[0].name, "127.0.0.1:19001"), 0);
}

// A session stays on its host while its backend connection lives; when
// that host is ejected for not answering, the session's frames get
// circuit_open at once instead of waiting for more timeouts.
TEST(BreakerFilter, FramesOfASessionPinnedToAnEjectedHostAreRefused) {
  Rig rig({makeCluster(uniqueName("rr"), 2, true)},
          R"({"failure_threshold": 2, "reply_timeout": "40ms", "open_duration": "10s"})");
  ASSERT_TRUE(rig.ok);
  ClusterBreaker& cb = rig.breaker(0);
  rig.send(1, kToFirst);
  ASSERT_EQ(rig.upstream().pinned(0), 0);
  ASSERT_TRUE(rig.ec.runUntil([&] { return cb.host(0)->consecutiveFailures() == 1; }));
  rig.send(2, kToFirst);
  ASSERT_TRUE(rig.ec.runUntil([&] { return cb.host(0)->state() == CircuitState::kOpen; }));
  EXPECT_TRUE(cb.host(0)->ejected());
  EXPECT_EQ(cb.cluster().state(), CircuitState::kClosed);
  rig.output();
  rig.send(3, kToFirst);
  std::vector<ClientFrame> out = rig.output();
  ASSERT_EQ(out.size(), 1u);
  expectErrorFrame(out[0], ErrorCode::kCircuitOpen, 3);
  EXPECT_EQ(rig.terminal.received.size(), 2u);

  // Its backend connection dies: upstream re-homes the session, the
  // breaker forgets the pin, and the next frame goes to the other host.
  rig.terminal.publish(UpstreamEvent::Type::kConnectionLost, 0, 0);
  rig.upstream().unpin(0);
  rig.send(4, kToFirst);
  EXPECT_EQ(rig.terminal.received.size(), 3u);
  EXPECT_EQ(rig.upstream().pinned(0), 1);
  EXPECT_TRUE(rig.output().empty());
}

TEST(BreakerFilter, ConnectionLossUnpinsAndClearsPendingWithoutCountingTimeouts) {
  Rig rig({makeCluster(uniqueName("rr"), 1, true)},
          R"({"reconnect_grace": "0s", "failure_threshold": 5, "reply_timeout": "50ms"})");
  ASSERT_TRUE(rig.ok);
  ClusterBreaker& cb = rig.breaker(0);
  rig.send(1, kToFirst);
  rig.send(2, kToFirst);
  EXPECT_EQ(cb.pending(), 2);
  rig.terminal.publish(UpstreamEvent::Type::kConnectionLost, 0, 0);
  EXPECT_EQ(cb.pending(), 0);
  rig.ec.runFor(milliseconds(120));
  const std::string& name = rig.clusters[0].name;
  EXPECT_EQ(counter("game_gateway_circuit_breaker_failures_total",
                    {{"cluster", name}, {"host", "127.0.0.1:19000"}, {"kind", "connection_lost"}}),
            1u);
  EXPECT_EQ(counter("game_gateway_circuit_breaker_failures_total",
                    {{"cluster", name}, {"host", "127.0.0.1:19000"}, {"kind", "reply_timeout"}}),
            0u);
}

// The default reconnect_grace (10s): a host's connection losses and failed
// reconnects right after it went away are forgiven (counted as such), so a
// quick restart opens nothing; the session is still unpinned so upstream
// re-homes it.
TEST(BreakerFilter, ConnectionFailuresWithinTheGraceOpenNothing) {
  Rig rig({makeCluster(uniqueName("game"), 1, false)}, R"({"failure_threshold": 2})");
  ASSERT_TRUE(rig.ok);
  rig.send(1, kToFirst);
  EXPECT_EQ(rig.upstream().pinned(0), 0);
  rig.terminal.publish(UpstreamEvent::Type::kConnectionLost, 0, 0);
  for (int i = 0; i < 10; ++i) rig.terminal.publish(UpstreamEvent::Type::kConnectFailed, 0, 0);
  ClusterBreaker& cb = rig.breaker(0);
  EXPECT_EQ(cb.cluster().state(), CircuitState::kClosed);
  EXPECT_EQ(cb.host(0)->state(), CircuitState::kClosed);
  const std::string& name = rig.clusters[0].name;
  EXPECT_EQ(counter("game_gateway_circuit_breaker_forgiven_failures_total",
                    {{"cluster", name}, {"host", "127.0.0.1:19000"}}),
            11u);
  EXPECT_EQ(counter("game_gateway_circuit_breaker_failures_total",
                    {{"cluster", name}, {"host", "127.0.0.1:19000"}, {"kind", "connect_failed"}}),
            0u);
}

TEST(BreakerFilter, AConnectIsNoSuccessForRequestResponseClusters) {
  Rig rig({makeCluster(uniqueName("rr"), 1, true), makeCluster(uniqueName("push"), 1, false)},
          R"({"reconnect_grace": "0s", "failure_threshold": 2})");
  ASSERT_TRUE(rig.ok);
  for (size_t c = 0; c < 2; ++c) {
    rig.terminal.publish(UpstreamEvent::Type::kConnectFailed, c, 0);
    rig.terminal.publish(UpstreamEvent::Type::kConnected, c, 0);
    rig.terminal.publish(UpstreamEvent::Type::kConnectFailed, c, 0);
  }
  EXPECT_EQ(rig.breaker(0).cluster().state(), CircuitState::kOpen);
  EXPECT_EQ(rig.breaker(1).cluster().state(), CircuitState::kClosed);
}

// One per client connection: an upper bound, so a regression fails
// (docs/filters/breaker.md, "Design and cost").
TEST(BreakerFilterSizeTest, PerConnectionObject) {
  std::printf("sizeof BreakerFilter=%zu\n", sizeof(BreakerFilter));
  EXPECT_LE(sizeof(BreakerFilter), 104u);
}

}  // namespace
}  // namespace breaker
}  // namespace gw
