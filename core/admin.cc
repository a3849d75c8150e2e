#include "core/admin.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "core/admin_guard.h"
#include "core/sdk/admin_view.h"
#include "core/sdk/cluster_manager.h"
#include "core/sdk/log.h"
#include "core/sdk/registry.h"
#include "core/sdk/session_registry.h"
#include "core/sdk/stats.h"

namespace gw {

using JsonWriter = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

namespace {

constexpr int kGet = EVHTTP_REQ_GET;
constexpr int kPost = EVHTTP_REQ_POST;
constexpr int kHead = EVHTTP_REQ_HEAD;

const char* reasonPhrase(int code) {
  switch (code) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 415: return "Unsupported Media Type";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

std::string jsonError(const std::string& message) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("error");
  w.String(message.c_str());
  w.EndObject();
  return std::string(sb.GetString()) + "\n";
}

// The path of a request target ("/a/b?q" -> "/a/b"; "" and an
// unparsable target -> "/"), without a trailing "/" (but "/" itself).
// Parsed as evhttp parses request lines (EVHTTP_URI_NONCONFORMANT).
std::string requestPath(std::string_view uri) {
  std::string path = "/";
  if (evhttp_uri* parsed =
          evhttp_uri_parse_with_flags(std::string(uri).c_str(), EVHTTP_URI_NONCONFORMANT)) {
    const char* p = evhttp_uri_get_path(parsed);
    if (p != nullptr && *p != '\0') path = p;
    evhttp_uri_free(parsed);
  }
  if (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// The probe and scrape endpoints, which accept any Host (the kubelet and
// Prometheus use the pod IP).
bool anyHost(const std::string& path) {
  return path == "/metrics" || path == "/healthz" || path == "/ready";
}

const char* lbName(LbPolicy p) {
  switch (p) {
    case LbPolicy::kRoundRobin: return "round_robin";
    case LbPolicy::kLeastRequest: return "least_request";
    case LbPolicy::kConsistentHash: return "consistent_hash";
  }
  return "round_robin";
}

// Every registered filter type's admin view, in registry (name) order.
std::vector<const AdminView*> adminViews() {
  std::vector<const AdminView*> views;
  FilterRegistry& reg = FilterRegistry::get();
  for (const auto& name : reg.names()) {
    const FilterConfigFactory* f = reg.find(name);
    if (const AdminView* v = f != nullptr ? f->adminView() : nullptr) views.push_back(v);
  }
  return views;
}

rapidjson::Value jsonString(const std::string& s, JsonAllocator& alloc) {
  return rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), alloc);
}

// `doc` pretty-printed, with a final newline.
std::string prettyJson(const rapidjson::Document& doc) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.SetIndent(' ', 2);
  doc.Accept(w);
  return std::string(sb.GetString()) + "\n";
}

bool looksSecret(std::string_view key) {
  std::string k(key);
  std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* s : {"password", "passwd", "secret", "token", "credential", "api_key", "apikey",
                        "private_key", "auth"}) {
    if (k.find(s) != std::string::npos) return true;
  }
  return false;
}

// "scheme://user:pw@host/..." -> "scheme://[redacted]@host/..."; else unchanged.
std::optional<std::string> redactUrl(std::string_view s) {
  size_t scheme = s.find("://");
  if (scheme == std::string_view::npos) return std::nullopt;
  size_t start = scheme + 3;
  size_t end = s.find_first_of("/?#", start);
  std::string_view authority = s.substr(start, end == std::string_view::npos ? s.npos : end - start);
  size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  return std::string(s.substr(0, start)) + "[redacted]" + std::string(s.substr(start + at));
}

void redactValue(rapidjson::Value& v, rapidjson::Document::AllocatorType& a) {
  if (v.IsObject()) {
    for (auto& m : v.GetObject()) {
      if (looksSecret(std::string_view(m.name.GetString(), m.name.GetStringLength()))) {
        m.value.SetString("[redacted]", a);
      } else {
        redactValue(m.value, a);
      }
    }
  } else if (v.IsArray()) {
    for (auto& e : v.GetArray()) redactValue(e, a);
  } else if (v.IsString()) {
    if (auto r = redactUrl(std::string_view(v.GetString(), v.GetStringLength())))
      v.SetString(r->c_str(), static_cast<rapidjson::SizeType>(r->size()), a);
  }
}

}  // namespace

std::string redactSecrets(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) return "{}";
  redactValue(doc, doc.GetAllocator());
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.SetIndent(' ', 2);
  doc.Accept(w);
  return sb.GetString();
}

std::optional<uint64_t> parseSessionId(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;  // overflow
    v = v * 10 + d;
  }
  if (v == 0) return std::nullopt;
  return v;
}

AdminServer::AdminServer(Dispatcher& dispatcher, AdminTarget& target, Scope scope)
    : dispatcher_(dispatcher), target_(target), scope_(scope) {
  auto& reg = stats::StatsRegistry::get();
#ifdef NDEBUG
  const char* build = "opt";
#else
  const char* build = "dbg";
#endif
  reg.gauge("game_gateway_build_info", "Build information (always 1).",
            {{"version", kGatewayVersion}, {"compiler", __VERSION__}, {"build", build}})
      .set(1);
}

AdminServer::~AdminServer() {
  if (http_) evhttp_free(http_);  // frees the connections: open_ empties
  unregisterLimits();
}

bool AdminServer::listen(const Address& addr, std::string* error, uint32_t max_connections) {
  auto fail = [&](const std::string& what) {
    *error = "admin: " + what + " " + addr.toString() + ": " + std::strerror(errno);
    return false;
  };
  int fd = socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (addr.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, addr.sockaddr_ptr(), addr.len()) != 0) {
    bool r = fail("bind");
    ::close(fd);
    return r;
  }
  if (::listen(fd, 64) != 0) {
    bool r = fail("listen");
    ::close(fd);
    return r;
  }
  bound_ = localAddress(fd);
  http_ = evhttp_new(dispatcher_.base());
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                        EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
  evhttp_set_timeout(http_, 10);
  evhttp_set_max_headers_size(http_, 16 * 1024);
  evhttp_set_max_body_size(http_, 64 * 1024);
  evhttp_set_gencb(http_, &AdminServer::onRequest, this);
  evhttp_bound_socket* bound = evhttp_accept_socket_with_handle(http_, fd);
  if (bound == nullptr) {
    ::close(fd);
    evhttp_free(http_);
    http_ = nullptr;
    errno = EINVAL;
    return fail("accept");
  }
  setUpLimits(max_connections);
  evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound), &AdminServer::onAcceptError);
  return true;
}

void AdminServer::onRequest(evhttp_request* req, void* arg) {
  static_cast<AdminServer*>(arg)->handle(req);
}

void AdminServer::handle(evhttp_request* req) {
  AdminRequest in;
  in.method = evhttp_request_get_command(req);
  const char* uri = evhttp_request_get_uri(req);
  in.uri = uri != nullptr ? uri : "/";
  evkeyvalq* received = evhttp_request_get_input_headers(req);
  for (evkeyval* h = received->tqh_first; h != nullptr; h = h->next.tqe_next)
    in.headers.emplace_back(h->key, h->value);
  evbuffer* input = evhttp_request_get_input_buffer(req);
  const size_t body_len = evbuffer_get_length(input);  // at most evhttp's 64 KiB cap
  if (body_len > 0)
    in.body = std::string_view(reinterpret_cast<const char*>(evbuffer_pullup(input, -1)), body_len);
  Response r = serve(in);
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", r.content_type.c_str());
  evhttp_add_header(headers, "Cache-Control", "no-store");
  if (!r.allow.empty()) evhttp_add_header(headers, "Allow", r.allow.c_str());
  if (r.authenticate)
    evhttp_add_header(headers, "WWW-Authenticate", "Bearer realm=\"game-gateway admin\"");
  evbuffer* body = evbuffer_new();
  if (in.method != kHead) evbuffer_add(body, r.body.data(), r.body.size());  // HEAD: no body
  evhttp_send_reply(req, r.code, reasonPhrase(r.code), body);
  evbuffer_free(body);
  GW_LOG(debug, "admin: {} {} -> {}",
         in.method == kGet ? "GET" : in.method == kPost ? "POST" : in.method == kHead ? "HEAD" : "other",
         requestPath(in.uri), r.code);
}

std::string_view AdminRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (equalsIgnoreCase(key, name)) return value;
  return std::string_view();
}

AdminResponse AdminServer::serve(const AdminRequest& req) {
  const std::string path = requestPath(req.uri);
  std::optional<Response> refused = screen(req, path);
  if (refused) return std::move(*refused);
  return scope_ == Scope::kFull ? route(req, path) : routeReadOnly(req, path);
}

// A refusal: `code` with a JSON error, counted by `reason` in
// game_gateway_admin_requests_refused_total.
AdminServer::Response AdminServer::refusal(int code, const char* reason, const std::string& message) {
  stats::StatsRegistry::get()
      .counter("game_gateway_admin_requests_refused_total",
               "Admin API requests refused by its security checks, by reason.",
               {{"reason", reason}})
      .inc();
  AdminServer::Response r;
  r.code = code;
  r.body = jsonError(message);
  r.authenticate = code == 401;
  return r;
}

std::optional<AdminServer::Response> AdminServer::screen(const AdminRequest& req,
                                                        const std::string& path) {
  auto cfg = target_.currentConfig();
  std::string_view origin = req.header("Origin");
  if (!origin.empty() && !originAllowed(origin, cfg->admin.allowed_origins)) {
    return refusal(403, "origin",
                   "Origin \"" + std::string(origin) +
                       "\" is not allowed: the admin API does not serve browser pages of other "
                       "origins (list trusted ones in admin.allowed_origins)");
  }
  if (req.header("Sec-Fetch-Site") == "cross-site") {
    return refusal(403, "cross_site",
                   "cross-site browser requests (Sec-Fetch-Site: cross-site) are not allowed");
  }
  std::string_view host = req.header("Host");
  // Browsers always send Host; a client without one is not a rebound page.
  if (!anyHost(path) && !host.empty() &&
      !hostAllowed(host, bound_.family() == AF_INET6 ? "[" + bound_.ipString() + "]"
                                                     : bound_.ipString(),
                   cfg->admin.allowed_hosts)) {
    return refusal(403, "host",
                   "Host \"" + std::string(host) +
                       "\" is not allowed: use 127.0.0.1, localhost, [::1] or the admin address, "
                       "or add the name to admin.allowed_hosts (/metrics, /healthz and /ready "
                       "accept any Host)");
  }
  return std::nullopt;
}

std::optional<AdminServer::Response> AdminServer::authorizeMutation(const AdminRequest& req) {
  auto cfg = target_.currentConfig();
  if (cfg->admin.token.empty()) {
    return refusal(403, "disabled",
                   "mutating admin endpoints are disabled: no admin token is configured; set "
                   "admin.token_file (or $GATEWAY_ADMIN_TOKEN_FILE) to a file holding a token "
                   "and send it as Authorization: Bearer <token>");
  }
  auto token = bearerToken(req.header("Authorization"));
  if (!token) {
    return refusal(401, "unauthorized",
                   "this endpoint needs the admin token: send Authorization: Bearer <token>");
  }
  if (!tokenEquals(cfg->admin.token, *token))
    return refusal(401, "unauthorized", "wrong admin token");
  std::string_view type = req.header("Content-Type");
  bool has_body = !req.body.empty();
  if (type.empty() ? has_body : !isJsonContentType(type)) {
    return refusal(415, "content_type",
                   "a POST to the admin API has no body or a JSON one with Content-Type: "
                   "application/json (got " +
                       (type.empty() ? std::string("a body without a Content-Type")
                                     : "Content-Type: " + std::string(type)) +
                       ")");
  }
  return std::nullopt;
}

AdminServer::Response AdminServer::route(const AdminRequest& req, const std::string& path) {
  const int method = req.method;
  auto wrong = [](const char* allow) {
    Response r;
    r.code = 405;
    r.allow = allow;
    r.body = jsonError(std::string("method not allowed; use ") + allow);
    return r;
  };
  bool get = method == kGet || method == kHead;
  struct Route {
    const char* path;
    bool post;
    Response (AdminServer::*fn)();
  };
  static const Route kRoutes[] = {
      {"/", false, &AdminServer::index},
      {"/metrics", false, &AdminServer::metrics},
      {"/healthz", false, &AdminServer::health},
      {"/ready", false, &AdminServer::ready},
      {"/config", false, &AdminServer::config},
      {"/clusters", false, &AdminServer::clusters},
      {"/drain", true, &AdminServer::drain},
  };
  for (const Route& rt : kRoutes) {
    if (path != rt.path) continue;
    if (rt.post) {
      if (method != kPost) return wrong("POST");
      if (auto refused = authorizeMutation(req)) return std::move(*refused);
      return (this->*rt.fn)();
    }
    return get ? (this->*rt.fn)() : wrong("GET, HEAD");
  }
  const std::string prefix = "/sessions/";
  if (path.compare(0, prefix.size(), prefix) == 0) {
    std::string rest = path.substr(prefix.size());
    const std::string kick_suffix = "/kick";
    if (rest.size() > kick_suffix.size() &&
        rest.compare(rest.size() - kick_suffix.size(), kick_suffix.size(), kick_suffix) == 0) {
      if (method != kPost) return wrong("POST");
      if (auto refused = authorizeMutation(req)) return std::move(*refused);
      return kick(std::string_view(rest).substr(0, rest.size() - kick_suffix.size()));
    }
    if (rest.find('/') == std::string::npos && !rest.empty()) {
      if (!get) return wrong("GET, HEAD");
      return session(rest);
    }
  }
  Response r;
  r.code = 404;
  r.body = jsonError("no such endpoint: " + path +
                     " (see GET / for the list)");
  return r;
}

AdminServer::Response AdminServer::routeReadOnly(const AdminRequest& req,
                                                 const std::string& path) {
  Response (AdminServer::*fn)() = nullptr;
  if (scope_ == Scope::kHealth) {
    if (path == "/healthz" || path == "/health") fn = &AdminServer::health;
    if (path == "/ready") fn = &AdminServer::ready;
  } else if (path == "/metrics") {
    fn = &AdminServer::metrics;
  }
  Response r;
  if (fn == nullptr) {
    r.code = 404;
    r.body = jsonError("no such endpoint: " + path + " (this listener serves only " +
                       (scope_ == Scope::kHealth ? "GET /healthz, /health and /ready"
                                                 : "GET /metrics") +
                       "; the admin API is on the admin address)");
    return r;
  }
  if (req.method != kGet && req.method != kHead) {
    r.code = 405;
    r.allow = "GET, HEAD";
    r.body = jsonError("method not allowed; use GET, HEAD (this listener is read-only)");
    return r;
  }
  return (this->*fn)();
}

AdminServer::Response AdminServer::index() {
  Response r;
  r.body =
      "{\n"
      "  \"endpoints\": [\n"
      "    \"GET /metrics\", \"GET /healthz\", \"GET /ready\", \"GET /config\",\n"
      "    \"GET /clusters\", \"GET /sessions/{id}\", \"POST /sessions/{id}/kick\",\n"
      "    \"POST /drain\"\n"
      "  ]\n"
      "}\n";
  return r;
}

void AdminServer::refreshDerivedMetrics() {
  auto& reg = stats::StatsRegistry::get();
  auto cfg = target_.currentConfig();
  AdminContext ctx{cfg->clusters, target_.workerCount()};
  for (const AdminView* v : adminViews()) v->onScrape(ctx);
  reg.gauge("game_gateway_draining", "1 while the gateway drains (not accepting), else 0.")
      .set(target_.draining() ? 1 : 0);
  reg.gauge("game_gateway_config_generation",
            "Config generation in force: 1 at start, +1 per applied reload.")
      .set(static_cast<int64_t>(target_.configGeneration()));
}

AdminServer::Response AdminServer::metrics() {
  refreshDerivedMetrics();
  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = stats::StatsRegistry::get().serialize();
  return r;
}

AdminServer::Response AdminServer::health() {
  Response r;
  r.body = "{\"status\": \"ok\"}\n";
  return r;
}

AdminServer::Response AdminServer::ready() {
  Response r;
  if (target_.draining()) {
    r.code = 503;
    r.body = "{\"status\": \"draining\"}\n";
  } else if (!target_.ready()) {
    r.code = 503;
    r.body = "{\"status\": \"starting\"}\n";
  } else {
    r.body = "{\"status\": \"ready\"}\n";
  }
  return r;
}

AdminServer::Response AdminServer::config() {
  auto cfg = target_.currentConfig();
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("source", jsonString(cfg->source, a), a);
  doc.AddMember("generation", static_cast<uint64_t>(target_.configGeneration()), a);
  rapidjson::Value eff(rapidjson::kObjectType);
  eff.AddMember("workers", static_cast<uint64_t>(cfg->workers), a);
  eff.AddMember("log_level", jsonString(cfg->log_level, a), a);
  eff.AddMember("drain_timeout_ms", static_cast<int64_t>(cfg->drain_timeout.count()), a);
  eff.AddMember("memory_trim_interval_ms", static_cast<int64_t>(cfg->memory_trim_interval.count()), a);
  eff.AddMember("admin_address", jsonString(bound_.toString(), a), a);
  rapidjson::Value admin(rapidjson::kObjectType);
  admin.AddMember("mutating_endpoints", !cfg->admin.token.empty(), a);
  admin.AddMember("token_file", jsonString(cfg->admin.token_file, a), a);
  rapidjson::Value hosts(rapidjson::kArrayType);
  for (const auto& h : cfg->admin.allowed_hosts) hosts.PushBack(jsonString(h, a), a);
  admin.AddMember("allowed_hosts", hosts, a);
  rapidjson::Value origins(rapidjson::kArrayType);
  for (const auto& o : cfg->admin.allowed_origins) origins.PushBack(jsonString(o, a), a);
  admin.AddMember("allowed_origins", origins, a);
  eff.AddMember("admin", admin, a);
  rapidjson::Value log(rapidjson::kObjectType);
  log.AddMember("enabled", cfg->access_log.enabled, a);
  log.AddMember("path", jsonString(cfg->access_log.path, a), a);
  log.AddMember("sample_rate", cfg->access_log.sample_rate, a);
  eff.AddMember("access_log", log, a);
  rapidjson::Value plugins(rapidjson::kArrayType);
  for (const auto& p : cfg->plugins) plugins.PushBack(jsonString(p, a), a);
  eff.AddMember("plugins", plugins, a);
  rapidjson::Value listeners(rapidjson::kArrayType);
  for (const auto& l : cfg->listeners) {
    rapidjson::Value lj(rapidjson::kObjectType);
    lj.AddMember("name", jsonString(l.name, a), a);
    lj.AddMember("address", jsonString(l.address.toString(), a), a);
    rapidjson::Value filters(rapidjson::kArrayType);
    for (const auto& f : l.filters) {
      rapidjson::Value fj(rapidjson::kObjectType);
      fj.AddMember("name", jsonString(f.name, a), a);
      // The filter's own description: values in force, secrets left out.
      rapidjson::Value described(rapidjson::kObjectType);
      if (f.config) f.config->describe(described, a);
      fj.AddMember("config", described, a);
      filters.PushBack(fj, a);
    }
    lj.AddMember("filters", filters, a);
    listeners.PushBack(lj, a);
  }
  eff.AddMember("listeners", listeners, a);
  doc.AddMember("effective", eff, a);
  // The file as loaded, secrets redacted.
  rapidjson::Document file(&a);
  file.Parse(cfg->json.c_str(), cfg->json.size());
  rapidjson::Value file_json(rapidjson::kObjectType);
  if (!file.HasParseError()) {
    redactValue(file, a);
    file_json.CopyFrom(file, a);
  }
  doc.AddMember("config", file_json, a);
  Response r;
  r.body = prettyJson(doc);
  return r;
}

AdminServer::Response AdminServer::clusters() {
  auto cfg = target_.currentConfig();
  AdminContext ctx{cfg->clusters, target_.workerCount()};
  std::vector<const AdminView*> views = adminViews();
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  rapidjson::Value clusters(rapidjson::kArrayType);
  auto add = [&](const ClusterConfig& c, std::string_view source) {
    rapidjson::Value cj(rapidjson::kObjectType);
    cj.AddMember("name", jsonString(c.name, a), a);
    if (!source.empty()) cj.AddMember("source", jsonString(source, a), a);
    cj.AddMember("lb", rapidjson::StringRef(lbName(c.lb)), a);
    cj.AddMember("connect_timeout_ms", static_cast<int64_t>(c.connect_timeout.count()), a);
    cj.AddMember("idle_timeout_ms", static_cast<int64_t>(c.idle_timeout.count()), a);
    cj.AddMember("max_connections_per_service", c.max_connections_per_service, a);
    cj.AddMember("max_connections", c.max_connections, a);
    for (const AdminView* v : views) v->describeCluster(ctx, c, cj, a);
    if (!c.host_names.empty()) {
      rapidjson::Value names(rapidjson::kArrayType);
      for (const auto& n : c.host_names) names.PushBack(jsonString(n.toString(), a), a);
      cj.AddMember("host_names", names, a);
    }
    // The cluster manager's hosts (DNS-resolved ones included).
    rapidjson::Value hosts(rapidjson::kArrayType);
    for (const auto& h : currentHosts(c)) {
      rapidjson::Value hj(rapidjson::kObjectType);
      hj.AddMember("address", jsonString(h.name, a), a);
      for (const AdminView* v : views) v->describeHost(ctx, c, h.address, hj, a);
      hosts.PushBack(hj, a);
    }
    cj.AddMember("hosts", hosts, a);
    clusters.PushBack(cj, a);
  };
  for (const auto& c : cfg->clusters) add(c, "");
  // Clusters a dynamic source made that the config does not name (e.g.
  // upstream's Go-format rules: "go:ip:port", source "go_routes"); their
  // settings shown are the defaults.
  for (const auto& set : ClusterManager::process().all()) {
    if (findCluster(cfg->clusters, set->cluster) != nullptr) continue;
    ClusterConfig c;
    c.name = set->cluster;
    for (const auto& h : set->hosts) c.hosts.push_back(h.address);
    add(c, set->source);
  }
  doc.AddMember("clusters", clusters, a);
  Response r;
  r.body = prettyJson(doc);
  return r;
}

AdminServer::Response AdminServer::session(std::string_view id_text) {
  Response r;
  auto id = parseSessionId(id_text);
  if (!id) {
    r.code = 400;
    r.body = jsonError("bad session id \"" + std::string(id_text) +
                       "\": expected a decimal number from 1 to 18446744073709551615");
    return r;
  }
  SessionRegistry* reg = SessionRegistry::get();
  if (reg == nullptr) {
    r.code = 404;
    r.body = jsonError("sessions are not tracked: no listener uses the 'session' filter");
    return r;
  }
  auto json = reg->describeJson(*id);
  if (!json) {
    r.code = 404;
    r.body = jsonError("no session " + std::to_string(*id) + " on this gateway");
    return r;
  }
  r.body = *json + "\n";
  return r;
}

AdminServer::Response AdminServer::kick(std::string_view id_text) {
  Response r;
  auto id = parseSessionId(id_text);
  if (!id) {
    r.code = 400;
    r.body = jsonError("bad session id \"" + std::string(id_text) +
                       "\": expected a decimal number from 1 to 18446744073709551615");
    return r;
  }
  SessionRegistry* reg = SessionRegistry::get();
  if (reg == nullptr) {
    r.code = 404;
    r.body = jsonError("sessions are not tracked: no listener uses the 'session' filter");
    return r;
  }
  if (!reg->kick(*id, "kicked by an operator (admin API)")) {
    r.code = 404;
    r.body = jsonError("no session " + std::to_string(*id) + " on this gateway");
    return r;
  }
  GW_LOG(info, "admin: kicked session {}", *id);
  r.body = "{\"kicked\": \"" + std::to_string(*id) + "\"}\n";
  return r;
}

AdminServer::Response AdminServer::drain() {
  Response r;
  r.code = 202;
  bool already = target_.draining();
  target_.drain("POST /drain");
  r.body = std::string("{\"status\": \"draining\", \"already_draining\": ") +
           (already ? "true" : "false") +
           ", \"active_connections\": " + std::to_string(target_.activeConnections()) + "}\n";
  return r;
}

}  // namespace gw
