// test/filters/session/affinity_test.cc — SessionAffinity (affinity.h): the
// compact per-session affinity (indexes into the config's names, names only
// for what the config does not know), and the per-connection and
// per-session object sizes it is part of.
#include "filters/session/affinity.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "core/sdk/session_info.h"
#include "filters/session/session.h"
#include "filters/session/session_manager.h"

namespace gw {
namespace session {
namespace {

std::vector<ClusterConfig> clusters() {
  ClusterConfig game;
  game.name = "game";
  game.hosts = {*Address::parse("127.0.0.1:9000"), *Address::parse("127.0.0.1:9001")};
  ClusterConfig account;
  account.name = "account";
  account.hosts = {*Address::parse("10.0.0.1:7000")};
  ClusterConfig chat;
  chat.name = "chat";
  chat.hosts = {*Address::parse("10.0.0.2:7100")};
  return {game, account, chat};
}

TEST(AffinityNamesTest, IndexesFollowTheConfig) {
  AffinityNames n(clusters());
  uint16_t c = 0, h = 0;
  ASSERT_TRUE(n.find("game", "127.0.0.1:9001", &c, &h));
  EXPECT_EQ(n.cluster(c), "game");
  EXPECT_EQ(n.host(c, h), "127.0.0.1:9001");
  EXPECT_FALSE(n.find("game", "127.0.0.1:9999", &c, &h));
  EXPECT_FALSE(n.find("nope", "127.0.0.1:9000", &c, &h));
  EXPECT_EQ(n.findCluster("chat"), 2);
  EXPECT_EQ(n.findCluster("nope"), -1);
}

TEST(SessionAffinityTest, OneOrTwoKnownClustersStayInline) {
  AffinityNames n(clusters());
  SessionAffinity a;
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.hostFor(n, "game"), "");
  EXPECT_TRUE(a.set(n, "game", "127.0.0.1:9000"));
  EXPECT_FALSE(a.set(n, "game", "127.0.0.1:9000"));  // unchanged
  EXPECT_TRUE(a.set(n, "game", "127.0.0.1:9001"));   // re-homed
  EXPECT_TRUE(a.set(n, "account", "10.0.0.1:7000"));
  EXPECT_FALSE(a.spilled());
  EXPECT_EQ(a.size(), 2u);
  EXPECT_EQ(a.hostFor(n, "game"), "127.0.0.1:9001");
  EXPECT_EQ(a.hostFor(n, "account"), "10.0.0.1:7000");
  AffinityPairs want = {{"game", "127.0.0.1:9001"}, {"account", "10.0.0.1:7000"}};
  EXPECT_EQ(a.toPairs(n), want);
}

TEST(SessionAffinityTest, UnknownNamesAndAThirdClusterAreKeptAsNamesInOrder) {
  AffinityNames n(clusters());
  SessionAffinity a;
  a.set(n, "game", "127.0.0.1:9000");
  a.set(n, "lobby", "10.9.9.9:1");  // not in this config (another replica's)
  EXPECT_TRUE(a.spilled());
  // After a spilled entry, later ones are kept as names too: order is kept.
  a.set(n, "account", "10.0.0.1:7000");
  AffinityPairs want = {
      {"game", "127.0.0.1:9000"}, {"lobby", "10.9.9.9:1"}, {"account", "10.0.0.1:7000"}};
  EXPECT_EQ(a.toPairs(n), want);
  EXPECT_EQ(a.hostFor(n, "lobby"), "10.9.9.9:1");
  EXPECT_TRUE(a.set(n, "lobby", "10.9.9.9:2"));
  EXPECT_EQ(a.hostFor(n, "lobby"), "10.9.9.9:2");

  SessionAffinity three;
  three.set(n, "game", "127.0.0.1:9000");
  three.set(n, "account", "10.0.0.1:7000");
  EXPECT_FALSE(three.spilled());
  three.set(n, "chat", "10.0.0.2:7100");
  EXPECT_TRUE(three.spilled());
  EXPECT_EQ(three.size(), 3u);
  EXPECT_EQ(three.hostFor(n, "chat"), "10.0.0.2:7100");
}

TEST(SessionAffinityTest, AHostTheConfigDoesNotKnowReplacesAnInlineEntry) {
  AffinityNames n(clusters());
  SessionAffinity a;
  a.set(n, "game", "127.0.0.1:9000");
  a.set(n, "account", "10.0.0.1:7000");
  EXPECT_TRUE(a.set(n, "game", "192.0.2.1:9000"));
  EXPECT_EQ(a.hostFor(n, "game"), "192.0.2.1:9000");
  EXPECT_EQ(a.hostFor(n, "account"), "10.0.0.1:7000");
  EXPECT_EQ(a.size(), 2u);
}

TEST(SessionAffinityTest, RoundTripThroughNamesAcrossConfigs) {
  // Redis records and resume results carry names; another config (a reload,
  // another replica) may order clusters and hosts differently.
  AffinityNames mine(clusters());
  std::vector<ClusterConfig> other_clusters = clusters();
  std::swap(other_clusters[0], other_clusters[2]);
  std::swap(other_clusters[2].hosts[0], other_clusters[2].hosts[1]);
  AffinityNames theirs(other_clusters);

  SessionAffinity a;
  a.set(mine, "game", "127.0.0.1:9001");
  AffinityPairs wire = a.toPairs(mine);  // what goes to Redis
  SessionAffinity b;
  b.assign(theirs, wire);
  EXPECT_FALSE(b.spilled());
  EXPECT_EQ(b.hostFor(theirs, "game"), "127.0.0.1:9001");

  // Record to record (memory store resume): indexes when the config is the
  // same, through names when not.
  SessionAffinity c;
  c.assign(theirs, a, mine);
  EXPECT_EQ(c.hostFor(theirs, "game"), "127.0.0.1:9001");
  SessionAffinity d;
  d.assign(mine, a, mine);
  EXPECT_EQ(d.toPairs(mine), wire);

  // A record without a config knows no names: everything is kept as names.
  SessionAffinity e;
  e.assign(AffinityNames::empty(), wire);
  EXPECT_TRUE(e.spilled());
  EXPECT_EQ(e.toPairs(AffinityNames::empty()), wire);
  e.clear();
  EXPECT_TRUE(e.empty());
}

// The per-connection and per-session objects of the session filter (see
// docs/filters/session.md, "Threads and cost"). Upper bounds: a regression fails.
TEST(SessionSizesTest, PerConnectionAndPerSessionObjects) {
  std::printf("sizeof SessionInfo=%zu SessionAffinity=%zu SessionFilter=%zu SessionRecord=%zu "
              "(Address=%zu)\n",
              sizeof(SessionInfo), sizeof(SessionAffinity), sizeof(SessionFilter),
              sizeof(SessionRecord), sizeof(Address));
  EXPECT_LE(sizeof(SessionInfo), 56u);  // 24 bytes: the trace context (issue 16)
  EXPECT_LE(sizeof(SessionAffinity), 16u);
  EXPECT_LE(sizeof(SessionFilter), 112u);
  // Everything but the client Address (whose size core/address.h decides).
  EXPECT_LE(sizeof(SessionRecord) - sizeof(Address), 144u);
}

}  // namespace
}  // namespace session
}  // namespace gw
