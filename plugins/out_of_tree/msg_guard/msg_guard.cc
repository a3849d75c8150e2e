#include "msg_guard/msg_guard.h"

#include <algorithm>
#include <string>

#include "core/sdk/error_frame.h"
#include "msg_guard/msg_guard_schema.h"

namespace studio {

bool MsgGuardConfig::denies(uint16_t msg_id) const {
  return std::binary_search(deny.begin(), deny.end(), msg_id);
}

void MsgGuardConfig::describe(rapidjson::Value& out, gw::JsonAllocator& alloc) const {
  rapidjson::Value ids(rapidjson::kArrayType);
  for (uint16_t id : deny) ids.PushBack(id, alloc);
  out.AddMember("deny_msg_ids", ids, alloc);
  out.AddMember("max_frames_per_connection", max_frames, alloc);
}

gw::FilterStatus MsgGuardFilter::onFrame(gw::Frame& frame) {
  ++frames_;
  if (config_.max_frames != 0 && frames_ > config_.max_frames) {
    config_.closed->inc();
    callbacks().close(gw::CloseReason::kFilterError,
                      "msg_guard: more than " + std::to_string(config_.max_frames) +
                          " frames on one connection",
                      gw::Connection::CloseMode::kFlush);
    return gw::FilterStatus::kStopIteration;
  }
  if (!config_.denies(frame.header.msg_id)) return gw::FilterStatus::kContinue;
  config_.denied->inc();
  callbacks().sendFrame(gw::kErrorMsgId, 0,
                        gw::errorFramePayload(gw::ErrorCode::kNoRoute, frame.header.msg_id));
  return gw::FilterStatus::kStopIteration;  // the chain drops the payload
}

std::unique_ptr<gw::Filter> MsgGuardFactory::createFilter() {
  return std::make_unique<MsgGuardFilter>(*config_);
}

namespace {

class MsgGuardConfigFactory
    : public gw::TypedFilterConfigFactory<MsgGuardConfig, MsgGuardFactory> {
 public:
  MsgGuardConfigFactory()
      : TypedFilterConfigFactory("msg_guard", gw::FilterTraits::frames(), kMsgGuardSchema) {}

  std::shared_ptr<const MsgGuardConfig> parseConfig(const rapidjson::Value& json,
                                                    gw::ParseContext& ctx) const override {
    auto cfg = std::make_shared<MsgGuardConfig>();
    if (json.HasMember("deny_msg_ids")) {
      const auto& ids = json["deny_msg_ids"].GetArray();
      for (rapidjson::SizeType i = 0; i < ids.Size(); ++i) {
        auto id = static_cast<uint16_t>(ids[i].GetUint());
        if (std::find(cfg->deny.begin(), cfg->deny.end(), id) != cfg->deny.end())
          ctx.fail("/deny_msg_ids/" + std::to_string(i),
                   "msg_id " + std::to_string(id) + " is listed twice; remove one");
        cfg->deny.push_back(id);
      }
      std::sort(cfg->deny.begin(), cfg->deny.end());
    }
    cfg->max_frames = ctx.size(json, "max_frames_per_connection", 0);
    auto& stats = gw::stats::StatsRegistry::get();
    cfg->denied = &stats.counter("studio_msg_guard_denied_total",
                                 "Client frames msg_guard refused (denied msg_id).",
                                 {{"listener", ctx.listener()}});
    cfg->closed = &stats.counter("studio_msg_guard_closed_total",
                                 "Connections msg_guard closed (too many frames).",
                                 {{"listener", ctx.listener()}});
    return cfg;
  }
};

GW_REGISTER_FILTER(MsgGuardConfigFactory);

}  // namespace
}  // namespace studio
