#include "filters/websocket/websocket.h"

#include <event2/buffer.h>

#include <algorithm>
#include <cstring>

#include "core/http/request_head.h"
#include "core/sdk/clock.h"
#include "core/sdk/wire.h"
#include "filters/websocket/websocket_schema.h"

namespace gw {
namespace websocket {

namespace {

constexpr size_t kClientHeader = wire::kClientHeaderSize;

std::string codeLabel(size_t slot) {
  return slot < kCloseCodeSlots - 1 ? std::to_string(kCountedCloseCodes[slot]) : "other";
}

// Writes `hdr` in front of the bytes in `buf`. When they sit in one chain
// with room after them (the usual case for a staged write), shifts them in
// place instead of letting evbuffer_prepend allocate a chain for the header.
void prependHeader(evbuffer* buf, const uint8_t* hdr, size_t hlen) {
  evbuffer_iovec space;
  if (evbuffer_reserve_space(buf, static_cast<ssize_t>(hlen), &space, 1) == 1) {
    evbuffer_iovec data;
    const int chains = evbuffer_peek(buf, -1, nullptr, &data, 1);
    auto* base = static_cast<uint8_t*>(data.iov_base);
    if (chains == 1 && data.iov_len <= 4096 && base + data.iov_len == space.iov_base) {
      std::memmove(base + hlen, base, data.iov_len);
      std::memcpy(base, hdr, hlen);
      space.iov_len = hlen;
      evbuffer_commit_space(buf, &space, 1);
      return;
    }
  }
  evbuffer_prepend(buf, hdr, hlen);
}

}  // namespace

size_t WebsocketStats::codeSlot(uint16_t code) {
  for (size_t i = 0; i < kCloseCodeSlots - 1; ++i) {
    if (kCountedCloseCodes[i] == code) return i;
  }
  return kCloseCodeSlots - 1;
}

WebsocketStats::WebsocketStats(const std::string& listener) {
  auto& r = stats::StatsRegistry::get();
  const std::string hs_help = "WebSocket handshakes completed (101), by transport.";
  handshakes_ws = &r.counter("game_gateway_websocket_handshakes_total", hs_help,
                             {{"listener", listener}, {"transport", "ws"}});
  handshakes_wss = &r.counter("game_gateway_websocket_handshakes_total", hs_help,
                              {{"listener", listener}, {"transport", "wss"}});
  const std::string fail_help =
      "WebSocket handshakes refused (with an HTTP status) or abandoned, by reason.";
  for (size_t i = 1; i < static_cast<size_t>(HandshakeError::kCount); ++i) {
    handshake_failures[i] = &r.counter(
        "game_gateway_websocket_handshake_failures_total", fail_help,
        {{"listener", listener},
         {"reason", std::string(handshakeErrorName(static_cast<HandshakeError>(i)))}});
  }
  handshake_failures[0] = handshake_failures[1];
  const std::string err_help =
      "WebSocket connections closed for a protocol error in a client frame, by reason (the "
      "close code sent is in game_gateway_websocket_close_codes_total).";
  for (size_t i = 1; i < static_cast<size_t>(DecodeError::kCount); ++i) {
    protocol_errors[i] =
        &r.counter("game_gateway_websocket_protocol_errors_total", err_help,
                   {{"listener", listener},
                    {"reason", std::string(decodeErrorName(static_cast<DecodeError>(i)))}});
  }
  protocol_errors[0] = protocol_errors[1];
  const std::string close_help =
      "WebSocket close frames by direction and status code (1005: a close without a code; "
      "other: any code not listed).";
  for (size_t i = 0; i < kCloseCodeSlots; ++i) {
    close_sent[i] = &r.counter("game_gateway_websocket_close_codes_total", close_help,
                               {{"listener", listener}, {"direction", "sent"}, {"code", codeLabel(i)}});
    close_received[i] =
        &r.counter("game_gateway_websocket_close_codes_total", close_help,
                   {{"listener", listener}, {"direction", "received"}, {"code", codeLabel(i)}});
  }
  const std::string frames_help = "WebSocket frames by direction and kind.";
  auto frames = [&](const char* dir, const char* kind) {
    return &r.counter("game_gateway_websocket_frames_total", frames_help,
                      {{"listener", listener}, {"direction", dir}, {"opcode", kind}});
  };
  data_frames_in = frames("in", "data");
  pings_in = frames("in", "ping");
  pongs_in = frames("in", "pong");
  pongs_out = frames("out", "pong");
  const std::string msg_help =
      "WebSocket binary messages (in: completed client messages; out: one per client frame, or "
      "per write with outbound_messages \"write\").";
  messages_in = &r.counter("game_gateway_websocket_messages_total", msg_help,
                           {{"listener", listener}, {"direction", "in"}});
  messages_out = &r.counter("game_gateway_websocket_messages_total", msg_help,
                            {{"listener", listener}, {"direction", "out"}});
  passthrough = &r.counter("game_gateway_websocket_passthrough_total",
                           "TLS connections whose decrypted first bytes were not HTTP (raw client "
                           "frames over TLS, passed through).",
                           {{"listener", listener}});
}

WebsocketFilter::WebsocketFilter(WebsocketFactory& factory)
    : factory_(factory), decoder_(factory.config().max_message_bytes) {}

WebsocketFilter::~WebsocketFilter() {
  for (evbuffer* b : {decoded_, held_, scratch_, control_}) {
    if (b != nullptr) evbuffer_free(b);
  }
}

size_t WebsocketFilter::buffered() const {
  if (in_place_) return const_cast<WebsocketFilter*>(this)->callbacks().passedLeft();
  return decoded_ == nullptr ? 0 : evbuffer_get_length(decoded_);
}

FilterStatus WebsocketFilter::onNewConnection() {
  transport_ = callbacks().slots().get<TransportInfo>();
  if (transport_ == nullptr) {
    // A dedicated WebSocket port: the handshake is due now.
    mode_ = Mode::kHandshake;
    factory_.deadlines().touch(*this, coarseNowNs());
  }
  return FilterStatus::kContinue;
}

void WebsocketFilter::pickMode() {
  if (transport_->websocket) {
    mode_ = Mode::kHandshake;
  } else if (transport_->tls) {
    mode_ = Mode::kSniff;
  } else {
    mode_ = Mode::kOff;
    releaseHeld();
    return;
  }
  factory_.deadlines().touch(*this, coarseNowNs());
}

FilterStatus WebsocketFilter::onData(evbuffer* data, bool end_stream) {
  input_ = data;
  if (mode_ == Mode::kOpen) return onFrames(data, end_stream);
  if (mode_ == Mode::kPending) pickMode();
  if (mode_ == Mode::kSniff) {
    const size_t n = std::min(evbuffer_get_length(data), config().max_handshake_bytes);
    const auto* p = reinterpret_cast<const char*>(evbuffer_pullup(data, static_cast<ssize_t>(n)));
    const http::LineState s = http::scanRequestLine(std::string_view(p == nullptr ? "" : p, n));
    if (s == http::LineState::kNotHttp ||
        (s == http::LineState::kNeedMore && (end_stream || n == 0))) {
      if (n == 0 && !end_stream) return FilterStatus::kStopIteration;
      unlink();
      mode_ = Mode::kOff;
      stats().passthrough->inc();
      releaseHeld();
      return FilterStatus::kContinue;
    }
    if (s == http::LineState::kNeedMore && n < config().max_handshake_bytes) {
      return FilterStatus::kStopIteration;
    }
    mode_ = Mode::kHandshake;  // an HTTP request line (or too long a one: 431)
  }
  switch (mode_) {
    case Mode::kHandshake:
      return onHandshake(data, end_stream);
    case Mode::kOff:
      return FilterStatus::kContinue;
    default:
      evbuffer_drain(data, evbuffer_get_length(data));
      return FilterStatus::kStopIteration;
  }
}

FilterStatus WebsocketFilter::onHandshake(evbuffer* data, bool end_stream) {
  const WebsocketConfig& cfg = config();
  const size_t avail = evbuffer_get_length(data);
  const size_t n = std::min(avail, cfg.max_handshake_bytes);
  const auto* p = reinterpret_cast<const char*>(evbuffer_pullup(data, static_cast<ssize_t>(n)));
  const std::string_view bytes(p == nullptr ? "" : p, n);
  const size_t head_len = http::findHeadEnd(bytes);
  if (head_len == std::string_view::npos) {
    if (n >= cfg.max_handshake_bytes) {
      refuse(431, HandshakeError::kHeadersTooLarge,
             "request head longer than max_handshake_bytes " +
                 std::to_string(cfg.max_handshake_bytes));
    } else if (end_stream) {
      unlink();
      mode_ = Mode::kClosed;
      stats().handshake_failures[static_cast<size_t>(HandshakeError::kEof)]->inc();
      callbacks().close(CloseReason::kRemoteClosed,
                        "websocket: peer closed during the handshake (" + std::to_string(n) +
                            " bytes of request head)",
                        Connection::CloseMode::kFlush);
    }
    return FilterStatus::kStopIteration;
  }
  HandshakeResult result = checkHandshake(bytes.substr(0, head_len), cfg.policy());
  if (result.error != HandshakeError::kNone) {
    refuse(result.status, result.error, result.detail);
    return FilterStatus::kStopIteration;
  }
  unlink();
  evbuffer_drain(data, head_len);
  const std::string response = switchingProtocols(result);
  callbacks().writeBytes(response.data(), response.size());
  mode_ = Mode::kOpen;
  const bool wss = transport_ != nullptr && transport_->tls;
  if (transport_ != nullptr) transport_->websocket = true;
  (wss ? stats().handshakes_wss : stats().handshakes_ws)->inc();
  decoded_ = evbuffer_new();
  releaseHeld();
  if (!callbacks().connection().open()) return FilterStatus::kStopIteration;
  if (evbuffer_get_length(data) > 0 || end_stream) return onFrames(data, end_stream);
  return FilterStatus::kStopIteration;
}

void WebsocketFilter::refuse(int status, HandshakeError error, const std::string& detail) {
  unlink();
  mode_ = Mode::kClosed;
  stats().handshake_failures[static_cast<size_t>(error)]->inc();
  const std::string response = websocket::refusal(status, error);
  callbacks().writeBytes(response.data(), response.size());
  callbacks().close(CloseReason::kFilterError,
                    "websocket: handshake refused with " + std::to_string(status) + " (" +
                        std::string(handshakeErrorName(error)) + "): " + detail,
                    Connection::CloseMode::kFlush);
}

// Inlined into the read paths: outlined, the call showed in perf (~3 % of a
// read in websocket_bench).
inline __attribute__((always_inline)) void WebsocketFilter::countFrames(
    uint64_t frames_before, uint64_t messages_before) {
  const WebsocketStats& st = stats();
  if (decoder_.dataFrames() != frames_before) {
    st.data_frames_in->inc(decoder_.dataFrames() - frames_before);
  }
  if (decoder_.messages() != messages_before) {
    st.messages_in->inc(decoder_.messages() - messages_before);
  }
}

FilterStatus WebsocketFilter::onFrames(evbuffer* data, bool end_stream) {
  // Where the bytes are and, when they sit in one chain (the usual case),
  // how many: one peek, no separate length call. (Chains after the first
  // may be empty: reserved space.)
  evbuffer_iovec v[2];
  const int chains = evbuffer_peek(data, -1, nullptr, v, 2);
  const size_t len = chains == 1 ? v[0].iov_len : evbuffer_get_length(data);
  const bool one_chain = chains >= 1 && v[0].iov_len >= len;
  // The bytes at the front the later filters left after the last in-place
  // pass are decoded already; the rest arrived since.
  size_t done = 0;
  if (in_place_) {
    done = callbacks().passedLeft();
    if (done > len) done = len;
  }
  // (After an in-place pass decoded_ is empty: it only fills in copy mode,
  // and every path that fills it clears in_place_.)
  if ((in_place_ || evbuffer_get_length(decoded_) == 0) && !decoder_.done()) {
    if (done == len) {
      in_place_ = true;
      if (len > 0 || end_stream) callbacks().passData(data, end_stream);
      return FilterStatus::kStopIteration;
    }
    if (one_chain) {
      return onFramesInPlace(data, static_cast<uint8_t*>(v[0].iov_base), len, done, end_stream);
    }
  }
  // Not in one chain (or decoded bytes wait in decoded_): decoded bytes go
  // to decoded_, after those already decoded in place.
  if (done > 0) evbuffer_remove_buffer(data, decoded_, done);
  in_place_ = false;
  return onFramesCopy(data, end_stream);
}

FilterStatus WebsocketFilter::onFramesInPlace(evbuffer* data, uint8_t* base, size_t len,
                                              size_t done, bool end_stream) {
  const uint64_t frames_before = decoder_.dataFrames();
  const uint64_t messages_before = decoder_.messages();
  // Decoded bytes are [front, w); [w, r) is consumed (headers); [r, len) is
  // still to decode.
  size_t front = 0;
  size_t w = done;
  size_t r = done;
  DecodeEvent ev;
  while (r < len) {
    size_t n = len - r;
    if (w == front) {
      // Nothing decoded is kept in front: skip what was consumed, and decode
      // a header at the front alone so the payload after it stays in place.
      front = w = r;
      const size_t h = decoder_.wholeHeader(base + r, n);
      if (h > 0) n = h;
    }
    size_t wrote = 0;
    const size_t used = decoder_.decode(base + r, n, base + w, &wrote, &ev);
    r += used;
    w += wrote;
    if (ev.kind == DecodeEvent::kClose || ev.kind == DecodeEvent::kError) {
      // What was decoded before it goes on from decoded_; the rest is dropped.
      evbuffer_drain(data, front);
      evbuffer_remove_buffer(data, decoded_, w - front);
      evbuffer_drain(data, evbuffer_get_length(data));
      in_place_ = false;
      countFrames(frames_before, messages_before);
      onEvent(ev);
      return FilterStatus::kStopIteration;
    }
    if (ev.kind != DecodeEvent::kNone && !onEvent(ev)) {
      countFrames(frames_before, messages_before);
      return FilterStatus::kStopIteration;
    }
    if (used == 0 && ev.kind == DecodeEvent::kNone) break;  // not expected: the decoder takes all
  }
  countFrames(frames_before, messages_before);
  // Close the gap after the decoded bytes (headers consumed behind them):
  // move them back to end at r, then drop everything before.
  const size_t kept = w - front;
  if (r > w && kept > 0) {
    std::memmove(base + r - kept, base + front, kept);
    front = r - kept;
  } else if (kept == 0) {
    front = r;
  }
  evbuffer_drain(data, front);
  in_place_ = true;
  if (len > front || end_stream) callbacks().passData(data, end_stream);
  return FilterStatus::kStopIteration;
}

FilterStatus WebsocketFilter::onFramesCopy(evbuffer* data, bool end_stream) {
  const uint64_t frames_before = decoder_.dataFrames();
  const uint64_t messages_before = decoder_.messages();
  bool open = true;
  for (;;) {
    const size_t avail = evbuffer_get_length(data);
    if (avail == 0 || decoder_.done()) break;
    constexpr int kVecs = 8;
    evbuffer_iovec in[kVecs];
    int nv = evbuffer_peek(data, -1, nullptr, in, kVecs);
    if (nv > kVecs) nv = kVecs;
    size_t span = 0;
    for (int k = 0; k < nv; ++k) span += in[k].iov_len;
    evbuffer_iovec out;
    if (evbuffer_reserve_space(decoded_, static_cast<ssize_t>(span), &out, 1) != 1) {
      closeWith(kCloseInternalError, CloseReason::kFilterError,
                "websocket: no memory for " + std::to_string(span) + " decoded bytes");
      return FilterStatus::kStopIteration;
    }
    auto* dst = static_cast<uint8_t*>(out.iov_base);
    size_t produced = 0;
    size_t consumed = 0;
    DecodeEvent ev;
    for (int k = 0; k < nv; ++k) {
      size_t wrote = 0;
      const size_t used = decoder_.decode(static_cast<const uint8_t*>(in[k].iov_base),
                                          in[k].iov_len, dst + produced, &wrote, &ev);
      produced += wrote;
      consumed += used;
      if (ev.kind != DecodeEvent::kNone || used < in[k].iov_len) break;
    }
    if (produced > 0) {
      out.iov_len = produced;
      evbuffer_commit_space(decoded_, &out, 1);
    }
    evbuffer_drain(data, consumed);
    if (ev.kind != DecodeEvent::kNone && !onEvent(ev)) {
      open = false;
      break;
    }
    if (consumed == avail) break;
  }
  countFrames(frames_before, messages_before);
  if (!open || !callbacks().connection().open()) return FilterStatus::kStopIteration;
  if (decoder_.done()) evbuffer_drain(data, evbuffer_get_length(data));
  if (evbuffer_get_length(decoded_) > 0 || end_stream) callbacks().passData(decoded_, end_stream);
  return FilterStatus::kStopIteration;
}

bool WebsocketFilter::onEvent(const DecodeEvent& ev) {
  const WebsocketStats& st = stats();
  switch (ev.kind) {
    case DecodeEvent::kPing:
      st.pings_in->inc();
      sendControl(kPong, ev.payload);
      st.pongs_out->inc();
      return callbacks().connection().open();
    case DecodeEvent::kPong:
      st.pongs_in->inc();
      return true;
    case DecodeEvent::kClose: {
      st.close_received[WebsocketStats::codeSlot(ev.close_code)]->inc();
      // What arrived before the close still goes on.
      if (evbuffer_get_length(decoded_) > 0) callbacks().passData(decoded_, false);
      if (!callbacks().connection().open()) return false;
      const bool cut = decoder_.inMessage();
      // Echo the code (RFC 6455 5.5.1); a close without a code is answered
      // without one.
      closeWith(ev.close_code, CloseReason::kRemoteClosed,
                "websocket: client sent close " + std::to_string(ev.close_code) +
                    (cut ? " inside a fragmented message" : ""));
      return false;
    }
    case DecodeEvent::kError: {
      st.protocol_errors[static_cast<size_t>(ev.error)]->inc();
      if (evbuffer_get_length(decoded_) > 0) callbacks().passData(decoded_, false);
      if (!callbacks().connection().open()) return false;
      const uint16_t code = closeCodeFor(ev.error);
      closeWith(code, CloseReason::kMalformedFrame,
                "websocket: " + std::string(decodeErrorName(ev.error)) + " (close " +
                    std::to_string(code) + ")");
      return false;
    }
    case DecodeEvent::kNone:
      break;
  }
  return true;
}

void WebsocketFilter::sendControl(uint8_t opcode, std::string_view payload) {
  uint8_t frame[2 + 125];
  const size_t h = encodeHeader(frame, opcode, payload.size());
  std::memcpy(frame + h, payload.data(), payload.size());
  if (out_remaining_ > 0 || out_header_len_ > 0) {
    // A client frame is being written in pieces: the control frame goes
    // after it (frames of one message must not be split).
    if (control_ == nullptr) control_ = evbuffer_new();
    evbuffer_add(control_, frame, h + payload.size());
    return;
  }
  callbacks().writeBytes(frame, h + payload.size());
}

void WebsocketFilter::sendClose(uint16_t code) {
  mode_ = Mode::kClosed;
  if (out_remaining_ == 0 && out_header_len_ == 0) {
    uint8_t frame[4];
    const size_t n = closeFrame(frame, code);
    callbacks().writeBytes(frame, n);
    stats().close_sent[WebsocketStats::codeSlot(code)]->inc();
  }
}

void WebsocketFilter::closeWith(uint16_t code, CloseReason reason, const std::string& detail) {
  sendClose(code);
  callbacks().close(reason, detail, Connection::CloseMode::kFlush);
}

void WebsocketFilter::onClosing(CloseReason reason) {
  if (mode_ != Mode::kOpen) return;  // not WebSocket, or a close frame went already
  const uint16_t code = closeCodeForReason(reason);
  if (code != 0) sendClose(code);
}

uint16_t closeCodeForReason(CloseReason reason) {
  switch (reason) {
    case CloseReason::kLocalClosed:
      return kCloseNormal;
    case CloseReason::kShutdown:
    case CloseReason::kIdleTimeout:
    case CloseReason::kSessionIdle:
      return kCloseGoingAway;
    case CloseReason::kFrameTooLarge:
      return kCloseTooBig;
    case CloseReason::kReadTimeout:
    case CloseReason::kFirstFrameTimeout:
    case CloseReason::kMalformedFrame:
    case CloseReason::kRateLimited:
    case CloseReason::kKicked:
    case CloseReason::kDuplicateLogin:
      return kClosePolicy;
    case CloseReason::kOverloaded:
      return kCloseTryAgainLater;
    case CloseReason::kUpstreamConnectFailed:
    case CloseReason::kUpstreamClosed:
    case CloseReason::kFilterError:
      return kCloseInternalError;
    case CloseReason::kRemoteClosed:
    case CloseReason::kSocketError:
    case CloseReason::kOutputOverflow:
    case CloseReason::kTlsHandshakeFailed:
    case CloseReason::kTlsHandshakeTimeout:
    case CloseReason::kTlsError:
    case CloseReason::kCount:
      break;
  }
  return 0;
}

FilterStatus WebsocketFilter::onWriteData(evbuffer* data, bool) {
  switch (mode_) {
    case Mode::kOff:
      return FilterStatus::kContinue;
    case Mode::kOpen:
      wrap(data);
      return FilterStatus::kContinue;
    case Mode::kPending:
      // No TransportInfo decision yet is possible only before any data.
      if (transport_ != nullptr && transport_->decided && !transport_->websocket &&
          !transport_->tls) {
        return FilterStatus::kContinue;
      }
      [[fallthrough]];
    case Mode::kSniff:
    case Mode::kHandshake:
      if (held_ == nullptr) held_ = evbuffer_new();
      evbuffer_add_buffer(held_, data);
      return FilterStatus::kStopIteration;
    case Mode::kClosed:
      break;
  }
  evbuffer_drain(data, evbuffer_get_length(data));
  return FilterStatus::kStopIteration;
}

void WebsocketFilter::releaseHeld() {
  if (held_ == nullptr || evbuffer_get_length(held_) == 0) return;
  if (mode_ == Mode::kOpen) wrap(held_);
  callbacks().writeBytes(held_, evbuffer_get_length(held_));
}

size_t WebsocketFilter::headerFor(const WriteView& write, uint8_t* hdr) {
  const size_t len = write.length();
  if (len == 0) return 0;
  if (config().message_per_write) {
    stats().messages_out->inc();
    return encodeHeader(hdr, kBinary, len);
  }
  // The rest of the client frame being written (a writer that writes a
  // frame's header and payload apart); a control frame waiting for its end
  // goes after it (wrapSlow).
  if (len <= out_remaining_) {
    if (len == out_remaining_ && control_ != nullptr && evbuffer_get_length(control_) > 0) {
      return Filter::kNoPrefix;
    }
    out_remaining_ -= len;
    return 0;
  }
  // A client frame starts here and this write holds no more than it: a
  // whole frame (framing's one write), or its first piece.
  if (out_remaining_ == 0 && out_header_len_ == 0 && len >= kClientHeader) {
    uint8_t raw[kClientHeader];
    const uint8_t* h = write.head;
    if (write.head_len < kClientHeader) {
      write.copyFront(raw, kClientHeader);
      h = raw;
    }
    const size_t frame = kClientHeader + wire::getU16(h);
    if (len <= frame) {
      out_remaining_ = frame - len;
      stats().messages_out->inc();
      return encodeHeader(hdr, kBinary, frame);
    }
  }
  return Filter::kNoPrefix;
}

size_t WebsocketFilter::onWritePrefix(const WriteView& write, uint8_t* prefix) {
  switch (mode_) {
    case Mode::kOff:
      return 0;
    case Mode::kOpen:
      return headerFor(write, prefix);
    case Mode::kPending:
      if (transport_ != nullptr && transport_->decided && !transport_->websocket &&
          !transport_->tls) {
        return 0;
      }
      break;
    default:
      break;
  }
  return Filter::kNoPrefix;  // held (handshake) or dropped (closed): onWriteData
}

void WebsocketFilter::wrap(evbuffer* buf) {
  uint8_t hdr[Filter::kMaxWritePrefix];
  const size_t n = headerFor(WriteView{nullptr, 0, buf, evbuffer_get_length(buf)}, hdr);
  if (n == Filter::kNoPrefix) {
    wrapSlow(buf);
  } else if (n > 0) {
    prependHeader(buf, hdr, n);
  }
}

void WebsocketFilter::wrapSlow(evbuffer* buf) {
  if (scratch_ == nullptr) scratch_ = evbuffer_new();
  size_t len = evbuffer_get_length(buf);
  uint64_t messages = 0;
  while (len > 0) {
    if (out_remaining_ > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(out_remaining_, len));
      evbuffer_remove_buffer(buf, scratch_, n);
      out_remaining_ -= n;
      len -= n;
    } else {
      const size_t take = std::min(kClientHeader - out_header_len_, len);
      evbuffer_remove(buf, out_header_ + out_header_len_, take);
      out_header_len_ = static_cast<uint8_t>(out_header_len_ + take);
      len -= take;
      if (out_header_len_ < kClientHeader) break;  // held until the rest comes
      const size_t frame = kClientHeader + wire::getU16(out_header_);
      uint8_t hdr[10];
      evbuffer_add(scratch_, hdr, encodeHeader(hdr, kBinary, frame));
      evbuffer_add(scratch_, out_header_, kClientHeader);
      out_header_len_ = 0;
      out_remaining_ = frame - kClientHeader;
      ++messages;
    }
    if (out_remaining_ == 0 && out_header_len_ == 0 && control_ != nullptr) {
      evbuffer_add_buffer(scratch_, control_);
    }
  }
  if (messages > 0) stats().messages_out->inc(messages);
  evbuffer_add_buffer(buf, scratch_);
}

void WebsocketFilter::onDeadline() {
  Connection& conn = callbacks().connection();
  if (!conn.open()) return;
  if (mode_ == Mode::kSniff) {
    // Not HTTP in time: raw client frames over TLS.
    mode_ = Mode::kOff;
    stats().passthrough->inc();
    releaseHeld();
    evbuffer* in = input_ != nullptr ? input_ : conn.input();
    if (evbuffer_get_length(in) > 0) callbacks().continueReading();
    return;
  }
  if (mode_ != Mode::kHandshake) return;
  mode_ = Mode::kClosed;
  stats().handshake_failures[static_cast<size_t>(HandshakeError::kTimeout)]->inc();
  evbuffer* in = input_ != nullptr ? input_ : conn.input();
  callbacks().close(CloseReason::kReadTimeout,
                    "websocket: no complete upgrade request within handshake_timeout " +
                        formatDuration(config().handshake_timeout) + " (" +
                        std::to_string(evbuffer_get_length(in)) + " bytes received)",
                    Connection::CloseMode::kFlush);
}

void WebsocketFilter::onClose(CloseReason) { unlink(); }

WebsocketFactory::WebsocketFactory(std::shared_ptr<const WebsocketConfig> config,
                                   WorkerContext& worker)
    : config_(std::move(config)),
      stats_(worker.listener),
      deadlines_(worker.dispatcher, config_->handshake_timeout,
                 [](TimeoutList::Entry& e, int64_t) {
                   static_cast<WebsocketFilter&>(e).onDeadline();
                 }) {}

std::unique_ptr<Filter> WebsocketFactory::createFilter() {
  return std::make_unique<WebsocketFilter>(*this);
}

void WebsocketConfig::describe(rapidjson::Value& out, JsonAllocator& alloc) const {
  out.AddMember("path", rapidjson::Value(path.c_str(), alloc), alloc);
  rapidjson::Value origins(rapidjson::kArrayType);
  for (const std::string& o : allowed_origins) {
    origins.PushBack(rapidjson::Value(o.c_str(), alloc), alloc);
  }
  out.AddMember("allowed_origins", origins, alloc);
  out.AddMember("subprotocol", rapidjson::Value(subprotocol.c_str(), alloc), alloc);
  out.AddMember("max_message_bytes", max_message_bytes, alloc);
  out.AddMember("handshake_timeout", jsonDuration(handshake_timeout, alloc), alloc);
  out.AddMember("max_handshake_bytes", static_cast<uint64_t>(max_handshake_bytes), alloc);
  out.AddMember("outbound_messages",
                rapidjson::StringRef(message_per_write ? "write" : "client_frame"), alloc);
}

class WebsocketConfigFactory
    : public TypedFilterConfigFactory<WebsocketConfig, WebsocketFactory> {
 public:
  static constexpr FilterTraits kTraits{Layer::kBytes, Layer::kBytes, false, true};

  WebsocketConfigFactory() : TypedFilterConfigFactory("websocket", kTraits, kWebsocketSchema) {}

  std::shared_ptr<const WebsocketConfig> parseConfig(const rapidjson::Value& json,
                                                     ParseContext& ctx) const override {
    auto cfg = std::make_shared<WebsocketConfig>();
    if (json.HasMember("path")) {
      cfg->path = json["path"].GetString();
      bool visible = true;
      for (char c : cfg->path) visible = visible && c > 0x20 && c < 0x7f;
      if (cfg->path[0] != '/' || !visible || cfg->path.find('?') != std::string::npos) {
        ctx.fail("/path", "must be a request path starting with \"/\" (visible ASCII, no query), got \"" +
                              cfg->path + "\"");
      }
    }
    if (json.HasMember("allowed_origins")) {
      for (const auto& o : json["allowed_origins"].GetArray()) {
        cfg->allowed_origins.emplace_back(o.GetString());
      }
    }
    if (json.HasMember("subprotocol")) cfg->subprotocol = json["subprotocol"].GetString();
    cfg->max_message_bytes =
        ctx.size(json, "max_message_bytes", cfg->max_message_bytes, 1, 1ull << 30);
    cfg->handshake_timeout = ctx.duration(json, "handshake_timeout", cfg->handshake_timeout,
                                          std::chrono::milliseconds(1));
    cfg->max_handshake_bytes =
        ctx.size(json, "max_handshake_bytes", cfg->max_handshake_bytes, 256, 65536);
    if (json.HasMember("outbound_messages")) {
      cfg->message_per_write = std::string_view(json["outbound_messages"].GetString()) == "write";
    }
    return cfg;
  }
};

GW_REGISTER_FILTER(WebsocketConfigFactory);

}  // namespace websocket
}  // namespace gw
