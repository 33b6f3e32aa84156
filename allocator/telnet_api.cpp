// Telnet verbs: argument decoding into the API's request types, and one-line answers.
#include "allocator/telnet_api.h"

#include <spdlog/fmt/fmt.h>

#include <charconv>
#include <optional>
#include <string_view>

namespace confab::allocator {

namespace {

// Multi-line replies say on their first line how many lines follow (list: count=, show:
// participants=, help: lines=), so a program knows where a reply ends.
constexpr std::string_view kHelp =
    "  create [id=N] [name=TEXT] [layout=1x1|2x2|3x3|4x4|speaker_thumbnails] [max_participants=N]\r\n"
    "         [max_speakers=N] [complexity=0-10] [bitrate=BPS] [dtx=0|1] [fec=0|1]\r\n"
    "         [width=N] [height=N] [fps=N] [video_bitrate=BPS] [end_when_empty=0|1] [region=R]\r\n"
    "  list\r\n"
    "  show ID\r\n"
    "  layout ID LAYOUT\r\n"
    "  rename ID NAME\r\n"
    "  destroy ID\r\n"
    "  join ID [name=TEXT] [audio=opus|pcmu|pcma[/PT][@IP:PORT]] [video=h264[/PT][@IP:PORT]] [audio_level_ext_id=N]\r\n"
    "       [csrc_audio_level_ext_id=N] [keyframe_request=pli|fir] [nack=0|1] [layout=LAYOUT] [width=N height=N]\r\n"
    "  leave ID PID\r\n"
    "  mute ID PID | unmute ID PID | deaf ID PID | undeaf ID PID\r\n"
    "  view ID PID LAYOUT|conference\r\n"
    "  stats\r\n"
    "  nodes\r\n"
    "  drain NODE\r\n"
    "  auth TOKEN | help | quit";

// Quotes a value that holds a space or a quote, escaping as the line parser unescapes.
std::string quoted(std::string_view text) {
  if (!text.empty() && text.find_first_of(" \t\"\\") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

ApiResult<uint64_t> integer(std::string_view text, const std::string& field) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    return bad_field(field, "not an integer: " + std::string(text));
  return value;
}

// The command's positional arguments must be exactly `names` (which the usage message shows).
ApiResult<Done> expect_positional(const TelnetCommand& command, std::initializer_list<std::string_view> names) {
  if (command.positional.size() == names.size()) return Done{};
  std::string usage = command.verb;
  for (std::string_view n : names) usage += " " + std::string(n);
  return api_error(400, "BAD_ARGUMENTS", "usage: " + usage);
}

ApiResult<Done> only_options(const TelnetCommand& command, std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : command.options) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || key == k;
    if (!ok) return bad_field(key, "unknown option for " + command.verb);
  }
  return Done{};
}

// "opus", "opus/111", "opus/111@127.0.0.1:5004", "h264@[::1]:5006".
ApiResult<MediaRequest> media_spec(std::string_view text, Medium medium) {
  const std::string field(to_string(medium));
  MediaRequest media;
  const size_t at = text.find('@');
  if (at != std::string_view::npos) {
    const auto remote = transport::SocketAddress::parse(text.substr(at + 1));
    if (!remote || remote->port() == 0) return bad_field(field, "expected CODEC[/PT][@IP:PORT], bad address");
    media.remote = *remote;
    text = text.substr(0, at);
  }
  const size_t slash = text.find('/');
  const auto codec = parse_codec(text.substr(0, slash));
  if (!codec || medium_of(*codec) != medium) {
    return bad_field(field, medium == Medium::kAudio ? "codec must be opus, pcmu or pcma" : "codec must be h264");
  }
  media.codec = *codec;
  media.payload_type = default_payload_type(*codec);
  if (slash != std::string_view::npos) {
    auto pt = integer(text.substr(slash + 1), field);
    if (!pt || *pt > 127 || (*pt >= 64 && *pt <= 95)) {
      return bad_field(field, "payload type must be 0..127 and not 64..95 (RFC 5761)");
    }
    media.payload_type = static_cast<uint8_t>(*pt);
  }
  return media;
}

std::string describe_stream(const StreamInfo& s) {
  return std::string(to_string(s.medium)) + "=" + std::string(to_string(s.codec)) + "/" +
         std::to_string(s.payload_type) + " local=" + s.local.to_string() +
         " remote=" + (s.remote ? s.remote->to_string() : "-") + " ssrc=" + std::to_string(s.ssrc) +
         " in=" + std::to_string(s.stats.packets_in) + " dropped=" +
         std::to_string(s.stats.dropped + s.stats.wrong_payload_type + s.stats.wrong_source) +
         " lost=" + std::to_string(s.stats.lost) +
         // The composite a video receiver gets: LAYOUT/WxH, with a "*" when the layout is its own.
         (s.output ? " view=" + std::string(to_string(s.output->layout)) + (s.output->own_layout ? "*" : "") + "/" +
                         std::to_string(s.output->width) + "x" + std::to_string(s.output->height)
                   : std::string());
}

std::string describe(const ParticipantInfo& p) {
  std::string line = "participant id=" + std::to_string(p.id) + " name=" + quoted(p.name) +
                     " muted=" + (p.muted ? "1" : "0") + " deaf=" + (p.deaf ? "1" : "0");
  if (p.audio) line += " " + describe_stream(*p.audio);
  if (p.video) line += " " + describe_stream(*p.video);
  return line;
}

std::string describe(const ConferenceInfo& c) {
  const AudioSettings& a = c.audio;
  return "id=" + std::to_string(c.id) + " name=" + quoted(c.name) + " layout=" + std::string(to_string(c.layout)) +
         " max_participants=" + std::to_string(c.max_participants) + " node=" + c.node + " media_ip=" + c.media_ip +
         " participants=" + std::to_string(c.participants.size()) + " max_speakers=" + std::to_string(a.max_speakers) +
         " complexity=" + std::to_string(a.complexity) + " bitrate=" + std::to_string(a.bitrate) +
         " dtx=" + (a.dtx ? "1" : "0") + " fec=" + (a.fec ? "1" : "0") + " width=" + std::to_string(c.video.width) +
         " height=" + std::to_string(c.video.height) + " fps=" + std::to_string(c.video.fps) +
         " video_bitrate=" + std::to_string(c.video.bitrate) + " end_when_empty=" + (c.end_when_empty ? "1" : "0");
}

using Reply = ApiResult<std::string>;

Reply do_create(ConferenceApi& service, const TelnetCommand& command) {
  if (auto ok = expect_positional(command, {}); !ok) return transport::Err{ok.error()};
  if (auto ok = only_options(command, {"id", "name", "layout", "max_participants", "max_speakers", "complexity",
                                       "bitrate", "dtx", "fec", "width", "height", "fps", "video_bitrate",
                                       "end_when_empty", "region"});
      !ok) {
    return transport::Err{ok.error()};
  }
  ConferenceSettings settings = service.defaults();
  // The service checks the ranges (and names audio.<field> when one is out).
  for (auto [option, slot] : {std::pair{"max_speakers", &settings.audio.max_speakers},
                              std::pair{"complexity", &settings.audio.complexity},
                              std::pair{"bitrate", &settings.audio.bitrate}, std::pair{"width", &settings.video.width},
                              std::pair{"height", &settings.video.height}, std::pair{"fps", &settings.video.fps},
                              std::pair{"video_bitrate", &settings.video.bitrate}}) {
    const auto text = command.option(option);
    if (!text) continue;
    auto value = integer(*text, option);
    if (!value) return transport::Err{value.error()};
    *slot = static_cast<uint32_t>(std::min<uint64_t>(*value, UINT32_MAX));
  }
  for (auto [option, slot] : {std::pair{"dtx", &settings.audio.dtx}, std::pair{"fec", &settings.audio.fec},
                              std::pair{"end_when_empty", &settings.end_when_empty}}) {
    const auto text = command.option(option);
    if (!text) continue;
    if (*text != "0" && *text != "1") return bad_field(option, "must be 0 or 1");
    *slot = *text == "1";
  }
  if (auto name = command.option("name")) settings.name = std::string(*name);
  if (auto region = command.option("region")) settings.region = std::string(*region);
  if (auto text = command.option("layout")) {
    const auto layout = parse_layout(*text);
    if (!layout) return bad_field("layout", "must be one of 1x1, 2x2, 3x3, 4x4, speaker_thumbnails");
    settings.layout = *layout;
  }
  if (auto text = command.option("max_participants")) {
    auto max = integer(*text, "max_participants");
    if (!max) return transport::Err{max.error()};
    settings.max_participants = static_cast<uint32_t>(std::min<uint64_t>(*max, UINT32_MAX));
  }
  // id=N: exactly that ID (the service checks its range), as PUT /v1/conferences/{id}.
  std::optional<uint64_t> id;
  if (auto text = command.option("id")) {
    auto value = integer(*text, "id");
    if (!value) return transport::Err{value.error()};
    id = *value;
  }
  auto created = service.create(settings, id);
  if (!created) return transport::Err{created.error()};
  return "OK id=" + std::to_string(created->id) + " media_ip=" + created->media_ip + " node=" + created->node;
}

Reply do_list(ConferenceApi& service, const TelnetCommand& command) {
  if (auto ok = expect_positional(command, {}); !ok) return transport::Err{ok.error()};
  const auto conferences = service.list();
  if (!conferences) return transport::Err{conferences.error()};
  std::string out = "OK count=" + std::to_string(conferences->size());
  for (const ConferenceInfo& c : *conferences) out += "\r\nconference " + describe(c);
  return out;
}

Reply do_show(ConferenceApi& service, const TelnetCommand& command) {
  if (auto ok = expect_positional(command, {"ID"}); !ok) return transport::Err{ok.error()};
  auto id = integer(command.positional[0], "ID");
  if (!id) return transport::Err{id.error()};
  auto info = service.get(*id);
  if (!info) return transport::Err{info.error()};
  std::string speakers;
  for (uint64_t s : info->speakers) speakers += (speakers.empty() ? "" : ",") + std::to_string(s);
  std::string out = "OK " + describe(*info) + " speakers=" + (speakers.empty() ? "-" : speakers) +
                    " speaker_changes=" + std::to_string(info->speaker_changes);
  for (const ParticipantInfo& p : info->participants) out += "\r\n" + describe(p);
  return out;
}

Reply do_destroy(ConferenceApi& service, const TelnetCommand& command) {
  if (auto ok = expect_positional(command, {"ID"}); !ok) return transport::Err{ok.error()};
  auto id = integer(command.positional[0], "ID");
  if (!id) return transport::Err{id.error()};
  if (auto done = service.destroy(*id); !done) return transport::Err{done.error()};
  return std::string("OK");
}

Reply do_update(ConferenceApi& service, const TelnetCommand& command) {
  if (auto ok = expect_positional(command, {"ID", command.verb == "layout" ? "LAYOUT" : "NAME"}); !ok) {
    return transport::Err{ok.error()};
  }
  auto id = integer(command.positional[0], "ID");
  if (!id) return transport::Err{id.error()};
  ConferencePatch patch;
  if (command.verb == "layout") {
    const auto layout = parse_layout(command.positional[1]);
    if (!layout) return bad_field("layout", "must be one of 1x1, 2x2, 3x3, 4x4, speaker_thumbnails");
    patch.layout = *layout;
  } else {
    patch.name = command.positional[1];
  }
  auto info = service.update(*id, patch);
  if (!info) return transport::Err{info.error()};
  return "OK " + describe(*info);
}

Reply do_join(ConferenceApi& service, const TelnetCommand& command) {
  if (auto ok = expect_positional(command, {"ID"}); !ok) return transport::Err{ok.error()};
  if (auto ok = only_options(command,
                             {"name", "audio", "video", "audio_level_ext_id", "csrc_audio_level_ext_id",
                              "keyframe_request", "nack", "layout", "width", "height"});
      !ok) {
    return transport::Err{ok.error()};
  }
  auto id = integer(command.positional[0], "ID");
  if (!id) return transport::Err{id.error()};
  ParticipantRequest request;
  if (auto name = command.option("name")) request.name = std::string(*name);
  for (const Medium medium : {Medium::kAudio, Medium::kVideo}) {
    const auto text = command.option(to_string(medium));
    if (!text) continue;
    auto media = media_spec(*text, medium);
    if (!media) return transport::Err{media.error()};
    (medium == Medium::kAudio ? request.audio : request.video) = std::move(*media);
  }
  for (const char* option : {"audio_level_ext_id", "csrc_audio_level_ext_id"}) {
    const auto text = command.option(option);
    if (!text) continue;
    auto ext = integer(*text, option);
    if (!request.audio) return bad_field(option, "only with audio=...");
    if (!ext || *ext < 1 || *ext > 14) return bad_field(option, "must be 1..14 (RFC 8285)");
    (option == std::string_view("audio_level_ext_id") ? request.audio->audio_level_ext_id
                                                      : request.audio->csrc_audio_level_ext_id) =
        static_cast<uint8_t>(*ext);
  }
  if (const auto text = command.option("keyframe_request")) {
    if (!request.video) return bad_field("keyframe_request", "only with video=...");
    if (*text != "pli" && *text != "fir")
      return bad_field("keyframe_request", "must be pli (RFC 4585) or fir (RFC 5104)");
    request.video->fir = *text == "fir";
  }
  if (const auto text = command.option("nack")) {
    if (!request.video) return bad_field("nack", "only with video=...");
    if (*text != "0" && *text != "1") return bad_field("nack", "must be 0 or 1 (RFC 4585 generic NACK)");
    request.video->nack = *text == "1";
  }
  // The receiver's own view of the composite (VideoView); validate() checks the sizes.
  if (const auto text = command.option("layout")) {
    if (!request.video) return bad_field("layout", "only with video=...");
    const auto layout = parse_layout(*text);
    if (!layout) return bad_field("layout", "must be one of 1x1, 2x2, 3x3, 4x4, speaker_thumbnails");
    request.video->view.layout = *layout;
  }
  for (const char* option : {"width", "height"}) {
    const auto text = command.option(option);
    if (!text) continue;
    if (!request.video) return bad_field(option, "only with video=...");
    auto value = integer(*text, option);
    if (!value) return transport::Err{value.error()};
    if (*value > UINT32_MAX) return bad_field(option, "too large");
    (option == std::string_view("width") ? request.video->view.width : request.video->view.height) =
        static_cast<uint32_t>(*value);
  }
  if (request.audio && request.audio->audio_level_ext_id &&
      request.audio->audio_level_ext_id == request.audio->csrc_audio_level_ext_id) {
    return bad_field("csrc_audio_level_ext_id", "must differ from audio_level_ext_id");
  }
  if (!request.audio && !request.video) return api_error(400, "BAD_FIELD", "audio, video: give at least one medium");
  auto joined = service.join(*id, request);
  if (!joined) return transport::Err{joined.error()};
  std::string out = "OK id=" + std::to_string(joined->id);
  if (joined->audio) out += " audio=" + joined->audio->local.to_string();
  if (joined->video) out += " video=" + joined->video->local.to_string();
  return out;
}

Reply do_participant(ConferenceApi& service, const TelnetCommand& command) {
  if (command.verb == "view") {
    if (auto ok = expect_positional(command, {"ID", "PID", "LAYOUT"}); !ok) return transport::Err{ok.error()};
  } else if (auto ok = expect_positional(command, {"ID", "PID"}); !ok) {
    return transport::Err{ok.error()};
  }
  auto id = integer(command.positional[0], "ID");
  if (!id) return transport::Err{id.error()};
  auto pid = integer(command.positional[1], "PID");
  if (!pid) return transport::Err{pid.error()};
  if (command.verb == "leave") {
    if (auto done = service.leave(*id, *pid); !done) return transport::Err{done.error()};
    return std::string("OK");
  }
  ParticipantPatch patch;
  if (command.verb == "mute" || command.verb == "unmute") patch.muted = command.verb == "mute";
  if (command.verb == "deaf" || command.verb == "undeaf") patch.deaf = command.verb == "deaf";
  if (command.verb == "view") {
    // "conference": back to following the conference's layout.
    if (command.positional[2] == "conference") {
      patch.follow_layout = true;
    } else {
      const auto layout = parse_layout(command.positional[2]);
      if (!layout) return bad_field("layout", "must be one of 1x1, 2x2, 3x3, 4x4, speaker_thumbnails, conference");
      patch.layout = *layout;
    }
  }
  auto info = service.update_participant(*id, *pid, patch);
  if (!info) return transport::Err{info.error()};
  return "OK " + describe(*info);
}

Reply do_stats(ConferenceApi& service, const TelnetCommand& command) {
  if (auto ok = expect_positional(command, {}); !ok) return transport::Err{ok.error()};
  const ServiceStats s = service.stats();
  return "OK conferences=" + std::to_string(s.conferences) + " participants=" + std::to_string(s.participants) +
         " created=" + std::to_string(s.conferences_created) + " destroyed=" + std::to_string(s.conferences_destroyed) +
         " joined=" + std::to_string(s.participants_joined) + " left=" + std::to_string(s.participants_left) +
         " refused=" + std::to_string(s.requests_refused);
}

// "id=a state=up media_ip=... labels=region:eu,zone:a ... drained=0": registration, state, load.
std::string describe(const NodeInfo& node) {
  const NodeRegistration& r = node.registration;
  const NodeLoadReport& l = node.load;
  std::string labels;
  for (const auto& [key, value] : r.labels) labels += (labels.empty() ? "" : ",") + key + ":" + value;
  return "id=" + quoted(r.id) + " state=" + std::string(to_string(node.state)) + " media_ip=" + r.media_ip +
         " control_url=" + (r.control_url.empty() ? "-" : quoted(r.control_url)) +
         " labels=" + (labels.empty() ? "-" : quoted(labels)) + " capacity_cores=" + fmt::format("{:g}", r.capacity_cores) +
         " max_conferences=" + std::to_string(r.max_conferences) + " max_participants=" +
         std::to_string(r.max_participants) + " stress=" + fmt::format("{:.3f}", l.stress) +
         " conferences=" + std::to_string(l.conferences) + " participants=" + std::to_string(l.participants) +
         " audio_encoders=" + std::to_string(l.audio_encoders) + " video_encoders=" + std::to_string(l.video_encoders) +
         " packets_in_per_s=" + fmt::format("{:.0f}", l.packets_in_per_s) +
         " packets_out_per_s=" + fmt::format("{:.0f}", l.packets_out_per_s) +
         " max_tick_lateness_us=" + std::to_string(l.max_tick_lateness_us) + " late_ticks=" +
         std::to_string(l.late_ticks) + " draining=" + (l.draining ? "1" : "0") + " drained=" + (l.drained ? "1" : "0");
}

Reply do_nodes(ConferenceApi& service, const TelnetCommand& command) {
  if (auto ok = expect_positional(command, {}); !ok) return transport::Err{ok.error()};
  const auto nodes = service.nodes();
  if (!nodes) return transport::Err{nodes.error()};
  std::string out = "OK count=" + std::to_string(nodes->size());
  for (const NodeInfo& node : *nodes) out += "\r\nnode " + describe(node);
  return out;
}

Reply do_drain(ConferenceApi& service, const TelnetCommand& command) {
  if (auto ok = expect_positional(command, {"NODE"}); !ok) return transport::Err{ok.error()};
  auto node = service.drain(command.positional[0]);
  if (!node) return transport::Err{node.error()};
  return "OK " + describe(*node);
}

struct Verb {
  std::string_view name;
  Reply (*run)(ConferenceApi&, const TelnetCommand&);
};

constexpr Verb kVerbs[] = {
    {"create", do_create},       {"list", do_list},           {"show", do_show},
    {"destroy", do_destroy},     {"layout", do_update},       {"rename", do_update},
    {"join", do_join},           {"leave", do_participant},   {"mute", do_participant},
    {"unmute", do_participant},  {"deaf", do_participant},    {"undeaf", do_participant},
    {"stats", do_stats},         {"nodes", do_nodes},         {"drain", do_drain},
    {"view", do_participant},
};

}  // namespace

std::string telnet_error(const ApiError& error) { return "ERR " + error.code + " " + error.message; }

std::string run_telnet_command(ConferenceApi& service, const TelnetCommand& command) {
  if (command.verb == "help") {
    size_t lines = 1;
    for (char c : kHelp) lines += c == '\n';
    return "OK lines=" + std::to_string(lines) + "\r\n" + std::string(kHelp);
  }
  for (const Verb& verb : kVerbs) {
    if (verb.name != command.verb) continue;
    auto reply = verb.run(service, command);
    return reply ? *reply : telnet_error(reply.error());
  }
  return telnet_error(ApiError{400, "UNKNOWN_COMMAND", "no command \"" + command.verb + "\"; try help"});
}

}  // namespace confab::allocator
