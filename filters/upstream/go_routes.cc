#include "filters/upstream/go_routes.h"

#include <rapidjson/document.h>

#include <array>
#include <charconv>

namespace gw {
namespace upstream {

namespace {

std::array<uint32_t, 256> crcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

std::optional<GoStrategy> parseStrategy(std::string_view s) {
  if (s == "round_robin") return GoStrategy::kRoundRobin;
  if (s == "consistent_hash") return GoStrategy::kConsistentHash;
  if (s == "realm_based") return GoStrategy::kRealmBased;
  return std::nullopt;
}

// A decimal integer, all of `s` (optionally negative), or nullopt.
std::optional<int64_t> parseInteger(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

uint32_t crc32Ieee(std::string_view data) {
  static const std::array<uint32_t, 256> table = crcTable();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string goEndpointCluster(const HostSpec& endpoint) { return "go:" + endpoint.toString(); }

ClusterConfig goEndpointClusterConfig(const ClusterConfig& templ, const HostSpec& endpoint) {
  ClusterConfig c = templ;
  c.name = goEndpointCluster(endpoint);
  c.hosts.clear();
  c.host_names.clear();
  if (endpoint.address) c.hosts = {*endpoint.address};
  else c.host_names = {endpoint.name};
  return c;
}

std::optional<GoRules> GoRules::parse(std::string_view json, std::string* error) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    *error = "not valid JSON (at offset " + std::to_string(doc.GetErrorOffset()) + ")";
    return std::nullopt;
  }
  if (!doc.IsObject() || doc.MemberCount() == 0) {
    *error = "must be a non-empty JSON object {\"<server_type>\": {rule}, ...} (the Go "
             "gateway's format)";
    return std::nullopt;
  }
  GoRules out;
  for (auto m = doc.MemberBegin(); m != doc.MemberEnd(); ++m) {
    std::string name = m->name.GetString();
    std::string at = "rules[\"" + name + "\"]";
    if (!parseInteger(name)) {
      *error = at + ": the key must be an integer (the Go gateway decodes map[int]RoutingRule)";
      return std::nullopt;
    }
    const auto& r = m->value;
    if (!r.IsObject()) {
      *error = at + ": must be an object {\"server_type\", \"strategy\", \"endpoints\", ...}";
      return std::nullopt;
    }
    Rule rule;
    if (!r.HasMember("server_type") || !r["server_type"].IsInt64() ||
        r["server_type"].GetInt64() < 0 || r["server_type"].GetInt64() > 255) {
      *error = at + ".server_type: must be an integer 0..255";
      return std::nullopt;
    }
    rule.server_type = static_cast<uint8_t>(r["server_type"].GetInt64());
    if (r.HasMember("world_id")) {
      if (!r["world_id"].IsInt64() || r["world_id"].GetInt64() > 32767) {
        *error = at + ".world_id: must be an integer up to 32767 (15 bits of server_id)";
        return std::nullopt;
      }
      // The Go router treats world_id <= 0 as the wildcard.
      int64_t w = r["world_id"].GetInt64();
      rule.world_id = w > 0 ? static_cast<uint16_t>(w) : 0;
    }
    if (!r.HasMember("strategy") || !r["strategy"].IsString()) {
      *error = at + ".strategy: must be a string (round_robin, consistent_hash, realm_based)";
      return std::nullopt;
    }
    auto strategy = parseStrategy(r["strategy"].GetString());
    if (!strategy) {
      *error = at + ".strategy: unknown strategy \"" + std::string(r["strategy"].GetString()) +
               "\" (round_robin, consistent_hash, realm_based)";
      return std::nullopt;
    }
    rule.strategy = *strategy;
    for (const char* text_key : {"service_name", "hash_key"}) {
      if (r.HasMember(text_key) && !r[text_key].IsString()) {
        *error = at + "." + text_key + ": must be a string";
        return std::nullopt;
      }
    }
    if (!r.HasMember("endpoints") || !r["endpoints"].IsArray() || r["endpoints"].Empty()) {
      *error = at + ".endpoints: must be a non-empty array of \"ip:port\" or \"name:port\"";
      return std::nullopt;
    }
    const auto& eps = r["endpoints"];
    for (rapidjson::SizeType i = 0; i < eps.Size(); ++i) {
      std::string eat = at + ".endpoints[" + std::to_string(i) + "]";
      std::string why;
      auto spec = eps[i].IsString() ? parseHostSpec(eps[i].GetString(), &why) : std::nullopt;
      if (!spec) {
        *error = eat + ": unknown endpoint" +
                 (eps[i].IsString() ? " \"" + std::string(eps[i].GetString()) + "\"" : "") +
                 " (must be \"ip:port\" or \"name:port\"" + (why.empty() ? "" : ": " + why) +
                 ")";
        return std::nullopt;
      }
      int idx = out.endpointIndex(spec->toString());
      if (idx < 0) {
        out.endpoints_.push_back(std::move(*spec));
        idx = static_cast<int>(out.endpoints_.size() - 1);
      }
      rule.endpoints.push_back(static_cast<uint32_t>(idx));
    }
    uint32_t k = key(rule.server_type, rule.world_id);
    if (out.by_key_.count(k) != 0) {
      *error = at + ": a second rule for " + std::to_string(rule.server_type) + ":" +
               std::to_string(rule.world_id) + " (which one applies would be arbitrary)";
      return std::nullopt;
    }
    out.by_key_[k] = out.rules_.size();
    out.rules_.push_back(std::move(rule));
  }
  return out;
}

const GoRules::Rule* GoRules::match(const wire::ClientHeader& h) const {
  uint8_t type = h.serverType();
  uint16_t world = h.worldId();
  if (world != 0) {
    auto it = by_key_.find(key(type, world));
    if (it != by_key_.end()) return &rules_[it->second];
  }
  auto it = by_key_.find(key(type, 0));
  return it == by_key_.end() ? nullptr : &rules_[it->second];
}

int GoRules::endpointIndex(std::string_view endpoint) const {
  for (size_t i = 0; i < endpoints_.size(); ++i)
    if (endpoints_[i].toString() == endpoint) return static_cast<int>(i);
  return -1;
}

std::optional<RealmMap> parseRealmMapping(
    const std::vector<std::pair<std::string, std::string>>& fields, const GoRules& rules,
    std::string* error) {
  RealmMap out;
  for (const auto& [realm, address] : fields) {
    std::string at = "realm \"" + realm + "\"";
    auto id = parseInteger(realm);
    if (!id || *id < 1 || *id > 32767) {
      *error = at + ": the realm id must be an integer 1..32767 (a world_id)";
      return std::nullopt;
    }
    std::string why;
    auto spec = parseHostSpec(address, &why);
    int idx = spec ? rules.endpointIndex(spec->toString()) : -1;
    if (idx < 0) {
      *error = at + " points nowhere: \"" + address +
               "\" is not an endpoint of any routing rule in force";
      return std::nullopt;
    }
    out[static_cast<uint16_t>(*id)] = static_cast<uint32_t>(idx);
  }
  return out;
}

GoRouteTable::GoRouteTable(std::shared_ptr<const GoRules> rules, RealmMap realms)
    : rules_(std::move(rules)), realms_(std::move(realms)), counters_(rules_->rules().size(), 0) {}

int GoRouteTable::hashed(const GoRules::Rule& rule, const wire::ClientHeader& h) const {
  uint16_t world = h.worldId();
  uint8_t inst = h.instId();
  if (world != 0 && !realms_.empty()) {
    auto it = realms_.find(world);
    if (it != realms_.end()) {
      for (uint32_t e : rule.endpoints)
        if (e == it->second) return static_cast<int>(e);
    }
  }
  // As RouteByServerID formats them: fmt.Appendf("world:%d:inst:%d") and
  // fmt.Appendf("%d"), then int(hash) % len(endpoints) (non-negative on
  // 64-bit Go: int(uint32) keeps the value).
  std::string text;
  if (rule.strategy == GoStrategy::kRealmBased && world > 0 && inst > 0) {
    text = "world:" + std::to_string(world) + ":inst:" + std::to_string(inst);
  } else if (rule.strategy == GoStrategy::kConsistentHash && inst > 0) {
    text = std::to_string(inst);
  } else {
    return kNoRoute;
  }
  return static_cast<int>(rule.endpoints[crc32Ieee(text) % rule.endpoints.size()]);
}

int GoRouteTable::roundRobin(const GoRules::Rule& rule, bool commit) const {
  size_t r = static_cast<size_t>(&rule - rules_->rules().data());
  uint32_t& n = counters_[r];
  uint32_t e = rule.endpoints[n % rule.endpoints.size()];
  if (commit) n = static_cast<uint32_t>((n + 1) % rule.endpoints.size());
  return static_cast<int>(e);
}

}  // namespace upstream
}  // namespace gw
