// Tests of gw::config::parseDuration (core/sdk/duration.h).
#include "core/sdk/duration.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

#include "core/sdk/schema_check.h"

namespace gw {
namespace config {
namespace {

using std::chrono::milliseconds;

TEST(DurationTest, ParsesEachUnit) {
  EXPECT_EQ(parseDuration("100ms"), milliseconds(100));
  EXPECT_EQ(parseDuration("30s"), milliseconds(30'000));
  EXPECT_EQ(parseDuration("5m"), milliseconds(300'000));
  EXPECT_EQ(parseDuration("2h"), milliseconds(7'200'000));
  EXPECT_EQ(parseDuration("0s"), milliseconds(0));
  EXPECT_EQ(parseDuration("007s"), milliseconds(7000));
}

TEST(DurationTest, AcceptsUpToThirtyDays) {
  EXPECT_EQ(parseDuration("720h"), milliseconds(720LL * 3600 * 1000));
  EXPECT_EQ(parseDuration("2592000000ms"), milliseconds(2'592'000'000LL));
  EXPECT_EQ(parseDuration("721h"), std::nullopt);
  EXPECT_EQ(parseDuration("2592000001ms"), std::nullopt);
  EXPECT_EQ(parseDuration("43201m"), std::nullopt);
  // Digits that would overflow 64 bits are refused, not wrapped.
  EXPECT_EQ(parseDuration("99999999999999999999999999h"), std::nullopt);
  EXPECT_EQ(parseDuration("18446744073709551617ms"), std::nullopt);
}

TEST(DurationTest, RejectsEverythingElse) {
  for (const char* bad : {"", "5", "ms", "s5", "5 s", " 5s", "5s ", "5d", "5S", "5sec", "-1s",
                          "+1s", "1.5s", "1e3ms", "5mss", "5hm"}) {
    EXPECT_EQ(parseDuration(bad), std::nullopt) << "\"" << bad << "\"";
  }
}

// Schemas validate durations with kDurationPattern (RapidJSON's regex);
// the parser must accept exactly what the pattern lets through.
TEST(DurationTest, SchemaPatternAgreesWithTheParser) {
  std::string schema = R"({"type": "string", "pattern": ")" + std::string(kDurationPattern) + "\"}";
  auto matches = [&](const char* text) {
    rapidjson::Value v(rapidjson::StringRef(text));
    return !checkSchema(schema, v, "").has_value();
  };
  for (const char* text : {"1ms", "30s", "5m", "1h", "0s"}) {
    EXPECT_TRUE(matches(text)) << text;
    EXPECT_TRUE(parseDuration(text)) << text;
  }
  for (const char* text : {"5", "5d", "1.5s", "s", "5 s", "-1s"}) {
    EXPECT_FALSE(matches(text)) << text;
    EXPECT_FALSE(parseDuration(text)) << text;
  }
}

}  // namespace
}  // namespace config
}  // namespace gw
