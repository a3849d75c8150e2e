// tools/loadgen/tool_flags.h — command-line value parsers shared by the test tools.
//
// Defines parseDurationNs ("100ms", "1.5s", "0"), parseUint and parseRate, used by
// loadgen and backend_sim to read their flags. Pure functions, no allocation.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace gw {
namespace tools {

// Parses a duration: a non-negative decimal number ("1", "2.5") followed by one of the units
// ns, us, ms, s, m, h. "0" without a unit means zero. Returns nanoseconds, or nullopt for
// anything else, including values above 30 days.
inline std::optional<int64_t> parseDurationNs(std::string_view text) {
  if (text == "0") return 0;
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  if (i == 0 || i == text.size()) return std::nullopt;
  std::string number(text.substr(0, i));
  char* end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !(value >= 0)) return std::nullopt;
  std::string_view unit = text.substr(i);
  double scale;
  if (unit == "ns") {
    scale = 1;
  } else if (unit == "us") {
    scale = 1e3;
  } else if (unit == "ms") {
    scale = 1e6;
  } else if (unit == "s") {
    scale = 1e9;
  } else if (unit == "m") {
    scale = 60e9;
  } else if (unit == "h") {
    scale = 3600e9;
  } else {
    return std::nullopt;
  }
  double ns = value * scale;
  if (ns > 30.0 * 24 * 3600 * 1e9) return std::nullopt;
  return static_cast<int64_t>(std::llround(ns));
}

// Parses an unsigned decimal integer no greater than `max`. Returns nullopt for an empty string,
// any non-digit, or a value above `max`.
inline std::optional<uint64_t> parseUint(std::string_view text, uint64_t max) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > max / 10 || (v == max / 10 && d > max % 10)) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

// Parses a non-negative rate such as "5000", "2.5" or "100/s" (a trailing "/s" is allowed).
// Returns events per second, or nullopt if malformed.
inline std::optional<double> parseRate(std::string_view text) {
  if (text.size() > 2 && text.substr(text.size() - 2) == "/s") text.remove_suffix(2);
  if (text.empty()) return std::nullopt;
  std::string s(text);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !(v >= 0) || std::isinf(v)) return std::nullopt;
  return v;
}

}  // namespace tools
}  // namespace gw
