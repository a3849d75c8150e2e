// Plugins end to end, with the real gateway binary (docs/plugins.md):
// - the gateway loads //plugins/example:example_msg_filter.so listed in
//   "plugins", logs the load, and runs the filter in a chain (denied
//   msg_ids get an error frame, other frames reach backend_sim and back);
// - a missing file or a plugin built for another SDK ABI is a config error
//   at /plugins/N, at start and in --check-config;
// - --list-filters --config FILE lists the plugins' filters;
// - SIGHUP reloads: the same plugin set works; a new plugin is loaded; a
//   loaded plugin named at a new path, or whose file changed, is refused
//   with "restart the gateway to load it" — and later reloads still work.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdio.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/sdk/error_frame.h"
#include "core/sdk/wire.h"
#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/harness/process.h"
#include "test/harness/runfiles.h"
#include "test/integration/ops_test.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string examplePlugin() { return runfile("plugins/example/example_msg_filter.so"); }
std::string countPlugin() { return runfile("test/plugins/count_plugin.so"); }

// A gateway config loading `plugins`; the chain is framing, plugin_count
// (when `count`), example_msg_filter denying 666, upstream to the backend.
std::string config(const std::vector<std::string>& plugins, uint16_t backend_port,
                   bool count = false) {
  std::string list;
  for (const auto& p : plugins) list += (list.empty() ? "\"" : ", \"") + p + "\"";
  return R"({"workers": 1, "drain_timeout": "1s", "admin": {"address": "127.0.0.1:0"},
    "plugins": [)" + list + R"(],
    "listeners": [{"name": "game", "address": "127.0.0.1:0",
      "filters": [{"name": "framing", "config": {}},)" +
         (count ? R"({"name": "plugin_count", "config": {}},)" : "") +
         R"({"name": "example_msg_filter", "config": {"deny_msg_ids": [666]}},
                  {"name": "upstream", "config": {"routes": [{"match": "200:0", "cluster": "game"}]}}]}],
    "clusters": [{"name": "game", "hosts": ["127.0.0.1:)" +
         std::to_string(backend_port) + R"("]}]})";
}

// A copy of `from` at a new temp path (a new inode, as a fresh build is).
std::string copyOf(const std::string& from) {
  return writeTempFile(readFile(from), "plugin-", ".so");
}

// Puts `from`'s bytes at `path` as an install must: written aside, then
// renamed over (a mapped shared object is never overwritten in place).
bool installAt(const std::string& path, const std::string& from) {
  return ::rename(copyOf(from).c_str(), path.c_str()) == 0;
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

class PluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    // Port 0: a port the kernel picks, read back from its "listening on" line.
    ASSERT_TRUE(sim_.start({runfile("tools/backend_sim/backend_sim"), "--address", "127.0.0.1:0"},
                           &error))
        << error;
    backend_port_ = waitForListeningPort(sim_, "backend_sim", seconds(10));
    ASSERT_NE(backend_port_, 0) << sim_.output();
  }

  void start(const std::vector<std::string>& plugins) {
    std::string error;
    ASSERT_TRUE(gateway_.start(config(plugins, backend_port_), &error)) << error;
  }

  // Rewrites the config file, sends SIGHUP and waits for `outcome` (a log
  // line's text) to appear `times` times in the output.
  void reload(const std::string& json, const std::string& outcome, size_t times = 1) {
    ASSERT_TRUE(writeFile(gateway_.configPath(), json));
    ASSERT_TRUE(gateway_.process().signal(SIGHUP));
    ASSERT_TRUE(waitUntil([&] { return count(gateway_.output(), outcome) >= times; }))
        << "no '" << outcome << "'\n"
        << gateway_.output();
  }

  // A new client: msg 666 is refused by example_msg_filter, msg 7 comes back.
  void expectChainWorks() {
    UniqueFd c = connectTcp(gateway_.listenerPort("game"));
    ASSERT_TRUE(c.valid());
    uint32_t sid = wire::ClientHeader::makeServerId(0, 200, 0);
    ASSERT_TRUE(sendAll(c.get(), encodeClientFrame(666, sid, "denied")));
    ClientFrame f;
    ASSERT_TRUE(recvClientFrame(c.get(), milliseconds(3000), &f)) << gateway_.output();
    EXPECT_EQ(f.header.msg_id, kErrorMsgId);
    EXPECT_EQ(f.payload, errorFramePayload(ErrorCode::kNoRoute, 666));
    ASSERT_TRUE(sendAll(c.get(), encodeClientFrame(7, sid, "allowed")));
    ASSERT_TRUE(recvClientFrame(c.get(), milliseconds(3000), &f)) << gateway_.output();
    EXPECT_EQ(f.header.msg_id, 7);
    EXPECT_EQ(f.payload, "allowed");
  }

  Process sim_;
  uint16_t backend_port_ = 0;
  GatewayProcess gateway_;
};

TEST_F(PluginTest, GatewayLoadsPluginLogsItAndRunsItsFilter) {
  start({examplePlugin()});
  EXPECT_NE(gateway_.output().find("plugin 'example_msg_filter' 1.0.0 loaded from " +
                                   examplePlugin() + " (filters: example_msg_filter)"),
            std::string::npos)
      << gateway_.output();
  expectChainWorks();
  EXPECT_EQ(gateway_.stop(), 0);
}

// --check-config (and start) refuse a plugin they cannot use, naming the
// JSON pointer, the file and what differs.
std::string checkConfigOutput(const std::string& plugin) {
  std::string path = writeTempFile(config({plugin}, 9), "plugin-", ".json");
  std::string out;
  EXPECT_EQ(runCommand({GatewayProcess::binary(), "--check-config", path}, &out), 1) << out;
  return out;
}

TEST(PluginCheckConfigTest, MissingPluginFileIsAConfigError) {
  std::string out = checkConfigOutput("/nonexistent/plugin.so");
  EXPECT_NE(out.find(": /plugins/0: /nonexistent/plugin.so: cannot read the plugin file: No such "
                     "file or directory"),
            std::string::npos)
      << out;
}

TEST(PluginCheckConfigTest, PluginForAnotherSdkAbiIsAConfigError) {
  std::string plugin = runfile("test/plugins/test_plugin_sdk_abi.so");
  std::string out = checkConfigOutput(plugin);
  EXPECT_NE(out.find(": /plugins/0: " + plugin + ": built for SDK ABI "), std::string::npos)
      << out;
  EXPECT_NE(out.find(": rebuild the plugin against this gateway's SDK"), std::string::npos) << out;
}

TEST(PluginCheckConfigTest, ValidPluginPassesCheckConfig) {
  std::string path = writeTempFile(config({examplePlugin()}, 9), "plugin-", ".json");
  std::string out;
  EXPECT_EQ(runCommand({GatewayProcess::binary(), "--check-config", path}, &out), 0) << out;
  EXPECT_NE(out.find("plugin 'example_msg_filter' 1.0.0 loaded from"), std::string::npos) << out;
}

TEST(PluginCheckConfigTest, ListFiltersWithConfigListsPluginFilters) {
  std::string path = writeTempFile(config({examplePlugin(), countPlugin()}, 9), "plugin-", ".json");
  std::string out;
  EXPECT_EQ(runCommand({GatewayProcess::binary(), "--list-filters", "--config", path}, &out), 0)
      << out;
  EXPECT_NE(out.find("\nframing\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nexample_msg_filter (plugin example_msg_filter 1.0.0, " + examplePlugin() +
                     ")\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\nplugin_count (plugin count_plugin 1.0.0, " + countPlugin() + ")\n"),
            std::string::npos)
      << out;
  // A refused plugin makes it fail the way the start would.
  std::string bad = writeTempFile(config({"/nonexistent/plugin.so"}, 9), "plugin-", ".json");
  EXPECT_EQ(runCommand({GatewayProcess::binary(), "--list-filters", "--config", bad}, &out), 1);
  EXPECT_NE(out.find(bad + ": /plugins/0: /nonexistent/plugin.so: cannot read"), std::string::npos)
      << out;
}

TEST_F(PluginTest, SighupWithTheSamePluginsWorks) {
  start({examplePlugin()});
  reload(config({examplePlugin()}, backend_port_), "config reload 2 applied on every worker");
  EXPECT_EQ(count(gateway_.output(), "plugin 'example_msg_filter' 1.0.0 loaded"), 1u);
  expectChainWorks();
  EXPECT_EQ(gateway_.stop(), 0);
}

TEST_F(PluginTest, SighupAddingAPluginLoadsIt) {
  start({examplePlugin()});
  reload(config({examplePlugin(), countPlugin()}, backend_port_, true),
         "config reload 2 applied on every worker");
  EXPECT_NE(gateway_.output().find("plugin 'count_plugin' 1.0.0 loaded from " + countPlugin() +
                                   " (filters: plugin_count)"),
            std::string::npos)
      << gateway_.output();
  expectChainWorks();
  EXPECT_EQ(gateway_.stop(), 0);
}

// Before plugin reload rules, this failed with "filter name
// 'example_msg_filter' is registered twice", and every later reload was
// refused the same way until a restart.
TEST_F(PluginTest, SighupNamingALoadedPluginAtANewPathNeedsARestartAndPoisonsNothing) {
  start({examplePlugin()});
  std::string moved = copyOf(examplePlugin());
  reload(config({moved}, backend_port_), "config reload refused: 1 config error");
  EXPECT_NE(gateway_.output().find("/plugins/0: " + moved +
                                   ": plugin 'example_msg_filter' is already loaded from " +
                                   examplePlugin() +
                                   " (version 1.0.0); a running gateway cannot load it again "
                                   "from another file: restart the gateway to load it"),
            std::string::npos)
      << gateway_.output();
  // The original set again, then a new plugin: both accepted.
  reload(config({examplePlugin()}, backend_port_), "config reload 2 applied on every worker");
  reload(config({examplePlugin(), countPlugin()}, backend_port_, true),
         "config reload 3 applied on every worker");
  EXPECT_EQ(gateway_.output().find("registered twice"), std::string::npos) << gateway_.output();
  expectChainWorks();
  EXPECT_EQ(gateway_.stop(), 0);
}

TEST_F(PluginTest, SighupWithAChangedPluginFileNeedsARestartAndPoisonsNothing) {
  std::string path = copyOf(examplePlugin());
  start({path});
  // A rebuilt file at the same path (dlopen() would hand back the old code).
  ASSERT_TRUE(installAt(path, countPlugin()));
  reload(config({path}, backend_port_), "config reload refused: 1 config error");
  EXPECT_NE(gateway_.output().find(path + ": the file changed since plugin 'example_msg_filter' "
                                          "1.0.0 was loaded from it (content hash "),
            std::string::npos)
      << gateway_.output();
  EXPECT_NE(gateway_.output().find("a running gateway cannot replace a plugin's code: restart the "
                                   "gateway to load it"),
            std::string::npos);
  // The loaded bytes back: accepted.
  ASSERT_TRUE(installAt(path, examplePlugin()));
  reload(config({path}, backend_port_), "config reload 2 applied on every worker");
  expectChainWorks();
  EXPECT_EQ(gateway_.stop(), 0);
}

}  // namespace
}  // namespace test
}  // namespace gw
