// JSON both ways for the REST API: requests decoded and answers encoded by the server, requests
// encoded and answers decoded by a client of it (NodeClient). Decoders never throw: any body
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

nlohmann::json to_json(const AudioSettings& audio);
nlohmann::json to_json(const VideoSettings& video);
nlohmann::json to_json(const StreamInfo& stream);
nlohmann::json to_json(const ParticipantInfo& participant);
nlohmann::json to_json(const ConferenceInfo& conference);
nlohmann::json to_json(const ServiceStats& stats);
// GET /v1/nodes/{id}: registration fields at the top, labels as an object, state, and load.
nlohmann::json to_json(const NodeInfo& node);

// Requests as a client sends them: exactly what the decoders above accept, so that decoding one
// gives back the same value (create: every field written, none left to the daemon's defaults; the
// cluster keeps conferences' settings in etcd in this shape).
nlohmann::json to_json(const ConferenceSettings& settings);
nlohmann::json to_json(const ConferencePatch& patch);
nlohmann::json to_json(const ParticipantRequest& request);
nlohmann::json to_json(const ParticipantPatch& patch);

// Answers as a client reads them, from the shapes the to_json functions above write. Strict on
// the fields they write (type, range, presence: 400 BAD_FIELD naming the field's path), silent
// on fields they do not know, so a newer server's additions do not break an older client.
ApiResult<ConferenceInfo> decode_conference_info(const nlohmann::json& value);
ApiResult<ParticipantInfo> decode_participant_info(const nlohmann::json& value);
// `medium`: the key the stream sits under in its participant ("audio" or "video").
ApiResult<StreamInfo> decode_stream_info(const nlohmann::json& value, Medium medium);

}  // namespace confab::allocator
