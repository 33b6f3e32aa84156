// ConferenceVideo: depacketizer -> decoder (shown senders) -> per output: compositor -> x264 -> packetizer -> per-receiver RTP.
#include "mcu/conference_video.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "transport/time_units.h"

namespace confab::mcu {

namespace {

constexpr uint64_t kFreePlace = 0;                // never taken (participant IDs start at 1)
constexpr uint64_t kVacatedPlace = UINT64_MAX;    // its participant left: a plain tile
constexpr uint32_t kVideoClockRate = 90000;       // RFC 6184 8.2.1
// A sender still without a decodable picture is asked again this often: long enough for a
// keyframe to arrive over a lossy path (and not to make a sender that ignores us spend a keyframe
// per frame), short enough that a frozen tile recovers within a second.
constexpr auto kKeyframeRequestInterval = std::chrono::milliseconds(500);
// Frame times a conference may fall behind before it skips them: 100 ms at 30 fps, longer than
// an IDR's encode on a loaded core, shorter than a receiver's jitter buffer would tolerate.
constexpr int kMaxFrameBacklog = 3;
// Knuth's multiplicative hash (2^32 / golden ratio): spreads consecutive IDs and SSRCs apart.
constexpr uint32_t kFibonacciHash = 0x9E3779B9u;
constexpr unsigned kHalfWordBits = 16;

// A sender that negotiated generic NACK: the buffer's defaults (NACK after 5 ms, retry every
// 50 ms, give up after 150 ms), about what a browser's receiver does.
transport::VideoPacketBufferOptions nack_buffer_options() { return transport::VideoPacketBufferOptions{}; }

// A sender without NACK (plain ffmpeg) does not retransmit, so a hole is only ever filled by a
// packet that was reordered on the way. Reordering resolves within a few ms (a Wi-Fi retry, two
// paths), and without the buffer the depacketizer would take each reordering for a loss and cost
// a keyframe. So the buffer stays, but never NACKs and waits only this long for a hole before the
// depacketizer sees the gap: packets in order pass at once, and a real loss costs 20 ms more
// before its keyframe request (which takes a round trip and an IDR's encode anyway).
constexpr auto kReorderOnlyWait = std::chrono::milliseconds(20);
// 128 packets within 20 ms is 60 Mbit/s in 1200-byte packets: ample, at a quarter of the memory.
constexpr uint32_t kReorderOnlyCapacity = 128;

transport::VideoPacketBufferOptions reorder_only_buffer_options() {
  transport::VideoPacketBufferOptions o;
  o.capacity = kReorderOnlyCapacity;
  o.max_retries = 0;
  o.max_wait = kReorderOnlyWait;
  return o;
}

mixer::CompositorSettings compositor_settings(allocator::Layout layout, uint32_t width, uint32_t height) {
  mixer::CompositorSettings c;
  c.width = static_cast<int>(width);
  c.height = static_cast<int>(height);
  c.layout = layout;
  return c;
}

// Another size than the conference's gets the conference's bits per pixel: the same quality, and
// a receiver that asks for 640x360 of a 1280x720 conference (a phone, a thin link) gets a quarter
// of the bitrate rather than as many bits spent on a quarter of the pixels.
uint32_t output_bitrate(const allocator::VideoSettings& conference, uint32_t width, uint32_t height) {
  const uint64_t pixels = uint64_t{conference.width} * conference.height;
  if (pixels == 0) return conference.bitrate;
  const uint64_t scaled = uint64_t{conference.bitrate} * width * height / pixels;
  return static_cast<uint32_t>(std::clamp<uint64_t>(scaled, allocator::kMinVideoBitrate, allocator::kMaxVideoBitrate));
}

// The API's default picture is the encoder's and the compositor's.
static_assert(static_cast<int>(allocator::VideoSettings{}.width) == mixer::kDefaultEncodeWidth);
static_assert(static_cast<int>(allocator::VideoSettings{}.height) == mixer::kDefaultEncodeHeight);
static_assert(static_cast<int>(allocator::VideoSettings{}.fps) == mixer::kDefaultEncodeFps);
static_assert(static_cast<int>(allocator::VideoSettings{}.bitrate / 1000) == mixer::kDefaultEncodeBitrateKbps);

}  // namespace

ConferenceVideoStats& ConferenceVideoStats::operator+=(const ConferenceVideoStats& o) {
  frames += o.frames;
  frames_skipped += o.frames_skipped;
  keyframes += o.keyframes;
  encode_errors += o.encode_errors;
  bytes_encoded += o.bytes_encoded;
  scales += o.scales;
  access_units += o.access_units;
  incomplete += o.incomplete;
  malformed += o.malformed;
  frames_decoded += o.frames_decoded;
  decode_errors += o.decode_errors;
  keyframe_requests_sent += o.keyframe_requests_sent;
  keyframe_requests_received += o.keyframe_requests_received;
  nacks_sent += o.nacks_sent;
  packets_recovered += o.packets_recovered;
  nacks_received += o.nacks_received;
  retransmissions_sent += o.retransmissions_sent;
  return *this;
}

ConferenceVideo::Output::Output(const OutputKey& output_key, const allocator::VideoSettings& conference)
    : key(output_key),
      bitrate(output_bitrate(conference, output_key.width, output_key.height)),
      compositor(compositor_settings(output_key.layout, output_key.width, output_key.height)) {}

ConferenceVideo::ConferenceVideo(uint64_t id, const allocator::ConferenceSettings& settings,
                                 std::shared_ptr<const ActiveSpeaker> active_speaker)
    : id_(id),
      settings_(settings.video),
      active_speaker_(std::move(active_speaker)),
      layout_(settings.layout),
      frame_period_(std::chrono::duration_cast<transport::Clock::duration>(std::chrono::nanoseconds(
          transport::kNanosPerSecond / std::max<uint32_t>(settings.video.fps, 1)))),
      rtp_timestamp_base_(static_cast<uint32_t>(id * kFibonacciHash)) {}

ConferenceVideo::~ConferenceVideo() {
  for (auto& [id, member] : members_) {
    if (member.stream) member.stream->set_listener(nullptr, 0);
  }
}

void ConferenceVideo::add(uint64_t participant, std::unique_ptr<MediaStream> stream, const allocator::VideoView& view) {
  if (members_.contains(participant)) {
    std::unique_ptr<MediaStream> replaced;
    remove(participant, &replaced);  // a caller bug; what it held is let go properly
  }
  Member member;
  member.view = view;
  if (stream) {
    const bool nack = stream->config().nack;
    member.packet_buffer =
        std::make_unique<transport::VideoPacketBuffer>(nack ? nack_buffer_options() : reorder_only_buffer_options());
    member.depacketizer = std::make_unique<transport::H264Depacketizer>();
    // RFC 3550 5.1: the initial sequence number should be random (unpredictable to an attacker
    // who cannot see the stream); a hash of the stream's own SSRC differs per receiver.
    member.sequence_offset = static_cast<uint16_t>((stream->config().ssrc * kFibonacciHash) >> kHalfWordBits);
    if (nack) member.resend_limiter = std::make_unique<transport::RtpResendLimiter>();
    stream->set_listener(this, participant);
    member.stream = std::move(stream);
  }
  Member& joined = members_.emplace(participant, std::move(member)).first->second;
  if (joined.stream) attach(joined, key_for(joined));
  const auto free = std::find_if(places_.begin(), places_.end(),
                                 [](uint64_t p) { return p == kFreePlace || p == kVacatedPlace; });
  if (free != places_.end()) {
    *free = participant;
  } else {
    waiting_.push_back(participant);
  }
}

bool ConferenceVideo::remove(uint64_t participant, std::unique_ptr<MediaStream>* stream) {
  const auto it = members_.find(participant);
  if (it == members_.end()) return false;
  add_member_counters(it->second, stats_);
  detach(it->second);
  if (it->second.stream) it->second.stream->set_listener(nullptr, 0);
  *stream = std::move(it->second.stream);
  members_.erase(it);
  std::erase(waiting_, participant);
  const auto place = std::find(places_.begin(), places_.end(), participant);
  if (place != places_.end()) {
    if (waiting_.empty()) {
      *place = kVacatedPlace;
    } else {
      *place = waiting_.front();
      waiting_.erase(waiting_.begin());
    }
  }
  return true;
}

ConferenceVideo::OutputKey ConferenceVideo::key_for(const Member& member) const {
  return OutputKey{member.view.layout.value_or(layout_), member.view.width.value_or(settings_.width),
                   member.view.height.value_or(settings_.height)};
}

bool ConferenceVideo::receives(const Member& member) {
  return member.stream && member.stream->remote() && !member.deaf;
}

void ConferenceVideo::attach(Member& member, const OutputKey& key) {
  Output* old = member.output;
  if (old && old->key == key) return;
  auto it = outputs_.find(key);
  if (it == outputs_.end()) it = outputs_.emplace(key, std::make_unique<Output>(key, settings_)).first;
  Output& output = *it->second;
  if (old) {
    // Its sequence numbers run on from where they were on the old output (RFC 3550 5.1: a jump
    // would read as loss): rebased when its first packet of the new one goes out (send_frame).
    // Packets of the old output are not its to NACK any more, and its first picture from the new
    // one must be an IDR (another encoder: new SPS, maybe another size).
    if (!member.next_sequence) {
      member.next_sequence = static_cast<uint16_t>(member.sequence_offset + old->next_packet_index);
    }
    member.first_index.reset();
    member.frames_sent = 0;
    if (member.resend_limiter) member.resend_limiter = std::make_unique<transport::RtpResendLimiter>();
    detach(member);
  }
  member.output = &output;
  ++output.receivers;
  output.followers += member.view.layout ? 0 : 1;
  if (member.stream->config().nack && !output.history) output.history = std::make_unique<transport::RtpPacketHistory>();
}

void ConferenceVideo::detach(Member& member) {
  Output* output = std::exchange(member.output, nullptr);
  if (!output) return;
  --output->receivers;
  output->followers -= member.view.layout ? 0 : 1;
  if (output->receivers > 0) return;
  stats_.scales += output->compositor.counters().scales;
  outputs_.erase(output->key);  // its encoder with it
}

void ConferenceVideo::set_layout(allocator::Layout layout) {
  if (layout == layout_) return;
  layout_ = layout;
  for (auto& [id, member] : members_) {
    if (!member.output || member.view.layout) continue;
    const OutputKey key = key_for(member);
    Output& output = *member.output;
    if (output.key == key) continue;  // its output already moved
    if (output.followers == output.receivers && !outputs_.contains(key)) {
      // Only followers see it: it changes layout in place, its encoder and sequence numbers going
      // on (the one output of a conference without views of its own always does this).
      auto node = outputs_.extract(output.key);
      node.key() = key;
      output.key = key;
      output.compositor.set_layout(layout);
      outputs_.insert(std::move(node));
      continue;
    }
    attach(member, key);
  }
}

bool ConferenceVideo::set_receiver_layout(uint64_t participant, std::optional<allocator::Layout> layout) {
  const auto it = members_.find(participant);
  if (it == members_.end() || !it->second.stream) return false;
  Member& member = it->second;
  if (member.view.layout == layout) return true;
  // Counted as a follower or not by its output as it was attached; moved out and in again with
  // the new view (to the same output when the key is unchanged).
  Output* output = member.output;
  output->followers -= member.view.layout ? 0 : 1;
  member.view.layout = layout;
  output->followers += member.view.layout ? 0 : 1;
  attach(member, key_for(member));
  return true;
}

size_t ConferenceVideo::encoder_count() const {
  return static_cast<size_t>(std::count_if(outputs_.begin(), outputs_.end(),
                                           [](const auto& entry) { return entry.second->encoder != nullptr; }));
}

void ConferenceVideo::set_deaf(uint64_t participant, bool deaf) {
  const auto it = members_.find(participant);
  if (it == members_.end()) return;
  // One that hears again missed pictures its decoder needs: its next frame is an IDR, as a new
  // receiver's first is.
  if (it->second.deaf && !deaf) it->second.frames_sent = 0;
  it->second.deaf = deaf;
}

void ConferenceVideo::on_media(uint64_t participant, const transport::RtpPacket& packet,
                               transport::Clock::time_point arrival) {
  const auto it = members_.find(participant);
  if (it == members_.end()) return;
  Member& member = it->second;
  if (member.ssrc != packet.ssrc()) {
    // A new SSRC is a new stream (the client restarted): nothing of the old one continues.
    if (member.ssrc) {
      member.packet_buffer->reset();
      member.depacketizer->reset();
      if (member.decoder) member.decoder->reset();
    }
    member.ssrc = packet.ssrc();
  }
  // Holes are aged on the tick clock that expire() and collect_nacks() see (now_), not on the
  // arrival time: one clock keeps the waits consistent (and the tests' synthetic time exact); it
  // is at most one 5 ms tick behind the arrival, the reorder grace's order.
  const transport::Clock::time_point now = now_ != transport::Clock::time_point{} ? now_ : arrival;
  member.packet_buffer->insert(packet, now,
                               [&](const transport::VideoBufferedPacket& p) { depacketize(member, p); });
}

void ConferenceVideo::depacketize(Member& member, const transport::VideoBufferedPacket& packet) {
  // Holes given up before this packet show as a jump in its sequence number: the depacketizer
  // drops the picture they broke and waits for a keyframe.
  const transport::H264RtpPayload payload{packet.payload, packet.sequence_number, packet.timestamp, packet.marker};
  member.depacketizer->insert(payload, [&](const transport::H264AccessUnit& au) {
    // Decoded as it completes, only while shown; the compositor takes the latest picture.
    if (member.shown && member.decoder) member.decoder->decode(au.annexb, au.is_keyframe);
  });
}

void ConferenceVideo::repair(Member& member, transport::Clock::time_point now) {
  member.packet_buffer->expire(now, [&](const transport::VideoBufferedPacket& p) { depacketize(member, p); });
  // A hidden sender's pictures are not decoded (it is asked for a keyframe when it comes into
  // view), so repairing its stream would spend its uplink for nothing.
  if (!member.stream->config().nack || !member.shown) return;
  std::array<uint16_t, kMaxNackSeqsSent> seqs;
  const size_t count = member.packet_buffer->collect_nacks(now, seqs);
  // RFC 4585 6.2.1: one NACK names them all (PID + BLP bitmask entries).
  if (count > 0) member.stream->send_nack(std::span<const uint16_t>(seqs.data(), count));
}

void ConferenceVideo::on_keyframe_request(uint64_t participant) {
  const auto it = members_.find(participant);
  if (it == members_.end() || !it->second.output) return;
  // Its own output's encoder only: receivers of the others lost nothing. The encoder coalesces
  // requests and keeps IDRs at least min_idr_interval_ms apart.
  if (it->second.output->encoder) it->second.output->encoder->request_keyframe();
}

void ConferenceVideo::on_nack(uint64_t participant, std::span<const uint16_t> seqs) {
  const auto it = members_.find(participant);
  if (it == members_.end() || !it->second.output) return;
  Member& member = it->second;
  const Output& output = *member.output;
  if (output.next_packet_index == 0 || !output.history) return;
  if (!member.resend_limiter || !member.first_index || member.deaf) return;
  const uint64_t newest = output.next_packet_index - 1;
  for (const uint16_t seq : seqs) {
    const auto index = transport::RtpPacketHistory::index_for_sequence(seq, member.sequence_offset, newest);
    // Packets from before its first frame were never its to lose.
    if (!index || *index < *member.first_index) continue;
    // Gone from the history: too old to be worth repairing; the receiver's own give-up leads to a
    // keyframe request.
    const auto packet = output.history->find(*index);
    if (!packet) continue;
    if (!member.resend_limiter->should_resend(*index, now_)) continue;
    // RFC 4585 6.2.1 / RFC 3550 5.1: the same packet again in the same stream, with its sequence
    // number and timestamp (not RFC 4588 RTX). `sent_at` is the original's, so the next SR still
    // extrapolates from a matching (RTP timestamp, time) pair.
    if (member.stream->send_rtp(seq, packet->timestamp, packet->marker, {}, packet->payload, {}, packet->sent_at)) {
      ++member.retransmissions_sent;
    }
  }
}

void ConferenceVideo::tick(transport::Clock::time_point now) {
  if (start_ == transport::Clock::time_point{}) {
    start_ = now;
    next_frame_ = now;
  }
  now_ = now;
  for (auto& [id, member] : members_) {
    if (member.stream) repair(member, now);
    request_keyframe_if_due(member, now);
    if (member.stream) member.stream->on_tick(now);
  }
  if (now < next_frame_) return;
  const transport::Clock::time_point frame_time = next_frame_;
  next_frame_ += frame_period_;
  if (next_frame_ + kMaxFrameBacklog * frame_period_ <= now) {
    // Far behind (the CPU is overcommitted): drop the missed frame times rather than burst to
    // catch up. A shorter delay (an IDR, a busy moment) is made up at the worker's tick rate:
    // the frames keep their frame-clock timestamps and the receivers' jitter buffers absorb it.
    const auto missed = (now - next_frame_) / frame_period_ + 1;
    stats_.frames_skipped += static_cast<uint64_t>(missed);
    next_frame_ += missed * frame_period_;
  }
  produce_frame(frame_time);
}

void ConferenceVideo::show(uint64_t participant, Member& member) {
  if (member.shown_now) return;  // already by another output this frame
  member.shown_now = true;
  if (member.shown || !member.stream) return;
  if (member.decoder) {
    member.decoder->reset();  // it missed pictures while hidden: wait for a keyframe
  } else {
    std::string error;
    member.decoder = mixer::VideoDecoder::create(mixer::VideoDecoderSettings{}, &error);
    if (!member.decoder) {
      spdlog::error("event=video_decoder_failed conference={} participant={} reason=\"{}\"", id_, participant, error);
      return;
    }
  }
  // A newcomer to the picture needs a keyframe now, whatever it was last asked.
  member.last_keyframe_request = transport::Clock::time_point{};
}

void ConferenceVideo::request_keyframe_if_due(Member& member, transport::Clock::time_point now) {
  if (!member.shown || !member.stream || !member.decoder) return;
  if (!member.depacketizer->needs_keyframe() && !member.decoder->needs_keyframe()) return;
  if (member.last_keyframe_request != transport::Clock::time_point{} &&
      now - member.last_keyframe_request < kKeyframeRequestInterval) {
    return;
  }
  if (member.stream->send_keyframe_request()) member.last_keyframe_request = now;
}

void ConferenceVideo::arrange(Output& output) {
  const allocator::Layout layout = output.key.layout;
  const size_t tiles = mixer::tile_count(layout);
  size_t count = 0;
  const auto add = [&](uint64_t participant) {
    mixer::TileSource& source = output.sources[count++];
    source = mixer::TileSource{};
    const auto it = members_.find(participant);
    if (it == members_.end()) return;  // a vacated place: plain
    source.participant_id = participant;
    Member& member = it->second;
    show(participant, member);
    if (member.decoder && member.decoder->picture()) {
      source.picture = member.decoder->picture();
      source.generation = member.decoder->generation();
    }
  };

  const bool speaker_layout = layout == allocator::Layout::k1x1 || layout == allocator::Layout::kSpeakerThumbnails;
  uint64_t lead = kFreePlace;
  if (speaker_layout) {
    lead = active_speaker_ ? active_speaker_->get() : ActiveSpeaker::kNone;
    if (!members_.contains(lead)) {
      // No one has spoken yet (or the speaker left): the first tile's participant leads.
      const auto first =
          std::find_if(places_.begin(), places_.end(), [this](uint64_t p) { return members_.contains(p); });
      lead = first == places_.end() ? kFreePlace : *first;
    }
    if (lead != kFreePlace) add(lead);
  }
  if (layout != allocator::Layout::k1x1) {
    for (uint64_t place : places_) {
      if (count == tiles || place == kFreePlace) break;
      if (place == lead) continue;
      add(place);
    }
  }
  output.source_count = count;
}

void ConferenceVideo::produce_frame(transport::Clock::time_point frame_time) {
  // Who is shown this frame, in any output: senders that drop out of every view stop being decoded.
  for (auto& [id, member] : members_) member.shown_now = false;
  for (auto& [key, output] : outputs_) output->active = false;
  bool any = false;
  for (const auto& [id, member] : members_) {
    if (member.output && receives(member)) member.output->active = any = true;
  }
  if (any) {
    for (auto& [key, output] : outputs_) {
      if (output->active) arrange(*output);
    }
  }
  // Nobody watches: nothing is composed or decoded (senders are asked for a keyframe when someone
  // does).
  for (auto& [id, member] : members_) {
    member.shown = member.shown_now;
    request_keyframe_if_due(member, frame_time);  // newcomers to the picture: at once
  }
  if (!any) return;
  // Every output's frame has the same timestamp: one frame clock per conference.
  const auto elapsed_ticks = std::chrono::duration_cast<std::chrono::nanoseconds>(frame_time - start_).count() *
                             kVideoClockRate / transport::kNanosPerSecond;
  const uint32_t rtp_timestamp = rtp_timestamp_base_ + static_cast<uint32_t>(elapsed_ticks);
  for (auto& [key, output] : outputs_) {
    if (output->active) encode_and_send(*output, rtp_timestamp, frame_time);
  }
}

void ConferenceVideo::encode_and_send(Output& output, uint32_t rtp_timestamp, transport::Clock::time_point frame_time) {
  const mixer::VideoFrame& frame =
      output.compositor.compose(std::span<const mixer::TileSource>(output.sources.data(), output.source_count));
  if (!output.encoder) {
    if (output.encoder_failed) return;
    mixer::VideoEncoderSettings e;
    e.width = static_cast<int>(output.key.width);
    e.height = static_cast<int>(output.key.height);
    e.fps = static_cast<int>(settings_.fps);
    e.bitrate_kbps = static_cast<int>(output.bitrate / 1000);
    std::string error;
    output.encoder = mixer::VideoEncoder::create(e, &error);
    if (!output.encoder) {
      output.encoder_failed = true;  // logged once; the conference's audio and other outputs go on
      spdlog::error("event=video_encoder_failed conference={} layout={} size={}x{} reason=\"{}\"", id_,
                    allocator::to_string(output.key.layout), output.key.width, output.key.height, error);
      return;
    }
  }
  for (const auto& [id, member] : members_) {
    // A receiver's first picture must be decodable on its own.
    if (member.output == &output && member.frames_sent == 0 && receives(member)) {
      output.encoder->request_join_keyframe();
      break;
    }
  }
  const int64_t elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(frame_time - start_).count();
  const auto picture = output.encoder->encode(frame, elapsed_ms);
  if (!picture) {
    ++stats_.encode_errors;
    return;
  }
  ++stats_.frames;
  stats_.keyframes += picture->is_keyframe ? 1 : 0;
  stats_.bytes_encoded += picture->annexb.size();

  // Packetized once; each receiver gets the same payloads under its own SSRC and sequence numbers.
  output.staged.clear();
  output.staged_packets.clear();
  const auto packetized =
      output.packetizer.packetize(picture->annexb, [&output](std::span<const uint8_t> payload, bool marker) {
        output.staged_packets.push_back(StagedPacket{output.staged.size(), payload.size(), marker});
        output.staged.insert(output.staged.end(), payload.begin(), payload.end());
      });
  if (!packetized.ok()) {
    ++stats_.encode_errors;
    return;
  }
  send_frame(output, rtp_timestamp, picture->is_keyframe, frame_time);
}

void ConferenceVideo::send_frame(Output& output, uint32_t rtp_timestamp, bool keyframe,
                                 transport::Clock::time_point frame_time) {
  // Each packet's index is taken once and shared by the output's receivers; the payload is kept once.
  const uint64_t first_index = output.next_packet_index;
  output.next_packet_index += output.staged_packets.size();
  if (output.history) {
    for (size_t i = 0; i < output.staged_packets.size(); ++i) {
      const StagedPacket& packet = output.staged_packets[i];
      output.history->store(first_index + i, std::span<const uint8_t>(output.staged.data() + packet.offset, packet.size),
                            rtp_timestamp, packet.marker, frame_time);
    }
  }
  for (auto& [id, member] : members_) {
    if (member.output != &output || !receives(member)) continue;
    // Its first picture (joined, hearing again, moved here) is an IDR: P-frames before it would
    // only be undecodable (the encoder holds a newcomer's IDR up to min_join_idr_interval_ms).
    if (member.frames_sent == 0 && !keyframe) continue;
    if (!member.first_index) member.first_index = first_index;
    if (member.next_sequence) {
      member.sequence_offset = static_cast<uint16_t>(*member.next_sequence - first_index);
      member.next_sequence.reset();
    }
    for (size_t i = 0; i < output.staged_packets.size(); ++i) {
      const StagedPacket& packet = output.staged_packets[i];
      // RFC 3550 5.1: mod 2^16, by the uint16_t conversion.
      const auto sequence = static_cast<uint16_t>(member.sequence_offset + first_index + i);
      member.stream->send_rtp(sequence, rtp_timestamp, packet.marker, {},
                              std::span<const uint8_t>(output.staged.data() + packet.offset, packet.size), {},
                              frame_time);
    }
    ++member.frames_sent;
  }
}

void ConferenceVideo::add_member_counters(const Member& member, ConferenceVideoStats& stats) {
  if (!member.stream) return;
  const transport::H264DepacketizerCounters& d = member.depacketizer->counters();
  stats.access_units += d.aus_complete;
  stats.incomplete += d.aus_dropped_loss + d.aus_dropped_oversize;
  for (uint64_t n : d.malformed) stats.malformed += n;
  stats.malformed += d.unsupported_packets;
  if (member.decoder) {
    stats.frames_decoded += member.decoder->counters().decoded;
    stats.decode_errors += member.decoder->counters().errors;
  }
  stats.keyframe_requests_sent += member.stream->keyframe_requests_sent();
  stats.keyframe_requests_received += member.stream->keyframe_requests_received();
  stats.nacks_sent += member.stream->nacks_sent();
  stats.packets_recovered += member.packet_buffer->counters().recovered;
  stats.nacks_received += member.stream->nacks_received();
  stats.retransmissions_sent += member.retransmissions_sent;
}

ConferenceVideoStats ConferenceVideo::stats() const {
  ConferenceVideoStats total = stats_;
  for (const auto& [key, output] : outputs_) total.scales += output->compositor.counters().scales;
  for (const auto& [id, member] : members_) add_member_counters(member, total);
  return total;
}

std::optional<allocator::StreamInfo> ConferenceVideo::stream_info(uint64_t participant) const {
  const auto it = members_.find(participant);
  if (it == members_.end() || !it->second.stream) return std::nullopt;
  const Member& member = it->second;
  allocator::StreamInfo info = member.stream->info();
  ConferenceVideoStats counters;
  add_member_counters(member, counters);
  allocator::VideoPlayout v;
  v.access_units = counters.access_units;
  v.keyframes = member.depacketizer->counters().keyframes;
  v.incomplete = counters.incomplete;
  v.malformed = counters.malformed;
  v.waiting_keyframe = member.depacketizer->counters().aus_dropped_waiting_keyframe +
                       (member.decoder ? member.decoder->counters().waiting_keyframe : 0);
  v.frames_decoded = counters.frames_decoded;
  v.decode_errors = counters.decode_errors;
  v.keyframe_requests_sent = counters.keyframe_requests_sent;
  v.keyframe_requests_received = counters.keyframe_requests_received;
  v.nacks_sent = counters.nacks_sent;
  v.packets_recovered = counters.packets_recovered;
  v.nacks_received = counters.nacks_received;
  v.retransmissions_sent = counters.retransmissions_sent;
  v.visible = member.shown;
  if (member.decoder && member.decoder->picture()) {
    v.width = static_cast<uint32_t>(member.decoder->picture()->width);
    v.height = static_cast<uint32_t>(member.decoder->picture()->height);
  }
  info.stats.video = v;
  if (const Output* output = member.output) {
    allocator::VideoOutputInfo o;
    o.layout = output->key.layout;
    o.own_layout = member.view.layout.has_value();
    o.width = output->key.width;
    o.height = output->key.height;
    o.bitrate = output->bitrate;
    o.receivers = output->receivers;
    info.output = o;
  }
  return info;
}

}  // namespace confab::mcu
