// test/fuzz/admin_request_fuzz.cc — fuzz target: the admin API's own
// request handling.
//
// evhttp parses HTTP; what the gateway does with the parsed request (the
// path and query of the target, the session ids, the security checks on the
// headers, the body check of the POST endpoints) is AdminServer::serve()
// (core/admin.h), driven here directly. The server listens on 127.0.0.1:0
// (no client ever connects) with an admin token, for a fake gateway and a
// fake session registry that knows sessions 7 and 2^64-1.
// Input layout: byte 0 picks the method (GET, POST, HEAD, PUT, DELETE,
// OPTIONS, PATCH); the rest is text: the first line the request target,
// then "Name: value" header lines up to an empty line, then the body.
// Invariants: the status is one the API documents; a JSON response body is
// valid JSON; a 405 names the allowed methods and nothing else does; a 401
// and only a 401 asks for a bearer token; a drain or a kick happens only for
// a POST that presented the right token, and answers 202 / 200.
#include <event2/http.h>
#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/admin.h"
#include "core/admin_guard.h"
#include "core/sdk/address.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/log.h"
#include "core/sdk/session_registry.h"
#include "test/fuzz/check.h"

namespace {

constexpr std::string_view kToken = "fuzz-admin-token-0123456789";

class FakeGateway : public gw::AdminTarget {
 public:
  FakeGateway() {
    auto cfg = std::make_shared<gw::GatewayConfig>();
    cfg->admin.token = std::string(kToken);
    cfg->admin.allowed_hosts = {"admin.example"};
    cfg->admin.allowed_origins = {"https://ops.example"};
    cfg->json = R"({"admin": {"token_file": "/run/token"}, "password": "x"})";
    config_ = cfg;
  }
  std::shared_ptr<const gw::GatewayConfig> currentConfig() const override { return config_; }
  uint64_t configGeneration() const override { return 1; }
  bool ready() const override { return true; }
  bool draining() const override { return drains > 0; }
  void drain(std::string_view) override { ++drains; }
  size_t activeConnections() const override { return 3; }
  size_t workerCount() const override { return 2; }

  int drains = 0;

 private:
  std::shared_ptr<const gw::GatewayConfig> config_;
};

class FakeSessions : public gw::SessionRegistry {
 public:
  std::optional<std::string> describeJson(uint64_t id) override {
    if (!known(id)) return std::nullopt;
    return "{\"id\": \"" + std::to_string(id) + "\"}";
  }
  bool kick(uint64_t id, std::string_view) override {
    if (!known(id)) return false;
    ++kicks;
    return true;
  }
  size_t activeSessions() override { return 2; }
  static bool known(uint64_t id) { return id == 7 || id == UINT64_MAX; }

  int kicks = 0;
};

struct World {
  gw::Dispatcher dispatcher{"admin-fuzz"};
  FakeGateway gateway;
  FakeSessions sessions;
  gw::AdminServer server{dispatcher, gateway};
  World() {
    std::string error;
    FUZZ_CHECK(server.listen(*gw::Address::parse("127.0.0.1:0"), &error), "%s", error.c_str());
    gw::SessionRegistry::install(&sessions);
  }
};

World& world() {
  static World* w = new World();  // never destroyed: outlives every input
  return *w;
}

bool knownStatus(int code) {
  for (int c : {200, 202, 400, 401, 403, 404, 405, 415, 503})
    if (code == c) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gw::log::setLevel("off");
  world();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const int kMethods[] = {EVHTTP_REQ_GET,    EVHTTP_REQ_POST,    EVHTTP_REQ_HEAD,
                                 EVHTTP_REQ_PUT,    EVHTTP_REQ_DELETE,  EVHTTP_REQ_OPTIONS,
                                 EVHTTP_REQ_PATCH};
  gw::AdminRequest req;
  req.method = kMethods[data[0] % (sizeof(kMethods) / sizeof(kMethods[0]))];
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto line = [&text]() {
    size_t nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    return l;
  };
  req.uri = line();
  while (!text.empty()) {
    std::string_view h = line();
    if (h.empty()) break;
    size_t colon = h.find(':');
    std::string_view value = colon == std::string_view::npos ? "" : h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    req.headers.emplace_back(h.substr(0, colon), value);
  }
  req.body = text;

  World& w = world();
  const int drains = w.gateway.drains;
  const int kicks = w.sessions.kicks;
  const gw::AdminResponse r = w.server.serve(req);

  FUZZ_CHECK(knownStatus(r.code), "status %d", r.code);
  FUZZ_CHECK(!r.body.empty(), "empty body (status %d)", r.code);
  if (r.content_type == "application/json") {
    rapidjson::Document doc;
    doc.Parse(r.body.data(), r.body.size());
    FUZZ_CHECK(!doc.HasParseError(), "status %d with a body that is not JSON: %s", r.code,
               r.body.c_str());
  }
  FUZZ_CHECK((r.code == 405) == !r.allow.empty(), "status %d with Allow \"%s\"", r.code,
             r.allow.c_str());
  FUZZ_CHECK((r.code == 401) == r.authenticate, "status %d, WWW-Authenticate %d", r.code,
             r.authenticate);
  const bool mutated = w.gateway.drains != drains || w.sessions.kicks != kicks;
  if (mutated) {
    auto token = gw::bearerToken(req.header("Authorization"));
    FUZZ_CHECK(req.method == EVHTTP_REQ_POST, "a mutation by a method other than POST");
    FUZZ_CHECK(token && *token == kToken, "a mutation without the admin token");
    FUZZ_CHECK(w.gateway.drains - drains + w.sessions.kicks - kicks == 1, "more than one mutation");
    FUZZ_CHECK(r.code == (w.gateway.drains != drains ? 202 : 200), "a mutation answered %d",
               r.code);
  }
  return 0;
}
