// Tests of gw::config::loadString / loadFile (config/loader.h): what a valid
// config parses to, and the exact text of every kind of error an operator
// can get (JSON pointer, what is wrong, how to fix it).
//
// Linked filters: tcp_proxy, plus the test-only filters of test_filters.cc.
#include "config/loader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test/harness/runfiles.h"

namespace gw {
namespace config {
namespace {

using Errors = std::vector<std::string>;

// A config with one listener "game" on 127.0.0.1:8080 whose filter list is
// `filters` (JSON array text), and one cluster "echo".
std::string withFilters(const std::string& filters) {
  return R"({"listeners": [{"name": "game", "address": "127.0.0.1:8080", "filters": )" + filters +
         R"(}], "clusters": [{"name": "echo", "hosts": ["127.0.0.1:9000"]}]})";
}

// The errors of loading `json` as "test.json" (empty when it loads).
Errors errorsOf(const std::string& json) {
  LoadResult r = loadString(json, "test.json");
  EXPECT_EQ(r.config == nullptr, !r.errors.empty());
  return r.errors;
}

constexpr char kRegistered[] =
    "'tcp_proxy', 'test_bytes', 'test_codec', 'test_frames', 'test_terminal'";

TEST(LoaderTest, ValidConfigLoadsEveryField) {
  LoadResult r = loadString(R"({
    "workers": 3,
    "log_level": "debug",
    "drain_timeout": "30s",
    "admin": {"address": "127.0.0.1:19901"},
    "listeners": [
      {"name": "game", "address": "0.0.0.0:8080", "backlog": 512,
       "output_high_watermark": 131072, "max_output_bytes": 1048576,
       "filters": [{"name": "test_codec"}, {"name": "test_frames", "config": {"limit": 3}},
                   {"name": "test_terminal", "config": {}}]},
      {"name": "raw", "address": "[::1]:8081",
       "filters": [{"name": "test_bytes"}, {"name": "tcp_proxy", "config": {"cluster": "echo"}}]}
    ],
    "clusters": [{"name": "echo", "hosts": ["127.0.0.1:9000", "[::1]:9001"],
                  "lb": "least_request", "connect_timeout": "250ms", "idle_timeout": "1m",
                  "max_connections_per_service": 2, "max_connections": 8,
                  "reconnect_backoff_base": "50ms", "reconnect_backoff_max": "2s",
                  "max_pending_frames": 16, "expect_reply": true}]
  })",
                            "test.json");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  ASSERT_NE(r.config, nullptr);
  const GatewayConfig& c = *r.config;
  EXPECT_EQ(c.workers, 3u);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.drain_timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.admin.address.toString(), "127.0.0.1:19901");
  EXPECT_EQ(c.source, "test.json");
  EXPECT_NE(c.json.find("\"workers\": 3"), std::string::npos);

  ASSERT_EQ(c.listeners.size(), 2u);
  const ListenerConfig& game = c.listeners[0];
  EXPECT_EQ(game.name, "game");
  EXPECT_EQ(game.address.toString(), "0.0.0.0:8080");
  EXPECT_EQ(game.backlog, 512);
  EXPECT_EQ(game.output.high_watermark, 131072u);
  EXPECT_EQ(game.output.low_watermark, 131072u / 4);
  EXPECT_EQ(game.output.max_bytes, 1048576u);
  ASSERT_EQ(game.filters.size(), 3u);
  EXPECT_EQ(game.filters[0].name, "test_codec");
  EXPECT_EQ(game.filters[0].traits.produces, Layer::kFrames);
  EXPECT_EQ(game.filters[1].name, "test_frames");
  EXPECT_TRUE(game.filters[2].traits.terminal);
  for (const auto& f : game.filters) {
    EXPECT_NE(f.factory, nullptr);
    EXPECT_NE(f.config, nullptr);
  }
  EXPECT_EQ(c.listeners[1].address.toString(), "[::1]:8081");
  EXPECT_EQ(c.listeners[1].filters[1].name, "tcp_proxy");

  ASSERT_EQ(c.clusters.size(), 1u);
  const ClusterConfig& echo = c.clusters[0];
  EXPECT_EQ(echo.name, "echo");
  ASSERT_EQ(echo.hosts.size(), 2u);
  EXPECT_EQ(echo.hosts[1].toString(), "[::1]:9001");
  EXPECT_EQ(echo.lb, LbPolicy::kLeastRequest);
  EXPECT_EQ(echo.connect_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(echo.idle_timeout, std::chrono::minutes(1));
  EXPECT_EQ(echo.max_connections_per_service, 2u);
  EXPECT_EQ(echo.max_connections, 8u);
  EXPECT_EQ(echo.reconnect_base, std::chrono::milliseconds(50));
  EXPECT_EQ(echo.reconnect_max, std::chrono::seconds(2));
  EXPECT_EQ(echo.max_pending_frames, 16u);
  EXPECT_TRUE(echo.expect_reply);
}

TEST(LoaderTest, DefaultsApplyWhenFieldsAreAbsent) {
  LoadResult r = loadString(
      withFilters(R"([{"name": "tcp_proxy", "config": {"cluster": "echo"}}])"), "test.json");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  const GatewayConfig& c = *r.config;
  EXPECT_GE(c.workers, 1u);  // hardware threads
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.drain_timeout, std::chrono::seconds(15));
  EXPECT_EQ(c.admin.address.toString(), "127.0.0.1:9901");
  const ListenerConfig& l = c.listeners[0];
  EXPECT_EQ(l.backlog, 1024);
  EXPECT_EQ(l.output.high_watermark, 64u * 1024);
  EXPECT_EQ(l.output.low_watermark, 16u * 1024);
  EXPECT_EQ(l.output.max_bytes, 4u * 1024 * 1024);
  EXPECT_EQ(c.clusters[0].lb, LbPolicy::kRoundRobin);
  EXPECT_EQ(c.clusters[0].connect_timeout, std::chrono::seconds(5));
  // Dead-peer detection is on by default on both sides.
  for (const TcpLiveness* t : {&l.liveness, &c.clusters[0].liveness}) {
    EXPECT_TRUE(t->keepalive);
    EXPECT_EQ(t->keepalive_idle, std::chrono::seconds(30));
    EXPECT_EQ(t->keepalive_interval, std::chrono::seconds(10));
    EXPECT_EQ(t->keepalive_count, 3);
    EXPECT_EQ(t->user_timeout, std::chrono::seconds(30));
  }
}

TEST(LoaderTest, TcpKeepaliveAndUserTimeoutOfListenersAndClusters) {
  LoadResult r = loadString(
      R"({"listeners": [{"name": "game", "address": "127.0.0.1:8080",
                         "tcp_keepalive": {"enabled": false}, "tcp_user_timeout": "0s",
                         "filters": [{"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
          "clusters": [{"name": "echo", "hosts": ["127.0.0.1:9000"],
                        "tcp_keepalive": {"idle": "1m", "interval": "5s", "count": 4},
                        "tcp_user_timeout": "1500ms"}]})",
      "test.json");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  const TcpLiveness& l = r.config->listeners[0].liveness;
  EXPECT_FALSE(l.keepalive);
  EXPECT_EQ(l.user_timeout.count(), 0);
  const TcpLiveness& c = r.config->clusters[0].liveness;
  EXPECT_TRUE(c.keepalive);
  EXPECT_EQ(c.keepalive_idle, std::chrono::seconds(60));
  EXPECT_EQ(c.keepalive_interval, std::chrono::seconds(5));
  EXPECT_EQ(c.keepalive_count, 4);
  EXPECT_EQ(c.user_timeout, std::chrono::milliseconds(1500));
  // The kernel counts keepalive in whole seconds, up to 32767.
  Errors e = errorsOf(R"({"listeners": [{"name": "game", "address": "127.0.0.1:8080",
                          "filters": [{"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
      "clusters": [{"name": "echo", "hosts": ["127.0.0.1:9000"],
                    "tcp_keepalive": {"idle": "1500ms", "interval": "10h", "count": 0}}]})");
  ASSERT_EQ(e.size(), 1u) << e[0];  // the schema (count >= 1) answers first
  EXPECT_NE(e[0].find("/clusters/0/tcp_keepalive/count"), std::string::npos) << e[0];
  e = errorsOf(R"({"listeners": [{"name": "game", "address": "127.0.0.1:8080",
                   "filters": [{"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
      "clusters": [{"name": "echo", "hosts": ["127.0.0.1:9000"],
                    "tcp_keepalive": {"idle": "1500ms", "interval": "10h"}}]})");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_NE(e[0].find("/clusters/0/tcp_keepalive/idle"), std::string::npos) << e[0];
  EXPECT_NE(e[0].find("whole seconds from 1s to 32767s (got \"1500ms\")"), std::string::npos)
      << e[0];
  EXPECT_NE(e[1].find("/clusters/0/tcp_keepalive/interval"), std::string::npos) << e[1];
}

TEST(LoaderTest, ShippedTcpProxyExampleLoads) {
  std::string path = test::runfile("config/tcp_proxy.json");
  LoadResult r = loadFile(path);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  EXPECT_EQ(r.config->source, path);
  EXPECT_EQ(r.config->listeners[0].filters[0].name, "tcp_proxy");
}

TEST(LoaderTest, MissingFileSaysSo) {
  LoadResult r = loadFile("/nonexistent/gateway.json");
  EXPECT_EQ(r.config, nullptr);
  EXPECT_EQ(r.errors, (Errors{"/nonexistent/gateway.json: cannot open the file"}));
}

TEST(LoaderTest, MalformedJsonGivesLineColumnAndOffset) {
  // The stray comma is on line 3, column 17, byte offset 2 + 16 + 16 = 34.
  EXPECT_EQ(errorsOf("{\n  \"workers\": 2,\n  \"listeners\": [,]\n}"),
            (Errors{"test.json: malformed JSON at line 3, column 17 (offset 34): Invalid value."}));
  EXPECT_EQ(errorsOf("{\"workers\": 2"),
            (Errors{"test.json: malformed JSON at line 1, column 14 (offset 13): Missing a comma "
                    "or '}' after an object member."}));
  EXPECT_EQ(errorsOf(""),
            (Errors{"test.json: malformed JSON at line 1, column 1 (offset 0): The document is "
                    "empty."}));
}

TEST(LoaderTest, UnknownFilterListsTheRegisteredNames) {
  EXPECT_EQ(
      errorsOf(withFilters(R"([{"name": "test_codec"}, {"name": "sesion"}])")),
      (Errors{std::string("test.json: /listeners/0/filters/1/name: unknown filter "
                          "\"sesion\"; registered filters: ") +
              kRegistered + " (a custom filter must be linked in or listed in \"plugins\")"}));
}

TEST(LoaderTest, WrongFieldTypeNamesThePointerAndTheExpectedType) {
  EXPECT_EQ(errorsOf(withFilters(R"([{"name": "tcp_proxy", "config": {"cluster": 5}}])")),
            (Errors{"test.json: /listeners/0/filters/0/config/cluster: must be a string that is "
                    "not empty, got 5"}));
  EXPECT_EQ(errorsOf(R"({"workers": "two", "listeners": []})"),
            (Errors{"test.json: /workers: must be an integer ≥ 0 and ≤ 256, got \"two\""}));
  EXPECT_EQ(errorsOf(withFilters(R"({"name": "tcp_proxy"})")),
            (Errors{"test.json: /listeners/0/filters: must be an array with at least 1 items, "
                    "got {\"name\":\"tcp_proxy\"}"}));
}

TEST(LoaderTest, OutOfRangeEnumAndPatternErrorsSayWhatIsAllowed) {
  EXPECT_EQ(errorsOf(withFilters(
                R"([{"name": "test_codec"}, {"name": "test_frames", "config": {"limit": 11}},
                    {"name": "test_terminal"}])")),
            (Errors{"test.json: /listeners/0/filters/1/config/limit: must be an integer ≥ 1 and "
                    "≤ 10, got 11"}));
  EXPECT_EQ(errorsOf(withFilters(
                R"([{"name": "test_codec"}, {"name": "test_frames", "config": {"mode": "slow"}},
                    {"name": "test_terminal"}])")),
            (Errors{"test.json: /listeners/0/filters/1/config/mode: must be one of \"fast\", "
                    "\"safe\", got \"slow\""}));
  EXPECT_EQ(errorsOf(withFilters(R"([{"name": "tcp_proxy",
                                     "config": {"cluster": "echo", "idle_timeout": "10 min"}}])")),
            (Errors{"test.json: /listeners/0/filters/0/config/idle_timeout: must be a duration "
                    "like \"100ms\", \"30s\", \"5m\" or \"1h\", got \"10 min\""}));
  EXPECT_EQ(errorsOf(R"({"log_level": "verbose", "listeners": []})"),
            (Errors{"test.json: /log_level: must be one of \"trace\", \"debug\", \"info\", "
                    "\"warn\", \"error\", \"off\", got \"verbose\""}));
}

TEST(LoaderTest, UnknownKeysAreErrorsThatListTheAllowedKeys) {
  EXPECT_EQ(errorsOf(withFilters(
                R"([{"name": "tcp_proxy", "config": {"cluster": "echo", "clutser": "x"}}])")),
            (Errors{"test.json: /listeners/0/filters/0/config/clutser: unknown key \"clutser\" "
                    "(allowed: buffer_high_watermark, cluster, idle_timeout)"}));
  // Top level: the allowed list grows with the gateway's schema; check its
  // form and a few members.
  Errors top = errorsOf(R"({"worker": 2, "listeners": []})");
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].rfind("test.json: /worker: unknown key \"worker\" (allowed: ", 0), 0u) << top[0];
  for (const char* key : {" admin,", " clusters,", " listeners,", " workers)"})
    EXPECT_NE(top[0].find(key), std::string::npos) << top[0];
}

TEST(LoaderTest, MissingRequiredKeyIsNamed) {
  EXPECT_EQ(errorsOf(R"({"listeners": [{"name": "game", "address": "127.0.0.1:1"}]})"),
            (Errors{"test.json: /listeners/0: missing required key \"filters\""}));
  EXPECT_EQ(errorsOf(withFilters(R"([{"name": "tcp_proxy", "config": {}}])")),
            (Errors{"test.json: /listeners/0/filters/0/config: missing required key "
                    "\"cluster\""}));
}

TEST(LoaderTest, FramesFilterBeforeTheCodecSaysToAddTheCodec) {
  EXPECT_EQ(errorsOf(withFilters(R"([{"name": "test_frames"}, {"name": "test_terminal"}])")),
            (Errors{"test.json: /listeners/0/filters/0: filter #1 'test_frames' consumes frames, "
                    "but no filter before it produces frames: add 'test_codec' before it"}));
  // The terminal itself consumes frames too.
  EXPECT_EQ(errorsOf(withFilters(R"([{"name": "test_bytes"}, {"name": "test_terminal"}])")),
            (Errors{"test.json: /listeners/0/filters/1: filter #2 'test_terminal' consumes "
                    "frames, but no filter before it produces frames: add 'test_codec' before "
                    "it"}));
}

TEST(LoaderTest, BytesFilterAfterTheCodecSaysToMoveIt) {
  EXPECT_EQ(errorsOf(withFilters(
                R"([{"name": "test_codec"}, {"name": "test_bytes"}, {"name": "test_terminal"}])")),
            (Errors{"test.json: /listeners/0/filters/1: filter #2 'test_bytes' consumes bytes, "
                    "but the filters before it already decoded them into frames: move "
                    "'test_bytes' before the codec"}));
}

TEST(LoaderTest, ChainWithoutTerminalSaysWhichTerminalsFit) {
  EXPECT_EQ(errorsOf(withFilters(R"([{"name": "test_codec"}, {"name": "test_frames"}])")),
            (Errors{"test.json: /listeners/0/filters/1: the chain ends with filter #2 "
                    "'test_frames', which is not terminal: add a terminal filter that consumes "
                    "frames ('test_terminal') at the end"}));
  EXPECT_EQ(errorsOf(withFilters(R"([{"name": "test_bytes"}])")),
            (Errors{"test.json: /listeners/0/filters/0: the chain ends with filter #1 "
                    "'test_bytes', which is not terminal: add a terminal filter that consumes "
                    "bytes ('tcp_proxy') at the end"}));
}

TEST(LoaderTest, FilterAfterTheTerminalIsRejected) {
  EXPECT_EQ(errorsOf(withFilters(R"([{"name": "tcp_proxy", "config": {"cluster": "echo"}},
                                    {"name": "test_bytes"}])")),
            (Errors{"test.json: /listeners/0/filters/0: filter #1 'tcp_proxy' is terminal and "
                    "must be last, but 1 filter follows it: remove it or move 'tcp_proxy' to "
                    "the end"}));
  EXPECT_EQ(errorsOf(withFilters(R"([{"name": "test_codec"}, {"name": "test_terminal"},
                                    {"name": "test_frames"}, {"name": "test_terminal"}])")),
            (Errors{"test.json: /listeners/0/filters/1: filter #2 'test_terminal' is terminal "
                    "and must be last, but 2 filters follow it: remove them or move "
                    "'test_terminal' to the end"}));
}

TEST(LoaderTest, UnknownClusterListsTheDefinedOnes) {
  EXPECT_EQ(errorsOf(withFilters(R"([{"name": "tcp_proxy", "config": {"cluster": "echoo"}}])")),
            (Errors{"test.json: /listeners/0/filters/0/config/cluster: unknown cluster "
                    "\"echoo\"; defined clusters: echo"}));
  EXPECT_EQ(errorsOf(R"({"listeners": [{"name": "raw", "address": "127.0.0.1:1",
                     "filters": [{"name": "tcp_proxy", "config": {"cluster": "echo"}}]}]})"),
            (Errors{"test.json: /listeners/0/filters/0/config/cluster: unknown cluster \"echo\"; "
                    "defined clusters: (none: add one under /clusters)"}));
}

TEST(LoaderTest, FilterSemanticErrorsCarryTheFiltersPointer) {
  EXPECT_EQ(errorsOf(withFilters(R"([{"name": "test_codec"},
                                    {"name": "test_frames", "config": {"limit": 8, "strict": true}},
                                    {"name": "test_terminal"}])")),
            (Errors{"test.json: /listeners/0/filters/1/config/limit: must be ≤ 5 when \"strict\" "
                    "is true"}));
  // A parser that fails without saying why still gets a pointer.
  EXPECT_EQ(errorsOf(withFilters(R"([{"name": "test_codec"},
                                    {"name": "test_frames", "config": {"reject": true}},
                                    {"name": "test_terminal"}])")),
            (Errors{"test.json: /listeners/0/filters/1/config: invalid config"}));
}

TEST(LoaderTest, DuplicateNamesAreRejected) {
  EXPECT_EQ(errorsOf(R"({"listeners": [
      {"name": "game", "address": "127.0.0.1:1", "filters": [{"name": "test_bytes"},
        {"name": "tcp_proxy", "config": {"cluster": "echo"}}]},
      {"name": "game", "address": "127.0.0.1:2", "filters": [
        {"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
    "clusters": [{"name": "echo", "hosts": ["127.0.0.1:9000"]}]})"),
            (Errors{"test.json: /listeners/1/name: duplicate listener name \"game\""}));
  EXPECT_EQ(errorsOf(R"({"listeners": [{"name": "game", "address": "127.0.0.1:1", "filters": [
        {"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
    "clusters": [{"name": "echo", "hosts": ["127.0.0.1:9000"]},
                 {"name": "echo", "hosts": ["127.0.0.1:9001"]}]})"),
            (Errors{"test.json: /clusters/1/name: duplicate cluster name \"echo\""}));
}

TEST(LoaderTest, BadAddressesNameTheirPointer) {
  EXPECT_EQ(errorsOf(R"({"listeners": [{"name": "game", "address": "localhost:8080",
                     "filters": [{"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
                     "clusters": [{"name": "echo", "hosts": ["127.0.0.1:9000"]}]})"),
            (Errors{"test.json: /listeners/0/address: \"localhost\" is not an IPv4 or IPv6 "
                    "address (host names are not resolved)"}));
  EXPECT_EQ(errorsOf(R"({"admin": {"address": "127.0.0.1"}, "listeners": [{"name": "game",
                     "address": "127.0.0.1:1", "filters": [{"name": "tcp_proxy",
                     "config": {"cluster": "echo"}}]}],
                     "clusters": [{"name": "echo", "hosts": ["127.0.0.1:9000", "::1:9000"]}]})"),
            (Errors{"test.json: /admin/address: expected \"ip:port\", got \"127.0.0.1\"",
                    "test.json: /clusters/0/hosts/1: IPv6 addresses need brackets: "
                    "\"[::1]:port\""}));
}

TEST(LoaderTest, ClusterAndListenerLimitsAreChecked) {
  EXPECT_EQ(errorsOf(R"({"listeners": [{"name": "game", "address": "127.0.0.1:1",
                     "output_high_watermark": 65536, "max_output_bytes": 4096,
                     "filters": [{"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
                     "clusters": [{"name": "echo", "hosts": ["127.0.0.1:9000"],
                                   "connect_timeout": "0ms", "reconnect_backoff_base": "1m",
                                   "reconnect_backoff_max": "10s"}]})"),
            (Errors{"test.json: /clusters/0/connect_timeout: must be > 0",
                    "test.json: /clusters/0/reconnect_backoff_base: must not exceed "
                    "reconnect_backoff_max",
                    "test.json: /listeners/0/max_output_bytes: must be ≥ output_high_watermark "
                    "(65536)"}));
}

TEST(LoaderTest, ErrorsInSeveralListenersAreAllReported) {
  Errors errors = errorsOf(R"({"listeners": [
      {"name": "a", "address": "127.0.0.1:x", "filters": [{"name": "test_frames"},
                                                         {"name": "test_terminal"}]},
      {"name": "b", "address": "127.0.0.1:2", "filters": [{"name": "nope"}]}]})");
  EXPECT_EQ(
      errors,
      (Errors{"test.json: /listeners/0/address: bad port in \"127.0.0.1:x\"",
              "test.json: /listeners/0/filters/0: filter #1 'test_frames' consumes frames, "
              "but no filter before it produces frames: add 'test_codec' before it",
              std::string("test.json: /listeners/1/filters/0/name: unknown filter \"nope\"; "
                          "registered filters: ") +
                  kRegistered + " (a custom filter must be linked in or listed in \"plugins\")"}));
}

}  // namespace
}  // namespace config
}  // namespace gw
