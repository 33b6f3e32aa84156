// MediaPortPool: hands out bound UDP sockets on the node's media address, one port per participant
// per medium (RTP and RTCP muxed), from a configured range.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "transport/socket_address.h"

namespace confab::mcu {

struct MediaPort {
  int fd = -1;  // bound, non-blocking; the caller owns it (a worker adopts it)
  uint16_t port = 0;
};

class MediaPortPool {
 public:
  // Ports lo..hi inclusive on `ip` (its port part is ignored). Requires lo <= hi.
  MediaPortPool(const transport::SocketAddress& ip, uint16_t lo, uint16_t hi);

  // Parses "LO-HI" (e.g. "40000-49999"); false with a message naming the problem.
  static bool parse_range(const std::string& text, uint16_t* lo, uint16_t* hi, std::string* error);

  // Binds the next free port of the range, searching round-robin from the one after the last
  // handed out, so a port just released is the last to be reused (late packets meant for its old
  // participant then rarely reach a new one). Ports some other process holds are skipped. Returns
  // fd -1 with `error` set ("no free media port in LO-HI") when none is left.
  MediaPort allocate(std::string* error);
  // Returns the port to the pool; the caller has closed (or handed off and closed) its fd.
  void release(uint16_t port);

  size_t in_use() const { return in_use_count_; }
  size_t capacity() const { return used_.size(); }

 private:
  transport::SocketAddress ip_;
  uint16_t lo_;
  std::vector<bool> used_;  // index: port - lo_
  size_t next_ = 0;
  size_t in_use_count_ = 0;
};

}  // namespace confab::mcu
