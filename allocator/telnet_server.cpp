// TelnetServer: an epoll loop over the listener, the sessions and a stop eventfd, on one thread.
#include "allocator/telnet_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <exception>
#include <optional>
#include <string_view>
#include <vector>

#include "allocator/telnet_line_buffer.h"
#include "transport/socket_address.h"

namespace confab::allocator {

namespace {

constexpr size_t kMaxEvents = 64;
constexpr size_t kReadChunk = 4096;
// Bytes read from one session per wake-up; the rest waits for the next round (level-triggered),
// so one fast sender cannot starve the others.
constexpr size_t kMaxReadPerWakeup = 64 * 1024;
// Unread input read away before close() (see drain_and_close).
constexpr size_t kMaxDrainOnClose = 64 * 1024;
// Compact the output buffer once this much of it has been sent and is dead space.
constexpr size_t kCompactOutputAt = 16 * 1024;
constexpr int kMaxFailedAuths = 3;
// Out of file descriptors: let the listener rest so its readiness does not spin the loop.
constexpr std::chrono::milliseconds kAcceptPause{100};
constexpr char kNewline[] = "\r\n";  // RFC 854: the NVT end of line is CR LF

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// Compares without an early exit, so timing does not tell how much of a guess was right.
bool same_token(std::string_view given, std::string_view expected) {
  unsigned diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) {
    const char e = i < expected.size() ? expected[i] : 0;
    diff |= static_cast<unsigned char>(given[i] ^ e);
  }
  return diff == 0;
}

// Reads away input nobody will answer, then closes: close() with unread bytes sends RST, and a
// peer that receives RST may lose our last reply.
void drain_and_close(int fd) {
  std::array<uint8_t, kReadChunk> sink;
  for (size_t drained = 0; drained < kMaxDrainOnClose;) {
    const ssize_t n = ::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT);
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
  ::close(fd);
}

}  // namespace

struct TelnetServer::Session {
  Session(int socket, uint64_t session_id, std::string peer_address, size_t max_line_bytes,
          Clock::time_point now)
      : fd(socket), id(session_id), peer(std::move(peer_address)), input(max_line_bytes), last_received(now) {}

  int fd;
  uint64_t id;
  std::string peer;
  TelnetLineBuffer input;
  std::string out;  // replies not yet taken by the kernel, from out_offset on
  size_t out_offset = 0;
  Clock::time_point last_received;
  uint32_t interest = 0;  // epoll events registered
  bool authed = false;
  int failed_auths = 0;
  bool closing = false;  // reads no more; closes once `out` is flushed
  bool dead = false;     // closes now, unsent output dropped
  const char* close_reason = "";

  size_t pending_output() const { return out.size() - out_offset; }
};

TelnetServer::TelnetServer(TelnetOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

TelnetServer::~TelnetServer() { stop(); }

bool TelnetServer::start(std::string* error) {
  if (thread_.joinable()) {
    *error = "telnet server already started";
    return false;
  }
  const std::string where = options_.host + " port " + std::to_string(options_.port);
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(options_.port);
  if (getaddrinfo(options_.host.c_str(), port_text.c_str(), &hints, &found) != 0 || found == nullptr) {
    *error = "telnet: " + options_.host + " is not an IP address";
    return false;
  }
  auto fail = [&](const std::string& what) {
    *error = "telnet: cannot " + what + " on " + where + ": " + std::strerror(errno);
    for (int* fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
    return false;
  };

  listen_fd_ = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    freeaddrinfo(found);
    return fail("create a socket");
  }
  const int on = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  const int bound = ::bind(listen_fd_, found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);
  if (bound != 0) return fail("bind");
  if (::listen(listen_fd_, SOMAXCONN) != 0) return fail("listen");
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) return fail("read the port");
  port_ = transport::SocketAddress(reinterpret_cast<const sockaddr*>(&local), local_len).port();

  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return fail("create epoll");
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return fail("create an eventfd");
  for (int fd : {listen_fd_, wake_fd_}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return fail("watch the listener");
  }
  spdlog::info("event=telnet_listen host={} port={} max_sessions={} auth={}", options_.host, port_,
               options_.max_sessions, options_.token.empty() ? "off" : "token");
  thread_ = std::thread([this] { run(); });
  return true;
}

void TelnetServer::stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  // An eventfd write of 8 bytes only fails when the counter would overflow; it is read never.
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
  for (int* fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  spdlog::info("event=telnet_stopped port={}", port_);
}

void TelnetServer::run() {
  std::array<epoll_event, kMaxEvents> events{};
  bool stopping = false;
  while (!stopping) {
    const int n =
        ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), next_timeout_ms(Clock::now()));
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("event=telnet_epoll_failed error=\"{}\"", std::strerror(errno));
      break;
    }
    const Clock::time_point now = Clock::now();
    for (int k = 0; k < n; ++k) {
      // Sessions are keyed by fd. A session closed earlier in this batch may have its fd reused by
      // one accepted later in it; a stale event on the new one finds nothing to read or write.
      const int fd = events[k].data.fd;
      const uint32_t what = events[k].events;
      if (fd == wake_fd_) {
        stopping = true;
        continue;
      }
      if (fd == listen_fd_) {
        accept_all(now);
        continue;
      }
      auto it = sessions_.find(fd);
      if (it == sessions_.end()) continue;
      Session& s = *it->second;
      if (!s.closing && (what & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) on_readable(s, now);
      if (!s.dead && s.pending_output() > 0 && (what & (EPOLLOUT | EPOLLHUP | EPOLLERR))) flush(s);
      settle(fd);
    }
    expire_idle(Clock::now());
    if (accept_paused_ && Clock::now() >= accept_resume_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = listen_fd_;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
      accept_paused_ = false;
    }
  }
  std::vector<int> open;
  for (const auto& [fd, session] : sessions_) open.push_back(fd);
  for (int fd : open) close_session(fd, "stop");
}

int TelnetServer::next_timeout_ms(Clock::time_point now) const {
  std::optional<Clock::time_point> nearest;
  if (accept_paused_) nearest = accept_resume_;
  if (options_.idle_timeout.count() > 0) {
    for (const auto& [fd, s] : sessions_) {
      const Clock::time_point deadline = s->last_received + options_.idle_timeout;
      if (!nearest || deadline < *nearest) nearest = deadline;
    }
  }
  if (!nearest) return -1;
  if (*nearest <= now) return 0;
  // Rounded up: waking a hair early would find nothing due and spin once more.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*nearest - now).count();
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

void TelnetServer::accept_all(Clock::time_point now) {
  while (true) {
    sockaddr_storage peer_storage{};
    socklen_t peer_len = sizeof peer_storage;
    const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer_storage), &peer_len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (would_block(errno)) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        spdlog::warn("event=telnet_accept_paused error=\"{}\" pause_ms={}", std::strerror(errno), kAcceptPause.count());
        epoll_event ev{};
        ev.data.fd = listen_fd_;
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
        accept_paused_ = true;
        accept_resume_ = now + kAcceptPause;
        return;
      }
      continue;  // ECONNABORTED and the like concern that one connection only
    }
    const std::string peer =
        transport::SocketAddress(reinterpret_cast<const sockaddr*>(&peer_storage), peer_len).to_string();
    if (sessions_.size() >= options_.max_sessions) {
      refuse(fd, peer);
      continue;
    }
    // Replies are whole lines written at once; Nagle would only delay them.
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      spdlog::warn("event=telnet_session_failed peer={} error=\"{}\"", peer, std::strerror(errno));
      ::close(fd);
      continue;
    }
    auto session = std::make_unique<Session>(fd, next_session_id_++, peer, options_.max_line_bytes, now);
    session->interest = ev.events;
    Session& s = *session;
    sessions_.emplace(fd, std::move(session));
    sessions_open_.fetch_add(1, std::memory_order_relaxed);
    sessions_total_.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("event=telnet_session_open session={} peer={} open={}", s.id, s.peer, sessions_.size());
    if (!options_.greeting.empty()) reply(s, options_.greeting);
    settle(fd);
  }
}

void TelnetServer::refuse(int fd, const std::string& peer) {
  const std::string message =
      "ERR AT_CAPACITY too many telnet sessions (max " + std::to_string(options_.max_sessions) + ")" + kNewline;
  // Counted before the peer can see the close, so whoever watches the counter sees it first.
  sessions_refused_.fetch_add(1, std::memory_order_relaxed);
  // A fresh socket's send buffer is empty: the line goes out whole or the peer is already gone.
  [[maybe_unused]] const ssize_t n = ::send(fd, message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  drain_and_close(fd);
  spdlog::warn("event=telnet_refused reason=at_capacity peer={} max_sessions={}", peer, options_.max_sessions);
}

void TelnetServer::on_readable(Session& s, Clock::time_point now) {
  std::array<uint8_t, kReadChunk> buffer;
  std::vector<TelnetInput> inputs;
  size_t total = 0;
  while (total < kMaxReadPerWakeup) {
    const ssize_t n = ::recv(s.fd, buffer.data(), buffer.size(), 0);
    if (n == 0) {
      // The peer sent all it will; answer what it sent, then close.
      s.closing = true;
      s.close_reason = "eof";
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (!would_block(errno)) {
        s.dead = true;
        s.close_reason = "read_error";
      }
      return;
    }
    total += static_cast<size_t>(n);
    s.last_received = now;
    inputs.clear();
    s.input.feed(std::span<const uint8_t>(buffer.data(), static_cast<size_t>(n)), &inputs);
    for (const TelnetInput& in : inputs) {
      if (s.closing || s.dead) return;  // after quit, the rest of the input is not for us
      if (in.kind == TelnetInput::Kind::kTooLong) {
        lines_too_long_.fetch_add(1, std::memory_order_relaxed);
        spdlog::debug("event=telnet_line_too_long session={} max={}", s.id, options_.max_line_bytes);
        reply(s, "ERR LINE_TOO_LONG line over " + std::to_string(options_.max_line_bytes) + " bytes");
      } else {
        handle_line(s, in.line);
      }
    }
    if (s.closing || s.dead) return;
  }
}

void TelnetServer::handle_line(Session& s, std::string_view line) {
  const ApiResult<TelnetCommand> parsed = parse_telnet_line(line);
  if (!parsed) {
    const ApiError e = parsed.error();
    reply(s, "ERR " + e.code + " " + e.message);
    return;
  }
  const TelnetCommand& command = *parsed;
  if (command.verb.empty()) return;  // blank lines and bare negotiation get no answer
  if (command.verb == "quit" || command.verb == "exit") {
    reply(s, "OK bye");
    s.closing = true;
    s.close_reason = "quit";
    return;
  }
  if (command.verb == "auth") {
    if (options_.token.empty()) {
      reply(s, "OK no token configured");
      return;
    }
    if (command.positional.size() == 1 && command.options.empty() &&
        same_token(command.positional[0], options_.token)) {
      s.authed = true;
      reply(s, "OK");
      return;
    }
    ++s.failed_auths;
    auth_failures_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("event=telnet_auth_failed session={} peer={} attempt={}", s.id, s.peer, s.failed_auths);
    reply(s, "ERR UNAUTHORIZED bad token");
    if (s.failed_auths >= kMaxFailedAuths) {
      s.closing = true;
      s.close_reason = "auth_failed";
    }
    return;
  }
  if (!options_.token.empty() && !s.authed) {
    reply(s, "ERR UNAUTHORIZED send auth <token> first");
    return;
  }
  std::string answer;
  try {
    answer = handler_(command);
  } catch (const std::exception& e) {
    spdlog::error("event=telnet_handler_failed session={} verb={} error=\"{}\"", s.id, command.verb, e.what());
    answer = "ERR INTERNAL internal error";
  }
  reply(s, answer);
}

void TelnetServer::reply(Session& s, std::string_view text) {
  if (s.dead) return;
  s.out.reserve(s.out.size() + text.size() + sizeof kNewline);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n' && (i == 0 || text[i - 1] != '\r')) {
      s.out += kNewline;  // RFC 854: lines end CR LF on the wire
    } else {
      s.out.push_back(c);
      if (static_cast<uint8_t>(c) == kTelnetIac) s.out.push_back(c);  // RFC 854: data 255 is sent IAC IAC
    }
  }
  s.out += kNewline;
  flush(s);
  if (!s.dead && s.pending_output() > options_.max_pending_output) {
    s.dead = true;
    s.close_reason = "slow_reader";
    slow_readers_closed_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("event=telnet_slow_reader session={} peer={} pending_bytes={} max={}", s.id, s.peer,
                 s.pending_output(), options_.max_pending_output);
  }
}

void TelnetServer::flush(Session& s) {
  while (s.pending_output() > 0) {
    const ssize_t n = ::send(s.fd, s.out.data() + s.out_offset, s.pending_output(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      s.out_offset += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && would_block(errno)) break;
    s.dead = true;
    s.close_reason = "write_error";
    return;
  }
  if (s.pending_output() == 0) {
    s.out.clear();
    s.out_offset = 0;
  } else if (s.out_offset >= kCompactOutputAt && s.out_offset * 2 >= s.out.size()) {
    s.out.erase(0, s.out_offset);
    s.out_offset = 0;
  }
}

void TelnetServer::update_interest(Session& s) {
  const uint32_t reading = s.closing ? 0u : static_cast<uint32_t>(EPOLLIN | EPOLLRDHUP);
  const uint32_t writing = s.pending_output() > 0 ? static_cast<uint32_t>(EPOLLOUT) : 0u;
  const uint32_t wanted = reading | writing;
  if (wanted == s.interest) return;
  epoll_event ev{};
  ev.events = wanted;
  ev.data.fd = s.fd;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, s.fd, &ev) == 0) s.interest = wanted;
}

void TelnetServer::settle(int fd) {
  auto it = sessions_.find(fd);
  if (it == sessions_.end()) return;
  Session& s = *it->second;
  if (s.dead || (s.closing && s.pending_output() == 0)) {
    close_session(fd, s.close_reason);
  } else {
    update_interest(s);
  }
}

void TelnetServer::expire_idle(Clock::time_point now) {
  if (options_.idle_timeout.count() <= 0) return;
  std::vector<int> expired;
  for (const auto& [fd, s] : sessions_) {
    if (now - s->last_received >= options_.idle_timeout) expired.push_back(fd);
  }
  for (int fd : expired) {
    Session& s = *sessions_.at(fd);
    // A session still flushing its last reply also ends here: the idle deadline bounds the wait.
    if (!s.closing) {
      idle_closed_.fetch_add(1, std::memory_order_relaxed);
      reply(s, "ERR IDLE_TIMEOUT closing idle session");
    }
    close_session(fd, "idle");
  }
}

void TelnetServer::close_session(int fd, const char* reason) {
  auto it = sessions_.find(fd);
  if (it == sessions_.end()) return;
  const Session& s = *it->second;
  sessions_open_.fetch_sub(1, std::memory_order_relaxed);  // before the peer can see the close
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  drain_and_close(fd);
  spdlog::debug("event=telnet_session_close session={} peer={} reason={} unsent_bytes={}", s.id, s.peer, reason,
                s.pending_output());
  sessions_.erase(it);
}

}  // namespace confab::allocator
