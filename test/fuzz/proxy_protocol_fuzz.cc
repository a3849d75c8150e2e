// test/fuzz/proxy_protocol_fuzz.cc — fuzz target: the PROXY protocol parser.
//
// Runs parseProxyHeader() (filters/ip_limiter/proxy_protocol.h) over the
// input as the start of a stream, the way ip_limiter calls it (head = the
// first min(buffered, kProxyPeekBytes) bytes, copied so ASan sees any read
// past them), then over its prefixes as the bytes would arrive.
// Invariants: a complete header has version 1 or 2 and a length within the
// stream and the version's limit (v1: ends in CRLF, within 107 bytes and the
// head; v2: starts with the signature, 16 + its length field); an error says
// why; a prefix of a complete header needs more, a prefix that completes
// gives the same header, and a prefix that is refused means the whole
// stream is refused (parsing never changes its mind as bytes arrive).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "filters/ip_limiter/proxy_protocol.h"
#include "test/fuzz/check.h"

namespace {

using gw::ip_limiter::kProxyPeekBytes;
using gw::ip_limiter::kProxyV1MaxBytes;
using gw::ip_limiter::kProxyV2MaxBytes;
using gw::ip_limiter::parseProxyHeader;
using gw::ip_limiter::ProxyHeader;
using Status = ProxyHeader::Status;

// Parses the first `buffered` bytes of `data` from an exact-size copy of the
// head, and checks what a single result must satisfy.
ProxyHeader parseStream(const uint8_t* data, size_t buffered) {
  const size_t head_len = std::min(buffered, kProxyPeekBytes);
  std::unique_ptr<uint8_t[]> head(new uint8_t[head_len > 0 ? head_len : 1]);
  if (head_len > 0) std::memcpy(head.get(), data, head_len);
  ProxyHeader h = parseProxyHeader(head.get(), head_len, buffered);
  switch (h.status) {
    case Status::kDone:
      FUZZ_CHECK(h.version == 1 || h.version == 2, "done with version %d", h.version);
      FUZZ_CHECK(h.length > 0 && h.length <= buffered, "length %zu of %zu buffered", h.length,
                 buffered);
      FUZZ_CHECK(h.error.empty(), "done with an error text");
      if (h.version == 1) {
        FUZZ_CHECK(h.length <= kProxyV1MaxBytes && h.length <= head_len, "v1 length %zu",
                   h.length);
        FUZZ_CHECK(data[h.length - 2] == '\r' && data[h.length - 1] == '\n',
                   "v1 header does not end in CRLF");
        FUZZ_CHECK(std::memcmp(data, "PROXY ", 6) == 0, "v1 header without PROXY");
      } else {
        static const uint8_t kSig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
        FUZZ_CHECK(h.length >= 16 && h.length <= kProxyV2MaxBytes, "v2 length %zu", h.length);
        FUZZ_CHECK(std::memcmp(data, kSig, 12) == 0, "v2 header without the signature");
        FUZZ_CHECK(h.length == 16 + ((size_t{data[14]} << 8) | data[15]),
                   "v2 length %zu does not match its length field", h.length);
      }
      if (h.has_source) {
        FUZZ_CHECK(h.source.family() == AF_INET || h.source.family() == AF_INET6,
                   "source of family %d", h.source.family());
      }
      break;
    case Status::kError:
      FUZZ_CHECK(!h.error.empty(), "an error without a reason");
      break;
    case Status::kNeedMore:
      FUZZ_CHECK(buffered < kProxyV2MaxBytes, "needs more after %zu bytes", buffered);
      break;
  }
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ProxyHeader whole = parseStream(data, size);
  // Every prefix up to 256 bytes (past the head, only the v2 TLV bytes
  // arrive, which the parser only counts), then the two around the end.
  std::vector<size_t> prefixes;
  for (size_t n = 0; n < size && n <= 256; ++n) prefixes.push_back(n);
  if (whole.status == Status::kDone && whole.length > 257) {
    prefixes.push_back(whole.length - 1);
    if (whole.length < size) prefixes.push_back(whole.length);
  }
  for (size_t n : prefixes) {
    const ProxyHeader part = parseStream(data, n);
    if (whole.status == Status::kDone && n < whole.length) {
      FUZZ_CHECK(part.status == Status::kNeedMore,
                 "a %zu-byte prefix of a %zu-byte header was not 'need more' (%s)", n,
                 whole.length, part.error.c_str());
    }
    if (part.status == Status::kDone) {
      FUZZ_CHECK(whole.status == Status::kDone && whole.length == part.length &&
                     whole.has_source == part.has_source &&
                     (!part.has_source || whole.source.toString() == part.source.toString()),
                 "a %zu-byte prefix completed a header the whole stream does not", n);
    }
    if (part.status == Status::kError) {
      FUZZ_CHECK(whole.status == Status::kError,
                 "a %zu-byte prefix was refused (%s) but the whole stream was not", n,
                 part.error.c_str());
    }
  }
  return 0;
}
