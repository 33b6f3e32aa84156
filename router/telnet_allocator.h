// TelnetAllocator: the conference allocator plugin over the allocator's telnet API (one TCP connection).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "router/queued_allocator.h"

namespace confab::router {

struct TelnetAllocatorOptions {
  // The allocator's --telnet-listen (a name or an address; IPv6 without brackets).
  std::string host = "127.0.0.1";
  uint16_t port = 4023;
  // Sent as "auth TOKEN" on every new connection when the allocator runs with --token.
  std::string token;
  // Telnet has no URL: ConfAddress::join_url is built on the allocator's REST root.
  std::string rest_base_url = "http://127.0.0.1:8080";
  AllocatorClientOptions client;
};

// create_conf: `create name=... layout=... max_participants=N` (the fields set, values with spaces
// quoted) -> `OK id=17 media_ip=... node=...` -> conf_created(ref, {media_ip, "17",
// rest_base_url + "/v1/conferences/17/participants"}). Connection errors, timeouts and the 503
// codes (AT_CAPACITY, NO_PORTS, WORKER_UNAVAILABLE, SHUTTING_DOWN) and INTERNAL are retried on a
// fresh connection; any other `ERR CODE message` is final. watch_conf: `show ID` (participants=N);
// ERR NOT_FOUND ends the watch. delete_conf: `destroy ID` (ERR NOT_FOUND: gone already). One connection is kept open and reopened when it fails.
class TelnetAllocator final : public QueuedAllocator {
 public:
  // An empty string, or what is wrong with the options.
  static std::string validate(const TelnetAllocatorOptions& options);

  explicit TelnetAllocator(TelnetAllocatorOptions options);
  ~TelnetAllocator() override;

  std::string_view name() const override { return "telnet_allocator"; }

  // A telnet value as the allocator's line parser reads it: bare, or (when it is empty or holds a
  // blank, a quote or a backslash) double-quoted, with a backslash before each quote and backslash.
  static std::string quote(std::string_view value);

 protected:
  Attempt<ConfAddress> try_create(const ConferenceRequest& request) override;
  Attempt<ConfStatus> try_status(const std::string& conference_id) override;
  std::string join_url_of(const std::string& conference_id) const override;
  Attempt<std::monostate> try_delete(const std::string& conference_id) override;
  void interrupt() override;
  void close() override;

 private:
  struct Reply {
    bool ok = false;
    std::string code;     // ERR's code
    std::string text;     // the first line after "OK " or "ERR CODE "
    std::vector<std::pair<std::string, std::string>> fields;  // OK's key=value words
  };
  using Deadline = std::chrono::steady_clock::time_point;

  // One command and its reply (and the lines a multi-line reply announces), on the open
  // connection or a new one. I/O failures close the connection and are retryable.
  Attempt<Reply> exchange(const std::string& line);
  std::optional<std::string> open(Deadline deadline);  // an error message, or nullopt
  bool alive();
  std::optional<std::string> send_line(const std::string& line, Deadline deadline);
  // The next line (CR LF stripped, IAC IAC undone), or an error message.
  transport::Result<std::string, std::string> read_line(Deadline deadline);
  Attempt<Reply> read_reply(const std::string& command, Deadline deadline);
  void drop_connection();
  AttemptError error_of(const std::string& command, const Reply& reply) const;
  std::string where() const;

  const TelnetAllocatorOptions telnet_options_;
  std::mutex fd_mutex_;  // interrupt() shuts the socket down from the stopping thread
  int fd_ = -1;
  std::string in_;  // bytes read past the last line
};

}  // namespace confab::router
