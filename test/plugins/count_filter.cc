// test/plugins/count_filter.cc — a small frames-layer filter built twice:
// compiled into a binary as `builtin_count`, and as the plugin
// `count_plugin` (count_plugin.so, filter `plugin_count`, with
// -DGW_COUNT_AS_PLUGIN). The same code either way, so plugin_bench can
// compare a plugin filter's hot-path cost with a compiled-in one's, and the
// reload tests have a second plugin to add.
//
// Config: {"max_msg_id": N} (default 65535). Counts the frames it sees on
// its connection; a client frame whose msg_id is above N is dropped,
// everything else continues unchanged.
#include <memory>

#include "core/sdk/registry.h"

#ifdef GW_COUNT_AS_PLUGIN
#define GW_COUNT_FILTER_NAME "plugin_count"
#else
#define GW_COUNT_FILTER_NAME "builtin_count"
#endif

namespace count_filter {
namespace {

constexpr char kSchema[] = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {"max_msg_id": {"type": "integer", "minimum": 0, "maximum": 65535}}
})";

struct CountConfig : gw::FilterConfig {
  uint16_t max_msg_id = 65535;
};

class CountFilter : public gw::Filter {
 public:
  explicit CountFilter(const CountConfig& config) : config_(config) {}
  gw::FilterStatus onFrame(gw::Frame& frame) override {
    ++frames_;
    if (frame.header.msg_id <= config_.max_msg_id) return gw::FilterStatus::kContinue;
    return gw::FilterStatus::kStopIteration;  // the chain drops the payload
  }

 private:
  const CountConfig& config_;
  uint64_t frames_ = 0;
};

class CountFactory : public gw::FilterFactory {
 public:
  CountFactory(std::shared_ptr<const CountConfig> config, gw::WorkerContext&)
      : config_(std::move(config)) {}
  std::unique_ptr<gw::Filter> createFilter() override {
    return std::make_unique<CountFilter>(*config_);
  }

 private:
  std::shared_ptr<const CountConfig> config_;
};

class CountConfigFactory : public gw::TypedFilterConfigFactory<CountConfig, CountFactory> {
 public:
  CountConfigFactory()
      : TypedFilterConfigFactory(GW_COUNT_FILTER_NAME, gw::FilterTraits::frames(), kSchema) {}
  std::shared_ptr<const CountConfig> parseConfig(const rapidjson::Value& json,
                                                 gw::ParseContext&) const override {
    auto cfg = std::make_shared<CountConfig>();
    if (json.HasMember("max_msg_id")) cfg->max_msg_id = static_cast<uint16_t>(json["max_msg_id"].GetUint());
    return cfg;
  }
};

GW_REGISTER_FILTER(CountConfigFactory);

}  // namespace
}  // namespace count_filter

#ifdef GW_COUNT_AS_PLUGIN
GW_PLUGIN("count_plugin", "1.0.0");
#endif
