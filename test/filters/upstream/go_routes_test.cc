// Tests of the Go gateway's rules format (filters/upstream/go_routes.h):
// parsing and refusals, the realm mapping, and the endpoint each strategy
// picks — checked against a table computed outside this code from the Go
// router's algorithm (internal/router/router.go, RouteByServerID, at commit
// 1388327e46dd68f5bcd1d3120b00cb351c096eaf): crc32.ChecksumIEEE of
// "world:W:inst:I" (realm_based) or "I" (consistent_hash), modulo the number
// of endpoints. The CRCs were computed with Python's zlib.crc32 (the same
// IEEE polynomial), e.g. python3 -c 'import zlib;
// print(hex(zlib.crc32(b"world:3:inst:7")))' -> 0x3ff8174f.
#include "filters/upstream/go_routes.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace gw {
namespace upstream {
namespace {

wire::ClientHeader header(uint8_t type, uint16_t world, uint8_t inst) {
  wire::ClientHeader h;
  h.server_id = wire::ClientHeader::makeServerId(world, type, inst);
  return h;
}

std::shared_ptr<const GoRules> parse(const std::string& json) {
  std::string error;
  auto rules = GoRules::parse(json, &error);
  EXPECT_TRUE(rules.has_value()) << error;
  return rules ? std::make_shared<const GoRules>(std::move(*rules)) : nullptr;
}

const auto kNoSession = [](uint32_t) { return false; };

TEST(GoRoutesTest, Crc32IsTheIeeeChecksum) {
  EXPECT_EQ(crc32Ieee("123456789"), 0xCBF43926u);  // the standard check value
  EXPECT_EQ(crc32Ieee("world:3:inst:7"), 0x3ff8174fu);
  EXPECT_EQ(crc32Ieee("9"), 0x8d076785u);
  EXPECT_EQ(crc32Ieee(""), 0u);
}

TEST(GoRoutesTest, RealmBasedPicksTheGoRoutersEndpoint) {
  // Five endpoints, so the modulo matters.
  auto rules = parse(R"({"200": {"server_type": 200, "service_name": "game",
      "strategy": "realm_based", "endpoints": ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1",
      "10.0.0.4:1", "10.0.0.5:1"]}})");
  ASSERT_TRUE(rules);
  GoRouteTable table(rules, {});
  struct Row {
    uint16_t world;
    uint8_t inst;
    uint32_t crc;  // zlib.crc32("world:W:inst:I")
  } rows[] = {
      {1, 1, 0x94beb507},   {1, 2, 0x0db7e4bd},   {3, 7, 0x3ff8174f},
      {100, 255, 0xa058a719}, {32767, 1, 0x1d32d4b7}, {1, 4, 0xe4d44188},
  };
  // Expected index: crc % 5, computed by hand from the CRCs above.
  int expected[] = {1, 3, 3, 0, 4, 1};
  for (size_t i = 0; i < std::size(rows); ++i) {
    EXPECT_EQ(static_cast<int>(rows[i].crc % 5), expected[i]);
    EXPECT_EQ(table.pick(header(200, rows[i].world, rows[i].inst), kNoSession, true), expected[i])
        << "world " << rows[i].world << " inst " << int(rows[i].inst);
  }
}

TEST(GoRoutesTest, ConsistentHashUsesInstIdAndBothFallBackToRoundRobin) {
  auto rules = parse(R"({"10": {"server_type": 10, "strategy": "consistent_hash",
      "endpoints": ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]},
      "200": {"server_type": 200, "strategy": "realm_based",
      "endpoints": ["10.0.0.7:1", "10.0.0.8:1"]}})");
  ASSERT_TRUE(rules);
  GoRouteTable table(rules, {});
  // crc32("1") = 0x83dcefb7 % 3 = 2; crc32("2") = 0x1ad5be0d % 3 = 1; crc32("9") % 3 = 0.
  EXPECT_EQ(table.pick(header(10, 0, 1), kNoSession, true), 2);
  EXPECT_EQ(table.pick(header(10, 0, 2), kNoSession, true), 1);
  EXPECT_EQ(table.pick(header(10, 5, 9), kNoSession, true), 0);
  // inst_id 0: round robin over the rule's endpoints (indexes 0, 1, 2, 0).
  EXPECT_EQ(table.pick(header(10, 0, 0), kNoSession, true), 0);
  EXPECT_EQ(table.pick(header(10, 0, 0), kNoSession, true), 1);
  EXPECT_EQ(table.pick(header(10, 0, 0), kNoSession, false), 2);  // a preview ...
  EXPECT_EQ(table.pick(header(10, 0, 0), kNoSession, true), 2);   // ... is what comes next
  // realm_based without world or inst: round robin (endpoints 3 and 4).
  EXPECT_EQ(table.pick(header(200, 0, 1), kNoSession, true), 3);
  EXPECT_EQ(table.pick(header(200, 2, 0), kNoSession, true), 4);
  // A session that already uses one of the rule's endpoints keeps it.
  EXPECT_EQ(table.pick(header(200, 0, 0), [](uint32_t e) { return e == 4; }, true), 4);
  EXPECT_EQ(table.pick(header(15, 0, 0), kNoSession, true), GoRouteTable::kNoRoute);
}

TEST(GoRoutesTest, ExactWorldRuleFirstThenTheWildcard) {
  auto rules = parse(R"({"200": {"server_type": 200, "strategy": "round_robin",
      "endpoints": ["10.0.0.1:1"]},
      "201": {"server_type": 200, "world_id": 7, "strategy": "round_robin",
      "endpoints": ["10.0.0.2:1"]}})");
  ASSERT_TRUE(rules);
  GoRouteTable table(rules, {});
  EXPECT_EQ(table.pick(header(200, 7, 0), kNoSession, true), 1);
  EXPECT_EQ(table.pick(header(200, 8, 0), kNoSession, true), 0);
  EXPECT_EQ(rules->endpoints().size(), 2u);
  EXPECT_EQ(goEndpointCluster(rules->endpoints()[1]), "go:10.0.0.2:1");
}

TEST(GoRoutesTest, TheRealmMappingOverridesTheStrategyWithinTheRule) {
  auto rules = parse(R"({"200": {"server_type": 200, "strategy": "realm_based",
      "endpoints": ["10.0.0.1:1", "10.0.0.2:1"]},
      "10": {"server_type": 10, "strategy": "round_robin", "endpoints": ["10.0.0.9:1"]}})");
  ASSERT_TRUE(rules);
  std::string error;
  auto realms = parseRealmMapping({{"3", "10.0.0.1:1"}}, *rules, &error);
  ASSERT_TRUE(realms) << error;
  GoRouteTable table(rules, *realms);
  // world 3 inst 4 hashes to index 1 (0xa6f146f5 % 2); the mapping says endpoint 0.
  EXPECT_EQ(GoRouteTable(rules, {}).pick(header(200, 3, 4), kNoSession, true), 1);
  EXPECT_EQ(table.pick(header(200, 3, 4), kNoSession, true), 0);
  // Another world: the hash (world 1 inst 4: 0xe4d44188 % 2 = 0; inst 1: 1).
  EXPECT_EQ(table.pick(header(200, 1, 1), kNoSession, true), 1);
  // A rule that does not list the mapped endpoint ignores the mapping.
  EXPECT_EQ(table.pick(header(10, 3, 0), kNoSession, true), 2);
}

TEST(GoRoutesTest, RefusesBadRulesWithAReason) {
  struct Case {
    const char* json;
    const char* why;
  } cases[] = {
      {"{not json", "not valid JSON"},
      {"[]", "non-empty JSON object"},
      {"{}", "non-empty JSON object"},
      {R"({"game": {"server_type": 200, "strategy": "round_robin", "endpoints": ["1.2.3.4:5"]}})",
       "the key must be an integer"},
      {R"({"200": {"strategy": "round_robin", "endpoints": ["1.2.3.4:5"]}})",
       "rules[\"200\"].server_type"},
      {R"({"200": {"server_type": 200, "strategy": "fastest", "endpoints": ["1.2.3.4:5"]}})",
       "unknown strategy \"fastest\""},
      {R"({"200": {"server_type": 200, "strategy": "round_robin", "endpoints": []}})",
       "endpoints: must be a non-empty array"},
      {R"({"200": {"server_type": 200, "strategy": "round_robin", "endpoints": ["nowhere"]}})",
       "endpoints[0]: unknown endpoint \"nowhere\""},
      {R"({"200": {"server_type": 200, "world_id": 40000, "strategy": "round_robin",
           "endpoints": ["1.2.3.4:5"]}})",
       "world_id"},
      {R"({"1": {"server_type": 200, "strategy": "round_robin", "endpoints": ["1.2.3.4:5"]},
           "2": {"server_type": 200, "strategy": "realm_based", "endpoints": ["1.2.3.4:6"]}})",
       "a second rule for 200:0"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(GoRules::parse(c.json, &error).has_value()) << c.json;
    EXPECT_NE(error.find(c.why), std::string::npos) << c.json << " -> " << error;
  }
  // Keys Go's decoder ignores are ignored; world_id <= 0 is the wildcard.
  auto ok = parse(R"({"200": {"server_type": 200, "world_id": -1, "strategy": "round_robin",
      "endpoints": ["1.2.3.4:5"], "hash_key": "user_id", "weight": 3}})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->rules()[0].world_id, 0);
}

// The Go gateway's own deployments name endpoints by service DNS name
// (its deploy/redis-init-job.yaml): "name:port" is an endpoint whose
// cluster's hosts come from the runtime's resolver; garbage is still refused.
TEST(GoRoutesTest, AcceptsEndpointsGivenByDnsName) {
  auto rules = parse(R"({"200": {"server_type": 200, "strategy": "realm_based",
      "endpoints": ["hgame-game-0.hgame-game.hgame.svc.cluster.local:19806",
                    "Game-1.Example.:19806", "10.0.0.1:1", "game-1.example:19806"]}})");
  ASSERT_TRUE(rules);
  // The name is lower-cased and its trailing dot dropped: one endpoint.
  ASSERT_EQ(rules->endpoints().size(), 3u);
  EXPECT_EQ(rules->rules()[0].endpoints, (std::vector<uint32_t>{0, 1, 2, 1}));
  EXPECT_EQ(goEndpointCluster(rules->endpoints()[0]),
            "go:hgame-game-0.hgame-game.hgame.svc.cluster.local:19806");
  ClusterConfig templ;
  templ.name = "template";
  templ.hosts = {*Address::parse("127.0.0.1:1")};
  ClusterConfig named = goEndpointClusterConfig(templ, rules->endpoints()[1]);
  EXPECT_EQ(named.name, "go:game-1.example:19806");
  EXPECT_TRUE(named.hosts.empty());
  ASSERT_EQ(named.host_names.size(), 1u);
  EXPECT_EQ(named.host_names[0].toString(), "game-1.example:19806");
  ClusterConfig ip = goEndpointClusterConfig(templ, rules->endpoints()[2]);
  EXPECT_EQ(ip.name, "go:10.0.0.1:1");
  ASSERT_EQ(ip.hosts.size(), 1u);
  EXPECT_EQ(ip.hosts[0].toString(), "10.0.0.1:1");
  EXPECT_TRUE(ip.host_names.empty());
  // A realm mapping may name such an endpoint (as written, any case).
  std::string error;
  auto realms = parseRealmMapping({{"3", "GAME-1.example:19806"}}, *rules, &error);
  ASSERT_TRUE(realms) << error;
  EXPECT_EQ(realms->at(3), 1u);
  EXPECT_FALSE(parseRealmMapping({{"3", "game-2.example:19806"}}, *rules, &error));
  EXPECT_NE(error.find("points nowhere"), std::string::npos) << error;

  for (const char* bad : {"nowhere", "bad_name!.example:80", "game.example:0",
                          "game.example:99999", "1.2.3:5", "-game.example:80", "game..x:80",
                          ":80", "10.0.0.300:1"}) {
    std::string json = std::string(R"({"200": {"server_type": 200, "strategy": "round_robin",
        "endpoints": [")") + bad + "\"]}}";
    EXPECT_FALSE(GoRules::parse(json, &error).has_value()) << bad;
    EXPECT_NE(error.find("endpoints[0]: unknown endpoint"), std::string::npos) << bad << " -> "
                                                                              << error;
  }
}

TEST(GoRoutesTest, RefusesARealmMappingPointingNowhere) {
  auto rules = parse(R"({"200": {"server_type": 200, "strategy": "realm_based",
      "endpoints": ["10.0.0.1:1"]}})");
  ASSERT_TRUE(rules);
  std::string error;
  EXPECT_FALSE(parseRealmMapping({{"3", "10.0.0.9:1"}}, *rules, &error));
  EXPECT_NE(error.find("realm \"3\" points nowhere"), std::string::npos) << error;
  EXPECT_FALSE(parseRealmMapping({{"three", "10.0.0.1:1"}}, *rules, &error));
  EXPECT_NE(error.find("1..32767"), std::string::npos) << error;
  EXPECT_FALSE(parseRealmMapping({{"0", "10.0.0.1:1"}}, *rules, &error));
  auto empty = parseRealmMapping({}, *rules, &error);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace upstream
}  // namespace gw
