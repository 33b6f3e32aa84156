// RtcpBuilder: each packet's size is computed and checked before a byte is written.
#include "transport/rtcp_builder.h"

#include <algorithm>
#include <cassert>

#include "transport/bytes.h"
#include "transport/rtcp_bye.h"
#include "transport/rtcp_feedback.h"
#include "transport/rtcp_fir.h"
#include "transport/rtcp_nack.h"
#include "transport/rtcp_receiver_report.h"
#include "transport/rtcp_sdes.h"
#include "transport/rtcp_sender_report.h"

namespace confab::transport {

namespace {

constexpr size_t round_up_to_word(size_t n) {
  return (n + kRtcpWordSize - 1) / kRtcpWordSize * kRtcpWordSize;
}

// Writes sender SSRC and media SSRC after the common header.
void write_feedback_ssrcs(std::span<uint8_t> p, uint32_t sender_ssrc, uint32_t media_ssrc) {
  const auto body = p.subspan(kRtcpHeaderSize);
  store_be32(body, kFeedbackSenderSsrcOffset, sender_ssrc);
  store_be32(body, kFeedbackMediaSsrcOffset, media_ssrc);
}

}  // namespace

std::span<uint8_t> RtcpBuilder::begin_packet(RtcpPacketType type, uint8_t count, size_t size) {
  assert(size % kRtcpWordSize == 0 && size >= kRtcpHeaderSize);
  if (count > kRtcpMaxCount) return {};
  if (size / kRtcpWordSize - 1 > kRtcpMaxLengthWords) return {};
  if (out_.size() - size_ < size) return {};
  const auto p = out_.subspan(size_, size);
  write_rtcp_header(p, 0, type, count, size / kRtcpWordSize - 1);
  size_ += size;
  return p;
}

bool RtcpBuilder::add_sender_report(const SenderInfo& info, std::span<const ReportBlock> blocks) {
  if (blocks.size() > kRtcpMaxCount) return false;
  const size_t size = kRtcpHeaderSize + kSenderInfoSize + blocks.size() * kReportBlockSize;
  const auto p = begin_packet(RtcpPacketType::kSenderReport, static_cast<uint8_t>(blocks.size()), size);
  if (p.empty()) return false;
  const auto body = p.subspan(kRtcpHeaderSize);
  store_be32(body, kSrSenderSsrcOffset, info.ssrc);
  store_be64(body, kSrNtpOffset, info.ntp_timestamp);
  store_be32(body, kSrRtpTimestampOffset, info.rtp_timestamp);
  store_be32(body, kSrPacketCountOffset, info.packet_count);
  store_be32(body, kSrOctetCountOffset, info.octet_count);
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i].write(body, kSenderInfoSize + i * kReportBlockSize);
  return true;
}

bool RtcpBuilder::add_receiver_report(uint32_t sender_ssrc, std::span<const ReportBlock> blocks) {
  if (blocks.size() > kRtcpMaxCount) return false;
  const size_t size = kRtcpHeaderSize + kReceiverReportFixedSize + blocks.size() * kReportBlockSize;
  const auto p = begin_packet(RtcpPacketType::kReceiverReport, static_cast<uint8_t>(blocks.size()), size);
  if (p.empty()) return false;
  const auto body = p.subspan(kRtcpHeaderSize);
  store_be32(body, kRrSenderSsrcOffset, sender_ssrc);
  for (size_t i = 0; i < blocks.size(); ++i) {
    blocks[i].write(body, kReceiverReportFixedSize + i * kReportBlockSize);
  }
  return true;
}

bool RtcpBuilder::add_sdes_cname(uint32_t ssrc, std::string_view cname) {
  if (cname.size() > kSdesMaxItemLength) return false;
  // RFC 3550 6.5: SSRC, item, then at least one null octet, padded to a word boundary.
  const size_t chunk =
      round_up_to_word(kSdesChunkSsrcSize + kSdesItemHeaderSize + cname.size() + kSdesEndSize);
  const auto p = begin_packet(RtcpPacketType::kSdes, 1, kRtcpHeaderSize + chunk);
  if (p.empty()) return false;
  const auto body = p.subspan(kRtcpHeaderSize);
  store_be32(body, 0, ssrc);  // the chunk's SSRC opens the body
  size_t off = kSdesChunkSsrcSize;
  store_u8(body, off, static_cast<uint8_t>(SdesItemType::kCname));
  store_u8(body, off + kSdesItemLengthOffset, static_cast<uint8_t>(cname.size()));
  off += kSdesItemHeaderSize;
  std::copy(cname.begin(), cname.end(), body.begin() + static_cast<std::ptrdiff_t>(off));
  off += cname.size();
  std::fill(body.begin() + static_cast<std::ptrdiff_t>(off), body.end(), uint8_t{0});
  return true;
}

bool RtcpBuilder::add_bye(std::span<const uint32_t> ssrcs, std::string_view reason) {
  if (ssrcs.size() > kRtcpMaxCount || reason.size() > kByeMaxReasonLength) return false;
  const size_t reason_size = reason.empty() ? 0 : round_up_to_word(kByeReasonLengthSize + reason.size());
  const size_t size = kRtcpHeaderSize + ssrcs.size() * kByeSsrcSize + reason_size;
  const auto p = begin_packet(RtcpPacketType::kBye, static_cast<uint8_t>(ssrcs.size()), size);
  if (p.empty()) return false;
  const auto body = p.subspan(kRtcpHeaderSize);
  for (size_t i = 0; i < ssrcs.size(); ++i) store_be32(body, i * kByeSsrcSize, ssrcs[i]);
  if (!reason.empty()) {
    size_t off = ssrcs.size() * kByeSsrcSize;
    store_u8(body, off, static_cast<uint8_t>(reason.size()));
    off += kByeReasonLengthSize;
    std::copy(reason.begin(), reason.end(), body.begin() + static_cast<std::ptrdiff_t>(off));
    off += reason.size();
    // RFC 3550 6.6: the reason is null-padded to the next word boundary.
    std::fill(body.begin() + static_cast<std::ptrdiff_t>(off), body.end(), uint8_t{0});
  }
  return true;
}

bool RtcpBuilder::add_nack(uint32_t sender_ssrc, uint32_t media_ssrc, std::span<const uint16_t> seqs) {
  const size_t entries = nack_entry_count(seqs);
  if (entries == 0) return false;  // RFC 4585 6.2.1: at least one FCI entry
  const size_t size = kRtcpHeaderSize + kRtcpFeedbackFixedSize + entries * kNackEntrySize;
  const auto p = begin_packet(RtcpPacketType::kRtpFeedback, kRtpfbFmtNack, size);
  if (p.empty()) return false;
  write_feedback_ssrcs(p, sender_ssrc, media_ssrc);
  size_t off = kRtcpHeaderSize + kRtcpFeedbackFixedSize;
  pack_nack_entries(seqs, [&](const NackEntry& e) {
    store_be16(p, off + kNackPidOffset, e.pid);
    store_be16(p, off + kNackBlpOffset, e.blp);
    off += kNackEntrySize;
  });
  return true;
}

bool RtcpBuilder::add_pli(uint32_t sender_ssrc, uint32_t media_ssrc) {
  const auto p =
      begin_packet(RtcpPacketType::kPayloadFeedback, kPsfbFmtPli, kRtcpHeaderSize + kRtcpFeedbackFixedSize);
  if (p.empty()) return false;
  write_feedback_ssrcs(p, sender_ssrc, media_ssrc);
  return true;
}

bool RtcpBuilder::add_fir(uint32_t sender_ssrc, std::span<const FirEntry> entries) {
  if (entries.empty()) return false;  // RFC 5104 4.3.1.1: one or more entries
  const size_t size = kRtcpHeaderSize + kRtcpFeedbackFixedSize + entries.size() * kFirEntrySize;
  const auto p = begin_packet(RtcpPacketType::kPayloadFeedback, kPsfbFmtFir, size);
  if (p.empty()) return false;
  write_feedback_ssrcs(p, sender_ssrc, kFirMediaSsrc);
  size_t off = kRtcpHeaderSize + kRtcpFeedbackFixedSize;
  for (const FirEntry& e : entries) {
    store_be32(p, off + kFirSsrcOffset, e.ssrc);
    store_u8(p, off + kFirSeqNrOffset, e.seq_nr);
    store_be24(p, off + kFirReservedOffset, 0);  // RFC 5104 4.3.1.1: reserved, set to 0
    off += kFirEntrySize;
  }
  return true;
}

}  // namespace confab::transport
