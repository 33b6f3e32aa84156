// JSON request decoding and answer encoding for the REST API. Decoders never throw: any body
// becomes a value or a 400 whose message names the field.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "allocator/api_types.h"
#include "allocator/conference_service.h"

namespace confab::allocator {

// No request body nests deeper than 2 ({"audio": {...}}). Deeper bodies are refused (BAD_JSON) by a
// scan before parsing, so a 64 KiB body of brackets cannot make the parser build tens of thousands
// of nested containers.
constexpr size_t kMaxJsonDepth = 16;
// The deepest nesting of arrays and objects in `body`, brackets inside strings not counted. Stops
// counting past `limit`. Not a validator: the parser judges everything else.
size_t json_nesting_depth(std::string_view body, size_t limit);

// Each accepts an empty body as "all defaults" (a POST with no body creates a plain conference).
// Unknown fields are errors: a misspelt field would otherwise be silently ignored.
// A create request: what it leaves out comes from `defaults` (the daemon's).
ApiResult<ConferenceSettings> decode_conference_settings(std::string_view body,
                                                         const ConferenceSettings& defaults = {});
ApiResult<ConferencePatch> decode_conference_patch(std::string_view body);
ApiResult<ParticipantRequest> decode_participant_request(std::string_view body);
ApiResult<ParticipantPatch> decode_participant_patch(std::string_view body);

// A create request's body with every field set: decode_conference_settings of it gives `settings`
// back whatever the defaults (the cluster keeps conferences' settings in this shape).
nlohmann::json to_json(const ConferenceSettings& settings);
nlohmann::json to_json(const AudioSettings& audio);
nlohmann::json to_json(const VideoSettings& video);
nlohmann::json to_json(const StreamInfo& stream);
nlohmann::json to_json(const ParticipantInfo& participant);
nlohmann::json to_json(const ConferenceInfo& conference);
nlohmann::json to_json(const ServiceStats& stats);

}  // namespace confab::allocator
