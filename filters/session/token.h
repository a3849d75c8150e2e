// filters/session/token.h — resume tokens.
//
// Defines Token (16 random bytes from getrandom(2), 128 bits), its
// constant-time comparison and its hex form (how the Redis store keeps it).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gw {
namespace session {

using Token = std::array<uint8_t, 16>;

// A fresh token from the kernel's CSPRNG (getrandom; /dev/urandom if that
// fails). Aborts the process if neither yields randomness: a predictable
// token would let anyone take over sessions.
Token randomToken();

// True if a == b. Runs in time independent of where they differ.
bool tokensEqual(const Token& a, const Token& b);

// 32 lower-case hex digits.
std::string tokenHex(const Token& t);
// Parses 32 hex digits; nullopt for anything else.
std::optional<Token> tokenFromHex(std::string_view hex);

// A random 64-bit value (same source), e.g. to name a process instance.
uint64_t randomU64();

}  // namespace session
}  // namespace gw
