// test/plugins/test_plugin.cc — the plugins the loader tests load, one
// shared object per variant (GW_TEST_PLUGIN_VARIANT, set by BUILD.bazel).
// Each registers one pass-through frames filter, `test_filter_<variant>`
// (the duplicate variant registers variant 1's name), and exports a manifest
// that is right (GW_PLUGIN) or wrong in exactly one way (written by hand,
// as a plugin built against another SDK or toolchain would carry):
//   1 good             GW_PLUGIN("test_plugin_good", "1.0.0")
//   2 sdk_abi          sdk_abi_version is kSdkAbiVersion + 1
//   3 abi_tag          abi_tag is "gcc-1;cxx11abi=0;sanitizer=none"
//   4 no_manifest      no gw_plugin_manifest at all
//   5 duplicate        registers test_filter_1 (good's filter)
//   6 list_mismatch    the manifest lists a filter it does not register
//   7 gateway_major    built against gateway 999.0.0
//   8 undefined        calls a function nothing defines (dlopen fails)
//   9 other            GW_PLUGIN("test_plugin_other", "2.0.0"): a second good one
#include <memory>

#include "core/sdk/registry.h"

#define TP_STR2(x) #x
#define TP_STR(x) TP_STR2(x)

#if GW_TEST_PLUGIN_VARIANT == 5
#define TP_FILTER "test_filter_1"
#else
#define TP_FILTER "test_filter_" TP_STR(GW_TEST_PLUGIN_VARIANT)
#endif

#if GW_TEST_PLUGIN_VARIANT == 8
extern "C" void gw_test_symbol_nobody_defines();
#endif

namespace test_plugin {
namespace {

class PassFilter : public gw::Filter {
 public:
  gw::FilterStatus onFrame(gw::Frame&) override { return gw::FilterStatus::kContinue; }
};

class PassFactory : public gw::FilterFactory {
 public:
  PassFactory(std::shared_ptr<const gw::FilterConfig>, gw::WorkerContext&) {}
  std::unique_ptr<gw::Filter> createFilter() override { return std::make_unique<PassFilter>(); }
};

class PassConfigFactory : public gw::TypedFilterConfigFactory<gw::FilterConfig, PassFactory> {
 public:
  PassConfigFactory()
      : TypedFilterConfigFactory(TP_FILTER, gw::FilterTraits::frames(), R"({"type": "object"})") {
#if GW_TEST_PLUGIN_VARIANT == 8
    gw_test_symbol_nobody_defines();
#endif
  }
  std::shared_ptr<const gw::FilterConfig> parseConfig(const rapidjson::Value&,
                                                      gw::ParseContext&) const override {
    return std::make_shared<gw::FilterConfig>();
  }
};

GW_REGISTER_FILTER(PassConfigFactory);

}  // namespace
}  // namespace test_plugin

#if GW_TEST_PLUGIN_VARIANT == 1
GW_PLUGIN("test_plugin_good", "1.0.0");
#elif GW_TEST_PLUGIN_VARIANT == 5
GW_PLUGIN("test_plugin_duplicate", "1.0.0");
#elif GW_TEST_PLUGIN_VARIANT == 8
GW_PLUGIN("test_plugin_undefined", "1.0.0");
#elif GW_TEST_PLUGIN_VARIANT == 9
GW_PLUGIN("test_plugin_other", "2.0.0");
#elif GW_TEST_PLUGIN_VARIANT != 4

namespace {
#if GW_TEST_PLUGIN_VARIANT == 6
const char* const kListed[] = {TP_FILTER, "test_filter_not_registered"};
#else
const char* const kListed[] = {TP_FILTER};
#endif
#if GW_TEST_PLUGIN_VARIANT == 2
constexpr uint32_t kAbi = gw::kSdkAbiVersion + 1;
#else
constexpr uint32_t kAbi = gw::kSdkAbiVersion;
#endif
#if GW_TEST_PLUGIN_VARIANT == 3
constexpr const char* kTag = "gcc-1;cxx11abi=0;sanitizer=none";
#else
constexpr const char* kTag = gw::kAbiTag;
#endif
#if GW_TEST_PLUGIN_VARIANT == 7
constexpr const char* kBuiltFor = "999.0.0";
#else
constexpr const char* kBuiltFor = gw::kGatewayVersion;
#endif
}  // namespace

extern "C" __attribute__((visibility("default"))) const GwPluginManifest* gw_plugin_manifest() {
  static const GwPluginManifest manifest = {
      gw::kPluginManifestMagic, sizeof(GwPluginManifest), kAbi, kBuiltFor, kTag,
      "test_plugin_" TP_STR(GW_TEST_PLUGIN_VARIANT), "1.0.0", kListed,
      sizeof(kListed) / sizeof(kListed[0])};
  return &manifest;
}
#endif
