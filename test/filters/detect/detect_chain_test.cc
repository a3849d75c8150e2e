// Tests that `detect` learns from its listener's chain whether ClientHellos
// are TLS (a `tls` filter follows it), through the real config loader
// (config::loadString sets ParseContext's chain), and that the old explicit
// `"tls"` key is accepted only where it agrees with the chain.
#include <gtest/gtest.h>

#include <string>

#include "config/loader.h"
#include "filters/detect/detect.h"
#include "test/filters/tls/tls_test_support.h"

namespace gw {
namespace {

class DetectChainConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { cert_ = test::makeTestCert(dir_.path(), "server", "detect-chain"); }

  // One listener: detect (with `detect_config`), then tls when `with_tls`,
  // then tcp_proxy.
  config::LoadResult load(const std::string& detect_config, bool with_tls) {
    std::string tls = R"({"name": "tls", "config": {"cert_chain_file": ")" + cert_.cert_file +
                      R"(", "private_key_file": ")" + cert_.key_file + R"("}},)";
    return config::loadString(
        R"({"listeners": [{"name": "one", "address": "127.0.0.1:0", "filters": [
              {"name": "detect", "config": )" + detect_config + "}," +
            (with_tls ? tls : "") + R"(
              {"name": "tcp_proxy", "config": {"cluster": "c"}}]}],
            "clusters": [{"name": "c", "hosts": ["127.0.0.1:1"]}]})",
        "chain.json");
  }
  static const detect::DetectConfig& detectOf(const config::LoadResult& r) {
    return static_cast<const detect::DetectConfig&>(*r.config->listeners[0].filters[0].config);
  }

  test::TempDir dir_;
  test::TestCert cert_;
};

TEST_F(DetectChainConfigTest, TlsFollowingMakesClientHellosTls) {
  auto r = load("{}", true);
  ASSERT_NE(r.config, nullptr) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_TRUE(detectOf(r).tls);
}

TEST_F(DetectChainConfigTest, NoTlsFilterMeansRawFrames) {
  auto r = load("{}", false);
  ASSERT_NE(r.config, nullptr) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_FALSE(detectOf(r).tls);
}

TEST_F(DetectChainConfigTest, ExplicitKeyThatAgreesIsAccepted) {
  auto with = load(R"({"tls": true})", true);
  ASSERT_NE(with.config, nullptr) << (with.errors.empty() ? "" : with.errors[0]);
  EXPECT_TRUE(detectOf(with).tls);
  auto without = load(R"({"tls": false})", false);
  ASSERT_NE(without.config, nullptr) << (without.errors.empty() ? "" : without.errors[0]);
  EXPECT_FALSE(detectOf(without).tls);
}

// The load failed with exactly one error, containing `text`.
void expectOneError(const config::LoadResult& r, const std::string& text) {
  EXPECT_EQ(r.config, nullptr);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find(text), std::string::npos) << r.errors[0];
}

TEST_F(DetectChainConfigTest, ExplicitKeyThatContradictsTheChainIsAnError) {
  expectOneError(load(R"({"tls": true})", false),
                 "chain.json: /listeners/0/filters/0/config/tls: \"tls\": true, but no tls filter "
                 "follows detect");
  expectOneError(load(R"({"tls": false})", true),
                 "/listeners/0/filters/0/config/tls: \"tls\": false, but a tls filter follows "
                 "detect");
}

}  // namespace
}  // namespace gw
