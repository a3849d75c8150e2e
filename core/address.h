// core/address.h — IP socket addresses and the socket calls the runtime uses.
//
// Defines Address (an IPv4 or IPv6 address with port, parsed from
// "1.2.3.4:80" or "[::1]:80"), and helpers to open listening sockets
// (SO_REUSEPORT, one per worker) and non-blocking outbound connections.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>

namespace gw {

class Address {
 public:
  Address() = default;
  // Wraps a sockaddr of family AF_INET or AF_INET6.
  Address(const sockaddr* sa, socklen_t len);

  // Parses "ip:port" or "[ipv6]:port". Returns nullopt (and sets *error to
  // what is wrong) for anything else; host names are not resolved.
  static std::optional<Address> parse(std::string_view text, std::string* error = nullptr);

  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t len() const { return len_; }
  int family() const { return storage_.ss_family; }
  uint16_t port() const;
  void setPort(uint16_t port);
  // "1.2.3.4:80" or "[::1]:80".
  std::string toString() const;
  // The IP without the port.
  std::string ipString() const;

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

// Opens a non-blocking listening socket bound to `addr` with SO_REUSEADDR
// and SO_REUSEPORT (so each worker can own one). Returns the fd, or -1 with
// *error set ("bind 0.0.0.0:8080: Address already in use").
int listenSocket(const Address& addr, int backlog, std::string* error);

// Returns the local address a socket is bound to.
Address localAddress(int fd);

// Starts a non-blocking connect to `addr`. Returns the fd (the connect may
// still be in progress), or -1 with *error set.
int connectSocket(const Address& addr, std::string* error);

// Sets TCP_NODELAY; returns false on failure.
bool setNoDelay(int fd);

}  // namespace gw
