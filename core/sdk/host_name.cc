#include "core/sdk/host_name.h"

#include <algorithm>
#include <cctype>

namespace gw {
namespace {

constexpr size_t kMaxName = 253;
constexpr size_t kMaxLabel = 63;

bool labelChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
}

// Why `label` (of a name) is not valid, or "" when it is.
std::string labelProblem(std::string_view label) {
  if (label.empty()) return "empty label (two dots in a row, or a leading dot)";
  if (label.size() > kMaxLabel) return "label longer than 63 characters";
  for (char c : label)
    if (!labelChar(c)) return std::string("character '") + c + "' not allowed in a host name";
  if (label.front() == '-' || label.back() == '-') return "a label may not start or end with '-'";
  return "";
}

}  // namespace

std::optional<HostName> parseHostName(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<HostName> {
    *error = "\"" + std::string(text) + "\": " + why +
             " (expected \"ip:port\", \"[ipv6]:port\" or \"name:port\")";
    return std::nullopt;
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return fail("no port");
  std::string_view name = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5) return fail("port must be 1-65535");
  unsigned long port = 0;
  for (char c : port_text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return fail("port must be 1-65535");
    port = port * 10 + static_cast<unsigned long>(c - '0');
  }
  if (port == 0 || port > 65535) return fail("port must be 1-65535");
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return fail("no host name");
  if (name.size() > kMaxName) return fail("host name longer than 253 characters");
  std::string_view last;
  for (std::string_view rest = name;;) {
    size_t dot = rest.find('.');
    std::string_view label = rest.substr(0, dot);
    std::string why = labelProblem(label);
    if (!why.empty()) return fail(why);
    last = label;
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  bool numeric = true;
  for (char c : last) numeric = numeric && std::isdigit(static_cast<unsigned char>(c)) != 0;
  if (numeric) return fail("not a valid IP address, and a host name's last label cannot be all digits");
  HostName out;
  out.name.reserve(name.size());
  for (char c : name) out.name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  out.port = static_cast<uint16_t>(port);
  return out;
}

std::optional<HostSpec> parseHostSpec(std::string_view text, std::string* error) {
  std::string why;
  if (auto a = Address::parse(text, &why)) return HostSpec{*a, {}};
  bool ip_like = text.empty() || text.front() == '[' ||
                 std::count(text.begin(), text.end(), ':') > 1 ||
                 text.find_first_not_of("0123456789.:") == std::string_view::npos;
  if (ip_like) {
    *error = why;
    return std::nullopt;
  }
  auto n = parseHostName(text, error);
  if (!n) return std::nullopt;
  return HostSpec{std::nullopt, std::move(*n)};
}

}  // namespace gw
