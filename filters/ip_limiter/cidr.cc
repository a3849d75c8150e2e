#include "filters/ip_limiter/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace gw {
namespace ip_limiter {

std::optional<Cidr> Cidr::parse(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<Cidr> {
    if (error != nullptr) *error = why;
    return std::nullopt;
  };
  std::string quoted = "\"" + std::string(text) + "\"";
  size_t slash = text.find('/');
  std::string host(text.substr(0, slash));
  if (host.empty()) return fail(quoted + " is not a CIDR range: expected \"ip/prefix\"");
  IpKey addr;
  bool v4 = false;
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    addr = IpKey::fromV4(ntohl(a4.s_addr));
    v4 = true;
  } else if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    addr = IpKey::fromV6(a6.s6_addr);
  } else {
    return fail(quoted + ": \"" + host +
                "\" is not an IPv4 or IPv6 address (write e.g. \"10.0.0.0/8\" or "
                "\"2001:db8::/32\")");
  }
  int max_bits = v4 ? 32 : 128;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) return fail(quoted + ": bad prefix length after '/'");
    bits = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return fail(quoted + ": bad prefix length after '/'");
      bits = bits * 10 + (c - '0');
    }
    if (bits > max_bits) {
      return fail(quoted + ": prefix length " + std::to_string(bits) + " is out of range for " +
                  (v4 ? "IPv4 (0-32)" : "IPv6 (0-128)"));
    }
  }
  Cidr c;
  c.prefix = v4 ? 96 + bits : bits;
  c.base = addr.masked(c.prefix);
  if (c.base != addr) {
    return fail(quoted + " has host bits set after the /" + std::to_string(bits) +
                " prefix; did you mean \"" + c.toString() + "\"?");
  }
  return c;
}

std::string Cidr::toString() const {
  if (base.isV4() && prefix >= 96) return base.toString() + "/" + std::to_string(prefix - 96);
  return base.toString() + "/" + std::to_string(prefix);
}

std::optional<IpKey> keyOf(const sockaddr* sa) {
  if (sa == nullptr) return std::nullopt;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return IpKey::fromV4(ntohl(in->sin_addr.s_addr));
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    return IpKey::fromV6(in6->sin6_addr.s6_addr);  // v4-mapped keys are IPv4 keys already
  }
  return std::nullopt;
}

}  // namespace ip_limiter
}  // namespace gw
