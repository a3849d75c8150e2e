// Integration test of metric series across a SIGHUP reload, against the real
// gateway binary: the per-host and per-cluster series of the `upstream` and
// `breaker` filters disappear from /metrics once a reload removes their host
// or cluster, and those of the hosts still configured stay.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/integration/ops_test.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// framing -> breaker -> upstream on listener "game"; cluster "game" (route
// 200:0) at `game_hosts`, and when `with_other`, cluster "other" (route
// 201:0) at 127.0.0.1:`other_port`. No traffic is needed: the filters create
// their per-host series when the config is built.
std::string config(const std::vector<uint16_t>& game_hosts, bool with_other, uint16_t other_port) {
  std::string hosts;
  for (uint16_t p : game_hosts)
    hosts += (hosts.empty() ? "" : ", ") + std::string("\"127.0.0.1:") + std::to_string(p) + "\"";
  std::string routes = R"({"match": "200:0", "cluster": "game"})";
  std::string clusters = R"({"name": "game", "hosts": [)" + hosts + "]}";
  if (with_other) {
    routes += R"(, {"match": "201:0", "cluster": "other"})";
    clusters += R"(, {"name": "other", "hosts": ["127.0.0.1:)" + std::to_string(other_port) +
                R"("]})";
  }
  return R"({"workers": 2, "admin": )" + testAdminJson() +
         R"(, "listeners": [{"name": "game", "address": "127.0.0.1:0", "filters": [
             {"name": "framing", "config": {}}, {"name": "breaker", "config": {}},
             {"name": "upstream", "config": {"routes": [)" + routes + R"(]}}]}],
         "clusters": [)" + clusters + "]}";
}

// The sample lines of `text` (no comments) that contain `needle`.
std::vector<std::string> samplesWith(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line[0] != '#' && line.find(needle) != std::string::npos)
      out.push_back(line);
    start = end + 1;
  }
  return out;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

TEST(MetricsReloadTest, ASighupThatRemovesAHostOrClusterDeletesTheirSeries) {
  // Ports nobody listens on: the series exist without connections.
  const uint16_t kept = freePort(), removed = freePort(), other = freePort();
  GatewayProcess gw;
  std::string error;
  ASSERT_TRUE(gw.start(config({kept, removed}, true, other), &error)) << error;
  uint16_t admin = adminPort(gw);
  ASSERT_NE(admin, 0) << gw.output();
  const std::string removed_host = "host=\"127.0.0.1:" + std::to_string(removed) + "\"";
  const std::string kept_host = "host=\"127.0.0.1:" + std::to_string(kept) + "\"";
  const std::string other_cluster = "cluster=\"other\"";

  // Before: every host and both clusters have series of both filters.
  std::string before = httpRequest(admin, "GET", "/metrics").body;
  for (const std::string& family :
       {"game_gateway_upstream_pool_connections{", "game_gateway_upstream_connect_failures_total{",
        "game_gateway_upstream_connections_lost_total{", "game_gateway_upstream_pool_capacity{",
        "game_gateway_upstream_host_silent{", "game_gateway_upstream_silences_total{",
        "game_gateway_circuit_breaker_state{", "game_gateway_circuit_breaker_failures_total{",
        "game_gateway_circuit_breaker_forgiven_failures_total{"}) {
    auto series = samplesWith(before, family);
    EXPECT_FALSE(samplesWith(joined(series), removed_host).empty()) << family << "\n" << before;
    EXPECT_FALSE(samplesWith(joined(series), kept_host).empty()) << family << "\n" << before;
  }
  EXPECT_FALSE(samplesWith(before, other_cluster).empty()) << before;

  // Reload: cluster "game" loses a host, cluster "other" goes.
  ASSERT_TRUE(writeFile(gw.configPath(), config({kept}, false, other)));
  ASSERT_TRUE(gw.process().signal(SIGHUP));
  ASSERT_TRUE(gw.process().waitForOutput("config reload 2 applied on every worker", seconds(5)))
      << gw.output();

  std::string after = httpRequest(admin, "GET", "/metrics").body;
  EXPECT_EQ(joined(samplesWith(after, removed_host)), "") << "series of the removed host remain";
  EXPECT_EQ(joined(samplesWith(after, other_cluster)), "") << "series of the removed cluster remain";
  // The host still configured keeps its series.
  for (const std::string& family :
       {"game_gateway_upstream_pool_connections{", "game_gateway_upstream_pool_capacity{",
        "game_gateway_circuit_breaker_state{"}) {
    EXPECT_FALSE(samplesWith(joined(samplesWith(after, family)), kept_host).empty())
        << family << "\n" << after;
  }
  EXPECT_EQ(gw.stop(), 0);
}

}  // namespace
}  // namespace test
}  // namespace gw
