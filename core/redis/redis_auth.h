// core/redis/redis_auth.h — how a Redis connection of the gateway
// authenticates and which database it uses, and the config keys that say so.
//
// Defines Credentials (what a RedisClient or BlockingRedis sends on every
// (re)connect before any other command: AUTH [username] password, SELECT
// db), RedisAuthConfig (the config keys next to a Redis `address`:
// password_file, password_env, username, db, and the credentials read from
// them), parseRedisAuth() (reads those keys, the password from its file or
// environment variable, and refuses a literal `password` key) and
// describeRedisAuth() (the keys for describe(): never the password).
//
// Secrets: the password is held only in Credentials::password (a config
// generation's immutable copy, and each client's copy); it is never logged,
// described or put into an error message. It is re-read from its file or
// variable at every config load, so a reload picks up a rotated password.
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <string_view>

#include "core/sdk/admin_view.h"
#include "core/sdk/parse_context.h"

namespace gw {
namespace redis {

// What a connection sends before its first command. Empty password: no
// AUTH. db 0: no SELECT (Redis starts every connection in db 0).
struct Credentials {
  std::string username;  // "": AUTH <password> (the default user)
  std::string password;
  int db = 0;

  bool operator==(const Credentials& o) const {
    return username == o.username && password == o.password && db == o.db;
  }
  bool operator!=(const Credentials& o) const { return !(*this == o); }
};

// The largest password file read: Redis passwords are short, and a path
// such as /dev/zero must not make the config load read without end.
inline constexpr size_t kMaxPasswordFileBytes = 4096;
// SELECT's range on a default Redis (databases 16).
inline constexpr int kMaxDb = 15;

// The auth keys of one Redis `address` object, as configured, and what
// they resolved to at config load.
struct RedisAuthConfig {
  std::string password_file;  // "" unless set
  std::string password_env;   // "" unless set
  Credentials credentials;    // username and db as set; password read from the file or variable
};

// Reads the auth keys of `obj` (the object holding the Redis `address`;
// schema-valid: strings and an integer db where present). `at` is obj's
// JSON pointer ("/redis", "/routes_from_redis"); errors name `at`/key:
//   - a `password` key (a literal secret in the config) is refused, naming
//     password_file and password_env;
//   - password_file and password_env together are refused (one source);
//   - password_file: missing, unreadable, larger than
//     kMaxPasswordFileBytes, empty (after stripping one trailing "\n" or
//     "\r\n"), or readable by everyone (mode & 0004) is refused;
//   - password_env: an unset or empty variable is refused;
//   - username without a password is refused; db outside 0..15 is refused.
// Returns what it could read (callers check ctx.ok()).
RedisAuthConfig parseRedisAuth(const rapidjson::Value& obj, ParseContext& ctx,
                               std::string_view at);

// Adds "password_file" / "password_env" (whichever is set: the path or the
// variable's name, never the password), "username" (if set) and "db" to
// `out`.
void describeRedisAuth(const RedisAuthConfig& auth, rapidjson::Value& out, JsonAllocator& alloc);

}  // namespace redis
}  // namespace gw
