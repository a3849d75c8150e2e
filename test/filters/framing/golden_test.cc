// test/filters/framing/golden_test.cc — byte-exact fixtures for both wire
// formats, written by hand from the tables in DESIGN.md §1 (not produced by
// the encoders under test).
//
// Client frame (8-byte header, little-endian):
//   u16 length (payload only) | u16 msg_id | u32 server_id
//   server_id: bit 31 compressed | bits 16-30 world_id | 8-15 server_type | 0-7 inst_id
// Server frame: 20-byte server header + 9-byte gate header, little-endian:
//   i32 length (= 9 + payload) | i32 type | u32 server_id (0) | i64 object_id
//   | u8 opcode (1 = data) | i64 session_id | payload
// The client-frame fixtures go through the `framing` codec (decode and
// encode) and through gw::wire::ClientHeader; the server-frame fixtures check
// gw::wire::ServerHeader.
#include <event2/buffer.h>
#include <gtest/gtest.h>

#include <cctype>
#include <stdexcept>
#include <string>

#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/wire.h"

namespace gw {
namespace framing_test {
namespace {

// "05 00 34 12" -> bytes. Spaces are ignored.
std::string hex(const std::string& text) {
  std::string out;
  int hi = -1;
  for (char c : text) {
    if (c == ' ' || c == '\n') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) throw std::invalid_argument(text);
    int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<char>(hi * 16 + v));
      hi = -1;
    }
  }
  if (hi >= 0) throw std::invalid_argument("odd number of hex digits: " + text);
  return out;
}

const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 + 1);
  return s;
}

// ---- client frame ---------------------------------------------------------

// length 5, msg_id 0x1234, server_id = compressed | world_id 3 | server_type
// 200 (0xC8) | inst_id 1 = 0x8003C801, payload "hello".
const std::string kClientHello = hex(
    "05 00"          // length 5
    "34 12"          // msg_id 0x1234
    "01 c8 03 80"    // inst_id 1, server_type 200, world_id 3, compressed
    "68 65 6c 6c 6f" // "hello"
);

// length 300 (0x012C), msg_id 0xBEEF, world_id 0x7FFF (largest), server_type
// 10 (account), inst_id 255, not compressed = 0x7FFF0AFF.
const std::string kClientBigHeader = hex("2c 01 ef be ff 0a ff 7f");

// A frame to the client as the Go gateway sends it: server_id 0, msg_id = the
// backend frame's type (0x0A0B), empty payload.
const std::string kClientToClientEmpty = hex("00 00 0b 0a 00 00 00 00");

TEST(ClientFrameGolden, WireHeaderDecode) {
  wire::ClientHeader h = wire::ClientHeader::decode(bytes(kClientHello));
  EXPECT_EQ(h.length, 5);
  EXPECT_EQ(h.msg_id, 0x1234);
  EXPECT_EQ(h.server_id, 0x8003C801u);
  EXPECT_TRUE(h.compressed());
  EXPECT_EQ(h.worldId(), 3);
  EXPECT_EQ(h.serverType(), 200);
  EXPECT_EQ(h.instId(), 1);

  wire::ClientHeader b = wire::ClientHeader::decode(bytes(kClientBigHeader));
  EXPECT_EQ(b.length, 300);
  EXPECT_EQ(b.msg_id, 0xBEEF);
  EXPECT_FALSE(b.compressed());
  EXPECT_EQ(b.worldId(), 0x7FFF);
  EXPECT_EQ(b.serverType(), 10);
  EXPECT_EQ(b.instId(), 255);
}

TEST(ClientFrameGolden, WireHeaderEncode) {
  wire::ClientHeader h;
  h.length = 5;
  h.msg_id = 0x1234;
  h.server_id = wire::ClientHeader::makeServerId(3, 200, 1) | 0x80000000u;
  uint8_t out[8];
  h.encode(out);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), 8), kClientHello.substr(0, 8));

  wire::ClientHeader b;
  b.length = 300;
  b.msg_id = 0xBEEF;
  b.server_id = wire::ClientHeader::makeServerId(0x7FFF, 10, 255);
  b.encode(out);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), 8), kClientBigHeader);
}

// Starts `ec` as framing (default config) -> `recorder`.
void startCodec(test::EmbeddedChain& ec, test::FrameRecorder& recorder) {
  std::string error;
  auto framing = ec.registered("framing", "{}", {}, &error);
  ASSERT_TRUE(framing) << error;
  ec.start({*framing, recorder.element()});
}

TEST(ClientFrameGolden, CodecDecodes) {
  test::FrameRecorder recorder;
  test::EmbeddedChain ec;
  ASSERT_NO_FATAL_FAILURE(startCodec(ec, recorder));
  ec.feed(kClientHello + kClientBigHeader + pattern(300));
  ASSERT_EQ(recorder.frames.size(), 2u);
  const test::RecordedFrame& a = recorder.frames[0];
  EXPECT_EQ(a.header.length, 5);
  EXPECT_EQ(a.header.msg_id, 0x1234);
  EXPECT_EQ(a.header.server_id, 0x8003C801u);
  EXPECT_EQ(a.payload, "hello");
  const test::RecordedFrame& b = recorder.frames[1];
  EXPECT_EQ(b.header.length, 300);
  EXPECT_EQ(b.header.msg_id, 0xBEEF);
  EXPECT_EQ(b.header.worldId(), 0x7FFF);
  EXPECT_EQ(b.header.serverType(), 10);
  EXPECT_EQ(b.header.instId(), 255);
  EXPECT_EQ(b.payload, pattern(300));
}

TEST(ClientFrameGolden, CodecEncodes) {
  test::FrameRecorder recorder;
  test::EmbeddedChain ec;
  ASSERT_NO_FATAL_FAILURE(startCodec(ec, recorder));
  recorder.callbacks->sendFrame(0x1234, 0x8003C801u, "hello");
  EXPECT_EQ(ec.takeOutput(), kClientHello);

  // Write path with the payload in another buffer (as from a backend).
  evbuffer* src = evbuffer_new();
  std::string p = pattern(300);
  evbuffer_add(src, p.data(), p.size());
  wire::ClientHeader hd;
  hd.length = 300;
  hd.msg_id = 0xBEEF;
  hd.server_id = 0x7FFF0AFFu;
  Frame f(hd, src);
  recorder.callbacks->writeFrame(f);
  EXPECT_EQ(ec.takeOutput(), kClientBigHeader + p);
  evbuffer_free(src);

  recorder.callbacks->sendFrame(0x0A0B, 0, "");
  EXPECT_EQ(ec.takeOutput(), kClientToClientEmpty);
}

// ---- server frame ---------------------------------------------------------

// Gateway -> backend data frame: type 0x1234, session 0x0102030405060708,
// payload "hello" (length = 9 + 5 = 14).
const std::string kServerHello = hex(
    "0e 00 00 00"               // length 14
    "34 12 00 00"               // type 0x1234
    "00 00 00 00"               // server_id 0
    "08 07 06 05 04 03 02 01"   // object_id = session id
    "01"                        // opcode 1 (data)
    "08 07 06 05 04 03 02 01"   // session_id
    "68 65 6c 6c 6f"            // "hello"
);

// Backend -> gateway data frame, empty payload (length 9), type 0xBEEF, a
// session id with bit 63 set (0xF00000000000000A: negative as i64).
const std::string kServerEmptyHighSession = hex(
    "09 00 00 00"
    "ef be 00 00"
    "00 00 00 00"
    "0a 00 00 00 00 00 00 f0"
    "01"
    "0a 00 00 00 00 00 00 f0");

// A 300-byte payload: length 309 = 0x135 exercises the second length byte.
const std::string kServerBigHeader = hex(
    "35 01 00 00"
    "2a 00 00 00"               // type 42
    "00 00 00 00"
    "ff ff ff ff ff ff ff 7f"   // object_id = largest positive i64
    "01"
    "ff ff ff ff ff ff ff 7f");

TEST(ServerFrameGolden, Sizes) {
  EXPECT_EQ(wire::kServerHeaderSize, 20u);
  EXPECT_EQ(wire::kGateHeaderSize, 9u);
  EXPECT_EQ(kServerHello.size(), 20u + 9 + 5);
}

TEST(ServerFrameGolden, Encode) {
  uint8_t out[wire::kServerFrameOverhead];
  wire::ServerHeader::make(wire::Opcode::kData, 0x1234, 0x0102030405060708ull, 5).encode(out);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), sizeof(out)), kServerHello.substr(0, 29));

  wire::ServerHeader::make(wire::Opcode::kData, 0xBEEF, 0xF00000000000000Aull, 0).encode(out);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), sizeof(out)), kServerEmptyHighSession);

  wire::ServerHeader::make(wire::Opcode::kData, 42, 0x7FFFFFFFFFFFFFFFull, 300).encode(out);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), sizeof(out)), kServerBigHeader);
}

TEST(ServerFrameGolden, Decode) {
  wire::ServerHeader a = wire::ServerHeader::decode(bytes(kServerHello));
  EXPECT_EQ(a.length, 14);
  EXPECT_EQ(a.payloadLength(), 5);
  EXPECT_EQ(a.type, 0x1234);
  EXPECT_EQ(a.server_id, 0u);
  EXPECT_EQ(a.object_id, 0x0102030405060708ll);
  EXPECT_EQ(a.opcode, 1);
  EXPECT_EQ(a.session_id, 0x0102030405060708ll);
  EXPECT_EQ(kServerHello.substr(29), "hello");

  wire::ServerHeader b = wire::ServerHeader::decode(bytes(kServerEmptyHighSession));
  EXPECT_EQ(b.length, 9);
  EXPECT_EQ(b.payloadLength(), 0);
  EXPECT_EQ(b.type, 0xBEEF);
  EXPECT_EQ(static_cast<uint64_t>(b.object_id), 0xF00000000000000Aull);
  EXPECT_EQ(static_cast<uint64_t>(b.session_id), 0xF00000000000000Aull);
  EXPECT_EQ(b.opcode, static_cast<uint8_t>(wire::Opcode::kData));

  wire::ServerHeader c = wire::ServerHeader::decode(bytes(kServerBigHeader));
  EXPECT_EQ(c.length, 309);
  EXPECT_EQ(c.payloadLength(), 300);
  EXPECT_EQ(c.type, 42);
  EXPECT_EQ(c.object_id, 0x7FFFFFFFFFFFFFFFll);
}

// A header whose length is under 9 is malformed: payloadLength() says so.
TEST(ServerFrameGolden, ShortLengthIsNegativePayload) {
  wire::ServerHeader h = wire::ServerHeader::decode(bytes(hex(
      "05 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00"
      "01 01 00 00 00 00 00 00 00")));
  EXPECT_EQ(h.length, 5);
  EXPECT_LT(h.payloadLength(), 0);
}

}  // namespace
}  // namespace framing_test
}  // namespace gw
