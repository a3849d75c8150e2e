#include "filters/ip_limiter/ip_limiter.h"

#include <event2/buffer.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>

#include "core/sdk/error_frame.h"
#include "core/sdk/log.h"
#include "core/sdk/wire.h"
#include "filters/ip_limiter/ip_limiter_schema.h"
#include "filters/ip_limiter/proxy_protocol.h"

namespace gw {
namespace ip_limiter {

IpLimiterStats::IpLimiterStats(const std::string& listener) {
  auto& r = stats::StatsRegistry::get();
  for (size_t i = 1; i < kRejectReasonCount; ++i) {
    rejected_[i] =
        &r.counter("game_gateway_rate_limit_rejected_total",
                   "Connections refused and frames over the message rate, by reason (ip_limiter).",
                   {{"listener", listener},
                    {"reason", std::string(rejectReasonName(static_cast<RejectReason>(i)))}});
  }
  rejected_[0] = rejected_[static_cast<size_t>(RejectReason::kGlobal)];  // never used
  for (size_t i = 0; i < kRejectReasonCount; ++i) {
    auto reason = static_cast<RejectReason>(i);
    if (reason == RejectReason::kNone || reason == RejectReason::kMessageRate) {
      connection_rejected_[i] = rejected_[i];  // not connection refusals: never used
      continue;
    }
    connection_rejected_[i] = &r.counter(
        "game_gateway_connection_rejected_total",
        "Client connections refused at connect, by reason (ip_limiter; the Go gateway's name).",
        {{"listener", listener}, {"reason", std::string(rejectReasonName(reason))}});
  }
  table_entries =
      &r.gauge("game_gateway_ip_table_entries",
               "Client addresses tracked by the ip_limiter IP table.", {{"listener", listener}});
  evictions = &r.counter("game_gateway_ip_table_evictions_total",
                         "Idle IP table entries evicted to make room for a new address.",
                         {{"listener", listener}});
  network_table_entries = &r.gauge("game_gateway_ip_network_table_entries",
                                   "IPv6 networks tracked by the ip_limiter network table.",
                                   {{"listener", listener}});
  proxy_errors = &r.counter("game_gateway_proxy_protocol_errors_total",
                            "Connections closed for a bad or missing PROXY protocol header.",
                            {{"listener", listener}});
  shed = &r.counter("game_gateway_ip_limiter_shed_total",
                    "Connections without a complete first frame closed at max_connections "
                    "(error frame overloaded) to admit a new connection.",
                    {{"listener", listener}});
}

std::chrono::milliseconds IpLimiterConfig::sweepInterval() const {
  auto d = entry_ttl / 2;
  if (d < std::chrono::milliseconds(100)) d = std::chrono::milliseconds(100);
  if (d > std::chrono::milliseconds(10000)) d = std::chrono::milliseconds(10000);
  return d;
}

namespace {

using std::chrono::milliseconds;

// Adds the ranges of the string array `arr` to *out; each bad one is
// recorded at <pointer>/<index>.
void parseCidrList(const rapidjson::Value& arr, const std::string& pointer, CidrSet* out,
                   ParseContext& ctx) {
  for (rapidjson::SizeType i = 0; i < arr.Size(); ++i) {
    std::string why;
    auto c = Cidr::parse(arr[i].GetString(), &why);
    if (!c) {
      ctx.fail(pointer + "/" + std::to_string(i), why);
      continue;
    }
    out->add(*c);
  }
}

// The limiter of listener `o.name`: the live one if its settings are the
// same (a reload with unchanged ip_limiter settings keeps the IP table and
// its counts), else a new one that replaces it for new connections.
std::shared_ptr<IpLimiter> limiterFor(IpLimiter::Options o) {
  static std::mutex mu;
  static auto* live = new std::map<std::string, std::weak_ptr<IpLimiter>>();
  std::lock_guard<std::mutex> lock(mu);
  std::weak_ptr<IpLimiter>& slot = (*live)[o.name];
  if (auto existing = slot.lock(); existing && existing->sameSettings(o)) return existing;
  auto fresh = std::make_shared<IpLimiter>(std::move(o));
  slot = fresh;
  return fresh;
}

// A JSON array of the ranges' "a.b.c.d/n" texts.
rapidjson::Value cidrArray(const CidrSet& set, JsonAllocator& alloc) {
  rapidjson::Value arr(rapidjson::kArrayType);
  for (const Cidr& c : set.ranges())
    arr.PushBack(jsonString(c.toString(), alloc), alloc);
  return arr;
}

}  // namespace

void IpLimiterConfig::describe(rapidjson::Value& out, JsonAllocator& alloc) const {
  out.AddMember("max_connections_per_ip", max_connections_per_ip, alloc);
  out.AddMember("connection_rate_limit", connection_rate_limit, alloc);
  out.AddMember("connection_burst", connection_burst, alloc);
  out.AddMember("max_connections", max_connections, alloc);
  out.AddMember("message_rate_limit", message_rate_limit, alloc);
  out.AddMember("message_burst", message_burst, alloc);
  out.AddMember("message_rate_action",
                rapidjson::StringRef(message_rate_action == MessageRateTracker::Action::kDrop
                                         ? "drop"
                                         : "close"),
                alloc);
  out.AddMember("ipv6_prefix_length", ipv6_prefix_length, alloc);
  out.AddMember("ipv4_prefix_length", ipv4_prefix_length, alloc);
  out.AddMember("ipv6_network_prefix_length", ipv6_network_prefix_length, alloc);
  out.AddMember("max_connections_per_network", max_connections_per_network, alloc);
  out.AddMember("network_connection_rate_limit", network_connection_rate_limit, alloc);
  out.AddMember("network_connection_burst", network_connection_burst, alloc);
  out.AddMember("at_max_connections",
                rapidjson::StringRef(at_max_connections == AtMaxConnections::kShed ? "shed"
                                                                                   : "refuse"),
                alloc);
  out.AddMember("trusted_cidrs", cidrArray(trusted_cidrs, alloc), alloc);
  out.AddMember("max_tracked_ips", static_cast<uint64_t>(max_tracked_ips), alloc);
  out.AddMember("entry_ttl", jsonDuration(entry_ttl, alloc), alloc);
  out.AddMember("shards", static_cast<uint64_t>(shards), alloc);
  rapidjson::Value pp(rapidjson::kObjectType);
  pp.AddMember("enabled", proxy_protocol.enabled, alloc);
  pp.AddMember("trusted_sources", cidrArray(proxy_protocol.trusted_sources, alloc), alloc);
  pp.AddMember("header_timeout", jsonDuration(proxy_protocol.header_timeout, alloc), alloc);
  out.AddMember("proxy_protocol", pp, alloc);
}

std::shared_ptr<IpLimiterConfig> parseConfig(const rapidjson::Value& json, ParseContext& ctx) {
  auto cfg = std::make_shared<IpLimiterConfig>();
  // The bounds repeat the schema's: a config that skipped the schema is
  // still refused cleanly.
  cfg->max_connections_per_ip = static_cast<uint32_t>(
      ctx.size(json, "max_connections_per_ip", cfg->max_connections_per_ip, 1, 1000000));
  if (json.HasMember("connection_rate_limit"))
    cfg->connection_rate_limit = json["connection_rate_limit"].GetDouble();
  cfg->connection_burst =
      static_cast<uint32_t>(ctx.size(json, "connection_burst", cfg->connection_burst, 1, 1000000));
  cfg->max_connections = static_cast<int64_t>(
      ctx.size(json, "max_connections", static_cast<uint64_t>(cfg->max_connections), 1,
               100000000));
  if (json.HasMember("message_rate_limit"))
    cfg->message_rate_limit = json["message_rate_limit"].GetDouble();
  if (json.HasMember("message_burst")) {
    cfg->message_burst =
        static_cast<uint32_t>(ctx.size(json, "message_burst", cfg->message_burst, 1, 1000000));
    if (cfg->message_rate_limit <= 0) {
      ctx.fail("/message_burst",
               "message_burst has no effect without message_rate_limit: set message_rate_limit "
               "(frames per second per connection) or remove message_burst");
    }
  }
  if (json.HasMember("message_rate_action")) {
    cfg->message_rate_action = std::string_view(json["message_rate_action"].GetString()) == "drop"
                                   ? MessageRateTracker::Action::kDrop
                                   : MessageRateTracker::Action::kClose;
  }
  cfg->ipv6_prefix_length =
      static_cast<int>(ctx.size(json, "ipv6_prefix_length", cfg->ipv6_prefix_length, 1, 128));
  cfg->ipv4_prefix_length =
      static_cast<int>(ctx.size(json, "ipv4_prefix_length", cfg->ipv4_prefix_length, 1, 32));
  cfg->ipv6_network_prefix_length = static_cast<int>(
      ctx.size(json, "ipv6_network_prefix_length", cfg->ipv6_network_prefix_length, 0, 127));
  // The default (48) quietly turns off when ipv6_prefix_length is 48 or
  // shorter; an explicit value must make sense.
  if (json.HasMember("ipv6_network_prefix_length") && cfg->ipv6_network_prefix_length > 0 &&
      cfg->ipv6_network_prefix_length >= cfg->ipv6_prefix_length) {
    ctx.fail("/ipv6_network_prefix_length",
             "must be shorter than ipv6_prefix_length (" +
                 std::to_string(cfg->ipv6_prefix_length) +
                 "): a network groups several prefixes; 0 turns the network limits off");
  }
  cfg->max_connections_per_network = static_cast<uint32_t>(ctx.size(
      json, "max_connections_per_network", cfg->max_connections_per_network, 1, 1000000));
  if (json.HasMember("network_connection_rate_limit"))
    cfg->network_connection_rate_limit = json["network_connection_rate_limit"].GetDouble();
  cfg->network_connection_burst = static_cast<uint32_t>(
      ctx.size(json, "network_connection_burst", cfg->network_connection_burst, 1, 1000000));
  if (json.HasMember("at_max_connections")) {
    cfg->at_max_connections = std::string_view(json["at_max_connections"].GetString()) == "refuse"
                                  ? IpLimiterConfig::AtMaxConnections::kRefuse
                                  : IpLimiterConfig::AtMaxConnections::kShed;
  }
  if (json.HasMember("trusted_cidrs"))
    parseCidrList(json["trusted_cidrs"], "/trusted_cidrs", &cfg->trusted_cidrs, ctx);
  cfg->max_tracked_ips = ctx.size(json, "max_tracked_ips", cfg->max_tracked_ips, 1, 10000000);
  // How long an idle address is remembered: > 0.
  cfg->entry_ttl = ctx.duration(json, "entry_ttl", cfg->entry_ttl, milliseconds(1));
  cfg->shards = ctx.size(json, "shards", cfg->shards, 1, 1024);
  if (cfg->max_tracked_ips < cfg->shards) {
    ctx.fail("/max_tracked_ips", "must be at least `shards` (" + std::to_string(cfg->shards) +
                                     "): each shard needs room for one address");
  }
  if (json.HasMember("proxy_protocol")) {
    const auto& pp = json["proxy_protocol"];
    if (pp.HasMember("enabled")) cfg->proxy_protocol.enabled = pp["enabled"].GetBool();
    if (pp.HasMember("trusted_sources")) {
      parseCidrList(pp["trusted_sources"], "/proxy_protocol/trusted_sources",
                    &cfg->proxy_protocol.trusted_sources, ctx);
    }
    cfg->proxy_protocol.header_timeout =
        ctx.duration(pp, "header_timeout", cfg->proxy_protocol.header_timeout, milliseconds(1),
                     kMaxConfigDuration, "/proxy_protocol");
    bool listed = pp.HasMember("trusted_sources") && pp["trusted_sources"].Size() > 0;
    if (cfg->proxy_protocol.enabled && !listed) {
      ctx.fail(
          pp.HasMember("trusted_sources") ? "/proxy_protocol/trusted_sources" : "/proxy_protocol",
          "enabled needs trusted_sources: a PROXY header is only believed from the load "
          "balancers listed there (e.g. \"trusted_sources\": [\"10.0.0.0/8\"])");
    }
  }
  if (!ctx.ok()) return nullptr;

  if (cfg->message_rate_limit > 0) {
    if (cfg->message_burst == 0) {
      double b = std::ceil(cfg->message_rate_limit);
      cfg->message_burst = b < 1 ? 1 : static_cast<uint32_t>(b);
    }
    cfg->message_rate = RateSpec::make(cfg->message_rate_limit, cfg->message_burst);
  }
  cfg->listener = ctx.listener();
  cfg->stats = std::make_shared<IpLimiterStats>(cfg->listener);

  IpLimiter::Options o;
  o.table.max_entries = cfg->max_tracked_ips;
  o.table.shards = cfg->shards;
  o.table.max_per_key = cfg->max_connections_per_ip;
  o.table.rate = RateSpec::make(cfg->connection_rate_limit, cfg->connection_burst);
  o.table.ttl_ns = static_cast<int64_t>(cfg->entry_ttl.count()) * 1000 * 1000;
  o.table.entries_gauge = cfg->stats->table_entries;
  o.table.evictions_counter = cfg->stats->evictions;
  o.max_connections = cfg->max_connections;
  o.ipv6_prefix = cfg->ipv6_prefix_length;
  o.ipv4_prefix = cfg->ipv4_prefix_length;
  o.network_prefix = cfg->ipv6_network_prefix_length;
  o.network_table = o.table;
  o.network_table.max_per_key = cfg->max_connections_per_network;
  o.network_table.rate =
      RateSpec::make(cfg->network_connection_rate_limit, cfg->network_connection_burst);
  o.network_table.entries_gauge = cfg->stats->network_table_entries;
  o.trusted = cfg->trusted_cidrs;
  o.name = cfg->listener;
  cfg->limiter = limiterFor(std::move(o));
  return cfg;
}

size_t encodeErrorFrame(ErrorCode code, uint16_t refused_msg_id, uint8_t* out) {
  std::string_view name = errorCodeName(code);
  if (name.size() > kMaxErrorFrameBytes - 12) name = name.substr(0, kMaxErrorFrameBytes - 12);
  wire::ClientHeader h;
  h.length = static_cast<uint16_t>(4 + name.size());
  h.msg_id = kErrorMsgId;
  h.server_id = 0;
  h.encode(out);
  wire::putU16(out + 8, static_cast<uint16_t>(code));
  wire::putU16(out + 10, refused_msg_id);
  for (size_t i = 0; i < name.size(); ++i) out[12 + i] = static_cast<uint8_t>(name[i]);
  return 12 + name.size();
}

// ---------------------------------------------------------------------------

namespace {
// "5", "0.5", "1e+06": a rate for a close detail.
std::string rateText(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", rate);
  return buf;
}
}  // namespace

IpLimiterFilter::IpLimiterFilter(IpLimiterFactory& factory) : factory_(factory) {}

const IpLimiterConfig& IpLimiterFilter::config() const { return factory_.config(); }

IpLimiterFilter::~IpLimiterFilter() {
  // A chain destroyed without a close (it should not happen) must not leak
  // its place in the limits.
  if (admitted_ && !released_)
    config().limiter->release(ticket_, config().clock(), &factory_.reserve());
}

std::string IpLimiterFilter::clientAddress() const {
  if (!client_set_) return "";
  // The ticket's key: masked for a tracked address, as given for a trusted
  // or refused one (masking again changes nothing).
  IpKey k = limitKey(ticket_.key, config().ipv6_prefix_length, config().ipv4_prefix_length);
  int prefix = k.isV4() ? config().ipv4_prefix_length : config().ipv6_prefix_length;
  if (prefix >= (k.isV4() ? 32 : 128)) return k.toString();
  return k.toString() + "/" + std::to_string(prefix);
}

FilterStatus IpLimiterFilter::onNewConnection() {
  Connection& conn = callbacks().connection();
  if (config().message_rate_limit > 0) {
    message_rate_ =
        std::make_unique<MessageRateTracker>(config().message_rate, config().message_rate_action);
    // With a codec the frames it decodes are counted (onDecodedFrame), else
    // the raw bytes are scanned for client frames.
    if (!callbacks().observeFrames()) message_rate_->attach(conn.input());
  }
  std::optional<IpKey> peer = keyOf(conn.peer().sockaddr_ptr());
  if (!peer) return FilterStatus::kContinue;  // not an IP socket: nothing to limit
  if (config().proxy_protocol.enabled && config().proxy_protocol.trusted_sources.contains(*peer)) {
    // The limits apply to the address in the header: decided in onData.
    proxy_pending_ = true;
    proxy_timer_ = std::make_unique<Timer>(factory_.dispatcher(), [this] {
      failProxy(CloseReason::kReadTimeout,
                "no PROXY protocol header within " +
                    std::to_string(config().proxy_protocol.header_timeout.count()) + "ms");
    });
    proxy_timer_->enable(config().proxy_protocol.header_timeout);
    return FilterStatus::kContinue;
  }
  return admit(*peer) ? FilterStatus::kContinue : FilterStatus::kStopIteration;
}

bool IpLimiterFilter::admit(const IpKey& addr) {
  IpLimiter& limiter = *config().limiter;
  RejectReason r = limiter.admit(addr, config().clock(), &ticket_, &factory_.reserve());
  const bool shed_mode = config().at_max_connections == IpLimiterConfig::AtMaxConnections::kShed;
  if (r == RejectReason::kGlobal && shed_mode &&
      limiter.global().value() >= config().max_connections && shedOldest(factory_.shedList())) {
    // The shed connection gave its place back: try again (another worker
    // may have taken it meanwhile; then this one is refused after all).
    r = limiter.admit(addr, config().clock(), &ticket_, &factory_.reserve());
  }
  client_set_ = true;
  if (r == RejectReason::kNone) {
    admitted_ = true;
    if (shed_mode) factory_.shedList().pushBack(*this);
    return true;
  }
  ticket_.key = addr;  // refused: the ticket is unused; it names the client
  config().stats->rejected(r).inc();
  config().stats->connectionRejected(r).inc();
  std::string detail = "ip_limiter: " + clientAddress() + ": ";
  switch (r) {
    case RejectReason::kPerIpConnections:
      detail += "already has " + std::to_string(config().max_connections_per_ip) +
                " connections (max_connections_per_ip)";
      break;
    case RejectReason::kPerIpRate:
      detail += "new connections faster than " + rateText(config().connection_rate_limit) +
                "/s, burst " + std::to_string(config().connection_burst) +
                " (connection_rate_limit)";
      break;
    case RejectReason::kPerNetworkConnections:
      detail += "its /" + std::to_string(config().ipv6_network_prefix_length) +
                " network already has " + std::to_string(config().max_connections_per_network) +
                " connections (max_connections_per_network)";
      break;
    case RejectReason::kPerNetworkRate:
      detail += "new connections from its /" +
                std::to_string(config().ipv6_network_prefix_length) + " network faster than " +
                rateText(config().network_connection_rate_limit) + "/s, burst " +
                std::to_string(config().network_connection_burst) +
                " (network_connection_rate_limit)";
      break;
    default:
      if (limiter.global().value() >= config().max_connections) {
        detail += "the gateway has max_connections (" + std::to_string(config().max_connections) +
                  ") connections";
      } else {
        detail += "the IP table is full of connected addresses (max_tracked_ips " +
                  std::to_string(config().max_tracked_ips) + ")";
      }
      break;
  }
  callbacks().close(CloseReason::kRateLimited, detail, Connection::CloseMode::kAbort);
  return false;
}

bool IpLimiterFilter::shedOldest(ShedList& list) {
  while (ShedList::Node* n = list.front()) {
    n->unlink();
    // Only IpLimiterFilters are linked into a ShedList.
    if (static_cast<IpLimiterFilter*>(n)->shedIfAwaitingFirstFrame()) return true;
  }
  return false;
}

bool IpLimiterFilter::shedIfAwaitingFirstFrame() {
  if (!admitted_ || released_ || callbacks().connection().state() != Connection::State::kOpen ||
      callbacks().stage() != ConnectionStage::kAwaitingFirstFrame)
    return false;
  released_ = true;
  config().limiter->release(ticket_, config().clock(), &factory_.reserve());
  config().stats->shed->inc();
  sendErrorFrame(ErrorCode::kOverloaded, 0);
  callbacks().close(CloseReason::kOverloaded,
                    "ip_limiter: " + clientAddress() + ": shed at max_connections (" +
                        std::to_string(config().max_connections) +
                        ") to admit a new connection: no complete frame yet",
                    Connection::CloseMode::kFlush);
  return true;
}

void IpLimiterFilter::failProxy(CloseReason reason, const std::string& why) {
  config().stats->proxy_errors->inc();
  if (proxy_timer_) proxy_timer_->disable();
  proxy_pending_ = false;
  callbacks().close(reason, why, Connection::CloseMode::kAbort);
}

FilterStatus IpLimiterFilter::onProxyData(evbuffer* data, bool end_stream) {
  size_t len = evbuffer_get_length(data);
  if (len == 0) {
    if (end_stream) {
      // Connected and closed without a byte (a TCP health check): not an error.
      proxy_pending_ = false;
      if (proxy_timer_) proxy_timer_->disable();
      callbacks().close(CloseReason::kRemoteClosed, "closed before the PROXY protocol header",
                        Connection::CloseMode::kAbort);
    }
    return FilterStatus::kStopIteration;
  }
  uint8_t head[kProxyPeekBytes];
  size_t n = len < sizeof(head) ? len : sizeof(head);
  evbuffer_copyout(data, head, n);
  ProxyHeader h = parseProxyHeader(head, n, len);
  if (h.status == ProxyHeader::Status::kError) {
    failProxy(CloseReason::kMalformedFrame, "bad PROXY protocol header: " + h.error);
    return FilterStatus::kStopIteration;
  }
  if (h.status == ProxyHeader::Status::kNeedMore) {
    if (end_stream) {
      failProxy(CloseReason::kMalformedFrame,
                "bad PROXY protocol header: the connection ended inside it (" +
                    std::to_string(len) + " bytes)");
    }
    return FilterStatus::kStopIteration;
  }
  evbuffer_drain(data, h.length);
  proxy_pending_ = false;
  proxy_timer_->disable();
  std::optional<IpKey> addr = h.has_source ? keyOf(h.source.sockaddr_ptr())
                                           : keyOf(callbacks().connection().peer().sockaddr_ptr());
  if (!addr) return FilterStatus::kContinue;  // cannot happen: headers carry IP addresses
  if (h.has_source) callbacks().connection().setPeer(h.source);  // the client, for everyone after
  if (!admit(*addr)) return FilterStatus::kStopIteration;
  return FilterStatus::kContinue;
}

FilterStatus IpLimiterFilter::onData(evbuffer* data, bool end_stream) {
  if (proxy_pending_) {
    FilterStatus s = onProxyData(data, end_stream);
    if (s != FilterStatus::kContinue) return s;
  }
  if (message_rate_) {
    MessageRateTracker::Result r = message_rate_->scan(config().clock(), this);
    if (r.dropped > 0) config().stats->rejected(RejectReason::kMessageRate).inc(r.dropped);
    if (r.exceeded) {
      closeOverMessageRate();
      return FilterStatus::kStopIteration;
    }
    if (callbacks().connection().state() == Connection::State::kClosed)
      return FilterStatus::kStopIteration;  // an error frame overflowed the output bound
  }
  return FilterStatus::kContinue;
}

FilterStatus IpLimiterFilter::onDecodedFrame(Frame& frame) {
  if (message_rate_ == nullptr || message_rate_->take(config().clock()))
    return FilterStatus::kContinue;
  if (message_rate_->action() == MessageRateTracker::Action::kClose) {
    closeOverMessageRate();
    return FilterStatus::kStopIteration;
  }
  config().stats->rejected(RejectReason::kMessageRate).inc();
  sendErrorFrame(ErrorCode::kRateLimited, frame.header.msg_id);
  return FilterStatus::kStopIteration;
}

void IpLimiterFilter::closeOverMessageRate() {
  config().stats->rejected(RejectReason::kMessageRate).inc();
  callbacks().close(CloseReason::kRateLimited,
                    "ip_limiter: " + clientAddress() + ": more than " +
                        rateText(config().message_rate_limit) + " frames/s, burst " +
                        std::to_string(config().message_burst) + " (message_rate_limit)",
                    Connection::CloseMode::kFlush);
}

void IpLimiterFilter::sendErrorFrame(ErrorCode code, uint16_t refused_msg_id) {
  uint8_t frame[kMaxErrorFrameBytes];
  size_t n = encodeErrorFrame(code, refused_msg_id, frame);
  if (callbacks().stage() == ConnectionStage::kNoCodec) {
    callbacks().writeBytes(frame, n);
    return;
  }
  std::string_view payload(reinterpret_cast<const char*>(frame) + wire::kClientHeaderSize,
                           n - wire::kClientHeaderSize);
  callbacks().sendFrame(kErrorMsgId, 0, payload);
}

void IpLimiterFilter::onFrameDropped(uint16_t msg_id) {
  sendErrorFrame(ErrorCode::kRateLimited, msg_id);
}

void IpLimiterFilter::onClose(CloseReason) {
  unlink();  // leaves the worker's ShedList
  if (proxy_timer_) proxy_timer_->disable();
  if (admitted_ && !released_) {
    released_ = true;
    config().limiter->release(ticket_, config().clock(), &factory_.reserve());
  }
}

// ---------------------------------------------------------------------------

IpLimiterFactory::IpLimiterFactory(std::shared_ptr<const IpLimiterConfig> config,
                                   WorkerContext& worker)
    : config_(std::move(config)),
      dispatcher_(worker.dispatcher),
      reserve_(config_->limiter->global()),
      shed_list_(worker.services.get<ShedList>()),
      sweep_timer_(worker.dispatcher, [this] {
        sweep();
        sweep_timer_.enable(config_->sweepInterval());
      }) {}

std::unique_ptr<Filter> IpLimiterFactory::createFilter() {
  // Armed here, on the worker's thread: the constructor may run on the main
  // thread before the worker's loop starts.
  if (!sweep_timer_.enabled()) sweep_timer_.enable(config_->sweepInterval());
  return std::make_unique<IpLimiterFilter>(*this);
}

size_t IpLimiterFactory::sweep() {
  int64_t now = config_->clock();
  int64_t interval_ns = static_cast<int64_t>(config_->sweepInterval().count()) * 1000 * 1000;
  if (!config_->limiter->claimSweep(now, interval_ns)) return 0;  // another worker just did
  return config_->limiter->table().sweepAll(now);
}

class IpLimiterConfigFactory
    : public TypedFilterConfigFactory<IpLimiterConfig, IpLimiterFactory> {
 public:
  IpLimiterConfigFactory()
      : TypedFilterConfigFactory("ip_limiter", FilterTraits::bytes(), kIpLimiterSchema) {}

  std::shared_ptr<const IpLimiterConfig> parseConfig(const rapidjson::Value& json,
                                                     ParseContext& ctx) const override {
    return ip_limiter::parseConfig(json, ctx);
  }
};

GW_REGISTER_FILTER(IpLimiterConfigFactory);

}  // namespace ip_limiter
}  // namespace gw
