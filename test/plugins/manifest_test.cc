// Tests of plugins/manifest.h: the gateway version policy and the manifest
// checks that a built plugin cannot easily exercise (magic, size, empty
// name or version), each with its message.
#include "plugins/manifest.h"

#include <gtest/gtest.h>

namespace gw {
namespace plugins {
namespace {

GwPluginManifest goodManifest() {
  static const char* const kFilters[] = {"f"};
  return {kPluginManifestMagic, sizeof(GwPluginManifest), 4, "1.4.2", "gcc-12;cxx11abi=1",
          "p", "1.0.0", kFilters, 1};
}

const GatewayIdentity kGateway{4, "1.4.2", "gcc-12;cxx11abi=1"};

TEST(ManifestTest, MatchingManifestPasses) {
  GwPluginManifest m = goodManifest();
  EXPECT_EQ(checkManifest(&m, kGateway), "");
}

TEST(ManifestTest, ThisGatewayIsWhatItWasCompiledWith) {
  GatewayIdentity g = thisGateway();
  EXPECT_EQ(g.sdk_abi_version, kSdkAbiVersion);
  EXPECT_EQ(g.gateway_version, kGatewayVersion);
  EXPECT_EQ(g.abi_tag, kAbiTag);
}

TEST(ManifestTest, NoManifestBadMagicOrShortSizeAreRefused) {
  EXPECT_EQ(checkManifest(nullptr, kGateway), "gw_plugin_manifest() returned no manifest");
  GwPluginManifest m = goodManifest();
  m.magic = 0x12345678;
  EXPECT_EQ(checkManifest(&m, kGateway),
            "the manifest's magic is 0x12345678, not \"GWPM\": not a gateway plugin manifest "
            "(is the plugin built with GW_PLUGIN?)");
  m = goodManifest();
  m.manifest_size = 16;
  EXPECT_EQ(checkManifest(&m, kGateway),
            "the manifest is 16 bytes, this gateway reads " +
                std::to_string(sizeof(GwPluginManifest)) +
                ": rebuild the plugin against this gateway's SDK");
}

TEST(ManifestTest, EmptyNameOrVersionIsRefused) {
  GwPluginManifest m = goodManifest();
  m.name = "";
  EXPECT_EQ(checkManifest(&m, kGateway),
            "the manifest has an empty plugin name: GW_PLUGIN(\"name\", ...)");
  m = goodManifest();
  m.version = nullptr;
  EXPECT_EQ(checkManifest(&m, kGateway),
            "plugin 'p' has an empty version in its manifest: GW_PLUGIN(..., \"1.0.0\")");
}

TEST(ManifestTest, GatewayVersionPolicy) {
  // Same major, not newer: loads.
  EXPECT_EQ(checkGatewayVersion("1.4.2", "1.4.2"), "");
  EXPECT_EQ(checkGatewayVersion("1.0.0", "1.4.2"), "");
  EXPECT_EQ(checkGatewayVersion("0.2.0", "0.2.5"), "");
  // Another major (for 0.x, another minor).
  EXPECT_EQ(checkGatewayVersion("2.0.0", "1.4.2"),
            "built against gateway 2.0.0, this gateway is 1.4.2: a plugin must be built against "
            "the same major version as the gateway: rebuild the plugin against this gateway's "
            "SDK");
  EXPECT_EQ(checkGatewayVersion("0.1.0", "0.2.0"),
            "built against gateway 0.1.0, this gateway is 0.2.0: a plugin must be built against "
            "the same 0.MINOR version as the gateway: rebuild the plugin against this gateway's "
            "SDK");
  // Newer than the gateway.
  EXPECT_EQ(checkGatewayVersion("1.5.0", "1.4.2"),
            "built against gateway 1.5.0, newer than this gateway (1.4.2): upgrade the gateway "
            "or rebuild the plugin against this gateway's SDK");
  EXPECT_EQ(checkGatewayVersion("1.4", "1.4.2"),
            "built against gateway version '1.4', which is not MAJOR.MINOR.PATCH: rebuild the "
            "plugin against this gateway's SDK");
}

}  // namespace
}  // namespace plugins
}  // namespace gw
