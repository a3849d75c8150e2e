#include "filters/session/token.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace gw {
namespace session {

namespace {

void fillRandom(uint8_t* out, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(out + got, n - got, 0);
    if (r > 0) {
      got += static_cast<size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    break;
  }
  if (got == n) return;
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  while (fd >= 0 && got < n) {
    ssize_t r = ::read(fd, out + got, n - got);
    if (r > 0) {
      got += static_cast<size_t>(r);
    } else if (!(r < 0 && errno == EINTR)) {
      break;
    }
  }
  if (fd >= 0) ::close(fd);
  if (got != n) {
    std::fprintf(stderr, "session: no randomness for resume tokens (getrandom and /dev/urandom failed)\n");
    std::abort();
  }
}

}  // namespace

Token randomToken() {
  Token t;
  fillRandom(t.data(), t.size());
  return t;
}

uint64_t randomU64() {
  uint64_t v = 0;
  fillRandom(reinterpret_cast<uint8_t*>(&v), sizeof(v));
  return v;
}

bool tokensEqual(const Token& a, const Token& b) {
  // Accumulate every difference; no early exit. volatile keeps the compiler
  // from turning the loop back into a short-circuiting memcmp.
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = diff | static_cast<uint8_t>(a[i] ^ b[i]);
  return diff == 0;
}

std::string tokenHex(const Token& t) {
  static const char kHex[] = "0123456789abcdef";
  std::string s(32, '0');
  for (size_t i = 0; i < t.size(); ++i) {
    s[2 * i] = kHex[t[i] >> 4];
    s[2 * i + 1] = kHex[t[i] & 15];
  }
  return s;
}

std::optional<Token> tokenFromHex(std::string_view hex) {
  if (hex.size() != 32) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Token t;
  for (size_t i = 0; i < t.size(); ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    t[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return t;
}

}  // namespace session
}  // namespace gw
