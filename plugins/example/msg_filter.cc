// plugins/example/msg_filter.cc — `example_msg_filter`: the filter, its
// per-worker factory, its config parser and its registration (see
// msg_filter.h). Built into a gateway (compiled in) or as the plugin
// example_msg_filter.so from the same source.
// [START includes]
#include "plugins/example/msg_filter.h"

#include <algorithm>
#include <map>
#include <string>

#include "core/sdk/clock.h"
#include "core/sdk/error_frame.h"
#include "core/sdk/log.h"
#include "core/sdk/registry.h"
#include "plugins/example/msg_filter_schema.h"
// [END includes]

namespace example {

// [START metrics_def]
gw::stats::Counter& refusedCounter(std::string_view listener, uint16_t msg_id) {
  return gw::stats::StatsRegistry::get().counter(
      "game_gateway_example_msg_filter_refused_total",
      "Client frames refused by example_msg_filter, by msg_id.",
      {{"listener", std::string(listener)}, {"msg_id", std::to_string(msg_id)}});
}
// [END metrics_def]

// [START on_frame]
gw::FilterStatus MsgFilter::onFrame(gw::Frame& frame) {
  const uint16_t id = frame.header.msg_id;
  auto it = std::lower_bound(config_.deny.begin(), config_.deny.end(), id);
  if (it == config_.deny.end() || *it != id) {
    // Not ours: the next filter gets the frame, payload untouched.
    return gw::FilterStatus::kContinue;
  }
  config_.refused[it - config_.deny.begin()]->inc();
  factory_.logRefusal(id, callbacks().connection().peer());
  // Answer the client; the connection stays open.
  callbacks().sendFrame(gw::kErrorMsgId, 0, gw::errorFramePayload(gw::ErrorCode::kNoRoute, id));
  ++refused_;
  if (config_.close_after != 0 && refused_ >= config_.close_after) {
    // The error frame is flushed before the socket closes.
    callbacks().close(gw::CloseReason::kFilterError,
                      "example_msg_filter: " + std::to_string(refused_) + " refused frames");
  }
  // We took the frame. Nobody consumed its payload, so the chain drops it.
  return gw::FilterStatus::kStopIteration;
}
// [END on_frame]

// [START factory_def]
MsgFilterFactory::MsgFilterFactory(std::shared_ptr<const MsgFilterConfig> config,
                                   gw::WorkerContext& worker)
    : config_(std::move(config)), worker_index_(worker.worker_index) {}

std::unique_ptr<gw::Filter> MsgFilterFactory::createFilter() {
  return std::make_unique<MsgFilter>(*this, *config_);
}

void MsgFilterFactory::logRefusal(uint16_t msg_id, const gw::Address& peer) {
  ++unlogged_;
  const int64_t now = gw::coarseNowNs();
  if (now < next_log_ns_) return;
  GW_LOG(warn, "example_msg_filter: worker {}: refused msg_id {} from {} ({} refusals since the last line)",
         worker_index_, msg_id, peer.toString(), unlogged_);
  unlogged_ = 0;
  next_log_ns_ = now + 1'000'000'000;
}
// [END factory_def]

// [START describe]
void MsgFilterConfig::describe(rapidjson::Value& out, gw::JsonAllocator& alloc) const {
  rapidjson::Value ids(rapidjson::kArrayType);
  for (uint16_t id : deny) ids.PushBack(id, alloc);
  out.AddMember("deny_msg_ids", ids, alloc);
  out.AddMember("close_after", close_after, alloc);
}
// [END describe]

// [START config_factory]
// The largest close_after the parser accepts.
constexpr uint64_t kMaxCloseAfter = 1'000'000;

class MsgFilterConfigFactory
    : public gw::TypedFilterConfigFactory<MsgFilterConfig, MsgFilterFactory> {
 public:
  MsgFilterConfigFactory()
      : TypedFilterConfigFactory("example_msg_filter", gw::FilterTraits::frames(),
                                 kMsgFilterSchema) {}

  std::shared_ptr<const MsgFilterConfig> parseConfig(const rapidjson::Value& json,
                                                     gw::ParseContext& ctx) const override {
    auto cfg = std::make_shared<MsgFilterConfig>();
    // The schema already checked the shape: an array of integers 0..65535.
    if (json.HasMember("deny_msg_ids")) {
      const rapidjson::Value& ids = json["deny_msg_ids"];
      std::map<uint16_t, rapidjson::SizeType> seen;  // msg_id -> first index
      for (rapidjson::SizeType i = 0; i < ids.Size(); ++i) {
        const auto id = static_cast<uint16_t>(ids[i].GetUint());
        const std::string at = "/deny_msg_ids/" + std::to_string(i);
        if (id == gw::kErrorMsgId) {
          ctx.fail(at, "65535 is the gateway's error frame, which clients never send: remove it");
        } else if (auto [first, added] = seen.emplace(id, i); !added) {
          ctx.fail(at, std::to_string(id) + " is already listed as item " +
                           std::to_string(first->second) + ": remove one of them");
        } else {
          cfg->deny.push_back(id);
        }
      }
    }
    // A helper: records "/close_after: must be an integer from 0 to ..." itself.
    cfg->close_after = ctx.size(json, "close_after", 0, 0, kMaxCloseAfter);
    std::sort(cfg->deny.begin(), cfg->deny.end());
    for (uint16_t id : cfg->deny) cfg->refused.push_back(&refusedCounter(ctx.listener(), id));
    return cfg;  // discarded by the base class if ctx recorded an error
  }
};

GW_REGISTER_FILTER(MsgFilterConfigFactory);
// [END config_factory]

}  // namespace example
