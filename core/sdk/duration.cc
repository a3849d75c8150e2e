#include "core/sdk/duration.h"

#include <cstdint>

namespace gw {
namespace config {

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    value = value * 10 + static_cast<uint64_t>(text[i] - '0');
    if (value > 30ull * 24 * 3600 * 1000) return std::nullopt;
    ++i;
  }
  if (i == 0) return std::nullopt;
  std::string_view unit = text.substr(i);
  uint64_t ms;
  if (unit == "ms") {
    ms = value;
  } else if (unit == "s") {
    ms = value * 1000;
  } else if (unit == "m") {
    ms = value * 60 * 1000;
  } else if (unit == "h") {
    ms = value * 3600 * 1000;
  } else {
    return std::nullopt;
  }
  if (ms > 30ull * 24 * 3600 * 1000) return std::nullopt;
  return std::chrono::milliseconds(ms);
}

}  // namespace config
}  // namespace gw
