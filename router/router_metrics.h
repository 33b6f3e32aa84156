// The router's Prometheus text for GET /metrics: the core's call counters and its plugins'.
#pragma once

#include <string>

#include "router/router.h"

namespace confab::router {

class XmppPlugin;
class SipPlugin;

// Either plugin may be null (not configured).
std::string render_router_metrics(const RouterStats& stats, const XmppPlugin* xmpp, const SipPlugin* sip);

}  // namespace confab::router
