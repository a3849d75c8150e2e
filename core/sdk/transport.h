// core/sdk/transport.h — what a client connection speaks under the frames.
//
// Defines TransportInfo: the per-connection verdict of transport detection
// (the `detect` filter, docs/transports.md), published in the connection's
// Slots by the filter that owns it and read by the transport filters after
// it (`tls` terminates TLS only when `tls` is set, `websocket` speaks
// RFC 6455 only when `websocket` is set or, under TLS, when its own look at
// the decrypted bytes finds an upgrade request) and by anything that labels
// connections by transport (metrics, access log). Per connection; not
// thread-safe.
#pragma once

#include <string_view>

namespace gw {

struct TransportInfo {
  // False until detection decided (first bytes seen or deadline passed).
  bool decided = false;
  // The client opened with a TLS ClientHello.
  bool tls = false;
  // The client's (decrypted) stream is WebSocket (set by `detect` for
  // plain ws, by `websocket` itself for wss).
  bool websocket = false;

  // "tcp", "tls", "ws" or "wss": the `transport` label of metrics.
  std::string_view name() const {
    if (websocket) return tls ? "wss" : "ws";
    return tls ? "tls" : "tcp";
  }
};

}  // namespace gw
