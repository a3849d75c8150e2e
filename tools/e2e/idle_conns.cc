// tools/e2e/idle_conns — opens many client connections that each exchange one
// message and then stay idle, to measure a proxy's memory per idle connection.
//
//   idle_conns --target IP:PORT --connections N [--raw] [--size 64]
//              [--source-ip-range A-B] [--in-flight 512] [--connect-timeout 10s]
//              [--hold 10m] [--server-type 200] [--msg-id 1]
//
// Each connection connects, sends one message (a client frame routed to
// --server-type, or --raw bytes) and waits for the whole reply (a frame of
// the same payload length, or the same number of raw bytes). When every
// connection has replied or failed it prints, on stdout (flushed):
//   idle_conns: ready connections=N replied=R failed=F
// and then holds every connection open and idle, counting any that the peer
// closes, until SIGTERM/SIGINT, stdin reaching EOF, or --hold elapses. Then it
// prints `idle_conns: done replied=R failed=F disconnects=D` and exits 0 if
// every connection replied and none was closed by the peer, else 1 (2 for
// bad flags).
//
// --source-ip-range binds connection i to source address A + (i mod count):
// loopback has ~28k ephemeral ports per source address and destination, so
// 100k connections need at least 4 source addresses. RLIMIT_NOFILE is raised
// to the hard limit; more connections than that allows fail with EMFILE.
// At most --in-flight connects are pending at once (a listen backlog holds a
// few thousand). One thread, epoll, no allocation per connection after start.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/wire.h"
#include "tools/loadgen/tool_flags.h"

namespace {

volatile sig_atomic_t g_stop = 0;
void onStop(int) { g_stop = 1; }

struct Options {
  std::optional<gw::Address> target;
  uint32_t connections = 1000;
  bool raw = false;
  uint32_t size = 64;
  uint32_t server_type = 200;
  uint32_t msg_id = 1;
  bool has_range = false;
  uint32_t first = 0, last = 0;  // source range, host order
  uint32_t in_flight = 512;
  int64_t connect_timeout_ns = 10'000'000'000;
  int64_t hold_ns = 600'000'000'000;
};

enum class State : uint8_t { kIdle, kConnecting, kWaitReply, kReplied, kFailed, kClosed };

struct Conn {
  int fd = -1;
  State state = State::kIdle;
  uint32_t got = 0;  // reply bytes received
  int64_t started_ns = 0;
};

int64_t monoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

bool parseRange(const std::string& text, uint32_t* first, uint32_t* last) {
  size_t dash = text.find('-');
  std::string a = dash == std::string::npos ? text : text.substr(0, dash);
  std::string b = dash == std::string::npos ? text : text.substr(dash + 1);
  in_addr x, y;
  if (inet_pton(AF_INET, a.c_str(), &x) != 1 || inet_pton(AF_INET, b.c_str(), &y) != 1) {
    return false;
  }
  *first = ntohl(x.s_addr);
  *last = ntohl(y.s_addr);
  return *first <= *last;
}

class IdleConns {
 public:
  explicit IdleConns(const Options& o) : opt_(o), conns_(o.connections) {}

  int run() {
    buildMessage();
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) {
      std::perror("idle_conns: epoll_create1");
      return 1;
    }
    // stdin: EOF ends the hold (the script that started us went away).
    bool watch_stdin = fcntl(0, F_GETFD) != -1;
    if (watch_stdin) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = UINT64_MAX;
      if (epoll_ctl(ep_, EPOLL_CTL_ADD, 0, &ev) != 0) watch_stdin = false;
    }
    std::vector<epoll_event> events(1024);
    uint32_t next = 0;
    bool ready_printed = false;
    int64_t hold_until = 0;
    int64_t last_scan = monoNs();
    while (!g_stop) {
      int64_t now = monoNs();
      while (next < opt_.connections && pending_ < opt_.in_flight) start(next++, now);
      if (now - last_scan > 100'000'000) {
        last_scan = now;
        for (uint32_t i = 0; i < next; ++i) {
          Conn& c = conns_[i];
          bool waiting = c.state == State::kConnecting || c.state == State::kWaitReply;
          if (waiting && now - c.started_ns > opt_.connect_timeout_ns) {
            fail(c, c.state == State::kConnecting ? "connect timeout" : "no reply in time");
          }
        }
      }
      if (!ready_printed && next == opt_.connections && pending_ == 0) {
        std::printf("idle_conns: ready connections=%u replied=%u failed=%u\n", opt_.connections,
                    replied_, failed_);
        std::fflush(stdout);
        ready_printed = true;
        hold_until = now + opt_.hold_ns;
      }
      if (ready_printed && now >= hold_until) break;
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 100);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("idle_conns: epoll_wait");
        break;
      }
      for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == UINT64_MAX) {
          char buf[256];
          ssize_t r = ::read(0, buf, sizeof(buf));
          if (r <= 0) {
            epoll_ctl(ep_, EPOLL_CTL_DEL, 0, nullptr);
            if (ready_printed) g_stop = 1;
          }
          continue;
        }
        onEvent(conns_[events[i].data.u32], events[i].events);
      }
    }
    std::printf("idle_conns: done replied=%u failed=%u disconnects=%u\n", replied_, failed_,
                disconnects_);
    if (!first_error_.empty()) std::fprintf(stderr, "idle_conns: first error: %s\n",
                                            first_error_.c_str());
    std::fflush(stdout);
    for (Conn& c : conns_) {
      if (c.fd >= 0) ::close(c.fd);
    }
    ::close(ep_);
    return (replied_ == opt_.connections && disconnects_ == 0) ? 0 : 1;
  }

 private:
  void buildMessage() {
    size_t header = opt_.raw ? 0 : gw::wire::kClientHeaderSize;
    msg_.assign(header + opt_.size, 'i');
    if (!opt_.raw) {
      gw::wire::ClientHeader h;
      h.length = static_cast<uint16_t>(opt_.size);
      h.msg_id = static_cast<uint16_t>(opt_.msg_id);
      h.server_id = gw::wire::ClientHeader::makeServerId(0, static_cast<uint8_t>(opt_.server_type), 0);
      h.encode(msg_.data());
    }
    reply_len_ = static_cast<uint32_t>(msg_.size());
  }

  void error(const std::string& what) {
    if (first_error_.empty()) first_error_ = what;
  }

  void start(uint32_t index, int64_t now) {
    Conn& c = conns_[index];
    c.started_ns = now;
    int fd = ::socket(opt_.target->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      c.state = State::kFailed;
      ++failed_;
      error(std::string("socket: ") + std::strerror(errno));
      return;
    }
    if (opt_.has_range) {
      uint32_t span = opt_.last - opt_.first + 1;
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_addr.s_addr = htonl(opt_.first + index % span);
      int one = 1;
#ifdef IP_BIND_ADDRESS_NO_PORT
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
#endif
      if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) {
        error(std::string("bind source: ") + std::strerror(errno));
        ::close(fd);
        c.state = State::kFailed;
        ++failed_;
        return;
      }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = ::connect(fd, opt_.target->sockaddr_ptr(), opt_.target->len());
    if (rc != 0 && errno != EINPROGRESS) {
      error(std::string("connect: ") + std::strerror(errno));
      ::close(fd);
      c.state = State::kFailed;
      ++failed_;
      return;
    }
    c.fd = fd;
    c.state = State::kConnecting;
    ++pending_;
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.u32 = index;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }

  void fail(Conn& c, const char* why) {
    error(why);
    if (c.fd >= 0) {
      epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
      ::close(c.fd);
      c.fd = -1;
    }
    c.state = State::kFailed;
    ++failed_;
    --pending_;
  }

  void onEvent(Conn& c, uint32_t what) {
    if (c.state == State::kConnecting) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        fail(c, std::strerror(err));
        return;
      }
      if (!(what & EPOLLOUT)) return;
      // One small message: the socket buffer takes it whole.
      ssize_t n = ::send(c.fd, msg_.data(), msg_.size(), MSG_NOSIGNAL);
      if (n != static_cast<ssize_t>(msg_.size())) {
        fail(c, "send of the first message failed");
        return;
      }
      c.state = State::kWaitReply;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(&c - conns_.data());
      epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
      return;
    }
    if (c.state != State::kWaitReply && c.state != State::kReplied) return;
    uint8_t buf[4096];
    ssize_t n = ::read(c.fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      if (c.state == State::kWaitReply) {
        fail(c, n == 0 ? "closed by the peer before replying" : std::strerror(errno));
        return;
      }
      ++disconnects_;
      error("a replied connection was closed by the peer");
      epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
      ::close(c.fd);
      c.fd = -1;
      c.state = State::kClosed;
      return;
    }
    if (c.state == State::kWaitReply) {
      if (c.got == 0 && !opt_.raw && n >= 2) {
        uint16_t length = static_cast<uint16_t>(buf[0] | (buf[1] << 8));
        if (length != opt_.size) {
          fail(c, "reply frame of an unexpected length (an error frame?)");
          return;
        }
      }
      c.got += static_cast<uint32_t>(n);
      if (c.got >= reply_len_) {
        c.state = State::kReplied;
        ++replied_;
        --pending_;
      }
    }
    // Bytes after the reply (pushes) are read and ignored.
  }

  const Options& opt_;
  std::vector<Conn> conns_;
  std::vector<uint8_t> msg_;
  uint32_t reply_len_ = 0;
  int ep_ = -1;
  uint32_t pending_ = 0;  // connecting or waiting for the reply
  uint32_t replied_ = 0;
  uint32_t failed_ = 0;
  uint32_t disconnects_ = 0;
  std::string first_error_;
};

void usage() {
  std::fprintf(stderr,
               "usage: idle_conns --target IP:PORT --connections N [--raw] [--size 64]\n"
               "                  [--source-ip-range A-B] [--in-flight 512]\n"
               "                  [--connect-timeout 10s] [--hold 10m] [--server-type 200]\n"
               "                  [--msg-id 1]\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    auto bad = [&](const char* what) {
      std::fprintf(stderr, "idle_conns: %s: %s\n", flag.c_str(), what);
      usage();
      return 2;
    };
    auto uint_flag = [&](uint64_t min, uint64_t max, uint32_t* out) {
      auto v = value();
      auto n = v ? gw::tools::parseUint(*v, max) : std::nullopt;
      if (!n || *n < min) return false;
      *out = static_cast<uint32_t>(*n);
      return true;
    };
    auto dur_flag = [&](int64_t* out) {
      auto v = value();
      auto d = v ? gw::tools::parseDurationNs(*v) : std::nullopt;
      if (!d || *d <= 0) return false;
      *out = *d;
      return true;
    };
    if (flag == "--help" || flag == "-h") {
      usage();
      return 0;
    } else if (flag == "--target") {
      auto v = value();
      std::string why = "needs IP:PORT";
      if (v) opt.target = gw::Address::parse(*v, &why);
      if (!opt.target) return bad(why.c_str());
    } else if (flag == "--connections") {
      if (!uint_flag(1, 10000000, &opt.connections)) return bad("expected 1..10000000");
    } else if (flag == "--raw") {
      opt.raw = true;
    } else if (flag == "--size") {
      if (!uint_flag(1, 65535, &opt.size)) return bad("expected 1..65535");
    } else if (flag == "--server-type") {
      if (!uint_flag(0, 255, &opt.server_type)) return bad("expected 0..255");
    } else if (flag == "--msg-id") {
      if (!uint_flag(0, 65534, &opt.msg_id)) return bad("expected 0..65534");
    } else if (flag == "--in-flight") {
      if (!uint_flag(1, 1000000, &opt.in_flight)) return bad("expected a positive count");
    } else if (flag == "--source-ip-range") {
      auto v = value();
      if (!v || !parseRange(*v, &opt.first, &opt.last)) return bad("expected A-B (IPv4)");
      opt.has_range = true;
    } else if (flag == "--connect-timeout") {
      if (!dur_flag(&opt.connect_timeout_ns)) return bad("expected a duration such as 10s");
    } else if (flag == "--hold") {
      if (!dur_flag(&opt.hold_ns)) return bad("expected a duration such as 10m");
    } else {
      std::fprintf(stderr, "idle_conns: unknown flag %s\n", flag.c_str());
      usage();
      return 2;
    }
  }
  if (!opt.target) {
    usage();
    return 2;
  }
  if (opt.has_range && opt.target->family() != AF_INET) {
    std::fprintf(stderr, "idle_conns: --source-ip-range needs an IPv4 --target\n");
    return 2;
  }
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  std::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = onStop;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  IdleConns tool(opt);
  return tool.run();
}
