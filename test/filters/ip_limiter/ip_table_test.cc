// Unit tests of the ip_limiter's shared state: TokenBucket (with a fake
// clock), IpTable (limits, expiry, eviction, bound under a flood), IPv6
// prefix grouping, CIDRs, and concurrent admission from two threads.
#include "filters/ip_limiter/ip_table.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "core/sdk/address.h"
#include "filters/ip_limiter/cidr.h"
#include "filters/ip_limiter/limiter.h"

namespace gw {
namespace ip_limiter {
namespace {

constexpr int64_t kMs = 1000 * 1000;
constexpr int64_t kSec = 1000 * kMs;

IpKey v4(const char* text) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, text, &a), 1) << text;
  return IpKey::fromV4(ntohl(a.s_addr));
}

IpKey v6(const char* text) {
  in6_addr a{};
  EXPECT_EQ(inet_pton(AF_INET6, text, &a), 1) << text;
  return IpKey::fromV6(a.s6_addr);
}

// ---- TokenBucket ----------------------------------------------------------

TEST(TokenBucketTest, BurstThenRefillAtRate) {
  RateSpec r = RateSpec::make(5, 10);  // 5/s, burst 10
  EXPECT_EQ(r.interval_ns, 200 * kMs);
  EXPECT_EQ(r.burst(), 10);
  TokenBucket b;
  int64_t now = 1000 * kSec;
  EXPECT_EQ(b.tokens(r, now), 10);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(b.take(r, now)) << i;
  EXPECT_FALSE(b.take(r, now));
  EXPECT_EQ(b.tokens(r, now), 0);
  // 199 ms later: still nothing; at 200 ms: exactly one token.
  EXPECT_FALSE(b.take(r, now + 199 * kMs));
  EXPECT_TRUE(b.take(r, now + 200 * kMs));
  EXPECT_FALSE(b.take(r, now + 200 * kMs));
  // One second later: 5 more.
  now += 1200 * kMs;
  EXPECT_EQ(b.tokens(r, now), 5);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.take(r, now)) << i;
  EXPECT_FALSE(b.take(r, now));
}

TEST(TokenBucketTest, NeverExceedsBurstAfterLongIdle) {
  RateSpec r = RateSpec::make(5, 3);
  TokenBucket b;
  int64_t now = 10 * kSec;
  EXPECT_TRUE(b.take(r, now));
  now += 3600 * kSec;  // an hour idle
  EXPECT_EQ(b.tokens(r, now), 3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.take(r, now));
  EXPECT_FALSE(b.take(r, now));
}

TEST(TokenBucketTest, FractionalRateAndRefund) {
  RateSpec r = RateSpec::make(0.5, 1);  // one token every 2 s
  EXPECT_EQ(r.interval_ns, 2 * kSec);
  TokenBucket b;
  int64_t now = 5 * kSec;
  EXPECT_TRUE(b.take(r, now));
  EXPECT_FALSE(b.take(r, now + 1999 * kMs));
  b.refund(r);  // give the token back
  EXPECT_TRUE(b.take(r, now + 1 * kMs));
  EXPECT_FALSE(b.take(r, now + 1 * kMs));
}

TEST(TokenBucketTest, UnlimitedSpecAlwaysAllows) {
  RateSpec r = RateSpec::make(0, 10);
  EXPECT_TRUE(r.unlimited());
  TokenBucket b;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(b.take(r, 1));
}

// ---- IpKey, prefixes, CIDRs ----------------------------------------------

TEST(IpKeyTest, Ipv4IsMappedAndPrintable) {
  IpKey k = v4("192.0.2.7");
  EXPECT_TRUE(k.isV4());
  EXPECT_EQ(k, v6("::ffff:192.0.2.7"));
  EXPECT_EQ(k.toString(), "192.0.2.7");
  EXPECT_FALSE(v6("2001:db8::1").isV4());
  EXPECT_EQ(v6("2001:db8::1").toString(), "2001:db8::1");
}

TEST(IpKeyTest, Ipv6GroupedByPrefixIpv4Never) {
  // Same /64: one key.
  EXPECT_EQ(limitKey(v6("2001:db8:1:2::1"), 64),
            limitKey(v6("2001:db8:1:2:ffff:ffff:ffff:ffff"), 64));
  // Neighbouring /64: different keys.
  EXPECT_NE(limitKey(v6("2001:db8:1:2::1"), 64), limitKey(v6("2001:db8:1:3::1"), 64));
  // A /48 groups them.
  EXPECT_EQ(limitKey(v6("2001:db8:1:2::1"), 48), limitKey(v6("2001:db8:1:3::1"), 48));
  EXPECT_EQ(limitKey(v6("2001:db8:1:2::1"), 64).toString(), "2001:db8:1:2::");
  // IPv4 (also mapped IPv4 from a dual-stack socket) is never masked: two
  // IPv4 clients never share a key, whatever the IPv6 prefix.
  EXPECT_NE(limitKey(v4("10.0.0.1"), 64), limitKey(v4("10.0.0.2"), 64));
  EXPECT_EQ(limitKey(v6("::ffff:10.0.0.1"), 64), limitKey(v4("10.0.0.1"), 64));
  // Odd prefixes.
  EXPECT_EQ(v6("2001:db8::ffff").masked(127), v6("2001:db8::fffe"));
  EXPECT_EQ(v6("ffff::").masked(1), v6("8000::"));
  EXPECT_EQ(v6("ffff::").masked(0), IpKey{});
}

TEST(IpKeyTest, KeyOfSockaddr) {
  auto a = Address::parse("198.51.100.9:4000");
  ASSERT_TRUE(a);
  EXPECT_EQ(*keyOf(a->sockaddr_ptr()), v4("198.51.100.9"));
  auto b = Address::parse("[2001:db8::5]:4000");
  ASSERT_TRUE(b);
  EXPECT_EQ(*keyOf(b->sockaddr_ptr()), v6("2001:db8::5"));
  auto c = Address::parse("[::ffff:198.51.100.9]:4000");
  ASSERT_TRUE(c);
  EXPECT_EQ(*keyOf(c->sockaddr_ptr()), v4("198.51.100.9"));
}

TEST(CidrTest, ParsesAndMatchesBothFamilies) {
  std::string err;
  auto a = Cidr::parse("10.0.0.0/8", &err);
  ASSERT_TRUE(a) << err;
  EXPECT_TRUE(a->contains(v4("10.255.1.2")));
  EXPECT_FALSE(a->contains(v4("11.0.0.1")));
  EXPECT_TRUE(a->contains(v6("::ffff:10.1.1.1")));  // dual-stack client
  EXPECT_EQ(a->toString(), "10.0.0.0/8");

  auto b = Cidr::parse("2001:db8::/32", &err);
  ASSERT_TRUE(b) << err;
  EXPECT_TRUE(b->contains(v6("2001:db8:ffff::1")));
  EXPECT_FALSE(b->contains(v6("2001:db9::1")));
  EXPECT_FALSE(b->contains(v4("10.0.0.1")));

  auto host = Cidr::parse("192.0.2.1", &err);  // a bare address: one host
  ASSERT_TRUE(host) << err;
  EXPECT_TRUE(host->contains(v4("192.0.2.1")));
  EXPECT_FALSE(host->contains(v4("192.0.2.2")));

  auto all = Cidr::parse("0.0.0.0/0", &err);
  ASSERT_TRUE(all) << err;
  EXPECT_TRUE(all->contains(v4("203.0.113.1")));
  EXPECT_FALSE(all->contains(v6("2001:db8::1")));  // IPv4 ranges never match IPv6

  CidrSet set;
  set.add(*a);
  set.add(*b);
  EXPECT_TRUE(set.contains(v4("10.9.9.9")));
  EXPECT_TRUE(set.contains(v6("2001:db8::9")));
  EXPECT_FALSE(set.contains(v4("192.0.2.1")));
}

TEST(CidrTest, RefusesBadRangesWithClearErrors) {
  std::string err;
  EXPECT_FALSE(Cidr::parse("10.0.0.0/33", &err));
  EXPECT_NE(err.find("out of range for IPv4 (0-32)"), std::string::npos) << err;
  EXPECT_FALSE(Cidr::parse("2001:db8::/129", &err));
  EXPECT_NE(err.find("IPv6 (0-128)"), std::string::npos) << err;
  EXPECT_FALSE(Cidr::parse("10.1.0.0/8", &err));
  EXPECT_NE(err.find("did you mean \"10.0.0.0/8\""), std::string::npos) << err;
  EXPECT_FALSE(Cidr::parse("example.com/8", &err));
  EXPECT_NE(err.find("is not an IPv4 or IPv6 address"), std::string::npos) << err;
  EXPECT_FALSE(Cidr::parse("10.0.0.0/", &err));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/x", &err));
  EXPECT_FALSE(Cidr::parse("/8", &err));
  EXPECT_FALSE(Cidr::parse("", &err));
}

// ---- IpTable --------------------------------------------------------------

IpTable::Options tableOptions(size_t max_entries, size_t shards, uint32_t per_key,
                              RateSpec rate = RateSpec{}) {
  IpTable::Options o;
  o.max_entries = max_entries;
  o.shards = shards;
  o.max_per_key = per_key;
  o.rate = rate;
  o.ttl_ns = 60 * kSec;
  o.seed = 12345;
  return o;
}

TEST(IpTableTest, PerKeyConcurrencyLimitAndRelease) {
  IpTable t(tableOptions(100, 4, 3));
  IpKey a = v4("10.0.0.1");
  int64_t now = kSec;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(t.acquire(a, now), IpTable::Verdict::kAdmitted);
  EXPECT_EQ(t.acquire(a, now), IpTable::Verdict::kPerIpConnections);
  EXPECT_EQ(t.acquire(v4("10.0.0.2"), now), IpTable::Verdict::kAdmitted);  // others unaffected
  t.release(a, now);
  EXPECT_EQ(t.find(a, now)->connections, 2u);
  EXPECT_EQ(t.acquire(a, now), IpTable::Verdict::kAdmitted);
  EXPECT_EQ(t.size(), 2u);
}

TEST(IpTableTest, ReleaseWithAStaleSlotHintFindsTheEntry) {
  // One shard of 8 entries: 40 addresses cycle through it, so entries are
  // evicted and later ones shift into freed positions (backward-shift
  // deletion). Every hint recorded at acquire() is then checked on release.
  IpTable t(tableOptions(8, 1, 10));
  int64_t now = kSec;
  struct Held {
    IpKey key;
    uint32_t slot;
  };
  std::vector<Held> held;
  for (uint32_t i = 0; i < 40; ++i) {
    IpKey k = IpKey::fromV4(0x0a000000 + i);
    uint32_t slot = IpTable::kNoSlot;
    ASSERT_EQ(t.acquire(k, t.hash(k), now, nullptr, &slot), IpTable::Verdict::kAdmitted) << i;
    ASSERT_NE(slot, IpTable::kNoSlot);
    held.push_back({k, slot});
    if (held.size() == 4) {
      // Release with the recorded hints, and one deliberately wrong hint.
      for (size_t j = 0; j < held.size(); ++j) {
        uint32_t hint = j == 0 ? (held[j].slot + 1) % 12 : held[j].slot;
        t.release(held[j].key, t.hash(held[j].key), now, hint);
        EXPECT_EQ(t.find(held[j].key, now)->connections, 0u) << i << " " << j;
      }
      held.clear();
    }
    now += kSec;
  }
  EXPECT_LE(t.size(), 8u);
  EXPECT_GT(t.evictions(), 0u);
}

TEST(IpTableTest, PerKeyRateAndCancelGivesTokenBack) {
  IpTable t(tableOptions(100, 4, 100, RateSpec::make(5, 2)));
  IpKey a = v4("10.0.0.1");
  int64_t now = kSec;
  EXPECT_EQ(t.acquire(a, now), IpTable::Verdict::kAdmitted);
  EXPECT_EQ(t.acquire(a, now), IpTable::Verdict::kAdmitted);
  EXPECT_EQ(t.acquire(a, now), IpTable::Verdict::kPerIpRate);
  t.cancel(a, now);  // e.g. the global cap refused the second one
  EXPECT_EQ(t.find(a, now)->connections, 1u);
  EXPECT_EQ(t.find(a, now)->tokens, 1);
  EXPECT_EQ(t.acquire(a, now), IpTable::Verdict::kAdmitted);
  EXPECT_EQ(t.acquire(a, now + 199 * kMs), IpTable::Verdict::kPerIpRate);
  EXPECT_EQ(t.acquire(a, now + 200 * kMs), IpTable::Verdict::kAdmitted);
}

// Minor page faults of this thread so far.
long minorFaults() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_minflt;
}

TEST(IpTableTest, SweepSkipsEmptyShardsWithoutTouchingTheirSlots) {
  // 1M entries over 64 shards: ~40 MB of calloc'd slots, untouched. One
  // address lives in one shard; a sweep that walked every shard would fault
  // in every page (~10,000), one that skips the empty ones ~1/64 of them
  // (a few times that under TSan, which also faults in shadow memory).
  IpTable t(tableOptions(1000000, 64, 10));
  ASSERT_EQ(t.acquire(v4("10.0.0.1"), kSec), IpTable::Verdict::kAdmitted);
  const long slot_pages = static_cast<long>(t.capacity() * 40 / 4096);
  long before = minorFaults();
  EXPECT_EQ(t.sweepAll(2 * kSec), 0u);
  long faults = minorFaults() - before;
  EXPECT_LT(faults, slot_pages / 4) << "the sweep touched " << faults << " pages of ~"
                                    << slot_pages;
  EXPECT_EQ(t.size(), 1u);
}

TEST(IpTableTest, IdleEntriesExpireLiveOnesNever) {
  IpTable t(tableOptions(100, 4, 10));
  int64_t now = kSec;
  IpKey idle = v4("10.0.0.1");
  IpKey live = v4("10.0.0.2");
  ASSERT_EQ(t.acquire(idle, now), IpTable::Verdict::kAdmitted);
  ASSERT_EQ(t.acquire(live, now), IpTable::Verdict::kAdmitted);
  t.release(idle, now + kSec);
  EXPECT_EQ(t.sweepAll(now + 30 * kSec), 0u);  // not idle for ttl (60 s) yet
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.sweepAll(now + kSec + 60 * kSec), 1u);
  EXPECT_FALSE(t.find(idle, now));
  ASSERT_TRUE(t.find(live, now));  // live: kept however old
  EXPECT_EQ(t.sweepAll(now + 3600 * kSec), 0u);
  EXPECT_EQ(t.size(), 1u);
}

TEST(IpTableTest, FullShardEvictsLeastRecentlySeenIdleEntry) {
  IpTable t(tableOptions(4, 1, 10));
  for (int i = 0; i < 4; ++i) {
    IpKey k = IpKey::fromV4(0x0a000001 + i);
    ASSERT_EQ(t.acquire(k, (i + 1) * kSec), IpTable::Verdict::kAdmitted);
    t.release(k, (i + 1) * kSec);  // idle, last seen at i+1 s
  }
  bool evicted = false;
  ASSERT_EQ(t.acquire(v4("10.9.9.9"), 10 * kSec, &evicted), IpTable::Verdict::kAdmitted);
  EXPECT_TRUE(evicted);
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_EQ(t.size(), 4u);
  EXPECT_FALSE(t.find(IpKey::fromV4(0x0a000001), 10 * kSec));  // the oldest went
  for (int i = 1; i < 4; ++i) EXPECT_TRUE(t.find(IpKey::fromV4(0x0a000001 + i), 10 * kSec));
}

TEST(IpTableTest, TableFullOfLiveEntriesRefusesNewAddresses) {
  IpTable t(tableOptions(4, 1, 10));
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(t.acquire(IpKey::fromV4(0x0a000001 + i), kSec), IpTable::Verdict::kAdmitted);
  EXPECT_EQ(t.acquire(v4("10.9.9.9"), kSec), IpTable::Verdict::kTableFull);
  // Known addresses still work.
  EXPECT_EQ(t.acquire(IpKey::fromV4(0x0a000001), kSec), IpTable::Verdict::kAdmitted);
  // One closes: its entry becomes evictable, the new address gets in.
  t.release(IpKey::fromV4(0x0a000002), 2 * kSec);
  EXPECT_EQ(t.acquire(v4("10.9.9.9"), 3 * kSec), IpTable::Verdict::kAdmitted);
  EXPECT_FALSE(t.find(IpKey::fromV4(0x0a000002), 3 * kSec));
}

TEST(IpTableTest, MillionAddressFloodStaysWithinCap) {
  IpTable t(tableOptions(1000, 16, 10, RateSpec::make(5, 10)));
  size_t bytes = t.slotBytes();
  EXPECT_LT(bytes, 1000u * 64);  // about 1.43 slots of 40 bytes per address
  // 50 clients stay connected throughout.
  for (uint32_t i = 0; i < 50; ++i)
    ASSERT_EQ(t.acquire(IpKey::fromV4(0xc0000200 + i), 0), IpTable::Verdict::kAdmitted);
  size_t admitted = 0;
  size_t full = 0;
  for (uint32_t i = 0; i < 1000000; ++i) {
    IpKey k = IpKey::fromV4(0x0b000000 + i);
    int64_t now = i * 1000;  // 1 µs apart
    IpTable::Verdict v = t.acquire(k, now);
    if (v == IpTable::Verdict::kAdmitted) {
      ++admitted;
      t.release(k, now);  // connect-and-close flood
    } else {
      ++full;
    }
    ASSERT_LE(t.size(), t.capacity());
  }
  EXPECT_EQ(admitted, 1000000u);  // idle entries always make room
  EXPECT_EQ(t.size(), 1000u);
  EXPECT_GE(t.evictions(), 1000000u - 1000u);
  EXPECT_EQ(t.slotBytes(), bytes);
  for (uint32_t i = 0; i < 50; ++i) {
    auto e = t.find(IpKey::fromV4(0xc0000200 + i), 0);
    ASSERT_TRUE(e) << "a live entry was evicted";
    EXPECT_EQ(e->connections, 1u);
  }
}

TEST(IpTableTest, ConsistentAfterManyInsertsAndDeletes) {
  // Exercises backward-shift deletion (evictions and partial sweeps in full,
  // clustered shards): every entry counted in size() stays findable, once.
  for (uint64_t seed : {1, 2, 3}) {
    IpTable::Options o = tableOptions(64, 2, 10);
    o.seed = seed;
    IpTable t(o);
    int64_t now = 0;
    for (uint32_t round = 0; round < 20000; ++round) {
      uint32_t i = (round * 2654435761u) % 5000;
      IpKey k = IpKey::fromV4(0x0c000000 + i);
      now += kSec;
      if (t.acquire(k, now) == IpTable::Verdict::kAdmitted) t.release(k, now);
      if (round % 7 == 0) t.sweepAll(now);  // removes those idle for > 60 s
      if (round % 101 == 0) {
        size_t found = 0;
        for (uint32_t j = 0; j < 5000; ++j)
          if (t.find(IpKey::fromV4(0x0c000000 + j), now)) ++found;
        ASSERT_EQ(found, t.size()) << "seed " << seed << " round " << round;
      }
    }
    EXPECT_LE(t.size(), 64u);
    EXPECT_GT(t.evictions(), 0u);
  }
}

// ---- Concurrency -----------------------------------------------------------

TEST(IpTableConcurrencyTest, TwoWorkersNeverExceedPerIpLimit) {
  constexpr uint32_t kLimit = 3;
  IpTable t(tableOptions(1000, 16, kLimit));
  IpKey a = v4("10.0.0.1");
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::atomic<bool> violated{false};
  std::atomic<uint64_t> admitted_total{0};
  auto worker = [&] {
    for (int i = 0; i < 200000; ++i) {
      if (t.acquire(a, i) != IpTable::Verdict::kAdmitted) continue;
      admitted_total.fetch_add(1, std::memory_order_relaxed);
      int now_inside = inside.fetch_add(1) + 1;
      if (now_inside > static_cast<int>(kLimit)) violated = true;
      int m = max_inside.load();
      while (now_inside > m && !max_inside.compare_exchange_weak(m, now_inside)) {
      }
      inside.fetch_sub(1);
      t.release(a, i);
    }
  };
  std::thread w1(worker);
  std::thread w2(worker);
  w1.join();
  w2.join();
  EXPECT_FALSE(violated);
  EXPECT_LE(max_inside.load(), static_cast<int>(kLimit));
  EXPECT_GT(admitted_total.load(), 1000u);
  EXPECT_EQ(t.find(a, 0)->connections, 0u);
}

TEST(IpLimiterConcurrencyTest, TwoWorkersRespectPerIpAndGlobalCaps) {
  GlobalConnectionCount global;
  IpLimiter::Options o;
  o.table = tableOptions(1000, 16, 2);
  o.max_connections = 5;
  o.global = &global;
  IpLimiter limiter(o);
  std::atomic<bool> violated{false};
  std::atomic<int> per_ip[8] = {};
  std::atomic<int> total{0};
  auto worker = [&](int seed) {
    std::vector<IpLimiter::Ticket> held;
    uint32_t x = seed;
    for (int i = 0; i < 100000; ++i) {
      x = x * 1103515245 + 12345;
      if (!held.empty() && (x >> 16) % 2 == 0) {
        IpLimiter::Ticket t = held.back();
        held.pop_back();
        per_ip[t.key.lo & 7].fetch_sub(1);
        total.fetch_sub(1);
        limiter.release(t, i);
        continue;
      }
      IpLimiter::Ticket t;
      IpKey k = IpKey::fromV4(0x0a000000 + ((x >> 8) & 7));
      if (limiter.admit(k, i, &t) != RejectReason::kNone) continue;
      if (per_ip[t.key.lo & 7].fetch_add(1) + 1 > 2) violated = true;
      if (total.fetch_add(1) + 1 > 5) violated = true;
      held.push_back(t);
    }
    for (auto& t : held) {
      per_ip[t.key.lo & 7].fetch_sub(1);
      total.fetch_sub(1);
      limiter.release(t, 0);
    }
  };
  std::thread w1(worker, 1);
  std::thread w2(worker, 2);
  w1.join();
  w2.join();
  EXPECT_FALSE(violated);
  EXPECT_EQ(global.value(), 0);
  for (uint32_t i = 0; i < 8; ++i) {
    auto e = limiter.table().find(IpKey::fromV4(0x0a000000 + i), 0);
    if (e) {
      EXPECT_EQ(e->connections, 0u);
    }
  }
}

// ---- IpLimiter -------------------------------------------------------------

TEST(IpLimiterTest, OrderOfChecksAndTrustedRanges) {
  GlobalConnectionCount global;
  IpLimiter::Options o;
  o.table = tableOptions(100, 4, 1, RateSpec::make(1, 1));
  o.max_connections = 3;
  o.global = &global;
  std::string err;
  o.trusted.add(*Cidr::parse("192.168.0.0/16", &err));
  IpLimiter limiter(o);
  IpLimiter::Ticket t1, t2, t3, t4;
  // Trusted: no per-IP limits, but counted globally.
  EXPECT_EQ(limiter.admit(v4("192.168.1.1"), kSec, &t1), RejectReason::kNone);
  EXPECT_EQ(limiter.admit(v4("192.168.1.1"), kSec, &t2), RejectReason::kNone);
  EXPECT_FALSE(t1.tracked);
  EXPECT_EQ(limiter.table().size(), 0u);
  EXPECT_EQ(limiter.admit(v4("10.0.0.1"), kSec, &t3), RejectReason::kNone);
  EXPECT_TRUE(t3.tracked);
  EXPECT_EQ(global.value(), 3);
  // Global cap first.
  EXPECT_EQ(limiter.admit(v4("10.0.0.2"), kSec, &t4), RejectReason::kGlobal);
  limiter.release(t1, kSec);
  EXPECT_EQ(limiter.admit(v4("10.0.0.1"), kSec, &t4), RejectReason::kPerIpConnections);
  limiter.release(t3, kSec);
  EXPECT_EQ(limiter.admit(v4("10.0.0.1"), kSec, &t4), RejectReason::kPerIpRate);
  EXPECT_EQ(limiter.admit(v4("10.0.0.1"), 2 * kSec, &t4), RejectReason::kNone);
  limiter.release(t4, 2 * kSec);
  limiter.release(t2, 2 * kSec);
  EXPECT_EQ(global.value(), 0);
}

TEST(IpLimiterTest, GlobalRefusalTakesNoTokenAndNoCount) {
  GlobalConnectionCount global;
  IpLimiter::Options o;
  o.table = tableOptions(100, 4, 5, RateSpec::make(1, 1));
  o.max_connections = 1;
  o.global = &global;
  IpLimiter limiter(o);
  IpLimiter::Ticket a, b;
  ASSERT_EQ(limiter.admit(v4("10.0.0.1"), kSec, &a), RejectReason::kNone);
  EXPECT_EQ(limiter.admit(v4("10.0.0.1"), kSec, &b), RejectReason::kGlobal);
  EXPECT_EQ(limiter.admit(v4("10.0.0.2"), kSec, &b), RejectReason::kGlobal);
  EXPECT_EQ(global.value(), 1);
  EXPECT_FALSE(limiter.table().find(v4("10.0.0.2"), kSec));  // never inserted
  limiter.release(a, kSec);
  // 10.0.0.2's one-token bucket is untouched by the refusal.
  EXPECT_EQ(limiter.admit(v4("10.0.0.2"), kSec, &b), RejectReason::kNone);
  limiter.release(b, kSec);
  EXPECT_EQ(global.value(), 0);
}

TEST(IpLimiterTest, Ipv6ClientsInOnePrefixShareTheLimit) {
  GlobalConnectionCount global;
  IpLimiter::Options o;
  o.table = tableOptions(100, 4, 2);
  o.global = &global;
  o.ipv6_prefix = 64;
  IpLimiter limiter(o);
  IpLimiter::Ticket t[4];
  EXPECT_EQ(limiter.admit(v6("2001:db8:0:1::a"), kSec, &t[0]), RejectReason::kNone);
  EXPECT_EQ(limiter.admit(v6("2001:db8:0:1::b"), kSec, &t[1]), RejectReason::kNone);
  EXPECT_EQ(limiter.admit(v6("2001:db8:0:1:ffff::c"), kSec, &t[2]),
            RejectReason::kPerIpConnections);
  EXPECT_EQ(limiter.admit(v6("2001:db8:0:2::a"), kSec, &t[2]), RejectReason::kNone);
  EXPECT_EQ(t[0].key, t[1].key);
  EXPECT_EQ(limiter.table().size(), 2u);
  for (int i = 0; i < 3; ++i) limiter.release(t[i], kSec);
}

}  // namespace
}  // namespace ip_limiter
}  // namespace gw

namespace gw {
namespace ip_limiter {
namespace {

IpKey v6b(const char* text) {
  in6_addr a;
  inet_pton(AF_INET6, text, &a);
  return IpKey::fromV6(a.s6_addr);
}

TEST(IpKeyTest, Ipv4GroupedByItsOwnPrefix) {
  IpKey a = IpKey::fromV4(0xC0000207);  // 192.0.2.7
  IpKey b = IpKey::fromV4(0xC00002FE);  // 192.0.2.254
  EXPECT_NE(limitKey(a, 64), limitKey(b, 64));
  EXPECT_EQ(limitKey(a, 64, 24), limitKey(b, 64, 24));
  EXPECT_EQ(limitKey(a, 64, 24).toString(), "192.0.2.0");
  EXPECT_TRUE(limitKey(a, 64, 24).isV4());
}

// Churning through the /64s of one /48: the network's bucket and cap stop
// it before the /64s take table entries; another /48 is unaffected;
// releasing gives the network's places back.
TEST(IpLimiterTest, Ipv6NetworkLimitsCatchChurnAcrossSlash64s) {
  constexpr int64_t kSec = 1000000000;
  GlobalConnectionCount global;
  IpLimiter::Options o;
  o.table.max_entries = 1000;
  o.table.max_per_key = 10;
  o.table.rate = RateSpec::make(1000, 1000);
  o.network_prefix = 48;
  o.network_table = o.table;
  o.network_table.max_per_key = 5;
  o.network_table.rate = RateSpec::make(1, 4);
  o.global = &global;
  IpLimiter limiter(o);
  std::vector<IpLimiter::Ticket> t(10);
  char text[64];
  int admitted = 0;
  for (int i = 0; i < 10; ++i) {
    std::snprintf(text, sizeof(text), "2001:db8:1:%x::1", i);
    admitted += limiter.admit(v6b(text), kSec, &t[admitted]) == RejectReason::kNone;
  }
  EXPECT_EQ(admitted, 4);  // the network's burst
  EXPECT_EQ(limiter.table().size(), 4u);
  EXPECT_EQ(limiter.networkTable().size(), 1u);
  IpLimiter::Ticket other;
  EXPECT_EQ(limiter.admit(v6b("2001:db8:2::1"), kSec, &other), RejectReason::kNone);
  // After refill, the network's concurrency cap (5) holds.
  IpLimiter::Ticket more[3];
  EXPECT_EQ(limiter.admit(v6b("2001:db8:1:100::1"), 10 * kSec, &more[0]), RejectReason::kNone);
  EXPECT_EQ(limiter.admit(v6b("2001:db8:1:101::1"), 10 * kSec, &more[1]),
            RejectReason::kPerNetworkConnections);
  // Releases give the network its places back.
  for (int i = 0; i < 4; ++i) limiter.release(t[i], 10 * kSec);
  EXPECT_EQ(limiter.networkTable().find(limitKey(v6b("2001:db8:1::"), 48), 10 * kSec)->connections,
            1u);
  EXPECT_EQ(limiter.admit(v6b("2001:db8:1:101::1"), 10 * kSec, &more[1]), RejectReason::kNone);
  limiter.release(more[0], 10 * kSec);
  limiter.release(more[1], 10 * kSec);
  limiter.release(other, 10 * kSec);
  EXPECT_EQ(limiter.networkTable().find(limitKey(v6b("2001:db8:1::"), 48), 10 * kSec)->connections,
            0u);
  EXPECT_EQ(global.value(), 0);
}

}  // namespace
}  // namespace ip_limiter
}  // namespace gw
