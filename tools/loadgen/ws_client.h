// tools/loadgen/ws_client.h — the client side of RFC 6455 for loadgen --ws.
//
// Defines the pieces loadgen needs to speak WebSocket to the gateway, as pure
// functions over caller-owned memory (no allocation per message):
//   - the opening handshake: a random Sec-WebSocket-Key, the upgrade request,
//     and the check of the server's 101 response (Sec-WebSocket-Accept
//     computed with OpenSSL's SHA-1 and base64);
//   - wsWriteHeader/wsMask: one client frame -> one masked binary message;
//   - unwrapServerMessages: server binary messages (unmasked, FIN set) turned
//     back into the byte stream they carry, in place; close and ping frames
//     reported, anything else an error;
//   - FastRng: the per-message mask keys (xorshift64*).
// Written from RFC 6455 sections 4 and 5, independently of filters/websocket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gw {
namespace tools {

// xorshift64* (Vigna): fast, good enough for masking keys (RFC 6455 only
// asks that they be unpredictable to scripts in a browser, which a load
// generator is not). Seed must be non-zero (0 is replaced).
class FastRng {
 public:
  explicit FastRng(uint64_t seed) : s_(seed != 0 ? seed : 0x9e3779b97f4a7c15ull) {}
  uint64_t next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 0x2545f4914f6cdd1dull;
  }

 private:
  uint64_t s_;
};

// Base64 of 16 bytes made from `a` and `b`: a Sec-WebSocket-Key.
std::string wsKeyFrom(uint64_t a, uint64_t b);
// The Sec-WebSocket-Accept a server must answer `key` with:
// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
std::string wsAcceptFor(std::string_view key);
// The HTTP/1.1 upgrade request for `path` on `host` with `key`.
std::string wsUpgradeRequest(std::string_view host, std::string_view path, std::string_view key);
// Checks the server's response head (status line through the empty line):
// status 101, Upgrade: websocket, Connection: upgrade, and the accept value
// for `key`. Returns "" if it is a valid 101, else why not (the status line,
// or the header that is missing or wrong).
std::string wsCheckUpgradeResponse(std::string_view head, std::string_view key);

// Bytes of a client (masked) frame header for a payload of `len` bytes:
// 2 + 4 (len <= 125), 4 + 4 (<= 65535), else 10 + 4.
inline size_t wsClientHeaderSize(size_t len) { return (len <= 125 ? 2 : len <= 0xffff ? 4 : 10) + 4; }
// Writes the header of a final binary frame of `len` payload bytes masked
// with `key` (its 4 bytes in memory order: key & 0xff first) into `out`
// (wsClientHeaderSize(len) bytes). Returns the bytes written.
size_t wsWriteHeader(uint8_t* out, size_t len, uint32_t key);
// XORs `len` bytes at `data` with `key` (same byte order as wsWriteHeader),
// starting at key byte 0. Masking and unmasking are the same operation.
void wsMask(uint8_t* data, size_t len, uint32_t key);

// What unwrapServerMessages found in a buffer of server bytes.
struct WsUnwrap {
  enum class Status { kOk, kClose, kError };
  Status status = Status::kOk;
  size_t stream_len = 0;  // payload bytes of the binary messages, now at the buffer's front
  size_t consumed = 0;    // raw bytes of the whole frames unwrapped (the rest is incomplete)
  size_t messages = 0;    // binary messages unwrapped
  size_t pings = 0;       // pings seen (skipped; loadgen does not answer them)
  uint16_t close_code = 0;  // kClose: the server's status code (1005 if none)
  const char* error = "";   // kError: what was wrong
};
// Unwraps the complete server frames at the front of `buf` (`len` bytes):
// each binary message's payload is moved (memmove) to the buffer's front, in
// order, so buf[0, stream_len) is the byte stream they carry. Pings and pongs
// are skipped. Stops at an incomplete frame (consumed says where), at a close
// frame (kClose, consumed includes it) or at anything a server must not send
// or the gateway never sends: a masked frame, RSV bits, text, fragments,
// control frames over 125 bytes, lengths over 2^31 (kError).
WsUnwrap unwrapServerMessages(uint8_t* buf, size_t len);

}  // namespace tools
}  // namespace gw
