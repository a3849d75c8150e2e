// Session-id node ids across a fleet sharing Redis (issue 14, item 2):
// each gateway claims `<prefix>node:<id>` in Redis and keeps it alive; a
// second gateway started with the same node id sees the claim held by the
// other, logs it, and shows it in game_gateway_session_node_id_conflict
// (and ..._collisions_total); a gateway with its own id sees none. When the
// holder stops, its claim expires and the other takes the id over.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <string>

#include "test/filters/session/redis_fixture.h"
#include "test/integration/fleet_test.h"

namespace gw {
namespace test {
namespace {

using namespace std::chrono_literals;

bool startWithNodeId(GatewayProcess& gw, const std::string& replica, const std::string& node_id,
                     const std::string& config, std::string* error) {
  ::setenv("GATEWAY_NODE_ID", node_id.c_str(), 1);
  bool ok = startGateway(gw, replica, config, error);
  ::unsetenv("GATEWAY_NODE_ID");
  return ok;
}

double metric(GatewayProcess& gw, const std::string& series) {
  return gatewayMetric(gw, series).value_or(-1);
}

TEST(SessionNodeIdTest, TwoGatewaysWithOneNodeIdAreReported) {
  signal(SIGPIPE, SIG_IGN);
  RedisServer redis;
  BackendSim sim;
  std::string error;
  ASSERT_TRUE(redis.start(&error)) << error;
  ASSERT_TRUE(sim.start({}, &error)) << error;
  FleetOptions o;
  o.redis = redis.address();
  const std::string config = fleetConfig(0, sim.port(), o);
  GatewayProcess a, b, c;
  ASSERT_TRUE(startWithNodeId(a, "gw-a", "7", config, &error)) << error;
  ASSERT_TRUE(waitUntil([&] { return redis.get("game-gateway:node:7").has_value(); }, 5000ms))
      << a.output();
  ASSERT_TRUE(startWithNodeId(b, "gw-b", "7", config, &error)) << error;
  ASSERT_TRUE(startWithNodeId(c, "gw-c", "8", config, &error)) << error;

  const std::string conflict = "game_gateway_session_node_id_conflict";
  EXPECT_TRUE(waitUntil([&] { return metric(b, conflict) == 1; }, 5000ms)) << b.output();
  EXPECT_GE(metric(b, "game_gateway_session_node_id_collisions_total"), 1);
  EXPECT_NE(b.output().find("node id 7 is held by"), std::string::npos) << b.output();
  EXPECT_TRUE(waitUntil([&] { return redis.get("game-gateway:node:8").has_value(); }, 5000ms));
  EXPECT_EQ(metric(a, conflict), 0);
  EXPECT_EQ(metric(c, conflict), 0);
  EXPECT_EQ(metric(c, "game_gateway_session_node_id_collisions_total"), 0);

  // The holder goes; its claim expires and b takes the id over.
  ASSERT_TRUE(a.stop(5000ms).has_value());
  EXPECT_TRUE(waitUntil([&] { return metric(b, conflict) == 0; }, 12000ms)) << b.output();
}

}  // namespace
}  // namespace test
}  // namespace gw
