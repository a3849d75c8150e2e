// test/core/session_id_test.cc — SessionIdGenerator (core/sdk/session_info.h):
// ids are unique, never 0, and not guessable from a neighbour's id.
#include <cstdint>
#include <cstdlib>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

#include "core/sdk/session_info.h"

namespace gw {
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

}  // namespace
}  // namespace gw
