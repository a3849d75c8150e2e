#include "core/sdk/schema_check.h"

#include <rapidjson/error/en.h>
#include <rapidjson/pointer.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <set>

#include "core/sdk/duration.h"

namespace gw {
namespace config {
namespace {

std::string pointerString(const rapidjson::Pointer& p) {
  rapidjson::StringBuffer sb;
  p.Stringify(sb);
  return sb.GetString();
}

std::string typeName(std::string_view t) {
  if (t == "integer") return "an integer";
  if (t == "number") return "a number";
  if (t == "string") return "a string";
  if (t == "boolean") return "true or false";
  if (t == "object") return "an object";
  if (t == "array") return "an array";
  if (t == "null") return "null";
  return std::string(t);
}

std::string numberText(const rapidjson::Value& v) {
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return sb.GetString();
}

// "an integer ≥ 1 and ≤ 65535", "one of \"a\", \"b\"", "a duration like ...".
std::string describe(const rapidjson::Value& s) {
  std::string out;
  if (s.HasMember("enum") && s["enum"].IsArray()) {
    out = "one of ";
    bool first = true;
    for (const auto& e : s["enum"].GetArray()) {
      if (!first) out += ", ";
      out += renderValue(e);
      first = false;
    }
    return out;
  }
  if (s.HasMember("pattern") && s["pattern"].IsString() &&
      std::string_view(s["pattern"].GetString()) == kDurationPattern) {
    return "a duration like \"100ms\", \"30s\", \"5m\" or \"1h\"";
  }
  if (s.HasMember("type")) {
    const auto& t = s["type"];
    if (t.IsString()) {
      out = typeName(t.GetString());
    } else if (t.IsArray()) {
      bool first = true;
      for (const auto& e : t.GetArray()) {
        if (!first) out += " or ";
        out += typeName(e.GetString());
        first = false;
      }
    }
  }
  if (out.empty()) out = "a value";
  std::string limits;
  auto add = [&](const std::string& part) {
    limits += limits.empty() ? " " : " and ";
    limits += part;
  };
  if (s.HasMember("minimum")) add("≥ " + numberText(s["minimum"]));
  if (s.HasMember("maximum")) add("≤ " + numberText(s["maximum"]));
  if (s.HasMember("minLength") && s["minLength"].GetUint() == 1) add("that is not empty");
  else if (s.HasMember("minLength")) add("of at least " + numberText(s["minLength"]) + " characters");
  if (s.HasMember("maxLength")) add("of at most " + numberText(s["maxLength"]) + " characters");
  if (s.HasMember("pattern")) add(std::string("matching ") + s["pattern"].GetString());
  if (s.HasMember("minItems")) add("with at least " + numberText(s["minItems"]) + " items");
  if (s.HasMember("maxItems")) add("with at most " + numberText(s["maxItems"]) + " items");
  return out + limits;
}

}  // namespace

std::string renderValue(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  std::string s = sb.GetString();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

std::optional<std::string> checkSchema(std::string_view schema_json, const rapidjson::Value& doc,
                                       const std::string& prefix) {
  rapidjson::Document sd;
  sd.Parse(schema_json.data(), schema_json.size());
  if (sd.HasParseError()) {
    return prefix + ": the filter's JSON Schema does not parse (" +
           rapidjson::GetParseError_En(sd.GetParseError()) + " at offset " +
           std::to_string(sd.GetErrorOffset()) + "): this is a bug in the filter";
  }
  rapidjson::SchemaDocument schema(sd);
  rapidjson::SchemaValidator validator(schema);
  if (doc.Accept(validator)) return std::nullopt;

  std::string keyword = validator.GetInvalidSchemaKeyword();
  rapidjson::Pointer doc_ptr = validator.GetInvalidDocumentPointer();
  rapidjson::Pointer schema_ptr = validator.GetInvalidSchemaPointer();
  std::string where = prefix + pointerString(doc_ptr);
  if (where.empty()) where = "/";
  const rapidjson::Value* node = doc_ptr.Get(doc);
  const rapidjson::Value* snode = schema_ptr.Get(sd);
  if (node == nullptr || snode == nullptr) return where + ": invalid (" + keyword + ")";

  if (keyword == "additionalProperties") {
    std::set<std::string> allowed;
    if (snode->HasMember("properties"))
      for (const auto& m : (*snode)["properties"].GetObject()) allowed.insert(m.name.GetString());
    std::string allowed_text;
    for (const auto& a : allowed) allowed_text += (allowed_text.empty() ? "" : ", ") + a;
    // Debian's RapidJSON points at the unknown member itself (older releases
    // at the object holding it, handled below).
    size_t n = doc_ptr.GetTokenCount();
    if (n > 0) {
      const auto& last = doc_ptr.GetTokens()[n - 1];
      std::string key(last.name, last.length);
      const rapidjson::Value* parent = rapidjson::Pointer(doc_ptr.GetTokens(), n - 1).Get(doc);
      if (parent != nullptr && parent->IsObject() && parent->HasMember(key.c_str()) &&
          allowed.count(key) == 0) {
        return where + ": unknown key \"" + key + "\" (allowed: " + allowed_text + ")";
      }
    }
    if (node->IsObject()) {
      for (const auto& m : node->GetObject()) {
        if (allowed.count(m.name.GetString()) == 0) {
          return where + (where == "/" ? "" : "/") + m.name.GetString() + ": unknown key \"" +
                 m.name.GetString() + "\" (allowed: " + allowed_text + ")";
        }
      }
    }
  }
  if (keyword == "required" && node->IsObject() && snode->HasMember("required")) {
    for (const auto& r : (*snode)["required"].GetArray()) {
      if (!node->HasMember(r.GetString()))
        return where + ": missing required key \"" + std::string(r.GetString()) + "\"";
    }
  }
  if (keyword == "minItems" || keyword == "maxItems" || keyword == "type" ||
      keyword == "minimum" || keyword == "maximum" || keyword == "enum" || keyword == "pattern" ||
      keyword == "minLength" || keyword == "maxLength") {
    return where + ": must be " + describe(*snode) + ", got " + renderValue(*node);
  }
  return where + ": does not match the schema (keyword \"" + keyword + "\"), got " +
         renderValue(*node);
}

}  // namespace config
}  // namespace gw
