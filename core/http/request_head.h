// core/http/request_head.h — HTTP/1.1 request heads, as pure functions over bytes.
//
// Defines scanRequestLine() (does a byte stream start with an HTTP/1.x
// request line?), findHeadEnd() (where the head ends), parseRequestHead()
// (the request line and header fields of a complete or partial head) and
// the comparisons header values need (case-insensitive equality, token
// lists). Used by the `detect` filter to tell HTTP from raw client frames
// and by the `websocket` filter for the RFC 6455 handshake.
//
// Nothing here allocates except RequestHead's field vector; string_views in
// the results point into the caller's bytes. No state: safe on any thread,
// and meant to be fuzzed with arbitrary bytes.
//
// Limits: only what a WebSocket upgrade needs. Obsolete line folding
// (obs-fold) is refused (RFC 9112 lets a server reject it); header names
// are tokens; values are trimmed of spaces and tabs; bare LF line ends are
// refused (CRLF only).
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

namespace gw {
namespace http {

// How the first bytes of a stream relate to an HTTP/1.x request line.
enum class LineState {
  kNeedMore,  // every byte so far is a prefix of a request line
  kNotHttp,   // some byte cannot be part of a request line
  kComplete,  // a whole request line, CRLF included
};

// Looks at the start of `bytes` for "METHOD SP target SP HTTP/1.d CRLF",
// with METHOD one of GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH
// and target visible ASCII (0x21-0x7e). Returns kNotHttp at the first byte
// that disagrees, so raw binary is refused after a byte or a few; kComplete
// sets *line_len (when not null) to the line's length including CRLF.
LineState scanRequestLine(std::string_view bytes, size_t* line_len = nullptr);

// Returns the length of the head in `bytes` (request line, fields and the
// empty line, CRLF CRLF included), or std::string_view::npos when the
// empty line has not arrived.
size_t findHeadEnd(std::string_view bytes);

// A request line and its header fields.
struct RequestHead {
  std::string_view method;
  std::string_view target;
  int minor_version = 0;  // HTTP/1.<minor_version>
  // Fields in order; names as sent (compare with equalsIgnoreCase).
  std::vector<std::pair<std::string_view, std::string_view>> fields;

  // The value of the only field named `name`: returns false when it is
  // absent; sets *duplicate when it appears more than once.
  bool field(std::string_view name, std::string_view* value, bool* duplicate = nullptr) const;
  // True when some field named `name` lists `token` (a comma-separated
  // list, compared without case; several fields of the name count as one
  // list).
  bool listHasToken(std::string_view name, std::string_view token) const;
};

// Parses `head`: a request line, then "name: value" CRLF lines up to the
// empty line. With `partial`, `head` may stop anywhere after the request
// line: the complete lines are parsed and the rest ignored. Returns false
// with *error set ("header line 3 has no colon") on malformed input.
bool parseRequestHead(std::string_view head, bool partial, RequestHead* out, const char** error);

// ASCII case-insensitive equality.
bool equalsIgnoreCase(std::string_view a, std::string_view b);

// True when the comma-separated `list` holds `token` (trimmed, without case).
bool tokenListHas(std::string_view list, std::string_view token);

}  // namespace http
}  // namespace gw
