// filters/websocket/websocket.h — the `websocket` filter: RFC 6455 server as a bytes transformer.
//
// Defines WebsocketConfig (parsed config), WebsocketStats (every metric of
// the filter, declared in one place), WebsocketFilter (per connection) and
// WebsocketFactory (per worker). Registered under the JSON name
// "websocket". docs/filters/websocket.md, docs/transports.md.
//
// Bytes layer, a transformer (FilterCallbacks::passData), observes writes.
// Chain: ip_limiter → detect → tls → websocket → framing → ...
//   read path:  client bytes ──onData──▶ handshake, then unmask ──passData(own buffer)──▶ framing
//   write path: framing ──onWriteData──▶ wrap in binary frames (in place) ──▶ tls ──▶ client
//
// When it speaks WebSocket (TransportInfo, core/sdk/transport.h):
//   no TransportInfo (no `detect` in the chain)  always: a dedicated ws port;
//   websocket set (detect saw an upgrade)        yes;
//   tls set, websocket not (wss or raw over TLS) looks at the decrypted first
//                                                bytes: an HTTP request line →
//                                                handshake (sets websocket on
//                                                success, so the transport is
//                                                wss; plain HTTP gets 426);
//                                                anything else → passthrough;
//   neither                                      passthrough (raw TCP): every
//                                                hook returns kContinue.
//
// Hooks:
//   onNewConnection  reads TransportInfo; on a dedicated port starts the
//                    handshake deadline. kContinue.
//   onData           handshake: waits for the whole head (at most
//                    max_handshake_bytes, else 431), checks it
//                    (handshake.h), answers 101 or the refusal (and closes).
//                    Then decodes client frames (frame_codec.h): in place in
//                    the input buffer when its new bytes sit in one chain
//                    (unmasks where the payload is, drains a header at the
//                    front, closes the gaps other headers leave with one
//                    memmove, passes the input buffer itself: no copy, no
//                    allocation; the bytes the later filters leave are known
//                    decoded from passedLeft()), else from the input into the
//                    filter's own buffer (unmasking while copying). Answers
//                    pings, echoes a close and closes, refuses bad frames with
//                    their close code, and hands the bytes on with passData():
//                    the binary messages' payloads form one byte stream.
//                    kStopIteration.
//   onWritePrefix    open (or passing through): returns the message header
//                    for a write that is one whole client frame (framing's
//                    one write per frame) or continues one, so the chain
//                    appends header and frame to the socket's buffer without
//                    staging; kNoPrefix for anything else (onWriteData then).
//   onWriteData      wraps written bytes in binary frames, in place. With
//                    outbound_messages "client_frame" (default) each client
//                    frame (8-byte header + length) gets its own message even
//                    when it is written in pieces (framing writes the header,
//                    then the payload): the message header is written in front
//                    of the client frame's header and announces the whole
//                    frame; the pieces that follow pass untouched. With
//                    "write" each write is one message. Before the handshake
//                    completes, writes are held and sent after the 101.
//                    kContinue (kStopIteration while holding or after a close).
//   deadline         handshake_timeout: closes (counted); while sniffing under
//                    TLS, gives up and passes the bytes through.
//
//   onClosing        another filter (or a kick through one) closes an open
//                    WebSocket connection with kFlush: sends a close frame
//                    with the code for the reason (closeCodeForReason), after
//                    what was written before, so browsers see that code and
//                    not 1006. Aborts and closes after the peer left send
//                    none.
//
// Per-connection state (members): the decoder (~180 bytes), the mode, the
// write-side frame position, and lazily created evbuffers (the decoded
// stream from the handshake on; held writes, a wrap scratch and queued
// control frames only when needed). Per worker: the handshake deadline list.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/registry.h"
#include "core/sdk/stats.h"
#include "core/sdk/timeout_list.h"
#include "core/sdk/transport.h"
#include "filters/websocket/frame_codec.h"
#include "filters/websocket/handshake.h"

namespace gw {
namespace websocket {

// Parsed `websocket` config. Immutable; shared by every worker.
struct WebsocketConfig : FilterConfig {
  std::string path;                          // "" = any path
  std::vector<std::string> allowed_origins;  // empty = any origin
  std::string subprotocol;                   // "" = none
  uint64_t max_message_bytes = 1024 * 1024;
  std::chrono::milliseconds handshake_timeout{10 * 1000};
  size_t max_handshake_bytes = 8192;
  bool message_per_write = false;  // outbound_messages "write"

  HandshakePolicy policy() const { return {path, &allowed_origins, subprotocol}; }
  void describe(rapidjson::Value& out, JsonAllocator& alloc) const override;
};

// The close codes counted by name; any other is counted as "other".
inline constexpr uint16_t kCountedCloseCodes[] = {1000, 1001, 1002, 1003, 1005,
                                                  1007, 1008, 1009, 1011, 1013};

// The close code sent when another filter closes an open WebSocket
// connection for `reason` (docs/filters/websocket.md, "Closes by other
// filters"); 0 when no close frame is sent (the peer or the transport below
// is gone: remote_closed, socket_error, tls_*, output_overflow).
uint16_t closeCodeForReason(CloseReason reason);
inline constexpr size_t kCloseCodeSlots = sizeof(kCountedCloseCodes) / sizeof(uint16_t) + 1;

// Every metric of the filter, for one listener.
struct WebsocketStats {
  explicit WebsocketStats(const std::string& listener);

  // game_gateway_websocket_handshakes_total{transport="ws"|"wss"}
  stats::Counter* handshakes_ws;
  stats::Counter* handshakes_wss;
  // game_gateway_websocket_handshake_failures_total{reason}
  stats::Counter* handshake_failures[static_cast<size_t>(HandshakeError::kCount)];
  // game_gateway_websocket_protocol_errors_total{reason}
  stats::Counter* protocol_errors[static_cast<size_t>(DecodeError::kCount)];
  // game_gateway_websocket_close_codes_total{direction="sent"|"received",code}
  stats::Counter* close_sent[kCloseCodeSlots];
  stats::Counter* close_received[kCloseCodeSlots];
  // game_gateway_websocket_frames_total{direction="in",opcode="data"|"ping"|"pong"}
  // and {direction="out",opcode="data"|"pong"|"close"}... data frames out
  // are the messages out (one frame each).
  stats::Counter* data_frames_in;
  stats::Counter* pings_in;
  stats::Counter* pongs_in;
  stats::Counter* pongs_out;
  // game_gateway_websocket_messages_total{direction}
  stats::Counter* messages_in;
  stats::Counter* messages_out;
  // game_gateway_websocket_passthrough_total: TLS connections whose
  // decrypted bytes were not HTTP (raw client frames over TLS).
  stats::Counter* passthrough;

  // The slot of `code` in close_sent / close_received.
  static size_t codeSlot(uint16_t code);
};

class WebsocketFactory;

class WebsocketFilter : public Filter, private TimeoutList::Entry {
 public:
  explicit WebsocketFilter(WebsocketFactory& factory);
  ~WebsocketFilter() override;

  FilterStatus onNewConnection() override;
  FilterStatus onData(evbuffer* data, bool end_stream) override;
  FilterStatus onWriteData(evbuffer* data, bool end_stream) override;
  size_t onWritePrefix(const WriteView& write, uint8_t* prefix) override;
  void onClosing(CloseReason reason) override;
  void onClose(CloseReason reason) override;

  // What the connection is doing.
  enum class Mode : uint8_t {
    kPending,    // TransportInfo not looked at yet
    kSniff,      // under TLS: are the decrypted bytes HTTP?
    kHandshake,  // waiting for / checking the upgrade request
    kOpen,       // frames
    kOff,        // not WebSocket: passthrough
    kClosed,     // refused, or a close was sent
  };
  Mode mode() const { return mode_; }
  // Bytes decoded and not yet consumed by the filters after this one.
  size_t buffered() const;

 private:
  friend class WebsocketFactory;
  // Decides the mode from TransportInfo at the first data.
  void pickMode();
  FilterStatus onHandshake(evbuffer* data, bool end_stream);
  // Decodes client frames: in place in `data` when its new bytes sit in one
  // chain (and nothing waits in decoded_), else into decoded_.
  FilterStatus onFrames(evbuffer* data, bool end_stream);
  // Unmasks in place (all `len` bytes of `data` at `base`, the first `done`
  // decoded already), drops the headers and passes `data` itself.
  FilterStatus onFramesInPlace(evbuffer* data, uint8_t* base, size_t len, size_t done,
                               bool end_stream);
  // Decodes into decoded_ (copying while unmasking) and passes decoded_.
  FilterStatus onFramesCopy(evbuffer* data, bool end_stream);
  // Adds the frames and messages decoded since these counts to the metrics.
  void countFrames(uint64_t frames_before, uint64_t messages_before);
  // Handles a decoder event; returns false when the connection closed.
  bool onEvent(const DecodeEvent& ev);
  // Answers the handshake with `status` and closes (counted).
  void refuse(int status, HandshakeError error, const std::string& detail);
  // Sends a control frame now, or queues it behind a client frame being
  // written in pieces.
  void sendControl(uint8_t opcode, std::string_view payload);
  // Sends a close frame with `code` (counted; not when a client frame is
  // half written) and stops wrapping writes (mode kClosed).
  void sendClose(uint16_t code);
  // sendClose(code), then closes the connection.
  void closeWith(uint16_t code, CloseReason reason, const std::string& detail);
  // The binary-message header `write` needs (written to `hdr`, room for
  // 10 bytes; counted), its size (0: the write continues a client frame
  // whose header went already), or Filter::kNoPrefix when the write needs
  // wrapSlow (it holds more than one client frame, or a piece of a header,
  // or a control frame must follow it). Advances the write-side position
  // unless it returns kNoPrefix.
  size_t headerFor(const WriteView& write, uint8_t* hdr);
  // Wraps the bytes of one write in binary frames, in place (onWriteData).
  void wrap(evbuffer* buf);
  // Any write: splits it at client-frame boundaries (header pieces held in
  // out_header_), queued control frames go in at frame ends.
  void wrapSlow(evbuffer* buf);
  // Moves held writes out after the handshake (wrapped) or when not
  // WebSocket (as they are).
  void releaseHeld();
  // The handshake deadline passed (entry already unlinked).
  void onDeadline();

  const WebsocketConfig& config() const;
  const WebsocketStats& stats() const;

  WebsocketFactory& factory_;
  TransportInfo* transport_ = nullptr;
  evbuffer* input_ = nullptr;    // the buffer onData last read (for the deadline)
  evbuffer* decoded_ = nullptr;  // unmasked payload stream, passed on (kOpen)
  evbuffer* held_ = nullptr;     // writes held until the handshake completes
  evbuffer* scratch_ = nullptr;  // wrapSlow's output
  evbuffer* control_ = nullptr;  // control frames waiting for a frame boundary
  uint64_t out_remaining_ = 0;   // bytes of the client frame being written, still to come
  uint8_t out_header_[8];        // a client frame header written in pieces
  uint8_t out_header_len_ = 0;
  Mode mode_ = Mode::kPending;
  // The last pass handed on the input buffer itself (decoded in place), not
  // decoded_: its first passedLeft() bytes are decoded.
  bool in_place_ = false;
  FrameDecoder decoder_;
};

// One per worker per listener: config, metrics, the handshake deadline list.
class WebsocketFactory : public FilterFactory {
 public:
  WebsocketFactory(std::shared_ptr<const WebsocketConfig> config, WorkerContext& worker);
  std::unique_ptr<Filter> createFilter() override;

  const WebsocketConfig& config() const { return *config_; }
  const WebsocketStats& stats() const { return stats_; }
  TimeoutList& deadlines() { return deadlines_; }

 private:
  std::shared_ptr<const WebsocketConfig> config_;
  WebsocketStats stats_;
  TimeoutList deadlines_;
};

inline const WebsocketConfig& WebsocketFilter::config() const { return factory_.config(); }
inline const WebsocketStats& WebsocketFilter::stats() const { return factory_.stats(); }

}  // namespace websocket
}  // namespace gw
