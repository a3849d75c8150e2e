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
#include "plugins/loader.h"

namespace gw {
namespace config {

struct LoadResult {
  std::unique_ptr<GatewayConfig> config;  // null when errors is not empty
  std::vector<std::string> errors;        // each "file: /pointer: message"
};

// Reads `path` and loads it. The shared objects its "plugins" list names
// are loaded through `plugins` — the runtime's loader, which does the
// dlopen and the checks (plugins/loader.h) — before filters are resolved;
// a refusal is an error at "/plugins/N". Parsing itself never loads code:
// with `plugins` null, a non-empty "plugins" list is an error.
LoadResult loadFile(const std::string& path, plugins::PluginLoader* plugins = nullptr);

// Loads config from JSON text; `source` names it in errors. `plugins` as
// for loadFile().
LoadResult loadString(std::string_view json, const std::string& source,
                      plugins::PluginLoader* plugins = nullptr);

// For `gateway --list-filters --config FILE`: reads `path` and loads only
// the shared objects its "plugins" list names, through `plugins` (so their
// filters can be listed even when the rest of the file has errors).
// Returns the errors ("file: /plugins/N: message"), empty if all loaded.
std::vector<std::string> loadPluginsOf(const std::string& path, plugins::PluginLoader& plugins);

}  // namespace config
}  // namespace gw
