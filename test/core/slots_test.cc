// Tests of gw::Slots (core/slots.h): typed per-connection slots.
#include "core/sdk/slots.h"

#include <gtest/gtest.h>

#include <string>

namespace gw {
namespace {

struct SessionLike {
  int id = 0;
};
struct RouteLike {
  std::string cluster;
};
struct A {};
struct B {};
struct C {};
struct D {};
struct E {};

TEST(SlotsTest, GetReturnsWhatWasSetByType) {
  Slots slots;
  SessionLike s{7};
  RouteLike r{"game"};
  EXPECT_EQ(slots.get<SessionLike>(), nullptr);
  EXPECT_TRUE(slots.set(&s));
  EXPECT_TRUE(slots.set(&r));
  EXPECT_EQ(slots.get<SessionLike>(), &s);
  EXPECT_EQ(slots.get<RouteLike>(), &r);
  EXPECT_EQ(slots.get<SessionLike>()->id, 7);
  EXPECT_EQ(slots.get<A>(), nullptr);
}

TEST(SlotsTest, SetAgainReplacesWithoutUsingASlot) {
  Slots slots;
  SessionLike first{1}, second{2};
  EXPECT_TRUE(slots.set(&first));
  EXPECT_TRUE(slots.set(&second));
  EXPECT_EQ(slots.get<SessionLike>(), &second);
  // Replacing did not consume capacity: three more types still fit.
  A a;
  B b;
  C c;
  EXPECT_TRUE(slots.set(&a));
  EXPECT_TRUE(slots.set(&b));
  EXPECT_TRUE(slots.set(&c));
}

TEST(SlotsTest, ConstQualifiedTypesAreDistinctKeys) {
  Slots slots;
  SessionLike s{3};
  EXPECT_TRUE(slots.set(&s));
  EXPECT_EQ(slots.get<const SessionLike>(), nullptr);
}

TEST(SlotsTest, FullSlotsRefuseANewTypeButStillReplace) {
  static_assert(Slots::kMaxSlots == 4, "update this test when kMaxSlots changes");
  Slots slots;
  A a;
  B b;
  C c;
  D d, d2;
  E e;
  EXPECT_TRUE(slots.set(&a));
  EXPECT_TRUE(slots.set(&b));
  EXPECT_TRUE(slots.set(&c));
  EXPECT_TRUE(slots.set(&d));
  EXPECT_FALSE(slots.set(&e));
  EXPECT_EQ(slots.get<E>(), nullptr);
  EXPECT_TRUE(slots.set(&d2));
  EXPECT_EQ(slots.get<D>(), &d2);
  EXPECT_EQ(slots.get<A>(), &a);
}

}  // namespace
}  // namespace gw
