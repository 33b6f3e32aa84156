// first_packet: the first packet of an RTCP compound, for tests of one typed view; a compound
// that does not parse is a test failure.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "transport/rtcp_packet.h"

namespace confab::test_support {

inline transport::RtcpPacketView first_packet(const std::vector<uint8_t>& bytes) {
  auto compound = transport::RtcpCompound::parse(bytes);
  if (!compound.ok()) {
    ADD_FAILURE() << to_string(compound.error());
    return {};
  }
  return *compound->begin();
}

}  // namespace confab::test_support
