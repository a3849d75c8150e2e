// core/sdk/duration.h — durations written as strings in config ("5m", "30s").
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace gw {
namespace config {

// JSON Schema fragment every duration field uses.
inline constexpr std::string_view kDurationPattern = "^[0-9]+(ms|s|m|h)$";

// Parses "<digits><unit>" with unit ms, s, m or h. Returns nullopt for
// anything else (including overflow past 30 days).
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);

}  // namespace config
}  // namespace gw
