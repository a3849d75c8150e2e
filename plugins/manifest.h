// plugins/manifest.h — checks a plugin's manifest against the running gateway.
//
// Defines checkManifest(): the part of the loader's checks that needs only
// the manifest (core/sdk/plugin.h), not the registry. Each failure is one
// sentence saying what differs and what to do, without the file name (the
// loader prefixes it):
//   built for SDK ABI 3, this gateway has ABI 4: rebuild the plugin against
//   this gateway's SDK
//
// Gateway version policy: a plugin built against gateway version P loads
// into gateway G when P and G have the same major version (for 0.x, the
// same major and minor: in 0.x a minor release may break the SDK) and P is
// not newer than G. The SDK ABI version and the ABI tag must be equal.
#pragma once

#include <string>

#include "core/sdk/plugin.h"

namespace gw {
namespace plugins {

// What this gateway is: the values a plugin's manifest is compared with.
struct GatewayIdentity {
  uint32_t sdk_abi_version;
  std::string gateway_version;
  std::string abi_tag;
};

// This gateway's identity (kSdkAbiVersion, kGatewayVersion, kAbiTag as the
// gateway itself was compiled).
GatewayIdentity thisGateway();

// Empty if `m` (read from a loaded plugin; may be nullptr) may be used by
// `gateway`, else why not. Checks, in this order: present, magic, size,
// SDK ABI version, ABI tag, gateway version, non-empty name and version.
// Reads no field before the ones that vouch for it (magic and size first).
std::string checkManifest(const GwPluginManifest* m, const GatewayIdentity& gateway);

// Empty if a plugin built against gateway version `plugin` may load into
// gateway version `gateway` (see the banner), else why not.
std::string checkGatewayVersion(const std::string& plugin, const std::string& gateway);

}  // namespace plugins
}  // namespace gw
