// The telnet line protocol's verbs over a ConferenceApi: the same operations as REST, one line
// each ("create name=x" -> "OK id=17 media_ip=127.0.0.1 node=local"), errors "ERR <CODE> <message>".
#pragma once

#include <string>

#include "allocator/conference_api.h"
#include "allocator/telnet_command.h"

namespace confab::allocator {

// Runs one parsed line and returns the reply (lines joined by "\r\n", without a final newline).
// quit and auth are the server's, not this function's.
std::string run_telnet_command(ConferenceApi& service, const TelnetCommand& command);

// The reply to an error, as telnet prints it.
std::string telnet_error(const ApiError& error);

}  // namespace confab::allocator
