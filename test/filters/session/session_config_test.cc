// test/filters/session/session_config_test.cc — the `session` filter's
// config: duration bounds (one policy, from ParseContext) and describe().
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <vector>

#include "core/sdk/dispatcher.h"
#include "core/sdk/registry.h"
#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/worker_services.h"

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

TEST(SessionConfigTest, DescribeShowsDefaults) {
  std::string error;
  auto cfg = parse("{}", &error);
  ASSERT_NE(cfg, nullptr) << error;
  EXPECT_EQ(describe(*cfg),
            R"({"store":"memory","shards":16,"expected_sessions":0,"cleanup_interval":"5m",)"
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
            R"({"store":"redis","shards":16,"expected_sessions":0,"cleanup_interval":"5m",)"
            R"("idle_timeout":"90s","duplicate_login":"refuse_new",)"
            R"("resume":{"enabled":true,"window":"2m","announce":"always"},)"
            R"("redis":{"address":"10.0.0.5:6380","prefix":"gw:","refresh_interval":"30s",)"
            R"("connect_timeout":"1s","command_timeout":"250ms"}})");
  EXPECT_EQ(d.find("password"), std::string::npos);
}

}  // namespace
}  // namespace gw
