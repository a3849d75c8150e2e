// test/filters/framing/codec_chain.h — what the `framing` tests share:
// CodecChain (an EmbeddedChain of framing -> FrameRecorder), config parsing,
// counter lookup, payloads, per-test listener labels and time helpers.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/sdk/dispatcher.h"
#include "core/sdk/stats.h"
#include "core/sdk/testing/embedded_chain.h"
#include "filters/framing/framing.h"
#include "test/harness/net.h"

namespace gw {
namespace framing_test {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using test::EmbeddedChain;
using test::encodeClientFrame;
using test::FrameRecorder;

// The chain under test: [before...] -> framing (config `json`) -> a
// FrameRecorder, started. `listener` labels the codec's metrics.
struct CodecChain {
  explicit CodecChain(const std::string& json, const std::string& listener = "test",
                      std::vector<ChainElement> before = {})
      : ec(options(listener)) {
    std::string error;
    auto framing = ec.registered("framing", json, {}, &error);
    if (!framing) throw std::runtime_error("framing config " + json + ": " + error);
    before.push_back(*framing);
    before.push_back(recorder.element());
    ec.start(before);
  }
  static EmbeddedChain::Options options(const std::string& listener) {
    EmbeddedChain::Options o;
    o.listener = listener;
    return o;
  }

  FrameRecorder recorder;  // outlives the chain
  EmbeddedChain ec;
};

// Feeds one byte per read.
inline void feedByteByByte(EmbeddedChain& ec, std::string_view bytes) {
  for (char c : bytes) ec.feed(std::string_view(&c, 1));
}

// Current value of the codec's counter `name` with these labels.
inline uint64_t counterValue(const std::string& name, const stats::Labels& labels) {
  return stats::StatsRegistry::get().counter(name, "", labels).value();
}

// Parses `json` as the framing config (schema first, as the loader does).
// Throws std::runtime_error("<pointer>: <message>") when it is refused.
inline std::shared_ptr<const framing::FramingConfig> parseFramingConfig(const std::string& json) {
  Dispatcher d("config");
  WorkerServices services;
  std::string error;
  auto built = test::buildFilter("framing", json, d, services, {}, &error);
  if (!built) throw std::runtime_error(error);
  return std::static_pointer_cast<const framing::FramingConfig>(built->config);
}

inline const uint32_t kServerId = wire::ClientHeader::makeServerId(3, 200, 1);

inline std::string payloadOf(size_t n, char seed = 'a') {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i % 26);
  return s;
}

// A unique listener label per test, so metric values start at zero.
inline std::string listenerName() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name();
}

inline long elapsedMs(steady_clock::time_point from, steady_clock::time_point to) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(to - from).count());
}

}  // namespace framing_test
}  // namespace gw
