// test/filters/websocket/protocol_test.cc — the pure parts of the `websocket`
// filter: the handshake check (RFC 6455 4.2) and the frame codec (5.2), each
// bad input with its HTTP status or close code.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "filters/websocket/frame_codec.h"
#include "filters/websocket/handshake.h"
#include "test/filters/websocket/ws_wire.h"

namespace gw {
namespace websocket {
namespace {

using ws_test::clientFrame;
using ws_test::closePayload;
using ws_test::upgradeRequest;

// ---- handshake --------------------------------------------------------------

TEST(AcceptKey, Rfc6455Example) { EXPECT_EQ(acceptKey(ws_test::kKey), ws_test::kAccept); }

TEST(AcceptKey, ValidKeys) {
  EXPECT_TRUE(validKey("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_FALSE(validKey("dGhlIHNhbXBsZSBub25jZQ="));     // 23 chars
  EXPECT_FALSE(validKey("dGhlIHNhbXBsZSBub25jZR=="));    // stray bits in the last char
  EXPECT_FALSE(validKey("dGhlIHNhbXBsZSBub25j!Q=="));    // not base64
  EXPECT_FALSE(validKey("dGhlIHNhbXBsZSBub25jZQ"));      // no padding
  EXPECT_FALSE(validKey(""));
}

TEST(Handshake, AcceptsAValidUpgrade) {
  HandshakeResult r = checkHandshake(upgradeRequest(), {});
  EXPECT_EQ(r.error, HandshakeError::kNone) << r.detail;
  EXPECT_EQ(r.status, 101);
  EXPECT_EQ(r.accept, ws_test::kAccept);
  std::string response = switchingProtocols(r);
  EXPECT_EQ(response,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
}

struct BadCase {
  const char* name;
  std::string request;
  int status;
  HandshakeError error;
};

TEST(Handshake, RefusesEachBadInputWithItsStatus) {
  const std::string key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  const std::string base_fields =
      "Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
  std::vector<BadCase> cases = {
      {"garbage field", "GET / HTTP/1.1\r\nHost h\r\n\r\n", 400, HandshakeError::kBadRequest},
      {"POST", "POST / HTTP/1.1\r\n" + base_fields + key + "\r\n", 400, HandshakeError::kBadMethod},
      {"HTTP/1.0", "GET / HTTP/1.0\r\n" + base_fields + key + "\r\n", 400,
       HandshakeError::kBadHttpVersion},
      {"no Host",
       "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: "
       "13\r\n" + key + "\r\n",
       400, HandshakeError::kMissingHost},
      {"no Upgrade",
       "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" + key +
           "\r\n",
       426, HandshakeError::kNotUpgrade},
      {"Connection without Upgrade",
       "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
       "Sec-WebSocket-Version: 13\r\n" + key + "\r\n",
       400, HandshakeError::kBadConnection},
      {"missing key", "GET / HTTP/1.1\r\n" + base_fields + "\r\n", 400, HandshakeError::kBadKey},
      {"short key", "GET / HTTP/1.1\r\n" + base_fields + "Sec-WebSocket-Key: abcd\r\n\r\n", 400,
       HandshakeError::kBadKey},
      {"two keys", "GET / HTTP/1.1\r\n" + base_fields + key + key + "\r\n", 400,
       HandshakeError::kBadKey},
      {"version 8", upgradeRequest("/").replace(upgradeRequest("/").find("13"), 2, "8"), 426,
       HandshakeError::kBadVersion},
      {"no version",
       "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + key + "\r\n",
       426, HandshakeError::kBadVersion},
      {"obs-fold", "GET / HTTP/1.1\r\n" + base_fields + key + " folded\r\n\r\n", 400,
       HandshakeError::kBadRequest},
  };
  for (const auto& c : cases) {
    HandshakeResult r = checkHandshake(c.request, {});
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.detail;
    EXPECT_EQ(r.error, c.error) << c.name << ": " << r.detail;
  }
}

TEST(Handshake, RefusalTexts) {
  std::string bad_version = refusal(426, HandshakeError::kBadVersion);
  EXPECT_EQ(bad_version.rfind("HTTP/1.1 426 Upgrade Required\r\n", 0), 0u) << bad_version;
  EXPECT_NE(bad_version.find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos);
  EXPECT_NE(bad_version.find("\r\nConnection: close\r\n"), std::string::npos);
  std::string plain = refusal(426, HandshakeError::kNotUpgrade);
  EXPECT_NE(plain.find("\r\nUpgrade: websocket\r\n"), std::string::npos);
  EXPECT_EQ(refusal(431, HandshakeError::kHeadersTooLarge)
                .rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0),
            0u);
}

TEST(Handshake, PathMustMatchIgnoringTheQuery) {
  HandshakePolicy policy;
  policy.path = "/ws";
  EXPECT_EQ(checkHandshake(upgradeRequest("/ws?token=1"), policy).status, 101);
  HandshakeResult r = checkHandshake(upgradeRequest("/other"), policy);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.error, HandshakeError::kWrongPath);
}

TEST(Handshake, OriginChecks) {
  std::vector<std::string> origins = {"https://game.example"};
  HandshakePolicy policy;
  policy.allowed_origins = &origins;
  EXPECT_EQ(checkHandshake(upgradeRequest("/", "Origin: https://game.example\r\n"), policy).status,
            101);
  EXPECT_EQ(checkHandshake(upgradeRequest("/", "Origin: HTTPS://GAME.example\r\n"), policy).status,
            101);
  // Non-browser clients send no Origin: allowed.
  EXPECT_EQ(checkHandshake(upgradeRequest("/"), policy).status, 101);
  HandshakeResult r = checkHandshake(upgradeRequest("/", "Origin: https://evil.example\r\n"), policy);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.error, HandshakeError::kForbiddenOrigin);
}

TEST(Handshake, Subprotocol) {
  HandshakePolicy policy;
  policy.subprotocol = "game.v1";
  HandshakeResult r =
      checkHandshake(upgradeRequest("/", "Sec-WebSocket-Protocol: chat, game.v1\r\n"), policy);
  ASSERT_EQ(r.status, 101) << r.detail;
  EXPECT_EQ(r.subprotocol, "game.v1");
  EXPECT_NE(switchingProtocols(r).find("\r\nSec-WebSocket-Protocol: game.v1\r\n"),
            std::string::npos);
  // Offered, but not ours.
  EXPECT_EQ(checkHandshake(upgradeRequest("/", "Sec-WebSocket-Protocol: chat\r\n"), policy).error,
            HandshakeError::kSubprotocol);
  // Not offered: accepted without one.
  r = checkHandshake(upgradeRequest("/"), policy);
  EXPECT_EQ(r.status, 101);
  EXPECT_EQ(r.subprotocol, "");
  // Offered while none is configured.
  EXPECT_EQ(checkHandshake(upgradeRequest("/", "Sec-WebSocket-Protocol: chat\r\n"), {}).status,
            400);
}

// ---- frame decoder ----------------------------------------------------------

struct Decoded {
  std::string data;
  std::vector<DecodeEvent> events;  // payload views copied into strings below
  std::vector<std::string> payloads;
  size_t consumed = 0;
};

// Feeds `bytes` in pieces of `step` bytes, collecting output and events
// (continuing after control frames, stopping at close/error).
Decoded run(FrameDecoder& d, const std::string& bytes, size_t step = 1 << 20) {
  Decoded out;
  size_t i = 0;
  std::string buf;
  while (i < bytes.size() && !d.done()) {
    size_t n = std::min(step, bytes.size() - i);
    size_t used = 0;
    while (used < n && !d.done()) {
      buf.assign(n - used, '\0');
      size_t wrote = 0;
      DecodeEvent ev;
      size_t c = d.decode(reinterpret_cast<const uint8_t*>(bytes.data() + i + used), n - used,
                          reinterpret_cast<uint8_t*>(&buf[0]), &wrote, &ev);
      out.data.append(buf.data(), wrote);
      used += c;
      if (ev.kind != DecodeEvent::kNone) {
        out.events.push_back(ev);
        out.payloads.emplace_back(ev.payload);
      } else if (c == 0) {
        break;
      }
    }
    i += used;
    out.consumed = i;
    if (used < n) break;
  }
  return out;
}

TEST(FrameDecoder, UnmasksABinaryFrame) {
  FrameDecoder d(1 << 20);
  Decoded r = run(d, clientFrame(kBinary, "hello game"));
  EXPECT_EQ(r.data, "hello game");
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(d.messages(), 1u);
  EXPECT_EQ(d.dataFrames(), 1u);
}

TEST(FrameDecoder, AnyPayloadLengthAndSplit) {
  for (size_t len : {0, 1, 7, 8, 9, 125, 126, 127, 1000, 65535, 65536, 70000}) {
    std::string payload(len, '\0');
    for (size_t i = 0; i < len; ++i) payload[i] = static_cast<char>(i * 7 + 3);
    for (size_t step : {size_t{1}, size_t{3}, size_t{1} << 20}) {
      if (len > 2000 && step < 100) continue;
      FrameDecoder d(1 << 20);
      Decoded r = run(d, clientFrame(kBinary, payload), step);
      EXPECT_EQ(r.data, payload) << len << " step " << step;
      EXPECT_EQ(d.messages(), 1u);
    }
  }
}

TEST(FrameDecoder, FragmentedMessageWithInterleavedPing) {
  FrameDecoder d(1 << 20);
  std::string s = clientFrame(kBinary, "abc", /*fin=*/false) + clientFrame(kPing, "p1") +
                  clientFrame(kContinuation, "def", false) + clientFrame(kContinuation, "g", true);
  Decoded r = run(d, s);
  EXPECT_EQ(r.data, "abcdefg");
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].kind, DecodeEvent::kPing);
  EXPECT_EQ(r.payloads[0], "p1");
  EXPECT_EQ(d.messages(), 1u);
  EXPECT_EQ(d.dataFrames(), 3u);
  EXPECT_FALSE(d.inMessage());
}

TEST(FrameDecoder, CloseWithCodeAndReason) {
  FrameDecoder d(1 << 20);
  Decoded r = run(d, clientFrame(kClose, closePayload(1001, "bye")), 2);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].kind, DecodeEvent::kClose);
  EXPECT_EQ(r.events[0].close_code, 1001);
  EXPECT_EQ(r.payloads[0], "bye");
  EXPECT_TRUE(d.done());
}

TEST(FrameDecoder, EmptyCloseIsNoStatus) {
  FrameDecoder d(1 << 20);
  Decoded r = run(d, clientFrame(kClose, ""));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].close_code, kCloseNoStatus);
}

TEST(FrameDecoder, CloseDuringAFragmentedMessage) {
  FrameDecoder d(1 << 20);
  Decoded r = run(d, clientFrame(kBinary, "part", false) + clientFrame(kClose, closePayload(1000)));
  EXPECT_EQ(r.data, "part");
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].kind, DecodeEvent::kClose);
  EXPECT_TRUE(d.inMessage());
}

struct BadFrame {
  const char* name;
  std::string bytes;
  DecodeError error;
  uint16_t code;
};

TEST(FrameDecoder, RefusesEachBadFrameWithItsCloseCode) {
  std::string long_len16 = clientFrame(kBinary, std::string(10, 'x'));
  // 10 bytes in the 16-bit form: not the shortest.
  std::string non_minimal;
  non_minimal += static_cast<char>(0x82);
  non_minimal += static_cast<char>(0x80 | 126);
  non_minimal += std::string("\x00\x0a", 2);
  non_minimal += std::string("\x00\x00\x00\x00", 4);
  non_minimal += std::string(10, 'x');
  std::string huge64;
  huge64 += static_cast<char>(0x82);
  huge64 += static_cast<char>(0x80 | 127);
  huge64 += std::string("\x80\x00\x00\x00\x00\x00\x00\x00", 8);
  huge64 += std::string("\x01\x02\x03\x04", 4);
  std::vector<BadFrame> cases = {
      {"unmasked", clientFrame(kBinary, "x", true, 0, /*masked=*/false), DecodeError::kUnmasked, 1002},
      {"rsv1", clientFrame(kBinary, "x", true, 4), DecodeError::kReservedBits, 1002},
      {"rsv3", clientFrame(kBinary, "x", true, 1), DecodeError::kReservedBits, 1002},
      {"opcode 3", clientFrame(3, "x"), DecodeError::kBadOpcode, 1002},
      {"opcode 0xB", clientFrame(0xB, "x"), DecodeError::kBadOpcode, 1002},
      {"ping of 126", clientFrame(kPing, std::string(126, 'p')), DecodeError::kControlTooLong, 1002},
      {"fragmented ping", clientFrame(kPing, "p", false), DecodeError::kFragmentedControl, 1002},
      {"continuation first", clientFrame(kContinuation, "x"), DecodeError::kBadContinuation, 1002},
      {"binary inside a message",
       clientFrame(kBinary, "a", false) + clientFrame(kBinary, "b"), DecodeError::kBadContinuation,
       1002},
      {"non-minimal length", non_minimal, DecodeError::kBadLength, 1002},
      {"length 2^63", huge64, DecodeError::kBadLength, 1002},
      {"text", clientFrame(kText, "hi"), DecodeError::kTextFrame, 1003},
      {"close of 1 byte", clientFrame(kClose, "x"), DecodeError::kBadClose, 1002},
      {"close code 1005", clientFrame(kClose, closePayload(1005)), DecodeError::kBadClose, 1002},
      {"close code 999", clientFrame(kClose, closePayload(999)), DecodeError::kBadClose, 1002},
      {"close code 5000", clientFrame(kClose, closePayload(5000)), DecodeError::kBadClose, 1002},
      {"close reason not UTF-8", clientFrame(kClose, closePayload(1000, "\xc3\x28")),
       DecodeError::kBadUtf8, 1007},
  };
  for (const auto& c : cases) {
    for (size_t step : {size_t{1}, size_t{1} << 20}) {
      FrameDecoder d(1 << 20);
      Decoded r = run(d, c.bytes, step);
      ASSERT_FALSE(r.events.empty()) << c.name << " step " << step;
      EXPECT_EQ(r.events.back().kind, DecodeEvent::kError) << c.name;
      EXPECT_EQ(r.events.back().error, c.error) << c.name << " got "
                                                << decodeErrorName(r.events.back().error);
      EXPECT_EQ(closeCodeFor(r.events.back().error), c.code) << c.name;
      EXPECT_TRUE(d.done());
      // Nothing more is consumed after the error.
      uint8_t out[8];
      size_t wrote = 0;
      DecodeEvent ev;
      EXPECT_EQ(d.decode(reinterpret_cast<const uint8_t*>("\x82\x80"), 2, out, &wrote, &ev), 0u);
    }
  }
}

TEST(FrameDecoder, MaxMessageBytesCountsAllFragments) {
  FrameDecoder d(10);
  Decoded ok = run(d, clientFrame(kBinary, std::string(10, 'a')));
  EXPECT_TRUE(ok.events.empty());
  // A new message starts from zero.
  FrameDecoder d2(10);
  Decoded r = run(d2, clientFrame(kBinary, std::string(6, 'a'), false) +
                          clientFrame(kContinuation, std::string(5, 'b')));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].error, DecodeError::kMessageTooLarge);
  EXPECT_EQ(closeCodeFor(r.events[0].error), 1009);
  EXPECT_EQ(r.data, "aaaaaa");  // refused on the header, before its payload
}

// A whole one-frame message over the limit (7- and 16-bit lengths) is
// refused on its header, whether the header arrives whole (decode()'s fast
// path) or a byte at a time; one at the limit passes.
TEST(FrameDecoder, MaxMessageBytesOnAWholeHeader) {
  for (size_t limit : {size_t{10}, size_t{200}}) {
    for (size_t step : {size_t{1}, size_t{1} << 20}) {
      FrameDecoder ok(limit);
      Decoded r = run(ok, clientFrame(kBinary, std::string(limit, 'a')), step);
      EXPECT_TRUE(r.events.empty()) << limit << " step " << step;
      EXPECT_EQ(r.data.size(), limit);
      EXPECT_EQ(ok.messages(), 1u);
      FrameDecoder d(limit);
      r = run(d, clientFrame(kBinary, std::string(limit + 1, 'a')), step);
      ASSERT_EQ(r.events.size(), 1u) << limit << " step " << step;
      EXPECT_EQ(r.events[0].error, DecodeError::kMessageTooLarge);
      EXPECT_EQ(r.data, "");
      EXPECT_EQ(d.dataFrames(), 0u);
    }
  }
}

TEST(FrameDecoder, ManySmallMessagesInOneRead) {
  FrameDecoder d(1 << 20);
  std::string s;
  std::string expect;
  for (int i = 0; i < 100; ++i) {
    std::string p(static_cast<size_t>(i % 9), static_cast<char>('a' + i % 26));
    s += clientFrame(kBinary, p, true, 0, true, {static_cast<uint8_t>(i), 1, 2, 3});
    expect += p;
  }
  EXPECT_EQ(run(d, s).data, expect);
  EXPECT_EQ(d.messages(), 100u);
}

TEST(FrameCodec, ServerHeaders) {
  uint8_t h[10];
  ASSERT_EQ(encodeHeader(h, kBinary, 72), 2u);
  EXPECT_EQ(h[0], 0x82);
  EXPECT_EQ(h[1], 72);
  ASSERT_EQ(encodeHeader(h, kBinary, 126), 4u);
  EXPECT_EQ(h[1], 126);
  EXPECT_EQ(h[2], 0);
  EXPECT_EQ(h[3], 126);
  ASSERT_EQ(encodeHeader(h, kBinary, 65543), 10u);
  EXPECT_EQ(h[1], 127);
  EXPECT_EQ(h[7], 0x01);
  EXPECT_EQ(h[8], 0x00);
  EXPECT_EQ(h[9], 0x07);
  ASSERT_EQ(closeFrame(h, 1002), 4u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(h), 4), std::string("\x88\x02\x03\xea", 4));
  ASSERT_EQ(closeFrame(h, kCloseNoStatus), 2u);
  EXPECT_EQ(h[1], 0);
}

TEST(FrameCodec, Utf8) {
  EXPECT_TRUE(validUtf8("plain"));
  EXPECT_TRUE(validUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(validUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(validUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(validUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(validUtf8("\xe2\x82"));          // truncated
}

}  // namespace
}  // namespace websocket
}  // namespace gw
