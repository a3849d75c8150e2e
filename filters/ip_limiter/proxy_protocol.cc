#include "filters/ip_limiter/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstring>
#include <string_view>

namespace gw {
namespace ip_limiter {
namespace {

constexpr uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view kV1Prefix = "PROXY ";

ProxyHeader error(int version, std::string why) {
  ProxyHeader h;
  h.status = ProxyHeader::Status::kError;
  h.version = version;
  h.error = std::move(why);
  return h;
}

ProxyHeader needMore(int version) {
  ProxyHeader h;
  h.version = version;
  return h;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  out.append(s.substr(0, 48));
  if (s.size() > 48) out += "...";
  return out + "\"";
}

bool parsePort(std::string_view s, uint16_t* port) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

ProxyHeader parseV1(const uint8_t* head, size_t n) {
  size_t cmp = n < kV1Prefix.size() ? n : kV1Prefix.size();
  if (std::memcmp(head, kV1Prefix.data(), cmp) != 0)
    return error(1, "v1 header must start with \"PROXY \"");
  size_t limit = n < kProxyV1MaxBytes ? n : kProxyV1MaxBytes;
  size_t cr = 0;
  bool found = false;
  for (size_t i = 0; i < limit; ++i) {
    uint8_t c = head[i];
    if (c == '\r') {
      if (i + 2 > kProxyV1MaxBytes) break;
      if (i + 1 >= n) return needMore(1);
      if (head[i + 1] != '\n') return error(1, "v1: CR not followed by LF");
      cr = i;
      found = true;
      break;
    }
    if (c == '\n') return error(1, "v1: LF without CR");
    if (c < 0x20 || c > 0x7e) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "0x%02x", c);
      return error(1, std::string("v1: unexpected byte ") + buf);
    }
  }
  if (!found) {
    if (n >= kProxyV1MaxBytes || limit == kProxyV1MaxBytes)
      return error(1, "v1: no CRLF within the first 107 bytes");
    return needMore(1);
  }
  std::string_view line(reinterpret_cast<const char*>(head) + kV1Prefix.size(),
                        cr - kV1Prefix.size());
  std::string_view parts[6];
  size_t count = 0;
  size_t start = 0;
  for (size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == ' ') {
      if (count == 6) return error(1, "v1: too many fields in " + quote(line));
      parts[count++] = line.substr(start, i - start);
      start = i + 1;
    }
  }
  ProxyHeader h;
  h.version = 1;
  h.length = cr + 2;
  if (parts[0] == "UNKNOWN") {
    h.status = ProxyHeader::Status::kDone;  // the rest of the line is ignored (spec)
    return h;
  }
  int family;
  if (parts[0] == "TCP4") {
    family = AF_INET;
  } else if (parts[0] == "TCP6") {
    family = AF_INET6;
  } else {
    return error(1,
                 "v1: unknown protocol " + quote(parts[0]) + " (expected TCP4, TCP6 or UNKNOWN)");
  }
  if (count != 5)
    return error(1, "v1: expected \"" + std::string(parts[0]) + " SRC DST SRCPORT DSTPORT\", got " +
                        quote(line));
  for (size_t i = 1; i < 5; ++i)
    if (parts[i].empty()) return error(1, "v1: empty field (double space) in " + quote(line));
  char addr[64];
  if (parts[1].size() >= sizeof(addr)) return error(1, "v1: bad source address");
  std::memcpy(addr, parts[1].data(), parts[1].size());
  addr[parts[1].size()] = '\0';
  char dst[64];
  if (parts[2].size() >= sizeof(dst)) return error(1, "v1: bad destination address");
  std::memcpy(dst, parts[2].data(), parts[2].size());
  dst[parts[2].size()] = '\0';
  uint16_t sport = 0;
  uint16_t dport = 0;
  if (!parsePort(parts[3], &sport)) return error(1, "v1: bad source port " + quote(parts[3]));
  if (!parsePort(parts[4], &dport)) return error(1, "v1: bad destination port " + quote(parts[4]));
  if (family == AF_INET) {
    sockaddr_in sa{};
    in_addr d{};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
      return error(1, "v1: bad TCP4 source address " + quote(parts[1]));
    if (inet_pton(AF_INET, dst, &d) != 1)
      return error(1, "v1: bad TCP4 destination address " + quote(parts[2]));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(sport);
    h.source = Address(reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  } else {
    sockaddr_in6 sa{};
    in6_addr d{};
    if (inet_pton(AF_INET6, addr, &sa.sin6_addr) != 1)
      return error(1, "v1: bad TCP6 source address " + quote(parts[1]));
    if (inet_pton(AF_INET6, dst, &d) != 1)
      return error(1, "v1: bad TCP6 destination address " + quote(parts[2]));
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(sport);
    h.source = Address(reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  h.has_source = true;
  h.status = ProxyHeader::Status::kDone;
  return h;
}

ProxyHeader parseV2(const uint8_t* head, size_t n, size_t buffered) {
  size_t cmp = n < sizeof(kV2Signature) ? n : sizeof(kV2Signature);
  if (std::memcmp(head, kV2Signature, cmp) != 0)
    return error(2, "v2: bad signature (expected \\r\\n\\r\\n\\0\\r\\nQUIT\\n)");
  if (n < 16) return needMore(2);
  int version = head[12] >> 4;
  int command = head[12] & 0x0f;
  int family = head[13] >> 4;
  int transport = head[13] & 0x0f;
  size_t len = (static_cast<size_t>(head[14]) << 8) | head[15];
  size_t total = 16 + len;
  if (version != 2) return error(2, "v2: unsupported version " + std::to_string(version));
  if (command > 1) return error(2, "v2: unknown command " + std::to_string(command));
  if (total > kProxyV2MaxBytes) {
    return error(2, "v2: header of " + std::to_string(total) + " bytes exceeds the " +
                        std::to_string(kProxyV2MaxBytes) + "-byte limit");
  }
  ProxyHeader h;
  h.version = 2;
  h.length = total;
  bool local = command == 0;
  size_t need = 0;
  if (!local) {
    switch (family) {
      case 0:  // UNSPEC: no address
        break;
      case 1:
        need = 12;
        break;
      case 2:
        need = 36;
        break;
      case 3:
        return error(2, "v2: AF_UNIX sources are not supported");
      default:
        return error(2, "v2: unknown address family " + std::to_string(family));
    }
    if (need > 0 && transport != 1) {
      return error(
          2, "v2: only TCP (STREAM) is supported, got transport " + std::to_string(transport));
    }
    if (len < need) {
      return error(2, "v2: address block of " + std::to_string(len) + " bytes is too short for " +
                          (family == 1 ? "IPv4 (12)" : "IPv6 (36)"));
    }
  }
  if (buffered < total) return needMore(2);
  h.status = ProxyHeader::Status::kDone;
  if (local || need == 0) return h;
  // n >= min(buffered, kProxyPeekBytes) and buffered >= 16 + need, so the
  // addresses are within head.
  const uint8_t* a = head + 16;
  if (family == 1) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    std::memcpy(&sa.sin_addr, a, 4);
    std::memcpy(&sa.sin_port, a + 8, 2);  // network order on the wire and in sockaddr
    h.source = Address(reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  } else {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    std::memcpy(&sa.sin6_addr, a, 16);
    std::memcpy(&sa.sin6_port, a + 32, 2);
    h.source = Address(reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  h.has_source = true;
  return h;
}

}  // namespace

ProxyHeader parseProxyHeader(const uint8_t* head, size_t head_len, size_t buffered) {
  if (head_len == 0) return needMore(0);
  if (head[0] == 'P') return parseV1(head, head_len);
  if (head[0] == 0x0D) return parseV2(head, head_len, buffered);
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02x", head[0]);
  return error(0,
               std::string("expected \"PROXY \" (v1) or the v2 signature, got first byte ") + buf);
}

}  // namespace ip_limiter
}  // namespace gw
