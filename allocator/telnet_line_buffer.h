// TelnetLineBuffer: turns a session's received byte stream into lines: strips telnet IAC
// sequences, splits on CR LF / LF / CR NUL / CR, and caps the line length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace confab::allocator {

// RFC 854 commands that matter to the filter.
constexpr uint8_t kTelnetIac = 255;   // Interpret As Command; IAC IAC is a data byte 255
constexpr uint8_t kTelnetDont = 254;  // WILL (251) .. DONT (254) take one option byte
constexpr uint8_t kTelnetWill = 251;
constexpr uint8_t kTelnetSb = 250;  // RFC 855: IAC SB ... IAC SE is a subnegotiation
constexpr uint8_t kTelnetSe = 240;

struct TelnetInput {
  enum class Kind { kLine, kTooLong };
  Kind kind = Kind::kLine;
  std::string line;  // kLine: the line without its terminator
};

class TelnetLineBuffer {
 public:
  // Longest line kept (bytes after IAC removal, without the terminator).
  explicit TelnetLineBuffer(size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  // Appends to `out`, in order, each line completed by `bytes`, and one kTooLong the moment a line
  // passes the limit; the rest of that line, up to its terminator, is dropped.
  void feed(std::span<const uint8_t> bytes, std::vector<TelnetInput>* out);

  // Bytes of the line being assembled (0 while dropping an over-long line).
  size_t pending() const { return line_.size(); }

 private:
  enum class State : uint8_t { kData, kCommand, kOption, kSubnegotiation, kSubnegotiationCommand };

  void data_byte(uint8_t byte, std::vector<TelnetInput>* out);

  size_t max_line_bytes_;
  std::string line_;
  State state_ = State::kData;
  size_t subnegotiation_bytes_ = 0;
  bool after_cr_ = false;    // a LF or NUL right after CR belongs to that CR's line end
  bool discarding_ = false;  // inside an over-long line
};

}  // namespace confab::allocator
