// core/admin_guard.h — the admin API's request checks (docs/admin.md,
// "Security"), free of HTTP plumbing so they can be tested alone.
//
// Defines the pure functions AdminServer uses to refuse browser requests
// and DNS rebinding (hostAllowed, originAllowed, isJsonContentType) and to
// check the bearer token of the mutating endpoints (bearerToken,
// tokenEquals). Every function takes header values as received (nullptr-free
// string_views; "" for an absent header where noted).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gw {

// True if a Host header value `host` ("name", "name:port", "[v6]:port"; any
// case) names this admin server: 127.0.0.1, localhost, [::1] or `bind_ip`
// (the bound IP, "[v6]" bracketed; ignored when "" or a wildcard) with any
// port, or matches an `allowed` entry (lower-case; an entry without a port
// allows any port, one with a port that port only).
bool hostAllowed(std::string_view host, std::string_view bind_ip,
                 const std::vector<std::string>& allowed);

// True if an Origin header value is one of `allowed` (lower-case
// "scheme://host[:port]"), compared case-insensitively. "null" is never
// allowed.
bool originAllowed(std::string_view origin, const std::vector<std::string>& allowed);

// True if a Content-Type value's media type is application/json (any case,
// parameters such as "; charset=utf-8" allowed).
bool isJsonContentType(std::string_view content_type);

// The token of an `Authorization: Bearer <token>` value (scheme in any
// case, surrounding spaces trimmed), or nullopt for another scheme or an
// empty token.
std::optional<std::string_view> bearerToken(std::string_view authorization);

// True if `presented` equals `expected`, taking the same time whatever
// prefix of the two agrees (it reads every byte of `expected`), so the
// answer time does not reveal the token byte by byte.
bool tokenEquals(std::string_view expected, std::string_view presented);

}  // namespace gw
