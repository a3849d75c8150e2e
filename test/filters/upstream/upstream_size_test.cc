// test/filters/upstream/upstream_size_test.cc — the per-connection object
// of the `upstream` filter stays small (docs/filters/upstream.md, the "State"
// paragraph).
// Its behaviour is covered by the integration tests (test/integration).
#include <gtest/gtest.h>

#include <cstdio>

#include "filters/upstream/upstream.h"

namespace gw {
namespace upstream {
namespace {

TEST(UpstreamFilterSizeTest, PerConnectionObject) {
  std::printf("sizeof UpstreamFilter=%zu\n", sizeof(UpstreamFilter));
  // Includes the inline state of one cluster (host, backend connection,
  // reply latency start); the SessionInfo is the session filter's, or
  // allocated only without one.
  // 8 more since issue 16: the compat per_connection route pin.
  EXPECT_LE(sizeof(UpstreamFilter), 104u);
}

}  // namespace
}  // namespace upstream
}  // namespace gw
