#include "core/sdk/address.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gw {

Address::Address(const sockaddr* sa, socklen_t len) {
  // The sockaddr's own size for IP families (a caller may pass the size of
  // the sockaddr_storage it filled); at most the union's size for others.
  socklen_t cap = sizeof(u_);
  if (len >= sizeof(sa_family_t)) {
    if (sa->sa_family == AF_INET) cap = sizeof(sockaddr_in);
    if (sa->sa_family == AF_INET6) cap = sizeof(sockaddr_in6);
  }
  len_ = len > cap ? cap : len;
  std::memcpy(&u_, sa, len_);
}

std::optional<Address> Address::parse(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<Address> {
    if (error) *error = why;
    return std::nullopt;
  };
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return fail("expected \"[ipv6]:port\", got \"" + std::string(text) + "\"");
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return fail("expected \"ip:port\", got \"" + std::string(text) + "\"");
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string::npos)
      return fail("IPv6 addresses need brackets: \"[" + host + "]:port\"");
  }
  if (port_text.empty() || port_text.size() > 5)
    return fail("bad port in \"" + std::string(text) + "\"");
  uint32_t port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return fail("bad port in \"" + std::string(text) + "\"");
    port = port * 10 + (c - '0');
  }
  if (port > 65535) return fail("port out of range in \"" + std::string(text) + "\"");
  Address a;
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  bool bracketed = text.front() == '[';
  if (inet_pton(AF_INET, host.c_str(), &v4.sin_addr) == 1) {
    if (bracketed) return fail("brackets are for IPv6 only: write \"" + host + ":" +
                               std::string(port_text) + "\"");
    v4.sin_family = AF_INET;
    v4.sin_port = htons(static_cast<uint16_t>(port));
    a = Address(reinterpret_cast<sockaddr*>(&v4), sizeof(v4));
  } else if (inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(static_cast<uint16_t>(port));
    a = Address(reinterpret_cast<sockaddr*>(&v6), sizeof(v6));
  } else {
    return fail("\"" + host + "\" is not an IPv4 or IPv6 address (host names are not resolved)");
  }
  return a;
}

uint16_t Address::port() const {
  if (family() == AF_INET) return ntohs(u_.v4.sin_port);
  if (family() == AF_INET6)
    return ntohs(u_.v6.sin6_port);
  return 0;
}

void Address::setPort(uint16_t port) {
  if (family() == AF_INET) u_.v4.sin_port = htons(port);
  if (family() == AF_INET6) u_.v6.sin6_port = htons(port);
}

std::string Address::ipString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &u_.v4.sin_addr, buf, sizeof(buf));
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &u_.v6.sin6_addr, buf,
              sizeof(buf));
  } else {
    return "unknown";
  }
  return buf;
}

std::string Address::toString() const {
  if (family() == AF_INET6) return "[" + ipString() + "]:" + std::to_string(port());
  return ipString() + ":" + std::to_string(port());
}

static std::string errnoText(const std::string& what, const Address& addr) {
  return what + " " + addr.toString() + ": " + std::strerror(errno);
}

int listenSocket(const Address& addr, int backlog, std::string* error) {
  int fd = socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errnoText("socket", addr);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (addr.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, addr.sockaddr_ptr(), addr.len()) != 0) {
    *error = errnoText("bind", addr);
    close(fd);
    return -1;
  }
  if (listen(fd, backlog) != 0) {
    *error = errnoText("listen", addr);
    close(fd);
    return -1;
  }
  return fd;
}

Address localAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return Address(reinterpret_cast<sockaddr*>(&ss), len);
}

bool setTcpLiveness(int fd, const TcpLiveness& liveness, std::string* error) {
  auto set = [&](int level, int option, const char* name, int64_t value) {
    int v = static_cast<int>(value);
    if (setsockopt(fd, level, option, &v, sizeof(v)) == 0) return true;
    *error = std::string("setsockopt ") + name + " " + std::to_string(value) + ": " +
             std::strerror(errno);
    return false;
  };
  if (!set(SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", liveness.keepalive ? 1 : 0)) return false;
  if (liveness.keepalive &&
      (!set(IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE", liveness.keepalive_idle.count()) ||
       !set(IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL", liveness.keepalive_interval.count()) ||
       !set(IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT", liveness.keepalive_count))) {
    return false;
  }
  return set(IPPROTO_TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT", liveness.user_timeout.count());
}

int connectSocket(const Address& addr, const TcpLiveness& liveness, std::string* error) {
  int fd = socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errnoText("socket", addr);
    return -1;
  }
  setNoDelay(fd);
  std::string why;
  if (!setTcpLiveness(fd, liveness, &why)) {
    *error = "connect " + addr.toString() + ": " + why;
    close(fd);
    return -1;
  }
  if (connect(fd, addr.sockaddr_ptr(), addr.len()) != 0 && errno != EINPROGRESS) {
    *error = errnoText("connect", addr);
    close(fd);
    return -1;
  }
  return fd;
}

bool setNoDelay(int fd) {
  int one = 1;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
}

}  // namespace gw
