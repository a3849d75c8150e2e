// Tests of gw::Address::parse and toString (core/address.h).
#include "core/address.h"

#include <gtest/gtest.h>

namespace gw {
namespace {

TEST(AddressTest, ParsesIpv4) {
  std::string error;
  auto a = Address::parse("127.0.0.1:8080", &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->port(), 8080);
  EXPECT_EQ(a->ipString(), "127.0.0.1");
  EXPECT_EQ(a->toString(), "127.0.0.1:8080");
  EXPECT_EQ(a->len(), sizeof(sockaddr_in));
}

TEST(AddressTest, ParsesPortZeroAndMaxPort) {
  auto zero = Address::parse("0.0.0.0:0");
  ASSERT_TRUE(zero);
  EXPECT_EQ(zero->port(), 0);
  auto max = Address::parse("10.1.2.3:65535");
  ASSERT_TRUE(max);
  EXPECT_EQ(max->port(), 65535);
}

TEST(AddressTest, ParsesBracketedIpv6) {
  std::string error;
  auto a = Address::parse("[::1]:9000", &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->port(), 9000);
  EXPECT_EQ(a->ipString(), "::1");
  EXPECT_EQ(a->toString(), "[::1]:9000");
  EXPECT_EQ(a->len(), sizeof(sockaddr_in6));

  auto full = Address::parse("[2001:db8::a:1]:443");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->toString(), "[2001:db8::a:1]:443");
}

TEST(AddressTest, SetPortKeepsTheIp) {
  auto a = Address::parse("[::1]:1");
  ASSERT_TRUE(a);
  a->setPort(4242);
  EXPECT_EQ(a->toString(), "[::1]:4242");
}

struct BadCase {
  const char* text;
  const char* message;
};

class AddressBadInputTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(AddressBadInputTest, IsRejectedWithAMessage) {
  std::string error;
  EXPECT_FALSE(Address::parse(GetParam().text, &error));
  EXPECT_EQ(error, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Messages, AddressBadInputTest,
    ::testing::Values(
        BadCase{"", "expected \"ip:port\", got \"\""},
        BadCase{"127.0.0.1", "expected \"ip:port\", got \"127.0.0.1\""},
        BadCase{"localhost:80",
                "\"localhost\" is not an IPv4 or IPv6 address (host names are not resolved)"},
        BadCase{"256.1.1.1:80",
                "\"256.1.1.1\" is not an IPv4 or IPv6 address (host names are not resolved)"},
        BadCase{":80", "\"\" is not an IPv4 or IPv6 address (host names are not resolved)"},
        BadCase{"127.0.0.1:", "bad port in \"127.0.0.1:\""},
        BadCase{"127.0.0.1:8o", "bad port in \"127.0.0.1:8o\""},
        BadCase{"127.0.0.1:-1", "bad port in \"127.0.0.1:-1\""},
        BadCase{"127.0.0.1:123456", "bad port in \"127.0.0.1:123456\""},
        BadCase{"127.0.0.1:65536", "port out of range in \"127.0.0.1:65536\""},
        BadCase{"::1:80", "IPv6 addresses need brackets: \"[::1]:port\""},
        BadCase{"[::1]80", "expected \"[ipv6]:port\", got \"[::1]80\""},
        BadCase{"[::1", "expected \"[ipv6]:port\", got \"[::1\""},
        BadCase{"[::1]:", "bad port in \"[::1]:\""},
        BadCase{"[1.2.3.4]:80", "brackets are for IPv6 only: write \"1.2.3.4:80\""},
        BadCase{"[localhost]:80",
                "\"localhost\" is not an IPv4 or IPv6 address (host names are not resolved)"}));

TEST(AddressTest, ErrorPointerIsOptional) { EXPECT_FALSE(Address::parse("nonsense")); }

}  // namespace
}  // namespace gw
