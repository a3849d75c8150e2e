// Integration test of dead-peer detection on the real gateway binary: the
// socket options of `tcp_keepalive` and `tcp_user_timeout` are set on the
// client sockets a listener accepts and on the backend sockets a cluster
// connects (here through tcp_proxy). The test reads them from the gateway's
// own sockets: it duplicates them with pidfd_getfd (the gateway is its child,
// so it may) and asks getsockopt.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/integration/ops_test.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;

// The port of the peer of socket `fd`, or 0.
uint16_t peerPort(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 || a.sin_family != AF_INET)
    return 0;
  return ntohs(a.sin_port);
}

// A copy of the socket of process `pid` whose peer is 127.0.0.1:`peer_port`
// (invalid when there is none or pidfd_getfd is refused; *why says which).
UniqueFd socketOf(pid_t pid, uint16_t peer_port, std::string* why) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    *why = std::string("pidfd_open: ") + std::strerror(errno);
    return UniqueFd();
  }
  UniqueFd hold(pidfd);
  *why = "no socket of the gateway has peer port " + std::to_string(peer_port);
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    int target = std::atoi(e.path().filename().c_str());
    int fd = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, target, 0));
    if (fd < 0) {
      *why = std::string("pidfd_getfd: ") + std::strerror(errno);
      continue;
    }
    if (peerPort(fd) == peer_port) return UniqueFd(fd);
    ::close(fd);
  }
  return UniqueFd();
}

int intOption(int fd, int level, int option) {
  int v = -1;
  socklen_t len = sizeof(v);
  if (getsockopt(fd, level, option, &v, &len) != 0) return -1;
  return v;
}

TEST(TcpLivenessTest, ListenerAndClusterSettingsReachTheGatewaysSockets) {
  UniqueFd backend = listenTcp(0);
  ASSERT_TRUE(backend.valid());
  uint16_t backend_port = localPort(backend.get());
  std::string config =
      R"({"workers": 1, "admin": )" + testAdminJson() +
      R"(, "listeners": [{"name": "raw", "address": "127.0.0.1:0",
           "tcp_keepalive": {"idle": "7s", "interval": "2s", "count": 5},
           "tcp_user_timeout": "4500ms",
           "filters": [{"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
         "clusters": [{"name": "echo", "hosts": ["127.0.0.1:)" +
      std::to_string(backend_port) + R"("],
           "tcp_keepalive": {"idle": "11s", "interval": "3s", "count": 6},
           "tcp_user_timeout": "2500ms"}]})";
  GatewayProcess gw;
  std::string error;
  ASSERT_TRUE(gw.start(config, &error)) << error;
  uint16_t port = gw.listenerPort("raw");
  ASSERT_NE(port, 0) << gw.output();
  UniqueFd client = connectTcp(port);
  ASSERT_TRUE(client.valid());
  UniqueFd upstream = acceptTcp(backend.get(), milliseconds(3000));
  ASSERT_TRUE(upstream.valid()) << gw.output();

  // The gateway's side of the client connection: its peer is our client.
  std::string why;
  UniqueFd accepted = socketOf(gw.pid(), localPort(client.get()), &why);
  if (!accepted.valid() && why.find("pidfd") != std::string::npos)
    GTEST_SKIP() << "cannot read the gateway's sockets here: " << why;
  ASSERT_TRUE(accepted.valid()) << why;
  EXPECT_EQ(intOption(accepted.get(), SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(intOption(accepted.get(), IPPROTO_TCP, TCP_KEEPIDLE), 7);
  EXPECT_EQ(intOption(accepted.get(), IPPROTO_TCP, TCP_KEEPINTVL), 2);
  EXPECT_EQ(intOption(accepted.get(), IPPROTO_TCP, TCP_KEEPCNT), 5);
  EXPECT_EQ(intOption(accepted.get(), IPPROTO_TCP, TCP_USER_TIMEOUT), 4500);

  // The gateway's backend socket: its peer is the backend.
  UniqueFd connected = socketOf(gw.pid(), backend_port, &why);
  ASSERT_TRUE(connected.valid()) << why;
  EXPECT_EQ(intOption(connected.get(), SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(intOption(connected.get(), IPPROTO_TCP, TCP_KEEPIDLE), 11);
  EXPECT_EQ(intOption(connected.get(), IPPROTO_TCP, TCP_KEEPINTVL), 3);
  EXPECT_EQ(intOption(connected.get(), IPPROTO_TCP, TCP_KEEPCNT), 6);
  EXPECT_EQ(intOption(connected.get(), IPPROTO_TCP, TCP_USER_TIMEOUT), 2500);
  // Our copies keep the sockets open: close them and the client, so the
  // drain ends at once.
  accepted.reset();
  connected.reset();
  client.reset();
  upstream.reset();
  EXPECT_EQ(gw.stop(), 0);
}

}  // namespace
}  // namespace test
}  // namespace gw
