// Two real gateways against a Redis that requires a password (issue 16:
// switching without changing the studio's Redis). One has the right
// password (from an environment variable) and db 3: its session store and
// routes_from_redis connect, records land in db 3, GET /config names the
// variable and never shows the password. The other has a wrong password
// (from a file): the refusals are counted per component and logged
// without the secret, the store counts as down, and the gateway keeps
// serving players with the documented fallback (local sessions, static
// routes).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

#include "test/filters/session/redis_fixture.h"
#include "test/integration/fleet_test.h"

namespace gw {
namespace test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPassword = "studio-redis-pw-41d7";
constexpr const char* kWrongPassword = "stale-redis-pw-0c2e";

TEST(RedisAuthIntegrationTest, RightPasswordConnectsWrongPasswordFallsBackWithoutLeaking) {
  signal(SIGPIPE, SIG_IGN);
  RedisServer redis;
  BackendSim sim;
  std::string error;
  redis.setServerArgs({"--requirepass", kPassword});
  ASSERT_TRUE(redis.start(&error)) << error;
  redis::Credentials db3;
  db3.password = kPassword;
  db3.db = 3;
  redis.setClientCredentials(db3);
  ASSERT_TRUE(sim.start({}, &error)) << error;
  ASSERT_TRUE(redis.set("auth-it:rules", R"({"routes": [{"match": "200:0", "cluster": "game"}]})"));

  // The right password, from the environment (the gateway inherits it).
  FleetOptions good;
  good.redis = redis.address();
  good.routes_key = "auth-it:rules";
  good.redis_auth = R"(, "password_env": "GW_IT_REDIS_PASSWORD", "db": 3)";
  ::setenv("GW_IT_REDIS_PASSWORD", kPassword, 1);
  GatewayProcess a;
  bool started = startGateway(a, "gw-a", fleetConfig(0, sim.port(), good), &error);
  ::unsetenv("GW_IT_REDIS_PASSWORD");
  ASSERT_TRUE(started) << error;

  // A stale password, from a file only the gateway's user reads.
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string file = std::string(tmp ? tmp : "/tmp") + "/wrong-redis-pw";
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fprintf(f, "%s\n", kWrongPassword);
  std::fclose(f);
  ::chmod(file.c_str(), 0600);
  FleetOptions bad = good;
  bad.redis_auth = R"(, "password_file": ")" + file + R"(", "db": 3)";
  GatewayProcess b;
  ASSERT_TRUE(startGateway(b, "gw-b", fleetConfig(0, sim.port(), bad), &error)) << error;

  const std::string up = "game_gateway_session_store_redis_connected";
  ASSERT_TRUE(waitUntil([&] { return gatewayMetric(a, up) == 2; })) << a.output();
  ASSERT_TRUE(waitUntil([&] {
    return gatewayMetric(a, "game_gateway_upstream_redis_routes_active{listener=\"game\"}") == 2;
  })) << a.output();
  // A session on the good gateway is written to db 3.
  GameClient ca;
  ASSERT_TRUE(ca.connect(a.listenerPort("game")) && ca.hello() && ca.roundTrip("good"));
  ASSERT_TRUE(waitUntil([&] { return redis.exists("game-gateway:session:" + std::to_string(ca.id())); }));
  EXPECT_EQ(gatewayMetric(a, "game_gateway_redis_auth_failures_total{component=\"session\"}"), 0);

  // The bad gateway: refusals counted for both components, never up.
  for (const char* component : {"session", "routes_from_redis"}) {
    std::string series =
        std::string("game_gateway_redis_auth_failures_total{component=\"") + component + "\"}";
    ASSERT_TRUE(waitUntil([&] { return gatewayMetric(b, series).value_or(0) >= 2; }))
        << series << "\n" << b.output();
  }
  EXPECT_EQ(gatewayMetric(b, up), 0);
  EXPECT_EQ(gatewayMetric(b, "game_gateway_upstream_redis_routes_active{listener=\"game\"}"), 0);
  // ...and still serving: a session from local state, the static route.
  GameClient cb;
  ASSERT_TRUE(cb.connect(b.listenerPort("game")) && cb.hello() && cb.roundTrip("fallback"));
  EXPECT_TRUE(cb.roundTrip("again"));
  EXPECT_FALSE(redis.exists("game-gateway:session:" + std::to_string(cb.id())));

  std::string out = b.output();
  EXPECT_NE(out.find("WRONGPASS"), std::string::npos) << out;
  EXPECT_EQ(out.find(kWrongPassword), std::string::npos) << "the password was logged";
  EXPECT_EQ(a.output().find(kPassword), std::string::npos) << "the password was logged";
  // GET /config: where the password comes from, never the password.
  HttpResponse cfg = httpRequest(adminPort(a), "GET", "/config");
  ASSERT_EQ(cfg.status, 200);
  EXPECT_NE(cfg.body.find("GW_IT_REDIS_PASSWORD"), std::string::npos) << cfg.body;
  EXPECT_EQ(cfg.body.find(kPassword), std::string::npos) << cfg.body;
  HttpResponse cfg_b = httpRequest(adminPort(b), "GET", "/config");
  EXPECT_NE(cfg_b.body.find(file), std::string::npos) << cfg_b.body;
  EXPECT_EQ(cfg_b.body.find(kWrongPassword), std::string::npos) << cfg_b.body;
  std::remove(file.c_str());
}

}  // namespace
}  // namespace test
}  // namespace gw
