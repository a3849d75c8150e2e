// test/integration/reply_watchdog_test.cc — a blackholed backend through the
// real gateway (issue 14, defect 6): upstream's reply watchdog.
//
// The backend is a RecordingBackend polled by the test: it accepts and
// reads but writes nothing until told to. A cluster without expect_reply
// and a short silence_timeout: frames go out, nothing comes back, the
// client hears nothing (no reply, no error) — but
// game_gateway_upstream_host_silent goes to 1, the episode is counted and
// logged once; the backend answers, the gauge goes back to 0.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "core/sdk/wire.h"
#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/harness/recording_backend.h"
#include "test/integration/ops_test.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const uint32_t kGame = wire::ClientHeader::makeServerId(0, 200, 1);  // route 200:0 -> game

size_t countOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(ReplyWatchdog, ABlackholedBackendBecomesASilentHostUntilItAnswers) {
  RecordingBackend backend;
  GatewayProcess gw;
  std::string err;
  ASSERT_TRUE(gw.start(R"({"workers": 1, "drain_timeout": "1s", "admin": )" + testAdminJson() +
                           R"(, "listeners": [{"name": "game", "address": "127.0.0.1:0",
        "filters": [{"name": "framing", "config": {}},
                    {"name": "upstream", "config": {"routes": [{"match": "200:0", "cluster": "game"}]}}]}],
      "clusters": [{"name": "game", "hosts": [")" + backend.address() +
                           R"("], "silence_timeout": "1s"}]})",
                       &err))
      << err;
  uint16_t port = gw.listenerPort("game");
  uint16_t admin = adminPort(gw);
  ASSERT_NE(port, 0);
  ASSERT_NE(admin, 0);
  const std::string labels = "{cluster=\"game\",host=\"" + backend.address() + "\"}";
  auto metric = [&](const std::string& name) -> std::optional<double> {
    return metricValue(httpRequest(admin, "GET", "/metrics").body, name + labels);
  };
  EXPECT_EQ(metric("game_gateway_upstream_host_silent"), 0.0);

  UniqueFd client = connectTcp(port);
  ASSERT_TRUE(client.valid());
  auto t0 = std::chrono::steady_clock::now();
  // Frames every 100 ms for 2 s: the backend reads them and says nothing.
  ClientFrame r;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(sendAll(client.get(), encodeClientFrame(static_cast<uint16_t>(i), kGame, "hi")));
    backend.poll();
    EXPECT_FALSE(recvClientFrame(client.get(), milliseconds(100), &r))
        << "a blackholed backend gives the client nothing";
  }
  ASSERT_TRUE(waitUntil([&] {
    backend.poll();
    return metric("game_gateway_upstream_host_silent") == 1.0;
  }, seconds(5)))
      << gw.output();
  std::cout << "silent after "
            << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0)
                   .count()
            << "ms" << std::endl;
  EXPECT_EQ(metric("game_gateway_upstream_silences_total"), 1.0);
  EXPECT_EQ(countOf(gw.output(), "silent: frames were sent to it"), 1u) << gw.output();

  // More frames while silent: still one episode, one log line.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(sendAll(client.get(), encodeClientFrame(50, kGame, "still there?")));
    std::this_thread::sleep_for(milliseconds(100));
  }
  backend.poll();
  EXPECT_EQ(metric("game_gateway_upstream_silences_total"), 1.0);
  EXPECT_EQ(countOf(gw.output(), "silent: frames were sent to it"), 1u);

  // The backend answers: the host is no longer silent.
  ASSERT_EQ(backend.dataSessions().size(), 1u);
  uint64_t session = *backend.dataSessions().begin();
  backend.sendToAll(encodeServerFrame(wire::Opcode::kData, 7, session, "at last"));
  ASSERT_TRUE(recvClientFrame(client.get(), milliseconds(3000), &r));
  EXPECT_EQ(r.payload, "at last");
  ASSERT_TRUE(waitUntil([&] { return metric("game_gateway_upstream_host_silent") == 0.0; },
                        seconds(3)))
      << gw.output();
  // The log line is written before the gauge drops, but reaches the test
  // through a pipe: wait for it rather than read it once.
  EXPECT_TRUE(waitUntil(
      [&] { return gw.output().find("no longer silent (a frame came)") != std::string::npos; },
      seconds(3)))
      << gw.output();
  client.reset();
  EXPECT_EQ(gw.stop(), 0);
}

}  // namespace
}  // namespace test
}  // namespace gw
