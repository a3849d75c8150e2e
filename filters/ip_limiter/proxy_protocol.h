// filters/ip_limiter/proxy_protocol.h — the PROXY protocol header (v1 and v2).
//
// Defines ProxyHeader and parseProxyHeader(): a bounded, allocation-free
// (except for error text) parser of the header an L4 load balancer (HAProxy,
// AWS NLB, ...) sends before the client's bytes, carrying the real client
// address. Spec: haproxy.org/download/2.9/doc/proxy-protocol.txt.
//   v1: "PROXY TCP4 192.0.2.1 198.51.100.1 51234 8080\r\n", at most 107
//       bytes; also TCP6 and "PROXY UNKNOWN ...\r\n".
//   v2: the 12-byte signature \r\n\r\n\0\r\nQUIT\n, version/command,
//       family/transport, a big-endian u16 length, then the addresses and
//       optional TLVs (skipped). We accept at most kProxyV2MaxBytes in all.
// The LOCAL command (v2), UNKNOWN (v1) and the UNSPEC family carry no
// client address: the connection's own address applies (load balancer
// health checks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/sdk/address.h"

namespace gw {
namespace ip_limiter {

// Longest v1 header, CRLF included.
inline constexpr size_t kProxyV1MaxBytes = 107;
// Longest v2 header we accept (16-byte fixed part + addresses + TLVs).
inline constexpr size_t kProxyV2MaxBytes = 4096;
// How many leading bytes parseProxyHeader() needs to see (when buffered):
// the whole v1 maximum, and more than v2's fixed part + IPv6 addresses (52).
inline constexpr size_t kProxyPeekBytes = 108;

struct ProxyHeader {
  enum class Status {
    kNeedMore,  // a valid prefix so far; call again when more bytes arrive
    kDone,      // a complete header: strip `length` bytes
    kError,     // not a valid header: `error` says why
  };
  Status status = Status::kNeedMore;
  int version = 0;          // 1 or 2 once known
  size_t length = 0;        // kDone: header bytes (v2: TLVs included)
  bool has_source = false;  // kDone: false for LOCAL / UNKNOWN / UNSPEC
  Address source;           // kDone and has_source: the client's address and port
  std::string error;        // kError: what is wrong ("v1: bad source port \"99999\"")
};

// Parses a header at the start of a stream. `head` holds the first
// `head_len` bytes, where head_len = min(buffered, kProxyPeekBytes), and
// `buffered` is how many bytes are available in all (v2 TLVs need not be in
// `head`). Never reads past head[head_len - 1]. Refuses early: a byte that
// cannot start a header, a v1 line past 107 bytes, a v2 length past the cap.
ProxyHeader parseProxyHeader(const uint8_t* head, size_t head_len, size_t buffered);

}  // namespace ip_limiter
}  // namespace gw
