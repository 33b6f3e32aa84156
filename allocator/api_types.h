// The control plane's vocabulary: what REST, telnet and SDP requests decode into, what the
// conference service answers, and the one error shape all of them report.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "transport/result.h"
#include "transport/socket_address.h"

namespace confab::allocator {

// An error as the client sees it: HTTP status, UPPER_SNAKE code, and a message naming the field.
// Telnet prints "ERR <code> <message>"; REST answers {"error": {"code", "message"}} with `status`.
struct ApiError {
  int status = 400;
  std::string code;
  std::string message;
};

template <typename T>
using ApiResult = transport::Result<T, ApiError>;

inline transport::Err<ApiError> api_error(int status, std::string code, std::string message) {
  return transport::Err<ApiError>{ApiError{status, std::move(code), std::move(message)}};
}
inline transport::Err<ApiError> bad_field(const std::string& field, const std::string& problem) {
  return api_error(400, "BAD_FIELD", field + ": " + problem);
}

// Result<void, E> does not exist; operations without a value answer Done.
struct Done {};

enum class Medium : uint8_t { kAudio, kVideo };
enum class Codec : uint8_t { kOpus, kPcmu, kPcma, kH264 };
// 1x1 shows the active speaker; the grids tile up to n*n senders; speaker_thumbnails is one large
// tile and up to seven small ones.
enum class Layout : uint8_t { k1x1, k2x2, k3x3, k4x4, kSpeakerThumbnails };

std::string_view to_string(Medium medium);
std::string_view to_string(Codec codec);
std::string_view to_string(Layout layout);
// Lower-case names as in the API ("opus", "2x2", ...); nullopt for anything else.
std::optional<Codec> parse_codec(std::string_view text);
std::optional<Layout> parse_layout(std::string_view text);
Medium medium_of(Codec codec);
// RFC 3551 static types for PCMU (0) and PCMA (8); the customary dynamic ones for Opus (111) and
// H.264 (96).
uint8_t default_payload_type(Codec codec);
// RTP clock rate: 48000 for Opus (RFC 7587 4.1, whatever the real rate), 8000 for G.711, 90000
// for video.
uint32_t clock_rate(Codec codec);

constexpr uint32_t kDefaultMaxParticipants = 16;
constexpr uint32_t kMaxParticipantsLimit = 1000;
constexpr size_t kMaxNameLength = 128;

// A conference's audio: how many speakers are mixed at once and how the mixes are encoded with
// Opus (G.711 has no settings). Fixed when the conference is created. The daemon's defaults
// (--opus-complexity ...) apply to what a create request leaves out.
struct AudioSettings {
  uint32_t max_speakers = 3;  // K, the loudest mixed at once: 1..kMaxSpeakers
  // libopus 0..10. A conference encodes one mix per speaker plus one shared per codec each tick,
  // so this sets how many participants a core serves: on speech, complexity 5 costs under half
  // of 10 (BENCHMARKS.md), a loss hard to hear at 32 kbit/s.
  uint32_t complexity = 5;
  uint32_t bitrate = 32000;  // bit/s, kMinOpusBitrate..kMaxOpusBitrate; RFC 7587 3.1.1: 28-40k for fullband speech
  bool dtx = false;          // RFC 7587 3.1.3: send nothing while the mix is silent
  bool fec = true;           // RFC 6716 2.1.7: in-band FEC in the mixes

  friend bool operator==(const AudioSettings&, const AudioSettings&) = default;
};
constexpr uint32_t kMaxSpeakers = 15;  // RFC 3550 5.1: a packet names at most 15 CSRCs
constexpr uint32_t kMaxOpusComplexity = 10;
constexpr uint32_t kMinOpusBitrate = 6000;    // RFC 6716 2.1.1
constexpr uint32_t kMaxOpusBitrate = 510000;  // RFC 6716 2.1.1

// A conference's composite video: the one picture every video receiver gets, encoded once with
// H.264. Fixed when the conference is created; the layout (ConferenceSettings) may change live.
struct VideoSettings {
  uint32_t width = 1280;  // even, kMinVideoSize..kMaxVideoWidth; 640x360 is the light alternative
  uint32_t height = 720;  // even, kMinVideoSize..kMaxVideoHeight
  uint32_t fps = 30;      // 1..kMaxVideoFps
  uint32_t bitrate = 1500000;  // bit/s, kMinVideoBitrate..kMaxVideoBitrate: the encoder's target and VBV ceiling

  friend bool operator==(const VideoSettings&, const VideoSettings&) = default;
};
constexpr uint32_t kMinVideoSize = 64;
constexpr uint32_t kMaxVideoWidth = 1920;
constexpr uint32_t kMaxVideoHeight = 1080;
constexpr uint32_t kMaxVideoFps = 60;
constexpr uint32_t kMinVideoBitrate = 100000;
constexpr uint32_t kMaxVideoBitrate = 20000000;

struct ConferenceSettings {
  std::string name;
  Layout layout = Layout::k2x2;
  uint32_t max_participants = kDefaultMaxParticipants;
  AudioSettings audio;
  VideoSettings video;
  // Ends the conference when its last participant leaves (an ad-hoc call's conference, made by
  // the call router); a conference nobody joined stays until DELETE.
  bool end_when_empty = false;
  // Cluster mode: place the conference on a node labelled region=<this> when one can take it
  // (else on any). Empty: anywhere. [A-Za-z0-9._-], up to kMaxRegionLength.
  std::string region;
};
constexpr size_t kMaxRegionLength = 64;

struct ConferencePatch {
  std::optional<std::string> name;
  std::optional<Layout> layout;
};

// What one video receiver sees, when it asks for other than the conference's composite. Each
// distinct (layout, width, height) in use is one more composite and x264 encoder on the node.
struct VideoView {
  // Absent: the conference's layout, followed when it changes (PATCH of the conference).
  std::optional<Layout> layout{};
  // Both or neither; absent: the conference's size. Even, within the conference's size bounds.
  std::optional<uint32_t> width{};
  std::optional<uint32_t> height{};

  friend bool operator==(const VideoView&, const VideoView&) = default;
};

// One medium of a join request.
struct MediaRequest {
  Codec codec = Codec::kOpus;
  uint8_t payload_type = 111;
  // Where the MCU sends this participant's media; when absent it is learned from the first valid
  // packet received (symmetric RTP, RFC 4961).
  std::optional<transport::SocketAddress> remote;
  std::optional<uint8_t> audio_level_ext_id;  // RFC 6464 extension ID the sender uses (1..14)
  // RFC 6465 extension ID under which the MCU tells this receiver the level of each speaker (CSRC)
  // in its mix (1..14); none: not sent.
  std::optional<uint8_t> csrc_audio_level_ext_id;
  // Video: ask this sender for keyframes with RFC 5104 FIR instead of RFC 4585 PLI (for senders
  // that negotiated only "ccm fir").
  bool fir = false;
  // Video: the participant negotiated RFC 4585 generic NACK ("a=rtcp-fb:PT nack"): the MCU NACKs
  // its lost packets and retransmits the composite's packets it NACKs. Off by default: a sender
  // that does not retransmit (plain ffmpeg) would only make the MCU wait for nothing.
  bool nack = false;
  // Video: its own layout and/or picture size (VideoView); default: the conference's.
  VideoView view{};
};

struct ParticipantRequest {
  std::string name;
  std::optional<MediaRequest> audio;
  std::optional<MediaRequest> video;
};

struct ParticipantPatch {
  std::optional<bool> muted;  // not mixed into anyone's audio
  std::optional<bool> deaf;   // receives nothing
  // Video: the receiver's own layout from now on (its size stays); follow_layout: back to
  // following the conference's. At most one of the two.
  std::optional<Layout> layout{};
  bool follow_layout = false;
};

// How an incoming audio stream plays out in the mix: its jitter buffer and decoder.
struct AudioPlayout {
  uint64_t frames_decoded = 0;
  uint64_t frames_concealed = 0;      // lost or late frames replaced by packet-loss concealment
  uint64_t frames_fec_recovered = 0;  // lost frames rebuilt from the next packet's in-band FEC
  uint64_t decode_errors = 0;         // payloads the decoder refused (corrupt)
  uint64_t late = 0;                  // frames that came after their time was played
  uint64_t duplicates = 0;
  uint64_t overflows = 0;  // frames too far ahead: the buffer flushed and restarted from them
  uint64_t resets = 0;     // stream restarts (sequence or timestamp jump)
  uint64_t delay_ms = 0;   // the jitter buffer's current target delay
};

// How an incoming video stream is handled: depacketized (RFC 6184), decoded while it is shown,
// and asked for keyframes (RFC 4585 PLI, RFC 5104 FIR); and what its receiver asked of us.
struct VideoPlayout {
  uint64_t access_units = 0;       // whole pictures depacketized
  uint64_t keyframes = 0;          // among them, with an IDR
  uint64_t incomplete = 0;         // pictures dropped for missing or malformed packets
  uint64_t malformed = 0;          // H.264 payloads dropped as malformed or unsupported (e.g. STAP-B)
  uint64_t waiting_keyframe = 0;   // pictures dropped while a keyframe was awaited
  uint64_t frames_decoded = 0;
  uint64_t decode_errors = 0;      // pictures libavcodec refused or decoded with errors (decoder reset)
  uint64_t keyframe_requests_sent = 0;      // PLI or FIR to this sender
  uint64_t keyframe_requests_received = 0;  // PLI or FIR from this receiver about the composite
  uint64_t nacks_sent = 0;            // RFC 4585 generic NACKs to this sender
  uint64_t packets_recovered = 0;     // its lost packets that came back after a NACK
  uint64_t nacks_received = 0;        // RFC 4585 generic NACKs from this receiver about the composite
  uint64_t retransmissions_sent = 0;  // composite packets resent to this receiver on its NACKs
  bool visible = false;  // shown in the composite now
  uint32_t width = 0;    // of the last decoded picture
  uint32_t height = 0;
};

// Counters of one stream as the worker sees it.
struct StreamStats {
  uint64_t packets_in = 0;  // valid RTP of the expected payload type
  uint64_t bytes_in = 0;
  uint64_t rtcp_in = 0;
  uint64_t packets_out = 0;
  uint64_t bytes_out = 0;
  uint64_t rtcp_out = 0;            // RTCP compounds sent: periodic reports and the BYE
  uint64_t sr_sent = 0;             // RFC 3550 sender reports among them
  uint64_t rr_sent = 0;             // RFC 3550 receiver reports among them
  uint64_t dropped = 0;             // malformed RTP/RTCP (MediaSocket's reasons)
  uint64_t wrong_payload_type = 0;  // valid RTP of another payload type
  uint64_t wrong_source = 0;        // valid RTP from another address than the latched remote, or
                                    // with another SSRC while the current one is sending
  uint64_t lost = 0;                // RFC 3550 cumulative loss of the incoming stream
  double jitter_ms = 0;             // RFC 3550 interarrival jitter of the incoming stream
  std::optional<uint32_t> remote_ssrc;
  std::optional<AudioPlayout> playout;  // audio streams in a conference's mix
  std::optional<VideoPlayout> video;    // video streams in a conference's composite
};

// The composite a video receiver gets: one per distinct (layout, width, height) in the conference,
// shared by every receiver that sees the same.
struct VideoOutputInfo {
  Layout layout = Layout::k2x2;
  bool own_layout = false;  // false: follows the conference's layout
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t bitrate = 0;     // bit/s: the conference's, scaled by pixel count for another size
  uint64_t receivers = 0;   // participants sharing it (and its encoder), this one included
};

struct StreamInfo {
  Medium medium = Medium::kAudio;
  Codec codec = Codec::kOpus;
  uint8_t payload_type = 111;
  std::optional<uint8_t> audio_level_ext_id;
  std::optional<uint8_t> csrc_audio_level_ext_id;
  transport::SocketAddress local;                  // the MCU's port for this stream (RTP+RTCP)
  std::optional<transport::SocketAddress> remote;  // configured, or learned (then `learned`)
  bool learned = false;
  uint32_t ssrc = 0;  // the SSRC of what the MCU sends on this stream
  bool fir = false;   // video: keyframes are asked for with FIR (else PLI)
  bool nack = false;  // video: RFC 4585 generic NACK both ways
  std::optional<VideoOutputInfo> output{};  // video: what this receiver gets
  StreamStats stats;
};

struct ParticipantInfo {
  uint64_t id = 0;
  std::string name;
  bool muted = false;
  bool deaf = false;
  std::optional<StreamInfo> audio;
  std::optional<StreamInfo> video;
};

struct ConferenceInfo {
  uint64_t id = 0;
  std::string name;
  Layout layout = Layout::k2x2;
  uint32_t max_participants = kDefaultMaxParticipants;
  AudioSettings audio;
  VideoSettings video;
  bool end_when_empty = false;
  std::string node;      // which MCU node hosts it
  std::string media_ip;  // where its participants send media
  std::vector<ParticipantInfo> participants;
  std::vector<uint64_t> speakers;  // participants whose voices are in the mix now (audio mixer's choice)
  uint64_t speaker_changes = 0;    // mixer ticks on which that set changed
  // The dominant speaker (shown by the 1x1 and speaker layouts); none until someone speaks.
  std::optional<uint64_t> active_speaker;
};

// What a node reports of a conference's media.
struct ConferenceMedia {
  std::vector<ParticipantInfo> participants;  // streams and counters; names are the service's
  std::vector<uint64_t> speakers;
  uint64_t speaker_changes = 0;
  std::optional<uint64_t> active_speaker;
};

// What the decoders cannot check alone (ranges, even sizes, a medium at least): 400 BAD_FIELD naming
// the field. Every ConferenceApi runs these before anything else.
ApiResult<Done> validate(const ConferenceSettings& settings);
ApiResult<Done> validate(const ParticipantRequest& request);

// --- Nodes (GET /v1/nodes; in cluster mode also what nodes publish in etcd) ---

// What a node measures of itself and publishes every second. `stress` is the one figure placement
// ranks by: CPU seconds its media and video workers used per wall-clock second, over the cores it
// declares (NodeRegistration::capacity_cores): 0 idle, 1.0 every declared core busy.
struct NodeLoadReport {
  double stress = 0;
  uint64_t conferences = 0;
  uint64_t participants = 0;
  uint64_t audio_encoders = 0;  // Opus encoders open over all mixes (one per Opus participant + one shared)
  uint64_t video_encoders = 0;  // x264 encoders open (one per conference with video)
  double packets_in_per_s = 0;
  double packets_out_per_s = 0;
  uint64_t max_tick_lateness_us = 0;  // the worst audio mixer tick lateness in the last period
  uint64_t late_ticks = 0;            // audio ticks late so far (cumulative)
  bool draining = false;              // takes no new conferences
  bool drained = false;               // draining and its last conference has ended

  friend bool operator==(const NodeLoadReport&, const NodeLoadReport&) = default;
};

// A node as it registers itself: who it is, where its media and control API are, what it can take.
struct NodeRegistration {
  std::string id;           // unique in the cluster; [A-Za-z0-9._-], 1..64 characters
  std::string media_ip;     // where participants send media
  std::string control_url;  // its REST control API, "http://IP:PORT"
  std::vector<std::pair<std::string, std::string>> labels;  // e.g. region=eu-west, zone=a (sorted by key)
  double capacity_cores = 1;      // the cores its stress is measured against
  uint64_t max_conferences = 0;
  uint64_t max_participants = 0;  // participants its media port range has room for

  friend bool operator==(const NodeRegistration&, const NodeRegistration&) = default;
};

// kUnhealthy (cluster only): registered, but without a valid load report (starting, or publishing
// nonsense): placement skips it.
enum class NodeState : uint8_t { kUp, kDraining, kDrained, kUnhealthy };
std::string_view to_string(NodeState state);

struct NodeInfo {
  NodeRegistration registration;
  NodeLoadReport load;
  NodeState state = NodeState::kUp;
};

}  // namespace confab::allocator
