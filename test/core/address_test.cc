// Tests of gw::Address::parse and toString (core/address.h).
#include "core/sdk/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

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

TEST(AddressTest, IsCompact) {
  // Every client connection holds one: not a 128-byte sockaddr_storage.
  EXPECT_LE(sizeof(Address), 32u);
}

TEST(AddressTest, Ipv4SockaddrRoundTrip) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(4321);
  ASSERT_EQ(inet_pton(AF_INET, "192.0.2.7", &in.sin_addr), 1);
  // accept() callers pass the size of a sockaddr_storage they filled.
  sockaddr_storage ss{};
  std::memcpy(&ss, &in, sizeof(in));
  Address a(reinterpret_cast<sockaddr*>(&ss), sizeof(ss));
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_EQ(a.len(), sizeof(sockaddr_in));
  EXPECT_EQ(a.port(), 4321);
  EXPECT_EQ(a.toString(), "192.0.2.7:4321");
  EXPECT_EQ(std::memcmp(a.sockaddr_ptr(), &in, sizeof(in)), 0);
  Address copy(a.sockaddr_ptr(), a.len());
  EXPECT_EQ(copy.toString(), a.toString());
  EXPECT_EQ(std::memcmp(copy.sockaddr_ptr(), &in, sizeof(in)), 0);
}

TEST(AddressTest, Ipv6SockaddrRoundTripKeepsScopeAndFlow) {
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(65535);
  in6.sin6_flowinfo = htonl(0x12345);
  in6.sin6_scope_id = 3;
  ASSERT_EQ(inet_pton(AF_INET6, "fe80::1:2", &in6.sin6_addr), 1);
  Address a(reinterpret_cast<sockaddr*>(&in6), sizeof(in6));
  EXPECT_EQ(a.family(), AF_INET6);
  EXPECT_EQ(a.len(), sizeof(sockaddr_in6));
  EXPECT_EQ(a.port(), 65535);
  EXPECT_EQ(a.toString(), "[fe80::1:2]:65535");
  const auto* back = reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr());
  EXPECT_EQ(back->sin6_scope_id, 3u);
  EXPECT_EQ(back->sin6_flowinfo, htonl(0x12345));
  EXPECT_EQ(std::memcmp(a.sockaddr_ptr(), &in6, sizeof(in6)), 0);
}

TEST(AddressTest, ParsedAddressesBindAndConnect) {
  for (const char* text : {"127.0.0.1:0", "[::1]:0"}) {
    auto a = Address::parse(text);
    ASSERT_TRUE(a) << text;
    std::string error;
    int lfd = listenSocket(*a, 4, &error);
    if (lfd < 0 && a->family() == AF_INET6) continue;  // no IPv6 loopback here
    ASSERT_GE(lfd, 0) << error;
    Address bound = localAddress(lfd);
    EXPECT_EQ(bound.family(), a->family());
    EXPECT_NE(bound.port(), 0);
    EXPECT_EQ(bound.ipString(), a->ipString());
    int fd = connectSocket(bound, TcpLiveness{}, &error);
    EXPECT_GE(fd, 0) << error;
    if (fd >= 0) ::close(fd);
    ::close(lfd);
  }
}

// The value of an int socket option (-1 if getsockopt fails).
int intOption(int fd, int level, int option) {
  int v = -1;
  socklen_t len = sizeof(v);
  if (getsockopt(fd, level, option, &v, &len) != 0) return -1;
  return v;
}

TEST(AddressTest, ConnectSocketSetsKeepaliveAndUserTimeout) {
  std::string error;
  int lfd = listenSocket(*Address::parse("127.0.0.1:0"), 4, &error);
  ASSERT_GE(lfd, 0) << error;
  TcpLiveness l;
  l.keepalive_idle = std::chrono::seconds(7);
  l.keepalive_interval = std::chrono::seconds(2);
  l.keepalive_count = 5;
  l.user_timeout = std::chrono::milliseconds(4500);
  int fd = connectSocket(localAddress(lfd), l, &error);
  ASSERT_GE(fd, 0) << error;
  EXPECT_EQ(intOption(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(intOption(fd, IPPROTO_TCP, TCP_KEEPIDLE), 7);
  EXPECT_EQ(intOption(fd, IPPROTO_TCP, TCP_KEEPINTVL), 2);
  EXPECT_EQ(intOption(fd, IPPROTO_TCP, TCP_KEEPCNT), 5);
  EXPECT_EQ(intOption(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 4500);
  EXPECT_EQ(intOption(fd, IPPROTO_TCP, TCP_NODELAY), 1);
  // Off: no keepalive, the kernel's default user timeout.
  TcpLiveness off;
  off.keepalive = false;
  off.user_timeout = std::chrono::milliseconds(0);
  ASSERT_TRUE(setTcpLiveness(fd, off, &error)) << error;
  EXPECT_EQ(intOption(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
  EXPECT_EQ(intOption(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
  ::close(fd);
  ::close(lfd);
}

TEST(AddressTest, SetTcpLivenessNamesTheOptionThatFailed) {
  std::string error;
  TcpLiveness bad;
  bad.keepalive_count = 100000;  // above the kernel's maximum (127)
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(setTcpLiveness(fd, bad, &error));
  EXPECT_NE(error.find("TCP_KEEPCNT 100000"), std::string::npos) << error;
  ::close(fd);
}

TEST(AddressTest, DefaultAndOtherFamilies) {
  Address none;
  EXPECT_EQ(none.family(), AF_UNSPEC);
  EXPECT_EQ(none.len(), 0u);
  EXPECT_EQ(none.port(), 0);
  EXPECT_EQ(none.toString(), "unknown:0");
  // Another family keeps its family and at most 28 bytes.
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::strcpy(un.sun_path, "/tmp/a-long-enough-unix-socket-path");
  Address u(reinterpret_cast<sockaddr*>(&un), sizeof(un));
  EXPECT_EQ(u.family(), AF_UNIX);
  EXPECT_LE(u.len(), 28u);
  EXPECT_EQ(u.port(), 0);
  EXPECT_EQ(u.toString(), "unknown:0");
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
