// core/admin.h — the admin HTTP API (libevent evhttp) on the main thread.
//
// Defines AdminTarget (what the admin API asks of the running gateway:
// config, readiness, drain) and AdminServer, which serves on the main
// thread's Dispatcher, by default on 127.0.0.1:9901 only:
//
//   GET  /metrics               Prometheus text (StatsRegistry::serialize)
//   GET  /healthz               200 while the process and its main loop live
//   GET  /ready                 200 ready; 503 starting or draining
//   GET  /config                the running config, secrets redacted
//   GET  /clusters              clusters and hosts, with what filters add
//   GET  /sessions/{id}         one session (404 without a `session` filter)
//   POST /sessions/{id}/kick    closes the session's client (reason kicked)
//   POST /drain                 starts draining (as SIGTERM does)
//
// Every response but /metrics is JSON; errors are {"error": "..."} with 400
// (bad id), 404 (no such path or session), 405 (wrong method; the Allow
// header lists the right one). docs/admin.md documents each endpoint.
// Security (docs/admin.md, "Security"; checks in core/admin_guard.h): a
// request with an Origin outside admin.allowed_origins or with
// Sec-Fetch-Site: cross-site is refused (403), and so is a Host outside
// the allowed ones except on /metrics, /healthz and /ready. The POST
// endpoints need Authorization: Bearer <admin.token_file's token> (401;
// 403 when no token is configured) and no body or a JSON one (415).
// The server knows no filter's metrics: GET /clusters and GET /metrics ask
// every registered filter type's AdminView (core/sdk/admin_view.h), in
// registry (name) order, to add what it shows; GET /config shows each
// filter's FilterConfig::describe().
// Also defines AdminRequest / AdminResponse (a request and its answer free of
// evhttp: AdminServer::serve() maps one to the other, so tests and the fuzz
// target test/fuzz/admin_request_fuzz.cc drive the handling without
// sockets) and the helpers the endpoints use, exposed for tests:
// redactSecrets(), parseSessionId().
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/accept_guard.h"
#include "core/sdk/address.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/version.h"

struct bufferevent;
struct event_base;
struct evconnlistener;
struct evhttp;
struct evhttp_request;

namespace gw {

// What the admin API reads from and asks of the gateway. Called on the main
// thread only.
class AdminTarget {
 public:
  virtual ~AdminTarget() = default;
  // The config in force (the latest successful load or reload).
  virtual std::shared_ptr<const GatewayConfig> currentConfig() const = 0;
  // How many successful loads (1 at start, +1 per applied reload).
  virtual uint64_t configGeneration() const = 0;
  // True once every worker's loop runs and listeners accept, and not draining.
  virtual bool ready() const = 0;
  virtual bool draining() const = 0;
  // Starts draining (idempotent); `why` is logged.
  virtual void drain(std::string_view why) = 0;
  // Client connections open, all workers.
  virtual size_t activeConnections() const = 0;
  // Worker threads.
  virtual size_t workerCount() const = 0;
};

// One admin request as evhttp parsed it (method, target, headers, body),
// viewing bytes the caller keeps alive. Built per request by
// AdminServer::handle(), or by a test.
struct AdminRequest {
  int method = 0;        // an EVHTTP_REQ_* value (GET 1, POST 2, HEAD 4, ...)
  std::string_view uri;  // the request target as received: "/sessions/7?x=1"
  // Every header, in the order received (names in any case).
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string_view body;

  // The value of the first header named `name` (compared in any case, as
  // evhttp_find_header does), or "" when there is none.
  std::string_view header(std::string_view name) const;
};

// The answer to an AdminRequest. The status line's phrase and the headers
// follow from it (Content-Type, Allow for a 405, WWW-Authenticate for a 401).
struct AdminResponse {
  int code = 200;
  std::string body;  // sent except for HEAD
  std::string content_type = "application/json";
  std::string allow;          // the Allow header of a 405
  bool authenticate = false;  // a 401: send WWW-Authenticate: Bearer
};

class AdminServer {
 public:
  // What a server answers. kFull: every endpoint above (the admin port).
  // The read-only listeners (top-level health_listener / metrics_listener,
  // the Go gateway's 9090 / 9091 layout) answer only GET/HEAD of their
  // paths: kHealth /healthz, /health (the Go gateway's name) and /ready;
  // kMetrics /metrics. Anything else is 404, another method 405.
  enum class Scope { kFull, kHealth, kMetrics };

  // Serves on `dispatcher` (the main thread's) for `target`.
  AdminServer(Dispatcher& dispatcher, AdminTarget& target, Scope scope = Scope::kFull);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds `addr` (no SO_REUSEPORT: a second gateway on the same admin port
  // fails here) and starts serving. Port 0 binds a free port. Returns false
  // with *error set ("admin: bind 127.0.0.1:9901: Address already in use").
  // At most `max_connections` admin connections stay open: a new one beyond
  // that closes the oldest (so probes keep answering while idle clients
  // hold connections). At the fd limit the admin lends itself a reserve fd
  // for one connection at a time, then pauses accepting with a backoff.
  bool listen(const Address& addr, std::string* error, uint32_t max_connections = 64);
  // The bound address (the real port when 0 was asked for).
  const Address& address() const { return bound_; }

  // Answers one request: the security checks, the routing (the path of
  // req.uri; the query string is ignored; "/x/" is "/x"), the endpoint.
  // A HEAD's body is dropped by the caller, not here. Main thread only.
  AdminResponse serve(const AdminRequest& req);

  // Metrics computed at scrape time: draining, config generation, and what
  // every registered filter type's AdminView::onScrape sets (upstream: pool
  // capacity per host). Called by /metrics before serializing; public for
  // tests.
  void refreshDerivedMetrics();

 private:
  using Response = AdminResponse;
  static void onRequest(evhttp_request* req, void* arg);
  // Reads the request out of evhttp, serve()s it and sends the reply.
  void handle(evhttp_request* req);
  // The checks every request passes (Origin, Sec-Fetch-Site, Host except on
  // the probe/scrape paths); the refusal, or nullopt to go on.
  // A refusal: `code` with a JSON error `message`, counted by `reason` in
  // game_gateway_admin_requests_refused_total.
  static Response refusal(int code, const char* reason, const std::string& message);
  std::optional<Response> screen(const AdminRequest& req, const std::string& path);
  // The checks of a mutating request (a token configured and presented,
  // no body or a JSON one); the refusal, or nullopt to go on.
  std::optional<Response> authorizeMutation(const AdminRequest& req);
  Response route(const AdminRequest& req, const std::string& path);
  // route() for a read-only scope (kHealth, kMetrics).
  Response routeReadOnly(const AdminRequest& req, const std::string& path);
  Response metrics();
  Response health();
  Response ready();
  Response config();
  Response clusters();
  Response session(std::string_view id_text);
  Response kick(std::string_view id_text);
  Response drain();
  Response index();

  // Connection cap and fd-limit handling (core/admin_limits.cc).
  // One open admin connection: its socket bufferevent (a reference held).
  struct OpenConnection {
    bufferevent* socket;
  };
  static bufferevent* onNewConnection(event_base* base, void* arg);
  void sweepConnections();
  static void onAcceptError(evconnlistener* lev, void* arg);
  void setUpLimits(uint32_t max_connections);
  void unregisterLimits();

  Dispatcher& dispatcher_;
  AdminTarget& target_;
  Scope scope_;
  evhttp* http_ = nullptr;
  Address bound_;
  uint32_t max_connections_ = 64;
  std::list<OpenConnection> open_;  // oldest first
  // Lent at the fd limit: one fd for the connection, two for what serving
  // it may open (a sanitizer runtime's pipe, for one).
  ReserveFd reserve_{3};
  std::unique_ptr<AcceptGuard> guard_;
  std::unique_ptr<Timer> restore_reserve_;
  std::unique_ptr<Timer> sweep_;
  stats::Counter* evicted_ = nullptr;
  stats::Gauge* open_gauge_ = nullptr;
};

// Returns `json` with the value of every object member whose key looks
// secret (contains "password", "passwd", "secret", "token", "credential",
// "api_key", "apikey", "private_key" or "auth", any case) replaced by
// "[redacted]", and the user-info of URL strings ("redis://user:pw@host")
// replaced likewise. Pretty-printed. Returns "{}" if `json` does not parse.
std::string redactSecrets(std::string_view json);

// Parses a session id path segment: decimal digits only, 1..20 of them, no
// sign, value in 1..2^64-1. Returns nullopt otherwise.
std::optional<uint64_t> parseSessionId(std::string_view text);

}  // namespace gw
