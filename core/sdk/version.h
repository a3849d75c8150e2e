// core/sdk/version.h — the gateway's version and its SDK's ABI version.
//
// kGatewayVersion is reported by `gateway --version` and
// game_gateway_build_info, and recorded in every plugin's manifest.
// kSdkAbiVersion changes whenever a header of the SDK (core/sdk/*.h) changes
// in a way that may change the ABI; kSdkHeadersDigest is the digest of those
// headers the version was last set for. A test (//test/core:sdk_abi_test)
// recomputes the digest and fails when headers and version disagree: bump
// kSdkAbiVersion and paste the digest it prints.
#pragma once

#include <cstdint>

namespace gw {

inline constexpr const char* kGatewayVersion = "0.2.0";

inline constexpr uint32_t kSdkAbiVersion = 4;
// FNV-1a-64 of core/sdk/*.h but this file (see //test/core:sdk_abi_test).
inline constexpr const char* kSdkHeadersDigest = "48066708b02202f7";

}  // namespace gw
