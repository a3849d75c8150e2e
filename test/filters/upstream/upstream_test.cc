// test/filters/upstream/upstream_test.cc — the `upstream` filter on the
// embedded chain: framing -> a test filter publishing a SessionInfo with a
// chosen id -> upstream, against real loopback backends made here (their
// sockets are polled while ec.runFor() drives the gateway side). Routing by
// server_type:world_id with the :0 fallback, the three load-balancing
// policies, and backend frames reaching the right client. Also the config:
// out-of-range durations, unknown clusters, describe().
#include <event2/buffer.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/socket.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/sdk/cluster_manager.h"
#include "core/sdk/error_frame.h"
#include "core/sdk/session_info.h"
#include "core/sdk/stats.h"
#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/upstream_events.h"
#include "core/sdk/wire.h"
#include "filters/upstream/upstream_config.h"
#include "test/harness/net.h"
#include "filters/upstream/upstream_worker.h"
#include "test/harness/recording_backend.h"

namespace gw {
namespace test {
namespace {

using namespace std::chrono_literals;

// server_id of server_type `type`, world `world`.
constexpr uint32_t serverId(uint32_t type, uint32_t world) { return (world << 16) | (type << 8); }

// Publishes a SessionInfo with the id the test chose, as `session` would.
class PublishSession : public Filter {
 public:
  explicit PublishSession(uint64_t id) { info_.id = id; }
  FilterStatus onNewConnection() override {
    callbacks().slots().set<SessionInfo>(&info_);
    return FilterStatus::kContinue;
  }

 private:
  SessionInfo info_;
};

// One worker: framing -> PublishSession -> upstream over `clusters`, and
// client connections on it (each a FilterChain on the worker's dispatcher,
// sharing its factories, as a worker serves its clients).
class Worker {
 public:
  Worker(std::vector<ClusterConfig> clusters, const std::string& upstream_json)
      : clusters_(std::move(clusters)),
        publish_([this] { return std::make_unique<PublishSession>(next_id_); }) {
    std::string error;
    auto framing = ec.registered("framing", "{}", {}, &error);
    auto upstream = ec.registered("upstream", upstream_json, clusters_, &error);
    if (!framing || !upstream) {
      ADD_FAILURE() << error;
      return;
    }
    elements_ = {*framing, {&publish_, FilterTraits::frames()}, *upstream};
    next_id_ = 999999;  // the embedded chain's own connection: sends nothing
    ec.start(elements_);
  }

  // A client connection whose session id is `id`.
  class Client {
   public:
    Client(Worker& w, uint64_t id) {
      w.next_id_ = id;
      chain_ = std::make_unique<FilterChain>(
          std::make_unique<Connection>(w.ec.dispatcher(), -1, *Address::parse("127.0.0.1:7"),
                                       false),
          w.elements_, OutputLimits{},
          [this](FilterChain&, CloseReason, std::string_view) { closed = true; });
      chain_->start();
    }
    void send(uint16_t msg_id, uint32_t server_id, std::string_view payload = "x") {
      std::string bytes = encodeClientFrame(msg_id, server_id, payload);
      evbuffer_add(chain_->connection().input(), bytes.data(), bytes.size());
      chain_->deliverInput(false);
    }
    std::vector<ClientFrame> takeFrames() {
      evbuffer* out = chain_->connection().output();
      std::string bytes(evbuffer_get_length(out), '\0');
      evbuffer_remove(out, bytes.data(), bytes.size());
      std::vector<ClientFrame> frames;
      decodeClientFrames(bytes, &frames);
      return frames;
    }
    void close() {
      chain_->connection().close(CloseReason::kRemoteClosed, "test",
                                 Connection::CloseMode::kAbort);
    }
    bool closed = false;

   private:
    std::unique_ptr<FilterChain> chain_;
  };

  // A config reload on this worker: clients made from now on use a new
  // upstream factory (a new generation) built from `clusters` and
  // `upstream_json`; the old factory stays for the clients it served.
  void reload(std::vector<ClusterConfig> clusters, const std::string& upstream_json) {
    clusters_ = std::move(clusters);
    std::string error;
    auto upstream = ec.registered("upstream", upstream_json, clusters_, &error);
    if (!upstream) {
      ADD_FAILURE() << error;
      return;
    }
    elements_[2] = *upstream;
  }

  EmbeddedChain ec;

 private:
  std::vector<ClusterConfig> clusters_;
  FunctionFilterFactory publish_;
  std::vector<ChainElement> elements_;
  uint64_t next_id_ = 0;
};

ClusterConfig cluster(const std::string& name, const std::vector<RecordingBackend*>& hosts,
                      LbPolicy lb = LbPolicy::kRoundRobin) {
  ClusterConfig c;
  c.name = name;
  c.lb = lb;
  for (RecordingBackend* b : hosts) c.hosts.push_back(*Address::parse(b->address()));
  return c;
}

// Runs the workers' loops and polls the backends until pred() or timeout.
bool pump(std::vector<Worker*> workers, std::vector<RecordingBackend*> backends,
          const std::function<bool()>& pred, std::chrono::milliseconds timeout = 3s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (Worker* w : workers) w->ec.runFor(2ms);
    for (RecordingBackend* b : backends) b->poll();
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
}

// Total sessions the backends saw data for.
size_t seen(const std::vector<RecordingBackend*>& backends) {
  size_t n = 0;
  for (RecordingBackend* b : backends) n += b->dataSessions().size();
  return n;
}

TEST(UpstreamRoutingTest, ExactWorldFirstThenTheServerTypeFallback) {
  RecordingBackend world1, fallback;
  Worker w({cluster("world1", {&world1}), cluster("fallback", {&fallback})},
           R"({"routes": [{"match": "200:1", "cluster": "world1"},
                          {"match": "200:0", "cluster": "fallback"}]})");
  Worker::Client a(w, 11), b(w, 12), c(w, 13);
  a.send(100, serverId(200, 1));  // exact rule
  b.send(101, serverId(200, 7));  // no 200:7 rule: 200:0
  c.send(102, serverId(201, 1));  // no rule for type 201 at all
  ASSERT_TRUE(pump({&w}, {&world1, &fallback}, [&] { return seen({&world1, &fallback}) == 2; }));
  EXPECT_EQ(world1.dataSessions(), std::set<uint64_t>{11});
  EXPECT_EQ(fallback.dataSessions(), std::set<uint64_t>{12});
  // The unrouted frame is answered with an error frame; the client stays.
  auto out = c.takeFrames();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].header.msg_id, kErrorMsgId);
  EXPECT_EQ(out[0].payload, errorFramePayload(ErrorCode::kNoRoute, 102));
  EXPECT_FALSE(c.closed);
}

TEST(UpstreamLoadBalancingTest, RoundRobinSpreadsSessionsEvenly) {
  RecordingBackend h0, h1, h2;
  std::vector<RecordingBackend*> all = {&h0, &h1, &h2};
  Worker w({cluster("game", all)}, R"({"routes": [{"match": "200:0", "cluster": "game"}]})");
  std::vector<std::unique_ptr<Worker::Client>> clients;
  for (uint64_t id = 1; id <= 6; ++id) {
    clients.push_back(std::make_unique<Worker::Client>(w, id));
    clients.back()->send(100, serverId(200, 0));
  }
  ASSERT_TRUE(pump({&w}, all, [&] { return seen(all) == 6; }));
  EXPECT_EQ(h0.dataSessions(), (std::set<uint64_t>{1, 4}));
  EXPECT_EQ(h1.dataSessions(), (std::set<uint64_t>{2, 5}));
  EXPECT_EQ(h2.dataSessions(), (std::set<uint64_t>{3, 6}));
}

TEST(UpstreamLoadBalancingTest, LeastRequestPicksTheHostWithFewestSessions) {
  RecordingBackend h0, h1;
  std::vector<RecordingBackend*> all = {&h0, &h1};
  Worker w({cluster("game", all, LbPolicy::kLeastRequest)},
           R"({"routes": [{"match": "200:0", "cluster": "game"}]})");
  Worker::Client s1(w, 1), s2(w, 2);
  s1.send(100, serverId(200, 0));
  s2.send(100, serverId(200, 0));
  ASSERT_TRUE(pump({&w}, all, [&] { return seen(all) == 2; }));
  EXPECT_EQ(h0.dataSessions(), std::set<uint64_t>{1});
  EXPECT_EQ(h1.dataSessions(), std::set<uint64_t>{2});
  // h1 loses its session: the next one goes there (round robin would pick h0).
  s2.close();
  Worker::Client s3(w, 3);
  s3.send(100, serverId(200, 0));
  ASSERT_TRUE(pump({&w}, all, [&] { return seen(all) == 3; }));
  EXPECT_EQ(h1.dataSessions(), (std::set<uint64_t>{2, 3}));
  // Now 1 and 1: ties go to the first host.
  Worker::Client s4(w, 4);
  s4.send(100, serverId(200, 0));
  ASSERT_TRUE(pump({&w}, all, [&] { return seen(all) == 4; }));
  EXPECT_EQ(h0.dataSessions(), (std::set<uint64_t>{1, 4}));
}

TEST(UpstreamLoadBalancingTest, ConsistentHashMapsASessionIdToTheSameHostOnEveryWorker) {
  RecordingBackend h0, h1, h2;
  std::vector<RecordingBackend*> all = {&h0, &h1, &h2};
  const char* routes = R"({"routes": [{"match": "200:0", "cluster": "game"}]})";
  // Two workers (separate pools) see the same ids in opposite orders.
  Worker a({cluster("game", all, LbPolicy::kConsistentHash)}, routes);
  Worker b({cluster("game", all, LbPolicy::kConsistentHash)}, routes);
  constexpr uint64_t kSessions = 30;
  std::vector<std::unique_ptr<Worker::Client>> clients;
  for (uint64_t id = 1; id <= kSessions; ++id) {
    clients.push_back(std::make_unique<Worker::Client>(a, id));
    clients.back()->send(100, serverId(200, 0));
  }
  for (uint64_t id = kSessions; id >= 1; --id) {
    clients.push_back(std::make_unique<Worker::Client>(b, id));
    clients.back()->send(100, serverId(200, 0));
  }
  // Each id's two connections: the same host got both.
  auto frames = [&] {
    size_t n = 0;
    for (RecordingBackend* h : all)
      for (const auto& f : h->frames)
        n += f.header.opcode == static_cast<uint8_t>(wire::Opcode::kData);
    return n;
  };
  ASSERT_TRUE(pump({&a, &b}, all, [&] { return frames() == 2 * kSessions; }));
  std::map<uint64_t, std::set<RecordingBackend*>> hosts_of;
  for (RecordingBackend* h : all)
    for (uint64_t id : h->dataSessions()) hosts_of[id].insert(h);
  ASSERT_EQ(hosts_of.size(), kSessions);
  for (const auto& [id, hosts] : hosts_of) EXPECT_EQ(hosts.size(), 1u) << "session " << id;
  // And the ids spread over every host.
  for (RecordingBackend* h : all) EXPECT_GE(h->dataSessions().size(), 3u);
}

TEST(UpstreamDeliveryTest, ABackendFrameReachesItsSessionOnly) {
  RecordingBackend game;
  ClusterConfig c = cluster("game", {&game});
  c.max_connections_per_service = 1;  // both sessions on one backend connection
  Worker w({c}, R"({"routes": [{"match": "200:0", "cluster": "game"}]})");
  Worker::Client s1(w, 41), s2(w, 42);
  s1.send(100, serverId(200, 0));
  s2.send(100, serverId(200, 0));
  ASSERT_TRUE(pump({&w}, {&game}, [&] { return game.dataSessions().size() == 2; }));
  // Both sessions share the one multiplexed backend connection.
  ASSERT_EQ(game.connections(), 1u);
  game.sendToAll(encodeServerFrame(wire::Opcode::kData, 321, 42, "for 42"));
  std::vector<ClientFrame> got;
  ASSERT_TRUE(pump({&w}, {&game}, [&] {
    for (auto& f : s2.takeFrames()) got.push_back(f);
    return !got.empty();
  }));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].header.msg_id, 321);
  EXPECT_EQ(got[0].payload, "for 42");
  EXPECT_TRUE(s1.takeFrames().empty());
}

// Counts the worker's upstream events by type.
struct EventCounter : UpstreamObserver {
  void onUpstreamEvent(const UpstreamEvent& e) override { ++by_type[e.type]; }
  std::map<UpstreamEvent::Type, int> by_type;
};

// A backend that goes away drops all of a host's pooled connections at
// once: that is one kConnectionLost (one failure for the breaker), not one
// per connection.
TEST(UpstreamFailureEventsTest, ConnectionsOfAHostLostTogetherAreOneEvent) {
  auto game = std::make_unique<RecordingBackend>();
  ClusterConfig c = cluster("game-lost", {game.get()});
  c.max_connections_per_service = 2;
  Worker w({c}, R"({"routes": [{"match": "200:0", "cluster": "game-lost"}]})");
  EventCounter events;
  w.ec.services().get<UpstreamEventBus>().subscribe(&events);
  Worker::Client s1(w, 51), s2(w, 52);
  s1.send(100, serverId(200, 0));
  s2.send(100, serverId(200, 0));
  ASSERT_TRUE(pump({&w}, {game.get()}, [&] { return game->dataSessions().size() == 2; }));
  ASSERT_EQ(game->connections(), 2u) << "each session on its own connection";
  game.reset();  // both connections close
  w.ec.runFor(100ms);
  EXPECT_EQ(events.by_type[UpstreamEvent::Type::kConnectionLost], 1);
  w.ec.services().get<UpstreamEventBus>().unsubscribe(&events);
}

TEST(UpstreamDeliveryTest, BackendFramesWithTheGatewaysReservedMsgIdsAreRefused) {
  RecordingBackend game;
  Worker w({cluster("reserved", {&game})},
           R"({"routes": [{"match": "200:0", "cluster": "reserved"}]})");
  Worker::Client s(w, 51);
  s.send(100, serverId(200, 0));
  ASSERT_TRUE(pump({&w}, {&game}, [&] { return game.dataSessions().size() == 1; }));
  // A backend forging the gateway's error frame and session-established
  // frame, then an ordinary reply (0xFFFC and 0xFFFD are client-to-gateway
  // ids: with resume off they are ordinary frames, so they pass).
  game.sendToAll(encodeServerFrame(wire::Opcode::kData, kErrorMsgId, 51, "forged error") +
                 encodeServerFrame(wire::Opcode::kData, 0xFFFE, 51, "forged session") +
                 encodeServerFrame(wire::Opcode::kData, 0xFFFC, 51, "leave echo") +
                 encodeServerFrame(wire::Opcode::kData, 321, 51, "reply"));
  std::vector<ClientFrame> got;
  ASSERT_TRUE(pump({&w}, {&game}, [&] {
    for (auto& f : s.takeFrames()) got.push_back(f);
    return got.size() >= 2;
  }));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].header.msg_id, 0xFFFC);
  EXPECT_EQ(got[1].header.msg_id, 321);
  EXPECT_EQ(got[1].payload, "reply");
  EXPECT_FALSE(s.closed);
  EXPECT_EQ(stats::StatsRegistry::get()
                .counter("game_gateway_upstream_backend_frames_refused_total", "",
                         {{"cluster", "reserved"}, {"reason", "reserved_msg_id"}})
                .value(),
            2u);
}

// --- config ---

std::string describe(const FilterConfig& cfg) {
  rapidjson::Document doc(rapidjson::kObjectType);
  cfg.describe(doc, doc.GetAllocator());
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  doc.Accept(w);
  return sb.GetString();
}

class UpstreamConfigTest : public ::testing::Test {
 protected:
  UpstreamConfigTest() {
    ClusterConfig game;
    game.name = "game";
    game.hosts = {*Address::parse("127.0.0.1:9")};
    ClusterConfig chat = game;
    chat.name = "chat";
    clusters_ = {game, chat};
  }
  std::unique_ptr<BuiltFilter> build(const std::string& json) {
    return buildFilter("upstream", json, d_, services_, clusters_, &error_);
  }
  Dispatcher d_{"cfg"};
  WorkerServices services_;
  std::vector<ClusterConfig> clusters_;
  std::string error_;
};

TEST_F(UpstreamConfigTest, OutOfRangeRefreshIntervalIsAParseError) {
  // Past parseDuration's 30-day limit: a clean error, not a crash.
  EXPECT_EQ(build(R"({"routes": [{"match": "200:0", "cluster": "game"}],
                      "routes_from_redis": {"address": "127.0.0.1:6379",
                                            "refresh_interval": "721h"}})"),
            nullptr);
  EXPECT_EQ(error_,
            "/routes_from_redis/refresh_interval: must be a duration from 1ms to 720h (digits "
            "then ms, s, m or h: \"250ms\", \"30s\", \"5m\"), got \"721h\"");
  EXPECT_EQ(build(R"({"routes": [{"match": "200:0", "cluster": "game"}],
                      "routes_from_redis": {"address": "127.0.0.1:6379",
                                            "refresh_interval": "0s"}})"),
            nullptr);
  EXPECT_EQ(error_.rfind("/routes_from_redis/refresh_interval: must be a duration from 1ms", 0), 0u)
      << error_;
}

TEST_F(UpstreamConfigTest, UnknownClusterNamesTheDefinedOnes) {
  EXPECT_EQ(build(R"({"routes": [{"match": "200:0", "cluster": "game"},
                                 {"match": "201:0", "cluster": "gmae"}]})"),
            nullptr);
  EXPECT_EQ(error_, "/routes/1/cluster: unknown cluster \"gmae\"; defined clusters: game, chat");
}

TEST_F(UpstreamConfigTest, DescribeShowsRoutesClustersAndDefaults) {
  auto built = build(R"({"routes": [{"match": "200:0", "cluster": "game"},
                                    {"match": "200:3", "cluster": "game"},
                                    {"match": "5:0", "cluster": "chat"}]})");
  ASSERT_NE(built, nullptr) << error_;
  EXPECT_EQ(describe(*built->config),
            R"({"routes":[{"match":"200:0","cluster":"game"},{"match":"200:3","cluster":"game"},)"
            R"({"match":"5:0","cluster":"chat"}],"clusters":["game","chat"],)"
            R"("max_backend_output_bytes":8388608,)"
            R"("fair_share":{"floor":65536,"hard_cap":16777216,"per_ip":true}})");
  auto redis = build(R"({"routes": [{"match": "200:0", "cluster": "chat"}],
                         "max_backend_output_bytes": 65536,
                         "routes_from_redis": {"address": "127.0.0.1:6379", "key": "k"}})");
  ASSERT_NE(redis, nullptr) << error_;
  // With routes_from_redis every cluster gets a pool.
  EXPECT_EQ(describe(*redis->config),
            R"({"routes":[{"match":"200:0","cluster":"chat"}],"clusters":["game","chat"],)"
            R"("max_backend_output_bytes":65536,)"
            R"("fair_share":{"floor":65536,"hard_cap":131072,"per_ip":true},)"
            R"("routes_from_redis":{"address":"127.0.0.1:6379","routes_format":"gateway",)"
            R"("key":"k","channel":"game-gateway:routing:updates","refresh_interval":"10s","db":0}})");
  // The Go format: keys and channels derived from key_prefix, as the Go gateway does.
  auto go = build(R"({"routes": [{"match": "200:0", "cluster": "chat"}],
                      "routes_from_redis": {"address": "127.0.0.1:6379", "routes_format": "go",
                                            "key_prefix": "gg:", "cluster_template": "game"}})");
  ASSERT_NE(go, nullptr) << error_;
  EXPECT_NE(describe(*go->config).find(
                R"("routes_format":"go","key_prefix":"gg:","realm_key":"gg:realm:mapping",)"
                R"("realm_channel":"gg:realm:mapping:notify","cluster_template":"game",)"
                R"("key":"gg:routing:rules","channel":"gg:routing:rules:notify")"),
            std::string::npos)
      << describe(*go->config);
}

// routes_from_redis authenticates with a password from a file or variable,
// never one written in the config; describe() names the source only.
TEST_F(UpstreamConfigTest, RoutesFromRedisAuthKeys) {
  EXPECT_EQ(build(R"({"routes": [{"match": "200:0", "cluster": "game"}],
                      "routes_from_redis": {"address": "127.0.0.1:6379",
                                            "password": "literal-pw"}})"),
            nullptr);
  EXPECT_EQ(error_.rfind("/routes_from_redis/password: a password is never written in the "
                         "config", 0),
            0u)
      << error_;
  EXPECT_EQ(error_.find("literal-pw"), std::string::npos);
  ::unsetenv("GW_UPSTREAM_TEST_PW");
  EXPECT_EQ(build(R"({"routes": [{"match": "200:0", "cluster": "game"}],
                      "routes_from_redis": {"address": "127.0.0.1:6379",
                                            "password_env": "GW_UPSTREAM_TEST_PW"}})"),
            nullptr);
  EXPECT_EQ(error_, "/routes_from_redis/password_env: environment variable GW_UPSTREAM_TEST_PW is "
                    "not set (it must hold the Redis password)");
  ::setenv("GW_UPSTREAM_TEST_PW", "env-secret", 1);
  auto built = build(R"({"routes": [{"match": "200:0", "cluster": "game"}],
                         "routes_from_redis": {"address": "127.0.0.1:6379", "key": "k",
                                               "password_env": "GW_UPSTREAM_TEST_PW",
                                               "username": "routes", "db": 2}})");
  ::unsetenv("GW_UPSTREAM_TEST_PW");
  ASSERT_NE(built, nullptr) << error_;
  std::string d = describe(*built->config);
  EXPECT_NE(d.find(R"("refresh_interval":"10s","password_env":"GW_UPSTREAM_TEST_PW",)"
                   R"("username":"routes","db":2})"),
            std::string::npos)
      << d;
  EXPECT_EQ(d.find("env-secret"), std::string::npos);
}

TEST_F(UpstreamConfigTest, GoFormatKeysAreCheckedWithTheirPointer) {
  EXPECT_EQ(build(R"({"routes": [{"match": "200:0", "cluster": "game"}],
                      "routes_from_redis": {"address": "127.0.0.1:6379", "routes_format": "go",
                                            "key": "mine"}})"),
            nullptr);
  EXPECT_EQ(error_,
            "/routes_from_redis/key: not with \"routes_format\": \"go\" (the Go gateway's keys "
            "follow \"key_prefix\")");
  EXPECT_EQ(build(R"({"routes": [{"match": "200:0", "cluster": "game"}],
                      "routes_from_redis": {"address": "127.0.0.1:6379",
                                            "key_prefix": "gg:"}})"),
            nullptr);
  EXPECT_EQ(error_, "/routes_from_redis/key_prefix: only with \"routes_format\": \"go\"");
  EXPECT_EQ(build(R"({"routes": [{"match": "200:0", "cluster": "game"}],
                      "routes_from_redis": {"address": "127.0.0.1:6379", "routes_format": "go",
                                            "cluster_template": "gmae"}})"),
            nullptr);
  EXPECT_EQ(error_.rfind("/routes_from_redis/cluster_template: unknown cluster \"gmae\"", 0), 0u)
      << error_;
}

TEST_F(UpstreamConfigTest, FairShareKnobsAndTheirBounds) {
  auto built = build(R"({"routes": [{"match": "200:0", "cluster": "game"}],
                         "max_backend_output_bytes": 1048576,
                         "fair_share": {"floor": 4096, "hard_cap": 3145728, "per_ip": false}})");
  ASSERT_NE(built, nullptr) << error_;
  const auto& cfg = static_cast<const upstream::UpstreamConfig&>(*built->config);
  EXPECT_EQ(cfg.shares.limit, 1048576u);
  EXPECT_EQ(cfg.shares.floor, 4096u);
  EXPECT_EQ(cfg.shares.hard_cap, 3145728u);
  EXPECT_FALSE(cfg.shares.per_ip);
  // The hard cap may not be under the limit, nor the floor over it.
  EXPECT_EQ(build(R"({"routes": [{"match": "200:0", "cluster": "game"}],
                      "max_backend_output_bytes": 1048576, "fair_share": {"hard_cap": 65536}})"),
            nullptr);
  EXPECT_EQ(error_, "/fair_share/hard_cap: must be an integer from 1048576 to 1099511627776, got 65536");
  EXPECT_EQ(build(R"({"routes": [{"match": "200:0", "cluster": "game"}],
                      "max_backend_output_bytes": 65536, "fair_share": {"floor": 65537}})"),
            nullptr);
  EXPECT_EQ(error_, "/fair_share/floor: must be an integer from 1024 to 65536, got 65537");
}

// Host states (core/sdk/cluster_manager.h) through the process's manager,
// which these tests feed as the runtime would and empty at the end.
class UpstreamHostStateTest : public ::testing::Test {
 protected:
  void TearDown() override { ClusterManager::process().setStaticClusters({}); }
  void setState(const std::string& cluster, RecordingBackend& host, HostState state) {
    std::string error;
    ASSERT_TRUE(ClusterManager::process().setHostState(cluster, host.address(), state, &error))
        << error;
  }
};

TEST_F(UpstreamHostStateTest, DrainTakesNoNewSessionsButKeepsItsOwn) {
  RecordingBackend h0, h1;
  std::vector<RecordingBackend*> all = {&h0, &h1};
  ClusterConfig c = cluster("hs_drain", all);
  ClusterManager::process().setStaticClusters({c});
  Worker w({c}, R"({"routes": [{"match": "200:0", "cluster": "hs_drain"}]})");
  Worker::Client s1(w, 1), s2(w, 2);
  s1.send(100, serverId(200, 0));
  s2.send(100, serverId(200, 0));
  ASSERT_TRUE(pump({&w}, all, [&] { return seen(all) == 2; }));
  EXPECT_EQ(h0.dataSessions(), std::set<uint64_t>{1});
  setState("hs_drain", h0, HostState::kDrain);
  // Session 1 stays pinned on the draining host; new ones all go to h1.
  Worker::Client s3(w, 3), s4(w, 4);
  s3.send(100, serverId(200, 0));
  s4.send(100, serverId(200, 0));
  s1.send(101, serverId(200, 0), "still here");
  ASSERT_TRUE(pump({&w}, all, [&] { return h1.dataSessions().size() == 3 && h0.of(wire::Opcode::kData, 1).size() == 2; }));
  EXPECT_EQ(h0.dataSessions(), std::set<uint64_t>{1});
  EXPECT_EQ(h1.dataSessions(), (std::set<uint64_t>{2, 3, 4}));
  EXPECT_TRUE(h0.of(wire::Opcode::kSessionClose, 1).empty());
}

TEST_F(UpstreamHostStateTest, MaintMovesLiveSessionsToAnotherHost) {
  RecordingBackend h0, h1;
  std::vector<RecordingBackend*> all = {&h0, &h1};
  ClusterConfig c = cluster("hs_maint", all);
  ClusterManager::process().setStaticClusters({c});
  Worker w({c}, R"({"routes": [{"match": "200:0", "cluster": "hs_maint"}]})");
  Worker::Client s1(w, 1), s2(w, 2);
  s1.send(100, serverId(200, 0));
  s2.send(100, serverId(200, 0));
  ASSERT_TRUE(pump({&w}, all, [&] { return seen(all) == 2; }));
  ASSERT_EQ(h0.dataSessions(), std::set<uint64_t>{1});
  setState("hs_maint", h0, HostState::kMaint);
  // Without traffic: the worker's sweep (posted by the manager) closes
  // session 1 on h0.
  ASSERT_TRUE(pump({&w}, all, [&] { return !h0.of(wire::Opcode::kSessionClose, 1).empty(); }));
  // Its next frame opens it on h1; the client saw no error and stays.
  s1.send(101, serverId(200, 0), "moved");
  ASSERT_TRUE(pump({&w}, all, [&] { return h1.dataSessions().count(1) == 1; }));
  EXPECT_EQ(h1.of(wire::Opcode::kData, 1)[0].payload, "moved");
  EXPECT_TRUE(s1.takeFrames().empty());
  EXPECT_FALSE(s1.closed);
  Worker::Client s3(w, 3);
  s3.send(100, serverId(200, 0));
  ASSERT_TRUE(pump({&w}, all, [&] { return h1.dataSessions().count(3) == 1; }));
  EXPECT_EQ(h0.dataSessions(), std::set<uint64_t>{1});
}

TEST_F(UpstreamHostStateTest, UnhealthyIsSkippedAndNoReadyHostIsAnError) {
  RecordingBackend h0, h1;
  std::vector<RecordingBackend*> all = {&h0, &h1};
  ClusterConfig c = cluster("hs_unhealthy", all);
  ClusterManager::process().setStaticClusters({c});
  setState("hs_unhealthy", h0, HostState::kUnhealthy);
  Worker w({c}, R"({"routes": [{"match": "200:0", "cluster": "hs_unhealthy"}]})");
  Worker::Client s1(w, 1), s2(w, 2);
  s1.send(100, serverId(200, 0));
  s2.send(100, serverId(200, 0));
  ASSERT_TRUE(pump({&w}, all, [&] { return seen(all) == 2; }));
  EXPECT_TRUE(h0.dataSessions().empty());
  setState("hs_unhealthy", h1, HostState::kDrain);
  Worker::Client s3(w, 3);
  s3.send(102, serverId(200, 0));
  auto out = s3.takeFrames();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].payload, errorFramePayload(ErrorCode::kUpstreamUnavailable, 102));
}

TEST_F(UpstreamHostStateTest, GenerationsShareTheWorkersPoolsAndBackendFramesReachBoth) {
  RecordingBackend game;
  ClusterConfig c = cluster("hs_reload", {&game});
  c.max_connections_per_service = 1;
  ClusterManager::process().setStaticClusters({c});
  const std::string routes = R"({"routes": [{"match": "200:0", "cluster": "hs_reload"}]})";
  Worker w({c}, routes);
  Worker::Client old_gen(w, 51);
  old_gen.send(100, serverId(200, 0));
  ASSERT_TRUE(pump({&w}, {&game}, [&] { return game.dataSessions().size() == 1; }));
  c.max_connections_per_service = 2;
  c.connect_timeout = std::chrono::milliseconds(1500);
  w.reload({c}, routes);
  Worker::Client new_gen(w, 52);
  new_gen.send(100, serverId(200, 0));
  ASSERT_TRUE(pump({&w}, {&game}, [&] { return game.dataSessions().size() == 2; }));
  // One worker-wide pool, configured by the newest generation.
  auto* uw = w.ec.services().find<upstream::UpstreamWorker>();
  ASSERT_NE(uw, nullptr);
  EXPECT_EQ(uw->poolCount(), 1u);
  ASSERT_NE(uw->find("hs_reload"), nullptr);
  EXPECT_EQ(uw->find("hs_reload")->config().connect_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(uw->find("hs_reload")->perHostLimit(), 2u);
  // A frame for each generation's session, on whatever connection: each
  // reaches its own client.
  game.sendToAll(encodeServerFrame(wire::Opcode::kData, 301, 51, "old"));
  game.sendToAll(encodeServerFrame(wire::Opcode::kData, 302, 52, "new"));
  std::vector<ClientFrame> a, b;
  ASSERT_TRUE(pump({&w}, {&game}, [&] {
    for (auto& f : old_gen.takeFrames()) a.push_back(f);
    for (auto& f : new_gen.takeFrames()) b.push_back(f);
    return !a.empty() && !b.empty();
  }));
  EXPECT_EQ(a[0].payload, "old");
  EXPECT_EQ(b[0].payload, "new");
}

// ---------------------------------------------------------------- connect retries

// The retries counted for `host` of `cluster` (game_gateway_backend_retries_total).
uint64_t retriesOf(const std::string& cluster, const std::string& host) {
  return stats::StatsRegistry::get()
      .counter("game_gateway_backend_retries_total", "", {{"cluster", cluster}, {"backend", host}})
      .value();
}

// One worker routing 200:0 to cluster `name`, one host on 127.0.0.1:port
// (nothing listening yet) with the given retry settings, its upstream
// events counted.
struct RetryCase {
  static ClusterConfig clusterAt(const std::string& name, uint16_t port, uint32_t max_retries,
                                 std::chrono::milliseconds retry_delay) {
    ClusterConfig c;
    c.name = name;
    c.hosts.push_back(*Address::parse("127.0.0.1:" + std::to_string(port)));
    c.max_retries = max_retries;
    c.retry_delay = retry_delay;
    return c;
  }
  RetryCase(const std::string& name, uint16_t port, uint32_t max_retries,
            std::chrono::milliseconds retry_delay)
      : host("127.0.0.1:" + std::to_string(port)),
        w({clusterAt(name, port, max_retries, retry_delay)},
          R"({"routes": [{"match": "200:0", "cluster": ")" + name + R"("}]})") {
    w.ec.services().get<UpstreamEventBus>().subscribe(&events);
  }
  ~RetryCase() { w.ec.services().get<UpstreamEventBus>().unsubscribe(&events); }
  int count(UpstreamEvent::Type t) { return events.by_type[t]; }

  std::string host;
  Worker w;
  EventCounter events;
};

// A connect refused every time is retried max_retries times, then fails
// once: one kConnectFailed for the breaker (after the last retry), one
// error frame for the client's frame.
TEST(UpstreamConnectRetryTest, ARetriedConnectIsOneFailureAfterItsLastRetry) {
  RetryCase t("retry-refused", freePort(), 2, 20ms);
  Worker::Client s(t.w, 61);
  s.send(100, serverId(200, 0));
  std::vector<ClientFrame> got;
  ASSERT_TRUE(pump({&t.w}, {}, [&] {
    for (auto& f : s.takeFrames()) got.push_back(f);
    return !got.empty();
  }));
  EXPECT_EQ(retriesOf("retry-refused", t.host), 2u);
  EXPECT_EQ(t.count(UpstreamEvent::Type::kConnectFailed), 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, errorFramePayload(ErrorCode::kUpstreamUnavailable, 100));
}

// Without max_retries the first refused connect is the failure (as before).
TEST(UpstreamConnectRetryTest, NoRetriesByDefault) {
  RetryCase t("retry-none", freePort(), 0, 20ms);
  Worker::Client s(t.w, 62);
  s.send(100, serverId(200, 0));
  ASSERT_TRUE(pump({&t.w}, {}, [&] { return t.count(UpstreamEvent::Type::kConnectFailed) == 1; }));
  EXPECT_EQ(retriesOf("retry-none", t.host), 0u);
}

// A backend that refuses and starts listening during the retries gets the
// frames queued meanwhile (session open first), and nothing fails.
TEST(UpstreamConnectRetryTest, ABackendListeningBeforeTheLastRetryGetsTheQueuedFrames) {
  uint16_t port = freePort();
  RetryCase t("retry-late", port, 5, 100ms);
  Worker::Client s(t.w, 63);
  s.send(100, serverId(200, 0), "first");
  ASSERT_TRUE(pump({&t.w}, {}, [&] { return retriesOf("retry-late", t.host) >= 1; }));
  s.send(101, serverId(200, 0), "second");  // queued while waiting to retry
  UniqueFd listener = listenTcp(port);
  ASSERT_TRUE(listener.valid());
  UniqueFd backend;
  ASSERT_TRUE(pump({&t.w}, {}, [&] {
    if (!backend.valid()) backend = acceptTcp(listener.get(), 1ms);
    return backend.valid();
  }, 5s));
  std::vector<ServerFrame> frames;
  std::string bytes;
  ASSERT_TRUE(pump({&t.w}, {}, [&] {
    char buf[4096];
    ssize_t n = recv(backend.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) bytes.append(buf, static_cast<size_t>(n));
    frames.clear();
    decodeServerFrames(bytes, &frames);
    return frames.size() >= 3;
  }));
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].header.opcode, static_cast<uint8_t>(wire::Opcode::kSessionOpen));
  EXPECT_EQ(frames[1].payload, "first");
  EXPECT_EQ(frames[2].payload, "second");
  EXPECT_EQ(t.count(UpstreamEvent::Type::kConnectFailed), 0);
  EXPECT_EQ(t.count(UpstreamEvent::Type::kConnected), 1);
  EXPECT_TRUE(s.takeFrames().empty()) << "no error frame";
}

}  // namespace
}  // namespace test
}  // namespace gw
