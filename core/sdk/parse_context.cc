#include "core/sdk/parse_context.h"

#include "core/sdk/duration.h"

namespace gw {
namespace {

std::string pointerOf(std::string_view at, std::string_view key) {
  std::string p(at);
  p += '/';
  p += key;
  return p;
}

}  // namespace

std::string formatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms != 0 && ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms != 0 && ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

const ClusterConfig* ParseContext::findCluster(std::string_view name) const {
  for (const auto& c : clusters_)
    if (c.name == name) return &c;
  return nullptr;
}

std::nullptr_t ParseContext::fail(std::string pointer, std::string message) {
  errors_.push_back({std::move(pointer), std::move(message)});
  return nullptr;
}

std::chrono::milliseconds ParseContext::duration(const rapidjson::Value& obj,
                                                 std::string_view key,
                                                 std::chrono::milliseconds fallback,
                                                 std::chrono::milliseconds min,
                                                 std::chrono::milliseconds max,
                                                 std::string_view at) {
  auto it = obj.FindMember(rapidjson::Value(rapidjson::StringRef(key.data(), key.size())));
  if (it == obj.MemberEnd()) return fallback;
  std::string text = it->value.IsString() ? it->value.GetString() : "(not a string)";
  auto d = config::parseDuration(text);
  if (!d || *d < min || *d > max) {
    fail(pointerOf(at, key), "must be a duration from " + formatDuration(min) + " to " +
                                 formatDuration(max) +
                                 " (digits then ms, s, m or h: \"250ms\", \"30s\", \"5m\"), got \"" +
                                 text + "\"");
    return fallback;
  }
  return *d;
}

const ClusterConfig* ParseContext::cluster(const rapidjson::Value& obj, std::string_view key,
                                           std::string_view at) {
  auto it = obj.FindMember(rapidjson::Value(rapidjson::StringRef(key.data(), key.size())));
  std::string name = it != obj.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
  return cluster(name, pointerOf(at, key));
}

const ClusterConfig* ParseContext::cluster(std::string_view name, std::string_view pointer) {
  if (const ClusterConfig* c = findCluster(name)) return c;
  std::string known;
  for (const auto& c : clusters_) known += (known.empty() ? "" : ", ") + c.name;
  fail(std::string(pointer), "unknown cluster \"" + std::string(name) + "\"; defined clusters: " +
                                 (known.empty() ? "(none: add one under /clusters)" : known));
  return nullptr;
}

uint64_t ParseContext::size(const rapidjson::Value& obj, std::string_view key, uint64_t fallback,
                            uint64_t min, uint64_t max, std::string_view at) {
  auto it = obj.FindMember(rapidjson::Value(rapidjson::StringRef(key.data(), key.size())));
  if (it == obj.MemberEnd()) return fallback;
  if (!it->value.IsUint64() || it->value.GetUint64() < min || it->value.GetUint64() > max) {
    std::string got = it->value.IsUint64()  ? std::to_string(it->value.GetUint64())
                      : it->value.IsInt64() ? std::to_string(it->value.GetInt64())
                                            : "a non-integer";
    fail(pointerOf(at, key),
         "must be an integer from " + std::to_string(min) + " to " + std::to_string(max) +
             ", got " + got);
    return fallback;
  }
  return it->value.GetUint64();
}

}  // namespace gw
