// test/filters/upstream/output_shares_bench.cc — Google Benchmark of the
// fair-share accounting a client frame pays in UpstreamFilter::onFrame
// (filters/upstream/output_shares.h): sync() with the buffered output,
// check(), and add() of the frame's bytes.
//
// Run: bazel run -c opt //test/filters/upstream:output_shares_bench
//
//   BM_OutputShares_Frame/N  one frame of one of N sessions (round robin
//                            over N sessions and N/4 client IPs, so no two
//                            consecutive frames share a segment: the worst
//                            case), with the socket taking a frame's worth
//                            of bytes per frame, so ~N frames stay queued
//                            and the connection is contended (the limit is
//                            below what is queued) and check() computes the
//                            shares.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "filters/upstream/output_shares.h"

namespace gw {
namespace upstream {
namespace {

void BM_OutputShares_Frame(benchmark::State& state) {
  const size_t sessions = static_cast<size_t>(state.range(0));
  const size_t frame = 29 + 64;
  std::vector<PeerKey> ips;
  for (size_t i = 0; i < sessions / 4 + 1; ++i) ips.push_back(PeerKey{0, 0xffff0a000000ull + i});
  ShareLimits limits;
  limits.limit = sessions * frame / 2;
  limits.floor = 1024;
  limits.hard_cap = sessions * frame * 4;
  OutputShares shares;
  size_t buffered = 0;
  // Fill: every session has a frame queued.
  for (size_t s = 0; s < sessions; ++s) {
    shares.add(s + 1, ips[s / 4], frame);
    buffered += frame;
  }
  size_t next = 0;
  uint64_t admitted = 0;
  for (auto _ : state) {
    buffered -= frame;  // the socket took a frame's worth
    shares.sync(buffered);
    uint64_t session = next + 1;
    const PeerKey& ip = ips[next / 4];
    if (shares.check(session, ip, limits) == ShareVerdict::kAdmit) ++admitted;
    shares.add(session, ip, frame);
    buffered += frame;
    next = next + 1 == sessions ? 0 : next + 1;
  }
  benchmark::DoNotOptimize(admitted);
  state.counters["segments"] = static_cast<double>(shares.segments());
}
BENCHMARK(BM_OutputShares_Frame)->Arg(1)->Arg(16)->Arg(256)->Arg(4096);

}  // namespace
}  // namespace upstream
}  // namespace gw

BENCHMARK_MAIN();
