// The plugin loader end to end: the real gateway loads
// //plugins/example:example_msg_filter.so listed in "plugins", uses the
// filter it registers in a chain, and the filter refuses denied msg_ids
// while other frames reach backend_sim and come back. A missing plugin file
// is a config error naming the JSON pointer.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "core/sdk/error_frame.h"
#include "core/sdk/wire.h"
#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/harness/process.h"
#include "test/harness/runfiles.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string config(const std::string& plugin, uint16_t backend_port) {
  return R"({"workers": 1, "drain_timeout": "1s", "admin": {"address": "127.0.0.1:0"},
    "plugins": [")" + plugin + R"("],
    "listeners": [{"name": "game", "address": "127.0.0.1:0",
      "filters": [{"name": "framing", "config": {}},
                  {"name": "example_msg_filter", "config": {"deny_msg_ids": [666]}},
                  {"name": "upstream", "config": {"routes": [{"match": "200:0", "cluster": "game"}]}}]}],
    "clusters": [{"name": "game", "hosts": ["127.0.0.1:)" + std::to_string(backend_port) + R"("]}]})";
}

TEST(PluginTest, GatewayLoadsPluginAndRunsItsFilter) {
  Process sim;
  std::string error;
  // Port 0: a port the kernel picks, read back from its "listening on" line.
  ASSERT_TRUE(sim.start({runfile("tools/backend_sim/backend_sim"), "--address", "127.0.0.1:0"},
                        &error))
      << error;
  uint16_t backend_port = waitForListeningPort(sim, "backend_sim", seconds(10));
  ASSERT_NE(backend_port, 0) << sim.output();
  GatewayProcess gateway;
  ASSERT_TRUE(gateway.start(config(runfile("plugins/example/example_msg_filter.so"), backend_port),
                            &error))
      << error;
  UniqueFd c = connectTcp(gateway.listenerPort("game"));
  ASSERT_TRUE(c.valid());
  uint32_t sid = wire::ClientHeader::makeServerId(0, 200, 0);
  ASSERT_TRUE(sendAll(c.get(), encodeClientFrame(666, sid, "denied")));
  ClientFrame f;
  ASSERT_TRUE(recvClientFrame(c.get(), milliseconds(3000), &f));
  EXPECT_EQ(f.header.msg_id, kErrorMsgId);
  EXPECT_EQ(f.payload, errorFramePayload(ErrorCode::kNoRoute, 666));
  ASSERT_TRUE(sendAll(c.get(), encodeClientFrame(7, sid, "allowed")));
  ASSERT_TRUE(recvClientFrame(c.get(), milliseconds(3000), &f));
  EXPECT_EQ(f.header.msg_id, 7);
  EXPECT_EQ(f.payload, "allowed");
  EXPECT_EQ(gateway.stop(), 0);
}

TEST(PluginTest, MissingPluginIsAConfigError) {
  Process check;
  std::string path = writeTempFile(config("/nonexistent/plugin.so", 9), "plugin-", ".json");
  std::string error;
  ASSERT_TRUE(check.start({GatewayProcess::binary(), "--check-config", path}, &error)) << error;
  EXPECT_EQ(check.wait(seconds(10)), 1);
  EXPECT_NE(check.output().find(": /plugins/0: cannot load plugin: "), std::string::npos)
      << check.output();
}

}  // namespace
}  // namespace test
}  // namespace gw
