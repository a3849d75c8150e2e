// filters/websocket/handshake.h — the RFC 6455 opening handshake, server side.
//
// Defines checkHandshake() (a pure function: a complete HTTP request head
// and the listener's policy → 101 with the accept key and subprotocol, or
// the HTTP status to refuse with and why), acceptKey() (Sec-WebSocket-Accept
// with OpenSSL's SHA-1 and base64) and the response texts. Used by the
// `websocket` filter; unit tests and the fuzz target call it directly.
//
// Checks, in order, each with its status (docs/filters/websocket.md):
//   not a parseable HTTP/1.x head                        400 bad_request
//   method other than GET                                 400 bad_method
//   HTTP/1.0                                              400 bad_http_version
//   no Host                                               400 missing_host
//   path differs from `path` (query ignored)              404 wrong_path
//   no "Upgrade: websocket"                               426 not_upgrade (Upgrade: websocket)
//   Connection does not list "Upgrade"                    400 bad_connection
//   Sec-WebSocket-Version not 13                          426 bad_version (Sec-WebSocket-Version: 13)
//   Sec-WebSocket-Key missing, repeated, not 16 bytes     400 bad_key
//   Origin present and not in allowed_origins            403 forbidden_origin
//   client offers subprotocols, none is `subprotocol`     400 subprotocol
// A head over max_handshake_bytes is answered 431 by the filter before it
// gets here.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gw {
namespace websocket {

// Why a handshake was refused; each is a metric label.
enum class HandshakeError {
  kNone,
  kBadRequest,
  kBadMethod,
  kBadHttpVersion,
  kMissingHost,
  kWrongPath,
  kNotUpgrade,
  kBadConnection,
  kBadVersion,
  kBadKey,
  kForbiddenOrigin,
  kSubprotocol,
  kHeadersTooLarge,  // decided by the filter (max_handshake_bytes)
  kTimeout,          // decided by the filter (handshake_timeout)
  kEof,              // decided by the filter (peer closed mid-handshake)
  kCount,
};

// "bad_request", "forbidden_origin", ...: the `reason` label.
std::string_view handshakeErrorName(HandshakeError e);

// What the listener accepts (views into the filter's config).
struct HandshakePolicy {
  // Request path that must match; empty: any.
  std::string_view path;
  // Origins accepted when the client sends one; empty: any.
  const std::vector<std::string>* allowed_origins = nullptr;
  // The subprotocol this server speaks; empty: none.
  std::string_view subprotocol;
};

struct HandshakeResult {
  HandshakeError error = HandshakeError::kNone;
  int status = 101;          // 101, or the refusal's HTTP status
  std::string detail;        // for the log: what was wrong
  std::string accept;        // Sec-WebSocket-Accept (when status 101)
  std::string subprotocol;   // the one selected, or empty
};

// Checks a complete request head (request line to the empty line). Pure.
HandshakeResult checkHandshake(std::string_view head, const HandshakePolicy& policy);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
std::string acceptKey(std::string_view key);

// True when `key` is base64 of exactly 16 bytes (24 characters, "==" end).
bool validKey(std::string_view key);

// "HTTP/1.1 101 Switching Protocols" with Upgrade, Connection, the accept
// key and, when not empty, Sec-WebSocket-Protocol.
std::string switchingProtocols(const HandshakeResult& ok);

// A refusal: `status` with its reason phrase, Connection: close, the extra
// field the status needs (426: Upgrade / Sec-WebSocket-Version), a short
// text body.
std::string refusal(int status, HandshakeError error);

}  // namespace websocket
}  // namespace gw
