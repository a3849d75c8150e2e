// test/fuzz/websocket_frame_fuzz.cc — fuzz target: the WebSocket frame
// decoder (filters/websocket/frame_codec.h), as the websocket filter runs it
// on client bytes.
//
// The first input byte picks max_message_bytes (1 << (b % 21)) and a chunk
// size; the rest is the client's byte stream. It is decoded three ways:
// whole (restarting after each control frame, as the filter does), in
// chunks of that size, and in place (out == in, what the filter's read path
// does). Invariants: each decode() consumes at most what it was given and
// writes at most what it consumed; the three ways give the same unmasked
// data, the same control events (kind, payload, close code) and the same
// error; a refused stream maps to a close code; nothing is consumed after
// done(); the data is within max_message_bytes per message.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "filters/websocket/frame_codec.h"
#include "test/fuzz/check.h"

namespace {

using gw::websocket::DecodeError;
using gw::websocket::DecodeEvent;
using gw::websocket::FrameDecoder;

struct Outcome {
  std::string data;                 // unmasked payload bytes of data frames
  std::vector<std::string> events;  // "ping:..", "pong:..", "close:CODE:.."
  DecodeError error = DecodeError::kNone;
  uint64_t messages = 0;
};

std::string describe(const DecodeEvent& ev) {
  switch (ev.kind) {
    case DecodeEvent::kPing: return "ping:" + std::string(ev.payload);
    case DecodeEvent::kPong: return "pong:" + std::string(ev.payload);
    case DecodeEvent::kClose:
      return "close:" + std::to_string(ev.close_code) + ":" + std::string(ev.payload);
    default: return "";
  }
}

// Feeds `stream` in pieces of at most `chunk` bytes; with `in_place`, the
// output overwrites the input it came from.
Outcome run(const uint8_t* stream, size_t n, size_t chunk, uint64_t max_message, bool in_place) {
  FrameDecoder dec(max_message);
  Outcome o;
  std::vector<uint8_t> buf(stream, stream + n);
  std::vector<uint8_t> out(n + 1);
  size_t pos = 0;
  while (pos < n) {
    size_t avail = std::min(chunk, n - pos);
    uint8_t* in = buf.data() + pos;
    uint8_t* dst = in_place ? in : out.data();
    size_t written = 0;
    DecodeEvent ev;
    bool was_done = dec.done();
    size_t used = dec.decode(in, avail, dst, &written, &ev);
    FUZZ_CHECK(used <= avail, "consumed %zu of %zu", used, avail);
    FUZZ_CHECK(written <= used, "wrote %zu from %zu consumed", written, used);
    if (was_done) FUZZ_CHECK(used == 0, "consumed %zu after the stream ended", used);
    o.data.append(reinterpret_cast<const char*>(dst), written);
    if (ev.kind == DecodeEvent::kError) {
      o.error = ev.error;
      FUZZ_CHECK(ev.error != DecodeError::kNone, "an error event without an error");
      FUZZ_CHECK(gw::websocket::closeCodeFor(ev.error) >= 1000, "no close code for %d",
                 static_cast<int>(ev.error));
      FUZZ_CHECK(dec.done(), "not done after an error");
      break;
    }
    if (ev.kind != DecodeEvent::kNone) o.events.push_back(describe(ev));
    if (ev.kind == DecodeEvent::kClose) {
      FUZZ_CHECK(dec.done(), "not done after a close");
      break;
    }
    if (used == 0 && ev.kind == DecodeEvent::kNone) {
      FUZZ_CHECK(dec.done(), "no progress on %zu bytes", avail);
      break;
    }
    pos += used;
  }
  o.messages = dec.messages();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint64_t max_message = uint64_t{1} << (data[0] % 21);
  const size_t chunk = 1 + (data[0] >> 3) % 17;
  const uint8_t* stream = data + 1;
  const size_t n = size - 1;
  Outcome whole = run(stream, n, n == 0 ? 1 : n, max_message, false);
  Outcome pieces = run(stream, n, chunk, max_message, false);
  Outcome in_place = run(stream, n, n == 0 ? 1 : n, max_message, true);
  for (const Outcome* o : {&pieces, &in_place}) {
    FUZZ_CHECK(o->data == whole.data, "unmasked data differs (%zu vs %zu bytes)", o->data.size(),
               whole.data.size());
    FUZZ_CHECK(o->events == whole.events, "control events differ (%zu vs %zu)", o->events.size(),
               whole.events.size());
    FUZZ_CHECK(o->error == whole.error, "error %d vs %d", static_cast<int>(o->error),
               static_cast<int>(whole.error));
    FUZZ_CHECK(o->messages == whole.messages, "messages %llu vs %llu",
               static_cast<unsigned long long>(o->messages),
               static_cast<unsigned long long>(whole.messages));
  }
  // Completed messages, plus the one in progress, each within the limit.
  FUZZ_CHECK(whole.data.size() <= (whole.messages + 1) * max_message,
             "%zu data bytes in %llu messages of at most %llu", whole.data.size(),
             static_cast<unsigned long long>(whole.messages),
             static_cast<unsigned long long>(max_message));
  return 0;
}
