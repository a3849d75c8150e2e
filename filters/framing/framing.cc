#include "filters/framing/framing.h"

#include <endian.h>
#include <event2/buffer.h>
#include <time.h>

#include <algorithm>
#include <cstring>

#include "core/sdk/log.h"
#include "core/sdk/wire.h"
#include "filters/framing/framing_schema.h"

namespace gw {
namespace framing {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

constexpr size_t kHeader = wire::kClientHeaderSize;

// wire::ClientHeader::decode(p) as three loads (GCC does not merge
// wire::getU32's byte loop into one): the fields are little-endian.
inline wire::ClientHeader loadHeader(const uint8_t* p) {
  uint16_t length;
  uint16_t msg_id;
  uint32_t server_id;
  std::memcpy(&length, p, 2);
  std::memcpy(&msg_id, p + 2, 2);
  std::memcpy(&server_id, p + 4, 4);
  wire::ClientHeader h;
  h.length = le16toh(length);
  h.msg_id = le16toh(msg_id);
  h.server_id = le32toh(server_id);
  return h;
}

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
  routing_too_large = &r.counter(
      "game_gateway_routing_errors_total",
      "Client frames not routed to a backend, by error_type (the Go gateway's name).",
      {{"error_type", "message_too_large"}});
  malformed = error(CloseReason::kMalformedFrame);
  read_timeout = error(CloseReason::kReadTimeout);
  idle_timeout = error(CloseReason::kIdleTimeout);
  first_frame_timeout = error(CloseReason::kFirstFrameTimeout);
  slow_frames = &r.counter("game_gateway_framing_slow_frames_total",
                           "Client frames that took longer than slow_frame_time to arrive "
                           "(passed on, but not counted as activity for idle_timeout).",
                           {{"listener", listener}});
}

FramingFilter::FramingFilter(FramingFactory& factory) : factory_(factory) {}

FilterStatus FramingFilter::onNewConnection() {
  conn_ = &callbacks().connection();
  const int64_t now = coarseNowNs();
  active_ticks_ = framingTicks(now);
  if (TimeoutList* first = factory_.firstFrameTimeouts()) {
    awaiting_first_ = true;
    first->touch(*this, now);
  } else if (TimeoutList* idle = factory_.idleTimeouts()) {
    idle->touch(*this, now);
  }
  return FilterStatus::kContinue;
}

void FramingFilter::trackIdle(int64_t now_ns) {
  active_ticks_ = framingTicks(now_ns);
  slow_frames_ = 0;
  if (TimeoutList* idle = factory_.idleTimeouts()) {
    idle->touch(*this, now_ns);
  } else {
    unlink();
  }
}

// Inlined into onData, its only caller.
inline __attribute__((always_inline)) FramingFilter::Decoded FramingFilter::decode(
    evbuffer* buf) {
  constexpr size_t kUnknown = ~size_t{0};
  const size_t max_frame_bytes = config().max_frame_bytes;
  Decoded d;
  // The buffer's length: asked after each frame; before the first one only
  // if the peek below cannot settle the frame by itself.
  size_t avail = kUnknown;
  for (;;) {
    if (avail != kUnknown && avail < kHeader) {
      d.remaining = avail;
      break;
    }
    // Read the header in place when the first chain holds all of it (the
    // usual case), else copy it out of the chains it spans. When the first
    // chain holds the whole frame, no length check is needed either.
    evbuffer_iovec first;
    const bool in_first =
        evbuffer_peek(buf, kHeader, nullptr, &first, 1) == 1 && first.iov_len >= kHeader;
    wire::ClientHeader h;
    if (in_first) {
      h = loadHeader(static_cast<const uint8_t*>(first.iov_base));
    } else {
      if (avail == kUnknown) avail = evbuffer_get_length(buf);
      if (avail < kHeader) {
        d.remaining = avail;
        break;
      }
      h = copyOutHeader(buf);
    }
    if (h.length > max_frame_bytes) {
      closeTooLarge(h);
      d.stop = Stop::kClosed;
      break;
    }
    const size_t total = kHeader + h.length;
    if (!in_first || first.iov_len < total) {
      if (avail == kUnknown) avail = evbuffer_get_length(buf);
      if (avail < total) {
        d.remaining = avail;
        break;
      }
    }
    // A later filter paused reading: leave the frame for the re-delivery.
    // (The connection's own count, which callbacks().readDisabled() reads,
    // without a virtual call per frame.)
    if (!conn_->readEnabled()) {
      d.stop = Stop::kPaused;
      break;
    }
    evbuffer_drain(buf, kHeader);
    Frame frame(h, buf);
    callbacks().passFrame(frame);  // drops the payload if nobody consumed it
    ++d.frames;
    d.bytes += total;
    if (!conn_->open()) {
      d.stop = Stop::kClosed;
      break;
    }
    avail = evbuffer_get_length(buf);
  }
  return d;
}

FilterStatus FramingFilter::onData(evbuffer* data, bool end_stream) {
  if (!conn_->open()) return FilterStatus::kStopIteration;
  input_ = data;
  const Decoded d = decode(data);
  const uint64_t frames = d.frames;
  const FramingStats& st = stats();
  // Counted once per read, not per frame.
  if (frames > 0) {
    st.frames_in->inc(frames);
    st.bytes_in->inc(d.bytes);
  }
  if (d.stop == Stop::kClosed) return FilterStatus::kStopIteration;
  const bool idle_on = factory_.idleTimeouts() != nullptr;
  if (d.stop == Stop::kPaused) {
    // Complete frames wait for the resume (the connection re-delivers them);
    // nothing is stalled on the client's side: the idle timeout applies
    // (and an expiry while paused restarts it). A complete frame is
    // buffered, so the first-frame deadline is met.
    if ((frames > 0 && idle_on) || partial_ || awaiting_first_) trackIdle(coarseNowNs());
    partial_ = false;
    awaiting_first_ = false;
    return FilterStatus::kStopIteration;
  }
  const size_t remaining = d.remaining;
  if (end_stream) {
    closeAtEof(data, remaining);
    return FilterStatus::kStopIteration;
  }
  if (awaiting_first_ && !onReadAwaitingFirst(frames, remaining)) {
    return FilterStatus::kStopIteration;
  }
  if (frames > 0) {
    const int64_t now = coarseNowNs();
    // Only the frame that was in progress can be slow: with two or more
    // frames in this read, at least one arrived whole, i.e. promptly.
    const int64_t slow_ns = factory_.slowFrameNs();
    const bool slow = partial_ && frames == 1 && slow_ns > 0 && now - touchedNs() > slow_ns;
    if (slow && !onSlowFrame(now)) return FilterStatus::kStopIteration;
    if (remaining > 0) {
      // The next frame started arriving: its read timeout runs from now.
      if (!slow) {
        active_ticks_ = framingTicks(now);
        slow_frames_ = 0;
      }
      factory_.readTimeouts().touch(*this, now);
    } else if (!idle_on) {
      unlink();  // no idle timeout: this only stops a read timeout
    } else if (!slow) {
      trackIdle(now);  // idle from now on
    } else {
      // Back in the idle list, without counting as activity.
      factory_.idleTimeouts()->touch(*this, now);
    }
  } else if (remaining > 0 && !partial_) {
    // A new frame started arriving.
    factory_.readTimeouts().touch(*this, coarseNowNs());
  }
  partial_ = remaining > 0;
  return FilterStatus::kStopIteration;
}

__attribute__((noinline)) bool FramingFilter::onReadAwaitingFirst(uint64_t frames,
                                                                  size_t remaining) {
  if (frames > 0) {
    // The first frame is in: from here on the connection is governed like
    // any other. That frame is not measured as slow (its deadline bounded it).
    awaiting_first_ = false;
    partial_ = false;
    return true;
  }
  if (remaining > 0 && !partial_ && linked()) {
    // The first frame started arriving: read_timeout applies to it too, so
    // the entry moves to the read list when that deadline comes first.
    const int64_t now = coarseNowNs();
    const int64_t first_deadline =
        touchedNs() + static_cast<int64_t>(config().first_frame_timeout.count()) * 1'000'000;
    const int64_t read_deadline =
        now + static_cast<int64_t>(config().read_timeout.count()) * 1'000'000;
    if (read_deadline < first_deadline) factory_.readTimeouts().touch(*this, now);
  }
  partial_ = remaining > 0;
  return false;
}

__attribute__((noinline, cold)) bool FramingFilter::onSlowFrame(int64_t now_ns) {
  stats().slow_frames->inc();
  if (slow_frames_ < 255) ++slow_frames_;
  const uint32_t idle_ticks = framingTicks(config().idle_timeout.count() * 1'000'000);
  if (static_cast<uint32_t>(framingTicks(now_ns) - active_ticks_) <= idle_ticks) return true;
  stats().idle_timeout->inc();
  callbacks().close(CloseReason::kIdleTimeout,
                    "no prompt frame within idle_timeout " + ms(config().idle_timeout) + ": " +
                        std::to_string(slow_frames_) + " slow frames (over slow_frame_time " +
                        ms(config().slow_frame_time) + " each) do not count",
                    Connection::CloseMode::kFlush);
  return false;
}

__attribute__((noinline, cold)) wire::ClientHeader FramingFilter::copyOutHeader(evbuffer* buf) {
  uint8_t raw[kHeader];
  evbuffer_copyout(buf, raw, kHeader);
  return loadHeader(raw);
}

__attribute__((noinline, cold)) void FramingFilter::closeTooLarge(const wire::ClientHeader& h) {
  const size_t max_frame_bytes = config().max_frame_bytes;
  stats().too_large->inc();
  stats().routing_too_large->inc();
  callbacks().close(CloseReason::kFrameTooLarge,
                    "frame length " + std::to_string(h.length) + " exceeds max_frame_bytes " +
                        std::to_string(max_frame_bytes) + " (msg_id " + std::to_string(h.msg_id) +
                        ")",
                    Connection::CloseMode::kFlush);
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
  stats().malformed->inc();
  callbacks().close(CloseReason::kMalformedFrame,
                    "connection closed mid-frame: " + describePartial(buf, remaining),
                    Connection::CloseMode::kFlush);
}

void FramingFilter::onExpired(Which which, int64_t now_ns) {
  Connection& conn = *conn_;
  if (!conn.open()) return;
  const bool paused = callbacks().readDisabled();
  if (paused || was_paused_) {
    // Reading is (or was, since the last check) paused by backpressure: the
    // client could not make progress, so the clock restarts here. After a
    // resume the client gets at least a full timeout.
    was_paused_ = paused;
    if (which == Which::kRead) {
      factory_.readTimeouts().touch(*this, now_ns);
    } else if (which == Which::kFirst) {
      factory_.firstFrameTimeouts()->touch(*this, now_ns);
    } else {
      trackIdle(now_ns);
    }
    return;
  }
  if (which == Which::kFirst) {
    stats().first_frame_timeout->inc();
    std::string detail = "no complete frame within first_frame_timeout " +
                         ms(config().first_frame_timeout) + " of connect";
    evbuffer* in = lastInput();
    size_t remaining = evbuffer_get_length(in);
    if (remaining > 0) detail += ": " + describePartial(in, remaining);
    callbacks().close(CloseReason::kFirstFrameTimeout, detail, Connection::CloseMode::kFlush);
    return;
  }
  if (which == Which::kRead) {
    stats().read_timeout->inc();
    evbuffer* in = lastInput();
    size_t remaining = evbuffer_get_length(in);
    callbacks().close(CloseReason::kReadTimeout,
                      "frame not completed within read_timeout " + ms(config().read_timeout) +
                          ": " + describePartial(in, remaining),
                      Connection::CloseMode::kFlush);
    return;
  }
  stats().idle_timeout->inc();
  std::string detail = "no frame within idle_timeout " + ms(config().idle_timeout);
  if (slow_frames_ > 0) {
    detail += " but " + std::to_string(slow_frames_) + " slow frames (over slow_frame_time " +
              ms(config().slow_frame_time) + " each), which do not count";
  }
  callbacks().close(CloseReason::kIdleTimeout, detail, Connection::CloseMode::kFlush);
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
  // One write: header and payload reach observing filters together (one
  // WebSocket message, one TLS record); the payload's chains are moved.
  callbacks().writeBytes(raw, kHeader, frame.source(), len);
  frame.markConsumed();
  const FramingStats& st = stats();
  st.frames_out->inc();
  st.bytes_out->inc(kHeader + len);
  return FilterStatus::kStopIteration;
}

void FramingFilter::onClose(CloseReason) { unlink(); }

FramingFactory::FramingFactory(std::shared_ptr<const FramingConfig> config,
                               WorkerContext& worker)
    : config_(std::move(config)),
      stats_(worker.listener),
      read_timeouts_(worker.dispatcher, config_->read_timeout, [](TimeoutList::Entry& e, int64_t now) {
        static_cast<FramingFilter&>(e).onExpired(FramingFilter::Which::kRead, now);
      }) {
  const bool idle_on = config_->idle_timeout.count() > 0;
  if (idle_on) {
    idle_timeouts_.emplace(worker.dispatcher, config_->idle_timeout,
                           [](TimeoutList::Entry& e, int64_t now) {
                             static_cast<FramingFilter&>(e).onExpired(FramingFilter::Which::kIdle,
                                                                      now);
                           });
    slow_frame_ns_ = static_cast<int64_t>(config_->slow_frame_time.count()) * 1'000'000;
  }
  // A first-frame deadline no shorter than idle_timeout would never fire
  // first: the idle list alone serves then.
  if (config_->first_frame_timeout.count() > 0 &&
      (!idle_on || config_->first_frame_timeout < config_->idle_timeout)) {
    first_frame_timeouts_.emplace(worker.dispatcher, config_->first_frame_timeout,
                                  [](TimeoutList::Entry& e, int64_t now) {
                                    static_cast<FramingFilter&>(e).onExpired(
                                        FramingFilter::Which::kFirst, now);
                                  });
  }
}

std::unique_ptr<Filter> FramingFactory::createFilter() {
  return std::make_unique<FramingFilter>(*this);
}

void FramingConfig::describe(rapidjson::Value& out, JsonAllocator& alloc) const {
  out.AddMember("max_frame_bytes", static_cast<uint64_t>(max_frame_bytes), alloc);
  out.AddMember("read_timeout", jsonDuration(read_timeout, alloc),
                alloc);
  out.AddMember("idle_timeout", jsonDuration(idle_timeout, alloc), alloc);
  out.AddMember("first_frame_timeout", jsonDuration(first_frame_timeout, alloc), alloc);
  out.AddMember("slow_frame_time", jsonDuration(slow_frame_time, alloc), alloc);
}

class FramingConfigFactory : public TypedFilterConfigFactory<FramingConfig, FramingFactory> {
 public:
  FramingConfigFactory()
      : TypedFilterConfigFactory("framing", FilterTraits::codec(), kFramingSchema) {}

  std::shared_ptr<const FramingConfig> parseConfig(const rapidjson::Value& json,
                                                   ParseContext& ctx) const override {
    auto cfg = std::make_shared<FramingConfig>();
    cfg->max_frame_bytes = ctx.size(json, "max_frame_bytes", cfg->max_frame_bytes, 1,
                                    wire::kMaxClientPayload);
    // read_timeout > 0: a stalled frame would otherwise hold the connection
    // forever. idle_timeout "0s" turns the idle timeout off.
    cfg->read_timeout = ctx.duration(json, "read_timeout", cfg->read_timeout, milliseconds(1));
    cfg->idle_timeout = ctx.duration(json, "idle_timeout", cfg->idle_timeout);
    cfg->first_frame_timeout =
        ctx.duration(json, "first_frame_timeout", cfg->first_frame_timeout);
    cfg->slow_frame_time = ctx.duration(json, "slow_frame_time", cfg->slow_frame_time);
    return cfg;
  }
};

GW_REGISTER_FILTER(FramingConfigFactory);

}  // namespace framing
}  // namespace gw
