// config/host_name.h — parsing a cluster host given by DNS name.
//
// Defines parseHostName(): "name:port" (e.g. "game.default.svc:7000") into
// a HostName (core/sdk/cluster.h). The loader tries it for a cluster host
// that is not an IP address; resolution happens at run time (the runtime's
// DNS resolver), never at load.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/sdk/cluster.h"

namespace gw {
namespace config {

// Parses "name:port": name is 1-253 characters of dot-separated labels of
// 1-63 letters, digits, '-' or '_' (no '-' first or last), one trailing dot
// allowed (dropped), and its last label not all digits (that is a mistyped
// IPv4 address); port 1-65535. The name is lower-cased. Returns nullopt
// with *error saying what is wrong.
std::optional<HostName> parseHostName(std::string_view text, std::string* error);

}  // namespace config
}  // namespace gw
