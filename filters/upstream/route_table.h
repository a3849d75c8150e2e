// filters/upstream/route_table.h — route rules "server_type:world_id" -> cluster.
//
// Defines RouteTable: resolves a client frame's server_id to a cluster index
// with the Go gateway's rule — an exact "server_type:world_id" rule first,
// then "server_type:0". Immutable after build; lookups are two array/hash
// probes with no allocation, safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/sdk/wire.h"

namespace gw {
namespace upstream {

class RouteTable {
 public:
  static constexpr int kNoRoute = -1;

  // Parses "server_type:world_id" (server_type 0..255, world_id 0..32767).
  // Returns nullopt with *error set for anything else.
  static std::optional<std::pair<uint8_t, uint16_t>> parseMatch(std::string_view text,
                                                                std::string* error);

  // Parses route rules from JSON (the value of routes_from_redis's key):
  //   {"routes": [{"match": "200:0", "cluster": "game"}, ...]}
  // `cluster_index` maps a cluster name to its index, or -1 if unknown.
  // Returns nullopt with *error set ("routes[1].cluster: unknown cluster
  // \"gmae\"") for anything else: not JSON, unknown keys, an empty list, a
  // bad match or an unknown cluster.
  static std::optional<RouteTable> fromJson(
      std::string_view json, const std::function<int(std::string_view)>& cluster_index,
      std::string* error);

  // Adds a rule. A later rule for the same match replaces the earlier one.
  void add(uint8_t server_type, uint16_t world_id, int cluster_index);

  // The cluster index for this header, or kNoRoute.
  int resolve(const wire::ClientHeader& h) const {
    uint8_t type = h.serverType();
    uint16_t world = h.worldId();
    if (world != 0 && !exact_.empty()) {
      auto it = exact_.find(key(type, world));
      if (it != exact_.end()) return it->second;
    }
    return fallback_[type];
  }

 private:
  static uint32_t key(uint8_t type, uint16_t world) { return (uint32_t{type} << 16) | world; }
  std::array<int, 256> fallback_ = filled();
  std::unordered_map<uint32_t, int> exact_;
  static std::array<int, 256> filled() {
    std::array<int, 256> a{};
    a.fill(kNoRoute);
    return a;
  }
};

}  // namespace upstream
}  // namespace gw
