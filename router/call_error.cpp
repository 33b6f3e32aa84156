// CallError's wire tokens and SIP status codes (plugin.h).
#include <array>

#include "router/plugin.h"

namespace confab::router {
namespace {

struct ErrorName {
  CallError error;
  std::string_view name;
  int sip_status;
};

constexpr std::array kErrors{
    ErrorName{CallError::kNotValid, "NOT_VALID", 484},   // Address Incomplete
    ErrorName{CallError::kNotFound, "NOT_FOUND", 404},   // Not Found
    ErrorName{CallError::kNotConnected, "NOT_CONNECTED", 480},  // Temporarily Unavailable
    ErrorName{CallError::kBusy, "BUSY", 486},            // Busy Here
    ErrorName{CallError::kRejected, "REJECTED", 603},    // Decline
    ErrorName{CallError::kTimeout, "TIMEOUT", 408},      // Request Timeout
    ErrorName{CallError::kFailed, "FAILED", 503},        // Service Unavailable
};

const ErrorName& entry(CallError error) {
  for (const auto& e : kErrors) {
    if (e.error == error) return e;
  }
  return kErrors.back();
}

}  // namespace

std::string_view call_error_name(CallError error) { return entry(error).name; }

int sip_status_of(CallError error) { return entry(error).sip_status; }

std::optional<CallError> parse_call_error(std::string_view name) {
  for (const auto& e : kErrors) {
    if (e.name == name) return e.error;
  }
  return std::nullopt;
}

}  // namespace confab::router
