// studio_gateway_test.cc — the studio's gateway builds over real sockets:
// :studio_gateway (msg_guard compiled in) and :plugin_host_gateway (the
// same built-ins, msg_guard loaded from msg_guard.so through "plugins").
// Each is started on a config (framing -> msg_guard -> upstream, to a
// cluster nobody listens on) and sent frames:
//   a denied msg_id  -> msg_guard's no_route error frame;
//   an allowed one   -> reaches upstream: upstream_unavailable;
//   one frame too many -> the connection is closed;
// and GET /metrics shows msg_guard's counters.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace {

// A TCP port nothing listens on right now (bound to 0, then closed).
int freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// A connected socket to 127.0.0.1:port, or -1.
int connectTo(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    timeval tv{10, 0};  // no read blocks longer than this
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
  }
  close(fd);
  return -1;
}

std::string clientFrame(uint16_t msg_id, uint32_t server_id, const std::string& payload) {
  std::string f(8, '\0');
  auto put = [&](size_t at, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) f[at + i] = static_cast<char>(v >> (8 * i));
  };
  put(0, payload.size(), 2);
  put(2, msg_id, 2);
  put(4, server_id, 4);
  return f + payload;
}

// Reads exactly n bytes; "" on EOF, error or timeout.
std::string readN(int fd, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, &out[got], n - got);
    if (r <= 0) return "";
    got += static_cast<size_t>(r);
  }
  return out;
}

struct ErrorFrame {
  uint16_t msg_id = 0, code = 0, refused = 0;
};

// Reads one client frame and decodes it as an error frame.
ErrorFrame readErrorFrame(int fd) {
  ErrorFrame e;
  std::string h = readN(fd, 8);
  if (h.empty()) return e;
  auto u16 = [](const std::string& s, size_t at) {
    return static_cast<uint16_t>(static_cast<uint8_t>(s[at]) |
                                 (static_cast<uint8_t>(s[at + 1]) << 8));
  };
  std::string p = readN(fd, u16(h, 0));
  e.msg_id = u16(h, 2);
  if (p.size() >= 4) {
    e.code = u16(p, 0);
    e.refused = u16(p, 2);
  }
  return e;
}

// GET path on 127.0.0.1:port; the whole response.
std::string httpGet(int port, const std::string& path) {
  int fd = connectTo(port);
  if (fd < 0) return "";
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
  write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t r;
  while ((r = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(r));
  close(fd);
  return out;
}

class StudioGateway : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    port_ = freePort();
    admin_port_ = freePort();
    std::string dir = std::getenv("TEST_TMPDIR");
    std::string config = dir + "/" + GetParam() + ".json";
    char cwd[4096];
    ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
    bool plugin = std::string(GetParam()) == "plugin_host_gateway";
    std::ofstream(config) << R"({"workers": 1, "admin": {"address": "127.0.0.1:)" << admin_port_
                          << R"("},)"
                          << (plugin ? std::string(R"("plugins": [")") + cwd +
                                           "/msg_guard/msg_guard.so\"],"
                                     : "")
                          << R"("listeners": [{"name": "game", "address": "127.0.0.1:)" << port_
                          << R"(", "filters": [
      {"name": "framing", "config": {}},
      {"name": "msg_guard", "config": {"deny_msg_ids": [7], "max_frames_per_connection": 3}},
      {"name": "upstream", "config": {"routes": [{"match": "200:0", "cluster": "game"}]}}]}],
    "clusters": [{"name": "game", "hosts": ["127.0.0.1:)"
                          << freePort() << R"("], "connect_timeout": "1s"}]})";
    std::string binary = std::string(cwd) + "/" + GetParam();
    pid_ = fork();
    if (pid_ == 0) {
      execl(binary.c_str(), binary.c_str(), "--config", config.c_str(), nullptr);
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while ((fd_ = connectTo(port_)) < 0) {
      int status;
      ASSERT_EQ(waitpid(pid_, &status, WNOHANG), 0) << binary << " exited; see its log above";
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << binary << " is not listening";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  void send(const std::string& bytes) {
    ASSERT_EQ(write(fd_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }

  int port_ = 0, admin_port_ = 0, fd_ = -1;
  pid_t pid_ = -1;
};

TEST_P(StudioGateway, GuardsFramesOverRealSockets) {
  const uint32_t server_id = 200 << 8;  // server_type 200, world 0: the "game" route
  send(clientFrame(7, server_id, "denied"));
  ErrorFrame e = readErrorFrame(fd_);
  EXPECT_EQ(e.msg_id, 0xFFFF);
  EXPECT_EQ(e.code, 1) << "no_route from msg_guard";
  EXPECT_EQ(e.refused, 7);

  send(clientFrame(8, server_id, "allowed"));
  e = readErrorFrame(fd_);
  EXPECT_EQ(e.code, 2) << "upstream_unavailable: the frame passed msg_guard";
  EXPECT_EQ(e.refused, 8);

  send(clientFrame(9, server_id, "third") + clientFrame(10, server_id, "fourth"));
  char c;
  ssize_t r;
  do {
    r = read(fd_, &c, 1);  // a third error frame (upstream), then the close
  } while (r > 0);
  EXPECT_EQ(r, 0) << "the fourth frame closes the connection";

  std::string metrics = httpGet(admin_port_, "/metrics");
  EXPECT_NE(metrics.find("studio_msg_guard_denied_total{listener=\"game\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("studio_msg_guard_closed_total{listener=\"game\"} 1"), std::string::npos)
      << metrics;
}

INSTANTIATE_TEST_SUITE_P(Builds, StudioGateway,
                         ::testing::Values("studio_gateway", "plugin_host_gateway"));

}  // namespace
