// Unit tests of the PROXY protocol v1/v2 header parser: valid headers of
// every kind, headers arriving a byte at a time, and malformed headers
// refused with a reason.
#include "filters/ip_limiter/proxy_protocol.h"

#include <gtest/gtest.h>

#include <string>

namespace gw {
namespace ip_limiter {
namespace {

using Status = ProxyHeader::Status;

// Parses `bytes` as if they were all buffered.
ProxyHeader parse(const std::string& bytes) {
  size_t n = bytes.size() < kProxyPeekBytes ? bytes.size() : kProxyPeekBytes;
  return parseProxyHeader(reinterpret_cast<const uint8_t*>(bytes.data()), n, bytes.size());
}

const std::string kV2Sig("\r\n\r\n\0\r\nQUIT\n", 12);

// A v2 header: command (0 LOCAL, 1 PROXY), family/transport byte, address
// block + TLVs as `body`.
std::string v2(uint8_t command, uint8_t fam, const std::string& body) {
  std::string h = kV2Sig;
  h.push_back(static_cast<char>(0x20 | command));
  h.push_back(static_cast<char>(fam));
  h.push_back(static_cast<char>(body.size() >> 8));
  h.push_back(static_cast<char>(body.size() & 0xff));
  return h + body;
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

// ---- v1 --------------------------------------------------------------------

TEST(ProxyV1Test, Tcp4) {
  std::string h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 8080\r\n";
  ProxyHeader r = parse(h + "payload");
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  EXPECT_EQ(r.version, 1);
  EXPECT_EQ(r.length, h.size());
  ASSERT_TRUE(r.has_source);
  EXPECT_EQ(r.source.toString(), "192.0.2.7:56324");
}

TEST(ProxyV1Test, Tcp6) {
  std::string h = "PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n";
  ProxyHeader r = parse(h);
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  EXPECT_EQ(r.length, h.size());
  EXPECT_EQ(r.source.toString(), "[2001:db8::7]:1");
}

TEST(ProxyV1Test, UnknownCarriesNoAddress) {
  for (std::string h : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
    ProxyHeader r = parse(h + "x");
    ASSERT_EQ(r.status, Status::kDone) << h << r.error;
    EXPECT_FALSE(r.has_source);
    EXPECT_EQ(r.length, h.size());
  }
}

TEST(ProxyV1Test, LongestValidHeaderIs107Bytes) {
  std::string h =
      "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "65535 65535\r\n";
  ASSERT_EQ(h.size(), 104u);
  ProxyHeader r = parse(h);
  EXPECT_EQ(r.status, Status::kDone) << r.error;
  // UNKNOWN with filler up to exactly 107 bytes is fine; 108 is not.
  std::string fill107 = "PROXY UNKNOWN " + std::string(107 - 16, 'a') + "\r\n";
  ASSERT_EQ(fill107.size(), 107u);
  EXPECT_EQ(parse(fill107).status, Status::kDone);
  std::string fill108 = "PROXY UNKNOWN " + std::string(108 - 16, 'a') + "\r\n";
  ProxyHeader bad = parse(fill108);
  EXPECT_EQ(bad.status, Status::kError);
  EXPECT_NE(bad.error.find("107"), std::string::npos) << bad.error;
}

TEST(ProxyV1Test, NeedsMoreUntilCrlfThenParses) {
  std::string h = "PROXY TCP4 10.1.2.3 10.0.0.1 4000 80\r\n";
  for (size_t n = 1; n < h.size(); ++n) {
    ProxyHeader r = parse(h.substr(0, n));
    EXPECT_EQ(r.status, Status::kNeedMore) << "prefix " << n << ": " << r.error;
  }
  EXPECT_EQ(parse(h).status, Status::kDone);
}

TEST(ProxyV1Test, MalformedHeadersAreRefused) {
  struct Case {
    std::string text;
    std::string expect;  // a fragment of the error
  } cases[] = {
      {"PROXX TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "must start with \"PROXY \""},
      {"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "expected \"TCP4 SRC DST SRCPORT DSTPORT\""},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "expected"},
      {"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "expected"},
      {"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n", "bad TCP4 source address"},
      {"PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n", "bad TCP4 source address"},
      {"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "bad TCP6 source address"},
      {"PROXY TCP4 1.2.3.4 5.6.7.x 1 2\r\n", "bad TCP4 destination address"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "bad source port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "bad source port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2a\r\n", "bad destination port"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "LF without CR"},
      {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR not followed by LF"},
      {std::string("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 34), "unexpected byte 0x00"},
      {"PROXY " + std::string(200, 'A'), "no CRLF within the first 107 bytes"},
      {"GET / HTTP/1.1\r\n", "got first byte 0x47"},
  };
  for (const auto& c : cases) {
    ProxyHeader r = parse(c.text);
    EXPECT_EQ(r.status, Status::kError) << c.text;
    EXPECT_NE(r.error.find(c.expect), std::string::npos) << c.text << " -> " << r.error;
  }
}

TEST(ProxyV1Test, RefusesEarlyOnABadPrefix) {
  EXPECT_EQ(parse("PRO").status, Status::kNeedMore);
  EXPECT_EQ(parse("PRX").status, Status::kError);  // no need to wait for 107 bytes
}

// ---- v2 --------------------------------------------------------------------

TEST(ProxyV2Test, ProxyTcp4) {
  std::string body = bytes({192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04, 0x1f, 0x90});
  std::string h = v2(1, 0x11, body);
  ProxyHeader r = parse(h + "after");
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  EXPECT_EQ(r.version, 2);
  EXPECT_EQ(r.length, 28u);
  ASSERT_TRUE(r.has_source);
  EXPECT_EQ(r.source.toString(), "192.0.2.7:56324");
}

TEST(ProxyV2Test, ProxyTcp6WithTlvsSkipped) {
  std::string src = bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07});
  std::string dst = bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01});
  std::string tlvs = bytes({0x04, 0x00, 0x05}) + "hello" + std::string(300, 'T');
  std::string h = v2(1, 0x21, src + dst + bytes({0x00, 0x50, 0x1f, 0x90}) + tlvs);
  ProxyHeader r = parse(h);
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  EXPECT_EQ(r.length, h.size());
  EXPECT_EQ(r.source.toString(), "[2001:db8::7]:80");
  // TLVs beyond what was peeked still need to be buffered.
  ProxyHeader partial =
      parseProxyHeader(reinterpret_cast<const uint8_t*>(h.data()), kProxyPeekBytes, h.size() - 1);
  EXPECT_EQ(partial.status, Status::kNeedMore);
}

TEST(ProxyV2Test, LocalAndUnspecCarryNoAddress) {
  ProxyHeader local = parse(v2(0, 0x00, ""));
  ASSERT_EQ(local.status, Status::kDone) << local.error;
  EXPECT_FALSE(local.has_source);
  EXPECT_EQ(local.length, 16u);
  // LOCAL ignores whatever address block is there.
  ProxyHeader local4 = parse(v2(0, 0x11, std::string(12, '\0')));
  ASSERT_EQ(local4.status, Status::kDone);
  EXPECT_FALSE(local4.has_source);
  ProxyHeader unspec = parse(v2(1, 0x00, "xyz"));
  ASSERT_EQ(unspec.status, Status::kDone);
  EXPECT_FALSE(unspec.has_source);
  EXPECT_EQ(unspec.length, 19u);
}

TEST(ProxyV2Test, ByteAtATime) {
  std::string h = v2(1, 0x11, bytes({10, 0, 0, 9, 10, 0, 0, 1, 0x12, 0x34, 0, 80}));
  for (size_t n = 1; n < h.size(); ++n)
    EXPECT_EQ(parse(h.substr(0, n)).status, Status::kNeedMore) << n;
  ProxyHeader r = parse(h);
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_EQ(r.source.toString(), "10.0.0.9:4660");
}

TEST(ProxyV2Test, MalformedHeadersAreRefused) {
  std::string a4 = std::string(12, '\x01');
  struct Case {
    std::string bytes;
    std::string expect;
  } cases[] = {
      {"\r\n\r\n\x01", "bad signature"},
      {kV2Sig.substr(0, 11) + "X" + std::string(4, '\0'), "bad signature"},
      {kV2Sig + bytes({0x11, 0x11, 0, 12}) + a4, "unsupported version 1"},
      {kV2Sig + bytes({0x32, 0x11, 0, 12}) + a4, "unsupported version 3"},
      {kV2Sig + bytes({0x22, 0x11, 0, 12}) + a4, "unknown command 2"},
      {v2(1, 0x11, std::string(11, '\x01')), "too short for IPv4 (12)"},
      {v2(1, 0x21, std::string(35, '\x01')), "too short for IPv6 (36)"},
      {v2(1, 0x12, a4), "only TCP (STREAM)"},
      {v2(1, 0x31, std::string(216, '\0')), "AF_UNIX"},
      {v2(1, 0x41, a4), "unknown address family 4"},
      {kV2Sig + bytes({0x21, 0x11, 0xff, 0xff}), "exceeds the 4096-byte limit"},
  };
  for (const auto& c : cases) {
    ProxyHeader r = parse(c.bytes);
    EXPECT_EQ(r.status, Status::kError) << r.error;
    EXPECT_NE(r.error.find(c.expect), std::string::npos) << r.error << " (want " << c.expect << ")";
  }
}

TEST(ProxyV2Test, OversizedLengthRefusedBeforeTheBytesArrive) {
  // Only the 16-byte fixed part has arrived: the length alone condemns it,
  // so a peer cannot make us buffer 64 KiB.
  ProxyHeader r = parse(kV2Sig + bytes({0x21, 0x11, 0x20, 0x00}));
  EXPECT_EQ(r.status, Status::kError);
}

TEST(ProxyParserTest, EmptyInputNeedsMore) {
  EXPECT_EQ(parseProxyHeader(nullptr, 0, 0).status, Status::kNeedMore);
}

}  // namespace
}  // namespace ip_limiter
}  // namespace gw
