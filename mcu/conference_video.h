// ConferenceVideo: one conference's video on its video worker — every shown sender's H.264
// depacketized and decoded once, composited and encoded once per output (layout and size) with
// x264, and sent to each of the output's receivers with its own SSRC and sequence numbers.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mcu/active_speaker.h"
#include "mcu/media_stream.h"
#include "mixer/video_compositor.h"
#include "mixer/video_decoder.h"
#include "mixer/video_encoder.h"
#include "transport/h264_depacketizer.h"
#include "transport/h264_packetizer.h"
#include "transport/rtp_packet_history.h"
#include "transport/rtp_resend_limiter.h"
#include "transport/video_packet_buffer.h"

namespace confab::mcu {

// Totals over the conference's life, participants gone included.
struct ConferenceVideoStats {
  uint64_t frames = 0;          // composites encoded and sent
  uint64_t frames_skipped = 0;  // frame times dropped because the worker fell far behind (not real time)
  uint64_t keyframes = 0;       // IDRs among the frames
  uint64_t encode_errors = 0;
  uint64_t bytes_encoded = 0;
  uint64_t scales = 0;          // tiles rescaled (a picture changed)
  uint64_t access_units = 0;    // whole pictures depacketized from senders
  uint64_t incomplete = 0;      // pictures dropped for missing or malformed packets
  uint64_t malformed = 0;       // payloads dropped as malformed or unsupported
  uint64_t frames_decoded = 0;
  uint64_t decode_errors = 0;
  uint64_t keyframe_requests_sent = 0;      // PLI/FIR to senders
  uint64_t keyframe_requests_received = 0;  // PLI/FIR from receivers
  uint64_t nacks_sent = 0;            // RFC 4585 generic NACKs to senders
  uint64_t packets_recovered = 0;     // senders' lost packets back after a NACK
  uint64_t nacks_received = 0;        // RFC 4585 generic NACKs from receivers about the composite
  uint64_t retransmissions_sent = 0;  // composite packets resent on receivers' NACKs

  ConferenceVideoStats& operator+=(const ConferenceVideoStats& o);
};

// The video worker's part of a conference. Participants join it with a video stream or without
// one (an audio-only participant still has a tile, plain grey). Tiles keep their places: a
// participant takes the first free tile when it joins and keeps it; when it leaves, the tile shows
// plain grey until the next participant takes it. Grids show the tiles in that order; 1x1 shows
// the active speaker (from the audio mixer) alone; speaker_thumbnails shows it large and the
// others in tile order. Only senders shown are decoded; one that comes into view is asked for a
// keyframe at once.
//
// Outputs: a receiver sees the conference's layout at the conference's size, or its own layout
// and/or size (allocator::VideoView). Each distinct (layout, width, height) that at least one
// receiver sees is one output: a compositor, an x264 encoder, a packetizer and a packet history,
// shared by its receivers; the last receiver to leave an output destroys it. Receivers that follow
// the conference's layout move with set_layout(); an output that only such receivers see changes
// layout in place (its encoder and sequence numbers go on), as the one output of a conference
// without per-receiver views always does. A sender is decoded once however many outputs show it.
//
// Every 1/fps, for each output with a known receiver (a video stream with a remote address, not
// deaf): compose, encode (its x264 encoder is made at the first such frame), packetize once, send
// to each of its receivers.
// A frame a little late is made up at the worker's tick rate; frame times missed by more than
// kMaxFrameBacklog periods are skipped (counted), not made up. RTP timestamps follow the
// conference's frame clock at 90 kHz, which the SRs map to the same NTP clock as the audio's.
//
// Generic NACK (RFC 4585 6.2.1), with participants whose stream has config().nack. Receive side:
// each sender's packets pass a VideoPacketBuffer that puts them back in order before the
// depacketizer; every tick its holes due a NACK go to the sender in one compound, and a
// retransmission fills the hole before the depacketizer sees a gap (no keyframe needed). Send
// side: every packet of an output's composite gets the output's next 64-bit index, kept in the
// output's RtpPacketHistory; a receiver's sequence number is its own offset + its output's index
// (mod 2^16), so its NACKed sequence numbers map back to indexes, and the same payload goes out
// again with the same sequence number and timestamp (plain retransmission, not RFC 4588 RTX),
// once per RtpResendLimiter interval. A receiver moved to another output has its offset rebased
// so that its sequence numbers run on without a jump, and gets an IDR of its new output first.
class ConferenceVideo final : public MediaListener {
 public:
  ConferenceVideo(uint64_t id, const allocator::ConferenceSettings& settings,
                  std::shared_ptr<const ActiveSpeaker> active_speaker);
  ~ConferenceVideo() override;
  ConferenceVideo(const ConferenceVideo&) = delete;
  ConferenceVideo& operator=(const ConferenceVideo&) = delete;

  uint64_t id() const { return id_; }

  // Joins `participant` with its video stream (or none), seeing `view` (default: the
  // conference's layout and size). Allocates (join time); `view` must be valid (allocator::validate).
  void add(uint64_t participant, std::unique_ptr<MediaStream> stream, const allocator::VideoView& view = {});
  // Leaves: its tile turns plain. Returns its stream (or null) for the caller to say BYE and
  // retire; false when unknown.
  bool remove(uint64_t participant, std::unique_ptr<MediaStream>* stream);
  // The conference's layout: moves every receiver without a layout of its own. Allocates when an
  // output is made (control time).
  void set_layout(allocator::Layout layout);
  allocator::Layout layout() const { return layout_; }
  // A receiver's own layout from now on (nullopt: follow the conference's again); its size stays.
  // False when `participant` has no video stream.
  bool set_receiver_layout(uint64_t participant, std::optional<allocator::Layout> layout);
  // Participants with a tile (or waiting for one), with video or without.
  size_t participant_count() const { return members_.size(); }
  void set_deaf(uint64_t participant, bool deaf);

  void on_media(uint64_t participant, const transport::RtpPacket& packet,
                transport::Clock::time_point arrival) override;
  void on_keyframe_request(uint64_t participant) override;
  void on_nack(uint64_t participant, std::span<const uint16_t> seqs) override;

  // The worker's tick: keyframe requests to senders, RTCP reports, and the frame if one is due.
  void tick(transport::Clock::time_point now);

  ConferenceVideoStats stats() const;
  // Outputs (distinct layout and size seen by a receiver), and their x264 encoders open (each is
  // made at its output's first frame with a receiver).
  size_t output_count() const { return outputs_.size(); }
  size_t encoder_count() const;
  // `participant`'s video stream and how it is handled; nullopt without one.
  std::optional<allocator::StreamInfo> stream_info(uint64_t participant) const;
  // Every stream, for the worker's totals and shutdown.
  template <typename Fn>
  void for_each_stream(Fn&& fn) const {
    for (const auto& [id, member] : members_) {
      if (member.stream) fn(*member.stream);
    }
  }
  template <typename Fn>
  void for_each_stream(Fn&& fn) {
    for (auto& [id, member] : members_) {
      if (member.stream) fn(*member.stream);
    }
  }

 private:
  // What an output shows; its map key.
  struct OutputKey {
    allocator::Layout layout = allocator::Layout::k2x2;
    uint32_t width = 0;
    uint32_t height = 0;
    friend auto operator<=>(const OutputKey&, const OutputKey&) = default;
  };
  // A payload of the frame being sent, in Output::staged.
  struct StagedPacket {
    size_t offset = 0;
    size_t size = 0;
    bool marker = false;
  };
  // One composite and everything that sends it.
  struct Output {
    Output(const OutputKey& output_key, const allocator::VideoSettings& conference);
    OutputKey key;
    uint32_t bitrate = 0;  // bit/s
    mixer::VideoCompositor compositor;
    std::unique_ptr<mixer::VideoEncoder> encoder;  // made at the first frame with a receiver
    bool encoder_failed = false;
    transport::H264Packetizer packetizer;
    std::vector<uint8_t> staged;  // the frame's RTP payloads, back to back
    std::vector<StagedPacket> staged_packets;
    std::array<mixer::TileSource, mixer::kMaxTiles> sources{};
    size_t source_count = 0;
    bool active = false;  // has a receiver this frame: composed and sent
    // Payloads sent lately, by packet index; made when the first receiver with NACK joins it
    // (1.5 MB that outputs without one do not need).
    std::unique_ptr<transport::RtpPacketHistory> history;
    uint64_t next_packet_index = 0;
    size_t receivers = 0;  // members whose output this is
    size_t followers = 0;  // among them, those following the conference's layout
  };

  struct Member {
    std::unique_ptr<MediaStream> stream;  // null: no video (a plain tile)
    allocator::VideoView view;            // what it asked to see
    Output* output = nullptr;             // with a stream: what it receives
    // In front of the depacketizer: reorders, and schedules NACKs when config().nack.
    std::unique_ptr<transport::VideoPacketBuffer> packet_buffer;
    std::unique_ptr<transport::H264Depacketizer> depacketizer;
    std::unique_ptr<mixer::VideoDecoder> decoder;  // made when first shown
    std::optional<uint32_t> ssrc;  // the sender's current SSRC
    bool shown = false;      // in the last frame composed: its access units are decoded
    bool shown_now = false;  // in the frame being arranged
    bool deaf = false;
    uint64_t frames_sent = 0;  // composites sent to it: the first wants an IDR
    // Its sequence number for its output's packet index i is sequence_offset + i (mod 2^16),
    // whether or not it was sent packet i (deaf, not joined yet): a NACKed number then always maps
    // back.
    uint16_t sequence_offset = 0;
    std::optional<uint64_t> first_index;  // the first packet index of its output sent to it
    // Moved to another output and not sent anything from it yet: the sequence number it is to get
    // next, where sequence_offset is rebased at its first packet.
    std::optional<uint16_t> next_sequence;
    std::unique_ptr<transport::RtpResendLimiter> resend_limiter;  // config().nack only
    uint64_t retransmissions_sent = 0;
    transport::Clock::time_point last_keyframe_request{};
  };
  // Hands a packet the buffer releases, in order, to the member's depacketizer (and decoder).
  void depacketize(Member& member, const transport::VideoBufferedPacket& packet);
  // Gives up the member's holes whose time is up and NACKs those due.
  void repair(Member& member, transport::Clock::time_point now);

  OutputKey key_for(const Member& member) const;
  // Points `member` (with a stream) at the output for `key`, made if missing; leaves its old one
  // (destroyed if it was the last receiver), rebasing its sequence numbers to run on.
  void attach(Member& member, const OutputKey& key);
  void detach(Member& member);
  static bool receives(const Member& member);

  // The output's tiles in display order for this frame, in output.sources; marks who is shown
  // (shown_now).
  void arrange(Output& output);
  // Marks `member` shown in this frame; one not shown in the last starts decoding afresh and is
  // asked for a keyframe.
  void show(uint64_t participant, Member& member);
  void request_keyframe_if_due(Member& member, transport::Clock::time_point now);
  void produce_frame(transport::Clock::time_point frame_time);
  void encode_and_send(Output& output, uint32_t rtp_timestamp, transport::Clock::time_point frame_time);
  void send_frame(Output& output, uint32_t rtp_timestamp, bool keyframe, transport::Clock::time_point frame_time);
  static void add_member_counters(const Member& member, ConferenceVideoStats& stats);

  const uint64_t id_;
  const allocator::VideoSettings settings_;
  const std::shared_ptr<const ActiveSpeaker> active_speaker_;
  std::map<uint64_t, Member> members_;  // by ID: join order
  // Tile places: the participant in each (kFree: never used, kVacated: its participant left).
  std::array<uint64_t, mixer::kMaxTiles> places_{};
  std::vector<uint64_t> waiting_;  // joined while every place was taken, in join order

  allocator::Layout layout_;  // the conference's
  // By what they show; a member points at its output, so each stays where it was made.
  std::map<OutputKey, std::unique_ptr<Output>> outputs_;
  // The last tick's time: the clock the packet buffers and resend limiters run on (see on_media).
  transport::Clock::time_point now_{};

  transport::Clock::time_point start_{};       // the frame clock's origin (first tick)
  transport::Clock::time_point next_frame_{};
  transport::Clock::duration frame_period_;
  uint32_t rtp_timestamp_base_ = 0;
  ConferenceVideoStats stats_;  // frame counters; counters of participants and outputs gone
};

}  // namespace confab::mcu
