#include "core/admin_guard.h"

#include <cctype>

namespace gw {
namespace {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// The host part of "name", "name:port", "[v6]" or "[v6]:port" ("[v6]" keeps
// its brackets); *has_port tells whether a ":port" followed.
std::string_view hostPart(std::string_view s, bool* has_port) {
  size_t end;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    end = close == std::string_view::npos ? s.size() : close + 1;
  } else {
    end = s.rfind(':');
    if (end == std::string_view::npos) end = s.size();
  }
  *has_port = end < s.size();
  return s.substr(0, end);
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool hostAllowed(std::string_view host, std::string_view bind_ip,
                 const std::vector<std::string>& allowed) {
  host = trimmed(host);
  bool has_port = false;
  std::string_view name = hostPart(host, &has_port);
  if (name.empty()) return false;
  for (std::string_view builtin : {"127.0.0.1", "localhost", "[::1]"}) {
    if (equalsIgnoreCase(name, builtin)) return true;
  }
  if (!bind_ip.empty() && bind_ip != "0.0.0.0" && bind_ip != "[::]" &&
      equalsIgnoreCase(name, bind_ip))
    return true;
  for (const std::string& entry : allowed) {
    bool entry_has_port = false;
    hostPart(entry, &entry_has_port);
    if (equalsIgnoreCase(entry_has_port ? host : name, entry)) return true;
  }
  return false;
}

bool originAllowed(std::string_view origin, const std::vector<std::string>& allowed) {
  origin = trimmed(origin);
  for (const std::string& entry : allowed) {
    if (equalsIgnoreCase(origin, entry)) return true;
  }
  return false;
}

bool isJsonContentType(std::string_view content_type) {
  std::string_view media = trimmed(content_type.substr(0, content_type.find(';')));
  return equalsIgnoreCase(media, "application/json");
}

std::optional<std::string_view> bearerToken(std::string_view authorization) {
  std::string_view v = trimmed(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size() || !equalsIgnoreCase(v.substr(0, kScheme.size()), kScheme) ||
      (v[kScheme.size()] != ' ' && v[kScheme.size()] != '\t'))
    return std::nullopt;
  std::string_view token = trimmed(v.substr(kScheme.size()));
  if (token.empty()) return std::nullopt;
  return token;
}

bool tokenEquals(std::string_view expected, std::string_view presented) {
  // Every byte of `expected` is read; a missing byte of `presented` compares
  // as a mismatch without an early exit.
  unsigned diff = expected.size() == presented.size() ? 0u : 1u;
  for (size_t i = 0; i < expected.size(); ++i) {
    unsigned char p = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0u;
    diff |= static_cast<unsigned>(static_cast<unsigned char>(expected[i]) ^ p);
  }
  return diff == 0 && !expected.empty();
}

}  // namespace gw
