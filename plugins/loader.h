// plugins/loader.h — loads plugin shared objects, checked, for the runtime.
//
// Defines LoadedPlugin and PluginLoader. A plugin is a shared object (Bazel
// cc_binary with linkshared = True, built against //core/sdk:headers) whose
// static initializers register filters with GW_REGISTER_FILTER and which
// exports a manifest with GW_PLUGIN (core/sdk/plugin.h). The runtime owns
// one PluginLoader for the process: main() loads the config's "plugins"
// through it at start and in --check-config / --list-filters, the server on
// each SIGHUP reload (config::loadFile takes it), always before filters are
// resolved. See docs/plugins.md.
//
// load() refuses — with "PATH: what differs: what to do" — a file it cannot
// read, a dlopen error (undefined symbol, not an ELF object, ...), a missing
// gw_plugin_manifest symbol, a manifest that does not match this gateway
// (plugins/manifest.h: magic, size, SDK ABI version, ABI tag, gateway
// version, empty name or version), filters registered that differ from the
// manifest's list, a filter name that is already registered, and (reload)
// a plugin name already loaded from another path or from a file whose
// bytes changed since. The filters of a refused plugin never become visible
// (the registry stages them). A refused object is never dlclose()d: its
// ABI may not be ours, so running its destructors is not safe; it stays
// mapped (leaked) until the process exits, and the loader remembers the
// refusal so loading the same path again answers the same way.
//
// One per process (what dlopen() has mapped is per process; a second loader
// would not see the first one's plugins). Not thread-safe: the main thread
// loads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gw {
namespace plugins {

// A plugin the loader accepted. Lives until the process exits.
struct LoadedPlugin {
  std::string name;     // the manifest's name: the plugin's identity across reloads
  std::string version;  // the manifest's version
  std::string path;     // the file as the config names it
  uint64_t digest = 0;  // FNV-1a-64 of the file's bytes when it was loaded
  std::vector<std::string> filters;  // the filter names it registered
};

class PluginLoader {
 public:
  PluginLoader() = default;
  PluginLoader(const PluginLoader&) = delete;
  PluginLoader& operator=(const PluginLoader&) = delete;

  // Loads the plugin at `path` (a path without '/' is taken relative to the
  // working directory, never searched for) and registers its filters, or
  // finds it already loaded from this very file (same path, same bytes).
  // Logs every load at info. Returns the plugin, or nullptr with *error set.
  const LoadedPlugin* load(const std::string& path, std::string* error);

  // The accepted plugins, in load order.
  std::vector<const LoadedPlugin*> plugins() const;
  // The plugin that registered filter `name`, or nullptr (built in, or unknown).
  const LoadedPlugin* pluginOf(std::string_view filter) const;

 private:
  // Checks and registers a freshly dlopen()ed object (staging is on).
  // Returns the plugin, or nullptr with *error set (the caller discards).
  const LoadedPlugin* accept(void* handle, const std::string& path, uint64_t digest,
                             std::string* error);
  const LoadedPlugin* byName(const std::string& name) const;
  const LoadedPlugin* byPath(const std::string& path) const;

  std::vector<std::unique_ptr<LoadedPlugin>> plugins_;
  // A path whose object was mapped but refused: the refusal, and the
  // file's digest then.
  struct Refusal {
    std::string why;
    uint64_t digest;
  };
  std::map<std::string, Refusal> refused_;
};

}  // namespace plugins
}  // namespace gw
