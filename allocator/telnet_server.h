// TelnetServer: the control plane's telnet line listener: one thread, epoll over the listener and
// non-blocking sessions; greeting, optional token auth, line and output limits, idle timeout.
// What a line means is the handler's business (the verb dispatch lives elsewhere).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include "allocator/telnet_command.h"

namespace confab::allocator {

struct TelnetOptions {
  std::string host = "127.0.0.1";  // an IPv4 or IPv6 literal
  uint16_t port = 4023;            // 0: the kernel picks one (see TelnetServer::port())
  size_t max_sessions = 64;        // over it a connection gets ERR AT_CAPACITY and is closed
  size_t max_line_bytes = 4096;    // longer lines get ERR LINE_TOO_LONG and are dropped
  std::chrono::seconds idle_timeout{300};  // nothing received for this long closes a session; 0: never
  // Non-empty: a session must send "auth <token>" before anything reaches the handler; three bad
  // tokens close it.
  std::string token;
  std::string greeting = "confab ready";  // sent on connect; empty: none
  // Replies a client has not read yet, beyond what the kernel holds; past it the session is
  // closed, so one stuck client costs bounded memory and never blocks the others.
  size_t max_pending_output = 256 * 1024;
};

class TelnetServer {
 public:
  // Runs on the server thread for each non-empty, well-formed line that is not quit/exit/auth,
  // after auth when a token is set. Returns the reply without its final newline (it may hold
  // several lines, "\n" or "\r\n" separated); the server ends it with "\r\n". The handler must
  // not block: every session waits while it runs.
  using Handler = std::function<std::string(const TelnetCommand&)>;

  TelnetServer(TelnetOptions options, Handler handler);
  ~TelnetServer();
  TelnetServer(const TelnetServer&) = delete;
  TelnetServer& operator=(const TelnetServer&) = delete;

  // Binds, listens and starts serving on its own thread. False with the reason when the address
  // is bad or taken, or when already started.
  bool start(std::string* error);
  // Closes the listener and every session and joins the thread. Idempotent.
  void stop();
  uint16_t port() const { return port_; }

  // Counters for /metrics; readable from any thread.
  uint64_t sessions_open() const { return sessions_open_.load(std::memory_order_relaxed); }
  uint64_t sessions_total() const { return sessions_total_.load(std::memory_order_relaxed); }
  uint64_t sessions_refused() const { return sessions_refused_.load(std::memory_order_relaxed); }
  uint64_t lines_too_long() const { return lines_too_long_.load(std::memory_order_relaxed); }
  uint64_t idle_closed() const { return idle_closed_.load(std::memory_order_relaxed); }
  uint64_t auth_failures() const { return auth_failures_.load(std::memory_order_relaxed); }
  uint64_t slow_readers_closed() const { return slow_readers_closed_.load(std::memory_order_relaxed); }

 private:
  struct Session;
  using Clock = std::chrono::steady_clock;

  void run();
  int next_timeout_ms(Clock::time_point now) const;
  void accept_all(Clock::time_point now);
  void refuse(int fd, const std::string& peer);
  void on_readable(Session& s, Clock::time_point now);
  void handle_line(Session& s, std::string_view line);
  void reply(Session& s, std::string_view text);
  void flush(Session& s);
  void update_interest(Session& s);
  void settle(int fd);
  void expire_idle(Clock::time_point now);
  void close_session(int fd, const char* reason);

  TelnetOptions options_;
  Handler handler_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop() writes it to end the loop
  uint16_t port_ = 0;
  uint64_t next_session_id_ = 1;
  bool accept_paused_ = false;  // out of file descriptors: the listener rests until this deadline
  Clock::time_point accept_resume_{};
  std::unordered_map<int, std::unique_ptr<Session>> sessions_;  // by fd; server thread only
  std::thread thread_;

  std::atomic<uint64_t> sessions_open_{0};
  std::atomic<uint64_t> sessions_total_{0};
  std::atomic<uint64_t> sessions_refused_{0};
  std::atomic<uint64_t> lines_too_long_{0};
  std::atomic<uint64_t> idle_closed_{0};
  std::atomic<uint64_t> auth_failures_{0};
  std::atomic<uint64_t> slow_readers_closed_{0};
};

}  // namespace confab::allocator
