// Redis dies under a fleet of two real gateways: connected clients keep
// round-tripping through both replicas, new sessions are still created
// (local ids, no Redis record), the store metrics say Redis is down; Redis
// comes back (empty, on the same port): the replicas reconnect by
// themselves, re-write their sessions, and a session created during the
// outage can then be resumed on the other replica. No restart.
#include <gtest/gtest.h>

#include <thread>

#include "test/filters/session/redis_fixture.h"
#include "test/integration/fleet_test.h"

namespace gw {
namespace test {
namespace {

using namespace std::chrono_literals;

TEST(SessionRedisOutageTest, FleetKeepsServingAndRecoversWithoutRestart) {
  signal(SIGPIPE, SIG_IGN);
  RedisServer redis;
  BackendSim sim;
  std::string error;
  ASSERT_TRUE(redis.start(&error)) << error;
  ASSERT_TRUE(sim.start({}, &error)) << error;
  FleetOptions o;
  o.redis = redis.address();
  GatewayProcess a, b;
  ASSERT_TRUE(startGateway(a, "gw-a", fleetConfig(0, sim.port(), o), &error)) << error;
  ASSERT_TRUE(startGateway(b, "gw-b", fleetConfig(0, sim.port(), o), &error)) << error;
  uint16_t port_a = a.listenerPort("game"), port_b = b.listenerPort("game");
  ASSERT_NE(port_a, 0) << a.output();
  ASSERT_NE(port_b, 0) << b.output();
  const std::string up = "game_gateway_session_store_redis_connected";
  for (GatewayProcess* g : {&a, &b}) ASSERT_TRUE(waitUntil([&] { return gatewayMetric(*g, up) == 2; }));

  GameClient ca, cb;
  ASSERT_TRUE(ca.connect(port_a) && ca.hello() && ca.roundTrip("before"));
  ASSERT_TRUE(cb.connect(port_b) && cb.hello() && cb.roundTrip("before"));

  // Redis crashes.
  redis.kill();
  for (GatewayProcess* g : {&a, &b}) {
    ASSERT_TRUE(waitUntil([&] { return gatewayMetric(*g, up) == 0; }, 5000ms)) << g->output();
  }
  // Connected players are not affected: every round trip succeeds.
  int ok = 0;
  auto until = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < until) {
    ok += ca.roundTrip("during") ? 1 : 0;
    ok += cb.roundTrip("during") ? 1 : 0;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GT(ok, 20);
  EXPECT_TRUE(ca.roundTrip("during")) << "connected client on gw-a lost its session";
  EXPECT_TRUE(cb.roundTrip("during")) << "connected client on gw-b lost its session";
  // A new session during the outage: created from local state.
  GameClient during;
  ASSERT_TRUE(during.connect(port_a));
  ASSERT_TRUE(during.hello());
  ASSERT_TRUE(during.roundTrip("new during the outage"));
  // Resume on the same replica still works without Redis.
  GameClient local_resume;
  during.close();
  ASSERT_TRUE(waitUntil([&] {
    return gatewayMetric(a, "game_gateway_sessions_lingering{listener=\"game\"}") == 1;
  }));
  ASSERT_TRUE(local_resume.connect(port_a));
  bool refused = true;
  ASSERT_TRUE(local_resume.resume(during.id(), during.token(), &refused));
  EXPECT_FALSE(refused);
  EXPECT_EQ(local_resume.id(), during.id());
  ASSERT_TRUE(local_resume.roundTrip("resumed locally"));
  std::cout << "redis down: round trips ok=" << ok << ", session " << local_resume.id()
            << " created and resumed on gw-a\n";

  // Redis is back (empty, same port): no gateway restart.
  ASSERT_TRUE(redis.restart(&error)) << error;
  for (GatewayProcess* g : {&a, &b}) {
    ASSERT_TRUE(waitUntil([&] { return gatewayMetric(*g, up) == 2; }, 15000ms)) << g->output();
  }
  // The replicas re-wrote their sessions, including the one born during the outage.
  // Each worker of each replica re-writes its own records after its own
  // reconnect (queued after the connected gauge goes up, on that worker's
  // Redis connection): one key being back says nothing about the others.
  std::string key = "game-gateway:session:" + std::to_string(local_resume.id());
  ASSERT_TRUE(waitUntil([&] { return redis.exists(key); }, 5000ms));
  for (uint64_t id : {ca.id(), cb.id()}) {
    std::string k = "game-gateway:session:" + std::to_string(id);
    EXPECT_TRUE(waitUntil([&] { return redis.exists(k); }, 5000ms)) << k;
  }
  // ...so it can now move to the other replica.
  local_resume.close();
  ASSERT_TRUE(waitUntil([&] {
    auto h = redis.hgetall(key);
    for (auto& [k, v] : h)
      if (k == "state") return v == "lingering";
    return false;
  }));
  GameClient moved;
  ASSERT_TRUE(moved.connect(port_b));
  ASSERT_TRUE(moved.resume(local_resume.id(), local_resume.token(), &refused));
  EXPECT_FALSE(refused);
  EXPECT_EQ(moved.id(), local_resume.id());
  EXPECT_TRUE(moved.roundTrip("moved after recovery"));
  EXPECT_TRUE(ca.roundTrip("after"));
  EXPECT_TRUE(cb.roundTrip("after"));
  std::cout << "redis back: session " << moved.id() << " resumed on gw-b\n";
  // What degraded was counted.
  EXPECT_GT(gatewayMetric(a, "game_gateway_session_store_errors_total").value_or(0), 0);
  EXPECT_EQ(sim.stats()["closes"], 0);
}

}  // namespace
}  // namespace test
}  // namespace gw
