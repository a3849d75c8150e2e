#include "test/harness/runfiles.h"

#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace gw {
namespace test {
namespace {

constexpr char kWorkspace[] = "game_gateway";

bool exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

}  // namespace

std::string runfile(const std::string& path) {
  for (const char* var : {"TEST_SRCDIR", "RUNFILES_DIR"}) {
    const char* dir = std::getenv(var);
    if (dir == nullptr || *dir == '\0') continue;
    std::string candidate = std::string(dir) + "/" + kWorkspace + "/" + path;
    if (exists(candidate)) return candidate;
  }
  char cwd[4096];
  if (::getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

std::string tempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr && *dir != '\0' ? dir : "/tmp";
}

std::string writeTempFile(const std::string& contents, const std::string& prefix,
                          const std::string& suffix) {
  std::string tmpl = tempDir() + "/" + prefix + "XXXXXX" + suffix;
  std::vector<char> path(tmpl.begin(), tmpl.end());
  path.push_back('\0');
  int fd = ::mkstemps(path.data(), static_cast<int>(suffix.size()));
  if (fd < 0) return "";
  size_t off = 0;
  while (off < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + off, contents.size() - off);
    if (n <= 0) {
      ::close(fd);
      ::unlink(path.data());
      return "";
    }
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  return path.data();
}

}  // namespace test
}  // namespace gw
