// Integration tests of the admin HTTP API (core/admin.h) over real HTTP
// against the real gateway binary: every endpoint with its success and
// error codes (400 bad ids, 404 unknown paths, 405 wrong methods), /metrics
// checked by `promtool check metrics` after real traffic (and the three
// metric names kept from the Go gateway with their types), POST /drain, an
// admin port that is taken, sessions and kicks when the `session` filter is
// linked in. Also unit tests of redactSecrets() and parseSessionId().
#include "core/admin.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <chrono>
#include <cstring>
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

// --- helpers of the endpoints, without a server ---

TEST(AdminHelpers, RedactSecretsHidesSecretValuesAndUrlCredentials) {
  std::string in = R"({"workers": 2, "password": "hunter2",
    "store": {"redis": {"url": "redis://user:s3cret@10.0.0.1:6379/0", "auth_token": "tok"}},
    "list": [{"api_key": 12345, "name": "keep-me"}],
    "plain_url": "redis://10.0.0.2:6379", "Secret_Thing": {"nested": true}})";
  std::string out = redactSecrets(in);
  for (const char* secret : {"hunter2", "s3cret", "user:", "tok\"", "12345", "nested"})
    EXPECT_EQ(out.find(secret), std::string::npos) << secret << " leaked: " << out;
  rapidjson::Document doc;
  ASSERT_TRUE(parseJson(out, &doc));
  EXPECT_STREQ(doc["password"].GetString(), "[redacted]");
  EXPECT_STREQ(doc["store"]["redis"]["url"].GetString(), "redis://[redacted]@10.0.0.1:6379/0");
  EXPECT_STREQ(doc["store"]["redis"]["auth_token"].GetString(), "[redacted]");
  EXPECT_STREQ(doc["list"][0]["api_key"].GetString(), "[redacted]");
  EXPECT_STREQ(doc["list"][0]["name"].GetString(), "keep-me");
  EXPECT_STREQ(doc["plain_url"].GetString(), "redis://10.0.0.2:6379");
  EXPECT_STREQ(doc["Secret_Thing"].GetString(), "[redacted]");
  EXPECT_EQ(doc["workers"].GetInt(), 2);
  EXPECT_EQ(redactSecrets("{not json"), "{}");
}

TEST(AdminHelpers, ParseSessionIdAcceptsOnlyDecimalIdsInRange) {
  EXPECT_EQ(parseSessionId("1"), 1u);
  EXPECT_EQ(parseSessionId("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(parseSessionId("000123"), 123u);
  for (const char* bad : {"", "0", "-1", "+1", "abc", "12a", "1.5", " 1", "0x10",
                          "18446744073709551616", "123456789012345678901"}) {
    EXPECT_FALSE(parseSessionId(bad).has_value()) << "'" << bad << "'";
  }
}

// --- the real gateway ---

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(echo_.start(0, &error)) << error;  // a port the kernel picks
    echo_port_ = echo_.port();
  }
  void startGateway(const std::string& extra = "") {
    std::string error;
    ASSERT_TRUE(gateway_.start(proxyConfig(echo_port_, extra), &error)) << error;
    admin_ = adminPort(gateway_);
    ASSERT_NE(admin_, 0) << gateway_.output();
    port_ = gateway_.listenerPort("raw");
    ASSERT_NE(port_, 0) << gateway_.output();
    // Ready once every worker runs.
    ASSERT_TRUE(waitUntil([&] { return get("/ready").status == 200; })) << gateway_.output();
  }
  HttpResponse get(const std::string& path) { return httpRequest(admin_, "GET", path); }
  // POSTs with the test admin token (proxyConfig configures it).
  HttpResponse post(const std::string& path) { return adminPost(admin_, path); }
  // One echo round trip on a new client connection; returns the connection.
  UniqueFd roundTrip(const std::string& data) {
    UniqueFd fd = connectTcp(port_);
    EXPECT_TRUE(fd.valid()) << std::strerror(errno);
    EXPECT_TRUE(sendAll(fd.get(), data));
    std::string got;
    EXPECT_TRUE(recvExact(fd.get(), data.size(), milliseconds(3000), &got));
    EXPECT_EQ(got, data);
    return fd;
  }
  // Expects a JSON error body with status `code` mentioning `needle`.
  void expectError(const HttpResponse& r, int code, const std::string& needle) {
    EXPECT_EQ(r.status, code) << r.head << "\n" << r.body;
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    rapidjson::Document doc;
    std::string why;
    ASSERT_TRUE(parseJson(r.body, &doc, &why)) << why;
    ASSERT_TRUE(doc.IsObject() && doc.HasMember("error") && doc["error"].IsString()) << r.body;
    EXPECT_NE(std::string(doc["error"].GetString()).find(needle), std::string::npos)
        << "expected '" << needle << "' in " << r.body;
  }

  uint16_t echo_port_ = 0;
  uint16_t port_ = 0;
  uint16_t admin_ = 0;
  EchoServerProcess echo_;
  GatewayProcess gateway_;
};

TEST_F(AdminApiTest, HealthReadyIndexAnswerJson) {
  startGateway();
  HttpResponse h = get("/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.header("Content-Type"), "application/json");
  EXPECT_EQ(h.body, "{\"status\": \"ok\"}\n");
  HttpResponse r = get("/ready");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"status\": \"ready\"}\n");
  HttpResponse head = httpRequest(admin_, "HEAD", "/ready");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty()) << head.body;
  HttpResponse index = get("/");
  EXPECT_EQ(index.status, 200);
  rapidjson::Document doc;
  ASSERT_TRUE(parseJson(index.body, &doc));
  ASSERT_TRUE(doc["endpoints"].IsArray());
  EXPECT_EQ(doc["endpoints"].Size(), 8u);
  EXPECT_EQ(gateway_.stop(), 0);
}

TEST_F(AdminApiTest, ConfigShowsTheRunningConfigAndGeneration) {
  startGateway(R"("drain_timeout": "7s", "access_log": {"enabled": false},)");
  HttpResponse r = get("/config");
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document doc;
  std::string why;
  ASSERT_TRUE(parseJson(r.body, &doc, &why)) << why;
  EXPECT_EQ(doc["source"].GetString(), gateway_.configPath());
  EXPECT_EQ(doc["generation"].GetUint64(), 1u);
  const auto& eff = doc["effective"];
  EXPECT_EQ(eff["workers"].GetUint(), 2u);
  EXPECT_EQ(eff["drain_timeout_ms"].GetInt64(), 7000);
  EXPECT_EQ(eff["admin_address"].GetString(), "127.0.0.1:" + std::to_string(admin_));
  EXPECT_FALSE(eff["access_log"]["enabled"].GetBool());
  EXPECT_STREQ(eff["listeners"][0]["name"].GetString(), "raw");
  // Each filter: its name and its describe() output (an object).
  EXPECT_STREQ(eff["listeners"][0]["filters"][0]["name"].GetString(), "tcp_proxy");
  EXPECT_TRUE(eff["listeners"][0]["filters"][0]["config"].IsObject());
  ASSERT_TRUE(eff["plugins"].IsArray());
  EXPECT_EQ(eff["plugins"].Size(), 0u);
  // The file as loaded (nothing secret in it, so unchanged).
  EXPECT_STREQ(doc["config"]["clusters"][0]["name"].GetString(), "echo");
  EXPECT_STREQ(doc["config"]["drain_timeout"].GetString(), "7s");
  EXPECT_EQ(gateway_.stop(), 0);
}

TEST_F(AdminApiTest, ClustersListHostsPoolsAndTraffic) {
  startGateway();
  HttpResponse r = get("/clusters");
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document doc;
  std::string why;
  ASSERT_TRUE(parseJson(r.body, &doc, &why)) << why;
  ASSERT_EQ(doc["clusters"].Size(), 1u);
  const auto& c = doc["clusters"][0];
  EXPECT_STREQ(c["name"].GetString(), "echo");
  EXPECT_STREQ(c["lb"].GetString(), "round_robin");
  EXPECT_EQ(c["connect_timeout_ms"].GetInt64(), 2000);
  ASSERT_EQ(c["hosts"].Size(), 1u);
  const auto& h = c["hosts"][0];
  EXPECT_EQ(h["address"].GetString(), "127.0.0.1:" + std::to_string(echo_port_));
  // Added by breaker's admin view (a missing member fails here, not in rapidjson).
  ASSERT_TRUE(h.HasMember("breaker")) << r.body;
  EXPECT_STREQ(h["breaker"].GetString(), "none");  // no breaker filter in this chain
  EXPECT_EQ(h["pool"]["capacity"].GetInt64(), 4);   // max_connections_per_service default
  EXPECT_EQ(h["pool"]["active"].GetInt64(), 0);
  EXPECT_TRUE(c["traffic"]["frames_in"].IsUint64());
  // The address first, then what the filter types' views add, in registry
  // (name) order: breaker's "breaker" before upstream's "pool".
  std::vector<std::string> keys;
  for (const auto& m : h.GetObject()) keys.emplace_back(m.name.GetString());
  EXPECT_EQ(keys, (std::vector<std::string>{"address", "breaker", "pool", "connect_failures",
                                            "connections_lost", "state"}))
      << r.body;
  EXPECT_STREQ(h["state"].GetString(), "ready");  // the cluster manager's host state
  EXPECT_EQ(gateway_.stop(), 0);
}

TEST_F(AdminApiTest, SessionsWithoutSessionFilterAndBadIds) {
  startGateway();
  expectError(get("/sessions/42"), 404, "'session' filter");
  expectError(post("/sessions/42/kick"), 404, "'session' filter");
  // Bad ids are refused before anything else.
  for (const char* bad : {"abc", "0", "-5", "99999999999999999999999", "1x"}) {
    expectError(get(std::string("/sessions/") + bad), 400, "bad session id");
    expectError(post(std::string("/sessions/") + bad + "/kick"), 400, "bad session id");
  }
  EXPECT_EQ(gateway_.stop(), 0);
}

TEST_F(AdminApiTest, UnknownPathsAre404AndWrongMethods405) {
  startGateway();
  for (const char* path : {"/nope", "/metrics/extra", "/sessions", "/sessions/1/2",
                           "/sessions/1/kick/now", "/readyz"}) {
    expectError(get(path), 404, "no such endpoint");
  }
  struct Case {
    const char* method;
    const char* path;
    const char* allow;
  };
  for (const Case& c : {Case{"POST", "/metrics", "GET, HEAD"}, Case{"POST", "/healthz", "GET, HEAD"},
                        Case{"PUT", "/ready", "GET, HEAD"}, Case{"DELETE", "/config", "GET, HEAD"},
                        Case{"POST", "/clusters", "GET, HEAD"}, Case{"GET", "/drain", "POST"},
                        Case{"GET", "/sessions/42/kick", "POST"},
                        Case{"DELETE", "/sessions/42", "GET, HEAD"}}) {
    HttpResponse r = httpRequest(admin_, c.method, c.path);
    expectError(r, 405, "method not allowed");
    EXPECT_EQ(r.header("Allow"), c.allow) << c.method << " " << c.path;
  }
  // Nothing above drained the gateway.
  EXPECT_EQ(get("/ready").status, 200);
  EXPECT_EQ(gateway_.stop(), 0);
}

TEST_F(AdminApiTest, MetricsAfterTrafficPassPromtool) {
  startGateway();
  for (int i = 0; i < 3; ++i) roundTrip("ping-" + std::to_string(i));  // closed at scope end
  // The worker counts a close after closing the socket (Worker::onChainClosed):
  // the close reason first, then the bytes, then the lifetime. Wait for the
  // last of them too, not only for the closes.
  std::string text;
  ASSERT_TRUE(waitUntil([&] {
    HttpResponse r = get("/metrics");
    text = r.body;
    auto closes = metricValue(text, R"(game_gateway_connection_closes_total{listener="raw",reason="local_closed"})");
    auto remote = metricValue(text, R"(game_gateway_connection_closes_total{listener="raw",reason="remote_closed"})");
    auto lifetimes =
        metricValue(text, R"(game_gateway_connection_duration_seconds_count{listener="raw"})");
    auto bytes_in =
        metricValue(text, R"(game_gateway_client_bytes_total{listener="raw",direction="in"})");
    return closes.value_or(0) + remote.value_or(0) == 3 && lifetimes.value_or(0) >= 3 &&
           bytes_in.value_or(0) >= 18;
  })) << text;
  HttpResponse r = get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  text = r.body;
  EXPECT_EQ(metricValue(text, R"(game_gateway_connections_total{listener="raw"})"), 3.0);
  EXPECT_EQ(metricValue(text, R"(game_gateway_connections_active{listener="raw"})"), 0.0);
  EXPECT_GE(metricValue(text, R"(game_gateway_client_bytes_total{listener="raw",direction="in"})")
                .value_or(0), 18.0);
  EXPECT_EQ(metricValue(text, R"(game_gateway_connection_duration_seconds_count{listener="raw"})"),
            3.0);
  EXPECT_EQ(metricValue(text, R"(game_gateway_config_reloads_total{result="ok"})"), 0.0);
  EXPECT_EQ(metricValue(text, "game_gateway_config_generation"), 1.0);
  EXPECT_EQ(metricValue(text, "game_gateway_draining"), 0.0);
  EXPECT_NE(text.find("game_gateway_build_info{version=\""), std::string::npos);
  EXPECT_EQ(metricValue(text, "game_gateway_upstream_pool_capacity{cluster=\"echo\",host=\"127.0.0.1:" +
                                  std::to_string(echo_port_) + "\"}"),
            4.0);
  for (const char* type : {"# TYPE game_gateway_connections_total counter",
                           "# TYPE game_gateway_connections_active gauge",
                           "# TYPE game_gateway_connection_closes_total counter",
                           "# TYPE game_gateway_connection_duration_seconds histogram",
                           "# TYPE game_gateway_build_info gauge",
                           "# TYPE game_gateway_config_reloads_total counter"}) {
    EXPECT_NE(text.find(type), std::string::npos) << type;
  }
  std::string file = writeTempFile(text, "metrics-", ".txt");
  std::string out;
  auto code = runCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + file}, &out);
  EXPECT_EQ(code, 0) << out << "\n--- metrics:\n" << text;
  EXPECT_EQ(gateway_.stop(), 0);
}

TEST_F(AdminApiTest, PostDrainStopsAcceptingAndExitsWhenTheLastConnectionCloses) {
  startGateway(R"("drain_timeout": "20s",)");
  UniqueFd open = roundTrip("before");
  HttpResponse d = post("/drain");
  EXPECT_EQ(d.status, 202) << d.body;
  rapidjson::Document doc;
  ASSERT_TRUE(parseJson(d.body, &doc));
  EXPECT_STREQ(doc["status"].GetString(), "draining");
  EXPECT_FALSE(doc["already_draining"].GetBool());
  EXPECT_EQ(doc["active_connections"].GetUint64(), 1u);
  // At once: not ready, still healthy.
  HttpResponse ready = get("/ready");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.body, "{\"status\": \"draining\"}\n");
  EXPECT_EQ(get("/healthz").status, 200);
  HttpResponse again = post("/drain");
  EXPECT_EQ(again.status, 202);
  EXPECT_NE(again.body.find("\"already_draining\": true"), std::string::npos) << again.body;
  EXPECT_EQ(metricValue(get("/metrics").body, "game_gateway_draining"), 1.0);
  // The listening sockets close (each worker does it on its thread).
  EXPECT_TRUE(waitUntil([&] { return !connectTcp(port_, milliseconds(200)).valid(); }))
      << "new connections are still accepted while draining";
  // The open connection still works.
  ASSERT_TRUE(sendAll(open.get(), "during"));
  std::string got;
  ASSERT_TRUE(recvExact(open.get(), 6, milliseconds(3000), &got));
  EXPECT_EQ(got, "during");
  EXPECT_TRUE(gateway_.process().running());
  auto closed_at = std::chrono::steady_clock::now();
  open.reset();
  auto code = gateway_.process().wait(seconds(5));
  ASSERT_TRUE(code.has_value()) << "still running 5 s after the last connection closed:\n"
                                << gateway_.output();
  EXPECT_EQ(*code, 0) << gateway_.output();
  EXPECT_LT(std::chrono::steady_clock::now() - closed_at, seconds(2));
  EXPECT_NE(gateway_.output().find("drain (POST /drain)"), std::string::npos);
}

TEST(AdminStartup, TakenAdminPortIsAStartupError) {
  UniqueFd taken = listenTcp(0);
  ASSERT_TRUE(taken.valid());
  uint16_t port = localPort(taken.get());
  std::string config = R"({"workers": 1, "admin": {"address": "127.0.0.1:)" +
                       std::to_string(port) + R"("},
    "listeners": [{"name": "raw", "address": "127.0.0.1:0",
      "filters": [{"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
    "clusters": [{"name": "echo", "hosts": ["127.0.0.1:9"]}]})";
  GatewayProcess gw;
  std::string error;
  EXPECT_FALSE(gw.start(config, &error, seconds(5)));
  auto code = gw.process().wait(seconds(5));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1);
  std::string needle = "admin: bind 127.0.0.1:" + std::to_string(port) + ": Address already in use";
  EXPECT_NE(gw.output().find(needle), std::string::npos) << gw.output();
}

// --- the full game chain: the metric names kept from the Go gateway ---

// The filters this binary registers (gateway --list-filters).
std::vector<std::string> registeredFilters() {
  std::string out;
  runCommand({GatewayProcess::binary(), "--list-filters"}, &out);
  std::vector<std::string> names;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    if (end > start) names.push_back(out.substr(start, end - start));
    start = end + 1;
  }
  return names;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class GameChainAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    filters_ = registeredFilters();
    ASSERT_TRUE(has(filters_, "framing") && has(filters_, "upstream"))
        << "the gateway binary lacks framing/upstream";
  }
  // ip_limiter? -> framing -> session? -> breaker? -> upstream, to cluster
  // "game" at 127.0.0.1:`backend_port`; optional filters only when linked.
  std::string gameConfig(uint16_t backend_port, const std::string& extra = "") {
    std::string chain;
    if (has(filters_, "ip_limiter"))
      chain += R"({"name": "ip_limiter", "config": {"max_connections_per_ip": 100}}, )";
    chain += R"({"name": "framing", "config": {}}, )";
    if (has(filters_, "session")) chain += R"({"name": "session", "config": {}}, )";
    if (has(filters_, "breaker")) chain += R"({"name": "breaker", "config": {}}, )";
    chain += R"({"name": "upstream", "config": {"routes": [{"match": "200:0", "cluster": "game"}]}})";
    return R"({"workers": 2, "admin": )" + testAdminJson() + ", " + extra +
           R"( "listeners": [{"name": "game", "address": "127.0.0.1:0", "filters": [)" + chain +
           R"(]}], "clusters": [{"name": "game", "hosts": ["127.0.0.1:)" +
           std::to_string(backend_port) + R"("], "connect_timeout": "2s"}]})";
  }
  // Starts tools/backend_sim on a port the kernel picks (port 0, read back
  // from its "listening on" line) into *port.
  static void startBackendSim(Process& backend, uint16_t* port) {
    std::string error;
    ASSERT_TRUE(backend.start({runfile("tools/backend_sim/backend_sim"), "--address",
                               "127.0.0.1:0", "--quiet"},
                              &error))
        << error;
    *port = waitForListeningPort(backend, "backend_sim", seconds(5));
    ASSERT_NE(*port, 0) << backend.output();
  }
  std::vector<std::string> filters_;
};

// server_id for server_type 200, world 0.
constexpr uint32_t kGameServerId = 200u << 8;

// The Go gateway's metric names (issue 16: the union of its last two
// versions; docs/ops/go-metrics.md), and backend_retries_total (made per
// host with the connect retries, cluster max_retries).
const char* const kGoMetricNames[] = {
    "connections_active", "connections_total", "sessions_active", "routing_errors_total",
    "rate_limit_rejected_total", "connection_rejected_total", "circuit_breaker_state",
    "backend_requests_total", "backend_request_latency_seconds",
    "backend_connection_latency_seconds", "backend_connection_setup_latency_seconds",
    "backend_connections_active", "backend_errors_total", "backend_timeouts_total",
    "backend_health_status", "backend_bytes_transmitted_total", "request_latency_seconds",
    "connection_setup_latency_seconds", "messages_processed_total",
    "config_refresh_errors_total", "config_refresh_success_total", "pool_cleanup_errors_total",
    "backend_retries_total"};

// Every Go name is exposed, with the Go gateway's labels, after traffic
// through the real binary, on the admin port and on the metrics_listener.
TEST_F(GameChainAdminTest, EveryGoGatewayMetricNameIsScraped) {
  ASSERT_TRUE(has(filters_, "ip_limiter") && has(filters_, "session") && has(filters_, "breaker"))
      << "the Go names come from ip_limiter, session and breaker too";
  Process backend;
  std::string error;
  uint16_t backend_port = 0;
  ASSERT_NO_FATAL_FAILURE(startBackendSim(backend, &backend_port));
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(gameConfig(backend_port, R"("metrics_listener": "127.0.0.1:0",)"), &error))
      << error;
  uint16_t metrics_port = loggedPort(gw, "metrics listener on ");
  uint16_t port = gw.listenerPort("game");
  ASSERT_NE(metrics_port, 0) << gw.output();
  UniqueFd fd = connectTcp(port);
  ASSERT_TRUE(fd.valid());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(sendAll(fd.get(), encodeClientFrame(100 + i, kGameServerId, "hello")));
    ClientFrame f;
    ASSERT_TRUE(recvClientFrame(fd.get(), milliseconds(3000), &f)) << gw.output();
  }
  // A frame no route matches: routing_errors_total{error_type="not_found"}.
  ASSERT_TRUE(sendAll(fd.get(), encodeClientFrame(7, 99u << 8, "x")));
  ClientFrame err;
  ASSERT_TRUE(recvClientFrame(fd.get(), milliseconds(3000), &err));
  std::string text = httpRequest(metrics_port, "GET", "/metrics").body;
  for (const char* name : kGoMetricNames) {
    std::string type_line = std::string("# TYPE game_gateway_") + name + " ";
    EXPECT_NE(text.find(type_line), std::string::npos) << "missing: game_gateway_" << name;
  }
  const std::string b = "backend=\"127.0.0.1:" + std::to_string(backend_port) + "\"";
  for (const std::string& series : {
           "game_gateway_backend_requests_total{cluster=\"game\"," + b + ",status=\"success\"}",
           "game_gateway_backend_connections_active{cluster=\"game\"," + b + "}",
           "game_gateway_backend_health_status{cluster=\"game\"," + b + "}",
           "game_gateway_backend_connection_latency_seconds_count{cluster=\"game\"," + b + "}",
           "game_gateway_backend_connection_setup_latency_seconds_count{cluster=\"game\"," +
               b + "}",
           "game_gateway_backend_request_latency_seconds_count{cluster=\"game\"," + b + "}",
           "game_gateway_backend_bytes_transmitted_total{cluster=\"game\"," + b +
               ",direction=\"request\"}",
           "game_gateway_backend_bytes_transmitted_total{cluster=\"game\"," + b +
               ",direction=\"response\"}",
           std::string("game_gateway_messages_processed_total{cluster=\"game\",service_type="
                       "\"200\",direction=\"client_to_backend\"}"),
           std::string("game_gateway_messages_processed_total{cluster=\"game\",service_type="
                       "\"200\",direction=\"backend_to_client\"}"),
           std::string("game_gateway_connection_setup_latency_seconds_count{cluster=\"game\","
                       "service_type=\"200\"}"),
           std::string("game_gateway_routing_errors_total{error_type=\"not_found\"}"),
           "game_gateway_circuit_breaker_state{cluster=\"game\"," + b + "}",
       }) {
    EXPECT_GE(metricValue(text, series).value_or(-1), 0) << "missing series " << series;
  }
  EXPECT_GE(metricValue(text, "game_gateway_messages_processed_total{cluster=\"game\",service_type="
                              "\"200\",direction=\"client_to_backend\"}")
                .value_or(0), 3.0);
  EXPECT_EQ(metricValue(text, "game_gateway_backend_connections_active{cluster=\"game\"," + b + "}")
                .value_or(0), 1.0);
  EXPECT_EQ(metricValue(text, "game_gateway_backend_health_status{cluster=\"game\"," + b + "}")
                .value_or(0), 1.0);
  EXPECT_GE(metricValue(text, "game_gateway_routing_errors_total{error_type=\"not_found\"}")
                .value_or(0), 1.0);
  EXPECT_EQ(metricValue(text, "game_gateway_sessions_active{listener=\"game\"}").value_or(0), 1.0);
  std::string file = writeTempFile(text, "metrics-", ".txt");
  std::string out;
  EXPECT_EQ(runCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + file}, &out), 0)
      << out;
  fd.reset();
  EXPECT_EQ(gw.stop(), 0);
  backend.signal(SIGTERM);
  backend.wait(seconds(5));
}

TEST_F(GameChainAdminTest, MetricsKeepTheGoGatewayNamesAndPassPromtool) {
  Process backend;
  std::string error;
  uint16_t backend_port = 0;
  ASSERT_NO_FATAL_FAILURE(startBackendSim(backend, &backend_port));
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(gameConfig(backend_port), &error)) << error;
  uint16_t admin = adminPort(gw);
  uint16_t port = gw.listenerPort("game");
  ASSERT_NE(admin, 0);
  ASSERT_NE(port, 0);
  // Traffic: 3 clients, 5 request/reply frames each.
  for (int c = 0; c < 3; ++c) {
    UniqueFd fd = connectTcp(port);
    ASSERT_TRUE(fd.valid());
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(sendAll(fd.get(), encodeClientFrame(100 + i, kGameServerId, "hello")));
      ClientFrame f;
      ASSERT_TRUE(recvClientFrame(fd.get(), milliseconds(3000), &f)) << gw.output();
      EXPECT_EQ(f.header.msg_id, 100 + i);
    }
  }
  std::string text = httpRequest(admin, "GET", "/metrics").body;
  // The three names kept from the Go gateway, with their types.
  EXPECT_NE(text.find("# TYPE game_gateway_request_latency_seconds histogram"), std::string::npos)
      << text;
  // Labelled by server type too (the Go gateway's service_type) since issue 16.
  EXPECT_GE(metricValue(text,
                        R"(game_gateway_request_latency_seconds_count{cluster="game",service_type="200"})")
                .value_or(0), 15.0);
  if (has(filters_, "ip_limiter")) {
    EXPECT_NE(text.find("# TYPE game_gateway_rate_limit_rejected_total counter"),
              std::string::npos) << text;
  } else {
    ADD_FAILURE() << "ip_limiter is not linked: game_gateway_rate_limit_rejected_total unchecked";
  }
  if (has(filters_, "breaker")) {
    EXPECT_NE(text.find("# TYPE game_gateway_circuit_breaker_state gauge"), std::string::npos)
        << text;
  } else {
    ADD_FAILURE() << "breaker is not linked: game_gateway_circuit_breaker_state unchecked";
  }
  EXPECT_GE(metricValue(text, R"(game_gateway_upstream_frames_total{cluster="game",direction="in"})")
                .value_or(0), 15.0);
  std::string file = writeTempFile(text, "metrics-", ".txt");
  std::string out;
  EXPECT_EQ(runCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + file}, &out), 0)
      << out;
  // /clusters reflects the pool the traffic opened.
  rapidjson::Document doc;
  ASSERT_TRUE(parseJson(httpRequest(admin, "GET", "/clusters").body, &doc));
  const auto& host = doc["clusters"][0]["hosts"][0];
  EXPECT_GE(host["pool"]["active"].GetInt64() + host["pool"]["idle"].GetInt64(), 1);
  EXPECT_GE(doc["clusters"][0]["traffic"]["frames_out"].GetUint64(), 15u);
  if (has(filters_, "breaker")) {
    ASSERT_TRUE(host.HasMember("breaker")) << httpRequest(admin, "GET", "/clusters").body;
    EXPECT_STREQ(host["breaker"].GetString(), "closed") << httpRequest(admin, "GET", "/clusters").body;
  }
  EXPECT_EQ(gw.stop(), 0);
  backend.signal(SIGTERM);
  backend.wait(seconds(5));
}

// GET /config describes each filter of the chain with the values in force:
// session's and upstream's describe(), defaults filled in, durations as
// config writes them.
TEST_F(GameChainAdminTest, ConfigDescribesEachFilter) {
  GatewayProcess gw;
  std::string error;
  ASSERT_TRUE(gw.start(gameConfig(9), &error)) << error;
  rapidjson::Document doc;
  HttpResponse r = httpRequest(adminPort(gw), "GET", "/config");
  ASSERT_TRUE(parseJson(r.body, &doc, &error)) << error;
  const auto& filters = doc["effective"]["listeners"][0]["filters"];
  ASSERT_TRUE(filters.IsArray());
  const rapidjson::Value* upstream = nullptr;
  const rapidjson::Value* session = nullptr;
  for (const auto& f : filters.GetArray()) {
    std::string name = f["name"].GetString();
    if (name == "upstream") upstream = &f["config"];
    if (name == "session") session = &f["config"];
  }
  ASSERT_NE(upstream, nullptr) << r.body;
  EXPECT_STREQ((*upstream)["routes"][0]["match"].GetString(), "200:0") << r.body;
  EXPECT_STREQ((*upstream)["routes"][0]["cluster"].GetString(), "game");
  EXPECT_EQ((*upstream)["max_backend_output_bytes"].GetUint64(), 8u * 1024 * 1024);
  if (has(filters_, "session")) {
    ASSERT_NE(session, nullptr) << r.body;
    EXPECT_STREQ((*session)["store"].GetString(), "memory");
    EXPECT_STREQ((*session)["idle_timeout"].GetString(), "30m");
    EXPECT_STREQ((*session)["resume"]["window"].GetString(), "1m");
  }
  EXPECT_EQ(gw.stop(), 0);
}

// With the `session` filter: GET /sessions/{id} describes a live session and
// POST /sessions/{id}/kick closes its client with reason `kicked`.
TEST_F(GameChainAdminTest, SessionLookupAndKick) {
  if (!has(filters_, "session")) GTEST_SKIP() << "the session filter is not linked in";
  // A raw backend made here, to read the session id off the server frames.
  UniqueFd backend = listenTcp(0);
  ASSERT_TRUE(backend.valid());
  std::string log_path = tempDir() + "/admin_kick_access.log";
  ::unlink(log_path.c_str());
  GatewayProcess gw;
  std::string error;
  ASSERT_TRUE(gw.start(gameConfig(localPort(backend.get()),
                                  R"("access_log": {"path": ")" + log_path + R"("},)"),
                       &error))
      << error;
  uint16_t admin = adminPort(gw);
  UniqueFd client = connectTcp(gw.listenerPort("game"));
  ASSERT_TRUE(client.valid());
  ASSERT_TRUE(sendAll(client.get(), encodeClientFrame(7, kGameServerId, "hi")));
  UniqueFd up = acceptTcp(backend.get(), milliseconds(3000));
  ASSERT_TRUE(up.valid()) << gw.output();
  uint64_t session = firstDataSession(up.get());
  ASSERT_NE(session, 0u) << gw.output();
  HttpResponse d = httpRequest(admin, "GET", "/sessions/" + std::to_string(session));
  EXPECT_EQ(d.status, 200) << d.body;
  rapidjson::Document doc;
  EXPECT_TRUE(parseJson(d.body, &doc)) << d.body;
  EXPECT_EQ(httpRequest(admin, "GET", "/sessions/" + std::to_string(session + 1)).status, 404);
  HttpResponse k = adminPost(admin, "/sessions/" + std::to_string(session) + "/kick");
  EXPECT_EQ(k.status, 200) << k.body;
  EXPECT_TRUE(waitClosed(client.get(), milliseconds(3000))) << "kicked client still open";
  EXPECT_TRUE(waitUntil([&] { return readFile(log_path).find("\"reason\":\"kicked\"") !=
                                     std::string::npos; }))
      << readFile(log_path);
  EXPECT_EQ(httpRequest(admin, "GET", "/sessions/" + std::to_string(session)).status, 404);
  EXPECT_EQ(gw.stop(), 0);
}

}  // namespace
}  // namespace test
}  // namespace gw
