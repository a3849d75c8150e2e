#include "plugins/loader.h"

#include <dlfcn.h>

#include <algorithm>

#include "core/sdk/log.h"
#include "core/sdk/plugin.h"
#include "core/sdk/registry.h"
#include "plugins/digest.h"
#include "plugins/manifest.h"

namespace gw {
namespace plugins {
namespace {

std::string quoted(std::vector<std::string> names) {
  if (names.empty()) return "none";
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out;
}

std::string joinedPlain(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

constexpr char kRestart[] = ": restart the gateway to load it";

}  // namespace

const LoadedPlugin* PluginLoader::load(const std::string& path, std::string* error) {
  auto fail = [&](const std::string& why) -> const LoadedPlugin* {
    *error = path + ": " + why;
    return nullptr;
  };
  // dlopen() searches the library path for a name without '/'.
  std::string file = path.find('/') == std::string::npos ? "./" + path : path;
  std::string why;
  std::optional<uint64_t> digest = fileDigest(file, &why);
  if (!digest) return fail("cannot read the plugin file: " + why);
  // dlopen() of a path already loaded returns the object mapped then, even
  // if the file was replaced since: compare the bytes before it.
  if (const LoadedPlugin* p = byPath(path)) {
    if (p->digest == *digest) return p;
    return fail("the file changed since plugin '" + p->name + "' " + p->version +
                " was loaded from it (content hash " + hex64(p->digest) + ", now " +
                hex64(*digest) + "); a running gateway cannot replace a plugin's code" + kRestart);
  }
  if (auto it = refused_.find(path); it != refused_.end()) {
    if (it->second.digest == *digest) return fail(it->second.why);
    return fail("the file changed since it was refused (the refused object stays mapped)" +
                std::string(kRestart));
  }
  FilterRegistry& registry = FilterRegistry::get();
  registry.beginStaging();
  dlerror();
  void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (handle == nullptr) {
    registry.discardStaging();
    const char* dl = dlerror();
    return fail(std::string("cannot load the shared object: ") + (dl ? dl : "unknown error"));
  }
  const LoadedPlugin* plugin = accept(handle, path, *digest, &why);
  if (plugin == nullptr) {
    // Never dlclose(): see the header. Remembered, because dlopen() of this
    // path would now return the mapped object without registering again.
    registry.discardStaging();
    refused_[path] = {why, *digest};
    return fail(why);
  }
  registry.commitStaging();
  GW_LOG(info, "plugin '{}' {} loaded from {} (filters: {})", plugin->name, plugin->version,
         plugin->path, joinedPlain(plugin->filters));
  return plugin;
}

const LoadedPlugin* PluginLoader::accept(void* handle, const std::string& path, uint64_t digest,
                                         std::string* error) {
  using ManifestFn = const GwPluginManifest* (*)();
  dlerror();
  auto fn = reinterpret_cast<ManifestFn>(dlsym(handle, "gw_plugin_manifest"));
  if (fn == nullptr) {
    *error =
        "no gw_plugin_manifest symbol: not a gateway plugin, or built without GW_PLUGIN(name, "
        "version) (core/sdk/plugin.h): add it to one of the plugin's .cc files and rebuild";
    return nullptr;
  }
  const GwPluginManifest* m = fn();
  *error = checkManifest(m, thisGateway());
  if (!error->empty()) return nullptr;
  std::string name = m->name;
  if (const LoadedPlugin* old = byName(name)) {
    *error = "plugin '" + name + "' is already loaded from " + old->path + " (version " +
             old->version + "); a running gateway cannot load it again from another file" +
             kRestart;
    return nullptr;
  }
  std::vector<std::string> listed(m->filters, m->filters + m->filter_count);
  FilterRegistry::Staged staged = FilterRegistry::get().staged();
  std::vector<std::string> a = listed, b = staged.names;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  if (a != b) {
    *error = "plugin '" + name + "': its manifest lists filters " + quoted(listed) +
             ", but it registered " + quoted(staged.names) +
             ": build the manifest with GW_PLUGIN in the same shared object as its "
             "GW_REGISTER_FILTERs";
    return nullptr;
  }
  for (const auto& dup : staged.duplicates) {
    const LoadedPlugin* owner = pluginOf(dup);
    std::string by = owner == nullptr ? "a filter built into the gateway (or registered twice "
                                        "by this plugin)"
                                      : "plugin '" + owner->name + "' from " + owner->path;
    *error = "plugin '" + name + "' registers filter '" + dup + "', which is already " +
             "registered by " + by + ": rename the plugin's filter (filter names must be unique)";
    return nullptr;
  }
  auto plugin = std::make_unique<LoadedPlugin>();
  plugin->name = name;
  plugin->version = m->version;
  plugin->path = path;
  plugin->digest = digest;
  plugin->filters = staged.names;
  plugins_.push_back(std::move(plugin));
  error->clear();
  return plugins_.back().get();
}

std::vector<const LoadedPlugin*> PluginLoader::plugins() const {
  std::vector<const LoadedPlugin*> out;
  for (const auto& p : plugins_) out.push_back(p.get());
  return out;
}

const LoadedPlugin* PluginLoader::pluginOf(std::string_view filter) const {
  for (const auto& p : plugins_)
    for (const auto& f : p->filters)
      if (f == filter) return p.get();
  return nullptr;
}

const LoadedPlugin* PluginLoader::byName(const std::string& name) const {
  for (const auto& p : plugins_)
    if (p->name == name) return p.get();
  return nullptr;
}

const LoadedPlugin* PluginLoader::byPath(const std::string& path) const {
  for (const auto& p : plugins_)
    if (p->path == path) return p.get();
  return nullptr;
}

}  // namespace plugins
}  // namespace gw
