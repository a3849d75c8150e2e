// core/sdk/plugin.h — the manifest every plugin shared object exports.
//
// Defines GwPluginManifest (a C struct whose layout never changes: fields are
// only appended, and manifest_size says which are there), kAbiTag (the
// compiler, standard-library ABI and sanitizer build a translation unit was
// compiled with) and GW_PLUGIN(name, version), the manifest itself. A plugin
// built with gateway_plugin() (tools/bazel/gateway.bzl) gets it written by
// the macro, in a generated source only the shared object links — so the
// same filter library can also be compiled into a gateway next to other
// plugins' libraries. A plugin built by other means writes it once, in one
// .cc file of the shared object only:
//
//   GW_PLUGIN("msg_filter", "1.0.0");
//
// It exports `extern "C" const GwPluginManifest* gw_plugin_manifest()`. The
// loader (plugins/loader.h) reads it after dlopen and refuses the plugin —
// with the file and what differs — unless the SDK ABI version, the ABI tag
// and the gateway version agree with the running gateway's, and the filters
// the plugin registered are exactly the ones the manifest lists. The filter
// list is filled in by GW_REGISTER_FILTER: each registration in this shared
// object appends its name (the list is local to the object, so a plugin
// lists only its own filters). A built-in filter compiled into the gateway
// needs no GW_PLUGIN.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/sdk/version.h"

#define GW_PLUGIN_STR2(x) #x
#define GW_PLUGIN_STR(x) GW_PLUGIN_STR2(x)

#if defined(__clang__)
#define GW_PLUGIN_COMPILER "clang-" GW_PLUGIN_STR(__clang_major__)
#elif defined(__GNUC__)
#define GW_PLUGIN_COMPILER "gcc-" GW_PLUGIN_STR(__GNUC__)
#else
#define GW_PLUGIN_COMPILER "unknown"
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GW_PLUGIN_SANITIZER "asan"
#elif __has_feature(thread_sanitizer)
#define GW_PLUGIN_SANITIZER "tsan"
#endif
#endif
#ifndef GW_PLUGIN_SANITIZER
#if defined(__SANITIZE_ADDRESS__)
#define GW_PLUGIN_SANITIZER "asan"
#elif defined(__SANITIZE_THREAD__)
#define GW_PLUGIN_SANITIZER "tsan"
#else
#define GW_PLUGIN_SANITIZER "none"
#endif
#endif

#if defined(_GLIBCXX_USE_CXX11_ABI)
#define GW_PLUGIN_CXX11_ABI GW_PLUGIN_STR(_GLIBCXX_USE_CXX11_ABI)
#else
#define GW_PLUGIN_CXX11_ABI "n/a"
#endif

namespace gw {

// "gcc-12;cxx11abi=1;sanitizer=none": what a translation unit was compiled
// with. The gateway's own value and a plugin's must be equal.
inline constexpr const char* kAbiTag =
    GW_PLUGIN_COMPILER ";cxx11abi=" GW_PLUGIN_CXX11_ABI ";sanitizer=" GW_PLUGIN_SANITIZER;

// "GWPM": the first four bytes of every manifest.
inline constexpr uint32_t kPluginManifestMagic = 0x4d505747;

// The names GW_REGISTER_FILTER registered in this shared object (or, in the
// gateway binary, in the binary). Hidden visibility: each shared object has
// its own list, never merged with the gateway's by the dynamic linker.
__attribute__((visibility("hidden"))) inline std::vector<std::string>& localFilterNames() {
  static std::vector<std::string> names;
  return names;
}

}  // namespace gw

extern "C" {

// A plugin's manifest. Layout is fixed: new fields are only appended.
struct GwPluginManifest {
  uint32_t magic;              // kPluginManifestMagic
  uint32_t manifest_size;      // sizeof(GwPluginManifest) the plugin was built with
  uint32_t sdk_abi_version;    // kSdkAbiVersion the plugin was built with
  const char* gateway_version; // kGatewayVersion the plugin was built with
  const char* abi_tag;         // kAbiTag the plugin was built with
  const char* name;            // the plugin's name: its identity across reloads
  const char* version;         // the plugin's own version
  const char* const* filters;  // the filter names it registered
  size_t filter_count;
};

}  // extern "C"

// Exports the manifest of the shared object it is written in. Once per
// plugin, at namespace scope, outside any namespace.
#define GW_PLUGIN(plugin_name, plugin_version)                                          \
  extern "C" __attribute__((visibility("default"))) const GwPluginManifest*           \
  gw_plugin_manifest() {                                                               \
    static std::vector<const char*> filters = [] {                                     \
      std::vector<const char*> v;                                                      \
      for (const auto& n : ::gw::localFilterNames()) v.push_back(n.c_str());           \
      return v;                                                                        \
    }();                                                                               \
    static const GwPluginManifest manifest = {                                         \
        ::gw::kPluginManifestMagic, sizeof(GwPluginManifest), ::gw::kSdkAbiVersion,    \
        ::gw::kGatewayVersion,      ::gw::kAbiTag,             plugin_name,            \
        plugin_version,             filters.data(),            filters.size()};        \
    return &manifest;                                                                  \
  }                                                                                    \
  static_assert(true, "")
