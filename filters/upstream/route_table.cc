#include "filters/upstream/route_table.h"

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

void RouteTable::add(uint8_t server_type, uint16_t world_id, int cluster_index) {
  if (world_id == 0) {
    fallback_[server_type] = cluster_index;
  } else {
    exact_[key(server_type, world_id)] = cluster_index;
  }
}

}  // namespace upstream
}  // namespace gw
