// plugins/digest.h — FNV-1a-64 digests of bytes and files.
//
// Used to tell whether a plugin file changed since it was loaded (the
// loader hashes the bytes before dlopen) and, by //test/core:sdk_abi_test,
// to fingerprint the SDK's headers. Not cryptographic: it detects changes,
// not tampering.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gw {
namespace plugins {

// FNV-1a-64 of `bytes`, continuing from `seed` (the offset basis by default),
// so a digest of several pieces is fnv1a64(b, fnv1a64(a)).
uint64_t fnv1a64(std::string_view bytes, uint64_t seed = 0xcbf29ce484222325ULL);

// `digest` as 16 lower-case hex digits.
std::string hex64(uint64_t digest);

// The FNV-1a-64 of the whole file at `path`, or nullopt with *error set
// (strerror text) if it cannot be read.
std::optional<uint64_t> fileDigest(const std::string& path, std::string* error);

}  // namespace plugins
}  // namespace gw
