// filters/upstream/go_routes.h — the Go gateway's routing rules and realm
// mapping (routes_from_redis with "routes_format": "go").
//
// Defines GoRules (one parsed value of the Go gateway's rules key), the
// realm mapping parser, GoRouteTable (rules + mapping: picks the endpoint a
// client frame goes to, as the Go gateway's router does) and
// goEndpointCluster() (the cluster made for an endpoint).
//
// The Go gateway's rules name endpoints, not clusters: every distinct
// endpoint "ip:port" becomes a cluster named "go:ip:port" with that one
// host, and every "name:port" (a service DNS name, as the Go gateway's own
// deployments write them) a cluster "go:name:port" whose hosts the
// runtime's resolver finds (docs/filters/upstream.md, "Go-format rules"). Its strategies pick an
// endpoint of the matched rule (internal/router/router.go, RouteByServerID,
// at commit 1388327e46dd68f5bcd1d3120b00cb351c096eaf):
//   realm_based:     world_id > 0 and inst_id > 0: endpoints[crc32("world:W:inst:I") % n]
//   consistent_hash: inst_id > 0: endpoints[crc32("I") % n]
//   otherwise (and round_robin): round robin over the rule's endpoints.
// crc32 is IEEE (Go's crc32.ChecksumIEEE). Round robin here is per new
// session (a session keeps the endpoint it uses, as a Go connection keeps
// its backend), counted per worker and rule.
// A realm mapping entry world_id -> endpoint overrides the strategy for
// frames of that world whose rule lists that endpoint.
//
// State: GoRules is immutable (shared); a GoRouteTable is per worker (its
// round-robin counters are not atomic): each worker's reader builds its own.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/cluster.h"
#include "core/sdk/host_name.h"
#include "core/sdk/wire.h"

namespace gw {
namespace upstream {

// The Go router's strategies ("round_robin", "consistent_hash", "realm_based").
enum class GoStrategy : uint8_t { kRoundRobin, kConsistentHash, kRealmBased };

// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as Go's
// crc32.ChecksumIEEE computes it.
uint32_t crc32Ieee(std::string_view data);

// The name of the cluster made for Go endpoint `endpoint`: "go:ip:port" or
// "go:name:port" (the name lower-cased).
std::string goEndpointCluster(const HostSpec& endpoint);

// The cluster for `endpoint`: `templ`'s settings (timeouts, limits, compat
// ...) with the name goEndpointCluster(endpoint) and the one host: its
// address in `hosts`, or its name in `host_names` (no `hosts`).
ClusterConfig goEndpointClusterConfig(const ClusterConfig& templ, const HostSpec& endpoint);

class GoRules {
 public:
  struct Rule {
    uint8_t server_type = 0;
    uint16_t world_id = 0;  // 0: every world (the Go gateway's wildcard)
    GoStrategy strategy = GoStrategy::kRoundRobin;
    std::vector<uint32_t> endpoints;  // indexes into GoRules::endpoints(), in the rule's order
  };

  // Parses the Go gateway's rules value: a JSON object keyed by integers,
  // each value {"server_type": N, "world_id": N, "strategy": S,
  // "endpoints": ["ip:port" or "name:port", ...], "service_name": S,
  // "hash_key": S} (a name as parseHostSpec() reads it).
  // Other keys are ignored (as Go's JSON decoder does). Returns nullopt with
  // *error naming the entry ("rules[\"200\"].strategy: unknown strategy
  // \"fastest\" ...") for: not JSON, not an object, a key that is not an
  // integer, a missing or out-of-range server_type, a world_id above 32767,
  // an unknown strategy, no endpoints, an endpoint that is neither "ip:port" nor "name:port",
  // two entries for the same server_type:world_id, or no entry at all.
  static std::optional<GoRules> parse(std::string_view json, std::string* error);

  // The rule for this header: "server_type:world_id" first, then
  // "server_type:0" (the Go router's GetRule), or nullptr.
  const Rule* match(const wire::ClientHeader& h) const;
  // Every distinct endpoint, in order of first appearance.
  const std::vector<HostSpec>& endpoints() const { return endpoints_; }
  // The index of `endpoint` (as HostSpec::toString writes it), or -1.
  int endpointIndex(std::string_view endpoint) const;
  const std::vector<Rule>& rules() const { return rules_; }

 private:
  static uint32_t key(uint8_t type, uint16_t world) { return (uint32_t{type} << 16) | world; }
  std::vector<HostSpec> endpoints_;
  std::vector<Rule> rules_;
  std::unordered_map<uint32_t, size_t> by_key_;  // key() -> index in rules_
};

// A realm mapping: world_id (realm id) -> endpoint index in GoRules.
using RealmMap = std::map<uint16_t, uint32_t>;

// Parses the realm mapping hash's fields (realm id -> "ip:port" or
// "name:port", any case) against
// `rules`. Returns nullopt with *error for a realm id that is not 1..32767
// or an address that is none of the rules' endpoints ("points nowhere").
std::optional<RealmMap> parseRealmMapping(
    const std::vector<std::pair<std::string, std::string>>& fields, const GoRules& rules,
    std::string* error);

class GoRouteTable {
 public:
  static constexpr int kNoRoute = -1;

  GoRouteTable(std::shared_ptr<const GoRules> rules, RealmMap realms);

  // The endpoint index for this header, or kNoRoute. `uses(endpoint)` says
  // whether the session already uses an endpoint (round robin keeps it).
  // `commit`: a round-robin choice advances the counter (false: a preview
  // that returns what the next committed pick returns).
  template <typename Uses>
  int pick(const wire::ClientHeader& h, Uses&& uses, bool commit) const {
    const GoRules::Rule* rule = rules_->match(h);
    if (rule == nullptr) return kNoRoute;
    if (int e = hashed(*rule, h); e != kNoRoute) return e;
    for (uint32_t e : rule->endpoints)
      if (uses(e)) return static_cast<int>(e);
    return roundRobin(*rule, commit);
  }

  const GoRules& rules() const { return *rules_; }
  const RealmMap& realms() const { return realms_; }

 private:
  // The realm mapping's or the hash strategy's endpoint, or kNoRoute when
  // the rule falls back to round robin.
  int hashed(const GoRules::Rule& rule, const wire::ClientHeader& h) const;
  int roundRobin(const GoRules::Rule& rule, bool commit) const;

  std::shared_ptr<const GoRules> rules_;
  RealmMap realms_;
  mutable std::vector<uint32_t> counters_;  // per rule; per worker
};

}  // namespace upstream
}  // namespace gw
