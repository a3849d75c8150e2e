// test/harness/runfiles.h — finds a test's data dependencies on disk.
//
// Defines runfile(): the absolute path of a file listed in a test's `data`
// (a binary such as //core:gateway or a file such as
// //config:tcp_proxy.json), given its workspace-relative path; and the
// test's scratch directory with writeTempFile().
#pragma once

#include <string>

namespace gw {
namespace test {

// Returns the absolute path of `path` (workspace-relative: "core/gateway",
// "tools/echo_server/echo_server", "config/tcp_proxy.json"): under
// $TEST_SRCDIR/game_gateway/ when Bazel runs the test, else under
// $RUNFILES_DIR/game_gateway/, else relative to the current directory.
// The file is not required to exist; callers check (Process::start does).
std::string runfile(const std::string& path);

// A directory for the test's scratch files: $TEST_TMPDIR, else /tmp.
std::string tempDir();

// Writes `contents` to a new file in tempDir() named
// "<prefix>XXXXXX<suffix>" (mkstemps: unique, mode 0600). Returns its path,
// or "" if it cannot be written. The caller removes it (or lets Bazel).
std::string writeTempFile(const std::string& contents, const std::string& prefix = "gw-",
                          const std::string& suffix = "");

}  // namespace test
}  // namespace gw
