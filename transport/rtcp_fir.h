// FirView: RTCP Full Intra Request (RFC 5104 4.3.1), a PSFB message of SSRC + sequence entries.
#pragma once

#include <cstddef>
#include <cstdint>

#include "transport/rtcp_feedback.h"

namespace confab::transport {

// RFC 5104 4.3.1.1: PSFB (PT=206) with FMT=4 after the common feedback header (rtcp_feedback.h);
// the media source SSRC there "SHALL be set to 0" since each FCI entry names its own target:
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                              SSRC                             |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// | Seq nr.       |    Reserved                                   |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// RFC 5104 4.3.1.1: a request repeated with the same Seq nr. is a retransmission, not a new
// request; the receiver of a FIR compares it with the last one seen from that sender.
constexpr size_t kFirEntrySize = 8;
constexpr size_t kFirSsrcOffset = 0;  // within an entry
constexpr size_t kFirSeqNrOffset = 4;
constexpr size_t kFirReservedOffset = 5;
constexpr uint32_t kFirMediaSsrc = 0;  // the common feedback header's media SSRC, as above

struct FirEntry {
  uint32_t ssrc = 0;
  uint8_t seq_nr = 0;

  bool operator==(const FirEntry&) const = default;
};

class FirView {
 public:
  // Checks PSFB/FMT=4, the feedback header, and one or more whole FCI entries. A non-zero media
  // SSRC is tolerated (RFC 5104 says SHALL be 0, but the entries carry the targets).
  static Result<FirView, RtcpParseError> parse(const RtcpPacketView& packet);

  uint32_t sender_ssrc() const { return feedback_.sender_ssrc(); }
  uint32_t media_ssrc() const { return feedback_.media_ssrc(); }
  size_t entry_count() const { return feedback_.fci().size() / kFirEntrySize; }
  // i < entry_count().
  FirEntry entry(size_t i) const;

 private:
  explicit FirView(RtcpFeedbackView feedback) : feedback_(feedback) {}

  RtcpFeedbackView feedback_;
};

}  // namespace confab::transport
