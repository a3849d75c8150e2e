// Integration tests of operating the real gateway binary: SIGHUP reload
// (new connections follow the new config, an open one keeps its chain, a
// broken file or a changed listener address is refused and the gateway goes
// on serving), SIGTERM drain (exit 0 at once without connections; after the
// last connection; or closing the rest at drain_timeout), SIGINT, and the
// access log (valid JSON lines with the documented fields, sample_rate,
// session and frame counts through the game chain).
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

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
using Clock = std::chrono::steady_clock;

// A backend made here: a listening socket whose accepted connections the
// test reads and writes itself, so it can tell which backend a client's
// connection went to.
struct RawBackend {
  UniqueFd listener = listenTcp(0);
  uint16_t port() const { return localPort(listener.get()); }
  UniqueFd accept(milliseconds timeout = milliseconds(3000)) {
    return acceptTcp(listener.get(), timeout);
  }
};

// Sends `data` from `from` and expects it to arrive whole at `to`.
void expectRelay(int from, int to, const std::string& data) {
  ASSERT_TRUE(sendAll(from, data));
  std::string got;
  ASSERT_TRUE(recvExact(to, data.size(), milliseconds(3000), &got)) << "got '" << got << "'";
  EXPECT_EQ(got, data);
}

class OpsTest : public ::testing::Test {
 protected:
  void start(const std::string& config) {
    std::string error;
    ASSERT_TRUE(gateway_.start(config, &error)) << error;
    admin_ = adminPort(gateway_);
    ASSERT_NE(admin_, 0) << gateway_.output();
    port_ = gateway_.listenerPort("raw");
    ASSERT_NE(port_, 0) << gateway_.output();
  }
  std::string metrics() { return httpRequest(admin_, "GET", "/metrics").body; }
  // Rewrites the config file and sends SIGHUP.
  void reloadWith(const std::string& config) {
    ASSERT_TRUE(writeFile(gateway_.configPath(), config));
    ASSERT_TRUE(gateway_.process().signal(SIGHUP));
  }

  GatewayProcess gateway_;
  uint16_t admin_ = 0;
  uint16_t port_ = 0;
};

TEST_F(OpsTest, SighupReloadSwitchesNewConnectionsAndKeepsOpenOnes) {
  RawBackend a, b;
  ASSERT_TRUE(a.listener.valid() && b.listener.valid());
  start(proxyConfig(a.port()));

  // Before: a client reaches backend A.
  UniqueFd old_client = connectTcp(port_);
  ASSERT_TRUE(old_client.valid());
  UniqueFd old_upstream = a.accept();
  ASSERT_TRUE(old_upstream.valid()) << gateway_.output();
  expectRelay(old_client.get(), old_upstream.get(), "old-1");

  // Reload: cluster "echo" now points at B.
  reloadWith(proxyConfig(b.port()));
  ASSERT_TRUE(gateway_.process().waitForOutput("config reload 2 applied on every worker",
                                               seconds(5)))
      << gateway_.output();

  // New connections follow the new config...
  for (int i = 0; i < 4; ++i) {  // enough to reach both workers
    UniqueFd c = connectTcp(port_);
    ASSERT_TRUE(c.valid());
    UniqueFd up = b.accept();
    ASSERT_TRUE(up.valid()) << "connection " << i << " did not reach the new backend\n"
                            << gateway_.output();
    expectRelay(c.get(), up.get(), "new");
    expectRelay(up.get(), c.get(), "reply");
  }
  EXPECT_FALSE(a.accept(milliseconds(200)).valid()) << "a new connection went to the old backend";
  // ...and the open one keeps its chain, both ways.
  expectRelay(old_client.get(), old_upstream.get(), "old-2");
  expectRelay(old_upstream.get(), old_client.get(), "old-reply");

  std::string m = metrics();
  EXPECT_EQ(metricValue(m, R"(game_gateway_config_reloads_total{result="ok"})"), 1.0) << m;
  EXPECT_EQ(metricValue(m, R"(game_gateway_config_reloads_total{result="error"})"), 0.0);
  EXPECT_EQ(metricValue(m, "game_gateway_config_generation"), 2.0);
  rapidjson::Document doc;
  ASSERT_TRUE(parseJson(httpRequest(admin_, "GET", "/config").body, &doc));
  EXPECT_EQ(doc["generation"].GetUint64(), 2u);
  EXPECT_EQ(doc["config"]["clusters"][0]["hosts"][0].GetString(),
            "127.0.0.1:" + std::to_string(b.port()));
  rapidjson::Document clusters;
  ASSERT_TRUE(parseJson(httpRequest(admin_, "GET", "/clusters").body, &clusters));
  EXPECT_EQ(clusters["clusters"][0]["hosts"][0]["address"].GetString(),
            "127.0.0.1:" + std::to_string(b.port()));

  // The old connection closes normally; the gateway then stops cleanly (the
  // old factories went with it: ASan would flag a use after free).
  old_client.reset();
  EXPECT_TRUE(waitClosed(old_upstream.get(), milliseconds(3000)));
  old_upstream.reset();
  EXPECT_TRUE(waitUntil([&] {
    return metricValue(metrics(), R"(game_gateway_connections_active{listener="raw"})") == 0.0;
  })) << metrics();
  EXPECT_EQ(gateway_.stop(), 0) << gateway_.output();
}

TEST_F(OpsTest, SighupWithABrokenFileIsRefusedAndServingGoesOn) {
  RawBackend a;
  start(proxyConfig(a.port()));
  UniqueFd open_client = connectTcp(port_);
  UniqueFd open_upstream = a.accept();
  ASSERT_TRUE(open_upstream.valid());

  // Malformed JSON.
  reloadWith(R"({"workers": 2, "listeners": [)");
  ASSERT_TRUE(gateway_.process().waitForOutput("config reload refused: 1 config error",
                                               seconds(5)))
      << gateway_.output();
  EXPECT_NE(gateway_.output().find("malformed JSON"), std::string::npos) << gateway_.output();
  // A schema error (unknown filter key).
  std::string bad_key = proxyConfig(a.port());
  bad_key.replace(bad_key.find(R"("cluster": "echo")"), 17, R"("cluster": "echo", "bogus": 1)");
  reloadWith(bad_key);
  ASSERT_TRUE(waitUntil([&] {
    return metricValue(metrics(), R"(game_gateway_config_reloads_total{result="error"})") == 2.0;
  })) << gateway_.output();
  EXPECT_NE(gateway_.output().find("bogus"), std::string::npos);
  // A changed listener address cannot be applied by a reload.
  reloadWith(proxyConfig(a.port(), "", "127.0.0.1:" + std::to_string(freePort())));
  ASSERT_TRUE(gateway_.process().waitForOutput("listener addresses cannot change", seconds(5)))
      << gateway_.output();
  // So can't a different worker count.
  std::string three = proxyConfig(a.port());
  three.replace(three.find(R"("workers": 2)"), 12, R"("workers": 3)");
  reloadWith(three);
  ASSERT_TRUE(gateway_.process().waitForOutput("\"workers\" changed from 2 to 3", seconds(5)))
      << gateway_.output();

  std::string m = metrics();
  EXPECT_EQ(metricValue(m, R"(game_gateway_config_reloads_total{result="error"})"), 4.0) << m;
  EXPECT_EQ(metricValue(m, R"(game_gateway_config_reloads_total{result="ok"})"), 0.0);
  EXPECT_EQ(metricValue(m, "game_gateway_config_generation"), 1.0);
  // Ready (every worker's loop runs; under load the second may start late).
  EXPECT_TRUE(waitUntil([&] { return httpRequest(admin_, "GET", "/ready").status == 200; }))
      << httpRequest(admin_, "GET", "/ready").body << gateway_.output();
  // Still serving: the open connection and new ones.
  expectRelay(open_client.get(), open_upstream.get(), "still");
  UniqueFd c = connectTcp(port_);
  ASSERT_TRUE(c.valid());
  UniqueFd up = a.accept();
  ASSERT_TRUE(up.valid()) << gateway_.output();
  expectRelay(c.get(), up.get(), "new");
  // SIGTERM drains: the gateway exits once these connections are gone.
  ASSERT_TRUE(gateway_.process().signal(SIGTERM));
  ASSERT_TRUE(waitUntil([&] { return httpRequest(admin_, "GET", "/ready").status == 503; }));
  for (UniqueFd* fd : {&open_client, &open_upstream, &c, &up}) fd->reset();
  EXPECT_EQ(gateway_.process().wait(seconds(5)), 0) << gateway_.output();
}

TEST_F(OpsTest, SigtermWithoutConnectionsExitsPromptly) {
  RawBackend a;
  start(proxyConfig(a.port(), R"("drain_timeout": "30s",)"));
  auto t0 = Clock::now();
  EXPECT_EQ(gateway_.stop(seconds(5)), 0) << gateway_.output();
  EXPECT_LT(Clock::now() - t0, seconds(1));
}

TEST_F(OpsTest, SigtermDrainClosesTheRestAtDrainTimeout) {
  RawBackend a;
  std::string log_path = tempDir() + "/ops_drain_access.log";
  ::unlink(log_path.c_str());
  start(proxyConfig(a.port(), R"("drain_timeout": "1s", "access_log": {"path": ")" + log_path +
                                  R"("},)"));
  UniqueFd client = connectTcp(port_);
  UniqueFd upstream = a.accept();
  ASSERT_TRUE(upstream.valid());
  auto t0 = Clock::now();
  ASSERT_TRUE(gateway_.process().signal(SIGTERM));
  ASSERT_TRUE(waitUntil([&] { return httpRequest(admin_, "GET", "/ready").status == 503; },
                        milliseconds(500)));
  // Still relaying during the drain.
  expectRelay(client.get(), upstream.get(), "draining");
  EXPECT_TRUE(waitClosed(client.get(), seconds(4))) << "not closed at drain_timeout";
  auto code = gateway_.process().wait(seconds(4));
  ASSERT_TRUE(code.has_value()) << gateway_.output();
  EXPECT_EQ(*code, 0);
  auto took = Clock::now() - t0;
  EXPECT_GE(took, milliseconds(900));
  EXPECT_LT(took, seconds(4));
  EXPECT_NE(gateway_.output().find("drain_timeout (1000 ms) passed with 1 connection(s) open"),
            std::string::npos)
      << gateway_.output();
  EXPECT_NE(readFile(log_path).find("\"reason\":\"shutdown\""), std::string::npos)
      << readFile(log_path);
}

TEST_F(OpsTest, SigintStopsAtOnce) {
  RawBackend a;
  start(proxyConfig(a.port(), R"("drain_timeout": "30s",)"));
  UniqueFd client = connectTcp(port_);
  UniqueFd upstream = a.accept();
  ASSERT_TRUE(upstream.valid());
  auto t0 = Clock::now();
  ASSERT_TRUE(gateway_.process().signal(SIGINT));
  auto code = gateway_.process().wait(seconds(5));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_LT(Clock::now() - t0, seconds(2));
  EXPECT_TRUE(waitClosed(client.get(), seconds(2)));
}

// --- access log ---

// Parses every line of an access log file; fails on a line that is not a
// JSON object.
std::vector<rapidjson::Document> accessLines(const std::string& path) {
  std::vector<rapidjson::Document> out;
  std::string text = readFile(path);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    rapidjson::Document d;
    std::string why;
    if (!parseJson(line, &d, &why) || !d.IsObject()) {
      ADD_FAILURE() << "access log line is not a JSON object: " << line;
      continue;
    }
    out.push_back(std::move(d));
  }
  return out;
}

// Checks a line has exactly the documented fields with their types.
void expectDocumentedFields(const rapidjson::Document& d) {
  const std::vector<std::pair<const char*, rapidjson::Type>> fields = {
      {"time", rapidjson::kStringType},       {"listener", rapidjson::kStringType},
      {"worker", rapidjson::kNumberType},     {"client", rapidjson::kStringType},
      {"session_id", rapidjson::kStringType}, {"trace_id", rapidjson::kStringType},
      {"duration_ms", rapidjson::kNumberType},
      {"bytes_in", rapidjson::kNumberType},   {"bytes_out", rapidjson::kNumberType},
      {"frames_in", rapidjson::kNumberType},  {"frames_out", rapidjson::kNumberType},
      {"reason", rapidjson::kStringType},     {"detail", rapidjson::kStringType}};
  EXPECT_EQ(d.MemberCount(), fields.size());
  for (const auto& [name, type] : fields) {
    ASSERT_TRUE(d.HasMember(name)) << "missing " << name;
    EXPECT_EQ(d[name].GetType(), type) << name;
  }
  EXPECT_TRUE(std::regex_match(d["time"].GetString(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << d["time"].GetString();
  EXPECT_TRUE(std::regex_match(d["session_id"].GetString(), std::regex(R"(\d+)")));
  // A session's W3C trace id (32 hex digits), "" when there is no session.
  EXPECT_TRUE(std::regex_match(d["trace_id"].GetString(), std::regex(R"(([0-9a-f]{32})?)")));
  EXPECT_EQ(std::string(d["session_id"].GetString()) == "0",
            std::string(d["trace_id"].GetString()).empty());
  EXPECT_GE(d["duration_ms"].GetDouble(), 0.0);
}

// The local "127.0.0.1:PORT" of a client socket: the gateway's view of it.
std::string localName(int fd) {
  return "127.0.0.1:" + std::to_string(localPort(fd));
}

TEST_F(OpsTest, AccessLogWritesOneJsonLinePerClose) {
  EchoServerProcess echo;
  std::string error;
  ASSERT_TRUE(echo.start(0, &error)) << error;
  uint16_t echo_port = echo.port();
  std::string log_path = tempDir() + "/ops_access.log";
  ::unlink(log_path.c_str());
  start(proxyConfig(echo_port, R"("access_log": {"enabled": true, "path": ")" + log_path +
                                   R"(", "sample_rate": 1},)"));
  std::vector<std::string> clients;
  for (int i = 0; i < 3; ++i) {
    UniqueFd c = connectTcp(port_);
    ASSERT_TRUE(c.valid());
    clients.push_back(localName(c.get()));
    std::string data(100 * (i + 1), 'x');
    ASSERT_TRUE(sendAll(c.get(), data));
    std::string got;
    ASSERT_TRUE(recvExact(c.get(), data.size(), milliseconds(3000), &got));
  }
  ASSERT_TRUE(waitUntil([&] { return accessLines(log_path).size() == 3; })) << readFile(log_path);
  auto lines = accessLines(log_path);
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& d = lines[i];
    expectDocumentedFields(d);
    EXPECT_STREQ(d["listener"].GetString(), "raw");
    // Lines come in close order, which may differ from connect order.
    size_t which = std::find(clients.begin(), clients.end(), d["client"].GetString()) -
                   clients.begin();
    ASSERT_LT(which, clients.size()) << d["client"].GetString();
    EXPECT_EQ(d["bytes_in"].GetUint64(), 100 * (which + 1));
    EXPECT_EQ(d["bytes_out"].GetUint64(), 100 * (which + 1));
    EXPECT_STREQ(d["session_id"].GetString(), "0");  // tcp_proxy: no session
    EXPECT_EQ(d["frames_in"].GetUint64(), 0u);         // no codec
    std::string reason = d["reason"].GetString();
    EXPECT_TRUE(reason == "remote_closed" || reason == "local_closed") << reason;
  }
  // The line is queued to the access log's writer thread just before the
  // worker counts it (Worker::onChainClosed): the file can show the third
  // line before the counter says 3.
  const std::string written = R"(game_gateway_access_log_lines_total{listener="raw",result="written"})";
  EXPECT_TRUE(waitUntil([&] { return metricValue(metrics(), written).value_or(0) >= 3.0; }))
      << metrics();
  EXPECT_EQ(metricValue(metrics(), written), 3.0);
  EXPECT_EQ(gateway_.stop(), 0);
}

TEST_F(OpsTest, AccessLogSampleRateZeroWritesNothingButCounts) {
  EchoServerProcess echo;
  std::string error;
  ASSERT_TRUE(echo.start(0, &error)) << error;
  uint16_t echo_port = echo.port();
  std::string log_path = tempDir() + "/ops_access_sampled.log";
  ::unlink(log_path.c_str());
  start(proxyConfig(echo_port, R"("access_log": {"path": ")" + log_path +
                                   R"(", "sample_rate": 0},)"));
  for (int i = 0; i < 4; ++i) {
    UniqueFd c = connectTcp(port_);
    ASSERT_TRUE(sendAll(c.get(), "x"));
    std::string got;
    ASSERT_TRUE(recvExact(c.get(), 1, milliseconds(3000), &got));
  }
  ASSERT_TRUE(waitUntil([&] {
    return metricValue(metrics(),
                       R"(game_gateway_access_log_lines_total{listener="raw",result="sampled_out"})") ==
           4.0;
  })) << metrics();
  EXPECT_EQ(readFile(log_path), "");
  EXPECT_EQ(gateway_.stop(), 0);
}

TEST_F(OpsTest, AccessLogCountsFramesAndSessionThroughTheGameChain) {
  Process backend;
  std::string error;
  // Port 0: a port the kernel picks, read back from its "listening on" line.
  ASSERT_TRUE(backend.start({runfile("tools/backend_sim/backend_sim"), "--address", "127.0.0.1:0",
                             "--quiet"},
                            &error))
      << error;
  uint16_t backend_port = waitForListeningPort(backend, "backend_sim", seconds(5));
  ASSERT_NE(backend_port, 0) << backend.output();
  std::string log_path = tempDir() + "/ops_access_game.log";
  ::unlink(log_path.c_str());
  std::string config = R"({"workers": 1, "admin": {"address": "127.0.0.1:0"},
    "access_log": {"path": ")" + log_path + R"("},
    "listeners": [{"name": "game", "address": "127.0.0.1:0", "filters": [
      {"name": "framing", "config": {}},
      {"name": "upstream", "config": {"routes": [{"match": "200:0", "cluster": "game"}]}}]}],
    "clusters": [{"name": "game", "hosts": ["127.0.0.1:)" + std::to_string(backend_port) +
                       R"("], "connect_timeout": "2s"}]})";
  ASSERT_TRUE(gateway_.start(config, &error)) << error;
  UniqueFd c = connectTcp(gateway_.listenerPort("game"));
  ASSERT_TRUE(c.valid());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(sendAll(c.get(), encodeClientFrame(10 + i, 200u << 8, "payload")));
    ClientFrame f;
    ASSERT_TRUE(recvClientFrame(c.get(), milliseconds(3000), &f)) << gateway_.output();
  }
  c.reset();
  ASSERT_TRUE(waitUntil([&] { return accessLines(log_path).size() == 1; })) << readFile(log_path);
  auto lines = accessLines(log_path);
  const auto& d = lines[0];
  expectDocumentedFields(d);
  EXPECT_STREQ(d["listener"].GetString(), "game");
  EXPECT_EQ(d["frames_in"].GetUint64(), 4u);
  EXPECT_EQ(d["frames_out"].GetUint64(), 4u);
  EXPECT_EQ(d["bytes_in"].GetUint64(), 4u * (8 + 7));
  EXPECT_EQ(d["bytes_out"].GetUint64(), 4u * (8 + 7));
  EXPECT_STRNE(d["session_id"].GetString(), "0");  // upstream published a session
  EXPECT_STREQ(d["reason"].GetString(), "remote_closed");
  EXPECT_EQ(gateway_.stop(), 0);
  backend.signal(SIGTERM);
  backend.wait(seconds(5));
}

// Starts a gateway whose access_log is `path` and expects it to exit with
// status 1 and print `expected` (an "access_log: cannot open" line).
void expectAccessLogStartupError(const std::string& path, const std::string& expected) {
  GatewayProcess gw;
  std::string error;
  EXPECT_FALSE(gw.start(proxyConfig(9, R"("access_log": {"path": ")" + path + R"("},)"), &error,
                        seconds(5)));
  auto code = gw.process().wait(seconds(5));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1);
  EXPECT_NE(gw.output().find(expected), std::string::npos) << gw.output();
}

TEST(OpsStartup, AccessLogFileThatCannotBeOpenedIsAStartupError) {
  // The log's parent "directory" is a regular file: nobody can create a
  // directory under it, root included.
  std::string not_a_dir = writeTempFile("", "not-a-dir-");
  ASSERT_FALSE(not_a_dir.empty());
  std::string path = not_a_dir + "/x/access.log";
  expectAccessLogStartupError(path, "access_log: cannot open " + path);
  ::unlink(not_a_dir.c_str());
}

TEST(OpsStartup, AccessLogInAMissingDirectoryIsAStartupErrorAndNothingIsCreated) {
  // spdlog would create the missing directories; the gateway refuses instead.
  std::string base = writeTempFile("", "missing-dir-base-");
  ASSERT_FALSE(base.empty());
  ::unlink(base.c_str());  // a fresh path that does not exist
  std::string path = base + "/logs/access.log";
  expectAccessLogStartupError(path, "access_log: cannot open " + path + ": directory " + base +
                                        "/logs: No such file or directory (it is not created)");
  struct stat st;
  EXPECT_NE(::stat(base.c_str(), &st), 0) << base << " was created";
}

}  // namespace
}  // namespace test
}  // namespace gw
