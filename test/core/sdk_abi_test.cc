// //test/core:sdk_abi_test — the SDK ABI version follows the SDK's headers.
//
// Digests every SDK header but version.h (core/sdk/*.h, given as arguments
// by BUILD.bazel), in file-name order: FNV-1a-64 over each file's name, a
// NUL, its bytes and a NUL. Fails unless the digest equals
// kSdkHeadersDigest in core/sdk/version.h, saying what to do: any header
// change may change the ABI plugins are built against, so it must come with
// a new kSdkAbiVersion (plugins built before are then refused by the
// loader) and the new digest.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/sdk/version.h"
#include "plugins/digest.h"

namespace gw {
namespace {

std::vector<std::string> g_headers;

std::string baseName(const std::string& path) { return path.substr(path.rfind('/') + 1); }

TEST(SdkAbiTest, HeadersDigestMatchesVersionH) {
  ASSERT_FALSE(g_headers.empty()) << "no headers given: see test/core/BUILD.bazel";
  std::vector<std::pair<std::string, std::string>> files;  // name, path
  for (const auto& path : g_headers) {
    ASSERT_NE(baseName(path), "version.h") << "version.h holds the digest: leave it out";
    files.emplace_back(baseName(path), path);
  }
  std::sort(files.begin(), files.end());
  uint64_t digest = plugins::fnv1a64({});
  for (const auto& [name, path] : files) {
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in) << "cannot read " << path;
    std::stringstream bytes;
    bytes << in.rdbuf();
    digest = plugins::fnv1a64(name, digest);
    digest = plugins::fnv1a64(std::string_view("\0", 1), digest);
    digest = plugins::fnv1a64(bytes.str(), digest);
    digest = plugins::fnv1a64(std::string_view("\0", 1), digest);
  }
  std::string got = plugins::hex64(digest);
  EXPECT_EQ(got, kSdkHeadersDigest)
      << "the SDK headers (core/sdk/*.h, " << files.size()
      << " files) changed since kSdkAbiVersion " << kSdkAbiVersion
      << " was set: bump kSdkAbiVersion and set kSdkHeadersDigest to \"" << got
      << "\" in core/sdk/version.h";
}

}  // namespace
}  // namespace gw

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) gw::g_headers.emplace_back(argv[i]);
  return RUN_ALL_TESTS();
}
