// Tests of `gateway --check-config FILE` (and its other flags) on the real
// binary: a broken file prints "FILE: /json/pointer: message" and exits 1;
// the shipped example passes with exit 0.
#include <gtest/gtest.h>

#include <string>

#include "test/harness/gateway.h"
#include "test/harness/process.h"
#include "test/harness/runfiles.h"

namespace gw {
namespace test {
namespace {

constexpr std::chrono::seconds kTimeout(10);

struct RunResult {
  std::optional<int> code;
  std::string output;
};

RunResult runGateway(const std::vector<std::string>& args) {
  Process p;
  std::vector<std::string> argv = {GatewayProcess::binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string error;
  EXPECT_TRUE(p.start(argv, &error)) << error;
  RunResult r;
  r.code = p.wait(kTimeout);
  r.output = p.output();
  return r;
}

TEST(CheckConfigTest, BrokenFilePrintsThePointerAndExitsOne) {
  std::string path = writeTempFile(
      R"({"listeners": [{"name": "raw", "address": "127.0.0.1:1",
          "filters": [{"name": "tcp_proxy", "config": {"cluster": 5}}]}]})",
      "broken-", ".json");
  ASSERT_FALSE(path.empty());
  RunResult r = runGateway({"--check-config", path});
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find(path + ": /listeners/0/filters/0/config/cluster: must be a string that "
                                 "is not empty, got 5\n"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("gateway: 1 config error; not starting"), std::string::npos) << r.output;
}

TEST(CheckConfigTest, EveryErrorIsPrintedAndCounted) {
  std::string path = writeTempFile(
      R"({"listeners": [{"name": "raw", "address": "nowhere",
          "filters": [{"name": "tcp_proxy", "config": {"cluster": "missing"}}]}]})",
      "broken-", ".json");
  RunResult r = runGateway({"--check-config", path});
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find(path + ": /listeners/0/address: expected \"ip:port\", got \"nowhere\""),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(path + ": /listeners/0/filters/0/config/cluster: unknown cluster "
                                 "\"missing\""),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("gateway: 2 config errors; not starting"), std::string::npos) << r.output;
}

TEST(CheckConfigTest, MalformedJsonIsReportedWithItsPosition) {
  std::string path = writeTempFile("{\"listeners\": [\n", "broken-", ".json");
  RunResult r = runGateway({"--check-config", path});
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find(path + ": malformed JSON at line 2, column 1 (offset 16)"),
            std::string::npos)
      << r.output;
}

TEST(CheckConfigTest, MissingFileExitsOne) {
  RunResult r = runGateway({"--check-config", "/nonexistent/gateway.json"});
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/gateway.json: cannot open the file"), std::string::npos)
      << r.output;
}

TEST(CheckConfigTest, ShippedTcpProxyExampleIsValid) {
  std::string path = runfile("config/tcp_proxy.json");
  RunResult r = runGateway({"--check-config", path});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(path + ": OK (1 listener(s), 1 cluster(s))"), std::string::npos)
      << r.output;
}

// A host given by DNS name is checked for syntax only (a name that does not
// resolve here, with nameservers that do not exist, still passes) and the
// output says it is resolved at run time.
TEST(CheckConfigTest, HostNamesAreCheckedForSyntaxOnly) {
  std::string path = writeTempFile(
      R"({"dns": {"resolv_conf": "/nonexistent/resolv.conf"},
          "listeners": [{"name": "raw", "address": "127.0.0.1:1",
          "filters": [{"name": "tcp_proxy", "config": {"cluster": "game"}}]}],
          "clusters": [{"name": "game", "hosts": ["127.0.0.1:9000", "game.invalid:7000"]}]})",
      "names-", ".json");
  ASSERT_FALSE(path.empty());
  RunResult r = runGateway({"--check-config", path});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("cluster 'game': host \"game.invalid:7000\" is a DNS name: checked for "
                          "syntax only, resolved at run time"),
            std::string::npos)
      << r.output;
}

TEST(CheckConfigTest, ListFiltersIncludesTheBuiltIns) {
  RunResult r = runGateway({"--list-filters"});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("tcp_proxy\n"), std::string::npos) << r.output;
}

TEST(CheckConfigTest, BadArgumentsExitTwoWithUsage) {
  RunResult r = runGateway({"--frobnicate"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("gateway: unknown argument '--frobnicate'"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("usage: gateway"), std::string::npos) << r.output;
  RunResult none = runGateway({});
  EXPECT_EQ(none.code, 2) << none.output;
}

}  // namespace
}  // namespace test
}  // namespace gw
