#include "filters/framing/framing.h"

#include <event2/buffer.h>
#include <time.h>

#include <algorithm>

#include "config/duration.h"
#include "core/log.h"
#include "core/wire.h"
#include "filters/framing/framing_schema.h"

namespace gw {
namespace framing {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

constexpr size_t kHeader = wire::kClientHeaderSize;

std::string ms(milliseconds d) { return std::to_string(d.count()) + "ms"; }

}  // namespace

FramingStats::FramingStats(const std::string& listener) {
  auto& r = stats::StatsRegistry::get();
  const std::string frames_help = "Client frames through the codec (in: decoded, out: encoded).";
  const std::string bytes_help = "Client frame bytes through the codec, 8-byte headers included.";
  const std::string errors_help = "Client connections the codec closed, by reason.";
  frames_in = &r.counter("game_gateway_frames_total", frames_help,
                         {{"listener", listener}, {"direction", "in"}});
  frames_out = &r.counter("game_gateway_frames_total", frames_help,
                          {{"listener", listener}, {"direction", "out"}});
  bytes_in = &r.counter("game_gateway_frame_bytes_total", bytes_help,
                        {{"listener", listener}, {"direction", "in"}});
  bytes_out = &r.counter("game_gateway_frame_bytes_total", bytes_help,
                         {{"listener", listener}, {"direction", "out"}});
  auto error = [&](CloseReason reason) {
    return &r.counter("game_gateway_framing_errors_total", errors_help,
                      {{"listener", listener}, {"reason", std::string(closeReasonName(reason))}});
  };
  too_large = error(CloseReason::kFrameTooLarge);
  malformed = error(CloseReason::kMalformedFrame);
  read_timeout = error(CloseReason::kReadTimeout);
  idle_timeout = error(CloseReason::kIdleTimeout);
}

FramingFilter::FramingFilter(const FramingConfig& config, const FramingStats& stats)
    : config_(config), stats_(stats) {}

FilterStatus FramingFilter::onNewConnection() {
  conn_ = &callbacks().connection();
  if (config_.idle_timeout.count() > 0) {
    auto now = coarseNow();
    last_frame_ = now;
    armBy(now + config_.idle_timeout, now);
  }
  return FilterStatus::kContinue;
}

FilterStatus FramingFilter::onData(evbuffer* data, bool end_stream) {
  if (!conn_->open()) return FilterStatus::kStopIteration;
  uint64_t frames = 0;
  uint64_t bytes = 0;
  Stop stop = decode(data, &frames, &bytes);
  // Counted once per read, not per frame.
  if (frames > 0) {
    stats_.frames_in->inc(frames);
    stats_.bytes_in->inc(bytes);
  }
  if (stop == Stop::kClosed) return FilterStatus::kStopIteration;
  if (stop == Stop::kPaused) {
    // Complete frames wait for the resume (the connection re-delivers them);
    // nothing is stalled on the client's side.
    partial_ = false;
    if (frames > 0 && config_.idle_timeout.count() > 0) last_frame_ = coarseNow();
    return FilterStatus::kStopIteration;
  }
  size_t remaining = evbuffer_get_length(data);
  if (end_stream) {
    closeAtEof(data, remaining);
    return FilterStatus::kStopIteration;
  }
  // A new frame started arriving: either none was in progress, or the one in
  // progress completed during this read and another began.
  bool starts_partial = remaining > 0 && (!partial_ || frames > 0);
  if ((frames > 0 && config_.idle_timeout.count() > 0) || starts_partial) {
    auto now = coarseNow();
    if (frames > 0) last_frame_ = now;
    if (starts_partial) {
      partial_since_ = now;
      armBy(now + config_.read_timeout, now);
    }
  }
  partial_ = remaining > 0;
  return FilterStatus::kStopIteration;
}

FramingFilter::Stop FramingFilter::decode(evbuffer* buf, uint64_t* frames, uint64_t* bytes) {
  size_t avail = evbuffer_get_length(buf);
  while (avail >= kHeader) {
    // Read the header in place when the first chain holds all of it (the
    // usual case), else copy it out of the chains it spans.
    uint8_t raw[kHeader];
    const uint8_t* hp = raw;
    evbuffer_iovec first;
    if (evbuffer_peek(buf, kHeader, nullptr, &first, 1) == 1 && first.iov_len >= kHeader) {
      hp = static_cast<const uint8_t*>(first.iov_base);
    } else {
      evbuffer_copyout(buf, raw, kHeader);
    }
    wire::ClientHeader h = wire::ClientHeader::decode(hp);
    if (h.length > config_.max_frame_bytes) {
      stats_.too_large->inc();
      callbacks().close(CloseReason::kFrameTooLarge,
                        "frame length " + std::to_string(h.length) + " exceeds max_frame_bytes " +
                            std::to_string(config_.max_frame_bytes) + " (msg_id " +
                            std::to_string(h.msg_id) + ")",
                        Connection::CloseMode::kAbort);
      return Stop::kClosed;
    }
    size_t total = kHeader + h.length;
    if (avail < total) return Stop::kNeedMore;
    // A later filter paused reading: leave the frame for the re-delivery.
    if (callbacks().readDisabled()) return Stop::kPaused;
    evbuffer_drain(buf, kHeader);
    Frame frame(h, buf);
    callbacks().passFrame(frame);  // drops the payload if nobody consumed it
    ++*frames;
    *bytes += total;
    if (!conn_->open()) return Stop::kClosed;
    avail = evbuffer_get_length(buf);
  }
  return Stop::kNeedMore;
}

std::string FramingFilter::describePartial(evbuffer* buf, size_t remaining) {
  if (remaining < kHeader) {
    return std::to_string(remaining) + " of " + std::to_string(kHeader) + " header bytes";
  }
  uint8_t raw[kHeader];
  evbuffer_copyout(buf, raw, kHeader);
  wire::ClientHeader h = wire::ClientHeader::decode(raw);
  return std::to_string(remaining - kHeader) + " of " + std::to_string(h.length) +
         " payload bytes (msg_id " + std::to_string(h.msg_id) + ")";
}

void FramingFilter::closeAtEof(evbuffer* buf, size_t remaining) {
  if (remaining == 0) {
    callbacks().close(CloseReason::kRemoteClosed, "peer closed the connection",
                      Connection::CloseMode::kFlush);
    return;
  }
  stats_.malformed->inc();
  callbacks().close(CloseReason::kMalformedFrame,
                    "connection closed mid-frame: " + describePartial(buf, remaining),
                    Connection::CloseMode::kFlush);
}

void FramingFilter::armBy(steady_clock::time_point deadline, steady_clock::time_point now) {
  if (timer_armed_ && timer_deadline_ <= deadline) return;
  if (!timer_) timer_.emplace(callbacks().dispatcher(), [this] { onTimer(); });
  auto wait = std::chrono::ceil<milliseconds>(deadline - now);
  timer_->enable(std::max(wait, milliseconds(1)));
  timer_deadline_ = deadline;
  timer_armed_ = true;
}

void FramingFilter::onTimer() {
  timer_armed_ = false;
  Connection& conn = *conn_;
  if (!conn.open()) return;
  auto now = coarseNow();
  const bool idle_on = config_.idle_timeout.count() > 0;
  const bool paused = callbacks().readDisabled();
  if (paused || was_paused_) {
    // Reading is (or was, since the last check) paused by backpressure: the
    // client could not make progress, so both clocks restart here. After a
    // resume the client gets at least a full timeout.
    was_paused_ = paused;
    last_frame_ = now;
    if (partial_) partial_since_ = now;
  } else if (partial_) {
    if (now - partial_since_ >= config_.read_timeout) {
      stats_.read_timeout->inc();
      size_t remaining = evbuffer_get_length(conn.input());
      callbacks().close(CloseReason::kReadTimeout,
                        "frame not completed within read_timeout " + ms(config_.read_timeout) +
                            ": " + describePartial(conn.input(), remaining),
                        Connection::CloseMode::kFlush);
      return;
    }
  } else if (idle_on && now - last_frame_ >= config_.idle_timeout) {
    stats_.idle_timeout->inc();
    callbacks().close(CloseReason::kIdleTimeout,
                      "no frame within idle_timeout " + ms(config_.idle_timeout),
                      Connection::CloseMode::kFlush);
    return;
  }
  // Not expired: re-arm for what is left. While a frame is in progress only
  // read_timeout applies; idle_timeout counts from the frame's completion.
  if (partial_) {
    armBy(partial_since_ + config_.read_timeout, now);
  } else if (idle_on) {
    armBy(last_frame_ + config_.idle_timeout, now);
  }
}

FilterStatus FramingFilter::onWriteFrame(Frame& frame) {
  size_t len = frame.payloadLength();
  if (frame.consumed() || evbuffer_get_length(frame.source()) < len) {
    // A writer bug: a header whose length does not match the bytes would
    // desynchronize the client's stream, so nothing is written.
    GW_LOG(error, "framing: frame msg_id {} has length {} but its payload is missing",
           frame.header.msg_id, len);
    frame.discardPayload();
    callbacks().close(CloseReason::kFilterError, "framing: frame payload shorter than its length",
                      Connection::CloseMode::kFlush);
    return FilterStatus::kStopIteration;
  }
  uint8_t raw[kHeader];
  frame.header.encode(raw);
  callbacks().writeBytes(raw, kHeader);
  if (len > 0) callbacks().writeBytes(frame.source(), len);  // moves the payload's chains
  frame.markConsumed();
  stats_.frames_out->inc();
  stats_.bytes_out->inc(kHeader + len);
  return FilterStatus::kStopIteration;
}

void FramingFilter::onClose(CloseReason) {
  if (timer_) timer_->disable();
  timer_armed_ = false;
}

std::unique_ptr<Filter> FramingFactory::createFilter() {
  return std::make_unique<FramingFilter>(*config_, stats_);
}

class FramingConfigFactory : public FilterConfigFactory {
 public:
  std::string_view name() const override { return "framing"; }
  FilterTraits traits() const override {
    FilterTraits t;
    t.consumes = Layer::kBytes;
    t.produces = Layer::kFrames;
    return t;
  }
  std::string_view schema() const override { return kFramingSchema; }
  std::shared_ptr<const FilterConfig> parse(const rapidjson::Value& json,
                                            ParseContext& ctx) const override {
    auto cfg = std::make_shared<FramingConfig>();
    if (json.HasMember("max_frame_bytes"))
      cfg->max_frame_bytes = json["max_frame_bytes"].GetUint();
    if (json.HasMember("read_timeout")) {
      auto d = config::parseDuration(json["read_timeout"].GetString());
      if (!d) return ctx.fail("/read_timeout", "must be at most 30 days");
      if (d->count() == 0)
        return ctx.fail("/read_timeout",
                        "must be > 0 (a stalled frame would hold the connection forever); "
                        "the default is \"30s\"");
      cfg->read_timeout = *d;
    }
    if (json.HasMember("idle_timeout")) {
      auto d = config::parseDuration(json["idle_timeout"].GetString());
      if (!d) return ctx.fail("/idle_timeout", "must be at most 30 days (\"0s\" disables it)");
      cfg->idle_timeout = *d;
    }
    return cfg;
  }
  std::unique_ptr<FilterFactory> createFactory(std::shared_ptr<const FilterConfig> config,
                                               WorkerContext& worker) const override {
    return std::make_unique<FramingFactory>(
        std::static_pointer_cast<const FramingConfig>(config), worker.listener);
  }
};

GW_REGISTER_FILTER(FramingConfigFactory);

}  // namespace framing
}  // namespace gw
