// test/core/cluster_manager_test.cc — ClusterManager and ClusterHosts
// (core/sdk/cluster_manager.h): the static source across reloads, dynamic
// sources, host states, versions, notifications and the state gauges. Each
// test uses its own manager (not the process one).
#include "core/sdk/cluster_manager.h"

#include <gtest/gtest.h>

#include <chrono>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "core/sdk/dispatcher.h"
#include "core/sdk/stats.h"

namespace gw {
namespace {

ClusterConfig cluster(const std::string& name, const std::vector<std::string>& hosts) {
  ClusterConfig c;
  c.name = name;
  for (const auto& h : hosts) c.hosts.push_back(*Address::parse(h));
  return c;
}

// Runs `d`'s loop for `ms`.
void runFor(Dispatcher& d, int ms) {
  Timer stop(d, [&d] { d.exit(); });
  stop.enable(std::chrono::milliseconds(ms));
  d.run();
}

std::vector<std::string> names(const HostSet& set) {
  std::vector<std::string> out;
  for (const auto& h : set.hosts) out.push_back(h.name);
  return out;
}

TEST(ClusterManagerTest, StaticHostsFollowTheConfigAndKeptHostsKeepTheirState) {
  ClusterManager m;
  m.setStaticClusters({cluster("cm_game", {"127.0.0.1:9001", "127.0.0.1:9002"})});
  auto set = m.hosts("cm_game");
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(names(*set), (std::vector<std::string>{"127.0.0.1:9001", "127.0.0.1:9002"}));
  EXPECT_EQ(set->source, "static");
  std::string error;
  ASSERT_TRUE(m.setHostState("cm_game", "127.0.0.1:9002", HostState::kDrain, &error)) << error;

  // A reload keeps :9002 (still drained), drops :9001, adds :9003 (ready).
  m.setStaticClusters({cluster("cm_game", {"127.0.0.1:9002", "127.0.0.1:9003"})});
  set = m.hosts("cm_game");
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(names(*set), (std::vector<std::string>{"127.0.0.1:9002", "127.0.0.1:9003"}));
  EXPECT_EQ(set->find("127.0.0.1:9002")->state, HostState::kDrain);
  EXPECT_EQ(set->find("127.0.0.1:9003")->state, HostState::kReady);
  EXPECT_EQ(set->find("127.0.0.1:9001"), nullptr);

  // A reload without the cluster removes it.
  m.setStaticClusters({});
  EXPECT_EQ(m.hosts("cm_game"), nullptr);
  EXPECT_TRUE(m.all().empty());
}

TEST(ClusterManagerTest, ADynamicSourceOwnsItsClusterAcrossReloads) {
  ClusterManager m;
  m.setStaticClusters({cluster("cm_dns", {"127.0.0.1:9001"})});
  ClusterHost a{*Address::parse("127.0.0.1:9101"), ""};
  ClusterHost b{*Address::parse("127.0.0.1:9102"), "", HostState::kMaint, 3};
  m.replaceHosts("cm_dns", "dns", {a, b});
  auto set = m.hosts("cm_dns");
  EXPECT_EQ(set->source, "dns");
  EXPECT_EQ(names(*set), (std::vector<std::string>{"127.0.0.1:9101", "127.0.0.1:9102"}));
  EXPECT_EQ(set->find("127.0.0.1:9102")->state, HostState::kMaint);  // a new host: as given
  EXPECT_EQ(set->find("127.0.0.1:9102")->weight, 3u);
  // A reload still naming the cluster leaves its hosts to the source.
  m.setStaticClusters({cluster("cm_dns", {"127.0.0.1:9001"})});
  EXPECT_EQ(names(*m.hosts("cm_dns")), (std::vector<std::string>{"127.0.0.1:9101", "127.0.0.1:9102"}));
  // The source's next answer keeps the state of a host that stays.
  b.state = HostState::kReady;
  m.replaceHosts("cm_dns", "dns", {b});
  EXPECT_EQ(m.hosts("cm_dns")->find("127.0.0.1:9102")->state, HostState::kMaint);
}

TEST(ClusterManagerTest, AReleasedClusterFollowsTheConfigAgain) {
  ClusterManager m;
  m.setStaticClusters({cluster("cm_rel", {"127.0.0.1:9001"})});
  m.replaceHosts("cm_rel", "dns", {ClusterHost{*Address::parse("127.0.0.1:9101"), ""}});
  m.releaseHosts("cm_rel", "consul");  // not the owner: nothing changes
  EXPECT_EQ(m.hosts("cm_rel")->source, "dns");
  uint64_t before = m.version();
  m.releaseHosts("cm_rel", "dns");
  EXPECT_GT(m.version(), before);
  auto set = m.hosts("cm_rel");
  EXPECT_EQ(set->source, "static");
  EXPECT_EQ(names(*set), std::vector<std::string>{"127.0.0.1:9101"}) << "kept until the reload";
  m.setStaticClusters({cluster("cm_rel", {"127.0.0.1:9002"})});
  EXPECT_EQ(names(*m.hosts("cm_rel")), std::vector<std::string>{"127.0.0.1:9002"});
}

TEST(ClusterManagerTest, RefreshRequestsReachTheHandlerUntilItIsRemoved) {
  ClusterManager m;
  std::vector<std::string> asked;
  m.requestRefresh("cm_a");  // no handler: nothing happens
  m.setRefreshHandler([&](const std::string& c) { asked.push_back(c); });
  m.requestRefresh("cm_a");
  m.requestRefresh("cm_b");
  m.setRefreshHandler({});
  m.requestRefresh("cm_c");
  EXPECT_EQ(asked, (std::vector<std::string>{"cm_a", "cm_b"}));
}

TEST(ClusterManagerTest, SetHostStateNamesWhatIsMissing) {
  ClusterManager m;
  m.setStaticClusters({cluster("cm_err", {"127.0.0.1:9001"})});
  std::string error;
  EXPECT_FALSE(m.setHostState("nope", "127.0.0.1:9001", HostState::kMaint, &error));
  EXPECT_EQ(error, "no cluster 'nope'");
  EXPECT_FALSE(m.setHostState("cm_err", "127.0.0.1:9", HostState::kMaint, &error));
  EXPECT_EQ(error, "cluster 'cm_err' has no host '127.0.0.1:9'");
  uint64_t v = m.version();
  EXPECT_TRUE(m.setHostState("cm_err", "127.0.0.1:9001", HostState::kReady, &error));
  EXPECT_EQ(m.version(), v) << "setting the state a host has is no change";
}

TEST(ClusterManagerTest, StateNamesRoundTrip) {
  for (HostState s : {HostState::kReady, HostState::kDrain, HostState::kMaint, HostState::kUnhealthy})
    EXPECT_EQ(parseHostState(hostStateName(s)), s);
  EXPECT_EQ(parseHostState("down"), std::nullopt);
}

TEST(ClusterHostsTest, ReadsTheManagerOnlyWhenItChangedAndFallsBackToTheConfig) {
  ClusterManager m;
  ClusterConfig c = cluster("cm_view", {"127.0.0.1:9001"});
  ClusterHosts view(m, c.name, c.hosts);
  // The manager has no set: the configured hosts, all ready.
  EXPECT_EQ(names(view.get()), (std::vector<std::string>{"127.0.0.1:9001"}));
  EXPECT_FALSE(view.stale());
  m.setStaticClusters({cluster("cm_view", {"127.0.0.1:9001", "127.0.0.1:9002"})});
  EXPECT_TRUE(view.stale());
  const HostSet& set = view.get();
  EXPECT_FALSE(view.stale());
  EXPECT_EQ(set.hosts.size(), 2u);
  std::string error;
  ASSERT_TRUE(m.setHostState("cm_view", "127.0.0.1:9002", HostState::kUnhealthy, &error));
  EXPECT_TRUE(view.stale());
  EXPECT_EQ(view.get().find("127.0.0.1:9002")->state, HostState::kUnhealthy);
}

TEST(ClusterManagerTest, SubscribersAreCalledOnTheirDispatcherUntilTheyUnsubscribe) {
  ClusterManager m;
  Dispatcher d("test");
  int calls = 0;
  uint64_t id = m.subscribe(d, [&] { ++calls; });
  m.setStaticClusters({cluster("cm_sub", {"127.0.0.1:9001"})});
  EXPECT_EQ(calls, 0) << "posted, not called inline";
  runFor(d, 20);
  EXPECT_EQ(calls, 1);
  std::string error;
  ASSERT_TRUE(m.setHostState("cm_sub", "127.0.0.1:9001", HostState::kMaint, &error));
  m.unsubscribe(id);  // the posted callback must not run now
  runFor(d, 20);
  EXPECT_EQ(calls, 1);
}

TEST(ClusterManagerTest, StateGaugeIsOneForTheCurrentStateAndLeavesWithTheHost) {
  ClusterManager m;
  m.setStaticClusters({cluster("cm_gauge", {"127.0.0.1:9001", "127.0.0.1:9002"})});
  std::string error;
  ASSERT_TRUE(m.setHostState("cm_gauge", "127.0.0.1:9001", HostState::kDrain, &error));
  auto value = [](const std::string& host, const std::string& state) {
    double v = -1;
    stats::StatsRegistry::get().visit("game_gateway_cluster_host_state", [&](const stats::Labels& l, double x) {
      if (l == stats::Labels{{"cluster", "cm_gauge"}, {"host", host}, {"state", state}}) v = x;
    });
    return v;
  };
  EXPECT_EQ(value("127.0.0.1:9001", "drain"), 1);
  EXPECT_EQ(value("127.0.0.1:9001", "ready"), 0);
  EXPECT_EQ(value("127.0.0.1:9002", "ready"), 1);
  m.setStaticClusters({cluster("cm_gauge", {"127.0.0.1:9002"})});
  EXPECT_EQ(value("127.0.0.1:9001", "drain"), -1) << "a removed host's series are deleted";
  m.setStaticClusters({});
  EXPECT_EQ(value("127.0.0.1:9002", "ready"), -1) << "a removed cluster's series are deleted";
}

}  // namespace
// Workers read their views while the main thread (reloads) and the admin API
// (host states) change the manager: run under TSan (//test:tsan_suite).
TEST(ClusterManagerTest, ViewsReadWhileAnotherThreadChangesTheManager) {
  ClusterManager m;
  m.setStaticClusters({cluster("cm_race", {"127.0.0.1:9001", "127.0.0.1:9002"})});
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      ClusterHosts view(m, "cm_race", {});
      while (!stop.load()) {
        const HostSet& set = view.get();
        // Every set a reader sees is whole: one or two hosts, each named.
        EXPECT_GE(set.hosts.size(), 1u);
        for (const auto& h : set.hosts) EXPECT_FALSE(h.name.empty());
        reads.fetch_add(1);
      }
    });
  }
  std::string error;
  for (int i = 0; i < 500; ++i) {
    if (i % 2 == 0) {
      m.setStaticClusters({cluster("cm_race", {"127.0.0.1:9001"})});
    } else {
      m.setStaticClusters({cluster("cm_race", {"127.0.0.1:9001", "127.0.0.1:9002"})});
    }
    EXPECT_TRUE(m.setHostState("cm_race", "127.0.0.1:9001",
                               i % 3 == 0 ? HostState::kDrain : HostState::kReady, &error))
        << error;
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_GT(reads.load(), 0u);
  EXPECT_EQ(m.hosts("cm_race")->hosts.size(), 2u);
}

}  // namespace gw
