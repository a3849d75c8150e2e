// filters/websocket/frame_codec.h — RFC 6455 frames: the client-frame decoder
// and the server-frame header encoder.
//
// Defines FrameDecoder, a state machine over the bytes a client sends after
// the handshake, and encodeHeader() / closeFrame() for what the server
// sends. Pure: no I/O, no allocation, no clock; the `websocket` filter feeds
// it the connection's bytes, unit tests and the fuzz target feed it
// anything. Per connection (one decoder per connection); not thread-safe.
//
// The decoder streams: the unmasked payload of binary frames (and of their
// continuations) is written out as it arrives, without waiting for the end
// of a frame or a message, because inbound messages form one byte stream
// (docs/protocol.md). Control frames (at most 125 bytes) are collected in
// the decoder and returned whole. What it refuses, with the close code
// (RFC 6455 section 7.4.1):
//   unmasked client frame                             1002 unmasked
//   RSV1-3 set (no extension is negotiated)            1002 reserved_bits
//   opcode 3-7 or 11-15                                1002 bad_opcode
//   control frame over 125 bytes                       1002 control_too_long
//   fragmented control frame (FIN clear)               1002 fragmented_control
//   continuation with no message started               1002 bad_continuation
//   new data frame inside a fragmented message         1002 bad_continuation
//   length not in its shortest form, or 2^63 and up    1002 bad_length
//   text frame                                         1003 text_frame
//   message over max_message_bytes                     1009 message_too_large
//   close payload of 1 byte, or an invalid code        1002 bad_close
//   close reason not UTF-8                             1007 bad_utf8
// A close frame may arrive inside a fragmented message (control frames
// interleave); the decoder reports it like any close, and inMessage() says
// a message was cut.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace gw {
namespace websocket {

enum Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes the filter sends or counts.
enum CloseCode : uint16_t {
  kCloseNormal = 1000,
  kCloseGoingAway = 1001,
  kCloseProtocolError = 1002,
  kCloseUnsupportedData = 1003,
  kCloseNoStatus = 1005,  // never on the wire: a close frame without a code
  kCloseInvalidPayload = 1007,
  kClosePolicy = 1008,
  kCloseTooBig = 1009,
  kCloseInternalError = 1011,
  kCloseTryAgainLater = 1013,
};

// Why the decoder refused the stream; each is a metric label.
enum class DecodeError {
  kNone,
  kUnmasked,
  kReservedBits,
  kBadOpcode,
  kControlTooLong,
  kFragmentedControl,
  kBadContinuation,
  kBadLength,
  kTextFrame,
  kMessageTooLarge,
  kBadClose,
  kBadUtf8,
  kCount,
};

// "unmasked", "reserved_bits", ...
std::string_view decodeErrorName(DecodeError e);
// The close code the server sends for `e` (1002, 1003, 1007 or 1009).
uint16_t closeCodeFor(DecodeError e);
// True for a code a peer may put in a close frame (1000-1003, 1007-1014,
// 3000-4999).
bool validCloseCode(uint16_t code);
// True when `s` is well-formed UTF-8.
bool validUtf8(std::string_view s);

// What decode() stopped for, besides running out of input.
struct DecodeEvent {
  enum Kind { kNone, kPing, kPong, kClose, kError };
  Kind kind = kNone;
  // kPing / kPong: the payload; kClose: the reason text (after the code).
  // Points into the decoder; valid until the next decode().
  std::string_view payload;
  // kClose: the code, or kCloseNoStatus for an empty close frame.
  uint16_t close_code = 0;
  // kError: why.
  DecodeError error = DecodeError::kNone;
};

class FrameDecoder {
 public:
  // Messages (all fragments together) over `max_message_bytes` are refused.
  explicit FrameDecoder(uint64_t max_message_bytes) : max_message_(max_message_bytes) {}

  // Decodes from `in` (n bytes). Writes the unmasked payload of data frames
  // to `out` (room for n bytes: output never exceeds input; `out` may be
  // `in` or before it in the same memory: decoding in place) and sets
  // *out_len. Stops after a control frame completes or at an error, with
  // *ev describing it; otherwise consumes everything (ev->kind kNone).
  // Returns the bytes consumed. After an error or a close, consumes nothing.
  size_t decode(const uint8_t* in, size_t n, uint8_t* out, size_t* out_len, DecodeEvent* ev);

  // The size of the frame header at `in` (n bytes) when the decoder is
  // between frames and `in` starts with a whole header (2 to 14 bytes);
  // otherwise 0. decode() of exactly that many bytes consumes the header and
  // writes nothing (an in-place caller then leaves the payload where it is).
  size_t wholeHeader(const uint8_t* in, size_t n) const {
    if (in_frame_ || hdr_len_ != 0 || done_ || n < 2) return 0;
    const uint8_t len7 = in[1] & 0x7f;
    const size_t need = 2 + (len7 == 126 ? 2 : (len7 == 127 ? 8 : 0)) + 4;
    return n >= need ? need : 0;
  }
  // A fragmented message is in progress (its first frame had FIN clear).
  bool inMessage() const { return in_message_; }
  // Data frames whose header was decoded (binary and continuation).
  uint64_t dataFrames() const { return data_frames_; }
  // Data messages completed (the frame with FIN set arrived whole).
  uint64_t messages() const { return messages_; }
  // An error or a close was returned: the stream is over.
  bool done() const { return done_; }

 private:
  // Checks what the first two header bytes in hdr_ can refuse (before
  // waiting for the rest); returns false after setting the error in *ev.
  bool checkFirstTwo(DecodeEvent* ev);
  // Parses the header in hdr_ (hdr_len_ bytes; the first two checked when
  // hdr_len_ is 2); returns true when complete (or an error was set in *ev).
  bool parseHeader(DecodeEvent* ev);
  // decode()'s fast path: takes the whole header at `in` (6 or 8 bytes) of
  // a masked FIN binary frame with a 7- or 16-bit length that starts a
  // message, without collecting it in hdr_. Returns true when it refused
  // the frame (error set in *ev), as parseHeader() would.
  bool takeBinaryHeader(const uint8_t* in, DecodeEvent* ev);
  void fail(DecodeEvent* ev, DecodeError e);
  // A control frame's payload is complete in ctl_: fills *ev.
  void finishControl(DecodeEvent* ev);

  const uint64_t max_message_;
  uint64_t remaining_ = 0;      // payload bytes of the current frame still to come
  uint64_t message_bytes_ = 0;  // payload bytes of the current message so far
  uint64_t data_frames_ = 0;
  uint64_t messages_ = 0;
  uint8_t mask_[4] = {0, 0, 0, 0};
  uint8_t mask_pos_ = 0;        // index into mask_ of the next payload byte
  uint8_t opcode_ = 0;
  bool fin_ = false;
  bool in_frame_ = false;       // a header was parsed, payload pending
  bool in_message_ = false;
  bool done_ = false;
  uint8_t hdr_len_ = 0;         // header bytes collected in hdr_
  uint8_t ctl_len_ = 0;         // control payload bytes collected in ctl_
  uint8_t hdr_[14];
  uint8_t ctl_[125];
};

// Writes a server frame header (FIN set, unmasked) for `payload_len` bytes
// with `opcode` to `out` (room for 10 bytes); returns its size: 2, 4 or 10.
size_t encodeHeader(uint8_t* out, uint8_t opcode, uint64_t payload_len);

// A whole close frame with `code` (none when kCloseNoStatus) to `out` (room
// for 4 bytes); returns its size. No reason text is sent.
size_t closeFrame(uint8_t* out, uint16_t code);

// ---- Inline definitions --------------------------------------------------
// decode() runs on every read of every WebSocket connection: defined here and
// always inlined into its callers (the filter's two read paths, tests, the
// fuzz target), which saved ~5 ns per read in websocket_bench (the call, the
// prologue and the event's setup). The rare parts (checkFirstTwo,
// parseHeader, finishControl) stay out of line in frame_codec.cc.

namespace internal {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "unmaskBytes() builds the rotated mask as a little-endian word");

// XORs `len` bytes of `src` into `dst` with `mask` starting at mask byte
// `pos`; returns the mask position after them. Sixteen, then eight bytes at
// a time. The rotated mask is built in a register (byte k = mask[(pos + k) & 3]): built
// byte by byte in memory and then loaded as a word, it stalled the load on
// store forwarding (half of decode()'s time in the benchmark).
inline uint8_t unmaskBytes(uint8_t* dst, const uint8_t* src, size_t len, const uint8_t* mask,
                           uint8_t pos) {
  uint32_t m32;
  std::memcpy(&m32, mask, 4);
  if (pos != 0) m32 = (m32 >> (8 * pos)) | (m32 << (32 - 8 * pos));
  const uint64_t m = m32 | (static_cast<uint64_t>(m32) << 32);
  size_t i = 0;
  if (len >= 16) {
    // Sixteen bytes at a time (a vector register where there is one).
    typedef uint64_t Pair __attribute__((vector_size(16)));
    const Pair mm = {m, m};
    for (; i + 16 <= len; i += 16) {
      Pair v;
      std::memcpy(&v, src + i, 16);
      v ^= mm;
      std::memcpy(dst + i, &v, 16);
    }
  }
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    std::memcpy(&v, src + i, 8);
    v ^= m;
    std::memcpy(dst + i, &v, 8);
  }
  uint64_t rest = m;
  if (i + 4 <= len) {
    uint32_t v;
    std::memcpy(&v, src + i, 4);
    v ^= static_cast<uint32_t>(rest);
    std::memcpy(dst + i, &v, 4);
    i += 4;
    rest >>= 32;
  }
  for (; i < len; ++i, rest >>= 8) dst[i] = src[i] ^ static_cast<uint8_t>(rest);
  return static_cast<uint8_t>((pos + len) & 3);
}

// Close, ping and pong (opcodes 8-15).
inline bool isControlOpcode(uint8_t op) { return (op & 0x8) != 0; }

}  // namespace internal

inline bool FrameDecoder::takeBinaryHeader(const uint8_t* in, DecodeEvent* ev) {
  uint64_t len = in[1] & 0x7f;
  const uint8_t* mask = in + 2;
  if (len == 126) {
    len = (static_cast<uint64_t>(in[2]) << 8) | in[3];
    if (len < 126) return fail(ev, DecodeError::kBadLength), true;
    mask = in + 4;
  }
  if (len > max_message_) return fail(ev, DecodeError::kMessageTooLarge), true;
  message_bytes_ = len;
  in_message_ = true;
  ++data_frames_;
  std::memcpy(mask_, mask, 4);
  mask_pos_ = 0;
  opcode_ = kBinary;
  fin_ = true;
  remaining_ = len;
  in_frame_ = true;
  return false;
}

inline __attribute__((always_inline)) size_t FrameDecoder::decode(const uint8_t* in, size_t n,
                                                                 uint8_t* out, size_t* out_len,
                                                                 DecodeEvent* ev) {
  ev->kind = DecodeEvent::kNone;
  *out_len = 0;
  if (done_) return 0;
  size_t i = 0;
  size_t o = 0;
  while (i < n) {
    if (!in_frame_) {
      // Fastest path: a whole header of the usual frame (a masked binary
      // message in one frame, 7- or 16-bit length, a new message) is in the
      // input: parsed from it directly.
      if (hdr_len_ == 0 && n - i >= 6 && in[i] == (0x80 | kBinary) && !in_message_ &&
          (in[i + 1] & 0x80) != 0 && (in[i + 1] & 0x7f) < 127) {
        const size_t need = (in[i + 1] & 0x7f) == 126 ? 8 : 6;
        if (n - i >= need) {
          if (takeBinaryHeader(in + i, ev)) break;
          i += need;
          if (remaining_ > 0) continue;
          goto complete;
        }
      }
      // Fast path: the whole header is in the input.
      if (hdr_len_ == 0 && n - i >= 2) {
        const uint8_t len7 = in[i + 1] & 0x7f;
        const size_t need = 2 + (len7 == 126 ? 2 : (len7 == 127 ? 8 : 0)) + 4;
        if (n - i >= need) {
          std::memcpy(hdr_, in + i, need);
          hdr_len_ = static_cast<uint8_t>(need);
          if (checkFirstTwo(ev)) parseHeader(ev);
          if (done_) break;
          i += need;
          if (remaining_ > 0) continue;
          goto complete;
        }
      }
      // Collect the header: 2 bytes, then the length and the mask.
      if (hdr_len_ < 2) {
        hdr_[hdr_len_++] = in[i++];
        if (hdr_len_ < 2) continue;
        if (parseHeader(ev)) {
          if (done_) break;
        } else {
          continue;
        }
      } else {
        hdr_[hdr_len_++] = in[i++];
        if (!parseHeader(ev)) continue;
        if (done_) break;
      }
      if (remaining_ > 0) continue;
    } else {
      size_t take = n - i;
      if (remaining_ < take) take = static_cast<size_t>(remaining_);
      if (internal::isControlOpcode(opcode_)) {
        mask_pos_ = internal::unmaskBytes(ctl_ + ctl_len_, in + i, take, mask_, mask_pos_);
        ctl_len_ = static_cast<uint8_t>(ctl_len_ + take);
      } else {
        mask_pos_ = internal::unmaskBytes(out + o, in + i, take, mask_, mask_pos_);
        o += take;
      }
      i += take;
      remaining_ -= take;
      if (remaining_ > 0) continue;
    }
  complete:
    // The frame is complete.
    in_frame_ = false;
    if (internal::isControlOpcode(opcode_)) {
      finishControl(ev);
      break;
    }
    if (fin_) {
      in_message_ = false;
      ++messages_;
    }
  }
  *out_len = o;
  return i;
}

}  // namespace websocket
}  // namespace gw
