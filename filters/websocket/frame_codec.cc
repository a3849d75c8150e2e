#include "filters/websocket/frame_codec.h"

#include <cstring>

namespace gw {
namespace websocket {

std::string_view decodeErrorName(DecodeError e) {
  switch (e) {
    case DecodeError::kNone: return "none";
    case DecodeError::kUnmasked: return "unmasked";
    case DecodeError::kReservedBits: return "reserved_bits";
    case DecodeError::kBadOpcode: return "bad_opcode";
    case DecodeError::kControlTooLong: return "control_too_long";
    case DecodeError::kFragmentedControl: return "fragmented_control";
    case DecodeError::kBadContinuation: return "bad_continuation";
    case DecodeError::kBadLength: return "bad_length";
    case DecodeError::kTextFrame: return "text_frame";
    case DecodeError::kMessageTooLarge: return "message_too_large";
    case DecodeError::kBadClose: return "bad_close";
    case DecodeError::kBadUtf8: return "bad_utf8";
    case DecodeError::kCount: break;
  }
  return "unknown";
}

uint16_t closeCodeFor(DecodeError e) {
  switch (e) {
    case DecodeError::kTextFrame: return kCloseUnsupportedData;
    case DecodeError::kMessageTooLarge: return kCloseTooBig;
    case DecodeError::kBadUtf8: return kCloseInvalidPayload;
    default: return kCloseProtocolError;
  }
}

bool validCloseCode(uint16_t code) {
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  return code >= 3000 && code <= 4999;
}

bool validUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    // Overlong forms, surrogates, past U+10FFFF.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += len;
  }
  return true;
}

void FrameDecoder::fail(DecodeEvent* ev, DecodeError e) {
  ev->kind = DecodeEvent::kError;
  ev->error = e;
  done_ = true;
}

bool FrameDecoder::checkFirstTwo(DecodeEvent* ev) {
  const uint8_t b0 = hdr_[0];
  const uint8_t b1 = hdr_[1];
  // The usual frame: a whole masked binary message (FIN, opcode 2).
  if (b0 == (0x80 | kBinary) && (b1 & 0x80) != 0 && !in_message_) return true;
  const uint8_t op = b0 & 0x0f;
  const bool fin = (b0 & 0x80) != 0;
  const uint8_t len7 = b1 & 0x7f;
  if ((b0 & 0x70) != 0) return fail(ev, DecodeError::kReservedBits), false;
  if (op != kContinuation && op != kText && op != kBinary && op != kClose && op != kPing &&
      op != kPong) {
    return fail(ev, DecodeError::kBadOpcode), false;
  }
  if ((b1 & 0x80) == 0) return fail(ev, DecodeError::kUnmasked), false;
  if (internal::isControlOpcode(op)) {
    if (!fin) return fail(ev, DecodeError::kFragmentedControl), false;
    if (len7 > 125) return fail(ev, DecodeError::kControlTooLong), false;
  } else if (op == kText) {
    return fail(ev, DecodeError::kTextFrame), false;
  } else if ((op == kContinuation) != in_message_) {
    return fail(ev, DecodeError::kBadContinuation), false;
  }
  return true;
}

bool FrameDecoder::parseHeader(DecodeEvent* ev) {
  const uint8_t b0 = hdr_[0];
  const uint8_t b1 = hdr_[1];
  const uint8_t op = b0 & 0x0f;
  const bool fin = (b0 & 0x80) != 0;
  const uint8_t len7 = b1 & 0x7f;
  if (hdr_len_ == 2 && !checkFirstTwo(ev)) return true;
  const size_t ext = len7 == 126 ? 2 : (len7 == 127 ? 8 : 0);
  if (hdr_len_ < 2 + ext + 4) return false;
  uint64_t len = len7;
  if (ext == 2) {
    len = (static_cast<uint64_t>(hdr_[2]) << 8) | hdr_[3];
    if (len < 126) return fail(ev, DecodeError::kBadLength), true;
  } else if (ext == 8) {
    len = 0;
    for (int k = 0; k < 8; ++k) len = (len << 8) | hdr_[2 + k];
    if (len <= 0xffff || (len >> 63) != 0) return fail(ev, DecodeError::kBadLength), true;
  }
  if (!internal::isControlOpcode(op)) {
    if (op == kBinary) message_bytes_ = 0;
    if (len > max_message_ - message_bytes_) return fail(ev, DecodeError::kMessageTooLarge), true;
    message_bytes_ += len;
    in_message_ = true;
    ++data_frames_;
  } else {
    ctl_len_ = 0;
  }
  std::memcpy(mask_, hdr_ + 2 + ext, 4);
  mask_pos_ = 0;
  opcode_ = op;
  fin_ = fin;
  remaining_ = len;
  in_frame_ = true;
  hdr_len_ = 0;
  return true;
}

void FrameDecoder::finishControl(DecodeEvent* ev) {
  std::string_view payload(reinterpret_cast<const char*>(ctl_), ctl_len_);
  if (opcode_ == kPing || opcode_ == kPong) {
    ev->kind = opcode_ == kPing ? DecodeEvent::kPing : DecodeEvent::kPong;
    ev->payload = payload;
    return;
  }
  // Close.
  if (ctl_len_ == 1) return fail(ev, DecodeError::kBadClose);
  uint16_t code = kCloseNoStatus;
  if (ctl_len_ >= 2) {
    code = static_cast<uint16_t>((ctl_[0] << 8) | ctl_[1]);
    if (!validCloseCode(code)) return fail(ev, DecodeError::kBadClose);
    payload.remove_prefix(2);
    if (!validUtf8(payload)) return fail(ev, DecodeError::kBadUtf8);
  }
  ev->kind = DecodeEvent::kClose;
  ev->close_code = code;
  ev->payload = payload;
  done_ = true;
}

size_t encodeHeader(uint8_t* out, uint8_t opcode, uint64_t len) {
  out[0] = static_cast<uint8_t>(0x80 | opcode);
  if (len <= 125) {
    out[1] = static_cast<uint8_t>(len);
    return 2;
  }
  if (len <= 0xffff) {
    out[1] = 126;
    out[2] = static_cast<uint8_t>(len >> 8);
    out[3] = static_cast<uint8_t>(len);
    return 4;
  }
  out[1] = 127;
  for (int k = 0; k < 8; ++k) out[2 + k] = static_cast<uint8_t>(len >> (8 * (7 - k)));
  return 10;
}

size_t closeFrame(uint8_t* out, uint16_t code) {
  out[0] = 0x80 | kClose;
  if (code == kCloseNoStatus) {
    out[1] = 0;
    return 2;
  }
  out[1] = 2;
  out[2] = static_cast<uint8_t>(code >> 8);
  out[3] = static_cast<uint8_t>(code);
  return 4;
}

}  // namespace websocket
}  // namespace gw
