// core/sdk/host_name.h — parsing a host written as an IP address or a DNS
// name ("ip:port", "[ipv6]:port", "name:port").
//
// Defines parseHostName() ("name:port", e.g. "game.default.svc:7000", into
// a HostName of core/sdk/cluster.h), HostSpec (one host as written: an
// address or a name) and parseHostSpec() (either). The config loader uses
// them for cluster hosts, the upstream filter for the Go gateway's rule
// endpoints: one syntax for both. Names are resolved at run time (the
// runtime's DNS resolver), never while parsing.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/sdk/address.h"
#include "core/sdk/cluster.h"

namespace gw {

// Parses "name:port": name is 1-253 characters of dot-separated labels of
// 1-63 letters, digits, '-' or '_' (no '-' first or last), one trailing dot
// allowed (dropped), and its last label not all digits (that is a mistyped
// IPv4 address); port 1-65535. The name is lower-cased. Returns nullopt
// with *error saying what is wrong.
std::optional<HostName> parseHostName(std::string_view text, std::string* error);

// One host as written: an IP address, or else a DNS name.
struct HostSpec {
  std::optional<Address> address;  // "ip:port" / "[ipv6]:port"
  HostName name;                   // "name:port" when `address` is empty
  // The canonical text: Address::toString() or HostName::toString().
  std::string toString() const { return address ? address->toString() : name.toString(); }
};

// Parses an IP address (Address::parse), else a name (parseHostName). Text
// that looks like an IP address (digits, dots and colons only, a '[' first,
// or more than one ':') gets the address parser's error, not the name's.
// Returns nullopt with *error saying what is wrong.
std::optional<HostSpec> parseHostSpec(std::string_view text, std::string* error);

}  // namespace gw
