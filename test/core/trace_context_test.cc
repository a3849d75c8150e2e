// test/core/trace_context_test.cc — the extended gate header (33 bytes,
// core/sdk/wire.h TracedServerHeader) against hand-written bytes, and the
// per-session W3C trace context (core/sdk/session_info.h TraceContext).
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/sdk/session_info.h"
#include "core/sdk/wire.h"

namespace gw {
namespace {

std::string hexOf(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(d[p[i] >> 4]);
    out.push_back(d[p[i] & 15]);
  }
  return out;
}

// The Go gateway's frame for msg_id 0x1234, session 0x0102030405060708,
// trace id 4bf92f3577b34da6a3ce929d0e0e4736, span id 00f067aa0ba902b7
// (W3C's example), payload "hello": length = 33 + 5 = 38.
const char* kGolden =
    "26000000" "34120000" "00000000" "0807060504030201"
    "01" "0807060504030201"
    "4bf92f3577b34da6a3ce929d0e0e4736" "00f067aa0ba902b7";

TEST(TracedServerHeader, EncodesTheGoGatewaysExtendedGateHeader) {
  const uint8_t trace[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                             0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
  const uint8_t span[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
  auto h = wire::TracedServerHeader::make(0x1234, 0x0102030405060708ull, 5, trace, span);
  uint8_t out[wire::kTracedServerFrameOverhead];
  static_assert(sizeof(out) == 53, "20-byte server header + 33-byte gate header");
  h.encode(out);
  EXPECT_EQ(hexOf(out, sizeof(out)), kGolden);
  EXPECT_EQ(h.payloadLength(), 5);
}

TEST(TracedServerHeader, DecodesWhatItEncodes) {
  uint8_t in[53];
  std::string g = kGolden;
  for (size_t i = 0; i < 53; ++i) in[i] = static_cast<uint8_t>(std::stoi(g.substr(2 * i, 2), nullptr, 16));
  auto h = wire::TracedServerHeader::decode(in);
  EXPECT_EQ(h.base.length, 38);
  EXPECT_EQ(h.base.type, 0x1234);
  EXPECT_EQ(h.base.server_id, 0u);
  EXPECT_EQ(h.base.object_id, 0x0102030405060708ll);
  EXPECT_EQ(h.base.opcode, 1);
  EXPECT_EQ(h.base.session_id, 0x0102030405060708ll);
  EXPECT_EQ(hexOf(h.trace_id, 16), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(hexOf(h.span_id, 8), "00f067aa0ba902b7");
  EXPECT_EQ(h.payloadLength(), 5);
  // A 9-byte-header reader (the plain ServerHeader) sees the trace bytes as
  // payload: 38 - 9 = 29 = 24 trace bytes + 5.
  EXPECT_EQ(wire::ServerHeader::decode(in).payloadLength(), 29);
  uint8_t again[53];
  h.encode(again);
  EXPECT_EQ(hexOf(again, 53), kGolden);
}

TEST(TraceContext, RandomNeverZeroAndHex) {
  std::set<std::string> traces;
  const std::string zero_trace(32, '0'), zero_span(16, '0');
  for (int i = 0; i < 1000; ++i) {
    TraceContext t = TraceContext::generate();
    std::string th = t.traceIdHex(), sh = t.spanIdHex();
    ASSERT_EQ(th.size(), 32u);
    ASSERT_EQ(sh.size(), 16u);
    EXPECT_EQ(th, hexOf(t.trace_id, 16));
    EXPECT_EQ(sh, hexOf(t.span_id, 8));
    EXPECT_NE(th, zero_trace);
    EXPECT_NE(sh, zero_span);
    traces.insert(th);
  }
  EXPECT_EQ(traces.size(), 1000u) << "trace ids repeat";
}

TEST(TraceContext, EverySessionInfoGetsItsOwn) {
  SessionInfo a, b;
  EXPECT_NE(a.trace.traceIdHex(), b.trace.traceIdHex());
  EXPECT_NE(a.trace.traceIdHex(), std::string(32, '0'));
}

}  // namespace
}  // namespace gw
