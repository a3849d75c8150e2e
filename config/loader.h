// config/loader.h — loads and validates a gateway config file.
//
// Every error names the file and the JSON pointer of the offending value,
// and says how to fix it where it can:
//   gateway.json: /listeners/0/filters/1/config/max_frame_bytes: must be an integer ≥ 1, got "abc"
//   gateway.json: /listeners/0/filters/1: filter #2 'session' consumes frames, but no filter
//     before it produces frames: add 'framing' before it
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace gw {
namespace config {

struct LoadResult {
  std::unique_ptr<GatewayConfig> config;  // null when errors is not empty
  std::vector<std::string> errors;        // each "file: /pointer: message"
};

// Reads `path` and loads it. Plugins listed in the file are loaded
// (dlopen) before filters are resolved.
LoadResult loadFile(const std::string& path);

// Loads config from JSON text; `source` names it in errors.
LoadResult loadString(std::string_view json, const std::string& source);

}  // namespace config
}  // namespace gw
