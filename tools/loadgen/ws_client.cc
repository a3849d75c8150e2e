#include "tools/loadgen/ws_client.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <strings.h>

#include <cstring>

namespace gw {
namespace tools {

namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

std::string base64(const uint8_t* data, size_t len) {
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(len));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool equalsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True if the comma-separated `list` holds `token` (case-insensitive).
bool hasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (equalsNoCase(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::string wsKeyFrom(uint64_t a, uint64_t b) {
  uint8_t raw[16];
  std::memcpy(raw, &a, 8);
  std::memcpy(raw + 8, &b, 8);
  return base64(raw, sizeof(raw));
}

std::string wsAcceptFor(std::string_view key) {
  std::string input(key);
  input += kGuid;
  uint8_t digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return base64(digest, sizeof(digest));
}

std::string wsUpgradeRequest(std::string_view host, std::string_view path, std::string_view key) {
  std::string r = "GET ";
  r += path;
  r += " HTTP/1.1\r\nHost: ";
  r += host;
  r += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ";
  r += key;
  r += "\r\nSec-WebSocket-Version: 13\r\n\r\n";
  return r;
}

std::string wsCheckUpgradeResponse(std::string_view head, std::string_view key) {
  size_t eol = head.find("\r\n");
  std::string_view status = head.substr(0, eol);
  if (status.size() < 12 || status.substr(0, 9) != "HTTP/1.1 " || status.substr(9, 3) != "101")
    return "status '" + std::string(status) + "'";
  bool upgrade = false, connection = false;
  std::string accept;
  bool has_accept = false;
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  while (!rest.empty()) {
    size_t end = rest.find("\r\n");
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = trim(line.substr(0, colon));
    std::string_view value = trim(line.substr(colon + 1));
    if (equalsNoCase(name, "Upgrade")) upgrade = equalsNoCase(value, "websocket");
    if (equalsNoCase(name, "Connection")) connection = hasToken(value, "upgrade");
    if (equalsNoCase(name, "Sec-WebSocket-Accept")) {
      accept = std::string(value);
      has_accept = true;
    }
  }
  if (!upgrade) return "no 'Upgrade: websocket'";
  if (!connection) return "no 'Connection: Upgrade'";
  if (!has_accept) return "no Sec-WebSocket-Accept";
  if (accept != wsAcceptFor(key)) return "wrong Sec-WebSocket-Accept '" + accept + "'";
  return "";
}

size_t wsWriteHeader(uint8_t* out, size_t len, uint32_t key) {
  size_t i = 0;
  out[i++] = 0x82;  // FIN, binary
  if (len <= 125) {
    out[i++] = static_cast<uint8_t>(0x80 | len);
  } else if (len <= 0xffff) {
    out[i++] = 0x80 | 126;
    out[i++] = static_cast<uint8_t>(len >> 8);
    out[i++] = static_cast<uint8_t>(len);
  } else {
    out[i++] = 0x80 | 127;
    for (int k = 7; k >= 0; --k) out[i++] = static_cast<uint8_t>(static_cast<uint64_t>(len) >> (8 * k));
  }
  std::memcpy(out + i, &key, 4);
  return i + 4;
}

void wsMask(uint8_t* data, size_t len, uint32_t key) {
  // Eight bytes at a time with the key doubled (memory order kept), then the tail.
  uint64_t k8 = (static_cast<uint64_t>(key) << 32) | key;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    std::memcpy(&v, data + i, 8);
    v ^= k8;
    std::memcpy(data + i, &v, 8);
  }
  uint8_t kb[4];
  std::memcpy(kb, &key, 4);
  for (; i < len; ++i) data[i] ^= kb[i & 3];
}

WsUnwrap unwrapServerMessages(uint8_t* buf, size_t len) {
  WsUnwrap r;
  size_t at = 0;
  while (len - at >= 2) {
    const uint8_t b0 = buf[at], b1 = buf[at + 1];
    const uint8_t opcode = b0 & 0x0f;
    if (b1 & 0x80) {
      r.status = WsUnwrap::Status::kError;
      r.error = "masked server frame";
      break;
    }
    if (b0 & 0x70) {
      r.status = WsUnwrap::Status::kError;
      r.error = "reserved bits set";
      break;
    }
    size_t hdr = 2;
    uint64_t n = b1 & 0x7f;
    if (n == 126) {
      if (len - at < 4) break;
      n = (uint64_t{buf[at + 2]} << 8) | buf[at + 3];
      hdr = 4;
    } else if (n == 127) {
      if (len - at < 10) break;
      n = 0;
      for (int k = 0; k < 8; ++k) n = (n << 8) | buf[at + 2 + k];
      hdr = 10;
      if (n > (uint64_t{1} << 31)) {
        r.status = WsUnwrap::Status::kError;
        r.error = "message over 2 GiB";
        break;
      }
    }
    const bool control = (opcode & 0x08) != 0;
    if (control && (n > 125 || !(b0 & 0x80))) {
      r.status = WsUnwrap::Status::kError;
      r.error = "control frame over 125 bytes or fragmented";
      break;
    }
    if (!control && (opcode != 0x2 || !(b0 & 0x80))) {
      r.status = WsUnwrap::Status::kError;
      r.error = opcode == 0x1 ? "text message" : "fragmented or unknown message";
      break;
    }
    if (len - at - hdr < n) break;  // incomplete
    const uint8_t* payload = buf + at + hdr;
    const size_t plen = static_cast<size_t>(n);
    if (opcode == 0x2) {
      std::memmove(buf + r.stream_len, payload, plen);
      r.stream_len += plen;
      ++r.messages;
    } else if (opcode == 0x8) {
      r.close_code = plen >= 2 ? static_cast<uint16_t>((payload[0] << 8) | payload[1]) : 1005;
      r.status = WsUnwrap::Status::kClose;
      at += hdr + plen;
      break;
    } else if (opcode == 0x9) {
      ++r.pings;
    } else if (opcode != 0xA) {
      r.status = WsUnwrap::Status::kError;
      r.error = "unknown control opcode";
      break;
    }
    at += hdr + plen;
  }
  r.consumed = at;
  return r;
}

}  // namespace tools
}  // namespace gw
