// RtcpBuilder: writes a compound RTCP packet into a caller's buffer, without allocating.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "transport/rtcp_fir.h"
#include "transport/rtcp_packet.h"
#include "transport/rtcp_report_block.h"
#include "transport/rtcp_sender_report.h"

namespace confab::transport {

// Each add_* appends one packet (layouts drawn in the matching rtcp_*.h) and returns false, leaving
// the buffer as it was, when the packet does not fit or its arguments cannot be encoded (more than
// 31 blocks or SSRCs, text over 255 bytes, no NACK seqs or FIR entries). RFC 3550 6.1 wants SR or
// RR first in a full compound; the caller chooses the order (RFC 5506 reduced-size RTCP may start
// with feedback). Nothing is padded with the P bit: every packet is a whole number of words.
class RtcpBuilder {
 public:
  explicit RtcpBuilder(std::span<uint8_t> out) : out_(out) {}

  bool add_sender_report(const SenderInfo& info, std::span<const ReportBlock> blocks = {});
  bool add_receiver_report(uint32_t sender_ssrc, std::span<const ReportBlock> blocks = {});
  // One chunk with one CNAME item (RFC 3550 6.5.1).
  bool add_sdes_cname(uint32_t ssrc, std::string_view cname);
  // An empty reason is left out.
  bool add_bye(std::span<const uint32_t> ssrcs, std::string_view reason = {});
  // Seqs in RTP order, packed as pack_nack_entries() does.
  bool add_nack(uint32_t sender_ssrc, uint32_t media_ssrc, std::span<const uint16_t> seqs);
  bool add_pli(uint32_t sender_ssrc, uint32_t media_ssrc);
  // RFC 5104 4.3.1.1: the media source SSRC is written as 0; each entry names its target.
  bool add_fir(uint32_t sender_ssrc, std::span<const FirEntry> entries);

  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return out_.first(size_); }
  void clear() { size_ = 0; }

 private:
  // Checks that a `size`-byte packet fits, writes its header and returns its bytes, or an empty
  // span. `size` is a whole number of words.
  std::span<uint8_t> begin_packet(RtcpPacketType type, uint8_t count, size_t size);

  std::span<uint8_t> out_;
  size_t size_ = 0;
};

}  // namespace confab::transport
