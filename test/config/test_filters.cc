// test/config/test_filters.cc — filter types registered only in config tests.
//
// Small FilterConfigFactories that exist to exercise the loader's layer and
// terminal rules without depending on the real filters:
//   test_bytes     bytes -> bytes
//   test_codec     bytes -> frames (a codec)
//   test_frames    frames -> frames; config {"limit": 1..10, "strict": bool,
//                  "mode": "fast"|"safe", "timeout": duration, "reject": bool}
//                  where limit > 5 with strict is a semantic error and
//                  "reject": true makes parse() return nullptr silently
//   test_terminal  frames, terminal
// Registered at static initialization (the library is alwayslink). Their
// filters do nothing; config tests never run a chain.
#include <memory>
#include <string>

#include "core/sdk/registry.h"

namespace gw {
namespace test {
namespace {

class NullFilter : public Filter {};

class NullFactory : public FilterFactory {
 public:
  std::unique_ptr<Filter> createFilter() override { return std::make_unique<NullFilter>(); }
};

struct EmptyConfig : FilterConfig {};

// A FilterConfigFactory with fixed traits and an empty-object schema.
class SimpleConfigFactory : public FilterConfigFactory {
 public:
  SimpleConfigFactory(const char* name, Layer consumes, Layer produces, bool terminal)
      : name_(name) {
    traits_.consumes = consumes;
    traits_.produces = produces;
    traits_.terminal = terminal;
  }
  std::string_view name() const override { return name_; }
  FilterTraits traits() const override { return traits_; }
  std::string_view schema() const override {
    return R"({"type": "object", "additionalProperties": false, "properties": {}})";
  }
  std::shared_ptr<const FilterConfig> parse(const rapidjson::Value&, ParseContext&) const override {
    return std::make_shared<EmptyConfig>();
  }
  std::unique_ptr<FilterFactory> createFactory(std::shared_ptr<const FilterConfig>,
                                               WorkerContext&) const override {
    return std::make_unique<NullFactory>();
  }

 private:
  const char* name_;
  FilterTraits traits_;
};

class TestBytes : public SimpleConfigFactory {
 public:
  TestBytes() : SimpleConfigFactory("test_bytes", Layer::kBytes, Layer::kBytes, false) {}
};
class TestCodec : public SimpleConfigFactory {
 public:
  TestCodec() : SimpleConfigFactory("test_codec", Layer::kBytes, Layer::kFrames, false) {}
};
class TestTerminal : public SimpleConfigFactory {
 public:
  TestTerminal() : SimpleConfigFactory("test_terminal", Layer::kFrames, Layer::kFrames, true) {}
};

class TestFrames : public SimpleConfigFactory {
 public:
  TestFrames() : SimpleConfigFactory("test_frames", Layer::kFrames, Layer::kFrames, false) {}
  std::string_view schema() const override {
    return R"({
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "limit": {"type": "integer", "minimum": 1, "maximum": 10},
        "strict": {"type": "boolean"},
        "mode": {"enum": ["fast", "safe"]},
        "timeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
        "reject": {"type": "boolean"}
      }
    })";
  }
  std::shared_ptr<const FilterConfig> parse(const rapidjson::Value& json,
                                            ParseContext& ctx) const override {
    if (json.HasMember("reject") && json["reject"].GetBool()) return nullptr;
    bool strict = json.HasMember("strict") && json["strict"].GetBool();
    if (strict && json.HasMember("limit") && json["limit"].GetInt() > 5)
      return ctx.fail("/limit", "must be ≤ 5 when \"strict\" is true");
    return std::make_shared<EmptyConfig>();
  }
};

GW_REGISTER_FILTER(TestBytes);
GW_REGISTER_FILTER(TestCodec);
GW_REGISTER_FILTER(TestFrames);
GW_REGISTER_FILTER(TestTerminal);

}  // namespace
}  // namespace test
}  // namespace gw
