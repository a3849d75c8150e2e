#include "filters/breaker/breaker.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>

#include "core/sdk/clock.h"
#include "core/sdk/log.h"
#include "core/sdk/session_info.h"
#include "filters/breaker/breaker_admin_view.h"
#include "filters/breaker/breaker_schema.h"

namespace gw {
namespace breaker {

namespace {

constexpr int64_t kNsPerMs = 1'000'000;

// Milliseconds to wait from now_ns until at_ns, rounded up, at least 1.
std::chrono::milliseconds delayUntil(int64_t at_ns, int64_t now_ns) {
  int64_t d = at_ns - now_ns;
  int64_t ms = d <= 0 ? 1 : (d + kNsPerMs - 1) / kNsPerMs;
  return std::chrono::milliseconds(std::max<int64_t>(ms, 1));
}

// "~" -> "~0", "/" -> "~1" (RFC 6901), for JSON pointers naming a cluster.
std::string pointerToken(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

// Everything one cluster's breaker is configured with, before it becomes
// a ClusterBreakerSpec (durations already in ns).
struct Settings {
  BreakerPolicy policy;
  bool per_host = true;
  uint32_t max_pending = 0;
  uint32_t max_ejection_percent = 50;
  bool max_pending_set = false;  // set in this object (for the expect_reply check)
};

// Applies the fields present in `obj` (schema-valid) onto *s; a value out
// of range is recorded at `at`/<key> and leaves the field as it was.
void applySettings(const rapidjson::Value& obj, Settings* s, bool is_override,
                   const std::string& at, ParseContext& ctx) {
  using std::chrono::milliseconds;
  auto dur = [&](const char* key, int64_t* ns, milliseconds min) {
    milliseconds d = ctx.duration(obj, key, milliseconds(*ns / kNsPerMs), min,
                                  kMaxConfigDuration, at);
    *ns = static_cast<int64_t>(d.count()) * kNsPerMs;
  };
  auto count = [&](const char* key, uint32_t* v, uint64_t min, uint64_t max) {
    *v = static_cast<uint32_t>(ctx.size(obj, key, *v, min, max, at));
  };
  BreakerPolicy& p = s->policy;
  count("failure_threshold", &p.failure_threshold, 0, 1000000);
  if (obj.HasMember("failure_ratio")) p.failure_ratio = obj["failure_ratio"].GetDouble();
  // The window is counted in 10 buckets of at least 1ms each.
  dur("window", &p.window_ns, milliseconds(10));
  count("min_requests", &p.min_requests, 1, 1000000000);
  dur("open_duration", &p.open_ns, milliseconds(1));
  dur("max_open_duration", &p.max_open_ns, milliseconds(1));
  count("half_open_max_probes", &p.half_open_max_probes, 1, 1000);
  dur("reply_timeout", &p.reply_timeout_ns, milliseconds(1));
  dur("reconnect_grace", &p.reconnect_grace_ns, milliseconds(0));
  if (obj.HasMember("max_pending")) {
    count("max_pending", &s->max_pending, 0, 1000000000);
    s->max_pending_set = is_override;
  }
  if (obj.HasMember("per_host")) s->per_host = obj["per_host"].GetBool();
  count("max_ejection_percent", &s->max_ejection_percent, 0, 100);
}

// Cross-field checks of one cluster's settings (each field's own range is
// checked as it is read); `at` is the JSON pointer of the object whose
// fields are reported ("" or "/clusters/game"). `cluster` and `base` are
// null for the top-level settings; for an override, a rule whose fields all
// equal the top level's is skipped (reported there once).
void checkSettings(const Settings& s, const ClusterConfig* cluster, const Settings* base,
                   const std::string& at, ParseContext& ctx) {
  const BreakerPolicy& p = s.policy;
  auto changed = [&](auto field) { return base == nullptr || field(s) != field(*base); };
  auto open = [](const Settings& x) { return x.policy.open_ns; };
  auto max_open = [](const Settings& x) { return x.policy.max_open_ns; };
  auto threshold = [](const Settings& x) { return x.policy.failure_threshold; };
  auto ratio = [](const Settings& x) { return x.policy.failure_ratio; };
  if (p.max_open_ns < p.open_ns && (changed(open) || changed(max_open))) {
    ctx.fail(at + "/max_open_duration",
             "must be ≥ open_duration (" + std::to_string(p.open_ns / kNsPerMs) +
                 "ms): it caps the exponential backoff of the open period");
  }
  if (p.failure_threshold == 0 && p.failure_ratio == 0 && (changed(threshold) || changed(ratio))) {
    std::string whose =
        cluster == nullptr ? "the breaker" : "the breaker of cluster '" + cluster->name + "'";
    ctx.fail(at, "failure_threshold and failure_ratio are both 0, so " + whose +
                     " could never open: set failure_threshold > 0 or failure_ratio > 0");
  }
  if (cluster != nullptr && s.max_pending_set && s.max_pending > 0 && !cluster->expect_reply) {
    ctx.fail(at + "/max_pending",
             "cluster '" + cluster->name +
                 "' is not request/response (expect_reply is false), "
                 "so no frame is ever pending: set \"expect_reply\": true on the cluster or "
                 "remove max_pending");
  }
}

}  // namespace

bool parseSpecs(const rapidjson::Value& json, ParseContext& ctx,
                std::vector<ClusterBreakerSpec>* out) {
  Settings base;
  applySettings(json, &base, false, "", ctx);
  const rapidjson::Value* overrides = json.HasMember("clusters") ? &json["clusters"] : nullptr;
  if (overrides != nullptr) {
    for (auto m = overrides->MemberBegin(); m != overrides->MemberEnd(); ++m) {
      std::string name = m->name.GetString();
      ctx.cluster(name, "/clusters/" + pointerToken(name));  // records an unknown one
    }
  }
  // The top-level settings apply to every cluster without an override:
  // check them once, then each override (merged over them) on its own.
  checkSettings(base, nullptr, nullptr, "", ctx);
  for (const ClusterConfig& c : ctx.clusters()) {
    Settings s = base;
    if (overrides != nullptr && overrides->HasMember(c.name.c_str())) {
      std::string at = "/clusters/" + pointerToken(c.name);
      applySettings((*overrides)[c.name.c_str()], &s, true, at, ctx);
      checkSettings(s, &c, &base, at, ctx);
    }
    ClusterBreakerSpec spec;
    spec.cluster = c.name;
    for (const auto& h : c.hosts) spec.hosts.push_back(h.toString());
    spec.expect_reply = c.expect_reply;
    spec.policy = s.policy;
    spec.per_host = s.per_host;
    spec.max_pending = c.expect_reply ? s.max_pending : 0;
    spec.max_ejection_percent = s.max_ejection_percent;
    out->push_back(std::move(spec));
  }
  return ctx.ok();
}

namespace {

rapidjson::Value nsDuration(int64_t ns, JsonAllocator& alloc) {
  return jsonDuration(std::chrono::milliseconds(ns / kNsPerMs), alloc);
}

}  // namespace

void BreakerConfig::describe(rapidjson::Value& out, JsonAllocator& alloc) const {
  rapidjson::Value by_cluster(rapidjson::kObjectType);
  for (const auto& cb : clusters) {
    const ClusterBreakerSpec& spec = cb->spec();
    const BreakerPolicy& p = spec.policy;
    rapidjson::Value o(rapidjson::kObjectType);
    o.AddMember("failure_threshold", p.failure_threshold, alloc);
    o.AddMember("failure_ratio", p.failure_ratio, alloc);
    o.AddMember("window", nsDuration(p.window_ns, alloc), alloc);
    o.AddMember("min_requests", p.min_requests, alloc);
    o.AddMember("open_duration", nsDuration(p.open_ns, alloc), alloc);
    o.AddMember("max_open_duration", nsDuration(p.max_open_ns, alloc), alloc);
    o.AddMember("half_open_max_probes", p.half_open_max_probes, alloc);
    o.AddMember("reply_timeout", nsDuration(p.reply_timeout_ns, alloc), alloc);
    o.AddMember("reconnect_grace", nsDuration(p.reconnect_grace_ns, alloc), alloc);
    o.AddMember("max_pending", spec.max_pending, alloc);
    o.AddMember("per_host", spec.per_host, alloc);
    o.AddMember("max_ejection_percent", spec.max_ejection_percent, alloc);
    o.AddMember("expect_reply", spec.expect_reply, alloc);
    by_cluster.AddMember(jsonString(spec.cluster, alloc), o, alloc);
  }
  out.AddMember("clusters", by_cluster, alloc);
}

BreakerConfig::~BreakerConfig() {
  for (const auto& cb : clusters) BreakerRegistry::get().release(*cb);
}

// ---------------------------------------------------------------- BreakerHub

const std::shared_ptr<ClusterBreaker> BreakerHub::kNone;

BreakerHub::~BreakerHub() {
  // Factories detach before the worker's services are destroyed; the bus
  // may already be gone here, so it is not touched.
}

void BreakerHub::attach(Dispatcher& dispatcher, UpstreamEventBus& bus, HostAvailabilitySlot& slot) {
  if (attached_++ > 0) return;
  dispatcher_ = &dispatcher;
  bus_ = &bus;
  slot_ = &slot;
  bus_->subscribe(this);
  if (slot_->impl == nullptr) {
    slot_->impl = this;
    owns_slot_ = true;
  } else {
    owns_slot_ = false;
    GW_LOG(warn,
           "breaker: {}: another filter already decides host availability; host ejection "
           "by the breaker is off on this worker",
           dispatcher.name());
  }
  tick_timer_ = std::make_unique<Timer>(dispatcher, [this] { onTick(); });
}

void BreakerHub::detach() {
  if (attached_ == 0 || --attached_ > 0) return;
  bus_->unsubscribe(this);
  if (owns_slot_ && slot_->impl == this) slot_->impl = nullptr;
  owns_slot_ = false;
  tick_timer_.reset();
  cache_.clear();
  watched_.clear();
  forwarding_ = nullptr;
  bus_ = nullptr;
  slot_ = nullptr;
}

int64_t BreakerHub::nowNs() const {
  // The coarse clock (core/clock.h): millisecond precision is all the
  // breaker needs (window buckets >= 1 ms, durations in ms).
  return coarseNowNs();
}

const std::shared_ptr<ClusterBreaker>& BreakerHub::resolve(const std::string* name) {
  if (name == nullptr) return kNone;
  uint64_t gen = BreakerRegistry::get().generation();
  if (gen != cache_generation_) {
    cache_.clear();
    cache_generation_ = gen;
  }
  for (const CacheEntry& e : cache_)
    if (e.name == name) return e.cb;
  // First sight of this string (a route table's or a pool's copy of the
  // name): look it up once. Unknown clusters are cached as "no breaker".
  cache_.push_back(CacheEntry{name, BreakerRegistry::get().find(*name)});
  return cache_.back().cb;
}

void BreakerHub::handle(ClusterBreaker& cb, const Transition& t) {
  if (!t.happened || t.to != CircuitState::kOpen) return;
  bool known = false;
  for (const auto& w : watched_) known = known || w.get() == &cb;
  if (!known) watched_.push_back(cb.shared_from_this());
  armTick(t.open_until_ns);
}

void BreakerHub::recordSuccess(ClusterBreaker& cb, size_t host, int64_t now_ns) {
  bool host_ejected = false;
  if (BreakerState* hs = cb.host(host)) {
    host_ejected = hs->ejected();
    handle(cb, hs->recordSuccess(now_ns));
  }
  if (!host_ejected) handle(cb, cb.cluster().recordSuccess(now_ns));
}

void BreakerHub::recordFailure(ClusterBreaker& cb, size_t host, FailureKind kind, int64_t now_ns) {
  auto& failures = cb.stats().failures;
  if (host < failures.size()) failures[host][static_cast<size_t>(kind)]->inc();
  bool count_for_cluster = true;
  if (BreakerState* hs = cb.host(host)) {
    // A host that is or can still be ejected takes its own failures: the
    // cluster-level breaker only sees failures that ejection cannot absorb
    // (single host, or the ejection cap used by other hosts).
    bool ejectable = hs->ejected() || cb.ejectedCount() < cb.maxEjected();
    count_for_cluster = !ejectable;
    handle(cb, hs->recordFailure(now_ns, kind));
  }
  if (count_for_cluster) handle(cb, cb.cluster().recordFailure(now_ns, kind));
}

void BreakerHub::armTick(int64_t at_ns) {
  if (!tick_timer_) return;
  if (tick_timer_->enabled() && tick_at_ns_ <= at_ns) return;
  tick_at_ns_ = at_ns;
  tick_timer_->enable(delayUntil(at_ns, nowNs()));
}

void BreakerHub::onTick() {
  int64_t now = nowNs();
  int64_t next = std::numeric_limits<int64_t>::max();
  // Moves due breakers to half-open; forgets clusters with nothing open.
  auto still_open = [&](ClusterBreaker& cb) {
    bool open = false;
    auto visit = [&](BreakerState& s) {
      s.tick(now);
      if (s.state() == CircuitState::kOpen) {
        open = true;
        next = std::min(next, s.openUntilNs());
      }
    };
    visit(cb.cluster());
    for (size_t h = 0; h < cb.hostCount(); ++h) visit(*cb.host(h));
    return open;
  };
  watched_.erase(
      std::remove_if(watched_.begin(), watched_.end(),
                     [&](const std::shared_ptr<ClusterBreaker>& cb) { return !still_open(*cb); }),
      watched_.end());
  if (next != std::numeric_limits<int64_t>::max()) {
    tick_at_ns_ = next;
    tick_timer_->enable(delayUntil(next, now));
  }
}

BreakerFilter* BreakerHub::sessionFilter(uint64_t session) {
  auto it = sessions_.find(session);
  if (it != sessions_.end()) return it->second;
  // Not registered yet: the filter that just forwarded a frame, if that
  // frame's session is this one.
  if (forwarding_ != nullptr && session != 0 && forwarding_->currentSessionId() == session) {
    BreakerFilter* f = forwarding_;
    sessions_.emplace(session, f);
    f->setRegisteredSession(session);
    return f;
  }
  return nullptr;
}

void BreakerHub::forget(BreakerFilter* f) {
  if (forwarding_ == f) forwarding_ = nullptr;
}

void BreakerHub::unregisterSession(uint64_t session, BreakerFilter* f) {
  auto it = sessions_.find(session);
  if (it != sessions_.end() && it->second == f) sessions_.erase(it);
}

void BreakerHub::unpinHost(ClusterBreaker& cb, size_t host) {
  for (auto& [id, f] : sessions_) f->unpin(cb, host);
}

void BreakerHub::onUpstreamEvent(const UpstreamEvent& e) {
  const std::shared_ptr<ClusterBreaker>& cbp = resolve(e.cluster);
  if (!cbp) return;
  ClusterBreaker& cb = *cbp;
  switch (e.type) {
    case UpstreamEvent::Type::kConnected:
      cb.hostConnected(e.host_index, nowNs());
      // A completed connect proves little for request/response clusters
      // (a hung backend still accepts); there only replies count.
      if (!cb.expectReply()) recordSuccess(cb, e.host_index, nowNs());
      break;
    case UpstreamEvent::Type::kFrameReceived: {
      cb.hostAnswered(e.host_index);
      recordSuccess(cb, e.host_index, nowNs());
      if (BreakerFilter* f = sessionFilter(e.session)) f->onReply(cb);
      break;
    }
    case UpstreamEvent::Type::kConnectFailed:
    case UpstreamEvent::Type::kConnectionLost: {
      // Within reconnect_grace a host's connection failures are forgiven:
      // upstream reconnects with its backoff, a restart opens nothing.
      int64_t now = nowNs();
      if (!cb.forgive(e.host_index, now)) {
        recordFailure(cb, e.host_index,
                      e.type == UpstreamEvent::Type::kConnectFailed ? FailureKind::kConnectFailed
                                                                    : FailureKind::kConnectionLost,
                      now);
      }
      unpinHost(cb, e.host_index);
      break;
    }
    case UpstreamEvent::Type::kFrameSent:
      if (BreakerFilter* f = sessionFilter(e.session)) f->onSent(cbp, e.host_index, nowNs());
      break;
    case UpstreamEvent::Type::kReplyTimeout:
      // The breaker measures reply timeouts itself (its reply_timeout); an
      // upstream-side timeout would count the same silence twice.
      break;
  }
}

bool BreakerHub::available(const std::string& cluster, size_t host_index) {
  const std::shared_ptr<ClusterBreaker>& cb = resolve(&cluster);
  if (!cb) return true;
  BreakerState* hs = cb->host(host_index);
  if (hs == nullptr || !hs->ejected()) return true;
  return hs->allow([this] { return nowNs(); }) != Admission::kRejectOpen;
}

// ---------------------------------------------------------------- BreakerFilter

BreakerFilter::~BreakerFilter() { release(); }

uint64_t BreakerFilter::currentSessionId() {
  SessionInfo* s = callbacks().slots().get<SessionInfo>();
  return s == nullptr ? 0 : s->id;
}

BreakerFilter::Record* BreakerFilter::recordByName(const std::string* name) {
  for (Record& r : records_)
    if (r.route_name == name) return &r;
  const std::shared_ptr<ClusterBreaker>& cb = hub_.resolve(name);
  if (!cb) return nullptr;
  for (Record& r : records_) {
    if (r.cb == cb) {
      r.route_name = name;
      return &r;
    }
  }
  records_.push_back(Record{cb, name});
  return &records_.back();
}

BreakerFilter::Record* BreakerFilter::recordByBreaker(ClusterBreaker& cb) {
  for (Record& r : records_)
    if (r.cb.get() == &cb) return &r;
  return nullptr;
}

FilterStatus BreakerFilter::reject(ClusterBreaker& cb, Frame& frame, ErrorCode code) {
  uint16_t msg_id = frame.header.msg_id;
  if (!frame.consumed()) frame.discardPayload();
  if (code == ErrorCode::kUpstreamOverflow)
    cb.stats().rejected_overflow->inc();
  else {
    cb.stats().rejected_open->inc();
    cb.stats().routing_open->inc();
  }
  // The error frame (core/error_frame.h), built without allocating.
  std::string_view name = errorCodeName(code);
  uint8_t buf[4 + 32];
  wire::putU16(buf, static_cast<uint16_t>(code));
  wire::putU16(buf + 2, msg_id);
  size_t n = std::min(name.size(), sizeof(buf) - 4);
  std::memcpy(buf + 4, name.data(), n);
  callbacks().sendFrame(kErrorMsgId, 0,
                        std::string_view(reinterpret_cast<const char*>(buf), 4 + n));
  return FilterStatus::kStopIteration;
}

FilterStatus BreakerFilter::onFrame(Frame& frame) {
  if (resolver_ == nullptr) {
    // Published by upstream in its onNewConnection, after ours: look it up
    // on the first frame. No resolver (no upstream): nothing to guard.
    resolver_ = callbacks().slots().get<RouteResolver>();
    if (resolver_ == nullptr) return FilterStatus::kContinue;
  }
  const std::string* name = resolver_->clusterFor(frame.header);
  if (name == nullptr) return FilterStatus::kContinue;  // upstream answers no_route
  Record* rec = recordByName(name);
  if (rec == nullptr) return FilterStatus::kContinue;
  ClusterBreaker& cb = *rec->cb;
  auto now = [this] { return hub_.nowNs(); };

  Admission a = cb.cluster().allow(now);
  if (a == Admission::kRejectOpen) return reject(cb, frame, ErrorCode::kCircuitOpen);
  if (cb.overPending()) {
    if (a == Admission::kProbe) cb.cluster().releaseProbe();
    return reject(cb, frame, ErrorCode::kUpstreamOverflow);
  }
  // The session's frames stay on its host while the backend connection
  // lives: if that host is ejected, the frame would go to it anyway, so it
  // is refused here (or passes as a half-open probe).
  if (rec->host >= 0) {
    BreakerState* hs = cb.host(static_cast<size_t>(rec->host));
    if (hs != nullptr && hs->ejected() && hs->allow(now) == Admission::kRejectOpen) {
      if (a == Admission::kProbe) cb.cluster().releaseProbe();
      return reject(cb, frame, ErrorCode::kCircuitOpen);
    }
  }
  hub_.forwarding(this);
  return FilterStatus::kContinue;
}

void BreakerFilter::onSent(const std::shared_ptr<ClusterBreaker>& cb, size_t host, int64_t now_ns) {
  if (closed_) return;
  Record* rec = recordByBreaker(*cb);
  if (rec == nullptr) {
    records_.push_back(Record{cb, nullptr});
    rec = &records_.back();
  }
  rec->host = static_cast<int32_t>(host);
  if (!cb->expectReply()) return;
  if (rec->unanswered == 0) rec->oldest_ns = now_ns;
  ++rec->unanswered;
  cb->addPending(1);
  armReplyTimer(rec->oldest_ns + cb->policy().reply_timeout_ns);
}

void BreakerFilter::onReply(ClusterBreaker& cb) {
  Record* rec = recordByBreaker(cb);
  if (rec == nullptr || rec->unanswered == 0) return;
  cb.addPending(-static_cast<int64_t>(rec->unanswered));
  rec->unanswered = 0;
}

void BreakerFilter::unpin(ClusterBreaker& cb, size_t host) {
  Record* rec = recordByBreaker(cb);
  if (rec == nullptr || rec->host != static_cast<int32_t>(host)) return;
  rec->host = -1;
  // Frames written to the lost connection will not be answered; the loss
  // itself was the failure, so they are not also counted as timeouts.
  if (rec->unanswered > 0) {
    cb.addPending(-static_cast<int64_t>(rec->unanswered));
    rec->unanswered = 0;
  }
}

void BreakerFilter::armReplyTimer(int64_t at_ns) {
  if (!reply_timer_) reply_timer_ = std::make_unique<ReplyTimer>(hub_.dispatcher(), this);
  if (reply_timer_->timer.enabled() && reply_timer_->at_ns <= at_ns) return;
  reply_timer_->at_ns = at_ns;
  reply_timer_->timer.enable(delayUntil(at_ns, hub_.nowNs()));
}

void BreakerFilter::onReplyTimer() {
  int64_t now = hub_.nowNs();
  int64_t next = std::numeric_limits<int64_t>::max();
  for (Record& r : records_) {
    if (r.unanswered == 0) continue;
    int64_t due = r.oldest_ns + r.cb->policy().reply_timeout_ns;
    // Timers have millisecond resolution: treat "due within 1ms" as due.
    if (due <= now + kNsPerMs) {
      r.cb->addPending(-static_cast<int64_t>(r.unanswered));
      r.unanswered = 0;
      if (r.host >= 0)
        hub_.recordFailure(*r.cb, static_cast<size_t>(r.host), FailureKind::kReplyTimeout, now);
    } else {
      next = std::min(next, due);
    }
  }
  if (next != std::numeric_limits<int64_t>::max()) {
    reply_timer_->at_ns = next;
    reply_timer_->timer.enable(delayUntil(next, now));
  }
}

void BreakerFilter::release() {
  if (closed_) return;
  closed_ = true;
  // A closed session's unanswered frames are abandoned, not failed: the
  // backend's reply would have nowhere to go.
  for (Record& r : records_) {
    if (r.unanswered > 0) r.cb->addPending(-static_cast<int64_t>(r.unanswered));
    r.unanswered = 0;
  }
  if (reply_timer_) reply_timer_->timer.disable();
  if (session_ != 0) hub_.unregisterSession(session_, this);
  session_ = 0;
  hub_.forget(this);
}

void BreakerFilter::onClose(CloseReason) { release(); }

// ---------------------------------------------------------------- factories

BreakerFactory::BreakerFactory(std::shared_ptr<const BreakerConfig> config, WorkerContext& worker)
    : config_(std::move(config)), hub_(worker.services.get<BreakerHub>()) {
  hub_.attach(worker.dispatcher, worker.services.get<UpstreamEventBus>(),
              worker.services.get<HostAvailabilitySlot>());
}

BreakerFactory::~BreakerFactory() { hub_.detach(); }

std::unique_ptr<Filter> BreakerFactory::createFilter() {
  return std::make_unique<BreakerFilter>(hub_);
}

class BreakerConfigFactory : public TypedFilterConfigFactory<BreakerConfig, BreakerFactory> {
 public:
  BreakerConfigFactory()
      : TypedFilterConfigFactory("breaker", FilterTraits::frames(), kBreakerSchema) {}

  std::shared_ptr<const BreakerConfig> parseConfig(const rapidjson::Value& json,
                                                   ParseContext& ctx) const override {
    std::vector<ClusterBreakerSpec> specs;
    if (!parseSpecs(json, ctx, &specs)) return nullptr;
    auto cfg = std::make_shared<BreakerConfig>();
    for (const auto& s : specs) cfg->clusters.push_back(BreakerRegistry::get().acquire(s));
    return cfg;
  }
  const AdminView* adminView() const override { return &view_; }

 private:
  BreakerAdminView view_;
};

GW_REGISTER_FILTER(BreakerConfigFactory);

}  // namespace breaker
}  // namespace gw
