#include "core/sdk/session_info.h"

#include <unistd.h>

#include <cstdlib>

namespace gw {

namespace {
// FNV-1a, folded to 12 bits.
uint16_t hash12(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<uint16_t>((h ^ (h >> 12) ^ (h >> 24) ^ (h >> 36)) & 0xfff);
}
}  // namespace

SessionIdGenerator::SessionIdGenerator(std::string_view node) : node_bits_(hash12(node)) {}

uint64_t SessionIdGenerator::next() {
  uint64_t ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count()) &
                ((1ull << 40) - 1);
  uint64_t prev = state_.load(std::memory_order_relaxed);
  uint64_t next;
  do {
    uint64_t prev_ms = prev >> 12;
    if (ms > prev_ms) {
      next = ms << 12;
    } else {
      next = prev + 1;  // same (or borrowed) millisecond: next sequence
    }
  } while (!state_.compare_exchange_weak(prev, next, std::memory_order_relaxed));
  uint64_t id = (static_cast<uint64_t>(node_bits_) << 52) | (next & ((1ull << 52) - 1));
  return id == 0 ? 1 : id;
}

SessionIdGenerator& SessionIdGenerator::process() {
  static SessionIdGenerator* g = [] {
    const char* n = std::getenv("GATEWAY_NODE_NAME");
    if (n == nullptr || *n == '\0') n = std::getenv("HOSTNAME");
    char buf[256] = {0};
    if (n == nullptr || *n == '\0') {
      gethostname(buf, sizeof(buf) - 1);
      n = buf;
    }
    return new SessionIdGenerator(n);
  }();
  return *g;
}

}  // namespace gw
