// core/sdk/wire.h — the two wire formats of the Go game gateway, byte-exact.
//
// Defines ClientHeader (8 bytes, client <-> gateway), ServerHeader
// (20-byte server header + 9-byte gate header, gateway <-> backend) and
// TracedServerHeader (the same with the Go gateway's 33-byte extended gate
// header carrying a W3C trace id and span id), with encode/decode helpers that work on raw bytes. All fields are little-endian
// (docs/protocol.md). No allocation, no I/O: pure functions over bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace gw {
namespace wire {

// Size of the client frame header.
inline constexpr size_t kClientHeaderSize = 8;
// Size of the server header (length, type, server_id, object_id).
inline constexpr size_t kServerHeaderSize = 20;
// Size of the gate header (opcode, session_id) that follows the server header.
inline constexpr size_t kGateHeaderSize = 9;
// Server header + gate header: bytes in front of every backend payload.
inline constexpr size_t kServerFrameOverhead = kServerHeaderSize + kGateHeaderSize;
// Size of the extended gate header (opcode, session_id, trace_id[16],
// span_id[8]): the Go gateway's with tracing.enable_trace_propagation.
inline constexpr size_t kTracedGateHeaderSize = 33;
// Server header + extended gate header.
inline constexpr size_t kTracedServerFrameOverhead = kServerHeaderSize + kTracedGateHeaderSize;
// Bytes of a W3C trace id and span id.
inline constexpr size_t kTraceIdSize = 16;
inline constexpr size_t kSpanIdSize = 8;
// Largest payload a client frame can carry (u16 length).
inline constexpr size_t kMaxClientPayload = 65535;

inline void putU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void putU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void putU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint16_t getU16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline uint32_t getU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline uint64_t getU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Client frame header: length (u16, payload only), msg_id (u16),
// server_id (u32: bit 31 compressed, 16-30 world_id, 8-15 server_type,
// 0-7 inst_id).
struct ClientHeader {
  uint16_t length = 0;
  uint16_t msg_id = 0;
  uint32_t server_id = 0;

  uint16_t worldId() const { return (server_id >> 16) & 0x7fff; }
  uint8_t serverType() const { return (server_id >> 8) & 0xff; }
  uint8_t instId() const { return server_id & 0xff; }
  bool compressed() const { return (server_id >> 31) != 0; }

  // Builds a server_id from its parts (compressed flag left clear).
  static uint32_t makeServerId(uint16_t world_id, uint8_t server_type, uint8_t inst_id) {
    return (static_cast<uint32_t>(world_id & 0x7fff) << 16) |
           (static_cast<uint32_t>(server_type) << 8) | inst_id;
  }

  // Writes the 8 header bytes to `out`.
  void encode(uint8_t* out) const {
    putU16(out, length);
    putU16(out + 2, msg_id);
    putU32(out + 4, server_id);
  }
  // Reads 8 header bytes from `in`.
  static ClientHeader decode(const uint8_t* in) {
    ClientHeader h;
    h.length = getU16(in);
    h.msg_id = getU16(in + 2);
    h.server_id = getU32(in + 4);
    return h;
  }
};

// Gate-header opcodes. 1 is the Go gateway's data frame; the rest are ours
// (docs/protocol.md, "Lifecycle opcodes").
enum class Opcode : uint8_t {
  kData = 1,           // gateway <-> backend: payload for / from a session
  kSessionOpen = 2,    // gateway -> backend: first frame of a session on this backend
  kSessionClose = 3,   // gateway -> backend: the session's client connection closed
  kKick = 4,           // backend -> gateway: close the session's client connection
  kBindPlayer = 5,     // backend -> gateway: bind a player id (payload: u64) to the session
};

// Server frame header (20 bytes) + gate header (9 bytes).
struct ServerHeader {
  int32_t length = 0;      // bytes after the 20-byte server header: 9 + payload
  int32_t type = 0;        // client msg_id (both directions)
  uint32_t server_id = 0;  // always 0
  int64_t object_id = 0;   // session id
  uint8_t opcode = static_cast<uint8_t>(Opcode::kData);
  int64_t session_id = 0;  // session id

  // Payload bytes implied by `length` (negative if the header is malformed).
  int64_t payloadLength() const { return static_cast<int64_t>(length) - kGateHeaderSize; }

  // Writes the 29 header bytes to `out`.
  void encode(uint8_t* out) const {
    putU32(out, static_cast<uint32_t>(length));
    putU32(out + 4, static_cast<uint32_t>(type));
    putU32(out + 8, server_id);
    putU64(out + 12, static_cast<uint64_t>(object_id));
    out[20] = opcode;
    putU64(out + 21, static_cast<uint64_t>(session_id));
  }
  // Reads 29 header bytes from `in`.
  static ServerHeader decode(const uint8_t* in) {
    ServerHeader h;
    h.length = static_cast<int32_t>(getU32(in));
    h.type = static_cast<int32_t>(getU32(in + 4));
    h.server_id = getU32(in + 8);
    h.object_id = static_cast<int64_t>(getU64(in + 12));
    h.opcode = in[20];
    h.session_id = static_cast<int64_t>(getU64(in + 21));
    return h;
  }
  // A data/lifecycle header for `session` carrying `payload_len` bytes.
  static ServerHeader make(Opcode op, int32_t type, uint64_t session, size_t payload_len) {
    ServerHeader h;
    h.length = static_cast<int32_t>(kGateHeaderSize + payload_len);
    h.type = type;
    h.object_id = static_cast<int64_t>(session);
    h.opcode = static_cast<uint8_t>(op);
    h.session_id = static_cast<int64_t>(session);
    return h;
  }
};

// Server header (20 bytes) + extended gate header (33 bytes): a data frame
// to a backend of a `compat` cluster with trace_propagation. `length`
// counts the 33-byte gate header: 33 + payload. The trace id and span id
// are copied as bytes, in the order their W3C hex form reads (the Go
// gateway decodes the hex strings into these bytes).
struct TracedServerHeader {
  ServerHeader base;  // base.length = 33 + payload
  uint8_t trace_id[kTraceIdSize] = {0};
  uint8_t span_id[kSpanIdSize] = {0};

  // Payload bytes implied by base.length (negative if malformed).
  int64_t payloadLength() const {
    return static_cast<int64_t>(base.length) - static_cast<int64_t>(kTracedGateHeaderSize);
  }
  // Writes the 53 header bytes to `out`.
  void encode(uint8_t* out) const {
    base.encode(out);
    std::memcpy(out + kServerFrameOverhead, trace_id, kTraceIdSize);
    std::memcpy(out + kServerFrameOverhead + kTraceIdSize, span_id, kSpanIdSize);
  }
  // Reads 53 header bytes from `in`.
  static TracedServerHeader decode(const uint8_t* in) {
    TracedServerHeader h;
    h.base = ServerHeader::decode(in);
    std::memcpy(h.trace_id, in + kServerFrameOverhead, kTraceIdSize);
    std::memcpy(h.span_id, in + kServerFrameOverhead + kTraceIdSize, kSpanIdSize);
    return h;
  }
  // A data header (opcode 1) for `session` carrying `payload_len` bytes.
  static TracedServerHeader make(int32_t type, uint64_t session, size_t payload_len,
                                 const uint8_t* trace_id, const uint8_t* span_id) {
    TracedServerHeader h;
    h.base = ServerHeader::make(Opcode::kData, type, session, payload_len);
    h.base.length = static_cast<int32_t>(kTracedGateHeaderSize + payload_len);
    std::memcpy(h.trace_id, trace_id, kTraceIdSize);
    std::memcpy(h.span_id, span_id, kSpanIdSize);
    return h;
  }
};

}  // namespace wire
}  // namespace gw
