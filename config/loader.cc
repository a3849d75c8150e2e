#include "config/loader.h"

#include <rapidjson/error/en.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <thread>

#include "core/sdk/duration.h"
#include "config/gateway_schema.h"
#include "core/sdk/host_name.h"
#include "core/sdk/schema_check.h"
#include "plugins/loader.h"

namespace gw {
namespace config {
namespace {

// Line and column (1-based) of a byte offset, for parse errors.
std::string lineCol(std::string_view text, size_t offset) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

std::chrono::milliseconds durationOr(const rapidjson::Value& obj, const char* key,
                                     std::chrono::milliseconds dflt) {
  if (!obj.HasMember(key)) return dflt;
  auto d = parseDuration(obj[key].GetString());
  return d ? *d : dflt;  // the schema already checked the form
}

std::string lowered(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// True for "host", "host:port", "[v6]" and "[v6]:port": letters, digits and
// ".-_:[]" only (no path, user info or spaces).
bool isHostAndPort(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::strchr(".-_:[]", c) == nullptr)
      return false;
  }
  return true;
}

// Reads the admin token from `path`: the file's text without surrounding
// whitespace, 16+ printable ASCII characters without spaces (it is sent in
// an HTTP header). Returns nullopt with *why naming the file otherwise.
std::optional<std::string> readAdminToken(const std::string& path, std::string* why) {
  constexpr size_t kMaxBytes = 4096;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    *why = "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  char buf[kMaxBytes + 1];
  size_t n = std::fread(buf, 1, sizeof(buf), f);
  int read_errno = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (read_errno != 0) {
    *why = "cannot read " + path + ": " + std::strerror(read_errno);
    return std::nullopt;
  }
  if (n > kMaxBytes) {
    *why = path + " is larger than 4 KiB: not a token file";
    return std::nullopt;
  }
  std::string_view text(buf, n);
  const char* space = " \t\r\n\v\f";
  size_t first = text.find_first_not_of(space);
  if (first == std::string_view::npos) {
    *why = path + " is empty: write the token into it (e.g. "
                  "`head -c 32 /dev/urandom | base64 > " + path + "`)";
    return std::nullopt;
  }
  text = text.substr(first, text.find_last_not_of(space) - first + 1);
  for (char c : text) {
    if (c < 0x21 || c > 0x7e) {
      *why = path + ": the token must be printable ASCII without spaces";
      return std::nullopt;
    }
  }
  if (text.size() < 16) {
    *why = path + ": the token has " + std::to_string(text.size()) +
           " characters; use at least 16 characters (e.g. `head -c 32 /dev/urandom | base64`)";
    return std::nullopt;
  }
  return std::string(text);
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out;
}

class Loader {
 public:
  Loader(std::string source, plugins::PluginLoader* plugins)
      : source_(std::move(source)), plugins_(plugins) {}

  LoadResult run(std::string_view json) {
    LoadResult result;
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError()) {
      error("", std::string("malformed JSON at ") + lineCol(json, doc.GetErrorOffset()) +
                    " (offset " + std::to_string(doc.GetErrorOffset()) +
                    "): " + rapidjson::GetParseError_En(doc.GetParseError()));
      return finish(nullptr);
    }
    if (auto e = checkSchema(kGatewaySchema, doc, "")) {
      errors_.push_back(source_ + ": " + *e);
      return finish(nullptr);
    }
    auto cfg = std::make_unique<GatewayConfig>();
    cfg->source = source_;
    cfg->json = std::string(json);
    if (doc.HasMember("workers")) cfg->workers = doc["workers"].GetUint();
    if (cfg->workers == 0) cfg->workers = std::max(1u, std::thread::hardware_concurrency());
    if (doc.HasMember("log_level")) cfg->log_level = doc["log_level"].GetString();
    cfg->drain_timeout = durationOr(doc, "drain_timeout", cfg->drain_timeout);
    cfg->memory_trim_interval =
        durationOr(doc, "memory_trim_interval", cfg->memory_trim_interval);
    parseAdmin(doc.HasMember("admin") ? &doc["admin"] : nullptr, cfg->admin);
    cfg->health_listener = parseOptionalAddress(doc, "health_listener");
    cfg->metrics_listener = parseOptionalAddress(doc, "metrics_listener");
    if (doc.HasMember("access_log")) {
      const auto& al = doc["access_log"];
      cfg->access_log.enabled = !al.HasMember("enabled") || al["enabled"].GetBool();
      if (al.HasMember("path")) cfg->access_log.path = al["path"].GetString();
      if (al.HasMember("sample_rate")) cfg->access_log.sample_rate = al["sample_rate"].GetDouble();
    }
    if (doc.HasMember("plugins")) loadPlugins(doc["plugins"], *cfg);
    for (const auto& e : FilterRegistry::get().errors()) errors_.push_back(source_ + ": " + e);
    if (doc.HasMember("dns")) parseDns(doc["dns"], cfg->dns);
    if (doc.HasMember("clusters")) parseClusters(doc["clusters"], *cfg);
    parseListeners(doc["listeners"], *cfg);
    return finish(std::move(cfg));
  }

 private:
  void error(const std::string& pointer, const std::string& message) {
    errors_.push_back(source_ + ": " + (pointer.empty() ? "" : pointer + ": ") + message);
  }

  // The top-level address string `key` ("0.0.0.0:9090"), or nullopt when
  // absent or malformed (then an error names /key).
  std::optional<Address> parseOptionalAddress(const rapidjson::Value& doc, const char* key) {
    if (!doc.HasMember(key)) return std::nullopt;
    std::string why;
    auto a = Address::parse(doc[key].GetString(), &why);
    if (!a) error(std::string("/") + key, why);
    return a;
  }

  // `admin` (absent: nullptr): the address; the token file (admin.token_file,
  // else $GATEWAY_ADMIN_TOKEN_FILE), read now; the Host and Origin lists.
  void parseAdmin(const rapidjson::Value* admin, AdminConfig& out) {
    out.address = *Address::parse("127.0.0.1:9901");
    if (admin != nullptr && admin->HasMember("address")) {
      std::string why;
      auto a = Address::parse((*admin)["address"].GetString(), &why);
      if (!a) error("/admin/address", why);
      else out.address = *a;
    }
    std::string where = "/admin/token_file";
    if (admin != nullptr && admin->HasMember("token_file")) {
      out.token_file = (*admin)["token_file"].GetString();
    } else if (const char* env = std::getenv("GATEWAY_ADMIN_TOKEN_FILE"); env && *env) {
      out.token_file = env;
      where = "$GATEWAY_ADMIN_TOKEN_FILE";
    }
    if (!out.token_file.empty()) {
      std::string why;
      auto token = readAdminToken(out.token_file, &why);
      if (!token) error(where, why);
      else out.token = *token;
    }
    if (admin == nullptr) return;
    if (admin->HasMember("max_connections"))
      out.max_connections = (*admin)["max_connections"].GetUint();
    if (admin->HasMember("allowed_hosts")) {
      const auto& hosts = (*admin)["allowed_hosts"];
      for (rapidjson::SizeType i = 0; i < hosts.Size(); ++i) {
        std::string h = lowered(hosts[i].GetString());
        if (!isHostAndPort(h)) {
          error("/admin/allowed_hosts/" + std::to_string(i),
                "\"" + h + "\" is not a host name or IP with an optional :port (e.g. "
                "\"gateway-admin.internal\" for any port, \"10.0.0.5:9901\" for that port)");
        }
        out.allowed_hosts.push_back(h);
      }
    }
    if (admin->HasMember("allowed_origins")) {
      const auto& origins = (*admin)["allowed_origins"];
      for (rapidjson::SizeType i = 0; i < origins.Size(); ++i) {
        std::string o = lowered(origins[i].GetString());
        size_t sep = o.find("://");
        std::string scheme = sep == std::string::npos ? "" : o.substr(0, sep);
        if ((scheme != "http" && scheme != "https") || !isHostAndPort(o.substr(sep + 3))) {
          error("/admin/allowed_origins/" + std::to_string(i),
                "\"" + o + "\" is not an origin: expected scheme://host[:port] as a browser "
                "sends it (e.g. \"https://ops.example.com\"), no path");
        }
        out.allowed_origins.push_back(o);
      }
    }
  }

  // The runtime's step before filters are resolved: the plugins' filters
  // must be registered for the chains to name them.
  void loadPlugins(const rapidjson::Value& arr, GatewayConfig& cfg) {
    for (rapidjson::SizeType i = 0; i < arr.Size(); ++i) {
      std::string path = arr[i].GetString();
      std::string at = "/plugins/" + std::to_string(i);
      cfg.plugins.push_back(path);
      std::string why;
      if (plugins_ == nullptr) {
        error(at, path + ": plugins are loaded only by the gateway runtime (no plugin loader "
                         "given)");
      } else if (plugins_->load(path, &why) == nullptr) {
        error(at, why);
      }
    }
  }

  LoadResult finish(std::unique_ptr<GatewayConfig> cfg) {
    LoadResult r;
    r.errors = std::move(errors_);
    if (r.errors.empty()) r.config = std::move(cfg);
    return r;
  }

  // Whole seconds between 1s and 32767s (the kernel's range for the
  // keepalive options) at obj[key], else `dflt`; an error at `pointer` otherwise.
  std::chrono::seconds keepaliveSeconds(const rapidjson::Value& obj, const char* key,
                                        std::chrono::seconds dflt, const std::string& pointer) {
    std::chrono::milliseconds d = durationOr(obj, key, dflt);
    if (d.count() % 1000 != 0 || d < std::chrono::seconds(1) || d > std::chrono::seconds(32767)) {
      error(pointer, "must be whole seconds from 1s to 32767s (got \"" +
                         std::string(obj[key].GetString()) + "\")");
      return dflt;
    }
    return std::chrono::duration_cast<std::chrono::seconds>(d);
  }

  // `tcp_keepalive` and `tcp_user_timeout` of a cluster or listener object
  // at JSON pointer `at`, over TcpLiveness's defaults.
  TcpLiveness parseLiveness(const rapidjson::Value& obj, const std::string& at) {
    TcpLiveness l;
    if (obj.HasMember("tcp_keepalive")) {
      const auto& k = obj["tcp_keepalive"];
      std::string kat = at + "/tcp_keepalive";
      if (k.HasMember("enabled")) l.keepalive = k["enabled"].GetBool();
      l.keepalive_idle = keepaliveSeconds(k, "idle", l.keepalive_idle, kat + "/idle");
      l.keepalive_interval = keepaliveSeconds(k, "interval", l.keepalive_interval, kat + "/interval");
      if (k.HasMember("count")) l.keepalive_count = k["count"].GetInt();
    }
    l.user_timeout = durationOr(obj, "tcp_user_timeout", l.user_timeout);
    if (l.user_timeout > std::chrono::milliseconds(std::numeric_limits<int>::max()))
      error(at + "/tcp_user_timeout", "must be at most 596h (the kernel takes milliseconds as an int)");
    return l;
  }

  // A cluster's `compat` object (schema-valid): present means enabled; the
  // absent keys keep the Go gateway's behaviour (CompatConfig's defaults).
  static CompatConfig parseCompat(const rapidjson::Value& c) {
    CompatConfig compat;
    compat.enabled = true;
    if (c.HasMember("routing") && std::string_view(c["routing"].GetString()) == "per_frame")
      compat.routing = CompatConfig::Routing::kPerFrame;
    if (c.HasMember("connection_per_session"))
      compat.connection_per_session = c["connection_per_session"].GetBool();
    if (c.HasMember("trace_propagation")) compat.trace_propagation = c["trace_propagation"].GetBool();
    return compat;
  }

  // One entry of a cluster's `hosts` at `at`: an IP address, else a DNS
  // name (resolved at run time, never here).
  void parseHost(const rapidjson::Value& v, const std::string& at, ClusterConfig& cc) {
    std::string why;
    auto spec = parseHostSpec(v.GetString(), &why);
    if (!spec) {
      error(at, why);
      return;
    }
    if (spec->address) {
      cc.hosts.push_back(*spec->address);
      return;
    }
    auto n = std::move(spec->name);
    for (const auto& seen : cc.host_names)
      if (seen == n) return error(at, "duplicate host \"" + n.toString() + "\"");
    cc.host_names.push_back(std::move(n));
  }

  // Top-level `dns` (the schema checked its shape).
  void parseDns(const rapidjson::Value& d, DnsConfig& out) {
    if (d.HasMember("resolv_conf")) out.resolv_conf = d["resolv_conf"].GetString();
    if (d.HasMember("hosts_file")) out.hosts_file = d["hosts_file"].GetString();
    out.timeout = durationOr(d, "timeout", out.timeout);
    if (out.timeout < std::chrono::milliseconds(100) || out.timeout > std::chrono::seconds(60))
      error("/dns/timeout", "must be from 100ms to 60s");
  }

  void parseClusters(const rapidjson::Value& arr, GatewayConfig& cfg) {
    for (rapidjson::SizeType i = 0; i < arr.Size(); ++i) {
      const auto& c = arr[i];
      std::string at = "/clusters/" + std::to_string(i);
      ClusterConfig cc;
      cc.name = c["name"].GetString();
      for (const auto& other : cfg.clusters) {
        if (other.name == cc.name) error(at + "/name", "duplicate cluster name \"" + cc.name + "\"");
      }
      for (rapidjson::SizeType h = 0; h < c["hosts"].Size(); ++h)
        parseHost(c["hosts"][h], at + "/hosts/" + std::to_string(h), cc);
      if (c.HasMember("lb")) {
        std::string lb = c["lb"].GetString();
        cc.lb = lb == "least_request"     ? LbPolicy::kLeastRequest
                : lb == "consistent_hash" ? LbPolicy::kConsistentHash
                                          : LbPolicy::kRoundRobin;
      }
      cc.connect_timeout = durationOr(c, "connect_timeout", cc.connect_timeout);
      cc.idle_timeout = durationOr(c, "idle_timeout", cc.idle_timeout);
      cc.reconnect_base = durationOr(c, "reconnect_backoff_base", cc.reconnect_base);
      cc.reconnect_max = durationOr(c, "reconnect_backoff_max", cc.reconnect_max);
      if (c.HasMember("max_connections_per_service"))
        cc.max_connections_per_service = c["max_connections_per_service"].GetUint();
      if (c.HasMember("max_connections")) cc.max_connections = c["max_connections"].GetUint();
      if (c.HasMember("max_pending_frames"))
        cc.max_pending_frames = c["max_pending_frames"].GetUint();
      if (c.HasMember("expect_reply")) cc.expect_reply = c["expect_reply"].GetBool();
      cc.silence_timeout = durationOr(c, "silence_timeout", cc.silence_timeout);
      cc.dns_refresh_interval = durationOr(c, "dns_refresh_interval", cc.dns_refresh_interval);
      if (cc.dns_refresh_interval < std::chrono::seconds(1))
        error(at + "/dns_refresh_interval", "must be at least 1s");
      if (c.HasMember("max_retries")) cc.max_retries = c["max_retries"].GetUint();
      cc.retry_delay = durationOr(c, "retry_delay", cc.retry_delay);
      if (cc.retry_delay.count() == 0 || cc.retry_delay > ClusterConfig::kMaxRetryDelay)
        error(at + "/retry_delay", "must be from 1ms to 5s");
      cc.liveness = parseLiveness(c, at);
      if (c.HasMember("compat")) cc.compat = parseCompat(c["compat"]);
      if (cc.connect_timeout.count() == 0) error(at + "/connect_timeout", "must be > 0");
      if (cc.reconnect_base > cc.reconnect_max)
        error(at + "/reconnect_backoff_base", "must not exceed reconnect_backoff_max");
      cfg.clusters.push_back(std::move(cc));
    }
  }

  void parseListeners(const rapidjson::Value& arr, GatewayConfig& cfg) {
    for (rapidjson::SizeType i = 0; i < arr.Size(); ++i) {
      const auto& l = arr[i];
      std::string at = "/listeners/" + std::to_string(i);
      ListenerConfig lc;
      lc.name = l["name"].GetString();
      for (const auto& other : cfg.listeners) {
        if (other.name == lc.name) error(at + "/name", "duplicate listener name \"" + lc.name + "\"");
      }
      std::string why;
      auto a = Address::parse(l["address"].GetString(), &why);
      if (!a) error(at + "/address", why);
      else lc.address = *a;
      if (l.HasMember("backlog")) lc.backlog = l["backlog"].GetInt();
      lc.liveness = parseLiveness(l, at);
      if (l.HasMember("output_high_watermark")) {
        lc.output.high_watermark = l["output_high_watermark"].GetUint64();
        lc.output.low_watermark = lc.output.high_watermark / 4;
      }
      if (l.HasMember("max_output_bytes")) lc.output.max_bytes = l["max_output_bytes"].GetUint64();
      if (lc.output.max_bytes < lc.output.high_watermark)
        error(at + "/max_output_bytes", "must be ≥ output_high_watermark (" +
                                            std::to_string(lc.output.high_watermark) + ")");
      const auto& filters = l["filters"];
      bool filters_ok = true;
      std::vector<std::string> names;
      for (rapidjson::SizeType f = 0; f < filters.Size(); ++f)
        names.push_back(filters[f]["name"].GetString());
      for (rapidjson::SizeType f = 0; f < filters.Size(); ++f) {
        if (!parseFilter(filters[f], at + "/filters/" + std::to_string(f), cfg, lc, names, f))
          filters_ok = false;
      }
      if (filters_ok) checkChain(lc, at);
      cfg.listeners.push_back(std::move(lc));
    }
  }

  // Filter `position` of the listener's chain `names`.
  bool parseFilter(const rapidjson::Value& f, const std::string& at, const GatewayConfig& cfg,
                   ListenerConfig& lc, const std::vector<std::string>& names, size_t position) {
    std::string name = f["name"].GetString();
    const FilterConfigFactory* factory = FilterRegistry::get().find(name);
    if (factory == nullptr) {
      error(at + "/name", "unknown filter \"" + name + "\"; registered filters: " +
                              joined(FilterRegistry::get().names()) +
                              " (a custom filter must be linked in or listed in \"plugins\")");
      return false;
    }
    rapidjson::Value empty(rapidjson::kObjectType);
    const rapidjson::Value& config = f.HasMember("config") ? f["config"] : empty;
    if (auto e = checkSchema(factory->schema(), config, at + "/config")) {
      errors_.push_back(source_ + ": " + *e);
      return false;
    }
    ParseContext ctx(cfg.clusters, lc.name);
    ctx.setChain(names, position);
    auto parsed = factory->parse(config, ctx);
    for (const auto& e : ctx.errors()) error(at + "/config" + e.pointer, e.message);
    if (!ctx.errors().empty() || parsed == nullptr) {
      if (ctx.errors().empty()) error(at + "/config", "invalid config");
      return false;
    }
    lc.filters.push_back({name, factory, factory->traits(), std::move(parsed)});
    return true;
  }

  // Layer order and the terminal rule.
  void checkChain(const ListenerConfig& lc, const std::string& at) {
    Layer current = Layer::kBytes;
    for (size_t i = 0; i < lc.filters.size(); ++i) {
      const FilterEntry& f = lc.filters[i];
      std::string where = at + "/filters/" + std::to_string(i);
      std::string me = "filter #" + std::to_string(i + 1) + " '" + f.name + "'";
      if (f.traits.consumes != current) {
        if (f.traits.consumes == Layer::kFrames) {
          error(where, me + " consumes frames, but no filter before it produces frames: add " +
                           codecHint() + " before it");
        } else {
          error(where, me + " consumes bytes, but the filters before it already decoded them "
                            "into frames: move '" + f.name + "' before the codec");
        }
        return;
      }
      if (f.traits.terminal && i + 1 < lc.filters.size()) {
        size_t after = lc.filters.size() - i - 1;
        error(where, me + " is terminal and must be last, but " + std::to_string(after) +
                         (after == 1 ? " filter follows" : " filters follow") +
                         " it: " + (after == 1 ? "remove it" : "remove them") + " or move '" +
                         f.name + "' to the end");
        return;
      }
      if (!f.traits.terminal) current = f.traits.produces;
    }
    const FilterEntry& last = lc.filters.back();
    if (!last.traits.terminal) {
      error(at + "/filters/" + std::to_string(lc.filters.size() - 1),
            "the chain ends with filter #" + std::to_string(lc.filters.size()) + " '" + last.name +
                "', which is not terminal: add a terminal filter that consumes " +
                (current == Layer::kFrames ? "frames" : "bytes") + " (" + terminalHint(current) +
                ") at the end");
    }
  }

  std::string codecHint() {
    std::vector<std::string> names;
    for (const auto& n : FilterRegistry::get().names()) {
      auto t = FilterRegistry::get().find(n)->traits();
      if (!t.terminal && t.consumes == Layer::kBytes && t.produces == Layer::kFrames)
        names.push_back(n);
    }
    return names.empty() ? "a codec filter" : joined(names);
  }

  std::string terminalHint(Layer layer) {
    std::vector<std::string> names;
    for (const auto& n : FilterRegistry::get().names()) {
      auto t = FilterRegistry::get().find(n)->traits();
      if (t.terminal && t.consumes == layer) names.push_back(n);
    }
    return names.empty() ? "none is registered" : joined(names);
  }

  std::string source_;
  plugins::PluginLoader* plugins_;
  std::vector<std::string> errors_;
};

bool readFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

}  // namespace

LoadResult loadString(std::string_view json, const std::string& source,
                      plugins::PluginLoader* plugins) {
  return Loader(source, plugins).run(json);
}

LoadResult loadFile(const std::string& path, plugins::PluginLoader* plugins) {
  std::string text;
  if (!readFile(path, &text)) return LoadResult{nullptr, {path + ": cannot open the file"}};
  return loadString(text, path, plugins);
}

std::vector<std::string> loadPluginsOf(const std::string& path, plugins::PluginLoader& plugins) {
  std::string text;
  if (!readFile(path, &text)) return {path + ": cannot open the file"};
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("plugins")) {
    // The full load says what is wrong with the file; no plugins to list here.
    return doc.HasParseError() || !doc.IsObject() ? loadString(text, path).errors
                                                   : std::vector<std::string>{};
  }
  const rapidjson::Value& list = doc["plugins"];
  std::vector<std::string> errors;
  if (!list.IsArray()) return {path + ": /plugins: must be an array of shared object paths"};
  for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
    std::string at = path + ": /plugins/" + std::to_string(i) + ": ";
    std::string why;
    if (!list[i].IsString()) errors.push_back(at + "must be a string (a shared object's path)");
    else if (plugins.load(list[i].GetString(), &why) == nullptr) errors.push_back(at + why);
  }
  return errors;
}

}  // namespace config
}  // namespace gw
