// plugins/example/msg_filter.cc — `example_msg_filter`: a custom filter written
// as a studio would, outside filters/, loadable as a plugin.
//
// Frames layer, between framing and upstream. Refuses client frames whose
// msg_id is in `deny_msg_ids` with a no_route error frame (the connection
// stays open) and counts them; everything else continues unchanged.
// State: the deny list is immutable config shared by workers; the filter has
// no per-connection state.
#include <algorithm>
#include <memory>
#include <vector>

#include "core/sdk/error_frame.h"
#include "core/sdk/registry.h"
#include "core/sdk/stats.h"
#include "plugins/example/msg_filter_schema.h"

namespace example {

struct MsgFilterConfig : gw::FilterConfig {
  std::vector<uint16_t> deny;  // sorted
  gw::stats::Counter* refused = nullptr;
};

class MsgFilter : public gw::Filter {
 public:
  explicit MsgFilter(const MsgFilterConfig& config) : config_(config) {}
  gw::FilterStatus onFrame(gw::Frame& frame) override {
    if (!std::binary_search(config_.deny.begin(), config_.deny.end(), frame.header.msg_id))
      return gw::FilterStatus::kContinue;
    config_.refused->inc();
    callbacks().sendFrame(gw::kErrorMsgId, 0,
                          gw::errorFramePayload(gw::ErrorCode::kNoRoute, frame.header.msg_id));
    return gw::FilterStatus::kStopIteration;  // the chain drops the payload
  }

 private:
  const MsgFilterConfig& config_;
};

class MsgFilterFactory : public gw::FilterFactory {
 public:
  explicit MsgFilterFactory(std::shared_ptr<const MsgFilterConfig> c) : config_(std::move(c)) {}
  std::unique_ptr<gw::Filter> createFilter() override {
    return std::make_unique<MsgFilter>(*config_);
  }

 private:
  std::shared_ptr<const MsgFilterConfig> config_;
};

class MsgFilterConfigFactory : public gw::FilterConfigFactory {
 public:
  std::string_view name() const override { return "example_msg_filter"; }
  gw::FilterTraits traits() const override {
    gw::FilterTraits t;
    t.consumes = gw::Layer::kFrames;
    t.produces = gw::Layer::kFrames;
    return t;
  }
  std::string_view schema() const override { return kMsgFilterSchema; }
  std::shared_ptr<const gw::FilterConfig> parse(const rapidjson::Value& json,
                                                gw::ParseContext& ctx) const override {
    auto cfg = std::make_shared<MsgFilterConfig>();
    if (json.HasMember("deny_msg_ids")) {
      for (const auto& v : json["deny_msg_ids"].GetArray())
        cfg->deny.push_back(static_cast<uint16_t>(v.GetUint()));
    }
    std::sort(cfg->deny.begin(), cfg->deny.end());
    cfg->refused = &gw::stats::StatsRegistry::get().counter(
        "game_gateway_example_msg_filter_refused_total", "Frames refused by example_msg_filter.",
        {{"listener", ctx.listener()}});
    return cfg;
  }
  std::unique_ptr<gw::FilterFactory> createFactory(std::shared_ptr<const gw::FilterConfig> config,
                                                   gw::WorkerContext&) const override {
    return std::make_unique<MsgFilterFactory>(
        std::static_pointer_cast<const MsgFilterConfig>(config));
  }
};

GW_REGISTER_FILTER(MsgFilterConfigFactory);

}  // namespace example

// The plugin's manifest (core/sdk/plugin.h): checked by the loader.
GW_PLUGIN("example_msg_filter", "1.0.0");
