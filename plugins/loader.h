// plugins/loader.h — loads custom filters from shared objects at start.
//
// A plugin is a shared object (Bazel cc_binary with linkshared = True) whose
// static initializers call GW_REGISTER_FILTER. The config's "plugins" list
// names them; they are loaded before filters are resolved, so their names
// can be used in chains. See docs/writing-a-filter.md.
#pragma once

#include <string>

namespace gw {
namespace plugins {

// dlopen()s `path` (RTLD_NOW | RTLD_GLOBAL) once; loading the same path
// again is a no-op. Returns false and sets *error if it cannot be loaded.
bool load(const std::string& path, std::string* error);

}  // namespace plugins
}  // namespace gw
