// CallError tokens and SIP codes: the mapping the issue fixes (NOT_VALID 484 ... TIMEOUT 408).
#include <gtest/gtest.h>

#include "router/plugin.h"

namespace confab::router {
namespace {

TEST(CallError, MapsToTheSipStatusOfRfc3261) {
  EXPECT_EQ(sip_status_of(CallError::kNotValid), 484);
  EXPECT_EQ(sip_status_of(CallError::kNotFound), 404);
  EXPECT_EQ(sip_status_of(CallError::kNotConnected), 480);
  EXPECT_EQ(sip_status_of(CallError::kBusy), 486);
  EXPECT_EQ(sip_status_of(CallError::kRejected), 603);
  EXPECT_EQ(sip_status_of(CallError::kTimeout), 408);
  EXPECT_EQ(sip_status_of(CallError::kFailed), 503);
}

TEST(CallError, NamesRoundTrip) {
  for (auto e : {CallError::kNotValid, CallError::kNotFound, CallError::kNotConnected, CallError::kBusy,
                 CallError::kRejected, CallError::kTimeout, CallError::kFailed}) {
    auto parsed = parse_call_error(call_error_name(e));
    ASSERT_TRUE(parsed.has_value()) << call_error_name(e);
    EXPECT_EQ(*parsed, e);
  }
  EXPECT_EQ(call_error_name(CallError::kNotConnected), "NOT_CONNECTED");
  EXPECT_FALSE(parse_call_error("not_found").has_value());
  EXPECT_FALSE(parse_call_error("").has_value());
}

}  // namespace
}  // namespace confab::router
