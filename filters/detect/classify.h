// filters/detect/classify.h — what a client speaks, from its first bytes.
//
// Defines classify(): a pure function from the first bytes of a connection
// to a verdict (TLS, WebSocket upgrade, other HTTP, raw client frames, or
// "need more bytes"). The `detect` filter calls it on every read until it
// decides; unit tests and the fuzz target call it directly. No state, no
// allocation besides parsing a complete HTTP head's field list.
//
// Rules, in order (docs/transports.md):
//  1. TLS: a handshake record (16 03 0x, x <= 4) of length 4..18432 whose
//     first message is a ClientHello (01) of a length that fills the record
//     (or continues past it) — 9 bytes decide. Only when `tls_offered`;
//     otherwise such bytes are raw client frames.
//  2. HTTP: a request line (core/http/request_head.h). With the whole head
//     (or as much of it as `final` allows) → kWebSocket when an Upgrade
//     field lists "websocket", else kHttp.
//  3. Anything else → kTcp: raw client frames. Most raw openings are decided
//     on their first byte (no TLS record type, no method's first letter).
//
// The collision: bytes 16 03 are also a raw client frame header of payload
// length 790 (0x0316 little-endian). `tls_lookalike` flags every opening
// that starts with them, whichever way it was decided.
#pragma once

#include <cstddef>
#include <string_view>

namespace gw {
namespace detect {

enum class Verdict {
  kNeedMore,   // undecided: wait for more bytes (never returned when final)
  kTcp,        // raw client frames
  kTls,        // a TLS ClientHello
  kWebSocket,  // an HTTP request asking to upgrade to WebSocket
  kHttp,       // any other HTTP request (answered 426)
};

// "need_more", "tcp", "tls", "ws", "http".
std::string_view verdictName(Verdict v);

struct Classification {
  Verdict verdict = Verdict::kNeedMore;
  // The bytes start with 16 03: a TLS record header, or a raw client frame
  // of payload length 790.
  bool tls_lookalike = false;
};

// Classifies the first bytes of a connection. `tls_offered`: the listener
// terminates TLS (its chain has a `tls` filter). `final`: no more bytes will
// come into the decision (the deadline passed, max_bytes are buffered, or
// the peer half-closed): an undecided prefix is then raw TCP, except a
// complete HTTP request line, which is decided on the header fields seen.
Classification classify(std::string_view bytes, bool tls_offered, bool final);

}  // namespace detect
}  // namespace gw
