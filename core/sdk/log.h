// core/sdk/log.h — the gateway's leveled logger (spdlog, from Debian).
//
// GW_LOG(info, "listening on {}", addr) writes one line to stderr with time,
// level and thread. Set the level with gw::log::setLevel("debug").
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace gw {
namespace log {

// Returns the process-wide logger (created on first use, thread-safe).
spdlog::logger& get();

// Sets the minimum level by name: trace, debug, info, warn, error, off.
// Returns false (level unchanged) for an unknown name.
bool setLevel(std::string_view level);

}  // namespace log
}  // namespace gw

#define GW_LOG(level, ...) ::gw::log::get().level(__VA_ARGS__)
