// test/config/dns_config_test.cc — cluster hosts given by DNS name and the
// settings around them (issue 16, items 1 and 5): parseHostName()
// (core/sdk/host_name.h) and what the loader makes of `hosts` entries,
// `dns_refresh_interval`, `max_retries`, `retry_delay` and the top-level
// `dns` object, errors named by JSON pointer.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/sdk/host_name.h"
#include "config/loader.h"

namespace gw {
namespace config {
namespace {

using namespace std::chrono_literals;

// The host name `text` parses to, or "error: <why>".
std::string parsed(const std::string& text) {
  std::string why;
  auto n = parseHostName(text, &why);
  return n ? n->name + "|" + std::to_string(n->port) : "error: " + why;
}

TEST(HostNameTest, NamesWithPortsParse) {
  EXPECT_EQ(parsed("game:7000"), "game|7000");
  EXPECT_EQ(parsed("Game-Server.Default.svc.cluster.local:7000"),
            "game-server.default.svc.cluster.local|7000");
  EXPECT_EQ(parsed("game.test.:1"), "game.test|1");  // a fully qualified name
  EXPECT_EQ(parsed("_grpc._tcp.game:65535"), "_grpc._tcp.game|65535");
  EXPECT_EQ(parsed("pod-0.game-headless:7000"), "pod-0.game-headless|7000");
}

TEST(HostNameTest, BadNamesAndPortsSayWhatIsWrong) {
  EXPECT_EQ(parsed("game"),
            "error: \"game\": no port (expected \"ip:port\", \"[ipv6]:port\" or \"name:port\")");
  EXPECT_NE(parsed("game:").find("port must be 1-65535"), std::string::npos);
  EXPECT_NE(parsed("game:0").find("port must be 1-65535"), std::string::npos);
  EXPECT_NE(parsed("game:65536").find("port must be 1-65535"), std::string::npos);
  EXPECT_NE(parsed("game:7x").find("port must be 1-65535"), std::string::npos);
  EXPECT_NE(parsed(":7000").find("no host name"), std::string::npos);
  EXPECT_NE(parsed("a..b:7000").find("empty label"), std::string::npos);
  EXPECT_NE(parsed(".a:7000").find("empty label"), std::string::npos);
  EXPECT_NE(parsed("-game:7000").find("may not start or end with '-'"), std::string::npos);
  EXPECT_NE(parsed("game server:7000").find("character ' ' not allowed"), std::string::npos);
  EXPECT_NE(parsed("[::1:7000").find("character '[' not allowed"), std::string::npos);
  EXPECT_NE(parsed(std::string(64, 'a') + ":1").find("label longer than 63"), std::string::npos);
  std::string long_name;
  for (int i = 0; i < 64; ++i) long_name += "abc.";
  EXPECT_NE(parsed(long_name + "x:1").find("longer than 253"), std::string::npos);
  // A mistyped IPv4 address is not taken for a name.
  EXPECT_NE(parsed("10.0.0.256:7000").find("last label cannot be all digits"), std::string::npos);
  EXPECT_NE(parsed("10.0.0:7000").find("last label cannot be all digits"), std::string::npos);
}

// A config with one tcp_proxy listener on cluster "game" whose object's
// members are `cluster_members`, plus top-level `extra` members.
std::string withCluster(const std::string& cluster_members, const std::string& extra = "") {
  return R"({)" + extra + R"("listeners": [{"name": "l", "address": "127.0.0.1:8080",
      "filters": [{"name": "tcp_proxy", "config": {"cluster": "game"}}]}],
      "clusters": [{"name": "game", )" + cluster_members + "}]}";
}

TEST(DnsConfigTest, HostsMixAddressesAndNames) {
  LoadResult r = loadString(
      withCluster(R"("hosts": ["127.0.0.1:9000", "game.default.svc:7000", "[::1]:9001",
                               "Other.Test:7001"])"),
      "test.json");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  const ClusterConfig& c = r.config->clusters[0];
  ASSERT_EQ(c.hosts.size(), 2u);
  EXPECT_EQ(c.hosts[0].toString(), "127.0.0.1:9000");
  EXPECT_EQ(c.hosts[1].toString(), "[::1]:9001");
  ASSERT_EQ(c.host_names.size(), 2u);
  EXPECT_EQ(c.host_names[0].toString(), "game.default.svc:7000");
  EXPECT_EQ(c.host_names[1].toString(), "other.test:7001");
  // Defaults.
  EXPECT_EQ(c.dns_refresh_interval, 30s);
  EXPECT_EQ(c.max_retries, 0u);
  EXPECT_EQ(c.retry_delay, 100ms);
  EXPECT_EQ(r.config->dns.resolv_conf, "/etc/resolv.conf");
  EXPECT_EQ(r.config->dns.hosts_file, "");
  EXPECT_EQ(r.config->dns.timeout, 5s);
}

TEST(DnsConfigTest, SettingsAreRead) {
  LoadResult r = loadString(
      withCluster(R"("hosts": ["game:7000"], "dns_refresh_interval": "5s", "max_retries": 3,
                     "retry_delay": "250ms")",
                  R"("dns": {"resolv_conf": "/tmp/resolv.conf", "hosts_file": "/tmp/hosts",
                             "timeout": "2s"}, )"),
      "test.json");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  const ClusterConfig& c = r.config->clusters[0];
  EXPECT_EQ(c.dns_refresh_interval, 5s);
  EXPECT_EQ(c.max_retries, 3u);
  EXPECT_EQ(c.retry_delay, 250ms);
  EXPECT_EQ(r.config->dns.resolv_conf, "/tmp/resolv.conf");
  EXPECT_EQ(r.config->dns.hosts_file, "/tmp/hosts");
  EXPECT_EQ(r.config->dns.timeout, 2s);
}

TEST(DnsConfigTest, ErrorsNameTheirJsonPointer) {
  auto errors = [](const std::string& json) { return loadString(json, "test.json").errors; };
  EXPECT_EQ(errors(withCluster(R"("hosts": ["127.0.0.1:9000", "game"])")),
            std::vector<std::string>{
                "test.json: /clusters/0/hosts/1: \"game\": no port (expected \"ip:port\", "
                "\"[ipv6]:port\" or \"name:port\")"});
  EXPECT_EQ(errors(withCluster(R"("hosts": ["game:7000", "GAME:7000"])")),
            std::vector<std::string>{"test.json: /clusters/0/hosts/1: duplicate host \"game:7000\""});
  EXPECT_EQ(errors(withCluster(R"("hosts": ["game:7000"], "dns_refresh_interval": "500ms")")),
            std::vector<std::string>{"test.json: /clusters/0/dns_refresh_interval: must be at least 1s"});
  EXPECT_EQ(errors(withCluster(R"("hosts": ["game:7000"], "retry_delay": "0ms")")),
            std::vector<std::string>{"test.json: /clusters/0/retry_delay: must be from 1ms to 5s"});
  EXPECT_EQ(errors(withCluster(R"("hosts": ["game:7000"], "retry_delay": "6s")")),
            std::vector<std::string>{"test.json: /clusters/0/retry_delay: must be from 1ms to 5s"});
  EXPECT_EQ(errors(withCluster(R"("hosts": ["game:7000"])", R"("dns": {"timeout": "10ms"}, )")),
            std::vector<std::string>{"test.json: /dns/timeout: must be from 100ms to 60s"});
  // The schema: max_retries 0-10, no unknown keys in `dns`.
  EXPECT_FALSE(errors(withCluster(R"("hosts": ["game:7000"], "max_retries": 11)")).empty());
  EXPECT_FALSE(errors(withCluster(R"("hosts": ["game:7000"])", R"("dns": {"servers": []}, )")).empty());
}

}  // namespace
}  // namespace config
}  // namespace gw
