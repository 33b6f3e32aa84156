// TelnetLineBuffer: IAC removal (RFC 854, RFC 855) and line assembly for telnet sessions.
#include "allocator/telnet_line_buffer.h"

namespace confab::allocator {

namespace {
// A subnegotiation longer than this is a client that never sends IAC SE: resume reading data
// rather than swallowing the session's input for ever. Real ones (NAWS, TTYPE) are a few bytes.
constexpr size_t kMaxSubnegotiationBytes = 1024;
constexpr uint8_t kCr = '\r';
constexpr uint8_t kLf = '\n';
constexpr uint8_t kNul = 0;
}  // namespace

void TelnetLineBuffer::feed(std::span<const uint8_t> bytes, std::vector<TelnetInput>* out) {
  for (const uint8_t byte : bytes) {
    switch (state_) {
      case State::kData:
        if (byte == kTelnetIac) {
          state_ = State::kCommand;
        } else {
          data_byte(byte, out);
        }
        break;
      case State::kCommand:
        if (byte == kTelnetIac) {
          state_ = State::kData;
          data_byte(byte, out);  // RFC 854: IAC IAC stands for the data byte 255
        } else if (byte >= kTelnetWill && byte <= kTelnetDont) {
          state_ = State::kOption;  // RFC 854: WILL/WONT/DO/DONT name one option byte
        } else if (byte == kTelnetSb) {
          state_ = State::kSubnegotiation;
          subnegotiation_bytes_ = 0;
        } else {
          state_ = State::kData;  // NOP, GA, AYT, IP, ...: two bytes in all, ignored
        }
        break;
      case State::kOption:
        state_ = State::kData;
        break;
      case State::kSubnegotiation:
        if (byte == kTelnetIac) {
          state_ = State::kSubnegotiationCommand;
        } else if (++subnegotiation_bytes_ > kMaxSubnegotiationBytes) {
          state_ = State::kData;
        }
        break;
      case State::kSubnegotiationCommand:
        // RFC 855: IAC SE ends it; IAC IAC is a 255 inside it.
        state_ = byte == kTelnetSe ? State::kData : State::kSubnegotiation;
        break;
    }
  }
}

void TelnetLineBuffer::data_byte(uint8_t byte, std::vector<TelnetInput>* out) {
  // RFC 854: end of line is CR LF, and a bare CR is sent as CR NUL; clients also send LF alone.
  if (after_cr_) {
    after_cr_ = false;
    if (byte == kLf || byte == kNul) return;
  }
  if (byte == kCr || byte == kLf) {
    after_cr_ = byte == kCr;
    if (discarding_) {
      discarding_ = false;
    } else {
      out->push_back(TelnetInput{TelnetInput::Kind::kLine, std::move(line_)});
    }
    line_.clear();
    return;
  }
  if (discarding_) return;
  if (line_.size() == max_line_bytes_) {
    out->push_back(TelnetInput{TelnetInput::Kind::kTooLong, {}});
    line_.clear();
    discarding_ = true;
    return;
  }
  line_.push_back(static_cast<char>(byte));
}

}  // namespace confab::allocator
