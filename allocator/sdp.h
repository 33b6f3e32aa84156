// SDP (RFC 8866 subset) for the control plane: parse a participant's offer into a ParticipantRequest,
// write the RFC 3264 answer, and write an SDP a plain RTP receiver (ffmpeg) can open.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "allocator/api_types.h"

namespace confab::allocator {

// Limits on what we parse; past them parse_sdp_offer answers 400 SDP_TOO_LARGE. An offer from one
// endpoint is a few KiB; the caps bound the work an untrusted body can cause.
constexpr size_t kMaxSdpSize = 64 * 1024;
constexpr size_t kMaxSdpLines = 1024;
constexpr size_t kMaxSdpMediaLines = 64;

// RFC 3264 6.1 / RFC 8866 6.7: the direction attribute, session-level or per medium.
enum class SdpDirection : uint8_t { kSendRecv, kSendOnly, kRecvOnly, kInactive };

// One m= line of the offer as the answer must echo it (RFC 3264 6: same count, same order).
struct SdpMediaLine {
  std::string media;    // "audio", "video", "application", ...
  uint16_t port = 0;    // 0: the offerer disabled this stream
  std::string proto;    // "RTP/AVP", "RTP/AVPF", "UDP/TLS/RTP/SAVPF", ...
  std::string formats;  // the offered format list, single-space separated
  SdpDirection direction = SdpDirection::kSendRecv;  // media-level, else session-level, else sendrecv
  std::optional<std::string> mid;                    // RFC 5888 a=mid, echoed in the answer
  // Which medium of SdpOffer::request this line carries; nullopt when we reject the line (port 0 in
  // the answer): unsupported codec or profile, application/, a second audio or video line, port 0,
  // a=inactive.
  std::optional<Medium> taken;
};

// What a participant's SDP offer asked for, plus what the answer must echo back.
struct SdpOffer {
  // name: s= ("" for "-" or " "); audio/video: codec and payload type of the first format of the
  // m= line with a supported rtpmap (opus/48000[/2], PCMU/8000, PCMA/8000, H264/90000; static 0
  // and 8 need none), remote = c= (media-level over session-level) + m= port, or nullopt for an
  // unspecified c= (0.0.0.0, ::: the address is learned from the first packet, RFC 4961),
  // audio_level_ext_id from a=extmap:<id> urn:ietf:params:rtp-hdrext:ssrc-audio-level (RFC 6464),
  // csrc_audio_level_ext_id from ...:csrc-audio-level (RFC 6465; then we send the speakers' levels).
  ParticipantRequest request;
  std::optional<std::string> audio_fmtp;  // a=fmtp value of the chosen audio payload type
  std::optional<std::string> video_fmtp;  // e.g. "profile-level-id=42e01f;packetization-mode=1"
  // RFC 4585 4.2 a=rtcp-fb of the chosen video payload type (or *): "nack pli" (6.3.1) and
  // "ccm fir" (RFC 5104 7.1). An offer with FIR and no PLI gets FIR (request.video->fir); the
  // answer repeats both as offered, since we accept either from the participant. A plain "nack"
  // sets request.video->nack and is answered with "nack".
  bool video_pli = false;
  bool video_fir = false;
  std::string origin_session_id;          // o= sess-id, as text (digits)
  std::vector<SdpMediaLine> media;        // every m= line, in order
};

// Parses an offer. Never throws; lines end in CRLF or LF. Errors (all status 400):
// SDP_TOO_LARGE past the limits above; NO_SUPPORTED_MEDIA when no m= line can be taken (the
// message lists what was offered); BAD_SDP with "line N: problem" for anything malformed,
// including a c= with a non-IN network type or a hostname (we do no name lookups).
ApiResult<SdpOffer> parse_sdp_offer(std::string_view text);

// The RFC 3264 answer to `offer`: one m= line per offered line, in order. A line we take gets the
// port, payload type and SSRC of the matching stream of `answer` (ParticipantInfo::audio/video;
// its `local` IP goes into o= and c=), a=rtpmap, the offered a=fmtp, a=rtcp and a=rtcp-mux (our
// RTCP shares the RTP port), the direction complementing the offer's, a=ssrc cname, and the
// offered audio-level a=extmap lines (RFC 6464, RFC 6465) with their ids. Other lines, and taken lines whose stream `answer`
// lacks, get port 0 with their offered format list. `session_version` is o='s version (RFC 3264 8:
// increment it for each new answer in the session).
std::string write_sdp_answer(const SdpOffer& offer, const ParticipantInfo& answer, uint64_t session_id,
                             uint64_t session_version = 1);

// An SDP describing what the MCU sends to `participant`, for a receiver such as
// `ffmpeg -protocol_whitelist file,udp,rtp -i x.sdp`: c= and m= port are the participant's remote
// address (where the MCU sends), a=rtpmap (and for H.264 packetization-mode=1), a=rtcp-mux,
// a=recvonly. Media without a stream are left out. Errors: 409 NO_REMOTE when a stream's remote
// is not known yet, 409 NO_MEDIA when the participant has no stream at all.
ApiResult<std::string> write_receiver_sdp(const ParticipantInfo& participant, uint64_t session_id);

std::string_view to_string(SdpDirection direction);

}  // namespace confab::allocator
