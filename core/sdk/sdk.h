// core/sdk/sdk.h — the filter SDK in one include.
//
// Includes what a filter usually needs: the contract (filter.h), frames
// (frame.h), registration and typed config factories (registry.h), the
// parser's context and helpers (parse_context.h), the admin view
// (admin_view.h), slots (slots.h), metrics (stats.h), error frames
// (error_frame.h), close reasons (close_reason.h), the cluster manager
// (cluster_manager.h: hosts and host states), the event loop and its
// timers (dispatcher.h), the log (log.h) and the plugin manifest
// (plugin.h). Everything here is what built-in filters use too; nothing of
// the runtime shell (server, worker, admin server, main) is reachable.
#pragma once

#include "core/sdk/admin_view.h"
#include "core/sdk/close_reason.h"
#include "core/sdk/cluster_manager.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/error_frame.h"
#include "core/sdk/filter.h"
#include "core/sdk/frame.h"
#include "core/sdk/log.h"
#include "core/sdk/parse_context.h"
#include "core/sdk/plugin.h"
#include "core/sdk/registry.h"
#include "core/sdk/slots.h"
#include "core/sdk/stats.h"
