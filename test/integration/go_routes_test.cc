// The real gateway reading the Go gateway's routing rules and realm mapping
// from a real redis-server ("routes_format": "go"), with two BackendSims:
// frames go to the backend the Go router picks (realm_based: world_id +
// inst_id), the realm mapping overrides it, changes announced on the Go
// gateway's :notify channels move new frames at once, and bad values (an
// unknown strategy, a mapping pointing nowhere, garbage JSON) are logged and
// counted while the last good state keeps serving. The endpoints' clusters
// ("go:ip:port") appear in /clusters. Endpoints given by DNS name (as the
// Go gateway's own deployments write them) reach the backend the name
// resolves to (a hosts file; no outside DNS).
#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "core/sdk/error_frame.h"
#include "test/filters/session/redis_fixture.h"
#include "test/harness/runfiles.h"
#include "test/integration/fleet_test.h"

namespace gw {
namespace test {
namespace {

using namespace std::chrono_literals;

class GoRoutesIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    std::string error;
    ASSERT_TRUE(redis_.start(&error)) << error;
    ASSERT_TRUE(sim_a_.start({"--reply-prefix", "a:"}, &error)) << error;
    ASSERT_TRUE(sim_b_.start({"--reply-prefix", "b:"}, &error)) << error;
  }

  std::string endpoint(BackendSim& s) { return "127.0.0.1:" + std::to_string(s.port()); }

  // Go rules: 200 (every world) realm_based over [A, B]; 10 round_robin [B].
  std::string rules(const std::string& strategy = "realm_based") {
    return R"({"200": {"server_type": 200, "service_name": "game", "strategy": ")" + strategy +
           R"(", "endpoints": [")" + endpoint(sim_a_) + R"(", ")" + endpoint(sim_b_) +
           R"("]}, "10": {"server_type": 10, "strategy": "round_robin", "endpoints": [")" +
           endpoint(sim_b_) + R"("]}})";
  }

  // framing -> upstream; static route 200:0 -> "static" (a third port that
  // nothing listens on: only Go rules reach a backend).
  // `dns`: the top-level "dns" member's text ("" for none).
  std::string config(const std::string& dns = "") {
    return R"({"workers": 2, "admin": )" + testAdminJson() + (dns.empty() ? "" : R"(, "dns": )" + dns) + R"(,
      "listeners": [{"name": "game", "address": "127.0.0.1:0", "filters": [
        {"name": "framing", "config": {}},
        {"name": "upstream", "config": {
          "routes": [{"match": "200:0", "cluster": "static"}],
          "routes_from_redis": {"address": ")" + redis_.address() + R"(",
            "routes_format": "go", "key_prefix": "game-gateway:",
            "refresh_interval": "60s", "cluster_template": "static"}}}]}],
      "clusters": [{"name": "static", "hosts": ["127.0.0.1:1"], "connect_timeout": "1s"}]})";
  }

  // Sends one frame for world/inst and returns the reply's payload ("" if none).
  std::string ask(GameClient& c, uint16_t world, uint8_t inst, uint8_t type = 200) {
    if (!c.send(7, "q", wire::ClientHeader::makeServerId(world, type, inst))) return "";
    auto f = c.recv(2000ms);
    return f ? f->payload : "";
  }

  double metric(const std::string& series) { return gatewayMetric(gw_, series).value_or(-1); }

  RedisServer redis_;
  BackendSim sim_a_, sim_b_;
  GatewayProcess gw_;
};

TEST_F(GoRoutesIntegrationTest, RoutesByTheGoRulesAndRealmMappingAndFollowsNotices) {
  const std::string rules_key = "game-gateway:routing:rules";
  const std::string realm_key = "game-gateway:realm:mapping";
  ASSERT_TRUE(redis_.set(rules_key, rules()));
  std::string error;
  ASSERT_TRUE(gw_.start(config(), &error)) << error;
  uint16_t port = gw_.listenerPort("game");
  ASSERT_NE(port, 0) << gw_.output();
  const std::string applied =
      R"(game_gateway_upstream_route_updates_total{listener="game",result="applied"})";
  ASSERT_TRUE(waitUntil([&] { return metric(applied) == 2; }, 5000ms)) << gw_.output();

  GameClient c;
  ASSERT_TRUE(c.connect(port));
  // The Go router's picks (crc32("world:W:inst:I") % 2, see go_routes_test):
  // world 1 inst 4 -> 0xe4d44188 % 2 = 0 (A); world 1 inst 1 -> 0x94beb507 % 2 = 1 (B).
  EXPECT_EQ(ask(c, 1, 4), "a:q");
  EXPECT_EQ(ask(c, 1, 1), "b:q");
  EXPECT_EQ(ask(c, 2, 1), "a:q");  // 0x1a31b2e4 % 2 = 0
  EXPECT_EQ(ask(c, 0, 0, 10), "b:q");

  // The endpoints' clusters are listed in /clusters.
  HttpResponse clusters = httpRequest(adminPort(gw_), "GET", "/clusters");
  EXPECT_NE(clusters.body.find("\"go:" + endpoint(sim_a_) + "\""), std::string::npos)
      << clusters.body;
  EXPECT_NE(clusters.body.find("\"source\": \"go_routes\""), std::string::npos) << clusters.body;

  // A realm mapping (world 1 -> A) announced on its notify channel moves
  // world 1's frames to A at once (the poll is 60 s away).
  redis_.command({"HSET", realm_key, "1", endpoint(sim_a_)});
  redis_.publish(realm_key + ":notify", "changed");
  ASSERT_TRUE(waitUntil([&] { return ask(c, 1, 1) == "a:q"; }, 3000ms)) << gw_.output();
  EXPECT_EQ(ask(c, 3, 4), "b:q");  // other worlds: the hash (0xa6f146f5 % 2 = 1)

  // A mapping pointing nowhere: refused, counted, the last good one stays.
  redis_.command({"HSET", realm_key, "2", "127.0.0.1:9"});
  redis_.publish(realm_key + ":notify", "changed");
  ASSERT_TRUE(gw_.process().waitForOutput("points nowhere", 3000ms)) << gw_.output();
  const std::string realm_refused =
      R"(game_gateway_upstream_realm_mapping_updates_total{listener="game",result="refused"})";
  ASSERT_TRUE(waitUntil([&] { return metric(realm_refused) == 2; }, 3000ms)) << gw_.output();
  EXPECT_EQ(metric(R"(game_gateway_config_refresh_errors_total{config_type="realm_mapping"})"), 1);
  EXPECT_EQ(ask(c, 1, 1), "a:q");
  redis_.command({"HDEL", realm_key, "2"});

  // An unknown strategy and garbage JSON: refused, counted, the rules stay.
  const std::string refused =
      R"(game_gateway_upstream_route_updates_total{listener="game",result="refused"})";
  ASSERT_TRUE(redis_.set(rules_key, rules("fastest")));
  redis_.publish(rules_key + ":notify", "changed");
  ASSERT_TRUE(gw_.process().waitForOutput("unknown strategy \"fastest\"", 3000ms)) << gw_.output();
  ASSERT_TRUE(waitUntil([&] { return metric(refused) == 2; }, 3000ms)) << gw_.output();
  ASSERT_TRUE(redis_.set(rules_key, "{\"200\": [garbage"));
  redis_.publish(rules_key + ":notify", "changed");
  ASSERT_TRUE(waitUntil([&] { return metric(refused) == 4; }, 3000ms)) << gw_.output();
  EXPECT_EQ(ask(c, 1, 4), "a:q");
  EXPECT_EQ(ask(c, 2, 3), "a:q");  // 0xf43fd3c8 % 2 = 0

  // A live rules update: 200 round_robin over [B] only. New frames go to B;
  // the mapping's world 1 -> A no longer points into the rule and is ignored.
  ASSERT_TRUE(redis_.set(
      rules_key, R"({"200": {"server_type": 200, "strategy": "round_robin", "endpoints": [")" +
                     endpoint(sim_b_) + R"("]}})"));
  redis_.publish(rules_key + ":notify", "changed");
  ASSERT_TRUE(waitUntil([&] { return ask(c, 2, 3) == "b:q"; }, 3000ms)) << gw_.output();
  EXPECT_EQ(ask(c, 1, 1), "b:q");
  EXPECT_EQ(metric(R"(game_gateway_config_refresh_success_total{config_type="routing_rules"})"), 2);
  // Server type 10 has no rule any more: no_route.
  EXPECT_EQ(metric(R"(game_gateway_upstream_no_route_total{listener="game"})"), 0);
  ASSERT_TRUE(c.send(7, "q", wire::ClientHeader::makeServerId(0, 10, 0)));
  auto f = c.recv(2000ms);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->header.msg_id, kErrorMsgId);  // an error frame (no_route)
  EXPECT_EQ(metric(R"(game_gateway_upstream_no_route_total{listener="game"})"), 1);
}


// The Go gateway's deployments name endpoints by service DNS name
// ("hgame-game-0.hgame-game.hgame.svc.cluster.local:19806"): such a rule is
// applied, its "go:name:port" cluster takes its hosts from the runtime's
// resolver (here a hosts file; the resolv.conf names a nameserver nothing
// listens on), and frames reach the backend the name resolves to.
TEST_F(GoRoutesIntegrationTest, EndpointsGivenByDnsNameReachTheirBackend) {
  const std::string name_a = "game-0.game.hgame.svc.cluster.test";
  std::string hosts = writeTempFile("127.0.0.1 " + name_a + "\n", "hosts-", ".txt");
  std::string resolv = writeTempFile("nameserver 127.0.0.1:9\noptions attempts:1\n", "resolv-",
                                     ".conf");
  const std::string named_a = name_a + ":" + std::to_string(sim_a_.port());
  ASSERT_TRUE(redis_.set(
      "game-gateway:routing:rules",
      R"({"200": {"server_type": 200, "strategy": "round_robin", "endpoints": [")" + named_a +
          R"("]}, "10": {"server_type": 10, "strategy": "round_robin", "endpoints": [")" +
          endpoint(sim_b_) + R"("]}})"));
  ASSERT_TRUE(redis_.command({"HSET", "game-gateway:realm:mapping", "1", named_a}));
  std::string error;
  ASSERT_TRUE(gw_.start(config(R"({"resolv_conf": ")" + resolv + R"(", "hosts_file": ")" + hosts +
                               R"(", "timeout": "300ms"})"),
                        &error))
      << error;
  uint16_t port = gw_.listenerPort("game");
  ASSERT_NE(port, 0) << gw_.output();
  const std::string applied =
      R"(game_gateway_upstream_route_updates_total{listener="game",result="applied"})";
  ASSERT_TRUE(waitUntil([&] { return metric(applied) == 2; }, 5000ms)) << gw_.output();
  const std::string realms_applied =
      R"(game_gateway_upstream_realm_mapping_updates_total{listener="game",result="applied"})";
  EXPECT_TRUE(waitUntil([&] { return metric(realms_applied) == 2; }, 3000ms)) << gw_.output();

  GameClient c;
  ASSERT_TRUE(c.connect(port));
  // The name resolves on the main thread soon after the rules are applied.
  ASSERT_TRUE(waitUntil([&] { return ask(c, 1, 4) == "a:q"; }, 3000ms)) << gw_.output();
  EXPECT_EQ(ask(c, 2, 1), "a:q");
  EXPECT_EQ(ask(c, 0, 0, 10), "b:q");
  HttpResponse clusters = httpRequest(adminPort(gw_), "GET", "/clusters");
  EXPECT_NE(clusters.body.find("\"go:" + named_a + "\""), std::string::npos) << clusters.body;
  EXPECT_NE(clusters.body.find("\"source\": \"dns\""), std::string::npos) << clusters.body;
  EXPECT_EQ(metric(R"(game_gateway_dns_resolutions_total{cluster="go:)" + named_a +
                   R"(",result="ok"})"),
            1);

  // A reload keeps the name's cluster served (the new generation asks the
  // resolver again; its last answer is published at once).
  ASSERT_TRUE(gw_.process().signal(SIGHUP));
  ASSERT_TRUE(gw_.process().waitForOutput("applied on every worker", 5000ms)) << gw_.output();
  GameClient d;
  ASSERT_TRUE(d.connect(port));
  ASSERT_TRUE(waitUntil([&] { return ask(d, 3, 1) == "a:q"; }, 3000ms)) << gw_.output();
  // ... from the answer it had: no second lookup (the interval is 30 s).
  EXPECT_EQ(metric(R"(game_gateway_dns_resolutions_total{cluster="go:)" + named_a +
                   R"(",result="ok"})"),
            1);
}

}  // namespace
}  // namespace test
}  // namespace gw
