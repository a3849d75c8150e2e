#include "core/http/request_head.h"

namespace gw {
namespace http {

namespace {

constexpr std::string_view kMethods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                         "CONNECT", "OPTIONS", "TRACE", "PATCH"};
constexpr size_t kLongestMethod = 7;

// True when `m` is a method (exact) or, with `prefix`, the start of one.
bool methodMatches(std::string_view m, bool prefix) {
  for (std::string_view known : kMethods) {
    if (prefix ? known.substr(0, m.size()) == m : known == m) return true;
  }
  return false;
}

bool visible(char c) { return c >= 0x21 && c <= 0x7e; }

bool tokenChar(char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c; }

}  // namespace

LineState scanRequestLine(std::string_view b, size_t* line_len) {
  const size_t n = b.size();
  size_t i = 0;
  // Method: upper-case letters up to SP.
  while (i < n && b[i] != ' ') {
    if (b[i] < 'A' || b[i] > 'Z' || i >= kLongestMethod) return LineState::kNotHttp;
    ++i;
  }
  if (!methodMatches(b.substr(0, i), /*prefix=*/i == n)) return LineState::kNotHttp;
  if (i == n) return LineState::kNeedMore;
  ++i;  // SP
  // Target: visible ASCII up to SP; never empty.
  const size_t target_start = i;
  while (i < n && b[i] != ' ') {
    if (!visible(b[i])) return LineState::kNotHttp;
    ++i;
  }
  if (i == n) return LineState::kNeedMore;
  if (i == target_start) return LineState::kNotHttp;
  ++i;  // SP
  // "HTTP/1." DIGIT CRLF
  constexpr std::string_view kVersion = "HTTP/1.";
  for (size_t k = 0; k < kVersion.size(); ++k, ++i) {
    if (i == n) return LineState::kNeedMore;
    if (b[i] != kVersion[k]) return LineState::kNotHttp;
  }
  if (i == n) return LineState::kNeedMore;
  if (b[i] < '0' || b[i] > '9') return LineState::kNotHttp;
  ++i;
  if (i == n) return LineState::kNeedMore;
  if (b[i] != '\r') return LineState::kNotHttp;
  ++i;
  if (i == n) return LineState::kNeedMore;
  if (b[i] != '\n') return LineState::kNotHttp;
  if (line_len != nullptr) *line_len = i + 1;
  return LineState::kComplete;
}

size_t findHeadEnd(std::string_view bytes) {
  size_t at = bytes.find("\r\n\r\n");
  return at == std::string_view::npos ? at : at + 4;
}

bool parseRequestHead(std::string_view head, bool partial, RequestHead* out, const char** error) {
  size_t line_len = 0;
  if (scanRequestLine(head, &line_len) != LineState::kComplete) {
    *error = "not an HTTP/1.x request line";
    return false;
  }
  std::string_view line = head.substr(0, line_len - 2);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.find(' ', sp1 + 1);
  out->method = line.substr(0, sp1);
  out->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  out->minor_version = line.back() - '0';
  out->fields.clear();
  size_t pos = line_len;
  for (;;) {
    size_t eol = head.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      if (partial) return true;
      *error = "head does not end with an empty line";
      return false;
    }
    if (eol == pos) return true;  // the empty line
    std::string_view field = head.substr(pos, eol - pos);
    pos = eol + 2;
    if (field.front() == ' ' || field.front() == '\t') {
      *error = "obsolete line folding in a header field";
      return false;
    }
    size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *error = "header field without a name and colon";
      return false;
    }
    std::string_view name = field.substr(0, colon);
    for (char c : name) {
      if (!tokenChar(c)) {
        *error = "header field name is not a token";
        return false;
      }
    }
    std::string_view value = trim(field.substr(colon + 1));
    for (char c : value) {
      if (c == '\r' || c == '\n' || c == '\0') {
        *error = "control character in a header field value";
        return false;
      }
    }
    out->fields.emplace_back(name, value);
  }
}

bool RequestHead::field(std::string_view name, std::string_view* value, bool* duplicate) const {
  bool found = false;
  if (duplicate != nullptr) *duplicate = false;
  for (const auto& f : fields) {
    if (!equalsIgnoreCase(f.first, name)) continue;
    if (found) {
      if (duplicate != nullptr) *duplicate = true;
      continue;
    }
    found = true;
    *value = f.second;
  }
  return found;
}

bool RequestHead::listHasToken(std::string_view name, std::string_view token) const {
  for (const auto& f : fields) {
    if (equalsIgnoreCase(f.first, name) && tokenListHas(f.second, token)) return true;
  }
  return false;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool tokenListHas(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = trim(list.substr(0, comma));
    if (equalsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace http
}  // namespace gw
