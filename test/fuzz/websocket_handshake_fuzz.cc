// test/fuzz/websocket_handshake_fuzz.cc — fuzz target: the first bytes of a
// connection as `detect` classifies them (filters/detect/classify.h) and the
// upgrade request as `websocket` checks it (filters/websocket/handshake.h).
//
// The first input byte picks the policy (a path, allowed origins, a
// subprotocol, whether the listener offers TLS); the rest is what the client
// sent. Invariants:
//   - classify(): with `final`, never undecided; without it, every prefix
//     that decided keeps its verdict as more bytes arrive (detection never
//     changes its mind); a 16 03 start is flagged as a TLS look-alike;
//   - checkHandshake() of the head (up to the first empty line): 101 with
//     no error and a 28-character accept key, the subprotocol only the one
//     configured; or one of the documented refusals (400, 403, 404, 426)
//     with an error, whose response starts with its status line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filters/detect/classify.h"
#include "filters/websocket/handshake.h"
#include "test/fuzz/check.h"

namespace {

using gw::detect::classify;
using gw::detect::Verdict;
using gw::websocket::HandshakeError;

void checkClassify(std::string_view bytes, bool tls_offered) {
  Verdict decided = Verdict::kNeedMore;
  for (size_t k = 1; k <= bytes.size(); ++k) {
    auto c = classify(bytes.substr(0, k), tls_offered, false);
    if (decided != Verdict::kNeedMore) {
      FUZZ_CHECK(c.verdict == decided, "verdict changed from %d to %d at %zu bytes",
                 static_cast<int>(decided), static_cast<int>(c.verdict), k);
    }
    if (c.verdict != Verdict::kNeedMore) decided = c.verdict;
    if (k >= 2 && static_cast<uint8_t>(bytes[0]) == 0x16 && static_cast<uint8_t>(bytes[1]) == 0x03) {
      FUZZ_CHECK(c.tls_lookalike, "16 03 start not flagged at %zu bytes", k);
    }
  }
  auto last = classify(bytes, tls_offered, true);
  FUZZ_CHECK(last.verdict != Verdict::kNeedMore, "undecided with final set (%zu bytes)",
             bytes.size());
  if (!tls_offered) FUZZ_CHECK(last.verdict != Verdict::kTls, "TLS on a listener without tls");
}

void checkHandshake(std::string_view bytes, uint8_t knobs) {
  static const std::vector<std::string> kOrigins = {"https://play.example.com"};
  gw::websocket::HandshakePolicy policy;
  if (knobs & 1) policy.path = "/game";
  if (knobs & 2) policy.allowed_origins = &kOrigins;
  if (knobs & 4) policy.subprotocol = "game.v1";
  size_t end = bytes.find("\r\n\r\n");
  std::string_view head = end == std::string_view::npos ? bytes : bytes.substr(0, end + 4);
  auto r = gw::websocket::checkHandshake(head, policy);
  if (r.status == 101) {
    FUZZ_CHECK(r.error == HandshakeError::kNone, "101 with error %d", static_cast<int>(r.error));
    FUZZ_CHECK(r.accept.size() == 28, "accept key of %zu characters", r.accept.size());
    FUZZ_CHECK(r.subprotocol.empty() || r.subprotocol == policy.subprotocol,
               "selected a subprotocol the server does not speak");
    std::string resp = gw::websocket::switchingProtocols(r);
    FUZZ_CHECK(resp.rfind("HTTP/1.1 101 ", 0) == 0, "101 response line");
    FUZZ_CHECK(resp.find(r.accept) != std::string::npos, "101 without its accept key");
  } else {
    FUZZ_CHECK(r.status == 400 || r.status == 403 || r.status == 404 || r.status == 426,
               "undocumented status %d", r.status);
    FUZZ_CHECK(r.error != HandshakeError::kNone, "refused (%d) without an error", r.status);
    std::string resp = gw::websocket::refusal(r.status, r.error);
    FUZZ_CHECK(resp.rfind("HTTP/1.1 " + std::to_string(r.status) + " ", 0) == 0,
               "refusal does not start with its status line");
    if (!(knobs & 1)) FUZZ_CHECK(r.status != 404, "404 without a configured path");
    if (!(knobs & 2)) FUZZ_CHECK(r.status != 403, "403 without allowed origins");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 16384) return 0;
  const uint8_t knobs = data[0];
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  checkClassify(bytes.substr(0, 2048), (knobs & 8) != 0);
  checkHandshake(bytes, knobs);
  return 0;
}
