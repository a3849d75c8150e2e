// test/core/session_id_test.cc — SessionIdGenerator (core/sdk/session_info.h):
// ids are unique, never 0, and not guessable from a neighbour's id.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <cstdlib>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

#include "core/sdk/session_info.h"

namespace gw {

uint64_t sipHash24U64(const SessionIdKey& key, uint64_t m);  // session_info.cc

namespace {

// |b - a| as an unsigned distance on the 64-bit ring's shorter side.
uint64_t distance(uint64_t a, uint64_t b) {
  uint64_t d = b - a;
  return d < (uint64_t{1} << 63) ? d : a - b;
}

TEST(SessionIdTest, ConsecutiveIdsAreNotCloseToEachOther) {
  // A client that knows its own id must not find a neighbour's by adding a
  // small delta: with a keyed permutation, |id2 - id1| < 2^40 happens with
  // probability ~2^-23 per pair.
  SessionIdGenerator gen("gw-0");
  uint64_t prev = gen.next();
  int close = 0;
  for (int i = 0; i < 10000; ++i) {
    uint64_t id = gen.next();
    if (distance(prev, id) < (uint64_t{1} << 40)) ++close;
    prev = id;
  }
  EXPECT_LE(close, 2) << close << " of 10000 consecutive pairs differ by less than 2^40";
}

TEST(SessionIdTest, EveryBitLooksUniform) {
  // Each bit of 20000 ids is set 50% of the time, within 5 standard
  // deviations (sqrt(20000)/2 ~ 71): no constant node field, no clock field.
  SessionIdGenerator gen("gw-0");
  const int n = 20000;
  std::vector<int> ones(64, 0);
  for (int i = 0; i < n; ++i) {
    uint64_t id = gen.next();
    for (int b = 0; b < 64; ++b) ones[b] += (id >> b) & 1;
  }
  for (int b = 0; b < 64; ++b)
    EXPECT_NEAR(ones[b], n / 2, 5 * 71) << "bit " << b << " set in " << ones[b] << " of " << n;
}

TEST(SessionIdTest, SipHashMatchesTheReferenceVector) {
  // Key 00..0f, 8-byte message 00..07 (the reference test vectors' key and
  // message of length 8). Expected value computed with a general-length
  // SipHash-2-4 written from the paper, which reproduces the paper's own
  // appendix vector (message 00..0e -> 0xa129ca6149be45e5).
  SessionIdKey key{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
  EXPECT_EQ(sipHash24U64(key, 0x0706050403020100ull), 0x93f5f5799a932462ull);
}

TEST(SessionIdTest, DistinctNodesNeverCollideWithinAMillisecond) {
  // A fleet sharing one key: every node's 4096 ids of one millisecond (and
  // the ones borrowed past it) are distinct across 64 nodes.
  SessionIdKey key = SessionIdKey::random();
  std::unordered_set<uint64_t> seen;
  const int nodes = 64, per_node = 8192;
  std::vector<std::unique_ptr<SessionIdGenerator>> gens;
  for (int n = 0; n < nodes; ++n)
    gens.push_back(std::make_unique<SessionIdGenerator>(static_cast<uint16_t>(n * 1021), key));
  for (int i = 0; i < per_node; ++i)
    for (auto& g : gens) {
      uint64_t id = g->next();
      ASSERT_NE(id, 0u);
      ASSERT_TRUE(seen.insert(id).second) << "duplicate id " << id;
    }
  EXPECT_EQ(seen.size(), size_t{nodes} * per_node);
}

TEST(SessionIdTest, TheSameInputsUnderTheSameKeyGiveTheSameFieldsBack) {
  // decode() inverts the permutation: node id, clock and sequence come back.
  SessionIdKey key{0x0123456789abcdefull, 0xfedcba9876543210ull};
  SessionIdGenerator gen(4242, key);
  uint64_t before = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  SessionIdGenerator::Fields prev{};
  for (int i = 0; i < 5000; ++i) {
    uint64_t id = gen.next();
    ASSERT_NE(id, 0u);
    SessionIdGenerator::Fields f = gen.decode(id);
    EXPECT_EQ(f.node, 4242);
    // The stamped clock is the Unix time modulo 2^36 (or a borrowed ms).
    uint64_t lo = before & ((uint64_t{1} << 36) - 1);
    EXPECT_GE(f.ms, lo);
    EXPECT_LT(f.ms, lo + 60000);
    if (i > 0) EXPECT_TRUE(f.ms > prev.ms || (f.ms == prev.ms && f.seq == prev.seq + 1));
    prev = f;
  }
  // Another key decodes the same id to something else.
  SessionIdGenerator other(4242, SessionIdKey{1, 2});
  uint64_t id = gen.next();
  SessionIdGenerator::Fields wrong = other.decode(id);
  EXPECT_FALSE(wrong.node == 4242 && wrong.ms == gen.decode(id).ms);
}

TEST(SessionIdTest, ResetChangesNodeIdAndKeyForLaterIds) {
  SessionIdGenerator gen(1, SessionIdKey{1, 1});
  uint64_t a = gen.next();
  gen.reset(7, SessionIdKey{2, 2});
  EXPECT_EQ(gen.nodeId(), 7);
  uint64_t b = gen.next();
  EXPECT_NE(a, b);
  EXPECT_EQ(gen.decode(b).node, 7);
}

TEST(SessionIdTest, KeyFilesAreThirtyTwoHexDigits) {
  auto k = SessionIdKey::parseHex("  00112233445566778899aabbccddeeff\n");
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->k0, 0x0011223344556677ull);
  EXPECT_EQ(k->k1, 0x8899aabbccddeeffull);
  EXPECT_FALSE(SessionIdKey::parseHex("0011").has_value());
  EXPECT_FALSE(SessionIdKey::parseHex("00112233445566778899aabbccddeefg").has_value());
  EXPECT_FALSE(SessionIdKey::parseHex("").has_value());
  EXPECT_FALSE(SessionIdKey::random() == SessionIdKey::random());
}

TEST(SessionIdTest, NodeIdsFromNamesUseSixteenBits) {
  // 100 pod names: with 16 bits of hash, the spread over the high byte shows
  // more than the old 12 bits are in use.
  std::unordered_set<uint16_t> ids;
  bool high = false;
  for (int i = 0; i < 100; ++i) {
    uint16_t id = SessionIdGenerator::nodeIdFromName("gateway-" + std::to_string(i));
    ids.insert(id);
    high |= id >= 4096;
  }
  EXPECT_TRUE(high);
  EXPECT_GE(ids.size(), 95u);
}

}  // namespace
}  // namespace gw
