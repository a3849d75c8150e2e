// Unit tests of BreakerAdminView (filters/breaker/breaker_admin_view.h):
// the "breaker" members GET /clusters shows for a cluster and its hosts,
// read back from the breaker's state gauges; and that the registered
// `breaker` type returns the view.
#include "filters/breaker/breaker_admin_view.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "core/sdk/registry.h"
#include "core/sdk/stats.h"
#include "filters/breaker/breaker_stats.h"

namespace gw {
namespace breaker {
namespace {

ClusterConfig cluster(const std::string& name, std::vector<std::string> hosts) {
  ClusterConfig c;
  c.name = name;
  for (const auto& h : hosts) c.hosts.push_back(*Address::parse(h));
  return c;
}

void setState(const std::string& cluster, const std::string& host, int64_t v) {
  stats::StatsRegistry::get().gauge(kStateMetric, "", {{"cluster", cluster}, {"host", host}}).set(v);
}

// The object describeCluster (host == nullptr) or describeHost builds.
rapidjson::Document describe(const AdminView& view, const ClusterConfig& c,
                             const Address* host = nullptr) {
  std::vector<ClusterConfig> clusters = {c};
  AdminContext ctx{clusters, 1};
  rapidjson::Document doc(rapidjson::kObjectType);
  if (host == nullptr) {
    view.describeCluster(ctx, c, doc, doc.GetAllocator());
  } else {
    view.describeHost(ctx, c, *host, doc, doc.GetAllocator());
  }
  return doc;
}

TEST(BreakerAdminView, ClusterWithoutBreakerShowsNothingAndHostsNone) {
  BreakerAdminView view;
  ClusterConfig c = cluster("view-none", {"127.0.0.1:9100"});
  rapidjson::Document cl = describe(view, c);
  EXPECT_FALSE(cl.HasMember("breaker"));
  EXPECT_EQ(cl.MemberCount(), 0u);
  rapidjson::Document h = describe(view, c, &c.hosts[0]);
  ASSERT_TRUE(h.HasMember("breaker"));
  EXPECT_STREQ(h["breaker"].GetString(), "none");
}

TEST(BreakerAdminView, ClusterStateAndHostStatesFallingBackToTheCluster) {
  BreakerAdminView view;
  ClusterConfig c = cluster("view-states", {"127.0.0.1:9200", "127.0.0.1:9201"});
  setState(c.name, "*", 1);
  setState(c.name, "127.0.0.1:9200", 2);
  // Another cluster's gauge with the same host must not leak in.
  setState("view-states-other", "127.0.0.1:9201", 1);
  rapidjson::Document cl = describe(view, c);
  ASSERT_TRUE(cl.HasMember("breaker"));
  EXPECT_STREQ(cl["breaker"].GetString(), "open");
  EXPECT_STREQ(describe(view, c, &c.hosts[0])["breaker"].GetString(), "half_open");
  EXPECT_STREQ(describe(view, c, &c.hosts[1])["breaker"].GetString(), "open")
      << "a host without its own breaker shows the cluster's";
  setState(c.name, "*", 0);
  EXPECT_STREQ(describe(view, c)["breaker"].GetString(), "closed");
  EXPECT_STREQ(describe(view, c, &c.hosts[1])["breaker"].GetString(), "closed");
}

TEST(BreakerAdminView, HostBreakerWithoutClusterBreaker) {
  BreakerAdminView view;
  ClusterConfig c = cluster("view-hostonly", {"127.0.0.1:9300", "127.0.0.1:9301"});
  setState(c.name, "127.0.0.1:9300", 1);
  EXPECT_FALSE(describe(view, c).HasMember("breaker"));
  EXPECT_STREQ(describe(view, c, &c.hosts[0])["breaker"].GetString(), "open");
  EXPECT_STREQ(describe(view, c, &c.hosts[1])["breaker"].GetString(), "none");
}

TEST(BreakerAdminView, UnexpectedGaugeValueIsUnknown) {
  ClusterConfig c = cluster("view-unknown", {"127.0.0.1:9400"});
  setState(c.name, "*", 7);
  EXPECT_STREQ(describe(BreakerAdminView(), c)["breaker"].GetString(), "unknown");
  EXPECT_EQ(BreakerAdminView::stateOf(c.name, "*"), "unknown");
  EXPECT_EQ(BreakerAdminView::stateOf(c.name, "127.0.0.1:9400"), std::nullopt);
}

TEST(BreakerAdminView, TheRegisteredBreakerTypeReturnsIt) {
  const FilterConfigFactory* f = FilterRegistry::get().find("breaker");
  ASSERT_NE(f, nullptr);
  const AdminView* view = f->adminView();
  ASSERT_NE(view, nullptr);
  ClusterConfig c = cluster("view-registered", {"127.0.0.1:9500"});
  setState(c.name, "*", 2);
  EXPECT_STREQ(describe(*view, c)["breaker"].GetString(), "half_open");
  EXPECT_STREQ(describe(*view, c, &c.hosts[0])["breaker"].GetString(), "half_open");
}

}  // namespace
}  // namespace breaker
}  // namespace gw
