// Tests of gw::TimeoutList (core/timeout_list.h) on a real Dispatcher: expiry
// order, touch moving an entry back, unlink, callbacks that unlink / touch /
// destroy other entries during an expiry batch, entries in two lists, and
// destroying the list (or entries) with timeouts pending.
#include "core/sdk/timeout_list.h"

#include <event2/event.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/clock.h"
#include "core/sdk/dispatcher.h"

namespace gw {
namespace {

using std::chrono::milliseconds;

// An entry that knows its name (the callback casts back to it).
struct Item : TimeoutList::Entry {
  explicit Item(std::string n) : name(std::move(n)) {}
  std::string name;
};

int64_t nowNs() { return coarseNowNs(); }

int64_t preciseNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(preciseNow().time_since_epoch())
      .count();
}

// Runs the loop of `d` for `ms` milliseconds.
void runFor(Dispatcher& d, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  event_base_loopexit(d.base(), &tv);
  d.run();
}

class TimeoutListTest : public ::testing::Test {
 protected:
  Dispatcher dispatcher{"test"};
  std::vector<std::string> expired;
  std::vector<int64_t> expired_at;
  std::function<void(Item&, int64_t)> extra;  // runs after recording

  std::unique_ptr<TimeoutList> makeList(int timeout_ms) {
    return std::make_unique<TimeoutList>(dispatcher, milliseconds(timeout_ms),
                                         [this](TimeoutList::Entry& e, int64_t now) {
                                           Item& item = static_cast<Item&>(e);
                                           EXPECT_FALSE(item.linked());
                                           expired.push_back(item.name);
                                           expired_at.push_back(now);
                                           if (extra) extra(item, now);
                                         });
  }
};

TEST_F(TimeoutListTest, ExpiresInTouchOrderAfterTheTimeout) {
  auto list = makeList(40);
  Item a("a"), b("b"), c("c");
  int64_t start = preciseNs();
  list->touch(a, nowNs());
  list->touch(b, nowNs());
  list->touch(c, nowNs());
  EXPECT_EQ(list->sizeSlow(), 3u);
  EXPECT_TRUE(a.linked());
  runFor(dispatcher, 200);
  EXPECT_EQ(expired, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(expired_at.size(), 3u);
  // Coarse stamps may be one tick (<= 4 ms) old, and libevent measures the
  // timer from its cached loop time: allow 10 ms early against the precise
  // clock (a broken list expires them at once or never).
  EXPECT_GE(expired_at[0] - start, 30'000'000);
  EXPECT_TRUE(list->empty());
  EXPECT_FALSE(a.linked());
  EXPECT_EQ(list->armedForNs(), -1) << "an empty list leaves its timer disarmed";
}

TEST_F(TimeoutListTest, TouchMovesEntryToTheTail) {
  // The timeout is far longer than the 20 ms between touches: a touch that
  // comes a whole timeout after the previous one (this process descheduled
  // that long on a loaded machine) rightly lets `a` expire in between. With
  // a 60 ms timeout a loaded run saw "b", "a", "a".
  constexpr int64_t kTimeoutMs = 300;
  auto list = makeList(kTimeoutMs);
  Item a("a"), b("b");
  list->touch(a, nowNs());
  list->touch(b, nowNs());
  // Keep touching `a` every 20 ms for 100 ms: `b` expires first, `a` a
  // timeout after its last touch.
  int touches = 0;
  int64_t last_touch = 0;
  std::unique_ptr<Timer> tick;
  tick = std::make_unique<Timer>(dispatcher, [&] {
    last_touch = preciseNs();
    list->touch(a, nowNs());
    if (++touches < 5) tick->enable(milliseconds(20));
  });
  tick->enable(milliseconds(20));
  // Until both expired (~400 ms); the bound only limits the wait.
  for (int i = 0; i < 50 && expired.size() < 2; ++i) runFor(dispatcher, 100);
  ASSERT_EQ(expired, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(touches, 5);
  // A timeout after the last touch, minus the coarse clock's lag and
  // libevent's cached loop time (see above); without the move it would have
  // expired a timeout after its first touch, 100 ms sooner.
  EXPECT_GE(expired_at[1] - last_touch, (kTimeoutMs - 10) * 1'000'000);
}

TEST_F(TimeoutListTest, TouchOfTheTailOnlyMovesItsStamp) {
  auto list = makeList(1000);
  Item a("a"), b("b");
  list->touch(a, 100);
  list->touch(b, 200);
  list->touch(b, 300);
  EXPECT_EQ(b.touchedNs(), 300);
  list->touch(b, 250);  // never backwards
  EXPECT_EQ(b.touchedNs(), 300);
  // An older stamp behind a newer tail is clamped to the tail's.
  list->touch(a, 150);
  EXPECT_EQ(a.touchedNs(), 300);
  EXPECT_EQ(list->sizeSlow(), 2u);
}

TEST_F(TimeoutListTest, UnlinkStopsTheTimeout) {
  auto list = makeList(30);
  Item a("a"), b("b");
  list->touch(a, nowNs());
  list->touch(b, nowNs());
  a.unlink();
  a.unlink();  // idempotent
  EXPECT_FALSE(a.linked());
  EXPECT_EQ(list->sizeSlow(), 1u);
  runFor(dispatcher, 150);
  EXPECT_EQ(expired, (std::vector<std::string>{"b"}));
}

TEST_F(TimeoutListTest, DestroyedEntryLeavesTheList) {
  auto list = makeList(30);
  Item a("a");
  {
    Item gone("gone");
    list->touch(gone, nowNs());
    list->touch(a, nowNs());
  }
  EXPECT_EQ(list->sizeSlow(), 1u);
  runFor(dispatcher, 150);
  EXPECT_EQ(expired, (std::vector<std::string>{"a"}));
}

// During one expiry batch a callback may unlink, destroy or touch entries
// that were due in the same batch; the others still expire, once each.
TEST_F(TimeoutListTest, CallbackMayUnlinkDestroyAndTouchOthers) {
  auto list = makeList(30);
  Item a("a"), b("b"), d("d");
  auto c = std::make_unique<Item>("c");
  int64_t t = nowNs();
  list->touch(a, t);
  list->touch(b, t);
  list->touch(*c, t);
  list->touch(d, t);
  int64_t retouched_at = 0;
  extra = [&](Item& item, int64_t now) {
    if (item.name == "a") {
      b.unlink();   // due in this batch: must not expire
      c.reset();    // destroyed while linked: must not expire
      list->touch(d, now);  // due, touched again: expires one timeout later
      retouched_at = now;
    }
  };
  runFor(dispatcher, 200);
  EXPECT_EQ(expired, (std::vector<std::string>{"a", "d"}));
  ASSERT_EQ(expired_at.size(), 2u);
  EXPECT_GE(expired_at[1] - retouched_at, 30'000'000);
}

TEST_F(TimeoutListTest, CallbackMayRetouchTheExpiredEntry) {
  auto list = makeList(20);
  Item a("a");
  list->touch(a, nowNs());
  int rounds = 0;
  extra = [&](Item& item, int64_t now) {
    if (++rounds < 3) list->touch(item, now);
  };
  runFor(dispatcher, 300);
  EXPECT_EQ(expired, (std::vector<std::string>{"a", "a", "a"}));
  EXPECT_FALSE(a.linked());
}

TEST_F(TimeoutListTest, EntryMovesBetweenLists) {
  auto short_list = makeList(20);
  auto long_list = makeList(10'000);
  Item a("a");
  short_list->touch(a, nowNs());
  long_list->touch(a, nowNs());  // leaves short_list
  EXPECT_TRUE(short_list->empty());
  EXPECT_EQ(long_list->sizeSlow(), 1u);
  runFor(dispatcher, 100);
  EXPECT_TRUE(expired.empty());
  short_list->touch(a, nowNs());
  EXPECT_TRUE(long_list->empty());
  runFor(dispatcher, 100);
  EXPECT_EQ(expired, (std::vector<std::string>{"a"}));
}

TEST_F(TimeoutListTest, DestroyingTheListWithEntriesPending) {
  auto list = makeList(20);
  Item a("a"), b("b");
  list->touch(a, nowNs());
  list->touch(b, nowNs());
  list.reset();
  EXPECT_FALSE(a.linked());
  EXPECT_FALSE(b.linked());
  a.unlink();  // a no-op, not a write into the freed list
  runFor(dispatcher, 80);
  EXPECT_TRUE(expired.empty()) << "no callback after the list is gone";
}

TEST_F(TimeoutListTest, ManyEntriesOneTimer) {
  // The retouch below must run before the first entries are due: with a
  // 30 ms timeout, 1000 touches that take over 15 ms (this process
  // descheduled meanwhile on a loaded machine) would let them expire first.
  auto list = makeList(300);
  std::vector<std::unique_ptr<Item>> items;
  for (int i = 0; i < 1000; ++i) {
    items.push_back(std::make_unique<Item>(std::to_string(i)));
    list->touch(*items.back(), nowNs());
  }
  // Touch the even ones again after 15 ms: the odd ones expire first.
  Timer retouch(dispatcher, [&] {
    int64_t now = nowNs();
    for (int i = 0; i < 1000; i += 2) list->touch(*items[i], now);
  });
  retouch.enable(milliseconds(15));
  // Until all expired (~315 ms); the bound only limits the wait.
  for (int i = 0; i < 50 && expired.size() < 1000; ++i) runFor(dispatcher, 100);
  ASSERT_EQ(expired.size(), 1000u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(expired[i], std::to_string(2 * i + 1)) << i;
  for (int i = 0; i < 500; ++i) EXPECT_EQ(expired[500 + i], std::to_string(2 * i)) << i;
}

TEST_F(TimeoutListTest, NonPositiveTimeoutIsOneMillisecond) {
  auto list = makeList(0);
  EXPECT_EQ(list->timeout(), milliseconds(1));
  Item a("a");
  list->touch(a, nowNs());
  runFor(dispatcher, 50);
  EXPECT_EQ(expired, (std::vector<std::string>{"a"}));
}

}  // namespace
}  // namespace gw
