// Integration test of the read-only health and metrics listeners
// (top-level "health_listener" / "metrics_listener", the Go gateway's
// 9090 / 9091 layout; docs/config.md) over real sockets against the real
// gateway binary: the health listener answers GET /healthz, /health and
// /ready, the metrics listener GET /metrics, and neither answers anything
// that reads config or changes state (POST /drain is refused and the
// gateway keeps serving).
#include <gtest/gtest.h>

#include <string>

#include "test/harness/gateway.h"
#include "test/integration/ops_test.h"

namespace gw {
namespace test {
namespace {

class GoPortsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(gw_.start(proxyConfig(9, R"("health_listener": "127.0.0.1:0",
        "metrics_listener": "127.0.0.1:0",)"),
                          &error))
        << error;
    admin_ = adminPort(gw_);
    health_ = loggedPort(gw_, "health listener on ");
    metrics_ = loggedPort(gw_, "metrics listener on ");
    ASSERT_NE(admin_, 0);
    ASSERT_NE(health_, 0) << gw_.output();
    ASSERT_NE(metrics_, 0) << gw_.output();
  }
  GatewayProcess gw_;
  uint16_t admin_ = 0, health_ = 0, metrics_ = 0;
};

TEST_F(GoPortsTest, HealthListenerAnswersOnlyTheProbes) {
  for (const char* path : {"/healthz", "/health"}) {
    HttpResponse r = httpRequest(health_, "GET", path);
    EXPECT_EQ(r.status, 200) << path << " " << r.body;
    EXPECT_NE(r.body.find("\"ok\""), std::string::npos) << r.body;
  }
  EXPECT_TRUE(waitUntil([&] { return httpRequest(health_, "GET", "/ready").status == 200; }));
  EXPECT_EQ(httpRequest(health_, "HEAD", "/ready").status, 200);
  for (const char* path : {"/metrics", "/config", "/clusters", "/sessions/1", "/"}) {
    EXPECT_EQ(httpRequest(health_, "GET", path).status, 404) << path;
  }
}

TEST_F(GoPortsTest, MetricsListenerAnswersOnlyMetrics) {
  HttpResponse r = httpRequest(metrics_, "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("game_gateway_connections_active"), std::string::npos);
  for (const char* path : {"/healthz", "/ready", "/config", "/clusters"}) {
    EXPECT_EQ(httpRequest(metrics_, "GET", path).status, 404) << path;
  }
}

TEST_F(GoPortsTest, NothingThatChangesStateEvenWithTheAdminToken) {
  for (uint16_t port : {health_, metrics_}) {
    HttpResponse drain = adminPost(port, "/drain");
    EXPECT_NE(drain.status, 200) << drain.body;
    EXPECT_TRUE(drain.status == 404 || drain.status == 405) << drain.status;
    EXPECT_EQ(adminPost(port, "/sessions/1/kick").status, 404);
  }
  // POST of a path the listener does serve is a 405, not a drain.
  HttpResponse r = adminPost(health_, "/ready");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("Allow"), "GET, HEAD");
  // Still serving, not draining (ready once the workers are up: a fresh
  // gateway under ASan may answer 503 for its first moments).
  EXPECT_TRUE(waitUntil([&] { return httpRequest(health_, "GET", "/ready").status == 200; }));
  EXPECT_EQ(gw_.output().find("draining"), std::string::npos) << gw_.output();
  // The admin API is unchanged.
  EXPECT_EQ(httpRequest(admin_, "GET", "/config").status, 200);
}

TEST(GoPortsConfig, BadAddressNamesThePointer) {
  GatewayProcess gw;
  std::string error;
  EXPECT_FALSE(gw.start(proxyConfig(9, R"("metrics_listener": "nowhere",)"), &error,
                        std::chrono::seconds(5)));
  EXPECT_NE(error.find("/metrics_listener"), std::string::npos) << error;
}

}  // namespace
}  // namespace test
}  // namespace gw
