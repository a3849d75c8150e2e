// SessionIdGenerator and SessionIdKey (core/sdk/session_info.h): the keyed
// 64-bit permutation (4-round Feistel, SipHash-2-4 round function) and the
// process-wide generator; TraceContext's generator and hex forms.
#include "core/sdk/session_info.h"

#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/sdk/log.h"

namespace gw {

namespace {

constexpr int kSeqBits = 12;
constexpr int kMsBits = 36;
constexpr int kNodeShift = kSeqBits + kMsBits;  // 48
constexpr uint64_t kMsSeqMask = (uint64_t{1} << kNodeShift) - 1;
constexpr int kRounds = 4;

inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

// One SipHash round over the state v0..v3.
inline void sipRound(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1;
  v1 = rotl(v1, 13);
  v1 ^= v0;
  v0 = rotl(v0, 32);
  v2 += v3;
  v3 = rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = rotl(v1, 17);
  v1 ^= v2;
  v2 = rotl(v2, 32);
}

}  // namespace

// SipHash-2-4 of the 8-byte little-endian message `m` under `key`. Exposed
// for the test vector (test/core/session_id_test.cc), not in the header.
uint64_t sipHash24U64(const SessionIdKey& key, uint64_t m) {
  uint64_t v0 = key.k0 ^ 0x736f6d6570736575ull;
  uint64_t v1 = key.k1 ^ 0x646f72616e646f6dull;
  uint64_t v2 = key.k0 ^ 0x6c7967656e657261ull;
  uint64_t v3 = key.k1 ^ 0x7465646279746573ull;
  // The one full word, then the final word: length 8 in the top byte.
  for (uint64_t w : {m, uint64_t{8} << 56}) {
    v3 ^= w;
    sipRound(v0, v1, v2, v3);
    sipRound(v0, v1, v2, v3);
    v0 ^= w;
  }
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) sipRound(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

namespace {

// Feistel round function: 32 bits of SipHash of (round, half).
inline uint32_t roundFn(const SessionIdKey& key, int round, uint32_t half) {
  return static_cast<uint32_t>(sipHash24U64(key, (uint64_t(round) << 32) | half));
}

uint64_t permute(const SessionIdKey& key, uint64_t x) {
  uint32_t l = static_cast<uint32_t>(x >> 32), r = static_cast<uint32_t>(x);
  for (int i = 0; i < kRounds; ++i) {
    uint32_t t = l ^ roundFn(key, i, r);
    l = r;
    r = t;
  }
  return (uint64_t{l} << 32) | r;
}

uint64_t unpermute(const SessionIdKey& key, uint64_t y) {
  uint32_t l = static_cast<uint32_t>(y >> 32), r = static_cast<uint32_t>(y);
  for (int i = kRounds - 1; i >= 0; --i) {
    uint32_t t = r ^ roundFn(key, i, l);
    r = l;
    l = t;
  }
  return (uint64_t{l} << 32) | r;
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

uint64_t unixMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

SessionIdKey SessionIdKey::random() {
  uint64_t words[2];
  size_t got = 0;
  auto* p = reinterpret_cast<unsigned char*>(words);
  while (got < sizeof(words)) {
    ssize_t n = ::getrandom(p + got, sizeof(words) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "session ids: getrandom failed (errno %d): no key for session ids\n",
                   errno);
      std::abort();
    }
    got += static_cast<size_t>(n);
  }
  return SessionIdKey{words[0], words[1]};
}

namespace {

// Per thread: a splitmix64 sequence started at 64 bits from getrandom (via
// SessionIdKey::random, which aborts if the kernel has none).
uint64_t nextTraceWord() {
  thread_local uint64_t state = SessionIdKey::random().k0;
  state += 0x9e3779b97f4a7c15ull;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::string hex(const uint8_t* bytes, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

}  // namespace

TraceContext TraceContext::generate() {
  TraceContext t;
  uint64_t w[3];
  do {
    w[0] = nextTraceWord();
    w[1] = nextTraceWord();
  } while ((w[0] | w[1]) == 0);
  do {
    w[2] = nextTraceWord();
  } while (w[2] == 0);
  std::memcpy(t.trace_id, w, sizeof(t.trace_id));
  std::memcpy(t.span_id, &w[2], sizeof(t.span_id));
  return t;
}

std::string TraceContext::traceIdHex() const { return hex(trace_id, sizeof(trace_id)); }

std::string TraceContext::spanIdHex() const { return hex(span_id, sizeof(span_id)); }

std::optional<SessionIdKey> SessionIdKey::parseHex(std::string_view text) {
  const char* ws = " \t\r\n";
  size_t b = text.find_first_not_of(ws);
  if (b == std::string_view::npos) return std::nullopt;
  text = text.substr(b, text.find_last_not_of(ws) - b + 1);
  if (text.size() != 32) return std::nullopt;
  SessionIdKey k;
  for (size_t i = 0; i < 32; ++i) {
    int d = hexDigit(text[i]);
    if (d < 0) return std::nullopt;
    uint64_t& w = i < 16 ? k.k0 : k.k1;
    w = (w << 4) | static_cast<uint64_t>(d);
  }
  return k;
}

SessionIdGenerator::SessionIdGenerator(std::string_view node)
    : SessionIdGenerator(nodeIdFromName(node), SessionIdKey::random()) {}

SessionIdGenerator::SessionIdGenerator(uint16_t node_id, SessionIdKey key) {
  all_.push_back(std::make_unique<const Params>(Params{node_id, key}));
  params_.store(all_.back().get(), std::memory_order_release);
}

void SessionIdGenerator::reset(std::optional<uint16_t> node_id, std::optional<SessionIdKey> key) {
  std::lock_guard<std::mutex> lock(mu_);
  const Params* cur = params_.load(std::memory_order_relaxed);
  Params p{node_id.value_or(cur->node), key.value_or(cur->key)};
  if (cur->node == p.node && cur->key == p.key) return;
  all_.push_back(std::make_unique<const Params>(p));
  params_.store(all_.back().get(), std::memory_order_release);
}

uint16_t SessionIdGenerator::nodeId() const {
  return params_.load(std::memory_order_acquire)->node;
}

uint64_t SessionIdGenerator::next() {
  const Params* p = params_.load(std::memory_order_acquire);
  for (;;) {
    uint64_t ms = unixMs();  // whole here; stamped modulo 2^36 below
    uint64_t prev = state_.load(std::memory_order_relaxed);
    uint64_t next;
    do {
      uint64_t prev_ms = prev >> kSeqBits;
      // A new millisecond starts at sequence 0; the same (or a borrowed)
      // one takes the next sequence.
      next = ms > prev_ms ? ms << kSeqBits : prev + 1;
    } while (!state_.compare_exchange_weak(prev, next, std::memory_order_relaxed));
    uint64_t id = permute(p->key, (uint64_t{p->node} << kNodeShift) | (next & kMsSeqMask));
    if (id != 0) return id;  // the one input that maps to 0 is skipped
  }
}

SessionIdGenerator::Fields SessionIdGenerator::decode(uint64_t id) const {
  const Params* p = params_.load(std::memory_order_acquire);
  uint64_t x = unpermute(p->key, id);
  Fields f;
  f.node = static_cast<uint16_t>(x >> kNodeShift);
  f.ms = (x >> kSeqBits) & ((uint64_t{1} << kMsBits) - 1);
  f.seq = static_cast<uint16_t>(x & ((1u << kSeqBits) - 1));
  return f;
}

uint16_t SessionIdGenerator::nodeIdFromName(std::string_view name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<uint16_t>(h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48));
}

SessionIdGenerator& SessionIdGenerator::process() {
  static SessionIdGenerator* g = [] {
    const char* id = std::getenv("GATEWAY_NODE_ID");
    if (id != nullptr && *id != '\0') {
      char* end = nullptr;
      unsigned long v = std::strtoul(id, &end, 10);
      if (*end == '\0' && v <= 0xffff)
        return new SessionIdGenerator(static_cast<uint16_t>(v), SessionIdKey::random());
      GW_LOG(warn, "GATEWAY_NODE_ID={} ignored: not an integer 0..65535 (node id from the name)",
             id);
    }
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
