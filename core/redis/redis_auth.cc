// The Redis auth config keys: parseRedisAuth() and describeRedisAuth().
#include "core/redis/redis_auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace gw {
namespace redis {
namespace {

std::string octal(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

// Strips one trailing "\n" or "\r\n" (what an editor or `echo` adds).
void stripNewline(std::string& s) {
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
}

// The password in file `path`; records an error at `pointer` and returns ""
// when it is missing, unreadable, too large, empty or readable by everyone.
// The mode is checked on the opened file (fstat), so the file checked is
// the file read.
std::string readPasswordFile(const std::string& path, const std::string& pointer,
                             ParseContext& ctx) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    ctx.fail(pointer, "cannot read \"" + path + "\": " + std::strerror(errno));
    return {};
  }
  std::string text;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ctx.fail(pointer, "cannot stat \"" + path + "\": " + std::strerror(errno));
  } else if ((st.st_mode & 0004) != 0) {
    ctx.fail(pointer, "password file \"" + path + "\" is readable by everyone (mode " +
                          octal(st.st_mode) +
                          "); refusing it: chmod o-rwx it (0600, or 0440/0640 with a group the "
                          "gateway's user is in)");
  } else {
    text.resize(kMaxPasswordFileBytes + 1);
    size_t got = 0;
    int read_errno = 0;
    while (got < text.size()) {
      ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) read_errno = errno;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    text.resize(got);
    if (read_errno != 0) {
      ctx.fail(pointer, "cannot read \"" + path + "\": " + std::strerror(read_errno));
      text.clear();
    } else if (got > kMaxPasswordFileBytes) {
      ctx.fail(pointer, "\"" + path + "\" is larger than " + std::to_string(kMaxPasswordFileBytes) +
                            " bytes: not a password file");
      text.clear();
    } else {
      stripNewline(text);
      if (text.empty()) ctx.fail(pointer, "password file \"" + path + "\" is empty");
    }
  }
  ::close(fd);
  return text;
}

}  // namespace

RedisAuthConfig parseRedisAuth(const rapidjson::Value& obj, ParseContext& ctx,
                               std::string_view at) {
  RedisAuthConfig out;
  std::string base(at);
  if (obj.HasMember("password")) {
    // Never echo the value: it is the secret.
    ctx.fail(base + "/password",
             "a password is never written in the config: put it in a file readable only by the "
             "gateway's user and name it with \"password_file\", or name an environment variable "
             "holding it with \"password_env\"");
  }
  bool from_file = obj.HasMember("password_file");
  bool from_env = obj.HasMember("password_env");
  if (from_file && from_env) {
    ctx.fail(base + "/password_env",
             "set one of \"password_file\" and \"password_env\", not both");
  }
  if (from_file) {
    out.password_file = obj["password_file"].GetString();
    out.credentials.password = readPasswordFile(out.password_file, base + "/password_file", ctx);
  } else if (from_env) {
    out.password_env = obj["password_env"].GetString();
    const char* v = std::getenv(out.password_env.c_str());
    if (v == nullptr || *v == '\0') {
      ctx.fail(base + "/password_env", "environment variable " + out.password_env +
                                           (v == nullptr ? " is not set" : " is empty") +
                                           " (it must hold the Redis password)");
    } else {
      out.credentials.password = v;
    }
  }
  if (obj.HasMember("username")) {
    out.credentials.username = obj["username"].GetString();
    if (!from_file && !from_env) {
      ctx.fail(base + "/username",
               "needs a password: add \"password_file\" or \"password_env\" (Redis ACL: AUTH "
               "username password)");
    }
  }
  out.credentials.db = static_cast<int>(ctx.size(obj, "db", 0, 0, kMaxDb, at));
  return out;
}

void describeRedisAuth(const RedisAuthConfig& auth, rapidjson::Value& out, JsonAllocator& alloc) {
  if (!auth.password_file.empty())
    out.AddMember("password_file", jsonString(auth.password_file, alloc), alloc);
  if (!auth.password_env.empty())
    out.AddMember("password_env", jsonString(auth.password_env, alloc), alloc);
  if (!auth.credentials.username.empty())
    out.AddMember("username", jsonString(auth.credentials.username, alloc), alloc);
  out.AddMember("db", auth.credentials.db, alloc);
}

}  // namespace redis
}  // namespace gw
