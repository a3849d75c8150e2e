// Memory goes back after a burst (issue 14, item 7): through the real
// gateway and backend_sim (echo), 300 clients send ~180 MB they do not read
// back, so the gateway's buffers swell; once they close, the gateway's RSS
// must return within 16 MB of its pre-burst value within 30 s. glibc keeps
// freed memory inside its arenas (only the top above M_TRIM_THRESHOLD goes
// back), so without a trim the RSS stayed ~22 MB above the baseline.
//
// Skipped under ASan: its allocator keeps freed memory in quarantine.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/sdk/wire.h"
#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/integration/fleet_test.h"

#if defined(__SANITIZE_ADDRESS__)
#define GW_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GW_UNDER_ASAN 1
#endif
#endif

namespace gw {
namespace test {
namespace {

using namespace std::chrono_literals;

// VmRSS of `pid` in MiB, or -1.
long rssMiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6)) / 1024;
  }
  return -1;
}

TEST(MemoryReturnTest, RssReturnsWithin16MiBOfBaselineAfterABurst) {
#ifdef GW_UNDER_ASAN
  GTEST_SKIP() << "ASan's allocator quarantines freed memory";
#endif
  signal(SIGPIPE, SIG_IGN);
  BackendSim sim;
  std::string error;
  ASSERT_TRUE(sim.start({}, &error)) << error;
  const std::string config = R"({"workers": 2, "drain_timeout": "1s",
    "admin": {"address": "127.0.0.1:0"},
    "listeners": [{"name": "game", "address": "127.0.0.1:0", "filters": [
      {"name": "framing", "config": {"max_frame_bytes": 65535}},
      {"name": "upstream", "config": {"routes": [{"match": "200:0", "cluster": "game"}]}}]}],
    "clusters": [{"name": "game", "hosts": ["127.0.0.1:)" +
                             std::to_string(sim.port()) + R"("]}]})";
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(config, &error)) << error;
  uint16_t port = gw.listenerPort("game");
  ASSERT_NE(port, 0) << gw.output();

  // Warm up (threads, arenas, the backend connections), then the baseline.
  {
    GameClient c;
    ASSERT_TRUE(c.connect(port) && c.roundTrip("warm up"));
  }
  std::this_thread::sleep_for(500ms);
  const long before = rssMiB(gw.pid());
  ASSERT_GT(before, 0);

  constexpr int kClients = 300;
  const std::string payload(60000, 'x');
  std::string burst;
  for (int i = 0; i < 10; ++i) burst += encodeClientFrame(1001, kGameServerId, payload);
  std::vector<UniqueFd> clients;
  std::vector<size_t> sent(kClients, 0);
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connectTcp(port));
    ASSERT_TRUE(clients.back().valid());
    setNonBlocking(clients.back().get(), true);
  }
  auto deadline = std::chrono::steady_clock::now() + 20s;
  size_t total = 0;
  long peak = before;
  auto sample = std::chrono::steady_clock::now();
  while (total < burst.size() * kClients && std::chrono::steady_clock::now() < deadline) {
    if (std::chrono::steady_clock::now() - sample > 100ms) {
      peak = std::max(peak, rssMiB(gw.pid()));
      sample = std::chrono::steady_clock::now();
    }
    for (int i = 0; i < kClients; ++i) {
      if (sent[i] == burst.size()) continue;
      ssize_t n = ::send(clients[i].get(), burst.data() + sent[i],
                         std::min<size_t>(burst.size() - sent[i], 262144), MSG_NOSIGNAL);
      if (n > 0) {
        sent[i] += static_cast<size_t>(n);
        total += static_cast<size_t>(n);
      }
    }
  }
  for (int i = 0; i < 20; ++i) {  // echoes pile up in the gateway's buffers
    std::this_thread::sleep_for(100ms);
    peak = std::max(peak, rssMiB(gw.pid()));
  }
  clients.clear();

  long after = -1;
  auto end = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(1s);
    after = rssMiB(gw.pid());
    if (after <= before + 16) break;
  }
  std::cout << "burst " << total / (1024 * 1024) << " MiB: RSS before " << before
            << " MiB, peak " << peak << " MiB, after " << after << " MiB\n";
  EXPECT_GT(peak, before + 24) << "the burst did not swell the gateway: the test proves nothing";
  EXPECT_LE(after, before + 16) << "RSS did not come back within 30 s";
  // Still serving.
  GameClient c;
  EXPECT_TRUE(c.connect(port) && c.roundTrip("after the burst"));
}

}  // namespace
}  // namespace test
}  // namespace gw
