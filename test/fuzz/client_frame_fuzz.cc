// test/fuzz/client_frame_fuzz.cc — fuzz target: the client-frame decoder.
//
// Drives the `framing` filter (filters/framing) through an EmbeddedChain
// (no sockets) with a FrameRecorder behind it, and checks what it passed on
// against a reference decode of the same bytes (wire::ClientHeader).
// Input layout:
//   bytes 0-1  max_frame_bytes (little-endian; 0 becomes 1)
//   byte  2    how to feed: bits 0-5 the piece size - 1 (the bytes arrive
//              as reads of that many), bit 6 each read's pieces as separate
//              evbuffer chains (headers spanning chains), bit 7 EOF at the end
//   rest       the client's bytes
// Invariants: the frames passed on are exactly the complete frames of the
// reference decode, in order, each payload at most max_frame_bytes; a length
// above the maximum closes with frame_too_large and nothing after it is
// decoded; EOF closes with remote_closed between frames, malformed_frame
// mid-frame; otherwise the connection stays open; at most one close.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/sdk/log.h"
#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/wire.h"
#include "test/fuzz/check.h"

namespace {

using gw::CloseReason;
using gw::test::EmbeddedChain;
using gw::test::FrameRecorder;

struct Expected {
  std::vector<gw::test::RecordedFrame> frames;
  size_t consumed = 0;     // bytes of the complete frames
  bool too_large = false;  // a header over the maximum stopped the decode
};

// The reference decode: complete frames up to the first oversized header.
Expected referenceDecode(std::string_view in, size_t max_frame_bytes) {
  Expected e;
  size_t pos = 0;
  while (in.size() - pos >= gw::wire::kClientHeaderSize) {
    auto h = gw::wire::ClientHeader::decode(reinterpret_cast<const uint8_t*>(in.data() + pos));
    if (h.length > max_frame_bytes) {
      e.too_large = true;
      break;
    }
    size_t total = gw::wire::kClientHeaderSize + h.length;
    if (in.size() - pos < total) break;
    e.frames.push_back({h, std::string(in.substr(pos + gw::wire::kClientHeaderSize, h.length))});
    pos += total;
  }
  e.consumed = pos;
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gw::log::setLevel("off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  size_t max_frame_bytes = static_cast<size_t>(data[0] | (data[1] << 8));
  if (max_frame_bytes == 0) max_frame_bytes = 1;
  const size_t piece = (data[2] & 0x3f) + 1;
  const bool chains = (data[2] & 0x40) != 0;
  const bool eof = (data[2] & 0x80) != 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 3, size - 3);

  FrameRecorder recorder;
  EmbeddedChain ec;
  std::string error;
  auto framing = ec.registered(
      "framing", "{\"max_frame_bytes\": " + std::to_string(max_frame_bytes) + "}", {}, &error);
  FUZZ_CHECK(framing.has_value(), "framing config refused: %s", error.c_str());
  ec.start({*framing, recorder.element()});

  // Reads of `piece` bytes each; with `chains`, each read is two chains.
  for (size_t pos = 0; pos < in.size() && !ec.closed(); pos += piece) {
    std::string_view read = in.substr(pos, piece);
    if (chains && read.size() > 1) {
      size_t half = read.size() / 2;
      ec.feedChains({std::string(read.substr(0, half)), std::string(read.substr(half))});
    } else {
      ec.feed(read);
    }
  }
  if (eof && !ec.closed()) ec.feedEof();

  const Expected want = referenceDecode(in, max_frame_bytes);
  FUZZ_CHECK(recorder.frames.size() == want.frames.size(), "passed %zu frames, expected %zu",
             recorder.frames.size(), want.frames.size());
  for (size_t i = 0; i < want.frames.size(); ++i) {
    const auto& got = recorder.frames[i];
    const auto& exp = want.frames[i];
    FUZZ_CHECK(got.header.length == exp.header.length && got.header.msg_id == exp.header.msg_id &&
                   got.header.server_id == exp.header.server_id,
               "frame %zu header differs", i);
    FUZZ_CHECK(got.payload == exp.payload, "frame %zu payload differs", i);
    FUZZ_CHECK(got.payload.size() <= max_frame_bytes, "frame %zu larger than the maximum", i);
  }
  FUZZ_CHECK(ec.closeCount() <= 1, "closed %d times", ec.closeCount());
  if (want.too_large) {
    FUZZ_CHECK(ec.closed() && ec.closeReason() == CloseReason::kFrameTooLarge,
               "an oversized header did not close with frame_too_large");
  } else if (eof) {
    const CloseReason reason =
        want.consumed == in.size() ? CloseReason::kRemoteClosed : CloseReason::kMalformedFrame;
    FUZZ_CHECK(ec.closed() && ec.closeReason() == reason, "EOF closed with %s, expected %s",
               std::string(gw::closeReasonName(ec.closeReason())).c_str(),
               std::string(gw::closeReasonName(reason)).c_str());
  } else {
    FUZZ_CHECK(!ec.closed(), "closed (%s) without a reason to",
               std::string(gw::closeReasonName(ec.closeReason())).c_str());
    FUZZ_CHECK(ec.inputLength() == in.size() - want.consumed,
               "%zu bytes left undecoded, expected %zu", ec.inputLength(),
               in.size() - want.consumed);
  }
  return 0;
}
