#include "filters/websocket/handshake.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "core/http/request_head.h"

namespace gw {
namespace websocket {

namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

HandshakeResult refuse(HandshakeError e, int status, std::string detail) {
  HandshakeResult r;
  r.error = e;
  r.status = status;
  r.detail = std::move(detail);
  return r;
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    default: return "Error";
  }
}

}  // namespace

std::string_view handshakeErrorName(HandshakeError e) {
  switch (e) {
    case HandshakeError::kNone: return "none";
    case HandshakeError::kBadRequest: return "bad_request";
    case HandshakeError::kBadMethod: return "bad_method";
    case HandshakeError::kBadHttpVersion: return "bad_http_version";
    case HandshakeError::kMissingHost: return "missing_host";
    case HandshakeError::kWrongPath: return "wrong_path";
    case HandshakeError::kNotUpgrade: return "not_upgrade";
    case HandshakeError::kBadConnection: return "bad_connection";
    case HandshakeError::kBadVersion: return "bad_version";
    case HandshakeError::kBadKey: return "bad_key";
    case HandshakeError::kForbiddenOrigin: return "forbidden_origin";
    case HandshakeError::kSubprotocol: return "subprotocol";
    case HandshakeError::kHeadersTooLarge: return "headers_too_large";
    case HandshakeError::kTimeout: return "timeout";
    case HandshakeError::kEof: return "eof";
    case HandshakeError::kCount: break;
  }
  return "unknown";
}

bool validKey(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (size_t i = 0; i < 22; ++i) {
    char c = key[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/';
    if (!ok) return false;
  }
  // The last character before "==" carries 2 bits of data and 4 zero bits.
  const char last = key[21];
  const std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  return (alphabet.find(last) & 0x0f) == 0;
}

std::string acceptKey(std::string_view key) {
  std::string material(key);
  material += kGuid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(material.data()), material.size(), digest);
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
}

HandshakeResult checkHandshake(std::string_view text, const HandshakePolicy& policy) {
  http::RequestHead head;
  const char* error = nullptr;
  if (!http::parseRequestHead(text, /*partial=*/false, &head, &error)) {
    return refuse(HandshakeError::kBadRequest, 400, error);
  }
  if (head.method != "GET") {
    return refuse(HandshakeError::kBadMethod, 400,
                  "method " + std::string(head.method) + ", the upgrade needs GET");
  }
  if (head.minor_version < 1) {
    return refuse(HandshakeError::kBadHttpVersion, 400, "HTTP/1.0, the upgrade needs HTTP/1.1");
  }
  std::string_view value;
  bool dup = false;
  if (!head.field("Host", &value, &dup) || dup || value.empty()) {
    return refuse(HandshakeError::kMissingHost, 400, "no single Host field");
  }
  if (!policy.path.empty()) {
    std::string_view path = head.target.substr(0, head.target.find('?'));
    if (path != policy.path) {
      return refuse(HandshakeError::kWrongPath, 404,
                    "path " + std::string(path) + " is not " + std::string(policy.path));
    }
  }
  if (!head.listHasToken("Upgrade", "websocket")) {
    return refuse(HandshakeError::kNotUpgrade, 426, "no Upgrade: websocket");
  }
  if (!head.listHasToken("Connection", "Upgrade")) {
    return refuse(HandshakeError::kBadConnection, 400, "Connection does not list Upgrade");
  }
  if (!head.field("Sec-WebSocket-Version", &value, &dup) || dup || value != "13") {
    return refuse(HandshakeError::kBadVersion, 426,
                  "Sec-WebSocket-Version " + std::string(dup ? "repeated" : value) +
                      ", only 13 is spoken");
  }
  std::string_view key;
  if (!head.field("Sec-WebSocket-Key", &key, &dup) || dup || !validKey(key)) {
    return refuse(HandshakeError::kBadKey, 400,
                  dup ? "Sec-WebSocket-Key repeated"
                      : "Sec-WebSocket-Key missing or not base64 of 16 bytes");
  }
  if (policy.allowed_origins != nullptr && !policy.allowed_origins->empty() &&
      head.field("Origin", &value, &dup)) {
    bool allowed = false;
    for (const std::string& o : *policy.allowed_origins) {
      if (!dup && http::equalsIgnoreCase(o, value)) allowed = true;
    }
    if (!allowed) {
      return refuse(HandshakeError::kForbiddenOrigin, 403,
                    "Origin " + std::string(value) + " is not in allowed_origins");
    }
  }
  HandshakeResult ok;
  bool offered = false;
  for (const auto& f : head.fields) {
    if (http::equalsIgnoreCase(f.first, "Sec-WebSocket-Protocol")) offered = true;
  }
  if (offered) {
    if (!policy.subprotocol.empty() && head.listHasToken("Sec-WebSocket-Protocol",
                                                         policy.subprotocol)) {
      ok.subprotocol = std::string(policy.subprotocol);
    } else {
      return refuse(HandshakeError::kSubprotocol, 400,
                    policy.subprotocol.empty()
                        ? "the client asks for a subprotocol and none is configured"
                        : "the client does not offer subprotocol " +
                              std::string(policy.subprotocol));
    }
  }
  ok.accept = acceptKey(key);
  return ok;
}

std::string switchingProtocols(const HandshakeResult& ok) {
  std::string r =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  r += ok.accept;
  r += "\r\n";
  if (!ok.subprotocol.empty()) {
    r += "Sec-WebSocket-Protocol: ";
    r += ok.subprotocol;
    r += "\r\n";
  }
  r += "\r\n";
  return r;
}

std::string refusal(int status, HandshakeError error) {
  std::string body(handshakeErrorName(error));
  body += "\n";
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reasonPhrase(status)) +
                  "\r\nConnection: close\r\nContent-Type: text/plain\r\n";
  if (status == 426) {
    r += error == HandshakeError::kBadVersion ? "Sec-WebSocket-Version: 13\r\n"
                                              : "Upgrade: websocket\r\n";
  }
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  return r;
}

}  // namespace websocket
}  // namespace gw
