// test/filters/websocket/ws_wire.h — a WebSocket client's side of the wire, for tests
// and benchmarks: masked client frames, upgrade requests, and parsing what the
// server sent (HTTP head, then unmasked server frames). Written from RFC 6455
// section 5.2, independently of filters/websocket/frame_codec.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gw {
namespace ws_test {

// A client frame: FIN (unless !fin), RSV bits `rsv` (0-7), `opcode`, masked
// with `key` (unless !masked), shortest length form.
inline std::string clientFrame(uint8_t opcode, std::string_view payload, bool fin = true,
                               uint8_t rsv = 0, bool masked = true,
                               std::array<uint8_t, 4> key = {0x37, 0xfa, 0x21, 0x3d}) {
  std::string f;
  f += static_cast<char>((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f));
  const uint8_t m = masked ? 0x80 : 0;
  const uint64_t n = payload.size();
  if (n <= 125) {
    f += static_cast<char>(m | n);
  } else if (n <= 0xffff) {
    f += static_cast<char>(m | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xff);
  } else {
    f += static_cast<char>(m | 127);
    for (int k = 7; k >= 0; --k) f += static_cast<char>((n >> (8 * k)) & 0xff);
  }
  if (masked) f.append(reinterpret_cast<const char*>(key.data()), 4);
  for (size_t i = 0; i < n; ++i) {
    f += masked ? static_cast<char>(payload[i] ^ key[i & 3]) : payload[i];
  }
  return f;
}

inline std::string binary(std::string_view payload) { return clientFrame(0x2, payload); }

// A close frame's payload: the code big-endian, then the reason.
inline std::string closePayload(uint16_t code, std::string_view reason = "") {
  std::string p;
  p += static_cast<char>(code >> 8);
  p += static_cast<char>(code & 0xff);
  p += reason;
  return p;
}

// The RFC 6455 example key.
inline constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";
inline constexpr std::string_view kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// A valid upgrade request for `path` plus `extra` header lines (each ending
// in CRLF).
inline std::string upgradeRequest(std::string_view path = "/", std::string_view extra = "") {
  std::string r = "GET ";
  r += path;
  r +=
      " HTTP/1.1\r\nHost: game.example\r\nUpgrade: websocket\r\nConnection: keep-alive, "
      "Upgrade\r\nSec-WebSocket-Key: ";
  r += kKey;
  r += "\r\nSec-WebSocket-Version: 13\r\n";
  r += extra;
  r += "\r\n";
  return r;
}

struct ServerFrame {
  bool fin = false;
  uint8_t rsv = 0;
  uint8_t opcode = 0;
  bool masked = false;
  std::string payload;
};

// Splits `out` into the HTTP head (up to the empty line) and what follows.
inline std::string_view httpHead(std::string_view out, std::string_view* rest) {
  size_t at = out.find("\r\n\r\n");
  if (at == std::string_view::npos) {
    *rest = {};
    return out;
  }
  *rest = out.substr(at + 4);
  return out.substr(0, at + 4);
}

// Parses server frames from `bytes`; returns false on a truncated frame
// (what parsed so far is in *frames).
inline bool parseServerFrames(std::string_view bytes, std::vector<ServerFrame>* frames) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t i = 0;
  const size_t n = bytes.size();
  while (i < n) {
    if (n - i < 2) return false;
    ServerFrame f;
    f.fin = (p[i] & 0x80) != 0;
    f.rsv = (p[i] >> 4) & 7;
    f.opcode = p[i] & 0x0f;
    f.masked = (p[i + 1] & 0x80) != 0;
    uint64_t len = p[i + 1] & 0x7f;
    i += 2;
    if (len == 126) {
      if (n - i < 2) return false;
      len = (uint64_t{p[i]} << 8) | p[i + 1];
      i += 2;
    } else if (len == 127) {
      if (n - i < 8) return false;
      len = 0;
      for (int k = 0; k < 8; ++k) len = (len << 8) | p[i + k];
      i += 8;
    }
    if (n - i < len) return false;
    f.payload.assign(bytes.substr(i, len));
    i += len;
    frames->push_back(std::move(f));
  }
  return true;
}

}  // namespace ws_test
}  // namespace gw
