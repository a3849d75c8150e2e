#include "filters/upstream/route_table.h"

#include <rapidjson/document.h>

namespace gw {
namespace upstream {

std::optional<std::pair<uint8_t, uint16_t>> RouteTable::parseMatch(std::string_view text,
                                                                   std::string* error) {
  size_t colon = text.find(':');
  auto number = [](std::string_view s, uint32_t max, uint32_t* out) {
    if (s.empty() || s.size() > 5) return false;
    uint32_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<uint32_t>(c - '0');
    }
    if (v > max) return false;
    *out = v;
    return true;
  };
  uint32_t type = 0, world = 0;
  if (colon == std::string_view::npos || !number(text.substr(0, colon), 255, &type)) {
    *error = "must be \"server_type:world_id\" with server_type 0..255, got \"" +
             std::string(text) + "\"";
    return std::nullopt;
  }
  if (!number(text.substr(colon + 1), 32767, &world)) {
    *error = "world_id must be 0..32767 (15 bits of server_id), got \"" + std::string(text) + "\"";
    return std::nullopt;
  }
  return std::make_pair(static_cast<uint8_t>(type), static_cast<uint16_t>(world));
}

std::optional<RouteTable> RouteTable::fromJson(
    std::string_view json, const std::function<int(std::string_view)>& cluster_index,
    std::string* error) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    *error = "not valid JSON (at offset " + std::to_string(doc.GetErrorOffset()) + ")";
    return std::nullopt;
  }
  if (!doc.IsObject()) {
    *error = "must be a JSON object {\"routes\": [...]}";
    return std::nullopt;
  }
  for (auto m = doc.MemberBegin(); m != doc.MemberEnd(); ++m) {
    if (std::string_view(m->name.GetString()) != "routes") {
      *error = "unknown key \"" + std::string(m->name.GetString()) + "\" (only \"routes\")";
      return std::nullopt;
    }
  }
  if (!doc.HasMember("routes") || !doc["routes"].IsArray() || doc["routes"].Empty()) {
    *error = "\"routes\" must be a non-empty array";
    return std::nullopt;
  }
  RouteTable table;
  const auto& routes = doc["routes"];
  for (rapidjson::SizeType i = 0; i < routes.Size(); ++i) {
    std::string at = "routes[" + std::to_string(i) + "]";
    const auto& r = routes[i];
    if (!r.IsObject()) {
      *error = at + ": must be an object {\"match\": ..., \"cluster\": ...}";
      return std::nullopt;
    }
    for (auto m = r.MemberBegin(); m != r.MemberEnd(); ++m) {
      std::string_view k = m->name.GetString();
      if (k != "match" && k != "cluster") {
        *error = at + ": unknown key \"" + std::string(k) + "\"";
        return std::nullopt;
      }
    }
    if (!r.HasMember("match") || !r["match"].IsString()) {
      *error = at + ".match: must be a string \"server_type:world_id\"";
      return std::nullopt;
    }
    if (!r.HasMember("cluster") || !r["cluster"].IsString()) {
      *error = at + ".cluster: must be a string naming a cluster";
      return std::nullopt;
    }
    std::string why;
    auto m = parseMatch(r["match"].GetString(), &why);
    if (!m) {
      *error = at + ".match: " + why;
      return std::nullopt;
    }
    int c = cluster_index(r["cluster"].GetString());
    if (c < 0) {
      *error = at + ".cluster: unknown cluster \"" + std::string(r["cluster"].GetString()) +
               "\" (clusters come from the gateway config)";
      return std::nullopt;
    }
    table.add(m->first, m->second, c);
  }
  return table;
}

void RouteTable::add(uint8_t server_type, uint16_t world_id, int cluster_index) {
  if (world_id == 0) {
    fallback_[server_type] = cluster_index;
  } else {
    exact_[key(server_type, world_id)] = cluster_index;
  }
}

}  // namespace upstream
}  // namespace gw
