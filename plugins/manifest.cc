#include "plugins/manifest.h"

#include <cstdio>
#include <tuple>

namespace gw {
namespace plugins {
namespace {

struct Version {
  unsigned major = 0, minor = 0, patch = 0;
};

bool parseVersion(const std::string& s, Version* v) {
  char tail = 0;
  return std::sscanf(s.c_str(), "%u.%u.%u%c", &v->major, &v->minor, &v->patch, &tail) == 3;
}

std::string str(const char* s) { return s == nullptr ? "" : s; }

constexpr char kRebuild[] = ": rebuild the plugin against this gateway's SDK";

}  // namespace

GatewayIdentity thisGateway() { return {kSdkAbiVersion, kGatewayVersion, kAbiTag}; }

std::string checkGatewayVersion(const std::string& plugin, const std::string& gateway) {
  Version p, g;
  if (!parseVersion(plugin, &p))
    return "built against gateway version '" + plugin + "', which is not MAJOR.MINOR.PATCH" +
           kRebuild;
  if (!parseVersion(gateway, &g)) return "this gateway's version '" + gateway + "' is malformed";
  bool same_line = p.major == g.major && (g.major != 0 || p.minor == g.minor);
  if (!same_line) {
    return "built against gateway " + plugin + ", this gateway is " + gateway +
           ": a plugin must be built against the same " +
           (g.major == 0 ? "0.MINOR" : "major") + " version as the gateway" + kRebuild;
  }
  if (std::tie(p.major, p.minor, p.patch) > std::tie(g.major, g.minor, g.patch)) {
    return "built against gateway " + plugin + ", newer than this gateway (" + gateway +
           "): upgrade the gateway or rebuild the plugin against this gateway's SDK";
  }
  return "";
}

std::string checkManifest(const GwPluginManifest* m, const GatewayIdentity& gateway) {
  if (m == nullptr) return "gw_plugin_manifest() returned no manifest";
  if (m->magic != kPluginManifestMagic) {
    char got[16];
    std::snprintf(got, sizeof(got), "0x%08x", m->magic);
    return std::string("the manifest's magic is ") + got +
           ", not \"GWPM\": not a gateway plugin manifest (is the plugin built with GW_PLUGIN?)";
  }
  if (m->manifest_size < sizeof(GwPluginManifest)) {
    return "the manifest is " + std::to_string(m->manifest_size) + " bytes, this gateway reads " +
           std::to_string(sizeof(GwPluginManifest)) + kRebuild;
  }
  if (m->sdk_abi_version != gateway.sdk_abi_version) {
    return "built for SDK ABI " + std::to_string(m->sdk_abi_version) +
           ", this gateway has ABI " + std::to_string(gateway.sdk_abi_version) + kRebuild;
  }
  if (str(m->abi_tag) != gateway.abi_tag) {
    return "built with ABI tag '" + str(m->abi_tag) + "', this gateway has '" + gateway.abi_tag +
           "' (compiler major version, _GLIBCXX_USE_CXX11_ABI and sanitizer must match)" +
           kRebuild + " with the gateway's toolchain and build config";
  }
  std::string version = checkGatewayVersion(str(m->gateway_version), gateway.gateway_version);
  if (!version.empty()) return version;
  if (str(m->name).empty()) return "the manifest has an empty plugin name: GW_PLUGIN(\"name\", ...)";
  if (str(m->version).empty())
    return "plugin '" + str(m->name) +
           "' has an empty version in its manifest: GW_PLUGIN(..., \"1.0.0\")";
  if (m->filter_count > 0 && m->filters == nullptr)
    return "the manifest lists " + std::to_string(m->filter_count) + " filters but no names";
  return "";
}

}  // namespace plugins
}  // namespace gw
