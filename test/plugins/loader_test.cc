// Tests of gw::plugins::PluginLoader (plugins/loader.h) against real shared
// objects (test_plugin.cc's variants): a good plugin loads once and its
// filter is registered; each refusal — missing file, dlopen error, missing
// manifest, SDK ABI, ABI tag, gateway version, manifest vs registered
// filters, duplicate filter name, a loaded plugin from a new path or a
// changed file — gives its message, and the refused plugin's filters never
// become visible.
#include "plugins/loader.h"

#include <gtest/gtest.h>
#include <stdio.h>

#include <fstream>
#include <sstream>
#include <string>

#include "core/sdk/plugin.h"
#include "core/sdk/registry.h"
#include "test/harness/runfiles.h"

namespace gw {
namespace plugins {
namespace {

std::string plugin(const std::string& variant) {
  return test::runfile("test/plugins/test_plugin_" + variant + ".so");
}

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A copy of `from` at a new temp path (a new inode, as a fresh build is).
std::string copyOf(const std::string& from) {
  return test::writeTempFile(readAll(from), "plugin-", ".so");
}

// Replaces the file at `path` with `from`'s bytes the way an install must
// (write aside, rename over): a mapped file is never overwritten in place.
void replaceWith(const std::string& path, const std::string& from) {
  std::string aside = copyOf(from);
  ASSERT_EQ(::rename(aside.c_str(), path.c_str()), 0);
}

// The process's loader: as in the gateway, one per process (what dlopen()
// has mapped is per process), shared by every test here.
PluginLoader& theLoader() {
  static PluginLoader* loader = new PluginLoader();
  return *loader;
}

// Loads `path`, expects a refusal, returns its message.
std::string refusal(PluginLoader& loader, const std::string& path) {
  std::string error;
  EXPECT_EQ(loader.load(path, &error), nullptr) << path;
  return error;
}

constexpr char kRebuild[] = ": rebuild the plugin against this gateway's SDK";

TEST(PluginLoaderTest, GoodPluginLoadsOnceAndRegistersItsFilter) {
  PluginLoader& loader = theLoader();
  std::string error;
  const LoadedPlugin* p = loader.load(plugin("good"), &error);
  ASSERT_NE(p, nullptr) << error;
  EXPECT_EQ(p->name, "test_plugin_good");
  EXPECT_EQ(p->version, "1.0.0");
  EXPECT_EQ(p->path, plugin("good"));
  EXPECT_EQ(p->filters, (std::vector<std::string>{"test_filter_1"}));
  EXPECT_NE(FilterRegistry::get().find("test_filter_1"), nullptr);
  EXPECT_EQ(loader.pluginOf("test_filter_1"), p);
  // The same file again (a reload with the same plugin set): the same plugin.
  EXPECT_EQ(loader.load(plugin("good"), &error), p);
  EXPECT_TRUE(FilterRegistry::get().errors().empty());
}

TEST(PluginLoaderTest, MissingFileIsRefused) {
  PluginLoader& loader = theLoader();
  EXPECT_EQ(refusal(loader, "/nonexistent/plugin.so"),
            "/nonexistent/plugin.so: cannot read the plugin file: No such file or directory");
}

TEST(PluginLoaderTest, NotASharedObjectIsRefused) {
  PluginLoader& loader = theLoader();
  std::string path = test::writeTempFile("not an ELF file", "plugin-", ".so");
  std::string e = refusal(loader, path);
  EXPECT_EQ(e.rfind(path + ": cannot load the shared object: ", 0), 0u) << e;
}

TEST(PluginLoaderTest, UndefinedSymbolIsRefusedAndNothingRegistered) {
  PluginLoader& loader = theLoader();
  std::string e = refusal(loader, plugin("undefined"));
  EXPECT_EQ(e.rfind(plugin("undefined") + ": cannot load the shared object: ", 0), 0u) << e;
  EXPECT_NE(e.find("undefined symbol: gw_test_symbol_nobody_defines"), std::string::npos) << e;
  EXPECT_EQ(FilterRegistry::get().find("test_filter_8"), nullptr);
}

TEST(PluginLoaderTest, MissingManifestSymbolIsRefused) {
  PluginLoader& loader = theLoader();
  EXPECT_EQ(refusal(loader, plugin("no_manifest")),
            plugin("no_manifest") +
                ": no gw_plugin_manifest symbol: not a gateway plugin, or built without "
                "GW_PLUGIN(name, version) (core/sdk/plugin.h): add it to one of the plugin's "
                ".cc files and rebuild");
  EXPECT_EQ(FilterRegistry::get().find("test_filter_4"), nullptr);
}

TEST(PluginLoaderTest, SdkAbiMismatchIsRefusedAndItsFiltersNeverVisible) {
  PluginLoader& loader = theLoader();
  std::string expected = plugin("sdk_abi") + ": built for SDK ABI " +
                         std::to_string(kSdkAbiVersion + 1) + ", this gateway has ABI " +
                         std::to_string(kSdkAbiVersion) + kRebuild;
  EXPECT_EQ(refusal(loader, plugin("sdk_abi")), expected);
  EXPECT_EQ(FilterRegistry::get().find("test_filter_2"), nullptr);
  EXPECT_TRUE(FilterRegistry::get().errors().empty());
  // Again (the object stays mapped): the same answer, not a confusing one.
  EXPECT_EQ(refusal(loader, plugin("sdk_abi")), expected);
  EXPECT_EQ(loader.pluginOf("test_filter_2"), nullptr);
}

TEST(PluginLoaderTest, AbiTagMismatchIsRefused) {
  PluginLoader& loader = theLoader();
  EXPECT_EQ(refusal(loader, plugin("abi_tag")),
            plugin("abi_tag") + ": built with ABI tag 'gcc-1;cxx11abi=0;sanitizer=none', this "
                                "gateway has '" + std::string(kAbiTag) +
                "' (compiler major version, _GLIBCXX_USE_CXX11_ABI and sanitizer must match)" +
                kRebuild + " with the gateway's toolchain and build config");
  EXPECT_EQ(FilterRegistry::get().find("test_filter_3"), nullptr);
}

TEST(PluginLoaderTest, OtherGatewayMajorVersionIsRefused) {
  PluginLoader& loader = theLoader();
  std::string e = refusal(loader, plugin("gateway_major"));
  EXPECT_EQ(e.rfind(plugin("gateway_major") + ": built against gateway 999.0.0, this gateway is " +
                        kGatewayVersion + ": a plugin must be built against the same ",
                    0),
            0u)
      << e;
  EXPECT_EQ(FilterRegistry::get().find("test_filter_7"), nullptr);
}

TEST(PluginLoaderTest, ManifestListingOtherFiltersIsRefused) {
  PluginLoader& loader = theLoader();
  EXPECT_EQ(refusal(loader, plugin("list_mismatch")),
            plugin("list_mismatch") +
                ": plugin 'test_plugin_6': its manifest lists filters 'test_filter_6', "
                "'test_filter_not_registered', but it registered 'test_filter_6': build the "
                "manifest with GW_PLUGIN in the same shared object as its GW_REGISTER_FILTERs");
  EXPECT_EQ(FilterRegistry::get().find("test_filter_6"), nullptr);
}

TEST(PluginLoaderTest, DuplicateFilterNameIsRefusedAndTheFirstKept) {
  PluginLoader& loader = theLoader();
  std::string error;
  ASSERT_NE(loader.load(plugin("good"), &error), nullptr) << error;
  const FilterConfigFactory* first = FilterRegistry::get().find("test_filter_1");
  EXPECT_EQ(refusal(loader, plugin("duplicate")),
            plugin("duplicate") +
                ": plugin 'test_plugin_duplicate' registers filter 'test_filter_1', which is "
                "already registered by plugin 'test_plugin_good' from " +
                plugin("good") + ": rename the plugin's filter (filter names must be unique)");
  EXPECT_EQ(FilterRegistry::get().find("test_filter_1"), first);
  EXPECT_TRUE(FilterRegistry::get().errors().empty());
  EXPECT_EQ(loader.pluginOf("test_filter_1")->name, "test_plugin_good");
}

TEST(PluginLoaderTest, LoadedPluginFromANewPathNeedsARestartAndPoisonsNothing) {
  PluginLoader& loader = theLoader();
  std::string error;
  ASSERT_NE(loader.load(plugin("good"), &error), nullptr) << error;
  std::string copy = copyOf(plugin("good"));
  EXPECT_EQ(refusal(loader, copy),
            copy + ": plugin 'test_plugin_good' is already loaded from " + plugin("good") +
                " (version 1.0.0); a running gateway cannot load it again from another file: "
                "restart the gateway to load it");
  EXPECT_TRUE(FilterRegistry::get().errors().empty());
  // The original path still loads (a later reload with the old set works).
  EXPECT_NE(loader.load(plugin("good"), &error), nullptr) << error;
}

TEST(PluginLoaderTest, ChangedFileAtTheSamePathNeedsARestart) {
  PluginLoader& loader = theLoader();
  std::string path = copyOf(plugin("other"));
  std::string error;
  const LoadedPlugin* p = loader.load(path, &error);
  ASSERT_NE(p, nullptr) << error;
  replaceWith(path, plugin("abi_tag"));
  std::string e = refusal(loader, path);
  EXPECT_EQ(e.rfind(path + ": the file changed since plugin 'test_plugin_other' 2.0.0 was loaded "
                           "from it (content hash ",
                    0),
            0u)
      << e;
  EXPECT_NE(e.find("); a running gateway cannot replace a plugin's code: restart the gateway "
                   "to load it"),
            std::string::npos)
      << e;
  // The same bytes back: the loaded plugin again.
  replaceWith(path, plugin("other"));
  EXPECT_EQ(loader.load(path, &error), p) << error;
}

}  // namespace
}  // namespace plugins
}  // namespace gw
