// test/fuzz/config_fuzz.cc — fuzz target: the config loader.
//
// Loads the input as a gateway config (config::loadString, the same path as
// a config file), with every built-in filter linked so that the schema
// checks and each filter's own parser (parseConfig) run on what the input
// puts under "filters". No plugin loader: a "plugins" list is an error.
// Invariants: a load gives a config xor errors; every error starts with the
// source name and then names a JSON pointer ("/listeners/0/...") or says the
// JSON is malformed; a loaded config has listeners whose filters all have a
// factory and a parsed config, and describing each config (what GET /config
// shows) succeeds and yields a JSON object.
#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/loader.h"
#include "core/sdk/log.h"
#include "test/fuzz/check.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gw::log::setLevel("off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  const std::string source = "fuzz.json";
  gw::config::LoadResult r = gw::config::loadString(json, source);
  FUZZ_CHECK((r.config != nullptr) != !r.errors.empty(), "config %s with %zu errors",
             r.config ? "loaded" : "refused", r.errors.size());
  for (const std::string& e : r.errors) {
    const std::string prefix = source + ": ";
    FUZZ_CHECK(e.compare(0, prefix.size(), prefix) == 0, "error without the source: %s",
               e.c_str());
    const std::string_view rest = std::string_view(e).substr(prefix.size());
    FUZZ_CHECK(rest.size() > 1 && (rest[0] == '/' || rest.rfind("malformed JSON", 0) == 0),
               "error naming no JSON pointer: %s", e.c_str());
  }
  if (r.config == nullptr) return 0;
  for (const gw::ListenerConfig& l : r.config->listeners) {
    FUZZ_CHECK(!l.filters.empty(), "listener %s without filters", l.name.c_str());
    for (const gw::FilterEntry& f : l.filters) {
      FUZZ_CHECK(f.factory != nullptr && f.config != nullptr, "filter %s not resolved",
                 f.name.c_str());
      rapidjson::Document doc(rapidjson::kObjectType);
      f.config->describe(doc, doc.GetAllocator());
      FUZZ_CHECK(doc.IsObject(), "filter %s described as a non-object", f.name.c_str());
    }
  }
  return 0;
}
