// ConferenceVideo: one conference's video on its video worker — every shown sender's H.264
// depacketized and decoded once, the layout composited, encoded once with x264 and sent to every
// receiver with its own SSRC and sequence numbers.
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
// Every 1/fps, if any receiver is known (a video stream with a remote address, not deaf): compose,
// encode (one x264 encoder, made at the first such frame), packetize once, send to each receiver.
// A frame a little late is made up at the worker's tick rate; frame times missed by more than
// kMaxFrameBacklog periods are skipped (counted), not made up. RTP timestamps follow the
// conference's frame clock at 90 kHz, which the SRs map to the same NTP clock as the audio's.
//
// Generic NACK (RFC 4585 6.2.1), with participants whose stream has config().nack. Receive side:
// each sender's packets pass a VideoPacketBuffer that puts them back in order before the
// depacketizer; every tick its holes due a NACK go to the sender in one compound, and a
// retransmission fills the hole before the depacketizer sees a gap (no keyframe needed). Send
// side: every composite packet gets a conference-wide 64-bit index, kept in one RtpPacketHistory;
// a receiver's sequence number is its own offset + index (mod 2^16), so its NACKed sequence
// numbers map back to indexes, and the same payload goes out again with the same sequence number
// and timestamp (plain retransmission, not RFC 4588 RTX), once per RtpResendLimiter interval.
class ConferenceVideo final : public MediaListener {
 public:
  ConferenceVideo(uint64_t id, const allocator::ConferenceSettings& settings,
                  std::shared_ptr<const ActiveSpeaker> active_speaker);
  ~ConferenceVideo() override;
  ConferenceVideo(const ConferenceVideo&) = delete;
  ConferenceVideo& operator=(const ConferenceVideo&) = delete;

  uint64_t id() const { return id_; }

  // Joins `participant` with its video stream (or none). Allocates (join time).
  void add(uint64_t participant, std::unique_ptr<MediaStream> stream);
  // Leaves: its tile turns plain. Returns its stream (or null) for the caller to say BYE and
  // retire; false when unknown.
  bool remove(uint64_t participant, std::unique_ptr<MediaStream>* stream);
  void set_layout(allocator::Layout layout) { compositor_.set_layout(layout); }
  allocator::Layout layout() const { return compositor_.layout(); }
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
  // Whether its x264 encoder is open (it is made at the first frame with a receiver).
  bool has_encoder() const { return encoder_ != nullptr; }
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
  struct Member {
    std::unique_ptr<MediaStream> stream;  // null: no video (a plain tile)
    // In front of the depacketizer: reorders, and schedules NACKs when config().nack.
    std::unique_ptr<transport::VideoPacketBuffer> packet_buffer;
    std::unique_ptr<transport::H264Depacketizer> depacketizer;
    std::unique_ptr<mixer::VideoDecoder> decoder;  // made when first shown
    std::optional<uint32_t> ssrc;  // the sender's current SSRC
    bool shown = false;      // in the last frame composed: its access units are decoded
    bool shown_now = false;  // in the frame being arranged
    bool deaf = false;
    uint64_t frames_sent = 0;  // composites sent to it: the first wants an IDR
    // Its sequence number for packet index i is sequence_offset + i (mod 2^16), whether or not it
    // was sent packet i (deaf, not joined yet): a NACKed number then always maps back.
    uint16_t sequence_offset = 0;
    std::optional<uint64_t> first_index;  // the first packet index sent to it
    std::unique_ptr<transport::RtpResendLimiter> resend_limiter;  // config().nack only
    uint64_t retransmissions_sent = 0;
    transport::Clock::time_point last_keyframe_request{};
  };
  // A payload of the frame being sent, in staged_.
  struct StagedPacket {
    size_t offset = 0;
    size_t size = 0;
    bool marker = false;
  };
  // Hands a packet the buffer releases, in order, to the member's depacketizer (and decoder).
  void depacketize(Member& member, const transport::VideoBufferedPacket& packet);
  // Gives up the member's holes whose time is up and NACKs those due.
  void repair(Member& member, transport::Clock::time_point now);

  // The tiles in display order for this frame, in sources_; marks who is shown (shown_now).
  // Returns how many sources.
  size_t arrange();
  // Marks `member` shown in this frame; one not shown in the last starts decoding afresh and is
  // asked for a keyframe.
  void show(uint64_t participant, Member& member);
  void request_keyframe_if_due(Member& member, transport::Clock::time_point now);
  bool has_receiver() const;
  void produce_frame(transport::Clock::time_point frame_time);
  void send_frame(uint32_t rtp_timestamp, transport::Clock::time_point frame_time);
  static void add_member_counters(const Member& member, ConferenceVideoStats& stats);

  const uint64_t id_;
  const allocator::VideoSettings settings_;
  const std::shared_ptr<const ActiveSpeaker> active_speaker_;
  std::map<uint64_t, Member> members_;  // by ID: join order
  // Tile places: the participant in each (kFree: never used, kVacated: its participant left).
  std::array<uint64_t, mixer::kMaxTiles> places_{};
  std::vector<uint64_t> waiting_;  // joined while every place was taken, in join order

  mixer::VideoCompositor compositor_;
  std::unique_ptr<mixer::VideoEncoder> encoder_;  // made at the first frame with a receiver
  bool encoder_failed_ = false;
  transport::H264Packetizer packetizer_;
  std::vector<uint8_t> staged_;          // the frame's RTP payloads, back to back
  std::vector<StagedPacket> staged_packets_;
  std::array<mixer::TileSource, mixer::kMaxTiles> sources_{};
  // Composite payloads sent lately, by packet index; made when the first receiver with NACK
  // joins (1.5 MB that conferences without one do not need).
  std::unique_ptr<transport::RtpPacketHistory> history_;
  uint64_t next_packet_index_ = 0;
  // The last tick's time: the clock the packet buffers and resend limiters run on (see on_media).
  transport::Clock::time_point now_{};

  transport::Clock::time_point start_{};       // the frame clock's origin (first tick)
  transport::Clock::time_point next_frame_{};
  transport::Clock::duration frame_period_;
  uint32_t rtp_timestamp_base_ = 0;
  ConferenceVideoStats stats_;  // frame counters; member counters of participants gone
};

}  // namespace confab::mcu
