// core/sdk/schema_check.h — validates JSON against a JSON Schema with messages
// an operator can act on.
//
// Wraps RapidJSON's SchemaValidator and turns its (schema keyword, document
// pointer) result into "/path/to/field: must be an integer ≥ 1, got \"abc\"".
#pragma once

#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>

namespace gw {
namespace config {

// Validates `doc` against `schema_json`. Returns nullopt when valid, else one
// message: "<pointer>: <what is wrong>", where the pointer is `prefix` plus
// the pointer inside `doc` (e.g. prefix "/listeners/0/filters/1/config").
// A schema that does not parse is reported as such (a bug in the filter).
std::optional<std::string> checkSchema(std::string_view schema_json, const rapidjson::Value& doc,
                                       const std::string& prefix);

// Short rendering of a JSON value for messages (strings quoted, long values
// cut at 40 characters).
std::string renderValue(const rapidjson::Value& v);

}  // namespace config
}  // namespace gw
