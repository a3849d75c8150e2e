// filters/ip_limiter/cidr.h — address ranges (CIDR) and socket addresses as IpKeys.
//
// Defines Cidr (one IPv4 or IPv6 range, parsed from "10.0.0.0/8",
// "2001:db8::/32" or a bare address meaning a single host), CidrSet (a small
// list of ranges with a membership test) and keyOf() (the IpKey of a
// sockaddr). IPv4 ranges are stored as IPv4-mapped IPv6 ranges, so one test
// covers both families and IPv4 clients on dual-stack sockets.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "filters/ip_limiter/ip_table.h"

namespace gw {
namespace ip_limiter {

struct Cidr {
  IpKey base;      // the range's first address (host bits zero)
  int prefix = 0;  // 0..128, in the 128-bit key space (IPv4 /8 is 104)

  // Parses "a.b.c.d/n" (n 0..32), "ipv6/n" (n 0..128) or a bare address (a
  // single host). Host bits must be zero ("10.1.0.0/8" is refused with the
  // range it probably meant). Returns nullopt with *error set otherwise.
  static std::optional<Cidr> parse(std::string_view text, std::string* error);
  // True if `addr` lies in the range.
  bool contains(const IpKey& addr) const { return addr.masked(prefix) == base; }
  // "10.0.0.0/8" or "2001:db8::/32".
  std::string toString() const;
  bool operator==(const Cidr& o) const { return base == o.base && prefix == o.prefix; }
};

// A list of ranges. Matching is a linear scan: meant for the handful of
// trusted networks a deployment lists. Immutable after building; safe to
// read from any thread.
class CidrSet {
 public:
  void add(const Cidr& c) { ranges_.push_back(c); }
  bool empty() const { return ranges_.empty(); }
  size_t size() const { return ranges_.size(); }
  // True if `addr` lies in any range.
  bool contains(const IpKey& addr) const {
    for (const Cidr& c : ranges_)
      if (c.contains(addr)) return true;
    return false;
  }
  // The ranges, in the order added.
  const std::vector<Cidr>& ranges() const { return ranges_; }
  // Same ranges in the same order.
  bool operator==(const CidrSet& o) const { return ranges_ == o.ranges_; }

 private:
  std::vector<Cidr> ranges_;
};

// The IpKey of an AF_INET or AF_INET6 socket address (IPv4-mapped IPv6
// addresses give the IPv4 key). nullopt for any other family.
std::optional<IpKey> keyOf(const sockaddr* sa);

}  // namespace ip_limiter
}  // namespace gw
