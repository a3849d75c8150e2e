// Tests of upstream's shared route rules (filters/upstream/redis_routes.h,
// RouteTable::fromJson) against a real redis-server. They live with the
// session tests because they share the Redis fixture and client.
#include <event2/event.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <functional>

#include "core/sdk/stats.h"
#include "filters/upstream/redis_routes.h"
#include "filters/upstream/route_table.h"
#include "test/filters/session/redis_fixture.h"

namespace gw {
namespace test {
namespace {

using namespace std::chrono_literals;
using upstream::RouteTable;

int indexOf(std::string_view name) {
  if (name == "game") return 0;
  if (name == "account") return 1;
  return -1;
}

wire::ClientHeader header(uint8_t type, uint16_t world) {
  wire::ClientHeader h;
  h.server_id = wire::ClientHeader::makeServerId(world, type, 0);
  return h;
}

TEST(RouteTableJsonTest, ParsesRulesWithTheGoGatewaysFallback) {
  std::string error;
  auto t = RouteTable::fromJson(
      R"({"routes": [{"match": "200:0", "cluster": "game"},
                     {"match": "200:7", "cluster": "account"},
                     {"match": "10:0", "cluster": "account"}]})",
      indexOf, &error);
  ASSERT_TRUE(t.has_value()) << error;
  EXPECT_EQ(t->resolve(header(200, 3)), 0);  // falls back to 200:0
  EXPECT_EQ(t->resolve(header(200, 7)), 1);  // exact rule
  EXPECT_EQ(t->resolve(header(10, 0)), 1);
  EXPECT_EQ(t->resolve(header(15, 0)), RouteTable::kNoRoute);
}

TEST(RouteTableJsonTest, RefusesAnythingElseWithAReason) {
  struct Case {
    const char* json;
    const char* why;
  } cases[] = {
      {"not json", "not valid JSON"},
      {"[]", "must be a JSON object"},
      {R"({"routes": []})", "non-empty array"},
      {R"({"rules": []})", "unknown key \"rules\""},
      {R"({"routes": [{"match": "200:0"}]})", "routes[0].cluster"},
      {R"({"routes": [{"match": "300:0", "cluster": "game"}]})", "routes[0].match"},
      {R"({"routes": [{"match": "200:0", "cluster": "gmae"}]})", "unknown cluster \"gmae\""},
      {R"({"routes": [{"match": "200:0", "cluster": "game", "weight": 1}]})", "unknown key"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(RouteTable::fromJson(c.json, indexOf, &error).has_value()) << c.json;
    EXPECT_NE(error.find(c.why), std::string::npos) << c.json << " -> " << error;
  }
}

class RedisRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    std::string error;
    ASSERT_TRUE(redis_.start(&error)) << error;
    ClusterConfig game, account;
    game.name = "game";
    account.name = "account";
    clusters_ = {game, account};
    cfg_.address = *Address::parse(redis_.address());
    cfg_.refresh_interval = 60s;  // notices, not polling, in these tests
    // Readers start from the rules the process last applied from the same
    // address and key: a key per test keeps the tests apart.
    cfg_.key += std::string(":") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  std::unique_ptr<upstream::RedisRoutes> make(Dispatcher& d) { return make(d, clusters_); }
  std::unique_ptr<upstream::RedisRoutes> make(Dispatcher& d,
                                              const std::vector<ClusterConfig>& clusters) {
    return std::make_unique<upstream::RedisRoutes>(
        d, cfg_, clusters, 0, "test",
        [this](std::shared_ptr<const RouteTable> t) { applied_.push_back(std::move(t)); });
  }
  RedisServer redis_;
  std::vector<ClusterConfig> clusters_;
  upstream::RoutesFromRedis cfg_;
  std::vector<std::shared_ptr<const RouteTable>> applied_;
};

TEST_F(RedisRoutesTest, AppliesGoodRulesAtStartAndOnNotices) {
  redis_.set(cfg_.key, R"({"routes": [{"match": "200:0", "cluster": "game"}]})");
  Dispatcher d("routes");
  auto routes = make(d);
  routes->start();
  ASSERT_TRUE(runUntil(d, [&] { return applied_.size() == 1; }));
  EXPECT_EQ(applied_[0]->resolve(header(200, 0)), 0);
  EXPECT_TRUE(routes->fromRedis());
  // An update plus a notice arrives long before the 60 s refresh.
  runUntil(d, [] { return false; }, 50ms);  // the subscription is registered
  redis_.set(cfg_.key, R"({"routes": [{"match": "200:0", "cluster": "account"}]})");
  redis_.publish(cfg_.channel, "updated");
  ASSERT_TRUE(runUntil(d, [&] { return applied_.size() == 2; }, 2s));
  EXPECT_EQ(applied_[1]->resolve(header(200, 0)), 1);
}

TEST_F(RedisRoutesTest, MalformedUpdatesAreRefusedAndTheLastGoodRulesStay) {
  redis_.set(cfg_.key, R"({"routes": [{"match": "200:0", "cluster": "game"}]})");
  Dispatcher d("routes");
  auto routes = make(d);
  routes->start();
  ASSERT_TRUE(runUntil(d, [&] { return applied_.size() == 1; }));
  runUntil(d, [] { return false; }, 50ms);
  for (const char* bad : {"{not json", R"({"routes": [{"match": "200:0", "cluster": "nope"}]})"}) {
    redis_.set(cfg_.key, bad);
    redis_.publish(cfg_.channel, "updated");
    runUntil(d, [] { return false; }, 200ms);
  }
  EXPECT_EQ(applied_.size(), 1u);  // nothing replaced the good rules
  // A key of the wrong type (GET answers WRONGTYPE) is refused the same way.
  stats::Counter& refused = stats::StatsRegistry::get().counter(
      "game_gateway_upstream_route_updates_total", "",
      {{"listener", "test"}, {"result", "refused"}});
  uint64_t refused_before = refused.value();
  redis_.command({"DEL", cfg_.key});
  redis_.command({"RPUSH", cfg_.key, "x"});
  redis_.publish(cfg_.channel, "updated");
  ASSERT_TRUE(runUntil(d, [&] { return refused.value() == refused_before + 1; }, 2s));
  EXPECT_EQ(applied_.size(), 1u);
  redis_.command({"DEL", cfg_.key});
  redis_.publish(cfg_.channel, "deleted");
  runUntil(d, [] { return false; }, 200ms);
  EXPECT_EQ(applied_.size(), 1u);  // a missing key keeps what is in force
  EXPECT_TRUE(routes->fromRedis());
  // A good value again is applied.
  redis_.set(cfg_.key, R"({"routes": [{"match": "10:0", "cluster": "account"}]})");
  redis_.publish(cfg_.channel, "updated");
  ASSERT_TRUE(runUntil(d, [&] { return applied_.size() == 2; }));
}

TEST_F(RedisRoutesTest, PollsOnTheIntervalWithoutNotices) {
  cfg_.refresh_interval = 200ms;
  Dispatcher d("routes");
  auto routes = make(d);
  routes->start();
  runUntil(d, [] { return false; }, 300ms);
  EXPECT_TRUE(applied_.empty());  // no key yet: the static routes stay
  EXPECT_FALSE(routes->fromRedis());
  redis_.set(cfg_.key, R"({"routes": [{"match": "200:0", "cluster": "game"}]})");
  ASSERT_TRUE(runUntil(d, [&] { return applied_.size() == 1; }, 2s));
}

TEST_F(RedisRoutesTest, RedisComingBackLateStillDeliversTheRules) {
  redis_.kill();
  Dispatcher d("routes");
  auto routes = make(d);
  routes->start();
  runUntil(d, [] { return false; }, 300ms);
  EXPECT_TRUE(applied_.empty());
  std::string error;
  ASSERT_TRUE(redis_.restart(&error)) << error;
  redis_.set(cfg_.key, R"({"routes": [{"match": "200:0", "cluster": "game"}]})");
  // Fetched as soon as the connection comes up, not at the next interval.
  ASSERT_TRUE(runUntil(d, [&] { return applied_.size() == 1; }, 10s));
}

TEST_F(RedisRoutesTest, AReloadedConfigStartsFromTheLastRulesEvenWithRedisDown) {
  redis_.set(cfg_.key, R"({"routes": [{"match": "200:0", "cluster": "account"}]})");
  Dispatcher d("routes");
  auto first = make(d);
  first->start();
  ASSERT_TRUE(runUntil(d, [&] { return applied_.size() == 1; }));
  EXPECT_EQ(applied_[0]->resolve(header(200, 0)), 1);
  stats::Counter& applied = stats::StatsRegistry::get().counter(
      "game_gateway_upstream_route_updates_total", "",
      {{"listener", "test"}, {"result", "applied"}});
  uint64_t applied_before = applied.value();
  redis_.kill();
  // The reloaded config lists its clusters in another order: the rules are
  // parsed again against its own indexes, at once, with Redis down.
  ClusterConfig game, account;
  game.name = "game";
  account.name = "account";
  std::vector<ClusterConfig> reordered = {account, game};
  auto second = make(d, reordered);
  second->start();
  ASSERT_EQ(applied_.size(), 2u);
  EXPECT_EQ(applied_[1]->resolve(header(200, 0)), 0);
  EXPECT_TRUE(second->fromRedis());
  EXPECT_EQ(applied.value(), applied_before);  // not an update read from Redis
  // A config the rules do not fit (no cluster "account") keeps its static
  // routes.
  std::vector<ClusterConfig> only_game = {game};
  auto third = make(d, only_game);
  third->start();
  runUntil(d, [] { return false; }, 100ms);
  EXPECT_EQ(applied_.size(), 2u);
  EXPECT_FALSE(third->fromRedis());
}

}  // namespace
}  // namespace test
}  // namespace gw
