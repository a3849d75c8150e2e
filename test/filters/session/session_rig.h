// test/filters/session/session_rig.h — drives the `session` filter in a real
// FilterChain over a detached connection: framing -> session -> a recording
// terminal that plays the part of `upstream` (it reads the SessionInfo,
// can report a player binding, and records what the session owner asked
// it to do at close).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/sdk/session_info.h"
#include "core/sdk/wire.h"
#include "filters/session/session.h"
#include "core/sdk/testing/embedded_chain.h"
#include "test/harness/net.h"

namespace gw {
namespace test {

// What the terminal saw.
struct TerminalLog {
  std::vector<ClientFrame> frames;
  SessionInfo* info = nullptr;  // as published at the first frame
  // Copies taken at the first frame (the slot's pointee dies with the chain).
  uint64_t session_id = 0;
  bool resumed = false;
  // The owner's affinity host for cluster "game" (SessionObserver::affinityFor).
  std::string game_affinity;
  std::optional<SessionInfo::End> end_at_close;
  std::chrono::milliseconds linger_at_close{0};
  FilterCallbacks* callbacks = nullptr;
};

class RecordingTerminal : public Filter {
 public:
  explicit RecordingTerminal(TerminalLog& log) : log_(log) {}
  FilterStatus onNewConnection() override {
    log_.callbacks = &callbacks();
    return FilterStatus::kContinue;
  }
  FilterStatus onFrame(Frame& frame) override {
    ClientFrame f{frame.header, std::string(frame.payloadLength(), '\0')};
    frame.peekPayload(f.payload.data(), f.payload.size());
    frame.discardPayload();
    log_.frames.push_back(std::move(f));
    if (log_.info == nullptr) {
      log_.info = callbacks().slots().get<SessionInfo>();
      if (log_.info != nullptr) {
        log_.session_id = log_.info->id;
        log_.resumed = log_.info->resumed;
        if (log_.info->observer != nullptr)
          log_.game_affinity = std::string(log_.info->observer->affinityFor("game"));
      }
    }
    return FilterStatus::kStopIteration;
  }
  void onClose(CloseReason) override {
    if (SessionInfo* s = callbacks().slots().get<SessionInfo>()) {
      log_.end_at_close = s->end;
      log_.linger_at_close = s->linger;
    }
  }

 private:
  TerminalLog& log_;
};

class RecordingTerminalFactory : public FilterFactory {
 public:
  std::unique_ptr<Filter> createFilter() override {
    return std::make_unique<RecordingTerminal>(log);
  }
  static FilterTraits traits() {
    FilterTraits t;
    t.consumes = Layer::kFrames;
    t.terminal = true;
    return t;
  }
  TerminalLog log;
};

// framing -> session(config) -> recording terminal.
class SessionRig {
 public:
  // `clusters`: the gateway config's clusters the session config is parsed
  // with (their names become the affinity's indexes).
  explicit SessionRig(const std::string& session_json, const std::string& peer = "127.0.0.1:40000",
                      const std::vector<ClusterConfig>& clusters = {})
      : ec([&] {
          EmbeddedChain::Options o;
          o.peer = peer;
          return o;
        }()) {
    std::string error;
    auto framing = ec.registered("framing", "{}", {}, &error);
    if (!framing) throw std::runtime_error("framing: " + error);
    auto session = ec.registered("session", session_json, clusters, &error);
    if (!session) throw std::runtime_error("session: " + error);
    ec.start({*framing, *session, {&terminal, RecordingTerminalFactory::traits()}});
  }

  // The session filter (position 1).
  session::SessionFilter& filter() { return ec.filter<session::SessionFilter>(1); }
  session::WorkerSessions& sessions() {
    return ec.services().get<session::WorkerSessions>();
  }
  TerminalLog& log() { return terminal.log; }
  // Frames the chain wrote toward the client since the last call.
  std::vector<ClientFrame> takeFrames() {
    std::vector<ClientFrame> out;
    decodeClientFrames(ec.takeOutput(), &out);
    return out;
  }
  void send(uint16_t msg_id, std::string_view payload, uint32_t server_id = 0) {
    ec.feed(encodeClientFrame(msg_id, server_id, payload));
  }

  RecordingTerminalFactory terminal;  // before ec: outlives the chain
  EmbeddedChain ec;
};

// The payload of a resume request / established frame.
inline std::string controlPayload(uint64_t id, const session::Token& token) {
  std::string p(session::kControlPayload, '\0');
  wire::putU64(reinterpret_cast<uint8_t*>(&p[0]), id);
  std::copy(token.begin(), token.end(), p.begin() + 8);
  return p;
}

// Parses an established frame's payload.
inline bool parseEstablished(const ClientFrame& f, uint64_t* id, session::Token* token) {
  if (f.header.msg_id != session::kEstablishedMsgId || f.payload.size() != session::kControlPayload)
    return false;
  *id = wire::getU64(reinterpret_cast<const uint8_t*>(f.payload.data()));
  std::copy(f.payload.begin() + 8, f.payload.end(), token->begin());
  return true;
}

// The error code of an error frame (0 if `f` is not one).
inline uint16_t errorCode(const ClientFrame& f) {
  if (f.header.msg_id != 0xFFFF || f.payload.size() < 4) return 0;
  return wire::getU16(reinterpret_cast<const uint8_t*>(f.payload.data()));
}

}  // namespace test
}  // namespace gw
