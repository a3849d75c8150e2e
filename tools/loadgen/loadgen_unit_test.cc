// Unit tests for the loadgen helpers: the log-linear latency histogram, the flag parsers and
// the WebSocket client pieces (handshake, masked messages out, server messages unwrapped).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <random>
#include <vector>

#include "tools/loadgen/histogram.h"
#include "tools/loadgen/tool_flags.h"
#include "tools/loadgen/ws_client.h"

namespace gw {
namespace tools {
namespace {

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(100), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
}

TEST(LatencyHistogram, BucketsAreContiguousAndMonotonic) {
  for (int i = 0; i + 1 < LatencyHistogram::kBuckets; ++i) {
    ASSERT_EQ(LatencyHistogram::highestEquivalent(i) + 1, LatencyHistogram::lowestEquivalent(i + 1))
        << "bucket " << i;
    ASSERT_EQ(LatencyHistogram::bucketOf(LatencyHistogram::lowestEquivalent(i)), i);
    ASSERT_EQ(LatencyHistogram::bucketOf(LatencyHistogram::highestEquivalent(i)), i);
  }
  EXPECT_EQ(LatencyHistogram::bucketOf(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogram, RelativeErrorBelowOnePercent) {
  std::mt19937_64 rng(42);
  LatencyHistogram h;
  std::vector<uint64_t> values;
  for (int i = 0; i < 100000; ++i) {
    // Log-uniform over 1us .. 1s.
    double e = std::uniform_real_distribution<double>(3, 9)(rng);
    uint64_t v = static_cast<uint64_t>(std::pow(10.0, e));
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    size_t rank = static_cast<size_t>(std::ceil(p / 100 * values.size()));
    double exact = static_cast<double>(values[rank - 1]);
    double got = static_cast<double>(h.percentile(p));
    EXPECT_GE(got, exact) << "p" << p;
    EXPECT_LE(got, exact * 1.008) << "p" << p;
  }
  EXPECT_EQ(h.max(), values.back());
}

TEST(LatencyHistogram, EmptyAndMerge) {
  LatencyHistogram a, b;
  EXPECT_EQ(a.percentile(99), 0u);
  a.record(1000);
  b.record(5000000);
  a.merge(b);
  EXPECT_EQ(a.count(), 2u);
  EXPECT_EQ(a.max(), 5000000u);
  EXPECT_EQ(a.min(), 1000u);
  EXPECT_LE(a.percentile(50), 1007u);
  EXPECT_GE(a.percentile(50), 1000u);
}

TEST(ToolFlags, Durations) {
  EXPECT_EQ(parseDurationNs("0"), 0);
  EXPECT_EQ(parseDurationNs("100ms"), 100'000'000);
  EXPECT_EQ(parseDurationNs("1.5s"), 1'500'000'000);
  EXPECT_EQ(parseDurationNs("250us"), 250'000);
  EXPECT_EQ(parseDurationNs("2m"), 120'000'000'000);
  EXPECT_EQ(parseDurationNs("1h"), 3'600'000'000'000);
  EXPECT_EQ(parseDurationNs("7ns"), 7);
  EXPECT_FALSE(parseDurationNs(""));
  EXPECT_FALSE(parseDurationNs("10"));
  EXPECT_FALSE(parseDurationNs("ms"));
  EXPECT_FALSE(parseDurationNs("-1s"));
  EXPECT_FALSE(parseDurationNs("1..2s"));
  EXPECT_FALSE(parseDurationNs("5d"));
  EXPECT_FALSE(parseDurationNs("1000h"));
}

TEST(ToolFlags, UintsAndRates) {
  EXPECT_EQ(parseUint("0", 10), 0u);
  EXPECT_EQ(parseUint("65535", 65535), 65535u);
  EXPECT_FALSE(parseUint("65536", 65535));
  EXPECT_FALSE(parseUint("5", 0));
  EXPECT_FALSE(parseUint("", 10));
  EXPECT_FALSE(parseUint("1x", 10));
  EXPECT_FALSE(parseUint("99999999999999999999999", UINT64_MAX));
  EXPECT_EQ(parseUint("18446744073709551615", UINT64_MAX), UINT64_MAX);
  EXPECT_EQ(parseRate("100/s"), 100.0);
  EXPECT_EQ(parseRate("2.5"), 2.5);
  EXPECT_FALSE(parseRate("fast"));
  EXPECT_FALSE(parseRate("-3"));
}

// ---- WebSocket client (--ws) ----------------------------------------------------

TEST(WsClient, AcceptOfTheRfcExampleKey) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(wsAcceptFor("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  std::string key = wsKeyFrom(0x0123456789abcdefull, 42);
  EXPECT_EQ(key.size(), 24u);  // 16 bytes in base64
  EXPECT_EQ(key.substr(22), "==");
  EXPECT_NE(key, wsKeyFrom(0x0123456789abcdefull, 43));
}

TEST(WsClient, UpgradeResponseChecks) {
  const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
  std::string req = wsUpgradeRequest("127.0.0.1:8080", "/game", key);
  EXPECT_EQ(req.rfind("GET /game HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(req.find("Sec-WebSocket-Key: " + key + "\r\n"), std::string::npos);
  EXPECT_NE(req.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos);
  EXPECT_EQ(req.substr(req.size() - 4), "\r\n\r\n");
  const std::string ok =
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nConnection: keep-alive, Upgrade"
      "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  EXPECT_EQ(wsCheckUpgradeResponse(ok, key), "");
  EXPECT_NE(wsCheckUpgradeResponse(ok, "AAAAAAAAAAAAAAAAAAAAAA=="), "");  // accept of another key
  EXPECT_EQ(wsCheckUpgradeResponse("HTTP/1.1 426 Upgrade Required\r\n\r\n", key),
            "status 'HTTP/1.1 426 Upgrade Required'");
  std::string no_upgrade = ok;
  no_upgrade.replace(no_upgrade.find("WebSocket"), 9, "h2c");
  EXPECT_EQ(wsCheckUpgradeResponse(no_upgrade, key), "no 'Upgrade: websocket'");
  std::string no_accept = ok.substr(0, ok.find("Sec-WebSocket-Accept")) + "\r\n";
  EXPECT_EQ(wsCheckUpgradeResponse(no_accept, key), "no Sec-WebSocket-Accept");
}

// Decodes one masked client frame as a server would (RFC 6455 5.2), for the tests.
std::string unmaskClientFrame(const std::vector<uint8_t>& f, bool* fin_binary) {
  *fin_binary = f[0] == 0x82;
  EXPECT_TRUE(f[1] & 0x80) << "client frames are masked";
  uint64_t n = f[1] & 0x7f;
  size_t i = 2;
  if (n == 126) {
    n = (uint64_t{f[2]} << 8) | f[3];
    i = 4;
  } else if (n == 127) {
    n = 0;
    for (int k = 0; k < 8; ++k) n = (n << 8) | f[2 + k];
    i = 10;
  }
  const uint8_t* key = &f[i];
  i += 4;
  EXPECT_EQ(f.size(), i + n);
  std::string out;
  for (size_t k = 0; k < n; ++k) out += static_cast<char>(f[i + k] ^ key[k & 3]);
  return out;
}

TEST(WsClient, MaskedBinaryMessagesOfEveryLengthForm) {
  FastRng rng(7);
  for (size_t len : {0u, 1u, 7u, 72u, 125u, 126u, 1000u, 65535u, 65536u, 70000u}) {
    std::string payload(len, '\0');
    for (size_t i = 0; i < len; ++i) payload[i] = static_cast<char>(i * 31 + 5);
    const uint32_t key = static_cast<uint32_t>(rng.next());
    std::vector<uint8_t> f(wsClientHeaderSize(len) + len);
    size_t h = wsWriteHeader(f.data(), len, key);
    ASSERT_EQ(h, wsClientHeaderSize(len));
    std::memcpy(f.data() + h, payload.data(), len);
    wsMask(f.data() + h, len, key);
    if (len >= 8) EXPECT_NE(std::memcmp(f.data() + h, payload.data(), 8), 0) << len;
    bool fin_binary = false;
    EXPECT_EQ(unmaskClientFrame(f, &fin_binary), payload) << len;
    EXPECT_TRUE(fin_binary);
  }
  // The RFC's masked example ("Hello", key 37 fa 21 3d), as a binary frame.
  std::vector<uint8_t> f(11);
  const uint8_t key_bytes[4] = {0x37, 0xfa, 0x21, 0x3d};
  uint32_t key;
  std::memcpy(&key, key_bytes, 4);
  size_t h = wsWriteHeader(f.data(), 5, key);
  std::memcpy(f.data() + h, "Hello", 5);
  wsMask(f.data() + h, 5, key);
  EXPECT_EQ(f, (std::vector<uint8_t>{0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51,
                                     0x58}));
  // Fresh keys per message.
  FastRng a(1);
  uint64_t x = a.next(), y = a.next();
  EXPECT_NE(x, y);
}

// A server frame: FIN + opcode, unmasked, shortest length form.
std::string serverFrame(uint8_t first, std::string_view payload) {
  std::string f(1, static_cast<char>(first));
  if (payload.size() <= 125) {
    f += static_cast<char>(payload.size());
  } else if (payload.size() <= 0xffff) {
    f += static_cast<char>(126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xff);
  } else {
    f += static_cast<char>(127);
    for (int k = 7; k >= 0; --k) f += static_cast<char>((uint64_t{payload.size()} >> (8 * k)) & 0xff);
  }
  return f + std::string(payload);
}

WsUnwrap unwrap(std::string* bytes) {
  return unwrapServerMessages(reinterpret_cast<uint8_t*>(bytes->data()), bytes->size());
}

TEST(WsClient, UnwrapsServerMessagesInPlace) {
  std::string big(300, 'b');
  std::string huge(70000, 'h');
  std::string in = serverFrame(0x82, "first") + serverFrame(0x89, "ping") +
                   serverFrame(0x82, big) + serverFrame(0x8A, "") + serverFrame(0x82, huge);
  std::string partial = serverFrame(0x82, "next message");
  std::string buf = in + partial.substr(0, 5);
  WsUnwrap u = unwrap(&buf);
  EXPECT_EQ(u.status, WsUnwrap::Status::kOk);
  EXPECT_EQ(u.messages, 3u);
  EXPECT_EQ(u.pings, 1u);
  EXPECT_EQ(u.consumed, in.size());
  EXPECT_EQ(buf.substr(0, u.stream_len), "first" + big + huge);
  EXPECT_EQ(buf.substr(u.consumed), partial.substr(0, 5));  // the incomplete tail is untouched
  // Every split of a 126-length header waits for more.
  std::string two = serverFrame(0x82, big);
  for (size_t cut = 0; cut < two.size(); ++cut) {
    std::string piece = two.substr(0, cut);
    WsUnwrap v = unwrap(&piece);
    EXPECT_EQ(v.status, WsUnwrap::Status::kOk);
    EXPECT_EQ(v.consumed, 0u) << cut;
    EXPECT_EQ(v.stream_len, 0u);
  }
}

TEST(WsClient, CloseAndBadServerFrames) {
  std::string close = serverFrame(0x82, "a") + serverFrame(0x88, std::string("\x03\xe9") + "bye") +
                      serverFrame(0x82, "after");
  WsUnwrap c = unwrap(&close);
  EXPECT_EQ(c.status, WsUnwrap::Status::kClose);
  EXPECT_EQ(c.close_code, 1001);
  EXPECT_EQ(c.stream_len, 1u);
  std::string bare_close = serverFrame(0x88, "");
  EXPECT_EQ(unwrap(&bare_close).close_code, 1005);
  for (std::string bad : {serverFrame(0x81, "text"), serverFrame(0x02, "no fin"),
                          serverFrame(0x80, "continuation"), serverFrame(0xC2, "rsv1"),
                          serverFrame(0x89, std::string(126, 'p')), std::string("\x82\x85ABCDEhello")}) {
    WsUnwrap b = unwrap(&bad);
    EXPECT_EQ(b.status, WsUnwrap::Status::kError) << static_cast<int>(bad[0]);
    EXPECT_NE(std::string(b.error), "");
  }
}

}  // namespace
}  // namespace tools
}  // namespace gw
