#include "filters/detect/classify.h"

#include <cstdint>

#include "core/http/request_head.h"

namespace gw {
namespace detect {

namespace {

// Largest TLS record a ClientHello may come in (2^14 plaintext, plus the
// expansion TLS 1.2 allows a compressed record).
constexpr size_t kMaxRecord = 16384 + 2048;

enum class TlsState { kNo, kMaybe, kYes };

// Does `b` start with a TLS handshake record carrying a ClientHello?
TlsState tlsClientHello(std::string_view b) {
  const auto* p = reinterpret_cast<const uint8_t*>(b.data());
  const size_t n = b.size();
  if (n < 1) return TlsState::kMaybe;
  if (p[0] != 0x16) return TlsState::kNo;  // handshake
  if (n < 2) return TlsState::kMaybe;
  if (p[1] != 0x03) return TlsState::kNo;  // major version 3
  if (n < 3) return TlsState::kMaybe;
  if (p[2] > 0x04) return TlsState::kNo;  // SSL 3.0 .. TLS 1.3 record versions
  if (n < 5) return TlsState::kMaybe;
  const size_t record = (static_cast<size_t>(p[3]) << 8) | p[4];
  if (record < 4 || record > kMaxRecord) return TlsState::kNo;
  if (n < 6) return TlsState::kMaybe;
  if (p[5] != 0x01) return TlsState::kNo;  // ClientHello
  if (n < 9) return TlsState::kMaybe;
  const size_t hello = (static_cast<size_t>(p[6]) << 16) | (static_cast<size_t>(p[7]) << 8) | p[8];
  // The ClientHello fills its record, or continues in the next ones.
  if (hello + 4 < record || hello > (1u << 20)) return TlsState::kNo;
  return TlsState::kYes;
}

Verdict httpVerdict(std::string_view bytes, size_t head_len, bool partial) {
  http::RequestHead head;
  const char* error = nullptr;
  std::string_view text = head_len == std::string_view::npos ? bytes : bytes.substr(0, head_len);
  // A malformed head is still an HTTP request; the answer is the same 426
  // (the websocket filter checks the upgrade request itself).
  if (!http::parseRequestHead(text, partial, &head, &error)) return Verdict::kHttp;
  return head.listHasToken("Upgrade", "websocket") ? Verdict::kWebSocket : Verdict::kHttp;
}

}  // namespace

std::string_view verdictName(Verdict v) {
  switch (v) {
    case Verdict::kNeedMore: return "need_more";
    case Verdict::kTcp: return "tcp";
    case Verdict::kTls: return "tls";
    case Verdict::kWebSocket: return "ws";
    case Verdict::kHttp: return "http";
  }
  return "unknown";
}

Classification classify(std::string_view bytes, bool tls_offered, bool final) {
  Classification c;
  c.tls_lookalike = bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x16 &&
                    static_cast<uint8_t>(bytes[1]) == 0x03;
  if (bytes.empty()) {
    c.verdict = final ? Verdict::kTcp : Verdict::kNeedMore;
    return c;
  }
  if (tls_offered) {
    switch (tlsClientHello(bytes)) {
      case TlsState::kYes:
        c.verdict = Verdict::kTls;
        return c;
      case TlsState::kMaybe:
        c.verdict = final ? Verdict::kTcp : Verdict::kNeedMore;
        return c;
      case TlsState::kNo:
        break;
    }
  }
  size_t line_len = 0;
  switch (http::scanRequestLine(bytes, &line_len)) {
    case http::LineState::kNotHttp:
      c.verdict = Verdict::kTcp;
      return c;
    case http::LineState::kNeedMore:
      c.verdict = final ? Verdict::kTcp : Verdict::kNeedMore;
      return c;
    case http::LineState::kComplete:
      break;
  }
  const size_t head_len = http::findHeadEnd(bytes);
  if (head_len == std::string_view::npos && !final) {
    c.verdict = Verdict::kNeedMore;
    return c;
  }
  c.verdict = httpVerdict(bytes, head_len, head_len == std::string_view::npos);
  return c;
}

}  // namespace detect
}  // namespace gw
