// core/sdk/address.h — IP socket addresses and the socket calls the runtime uses.
//
// Defines Address (an IPv4 or IPv6 address with port, parsed from
// "1.2.3.4:80" or "[::1]:80"), and helpers to open listening sockets
// (SO_REUSEPORT, one per worker) and non-blocking outbound connections, and
// TcpLiveness: the keepalive and TCP_USER_TIMEOUT settings that detect dead
// peers on connected sockets (clusters' backend sockets, listeners' clients).
//
// Memory: an Address is 32 bytes (every client connection holds one): the
// sockaddr itself, in a union sized for sockaddr_in6, and its length. Not a
// sockaddr_storage (128 bytes): the runtime only uses IPv4 and IPv6 (parse()
// accepts nothing else; listeners, clusters, accept() and PROXY protocol
// sources are all IP). A sockaddr of another family keeps its family and at
// most its first 28 bytes (len() says how many); such an address prints as
// "unknown:0" as before, and is not meant for bind/connect.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace gw {

class Address {
 public:
  Address() = default;
  // Wraps a sockaddr of family AF_INET or AF_INET6 (see the banner for
  // others). `len` larger than the sockaddr's size is clamped.
  Address(const sockaddr* sa, socklen_t len);

  // Parses "ip:port" or "[ipv6]:port". Returns nullopt (and sets *error to
  // what is wrong) for anything else; host names are not resolved.
  static std::optional<Address> parse(std::string_view text, std::string* error = nullptr);

  // The sockaddr itself (valid as long as this Address), for bind/connect.
  const sockaddr* sockaddr_ptr() const { return &u_.sa; }
  socklen_t len() const { return len_; }
  int family() const { return u_.sa.sa_family; }
  uint16_t port() const;
  void setPort(uint16_t port);
  // "1.2.3.4:80" or "[::1]:80".
  std::string toString() const;
  // The IP without the port.
  std::string ipString() const;

 private:
  // sockaddr_in6 first: `{}` zeroes all of it (the largest member).
  union Storage {
    sockaddr_in6 v6;
    sockaddr_in v4;
    sockaddr sa;
  };
  Storage u_{};
  socklen_t len_ = 0;
};

static_assert(sizeof(Address) <= 32, "Address grew past 32 bytes");

// Opens a non-blocking listening socket bound to `addr` with SO_REUSEADDR
// and SO_REUSEPORT (so each worker can own one). Returns the fd, or -1 with
// *error set ("bind 0.0.0.0:8080: Address already in use").
int listenSocket(const Address& addr, int backlog, std::string* error);

// Returns the local address a socket is bound to.
Address localAddress(int fd);

// How a connected TCP socket notices a peer that is gone without a FIN or
// RST (crashed host, blackholed route, half-open connection):
//  - keepalive: after `keepalive_idle` without traffic, a probe every
//    `keepalive_interval`; `keepalive_count` unanswered probes close it;
//  - user_timeout (TCP_USER_TIMEOUT): sent data unacknowledged this long
//    closes it; with keepalive on, it also bounds the probing. 0: the
//    kernel's default (retransmissions for about 15 minutes).
// The defaults (on, 30 s / 10 s / 3, 30 s) find a dead idle peer in about a
// minute and a dead peer we are writing to in 30 s. Durations are whole
// seconds for the keepalive options (the kernel's unit); config loading
// checks that.
struct TcpLiveness {
  bool keepalive = true;
  std::chrono::seconds keepalive_idle{30};
  std::chrono::seconds keepalive_interval{10};
  int keepalive_count = 3;
  std::chrono::milliseconds user_timeout{30000};
};

// Applies `liveness` to the socket `fd` (SO_KEEPALIVE, TCP_KEEPIDLE,
// TCP_KEEPINTVL, TCP_KEEPCNT, TCP_USER_TIMEOUT; keepalive off: SO_KEEPALIVE
// 0 and the keepalive options untouched). Returns false with *error naming
// the option that failed and why.
bool setTcpLiveness(int fd, const TcpLiveness& liveness, std::string* error);

// Starts a non-blocking connect to `addr` on a socket with TCP_NODELAY and
// `liveness`. Returns the fd (the connect may still be in progress), or -1
// with *error set.
int connectSocket(const Address& addr, const TcpLiveness& liveness, std::string* error);

// Sets TCP_NODELAY; returns false on failure.
bool setNoDelay(int fd);

}  // namespace gw
