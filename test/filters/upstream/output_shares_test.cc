// Unit tests of OutputShares (filters/upstream/output_shares.h): the FIFO
// attribution of a backend connection's buffered output to sessions and
// client IPs as the socket drains it, and the refusal rule (limit, shares,
// floor, per-IP share, hard cap). The "output buffer" is a number the test
// shrinks by hand (bytes the socket took).
#include "filters/upstream/output_shares.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace gw {
namespace upstream {
namespace {

PeerKey ip(const char* text) { return PeerKey::of(*Address::parse(std::string(text) + ":1")); }

// The connection's side: what add() was told is appended, and the socket
// taking `n` bytes from the front.
struct FakeOutput {
  OutputShares shares;
  size_t buffered = 0;
  void queue(uint64_t session, const PeerKey& from, size_t bytes) {
    shares.add(session, from, bytes);
    buffered += bytes;
  }
  void write(size_t n) {
    buffered -= n;
    shares.sync(buffered);
  }
};

ShareLimits limits(size_t limit, size_t floor, size_t hard_cap, bool per_ip = true) {
  ShareLimits l;
  l.limit = limit;
  l.floor = floor;
  l.hard_cap = hard_cap;
  l.per_ip = per_ip;
  return l;
}

TEST(PeerKey, Ipv4IsMappedAndDistinct) {
  PeerKey a = ip("127.0.0.1");
  EXPECT_EQ(a.hi, 0u);
  EXPECT_EQ(a.lo, 0x0000ffff7f000001ull);
  EXPECT_NE(a, ip("127.0.0.2"));
  EXPECT_EQ(a, PeerKey::of(*Address::parse("127.0.0.1:9999")));  // port ignored
  PeerKey v6 = PeerKey::of(*Address::parse("[2001:db8::1]:1"));
  EXPECT_EQ(v6.hi, 0x20010db800000000ull);
  EXPECT_EQ(v6.lo, 1u);
  EXPECT_TRUE(PeerKey{}.none());
  EXPECT_FALSE(a.none());
}

TEST(OutputShares, DrainsOldestBytesFirstAcrossSessions) {
  FakeOutput o;
  o.queue(1, ip("10.0.0.1"), 100);
  o.queue(2, ip("10.0.0.2"), 50);
  o.queue(1, ip("10.0.0.1"), 30);
  EXPECT_EQ(o.shares.segments(), 3u);
  EXPECT_EQ(o.shares.sessionBytes(1), 130u);
  EXPECT_EQ(o.shares.total(), 180u);

  o.write(120);  // session 1's first 100, then 20 of session 2's 50
  EXPECT_EQ(o.shares.sessionBytes(1), 30u);
  EXPECT_EQ(o.shares.sessionBytes(2), 30u);
  EXPECT_EQ(o.shares.ipBytes(ip("10.0.0.1")), 30u);
  EXPECT_EQ(o.shares.ipBytes(ip("10.0.0.2")), 30u);
  EXPECT_EQ(o.shares.total(), 60u);

  o.write(30);  // the rest of session 2: its entries go
  EXPECT_EQ(o.shares.sessionBytes(2), 0u);
  EXPECT_EQ(o.shares.activeSessions(), 1u);
  EXPECT_EQ(o.shares.activeIps(), 1u);
  o.write(30);
  EXPECT_EQ(o.shares.total(), 0u);
  EXPECT_EQ(o.shares.activeSessions(), 0u);
  EXPECT_EQ(o.shares.activeIps(), 0u);
  EXPECT_EQ(o.shares.segments(), 0u);
}

TEST(OutputShares, ConsecutiveBytesOfOneSessionShareASegment) {
  FakeOutput o;
  for (int i = 0; i < 1000; ++i) o.queue(7, ip("10.0.0.1"), 29);
  EXPECT_EQ(o.shares.segments(), 1u);
  o.queue(8, ip("10.0.0.1"), 29);
  o.queue(7, ip("10.0.0.1"), 29);
  EXPECT_EQ(o.shares.segments(), 3u);
  EXPECT_EQ(o.shares.ipBytes(ip("10.0.0.1")), 1002u * 29);
}

TEST(OutputShares, ManySessionsInterleavedDrainExactly) {
  FakeOutput o;
  const int kSessions = 500;
  for (int round = 0; round < 4; ++round)
    for (int s = 1; s <= kSessions; ++s) o.queue(static_cast<uint64_t>(s), ip("10.0.0.9"), 10 + s % 7);
  size_t total = o.buffered;
  EXPECT_EQ(o.shares.total(), total);
  EXPECT_EQ(o.shares.activeSessions(), static_cast<size_t>(kSessions));
  // Drain in odd-sized steps; the sums always agree with the buffer.
  while (o.buffered > 0) {
    o.write(std::min<size_t>(o.buffered, 997));
    size_t sum = 0;
    for (int s = 1; s <= kSessions; ++s) sum += o.shares.sessionBytes(static_cast<uint64_t>(s));
    ASSERT_EQ(sum, o.buffered);
    ASSERT_EQ(o.shares.ipBytes(ip("10.0.0.9")), o.buffered);
  }
  EXPECT_EQ(o.shares.activeSessions(), 0u);
  EXPECT_EQ(o.shares.segments(), 0u);
}

TEST(OutputShares, ClosedSessionsKeepTheirBytesUntilWritten) {
  // A session that closed with bytes queued (its close header included)
  // still holds them; they count until the socket takes them.
  FakeOutput o;
  o.queue(1, ip("10.0.0.1"), 1000);
  o.queue(1, PeerKey{}, 29);  // session close: no address given, the session's own counts
  EXPECT_EQ(o.shares.sessionBytes(1), 1029u);
  EXPECT_EQ(o.shares.ipBytes(ip("10.0.0.1")), 1029u);
  o.write(1029);
  EXPECT_EQ(o.shares.activeSessions(), 0u);
  EXPECT_EQ(o.shares.activeIps(), 0u);
}

TEST(OutputShares, ASessionResumedFromAnotherAddressMovesItsBytes) {
  FakeOutput o;
  o.queue(1, ip("10.0.0.1"), 100);
  o.queue(1, ip("10.0.0.2"), 10);
  EXPECT_EQ(o.shares.ipBytes(ip("10.0.0.1")), 0u);
  EXPECT_EQ(o.shares.ipBytes(ip("10.0.0.2")), 110u);
  EXPECT_EQ(o.shares.activeIps(), 1u);
  o.write(110);
  EXPECT_EQ(o.shares.activeIps(), 0u);
}

TEST(OutputShares, BytesWrittenWithoutAccountingOnlyDelayTheFigures) {
  // The output holds more than was accounted (a write not told): nothing
  // drains until the buffer is smaller than the accounted total.
  OutputShares s;
  s.add(1, ip("10.0.0.1"), 100);
  s.sync(150);
  EXPECT_EQ(s.sessionBytes(1), 100u);
  s.sync(60);
  EXPECT_EQ(s.sessionBytes(1), 60u);
}

TEST(OutputShares, NothingIsRefusedAtOrBelowTheLimit) {
  FakeOutput o;
  ShareLimits l = limits(1000, 100, 2000);
  o.queue(1, ip("10.0.0.1"), 1000);  // one session holds everything: still no contention
  EXPECT_EQ(o.shares.check(1, ip("10.0.0.1"), l), ShareVerdict::kAdmit);
  o.queue(1, ip("10.0.0.1"), 1);
  // Alone above the limit: its share is the whole limit, and it is over it
  // (the old rule for a single session).
  EXPECT_EQ(o.shares.check(1, ip("10.0.0.1"), l), ShareVerdict::kSessionShare);
}

TEST(OutputShares, OnlyTheSessionOverItsShareIsRefused) {
  FakeOutput o;
  ShareLimits l = limits(1000, 100, 3000, /*per_ip=*/false);
  o.queue(1, ip("10.0.0.1"), 1200);  // the flooder
  o.queue(2, ip("10.0.0.2"), 30);    // a well-behaved session
  // Contended (1230 > 1000): share = max(100, 1000 / 2) = 500.
  EXPECT_EQ(o.shares.check(1, ip("10.0.0.1"), l), ShareVerdict::kSessionShare);
  EXPECT_EQ(o.shares.check(2, ip("10.0.0.2"), l), ShareVerdict::kAdmit);
  EXPECT_EQ(o.shares.check(3, ip("10.0.0.3"), l), ShareVerdict::kAdmit);  // nothing queued
  // The flooder drains to its share: admitted again, first because the
  // connection is no longer contended (530 bytes)...
  o.write(700);
  EXPECT_EQ(o.shares.sessionBytes(1), 500u);
  EXPECT_EQ(o.shares.check(1, ip("10.0.0.1"), l), ShareVerdict::kAdmit);
  // ...then, contended again by session 2 (1130 bytes), because it is at
  // its share, while session 2 is now the one over it.
  o.queue(2, ip("10.0.0.2"), 600);
  EXPECT_EQ(o.shares.check(1, ip("10.0.0.1"), l), ShareVerdict::kAdmit);
  EXPECT_EQ(o.shares.check(2, ip("10.0.0.2"), l), ShareVerdict::kSessionShare);
}

TEST(OutputShares, TheFloorKeepsSharesUsableWithManySessions) {
  FakeOutput o;
  ShareLimits l = limits(1000, 200, 100000, /*per_ip=*/false);
  for (uint64_t s = 1; s <= 50; ++s) o.queue(s, ip("10.0.0.1"), 150);  // 7500 queued, 50 sessions
  // limit / 50 = 20 bytes, but the floor is 200: every session is under it.
  for (uint64_t s = 1; s <= 50; ++s) EXPECT_EQ(o.shares.check(s, PeerKey{}, l), ShareVerdict::kAdmit);
  o.queue(1, ip("10.0.0.1"), 51);
  EXPECT_EQ(o.shares.check(1, PeerKey{}, l), ShareVerdict::kSessionShare);
}

TEST(OutputShares, AnIpOverItsShareIsRefusedForEachOfItsSessions) {
  FakeOutput o;
  ShareLimits l = limits(1000, 100, 5000);
  // Ten sessions of one address, each small, together over the IP share.
  for (uint64_t s = 1; s <= 10; ++s) o.queue(s, ip("10.0.0.1"), 100);
  o.queue(99, ip("10.0.0.2"), 50);
  // Contended (1050); 11 sessions: share 100 (floor) — no session over it;
  // 2 IPs: IP share 500, and 10.0.0.1 holds 1000.
  EXPECT_EQ(o.shares.check(1, ip("10.0.0.1"), l), ShareVerdict::kIpShare);
  EXPECT_EQ(o.shares.check(11, ip("10.0.0.1"), l), ShareVerdict::kIpShare);  // a new session too
  EXPECT_EQ(o.shares.check(99, ip("10.0.0.2"), l), ShareVerdict::kAdmit);
  // per_ip off: the sessions are judged alone.
  EXPECT_EQ(o.shares.check(1, ip("10.0.0.1"), limits(1000, 100, 5000, false)),
            ShareVerdict::kAdmit);
  // A client without an IP (not an IP socket) has no IP share.
  EXPECT_EQ(o.shares.check(12, PeerKey{}, l), ShareVerdict::kAdmit);
}

TEST(OutputShares, AboveTheHardCapEveryoneIsRefused) {
  FakeOutput o;
  ShareLimits l = limits(1000, 600, 1500, false);
  o.queue(1, ip("10.0.0.1"), 550);
  o.queue(2, ip("10.0.0.2"), 550);
  o.queue(3, ip("10.0.0.3"), 550);  // 1650: each under its share (600), over the cap
  EXPECT_EQ(o.shares.check(4, ip("10.0.0.4"), l), ShareVerdict::kHardCap);
  EXPECT_EQ(o.shares.check(1, ip("10.0.0.1"), l), ShareVerdict::kHardCap);
  o.write(200);
  EXPECT_EQ(o.shares.check(4, ip("10.0.0.4"), l), ShareVerdict::kAdmit);
}

TEST(OutputShares, VerdictNamesAreTheMetricReasons) {
  EXPECT_STREQ(shareVerdictName(ShareVerdict::kSessionShare), "session_share");
  EXPECT_STREQ(shareVerdictName(ShareVerdict::kIpShare), "ip_share");
  EXPECT_STREQ(shareVerdictName(ShareVerdict::kHardCap), "hard_cap");
}

}  // namespace
}  // namespace upstream
}  // namespace gw
