// test/filters/session/session_config_test.cc — the `session` filter's
// config: duration bounds (one policy, from ParseContext), describe(), and
// the session-id node id and key it applies to the process's generator.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "core/sdk/dispatcher.h"
#include "core/sdk/registry.h"
#include "core/sdk/session_info.h"
#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/worker_services.h"
#include "filters/session/session_config.h"

namespace gw {
namespace {

// The session config parsed from `json` (nullptr with *error on failure).
std::shared_ptr<const FilterConfig> parse(const std::string& json, std::string* error) {
  const FilterConfigFactory* type = FilterRegistry::get().find("session");
  if (type == nullptr) {
    *error = "session is not registered";
    return nullptr;
  }
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  std::vector<ClusterConfig> clusters;
  ParseContext ctx(clusters, "cfgtest");
  auto cfg = type->parse(doc, ctx);
  error->clear();
  for (const auto& e : ctx.errors()) *error += e.pointer + ": " + e.message + "\n";
  return cfg;
}

// describe() of `cfg`, serialized compactly.
std::string describe(const FilterConfig& cfg) {
  rapidjson::Document doc(rapidjson::kObjectType);
  cfg.describe(doc, doc.GetAllocator());
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  doc.Accept(w);
  return sb.GetString();
}

TEST(SessionConfigTest, OutOfRangeDurationsAreParseErrors) {
  Dispatcher d("cfg");
  WorkerServices services;
  std::string error;
  // Past parseDuration's 30-day limit: a clean error, not a crash.
  EXPECT_EQ(test::buildFilter("session", R"({"idle_timeout": "721h"})", d, services, {}, &error),
            nullptr);
  EXPECT_EQ(error,
            "/idle_timeout: must be a duration from 0ms to 720h (digits then ms, s, m or h: "
            "\"250ms\", \"30s\", \"5m\"), got \"721h\"");
  EXPECT_EQ(test::buildFilter("session", R"({"resume": {"window": "721h"}})", d, services, {},
                              &error),
            nullptr);
  EXPECT_EQ(error.rfind("/resume/window: must be a duration from 1ms to 720h", 0), 0u) << error;
  EXPECT_EQ(test::buildFilter(
                "session",
                R"({"store": "redis", "redis": {"address": "127.0.0.1:6379", "command_timeout": "721h"}})",
                d, services, {}, &error),
            nullptr);
  EXPECT_EQ(error.rfind("/redis/command_timeout: must be a duration from 1ms to 720h", 0), 0u)
      << error;
  // Zero: allowed for idle_timeout (never idle-closed), not for cleanup_interval.
  EXPECT_NE(parse(R"({"idle_timeout": "0s"})", &error), nullptr) << error;
  EXPECT_EQ(parse(R"({"cleanup_interval": "0s"})", &error), nullptr);
  EXPECT_EQ(error.rfind("/cleanup_interval: must be a duration from 1ms to 720h", 0), 0u) << error;
  // The largest accepted value.
  EXPECT_NE(parse(R"({"idle_timeout": "720h"})", &error), nullptr) << error;
}

// `"node_id":N,` for the node id of the process's generator (the default in
// describe(): it depends on the host name).
std::string nodeIdJson() {
  return "\"node_id\":" + std::to_string(SessionIdGenerator::process().nodeId()) + ",";
}

TEST(SessionConfigTest, DescribeShowsDefaults) {
  std::string error;
  auto cfg = parse("{}", &error);
  ASSERT_NE(cfg, nullptr) << error;
  EXPECT_EQ(describe(*cfg),
            R"({"store":"memory","shards":16,"expected_sessions":0,)" + nodeIdJson() +
                R"("cleanup_interval":"5m",)"
                R"("idle_timeout":"30m","duplicate_login":"kick_old",)"
            R"("resume":{"enabled":false,"window":"1m","announce":"on_request"}})");
}

TEST(SessionConfigTest, DescribeShowsTheValuesInForceAndNoSecrets) {
  std::string error;
  auto cfg = parse(R"({"store": "redis", "idle_timeout": "90s", "duplicate_login": "refuse_new",
                       "resume": {"enabled": true, "window": "2m", "announce": "always"},
                       "redis": {"address": "10.0.0.5:6380", "prefix": "gw:",
                                 "command_timeout": "250ms"}})",
                   &error);
  ASSERT_NE(cfg, nullptr) << error;
  std::string d = describe(*cfg);
  EXPECT_EQ(d,
            R"({"store":"redis","shards":16,"expected_sessions":0,)" + nodeIdJson() +
                R"("cleanup_interval":"5m",)"
                R"("idle_timeout":"90s","duplicate_login":"refuse_new",)"
            R"("resume":{"enabled":true,"window":"2m","announce":"always"},)"
            R"("redis":{"address":"10.0.0.5:6380","prefix":"gw:","refresh_interval":"30s",)"
            R"("connect_timeout":"1s","command_timeout":"250ms","db":0}})");
  EXPECT_EQ(d.find("password"), std::string::npos);
}

// The Redis store's password: from a file (read at parse time, mode
// checked) or a variable, never written in the config; describe() names
// the file, never the password.
TEST(SessionConfigTest, RedisPasswordComesFromAFileOrVariableNeverTheConfig) {
  std::string error;
  EXPECT_EQ(parse(R"({"store": "redis", "redis": {"address": "127.0.0.1:6379",
                                                  "password": "literal-pw"}})",
                  &error),
            nullptr);
  EXPECT_EQ(error.rfind("/redis/password: a password is never written in the config: put it in "
                        "a file readable only by the gateway's user and name it with "
                        "\"password_file\", or name an environment variable holding it with "
                        "\"password_env\"",
                        0),
            0u)
      << error;
  EXPECT_EQ(error.find("literal-pw"), std::string::npos);
  char name[] = "/tmp/session_redis_pw_XXXXXX";
  int fd = ::mkstemp(name);  // mode 0600
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "file-secret\n", 12), 12);
  ::close(fd);
  std::string path = name;
  auto cfg = parse(R"({"store": "redis", "redis": {"address": "127.0.0.1:6379",
                       "password_file": ")" + path + R"(", "db": 3}})",
                   &error);
  ASSERT_NE(cfg, nullptr) << error;
  const auto& sc = static_cast<const session::SessionConfig&>(*cfg);
  EXPECT_EQ(sc.redis_config.auth.credentials.password, "file-secret");
  EXPECT_EQ(sc.redis_config.auth.credentials.db, 3);
  std::string d = describe(*cfg);
  EXPECT_NE(d.find(R"("password_file":")" + path + R"(","db":3})"), std::string::npos) << d;
  EXPECT_EQ(d.find("file-secret"), std::string::npos);
  // World-readable: refused.
  ::chmod(name, 0644);
  EXPECT_EQ(parse(R"({"store": "redis", "redis": {"address": "127.0.0.1:6379",
                      "password_file": ")" + path + R"("}})",
                  &error),
            nullptr);
  EXPECT_NE(error.find("/redis/password_file: password file \"" + path +
                       "\" is readable by everyone (mode 0644)"),
            std::string::npos)
      << error;
  std::remove(name);
}

// A temporary file holding `text`; removed by the destructor.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/session_id_key_XXXXXX";
    int fd = ::mkstemp(name);
    path = name;
    if (fd >= 0) {
      ::write(fd, text.data(), text.size());
      ::close(fd);
    }
  }
  ~TempFile() { std::remove(path.c_str()); }
};

TEST(SessionConfigTest, NodeIdAndKeyFileAreCheckedAtParseTime) {
  std::string error;
  EXPECT_EQ(parse(R"({"node_id": 65536})", &error), nullptr);
  EXPECT_NE(error.find("/node_id"), std::string::npos) << error;
  EXPECT_EQ(parse(R"({"id_key_file": "/nonexistent/key"})", &error), nullptr);
  EXPECT_EQ(error, "/id_key_file: cannot read \"/nonexistent/key\"\n");
  TempFile bad("not a key\n");
  EXPECT_EQ(parse(R"({"id_key_file": ")" + bad.path + R"("})", &error), nullptr);
  EXPECT_EQ(error.rfind("/id_key_file: \"" + bad.path + "\" must hold a 128-bit key as 32 hex", 0),
            0u)
      << error;
  TempFile good("00112233445566778899aabbccddeeff\n");
  auto cfg = parse(R"({"node_id": 513, "id_key_file": ")" + good.path + R"("})", &error);
  ASSERT_NE(cfg, nullptr) << error;
  std::string d = describe(*cfg);
  EXPECT_NE(d.find(R"("node_id":513,"id_key_file":")" + good.path + "\""), std::string::npos)
      << d;
  EXPECT_EQ(d.find("00112233"), std::string::npos) << "the key must not be shown: " << d;
}

// Found by config_fuzz (test/fuzz/regressions/config_fuzz/
// session_id_key_file_dev_zero.json): the key file was read whole, so
// /dev/zero made the load read until memory ran out.
TEST(SessionConfigTest, AnEndlessOrLargeKeyFileIsRefusedAfter4KiB) {
  std::string error;
  EXPECT_EQ(parse(R"({"id_key_file": "/dev/zero"})", &error), nullptr);
  EXPECT_EQ(error.rfind("/id_key_file: \"/dev/zero\" is larger than 4 KiB: not a key file", 0), 0u)
      << error;
  TempFile padded("00112233445566778899aabbccddeeff" + std::string(4096 - 32, '\n'));
  EXPECT_NE(parse(R"({"id_key_file": ")" + padded.path + R"("})", &error), nullptr) << error;
  TempFile big(std::string(4097, '0'));
  EXPECT_EQ(parse(R"({"id_key_file": ")" + big.path + R"("})", &error), nullptr);
  EXPECT_NE(error.find("larger than 4 KiB"), std::string::npos) << error;
}

TEST(SessionConfigTest, BuildingAChainAppliesNodeIdAndKeyToSessionIds) {
  // Parsing alone changes nothing; the first chain built with the config
  // sets the process generator's node id and key: ids then decode, under
  // the file's key, to the configured node id.
  TempFile key_file("000102030405060708090a0b0c0d0e0f");
  std::string json = R"({"node_id": 40000, "id_key_file": ")" + key_file.path + R"("})";
  std::string error;
  SessionIdGenerator::process().reset(1, std::nullopt);
  ASSERT_NE(parse(json, &error), nullptr) << error;
  EXPECT_EQ(SessionIdGenerator::process().nodeId(), 1);
  Dispatcher d("cfg");
  WorkerServices services;
  ASSERT_NE(test::buildFilter("session", json, d, services, {}, &error), nullptr) << error;
  EXPECT_EQ(SessionIdGenerator::process().nodeId(), 40000);
  SessionIdGenerator same_key(0, *SessionIdKey::parseHex("000102030405060708090a0b0c0d0e0f"));
  EXPECT_EQ(same_key.decode(SessionIdGenerator::process().next()).node, 40000);
}

}  // namespace
}  // namespace gw
