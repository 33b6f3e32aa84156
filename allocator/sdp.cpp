// SDP offer parsing, RFC 3264 answer writing and receiver SDPs for the control plane.
#include "allocator/sdp.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

namespace confab::allocator {

namespace {

constexpr std::string_view kAudioLevelUri = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";      // RFC 6464
constexpr std::string_view kCsrcAudioLevelUri = "urn:ietf:params:rtp-hdrext:csrc-audio-level";  // RFC 6465
// RFC 8285 4.2: one-byte header extension IDs are 1..14; MediaRequest carries only those.
constexpr unsigned kMinExtensionId = 1;
constexpr unsigned kMaxExtensionId = 14;
constexpr unsigned kMaxPayloadType = 127;  // RFC 3550 5.1: PT is 7 bits
constexpr unsigned kMaxPort = 65535;
// RFC 3551 6: the static payload types that need no rtpmap.
constexpr uint8_t kStaticPcmu = 0;
constexpr uint8_t kStaticPcma = 8;
// NO_SUPPORTED_MEDIA names at most this many formats per m= line, to keep the message short.
constexpr size_t kMaxFormatsNamed = 6;

struct Rtpmap {
  uint8_t payload_type = 0;
  std::string encoding;  // as offered, e.g. "opus/48000/2"
};

struct Fmtp {
  uint8_t payload_type = 0;
  std::string value;
};

// RFC 4585 4.2: a=rtcp-fb:<payload type or *> <feedback type>; only NACK, PLI and FIR matter here.
struct RtcpFeedback {
  std::optional<uint8_t> payload_type;  // none: "*", every format
  bool nack = false;  // "nack" alone: generic NACK (RFC 4585 4.2, 6.2.1)
  bool pli = false;   // "nack pli"
  bool fir = false;   // "ccm fir"
};

struct Connection {
  std::string ip;            // a literal IPv4 or IPv6 address
  bool unspecified = false;  // 0.0.0.0 or ::, "not known yet" (ICE offers, RFC 3264 hold)
};

// The audio-level extensions an offer maps (RFC 8285 5), by ID.
struct AudioLevelExtmaps {
  std::optional<uint8_t> ssrc;  // RFC 6464, client to mixer
  std::optional<uint8_t> csrc;  // RFC 6465, mixer to client
};

// Everything gathered for one m= section before deciding whether we take it.
struct MediaSection {
  SdpMediaLine line;
  size_t line_number = 0;
  bool rtp = false;          // an RTP profile we speak (plain RTP/AVP or RTP/AVPF)
  bool single_port = true;   // m= port without a /count above 1
  std::vector<uint8_t> payload_types;  // the formats, when `rtp`
  std::optional<Connection> connection;
  std::optional<SdpDirection> direction;
  AudioLevelExtmaps extmaps;
  std::vector<Rtpmap> rtpmaps;
  // Index into rtpmaps by payload type (-1: none), so choosing a format stays linear however many
  // formats and rtpmaps a hostile offer lists. The first rtpmap of a payload type counts.
  std::array<int16_t, kMaxPayloadType + 1> rtpmap_index = make_rtpmap_index();
  std::vector<Fmtp> fmtps;
  std::vector<RtcpFeedback> feedback;

  static std::array<int16_t, kMaxPayloadType + 1> make_rtpmap_index() {
    std::array<int16_t, kMaxPayloadType + 1> index{};
    index.fill(-1);
    return index;
  }
  const Rtpmap* rtpmap(uint8_t pt) const {
    return rtpmap_index[pt] < 0 ? nullptr : &rtpmaps[static_cast<size_t>(rtpmap_index[pt])];
  }
};

struct SessionState {
  std::optional<Connection> connection;
  std::optional<SdpDirection> direction;
  AudioLevelExtmaps extmaps;  // RFC 8285 5: a session-level extmap applies to all media
};

transport::Err<ApiError> bad_sdp(size_t line_number, const std::string& problem) {
  return api_error(400, "BAD_SDP", "line " + std::to_string(line_number) + ": " + problem);
}

// Splits on runs of spaces (RFC 8866 9 uses single spaces; we tolerate more).
std::vector<std::string_view> split_fields(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && text[pos] == ' ') ++pos;
    if (pos == text.size()) break;
    const size_t end = std::min(text.find(' ', pos), text.size());
    fields.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return fields;
}

// A whole, digits-only decimal number no larger than `max`.
std::optional<unsigned> parse_number(std::string_view text, unsigned max) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// RFC 3264 5.1: m= port 0 or a=inactive both mean the offerer does not want the stream.
std::optional<SdpDirection> parse_direction(std::string_view attribute) {
  if (attribute == "sendrecv") return SdpDirection::kSendRecv;
  if (attribute == "sendonly") return SdpDirection::kSendOnly;
  if (attribute == "recvonly") return SdpDirection::kRecvOnly;
  if (attribute == "inactive") return SdpDirection::kInactive;
  return std::nullopt;
}

SdpDirection complement(SdpDirection offered) {
  switch (offered) {
    case SdpDirection::kSendOnly: return SdpDirection::kRecvOnly;
    case SdpDirection::kRecvOnly: return SdpDirection::kSendOnly;
    case SdpDirection::kInactive: return SdpDirection::kInactive;
    case SdpDirection::kSendRecv: break;
  }
  return SdpDirection::kSendRecv;
}

// RFC 8866 5.7: c=<nettype> <addrtype> <connection-address>. Only literal unicast addresses: a
// hostname would need a name lookup on the control thread, multicast (addr/ttl) is not an MCU leg.
ApiResult<Connection> parse_connection(std::string_view value, size_t line_number) {
  const auto fields = split_fields(value);
  if (fields.size() != 3) return bad_sdp(line_number, "c= needs <nettype> <addrtype> <address>");
  if (fields[0] != "IN") return bad_sdp(line_number, "c= network type '" + std::string(fields[0]) + "' is not IN");
  const bool ip6 = fields[1] == "IP6";
  if (!ip6 && fields[1] != "IP4") {
    return bad_sdp(line_number, "c= address type '" + std::string(fields[1]) + "' is not IP4 or IP6");
  }
  const std::string address(fields[2]);
  if (address.find('/') != std::string::npos) {
    return bad_sdp(line_number, "c= multicast address '" + address + "' is not supported");
  }
  std::array<uint8_t, sizeof(in6_addr)> bytes{};
  if (inet_pton(ip6 ? AF_INET6 : AF_INET, address.c_str(), bytes.data()) != 1) {
    return bad_sdp(line_number, "c= address '" + address + "' is not a literal " + (ip6 ? "IPv6" : "IPv4") +
                                    " address (hostnames are not looked up)");
  }
  const bool unspecified = std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
  return Connection{address, unspecified};
}

// RFC 4855 3: encoding names are case-insensitive. RFC 7587 7: Opus is always opus/48000/2.
std::optional<Codec> codec_of_rtpmap(std::string_view encoding) {
  const size_t slash = encoding.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view name = encoding.substr(0, slash);
  std::string_view rest = encoding.substr(slash + 1);
  const size_t slash2 = rest.find('/');
  const std::string_view clock = rest.substr(0, slash2);
  const std::optional<std::string_view> channels =
      slash2 == std::string_view::npos ? std::nullopt : std::optional(rest.substr(slash2 + 1));
  if (iequals(name, "opus") && clock == "48000" && (!channels || *channels == "2")) return Codec::kOpus;
  if (iequals(name, "PCMU") && clock == "8000" && (!channels || *channels == "1")) return Codec::kPcmu;
  if (iequals(name, "PCMA") && clock == "8000" && (!channels || *channels == "1")) return Codec::kPcma;
  if (iequals(name, "H264") && clock == "90000" && !channels) return Codec::kH264;
  return std::nullopt;
}

std::string_view rtpmap_of(Codec codec) {
  switch (codec) {
    case Codec::kOpus: return "opus/48000/2";
    case Codec::kPcmu: return "PCMU/8000";
    case Codec::kPcma: return "PCMA/8000";
    case Codec::kH264: return "H264/90000";
  }
  return "";
}

// The first offered format we can decode: its rtpmap decides, else RFC 3551's static 0 and 8.
std::optional<std::pair<Codec, uint8_t>> choose_format(const MediaSection& section, Medium medium) {
  for (uint8_t pt : section.payload_types) {
    std::optional<Codec> codec;
    if (const Rtpmap* map = section.rtpmap(pt)) {
      codec = codec_of_rtpmap(map->encoding);
    } else if (pt == kStaticPcmu) {
      codec = Codec::kPcmu;
    } else if (pt == kStaticPcma) {
      codec = Codec::kPcma;
    }
    if (codec && medium_of(*codec) == medium) return std::pair(*codec, pt);
  }
  return std::nullopt;
}

// "audio RTP/AVP 9 (G722/8000) 101 (telephone-event/8000)" for NO_SUPPORTED_MEDIA.
std::string describe(const MediaSection& section) {
  std::string out = section.line.media + " " + section.line.proto;
  if (section.line.port == 0) return out + " (port 0)";
  if (section.direction == SdpDirection::kInactive) return out + " (inactive)";
  if (!section.rtp) return out;
  size_t named = 0;
  for (uint8_t pt : section.payload_types) {
    if (named++ == kMaxFormatsNamed) return out + " ...";
    out += " " + std::to_string(pt);
    if (const Rtpmap* map = section.rtpmap(pt)) out += " (" + map->encoding + ")";
  }
  return out;
}

std::string truncate_utf8(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t end = max;
  // Step back over continuation bytes (10xxxxxx) so no character is cut in half.
  while (end > 0 && (static_cast<uint8_t>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

// Parses the value of a=<name>:<value> attributes that belong to an m= section.
ApiResult<Done> parse_media_attribute(std::string_view attribute, MediaSection& section, size_t line_number) {
  const size_t colon = attribute.find(':');
  const std::string_view name = attribute.substr(0, colon);
  const std::string_view value = colon == std::string_view::npos ? std::string_view() : attribute.substr(colon + 1);
  if (name == "mid" && !value.empty()) {
    section.line.mid = std::string(value);
  } else if (section.rtp && name == "rtcp-fb") {
    const std::vector<std::string_view> fields = split_fields(value);
    if (fields.size() < 2) return Done{};  // ack, trr-int... with odd spacing: not ours to judge
    RtcpFeedback feedback;
    if (fields[0] != "*") {
      const auto pt = parse_number(fields[0], kMaxPayloadType);
      if (!pt) return bad_sdp(line_number, "a=rtcp-fb needs a payload type 0..127 or *");
      feedback.payload_type = static_cast<uint8_t>(*pt);
    }
    feedback.nack = fields.size() == 2 && fields[1] == "nack";
    feedback.pli = fields.size() == 3 && fields[1] == "nack" && fields[2] == "pli";
    feedback.fir = fields.size() == 3 && fields[1] == "ccm" && fields[2] == "fir";
    if (feedback.nack || feedback.pli || feedback.fir) section.feedback.push_back(feedback);
  } else if (section.rtp && (name == "rtpmap" || name == "fmtp")) {
    // RFC 8866 6.6: a=rtpmap:<payload type> <encoding name>/<clock rate>[/<parameters>]
    // RFC 8866 6.15: a=fmtp:<format> <format specific parameters>
    const size_t space = value.find(' ');
    const auto pt = parse_number(value.substr(0, space), kMaxPayloadType);
    if (!pt) return bad_sdp(line_number, "a=" + std::string(name) + " needs a payload type 0..127");
    const std::string_view rest = space == std::string_view::npos ? std::string_view() : value.substr(space + 1);
    if (name == "rtpmap") {
      if (rest.find('/') == std::string_view::npos || rest.find(' ') != std::string_view::npos) {
        return bad_sdp(line_number, "a=rtpmap needs <encoding>/<clock rate>");
      }
      if (section.rtpmap_index[*pt] < 0) section.rtpmap_index[*pt] = static_cast<int16_t>(section.rtpmaps.size());
      section.rtpmaps.push_back(Rtpmap{static_cast<uint8_t>(*pt), std::string(rest)});
    } else if (!rest.empty()) {
      section.fmtps.push_back(Fmtp{static_cast<uint8_t>(*pt), std::string(rest)});
    }
  }
  return Done{};
}

// RFC 8285 5: a=extmap:<id>[/<direction>] <URI> [<extension attributes>]. Only the audio levels
// (RFC 6464 and 6465) matter to us; other extensions, and IDs outside the one-byte range, are
// ignored.
void parse_audio_level_extmap(std::string_view value, AudioLevelExtmaps& extmaps) {
  const auto fields = split_fields(value);
  if (fields.size() < 2 || (fields[1] != kAudioLevelUri && fields[1] != kCsrcAudioLevelUri)) return;
  const std::string_view id_text = fields[0].substr(0, fields[0].find('/'));
  const auto id = parse_number(id_text, kMaxExtensionId);
  if (!id || *id < kMinExtensionId) return;
  (fields[1] == kAudioLevelUri ? extmaps.ssrc : extmaps.csrc) = static_cast<uint8_t>(*id);
}

// RFC 8866 5.14: m=<media> <port>[/<number of ports>] <proto> <fmt> ...
ApiResult<MediaSection> parse_media_line(std::string_view value, size_t line_number) {
  const auto fields = split_fields(value);
  if (fields.size() < 4) return bad_sdp(line_number, "m= needs <media> <port> <proto> <format>...");
  MediaSection section;
  section.line_number = line_number;
  section.line.media = std::string(fields[0]);
  const std::string_view port_field = fields[1];
  const size_t slash = port_field.find('/');
  const auto port = parse_number(port_field.substr(0, slash), kMaxPort);
  if (!port) return bad_sdp(line_number, "m= port '" + std::string(port_field) + "' is not 0..65535");
  if (slash != std::string_view::npos) {
    const auto count = parse_number(port_field.substr(slash + 1), kMaxPort);
    if (!count || *count == 0) return bad_sdp(line_number, "m= port count in '" + std::string(port_field) + "'");
    section.single_port = *count == 1;
  }
  section.line.port = static_cast<uint16_t>(*port);
  section.line.proto = std::string(fields[2]);
  // Secure profiles (SAVP, DTLS) need SRTP we do not have; answering them with plain RTP would
  // break RFC 3264 6.1 (the answer keeps the offered proto).
  section.rtp = section.line.proto == "RTP/AVP" || section.line.proto == "RTP/AVPF";
  for (size_t i = 3; i < fields.size(); ++i) {
    if (i > 3) section.line.formats += ' ';
    section.line.formats += fields[i];
    if (section.rtp) {
      const auto pt = parse_number(fields[i], kMaxPayloadType);
      if (!pt) return bad_sdp(line_number, "m= format '" + std::string(fields[i]) + "' is not a payload type 0..127");
      section.payload_types.push_back(static_cast<uint8_t>(*pt));
    }
  }
  return section;
}

// Decides which m= sections we take and fills the request from them.
ApiResult<SdpOffer> finish(SdpOffer offer, std::vector<MediaSection>& sections, const SessionState& session) {
  for (MediaSection& section : sections) {
    section.line.direction = section.direction.value_or(session.direction.value_or(SdpDirection::kSendRecv));
    std::optional<Medium> medium;
    if (section.line.media == "audio") medium = Medium::kAudio;
    if (section.line.media == "video") medium = Medium::kVideo;
    if (!medium || !section.rtp || !section.single_port || section.line.port == 0 ||
        section.line.direction == SdpDirection::kInactive) {
      continue;
    }
    std::optional<MediaRequest>& slot = *medium == Medium::kAudio ? offer.request.audio : offer.request.video;
    if (slot) continue;  // one stream per medium: later lines are rejected
    const auto chosen = choose_format(section, *medium);
    if (!chosen) continue;
    const std::optional<Connection>& connection = section.connection ? section.connection : session.connection;
    if (!connection) return bad_sdp(section.line_number, "m=" + section.line.media + " has no c= line");

    MediaRequest request;
    request.codec = chosen->first;
    request.payload_type = chosen->second;
    if (!connection->unspecified) {
      const bool ip6 = connection->ip.find(':') != std::string::npos;
      const std::string text = (ip6 ? "[" + connection->ip + "]" : connection->ip) + ":" +
                               std::to_string(section.line.port);
      request.remote = transport::SocketAddress::parse(text);
      if (!request.remote) return bad_sdp(section.line_number, "address '" + text + "'");
    }
    if (*medium == Medium::kAudio) {
      request.audio_level_ext_id = section.extmaps.ssrc ? section.extmaps.ssrc : session.extmaps.ssrc;
      request.csrc_audio_level_ext_id = section.extmaps.csrc ? section.extmaps.csrc : session.extmaps.csrc;
      // One ID names one extension (RFC 8285 5); an offer mapping both to it is ambiguous.
      if (request.csrc_audio_level_ext_id && request.csrc_audio_level_ext_id == request.audio_level_ext_id) {
        return bad_sdp(section.line_number, "one a=extmap ID for both audio-level extensions");
      }
    }
    std::optional<std::string>& fmtp = *medium == Medium::kAudio ? offer.audio_fmtp : offer.video_fmtp;
    for (const Fmtp& f : section.fmtps) {
      if (f.payload_type == request.payload_type) fmtp = f.value;
    }
    if (*medium == Medium::kVideo) {
      for (const RtcpFeedback& f : section.feedback) {
        if (f.payload_type && f.payload_type != request.payload_type) continue;
        offer.video_pli = offer.video_pli || f.pli;
        offer.video_fir = offer.video_fir || f.fir;
        request.nack = request.nack || f.nack;
      }
      request.fir = offer.video_fir && !offer.video_pli;
    }
    slot = request;
    section.line.taken = medium;
  }
  if (offer.request.audio || offer.request.video) {
    for (MediaSection& section : sections) offer.media.push_back(std::move(section.line));
    return offer;
  }
  std::string offered;
  for (const MediaSection& section : sections) offered += (offered.empty() ? "" : ", ") + describe(section);
  return api_error(400, "NO_SUPPORTED_MEDIA",
                   "no m= line we can take (need RTP/AVP or RTP/AVPF audio with opus/48000/2, PCMU or PCMA, or "
                   "video with H264/90000); offered: " +
                       (offered.empty() ? std::string("nothing") : offered));
}

void add_line(std::string& out, std::initializer_list<std::string_view> parts) {
  for (std::string_view part : parts) out += part;
  out += "\r\n";
}

std::string_view address_type(const transport::SocketAddress& address) {
  return address.family() == AF_INET6 ? "IP6" : "IP4";
}

// An address for o= and c=; an empty one (never bound) prints as unspecified IPv4.
std::string ip_or_unspecified(const transport::SocketAddress& address) {
  return address.empty() ? std::string("0.0.0.0") : address.ip_string();
}

void add_connection(std::string& out, const transport::SocketAddress& address) {
  add_line(out, {"c=IN ", address_type(address), " ", ip_or_unspecified(address)});
}

}  // namespace

std::string_view to_string(SdpDirection direction) {
  switch (direction) {
    case SdpDirection::kSendRecv: return "sendrecv";
    case SdpDirection::kSendOnly: return "sendonly";
    case SdpDirection::kRecvOnly: return "recvonly";
    case SdpDirection::kInactive: return "inactive";
  }
  return "sendrecv";
}

ApiResult<SdpOffer> parse_sdp_offer(std::string_view text) {
  if (text.size() > kMaxSdpSize) {
    return api_error(400, "SDP_TOO_LARGE", "SDP is " + std::to_string(text.size()) + " bytes, over the limit of " +
                                               std::to_string(kMaxSdpSize));
  }
  SdpOffer offer;
  SessionState session;
  std::vector<MediaSection> sections;
  size_t line_number = 0;
  bool seen_version = false;
  size_t pos = 0;
  while (pos < text.size()) {
    // RFC 8866 5: lines end in CRLF; a bare LF is accepted too.
    const size_t newline = std::min(text.find('\n', pos), text.size());
    std::string_view line = text.substr(pos, newline - pos);
    pos = newline + 1;
    if (++line_number > kMaxSdpLines) {
      return api_error(400, "SDP_TOO_LARGE", "SDP has over " + std::to_string(kMaxSdpLines) + " lines");
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // Trailing blanks are a common slip of hand-written SDP; they never carry meaning.
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.empty()) continue;  // blank lines (often trailing) carry nothing
    const bool control = std::any_of(line.begin(), line.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return (u < 0x20 && c != '\t') || u == 0x7F;
    });
    if (control) return bad_sdp(line_number, "control character in line");
    // RFC 8866 5: <type>=<value>, type one lower-case letter.
    if (line.size() < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z') {
      return bad_sdp(line_number, "expected <letter>=<value>");
    }
    const char type = line[0];
    const std::string_view value = line.substr(2);
    if (!seen_version) {
      if (type != 'v' || value != "0") return bad_sdp(line_number, "SDP must start with v=0");
      seen_version = true;
      continue;
    }
    MediaSection* media = sections.empty() ? nullptr : &sections.back();
    switch (type) {
      case 'o': {
        // RFC 8866 5.2: o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>
        const auto fields = split_fields(value);
        if (fields.size() != 6) return bad_sdp(line_number, "o= needs six fields");
        offer.origin_session_id = std::string(fields[1]);
        break;
      }
      case 's':
        // RFC 8866 5.3: "s= " or "s=-" when there is no name.
        if (!media) offer.request.name = (value == "-" || value == " ") ? "" : truncate_utf8(value, kMaxNameLength);
        break;
      case 'c': {
        auto connection = parse_connection(value, line_number);
        if (!connection) return transport::Err<ApiError>{connection.error()};
        (media ? media->connection : session.connection) = *connection;
        break;
      }
      case 'm': {
        if (sections.size() == kMaxSdpMediaLines) {
          return api_error(400, "SDP_TOO_LARGE", "SDP has over " + std::to_string(kMaxSdpMediaLines) + " m= lines");
        }
        auto section = parse_media_line(value, line_number);
        if (!section) return transport::Err<ApiError>{section.error()};
        sections.push_back(std::move(*section));
        break;
      }
      case 'a': {
        const std::optional<SdpDirection> direction = parse_direction(value);
        if (direction) (media ? media->direction : session.direction) = direction;
        if (value.starts_with("extmap:"))
          parse_audio_level_extmap(value.substr(7), media ? media->extmaps : session.extmaps);
        if (media) {
          auto done = parse_media_attribute(value, *media, line_number);
          if (!done) return transport::Err<ApiError>{done.error()};
        }
        break;
      }
      default: break;  // b=, t=, i=, k=, ... carry nothing we use
    }
  }
  if (!seen_version) return bad_sdp(1, "SDP must start with v=0");
  return finish(std::move(offer), sections, session);
}

std::string write_sdp_answer(const SdpOffer& offer, const ParticipantInfo& answer, uint64_t session_id,
                             uint64_t session_version) {
  const auto stream_of = [&](const SdpMediaLine& line) -> const StreamInfo* {
    if (!line.taken) return nullptr;
    const std::optional<StreamInfo>& stream = *line.taken == Medium::kAudio ? answer.audio : answer.video;
    return stream ? &*stream : nullptr;
  };
  // o= and the session c= use the address of the first stream we answer.
  transport::SocketAddress session_address;
  for (const SdpMediaLine& line : offer.media) {
    if (const StreamInfo* stream = stream_of(line)) {
      session_address = stream->local;
      break;
    }
  }
  const std::string session_ip = ip_or_unspecified(session_address);

  std::string out;
  add_line(out, {"v=0"});
  add_line(out, {"o=confab ", std::to_string(session_id), " ", std::to_string(session_version), " IN ",
                 address_type(session_address), " ", session_ip});
  add_line(out, {"s=confab"});
  add_connection(out, session_address);
  add_line(out, {"t=0 0"});
  for (const SdpMediaLine& line : offer.media) {
    const StreamInfo* stream = stream_of(line);
    if (!stream) {
      // RFC 3264 6: a rejected stream keeps its m= line, with port 0 and the offered formats.
      add_line(out, {"m=", line.media, " 0 ", line.proto, " ", line.formats});
      if (line.mid) add_line(out, {"a=mid:", *line.mid});
      continue;
    }
    const std::string port = std::to_string(stream->local.port());
    const std::string pt = std::to_string(stream->payload_type);
    add_line(out, {"m=", line.media, " ", port, " ", line.proto, " ", pt});
    if (ip_or_unspecified(stream->local) != session_ip) add_connection(out, stream->local);
    if (line.mid) add_line(out, {"a=mid:", *line.mid});
    add_line(out, {"a=rtpmap:", pt, " ", rtpmap_of(stream->codec)});
    const bool audio = *line.taken == Medium::kAudio;
    const std::optional<MediaRequest>& requested = audio ? offer.request.audio : offer.request.video;
    const std::optional<std::string>& fmtp = audio ? offer.audio_fmtp : offer.video_fmtp;
    // The offered fmtp describes the offered codec; echo it only if we answer with that codec.
    if (fmtp && requested && requested->codec == stream->codec) add_line(out, {"a=fmtp:", pt, " ", *fmtp});
    // RFC 3605: our RTCP is on the RTP port, also for offerers that do not speak RFC 5761 mux.
    add_line(out, {"a=rtcp:", port});
    add_line(out, {"a=rtcp-mux"});
    add_line(out, {"a=", to_string(complement(line.direction))});
    if (audio && requested && requested->audio_level_ext_id) {
      add_line(out, {"a=extmap:", std::to_string(*requested->audio_level_ext_id), " ", kAudioLevelUri});
    }
    if (audio && requested && requested->csrc_audio_level_ext_id) {
      add_line(out, {"a=extmap:", std::to_string(*requested->csrc_audio_level_ext_id), " ", kCsrcAudioLevelUri});
    }
    // RFC 4585 4.2: generic NACK is used only when both sides list it; we do it when offered.
    if (!audio && requested && requested->nack) add_line(out, {"a=rtcp-fb:", pt, " nack"});
    if (!audio && offer.video_pli) add_line(out, {"a=rtcp-fb:", pt, " nack pli"});
    if (!audio && offer.video_fir) add_line(out, {"a=rtcp-fb:", pt, " ccm fir"});
    // RFC 5576 4.1: the SSRC we send with, so the participant can tell our stream apart.
    add_line(out, {"a=ssrc:", std::to_string(stream->ssrc), " cname:confab"});
  }
  return out;
}

ApiResult<std::string> write_receiver_sdp(const ParticipantInfo& participant, uint64_t session_id) {
  std::vector<const StreamInfo*> streams;
  for (const std::optional<StreamInfo>* stream : {&participant.audio, &participant.video}) {
    if (!*stream) continue;
    if (!(*stream)->remote || (*stream)->remote->empty()) {
      return api_error(409, "NO_REMOTE",
                       std::string(to_string((*stream)->medium)) +
                           ": the participant's address is not known yet (no remote given and no packet received)");
    }
    streams.push_back(&**stream);
  }
  if (streams.empty()) return api_error(409, "NO_MEDIA", "the participant has no audio or video stream");

  const transport::SocketAddress& first_remote = *streams.front()->remote;
  const transport::SocketAddress& origin = streams.front()->local;
  std::string out;
  add_line(out, {"v=0"});
  add_line(out, {"o=confab ", std::to_string(session_id), " 1 IN ", address_type(origin), " ",
                 ip_or_unspecified(origin)});
  add_line(out, {"s=confab"});
  add_connection(out, first_remote);
  add_line(out, {"t=0 0"});
  for (const StreamInfo* stream : streams) {
    const std::string pt = std::to_string(stream->payload_type);
    add_line(out, {"m=", to_string(stream->medium), " ", std::to_string(stream->remote->port()), " RTP/AVP ", pt});
    if (stream->remote->ip_string() != first_remote.ip_string()) add_connection(out, *stream->remote);
    add_line(out, {"a=rtpmap:", pt, " ", rtpmap_of(stream->codec)});
    // RFC 6184 5.4: mode 1 allows the FU-A fragments a frame larger than one packet needs.
    if (stream->codec == Codec::kH264) add_line(out, {"a=fmtp:", pt, " packetization-mode=1"});
    add_line(out, {"a=rtcp-mux"});
    add_line(out, {"a=recvonly"});
  }
  return out;
}

}  // namespace confab::allocator
