// Integration tests of the admin API's protection (docs/admin.md, "Security")
// over real HTTP against the real gateway binary:
// - the mutating endpoints (POST /drain, POST /sessions/{id}/kick) need
//   `Authorization: Bearer <token>` from admin.token_file (or
//   $GATEWAY_ADMIN_TOKEN_FILE): 401 without it or with a wrong one, 403 when
//   no token is configured; the token is read again on reload;
// - browser requests are refused: a foreign Origin or `Sec-Fetch-Site:
//   cross-site` (403) and a POST body that is not JSON (415), so a
//   cross-site form cannot reach them;
// - a foreign Host is refused (403) on every endpoint except the probe and
//   scrape endpoints /metrics, /healthz and /ready (DNS rebinding);
// - an unreadable, empty or malformed token file is a config error naming
//   the file.
// The first two tests reproduce issue 14's item 2 as found: a cross-site
// text/plain form POST kicked a live session and drained the gateway, and
// GET /config answered a foreign Host.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
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

// Expects status `code` and a JSON {"error": ...} body mentioning `needle`.
void expectError(const HttpResponse& r, int code, const std::string& needle) {
  EXPECT_EQ(r.status, code) << r.head << "\n" << r.body;
  EXPECT_EQ(r.header("Content-Type"), "application/json") << r.head;
  rapidjson::Document doc;
  std::string why;
  ASSERT_TRUE(parseJson(r.body, &doc, &why)) << why;
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("error") && doc["error"].IsString()) << r.body;
  EXPECT_NE(std::string(doc["error"].GetString()).find(needle), std::string::npos)
      << "expected '" << needle << "' in " << r.body;
}

// The headers of a cross-site HTML form POST (enctype text/plain) from a
// page on evil.example whose name was rebound to 127.0.0.1.
std::vector<std::string> crossSiteForm(uint16_t admin) {
  return {"Host: evil.example:" + std::to_string(admin), "Origin: http://evil.example",
          "Content-Type: text/plain", "Sec-Fetch-Site: cross-site"};
}

// The operator's curl on the pod, with `token`.
std::vector<std::string> operatorHeaders(const std::string& token = kTestAdminToken) {
  return {"Host: 127.0.0.1", "Authorization: Bearer " + token};
}

// A tcp_proxy gateway with no admin token configured (the default).
std::string noTokenConfig() {
  return R"({"workers": 1, "admin": {"address": "127.0.0.1:0"},
    "listeners": [{"name": "raw", "address": "127.0.0.1:0",
      "filters": [{"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
    "clusters": [{"name": "echo", "hosts": ["127.0.0.1:9"]}]})";
}

bool linked(const std::string& filter) {
  std::string out;
  runCommand({GatewayProcess::binary(), "--list-filters"}, &out);
  return ("\n" + out).find("\n" + filter + "\n") != std::string::npos;
}

// A gateway with the session filter and no admin token (the shipped default
// before this change), one live session through a raw backend.
TEST(AdminSecurityRepro, CrossSiteFormPostCannotKickOrDrainWithoutAToken) {
  if (!linked("session")) GTEST_SKIP() << "the session filter is not linked in";
  UniqueFd backend = listenTcp(0);
  ASSERT_TRUE(backend.valid());
  GatewayProcess gw;
  std::string error;
  ASSERT_TRUE(gw.start(R"({"workers": 1, "drain_timeout": "1s", "admin": {"address": "127.0.0.1:0"},
    "listeners": [{"name": "game", "address": "127.0.0.1:0", "filters": [
      {"name": "framing", "config": {}}, {"name": "session", "config": {}},
      {"name": "upstream", "config": {"routes": [{"match": "200:0", "cluster": "game"}]}}]}],
    "clusters": [{"name": "game", "hosts": ["127.0.0.1:)" +
                           std::to_string(localPort(backend.get())) + R"("]}]})",
                       &error))
      << error;
  uint16_t admin = adminPort(gw);
  ASSERT_NE(admin, 0);
  UniqueFd client = connectTcp(gw.listenerPort("game"));
  ASSERT_TRUE(client.valid());
  ASSERT_TRUE(sendAll(client.get(), encodeClientFrame(7, 200u << 8, "hi")));
  UniqueFd up = acceptTcp(backend.get(), milliseconds(3000));
  ASSERT_TRUE(up.valid()) << gw.output();
  uint64_t session = firstDataSession(up.get());
  ASSERT_NE(session, 0u) << gw.output();
  // The old code answered 200 {"kicked": ...} and closed the player.
  std::string kick = "/sessions/" + std::to_string(session) + "/kick";
  HttpResponse k = httpSend(admin, "POST", kick, crossSiteForm(admin), "x=1");
  EXPECT_EQ(k.status, 403) << k.body;
  EXPECT_FALSE(waitClosed(client.get(), milliseconds(300))) << "the session was kicked";
  // The old code answered 202 and drained.
  HttpResponse d = httpSend(admin, "POST", "/drain", crossSiteForm(admin), "x=1");
  EXPECT_EQ(d.status, 403) << d.body;
  // Even from the pod itself: without a configured token the mutating
  // endpoints are off, and the error says how to turn them on.
  expectError(httpRequest(admin, "POST", "/drain"), 403, "admin.token_file");
  expectError(httpRequest(admin, "POST", kick), 403, "GATEWAY_ADMIN_TOKEN_FILE");
  EXPECT_FALSE(waitClosed(client.get(), milliseconds(100))) << "the session was kicked";
  EXPECT_EQ(httpRequest(admin, "GET", "/ready").status, 200) << "the gateway drains";
  EXPECT_EQ(gw.stop(), 0);
}

// The old code answered GET /config (the whole config) to any Host, so a
// page on a rebound name could read it.
TEST(AdminSecurityRepro, ConfigAnswersOnlyAllowedHosts) {
  GatewayProcess gw;
  std::string error;
  ASSERT_TRUE(gw.start(noTokenConfig(), &error)) << error;
  uint16_t admin = adminPort(gw);
  ASSERT_NE(admin, 0);
  for (const char* path : {"/config", "/clusters", "/sessions/42", "/"}) {
    expectError(httpSend(admin, "GET", path, {"Host: evil.example"}), 403,
                "Host \"evil.example\" is not allowed");
    expectError(httpSend(admin, "GET", path, {"Host: 10.1.2.3:" + std::to_string(admin)}), 403,
                "admin.allowed_hosts");
  }
  std::string port = std::to_string(admin);
  for (const std::string& host : std::vector<std::string>{"127.0.0.1", "127.0.0.1:" + port, "localhost",
                                  "LOCALHOST:" + port, "[::1]", "[::1]:" + port}) {
    EXPECT_EQ(httpSend(admin, "GET", "/config", {"Host: " + host}).status, 200) << host;
  }
  // Probes and Prometheus use the pod IP as Host: any Host.
  for (const char* path : {"/metrics", "/healthz", "/ready"}) {
    EXPECT_EQ(httpSend(admin, "GET", path, {"Host: 10.1.2.3:" + port}).status, 200) << path;
    EXPECT_EQ(httpSend(admin, "HEAD", path, {"Host: evil.example"}).status, 200) << path;
  }
  EXPECT_EQ(gw.stop(), 0);
}

// --- a gateway with the test token (tcp_proxy chain) ---

class AdminSecurityTest : public ::testing::Test {
 protected:
  void start(const std::string& extra = "") {
    std::string error;
    ASSERT_TRUE(gw_.start(proxyConfig(9, extra), &error)) << error;
    admin_ = adminPort(gw_);
    ASSERT_NE(admin_, 0) << gw_.output();
    ASSERT_TRUE(waitUntil([&] { return httpRequest(admin_, "GET", "/ready").status == 200; }));
  }
  // Not drained: /ready still answers 200.
  void expectNotDrained() {
    EXPECT_EQ(httpRequest(admin_, "GET", "/ready").status, 200) << "the gateway drains";
  }
  GatewayProcess gw_;
  uint16_t admin_ = 0;
};

TEST_F(AdminSecurityTest, MissingOrWrongTokenIs401WithWwwAuthenticate) {
  start();
  HttpResponse none = httpRequest(admin_, "POST", "/drain");
  expectError(none, 401, "Authorization: Bearer");
  EXPECT_EQ(none.header("WWW-Authenticate"), "Bearer realm=\"game-gateway admin\"");
  std::string wrong_same_length(kTestAdminToken);
  wrong_same_length.back() = 'X';
  std::string prefix(kTestAdminToken);
  prefix.pop_back();
  for (const std::vector<std::string>& headers :
       {operatorHeaders(wrong_same_length), operatorHeaders(prefix),
        operatorHeaders(std::string(kTestAdminToken) + "0"), operatorHeaders(""),
        std::vector<std::string>{"Host: 127.0.0.1",
                                 std::string("Authorization: Basic ") + kTestAdminToken},
        std::vector<std::string>{"Host: 127.0.0.1", std::string("X-Token: ") + kTestAdminToken}}) {
    HttpResponse r = httpSend(admin_, "POST", "/drain", headers);
    expectError(r, 401, "token");
    EXPECT_EQ(r.header("WWW-Authenticate"), "Bearer realm=\"game-gateway admin\"") << r.head;
    expectError(httpSend(admin_, "POST", "/sessions/42/kick", headers), 401, "token");
  }
  expectNotDrained();
  // Read-only endpoints need no token.
  EXPECT_EQ(httpRequest(admin_, "GET", "/config").status, 200);
  EXPECT_EQ(gw_.stop(), 0);
}

TEST_F(AdminSecurityTest, BrowserRequestsAreRefusedEvenWithTheToken) {
  start();
  std::vector<std::string> h = operatorHeaders();
  auto with = [&](const std::string& extra) {
    std::vector<std::string> v = h;
    v.push_back(extra);
    return v;
  };
  expectError(httpSend(admin_, "POST", "/drain", with("Origin: http://evil.example")), 403,
              "Origin \"http://evil.example\" is not allowed");
  expectError(httpSend(admin_, "POST", "/drain", with("Origin: null")), 403, "Origin");
  expectError(httpSend(admin_, "POST", "/drain", with("Sec-Fetch-Site: cross-site")), 403,
              "cross-site");
  expectError(httpSend(admin_, "POST", "/drain", with("Content-Type: text/plain"), "x=1"), 415,
              "Content-Type: application/json");
  expectError(httpSend(admin_, "POST", "/drain",
                       with("Content-Type: application/x-www-form-urlencoded"), "x=1"),
              415, "application/json");
  expectError(httpSend(admin_, "POST", "/drain", with("Content-Type: multipart/form-data"), ""),
              415, "application/json");
  expectError(httpSend(admin_, "POST", "/drain", h, "x=1"), 415, "application/json");
  std::vector<std::string> foreign_host = {"Host: evil.example",
                                           std::string("Authorization: Bearer ") + kTestAdminToken};
  expectError(httpSend(admin_, "POST", "/drain", foreign_host), 403, "Host");
  // An Origin is refused on read-only endpoints too (a page cannot read them).
  expectError(httpSend(admin_, "GET", "/metrics", {"Origin: http://evil.example"}), 403, "Origin");
  expectError(httpSend(admin_, "GET", "/config", {"Host: 127.0.0.1", "Sec-Fetch-Site: cross-site"}),
              403, "cross-site");
  expectNotDrained();
  EXPECT_EQ(gw_.stop(), 0);
}

TEST_F(AdminSecurityTest, RightTokenAndHostDrain) {
  start(R"("drain_timeout": "5s",)");
  // No session filter in this chain: the kick is authorized, then 404.
  expectError(adminPost(admin_, "/sessions/42/kick"), 404, "'session' filter");
  std::vector<std::string> h = operatorHeaders();
  h.push_back("Content-Type: application/json; charset=utf-8");
  h.push_back("Sec-Fetch-Site: same-origin");
  HttpResponse d = httpSend(admin_, "POST", "/drain", h, "{}");
  EXPECT_EQ(d.status, 202) << d.body;
  EXPECT_NE(d.body.find("\"status\": \"draining\""), std::string::npos) << d.body;
  // No connection is open: the drain ends at once.
  auto code = gw_.process().wait(seconds(5));
  ASSERT_TRUE(code.has_value()) << gw_.output();
  EXPECT_EQ(*code, 0);
}

TEST_F(AdminSecurityTest, ConfiguredHostsAndOriginsAreAllowed) {
  std::string admin_json = R"({"address": "127.0.0.1:0", "token_file": ")" +
                           testAdminTokenFile() +
                           R"(", "allowed_hosts": ["gateway-admin.internal", "Ops.Example:8443"],
                              "allowed_origins": ["https://ops.example"]})";
  std::string config = proxyConfig(9);
  config.replace(config.find(testAdminJson()), testAdminJson().size(), admin_json);
  std::string error;
  ASSERT_TRUE(gw_.start(config, &error)) << error;
  admin_ = adminPort(gw_);
  std::string port = std::to_string(admin_);
  EXPECT_EQ(httpSend(admin_, "GET", "/config", {"Host: gateway-admin.internal:" + port}).status,
            200);
  EXPECT_EQ(httpSend(admin_, "GET", "/config", {"Host: ops.example:8443"}).status, 200);
  expectError(httpSend(admin_, "GET", "/config", {"Host: ops.example:9999"}), 403, "Host");
  EXPECT_EQ(httpSend(admin_, "GET", "/config", {"Host: localhost"}).status, 200);  // still
  EXPECT_EQ(httpSend(admin_, "GET", "/config",
                     {"Host: gateway-admin.internal", "Origin: https://ops.example"})
                .status,
            200);
  expectError(httpSend(admin_, "GET", "/config",
                       {"Host: gateway-admin.internal", "Origin: https://ops.example:444"}),
              403, "admin.allowed_origins");
  // /config shows what is in force, never the token.
  HttpResponse c = httpRequest(admin_, "GET", "/config");
  EXPECT_EQ(c.body.find(kTestAdminToken), std::string::npos) << c.body;
  rapidjson::Document doc;
  ASSERT_TRUE(parseJson(c.body, &doc)) << c.body;
  const auto& a = doc["effective"]["admin"];
  EXPECT_TRUE(a["mutating_endpoints"].GetBool());
  EXPECT_EQ(a["token_file"].GetString(), testAdminTokenFile());
  EXPECT_EQ(a["allowed_origins"].Size(), 1u);
  EXPECT_EQ(gw_.stop(), 0);
}

// The token is read at start and again on every reload (SIGHUP).
TEST_F(AdminSecurityTest, TokenFromTheEnvironmentAndReadAgainOnReload) {
  std::string token_file = writeTempFile("first-token-0123456789\n", "env-token-");
  ::setenv("GATEWAY_ADMIN_TOKEN_FILE", token_file.c_str(), 1);
  std::string error;
  bool started = gw_.start(noTokenConfig(), &error);
  ::unsetenv("GATEWAY_ADMIN_TOKEN_FILE");
  ASSERT_TRUE(started) << error;
  admin_ = adminPort(gw_);
  expectError(httpSend(admin_, "POST", "/sessions/1/kick", operatorHeaders("first-token-01234567")),
              401, "token");
  expectError(httpSend(admin_, "POST", "/sessions/1/kick", operatorHeaders("first-token-0123456789")),
              404, "'session' filter");
  ASSERT_TRUE(writeFile(token_file, "second-token-0123456789"));
  ASSERT_TRUE(gw_.process().signal(SIGHUP));
  ASSERT_TRUE(waitUntil([&] {
    return metricValue(httpRequest(admin_, "GET", "/metrics").body,
                       "game_gateway_config_generation") == 2.0;
  })) << gw_.output();
  expectError(httpSend(admin_, "POST", "/sessions/1/kick", operatorHeaders("first-token-0123456789")),
              401, "token");
  expectError(
      httpSend(admin_, "POST", "/sessions/1/kick", operatorHeaders("second-token-0123456789")), 404,
      "'session' filter");
  // A reload that empties the file is refused; the token in force stays.
  ASSERT_TRUE(writeFile(token_file, ""));
  ASSERT_TRUE(gw_.process().signal(SIGHUP));
  ASSERT_TRUE(gw_.process().waitForOutput("is empty", seconds(5))) << gw_.output();
  expectError(
      httpSend(admin_, "POST", "/sessions/1/kick", operatorHeaders("second-token-0123456789")), 404,
      "'session' filter");
  EXPECT_EQ(gw_.stop(), 0);
}

// --check-config's verdict and output for `admin_json`.
std::pair<int, std::string> checkConfig(const std::string& admin_json) {
  std::string file = writeTempFile(R"({"admin": )" + admin_json + R"(,
    "listeners": [{"name": "raw", "address": "127.0.0.1:0",
      "filters": [{"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
    "clusters": [{"name": "echo", "hosts": ["127.0.0.1:9"]}]})",
                                   "admin-config-", ".json");
  std::string out;
  auto code = runCommand({GatewayProcess::binary(), "--check-config", file}, &out);
  return {code.value_or(-1), out};
}

TEST(AdminSecurityConfig, BadTokenFilesAreConfigErrorsNamingTheFile) {
  std::string missing = tempDir() + "/no-such-admin-token";
  auto [code, out] = checkConfig(R"({"token_file": ")" + missing + R"("})");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("/admin/token_file: cannot read " + missing), std::string::npos) << out;
  std::string empty = writeTempFile(" \n", "empty-token-");
  std::tie(code, out) = checkConfig(R"({"token_file": ")" + empty + R"("})");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("/admin/token_file: " + empty + " is empty"), std::string::npos) << out;
  std::string short_token = writeTempFile("short\n", "short-token-");
  std::tie(code, out) = checkConfig(R"({"token_file": ")" + short_token + R"("})");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("at least 16 characters"), std::string::npos) << out;
  std::string spaced = writeTempFile("two words in a token file\n", "spaced-token-");
  std::tie(code, out) = checkConfig(R"({"token_file": ")" + spaced + R"("})");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("printable ASCII"), std::string::npos) << out;
  std::tie(code, out) = checkConfig(R"({"allowed_hosts": ["evil.example/x"]})");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("/admin/allowed_hosts/0"), std::string::npos) << out;
  std::tie(code, out) = checkConfig(R"({"allowed_origins": ["evil.example"]})");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("/admin/allowed_origins/0"), std::string::npos) << out;
  std::tie(code, out) = checkConfig(R"({"token_file": ")" + testAdminTokenFile() + R"("})");
  EXPECT_EQ(code, 0) << out;
  // The env var names the file when the config does not; its errors say so.
  ::setenv("GATEWAY_ADMIN_TOKEN_FILE", missing.c_str(), 1);
  std::tie(code, out) = checkConfig(R"({"address": "127.0.0.1:0"})");
  ::unsetenv("GATEWAY_ADMIN_TOKEN_FILE");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("$GATEWAY_ADMIN_TOKEN_FILE: cannot read " + missing), std::string::npos)
      << out;
}

}  // namespace
}  // namespace test
}  // namespace gw
