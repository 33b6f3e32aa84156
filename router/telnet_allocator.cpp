// TelnetAllocator: create and watch conferences over the allocator's telnet API.
#include "router/telnet_allocator.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "router/rest_allocator.h"

namespace confab::router {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kNewline = "\r\n";  // RFC 854: lines end CR LF
constexpr uint8_t kTelnetIac = 0xFF;           // RFC 854: data 255 arrives doubled
constexpr char kQuote = '"';
constexpr char kEscape = '\\';
constexpr uint8_t kFirstPrintable = 0x20;
constexpr uint8_t kDelete = 0x7F;
// Longer than any line the allocator sends; a peer that sends more without a newline is not one.
constexpr size_t kMaxLine = 64 * 1024;
constexpr size_t kReadChunk = 4096;

// The ERR codes worth another attempt: the allocator's 503s and its internal error.
constexpr std::string_view kRetryableCodes[] = {"AT_CAPACITY", "NO_PORTS", "WORKER_UNAVAILABLE", "SHUTTING_DOWN",
                                                "INTERNAL"};

int remaining_ms(SteadyClock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

bool has_control(std::string_view text) {
  for (char c : text) {
    const auto byte = static_cast<uint8_t>(c);
    if (byte < kFirstPrintable || byte == kDelete) return true;
  }
  return false;
}

// Splits an OK line's words into key=value pairs, values unquoted as the allocator quotes them.
std::vector<std::pair<std::string, std::string>> split_fields(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    if (i == text.size()) break;
    std::string word;
    bool quoted = false;
    while (i < text.size() && (quoted || text[i] != ' ')) {
      const char c = text[i++];
      if (c == kQuote) {
        quoted = !quoted;
      } else if (quoted && c == kEscape && i < text.size()) {
        word += text[i++];
      } else {
        word += c;
      }
    }
    const size_t eq = word.find('=');
    if (eq == std::string::npos) {
      fields.emplace_back(std::move(word), "");
    } else {
      fields.emplace_back(word.substr(0, eq), word.substr(eq + 1));
    }
  }
  return fields;
}

std::optional<std::string> field(const std::vector<std::pair<std::string, std::string>>& fields,
                                 std::string_view key) {
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::optional<uint32_t> to_count(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  uint32_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return value;
}

}  // namespace

std::string TelnetAllocator::validate(const TelnetAllocatorOptions& options) {
  if (options.host.empty()) return "allocator telnet host is empty";
  if (options.port == 0) return "allocator telnet port must be 1-65535";
  if (has_control(options.token)) return "allocator telnet token holds a control character";
  if (!is_http_base_url(options.rest_base_url)) {
    return "allocator REST base URL \"" + options.rest_base_url +
           "\" (for join URLs) is not http://HOST[:PORT][/PREFIX]";
  }
  if (options.client.attempts == 0) return "allocator attempts must be at least 1";
  if (options.client.timeout.count() <= 0) return "allocator timeout must be positive";
  if (options.client.poll_interval.count() <= 0) return "allocator poll interval must be positive";
  if (options.client.queue_capacity == 0) return "allocator queue capacity must be at least 1";
  return "";
}

std::string TelnetAllocator::quote(std::string_view value) {
  if (!value.empty() && value.find_first_of(" \t\"\\") == std::string_view::npos) return std::string(value);
  std::string out(1, kQuote);
  for (char c : value) {
    if (c == kQuote || c == kEscape) out += kEscape;
    out += c;
  }
  return out + kQuote;
}

TelnetAllocator::TelnetAllocator(TelnetAllocatorOptions options)
    : QueuedAllocator(options.client), telnet_options_(std::move(options)) {}

TelnetAllocator::~TelnetAllocator() {
  stop();
  drop_connection();
}

std::string TelnetAllocator::where() const {
  return "telnet " + telnet_options_.host + ":" + std::to_string(telnet_options_.port);
}

void TelnetAllocator::interrupt() {
  std::lock_guard lock(fd_mutex_);
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

void TelnetAllocator::close() { drop_connection(); }

void TelnetAllocator::drop_connection() {
  std::lock_guard lock(fd_mutex_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  in_.clear();
}

Attempt<ConfAddress> TelnetAllocator::try_create(const ConferenceRequest& request) {
  // A control character would end the line early and smuggle a second command in.
  if (has_control(request.name) || has_control(request.layout)) {
    return transport::Err{AttemptError{false, false, where() + ": create: name or layout holds a control character"}};
  }
  std::string line = "create";
  if (!request.name.empty()) line += " name=" + quote(request.name);
  if (!request.layout.empty()) line += " layout=" + quote(request.layout);
  if (request.max_participants != 0) line += " max_participants=" + std::to_string(request.max_participants);
  if (request.end_when_empty) line += " end_when_empty=1";

  auto reply = exchange(line);
  if (!reply) return transport::Err{reply.error()};
  if (!reply->ok) return transport::Err{error_of("create", *reply)};
  ConfAddress address;
  address.conference_id = field(reply->fields, "id").value_or("");
  address.media_ip = field(reply->fields, "media_ip").value_or("");
  if (address.conference_id.empty() || address.media_ip.empty()) {
    // Final: the conference may exist, and trying again could make a second one.
    return transport::Err{
        AttemptError{false, false, where() + ": create answered without id and media_ip: OK " + reply->text}};
  }
  address.join_url = join_url_of(address.conference_id);
  return address;
}

std::string TelnetAllocator::join_url_of(const std::string& conference_id) const {
  return participants_url(telnet_options_.rest_base_url, conference_id);
}

Attempt<ConfStatus> TelnetAllocator::try_status(const std::string& conference_id) {
  if (conference_id.empty() || conference_id.find_first_not_of("0123456789") != std::string::npos) {
    return transport::Err{AttemptError{false, true, "\"" + conference_id + "\" is not a conference ID"}};
  }
  auto reply = exchange("show " + conference_id);
  if (!reply) return transport::Err{reply.error()};
  if (!reply->ok) return transport::Err{error_of("show " + conference_id, *reply)};
  const auto count = to_count(field(reply->fields, "participants"));
  if (!count) {
    return transport::Err{
        AttemptError{true, false, where() + ": show " + conference_id + " answered without participants=N"}};
  }
  return ConfStatus{*count, field(reply->fields, "node").value_or(""), field(reply->fields, "media_ip").value_or("")};
}

Attempt<std::monostate> TelnetAllocator::try_delete(const std::string& conference_id) {
  if (conference_id.empty() || conference_id.find_first_not_of("0123456789") != std::string::npos) {
    return transport::Err{AttemptError{false, false, "\"" + conference_id + "\" is not a conference ID"}};
  }
  auto reply = exchange("destroy " + conference_id);
  if (!reply) return transport::Err{reply.error()};
  if (!reply->ok) return transport::Err{error_of("destroy " + conference_id, *reply)};
  return std::monostate{};
}

AttemptError TelnetAllocator::error_of(const std::string& command, const Reply& reply) const {
  bool retry = false;
  for (std::string_view code : kRetryableCodes) retry = retry || reply.code == code;
  return AttemptError{retry, reply.code == "NOT_FOUND",
                      where() + ": " + command + " answered ERR " + reply.code + (reply.text.empty() ? "" : ": ") +
                          reply.text};
}

Attempt<TelnetAllocator::Reply> TelnetAllocator::exchange(const std::string& line) {
  const Deadline deadline = SteadyClock::now() + options().timeout;
  const std::string verb = line.substr(0, line.find(' '));
  if (!alive()) {
    drop_connection();
    if (auto error = open(deadline)) {
      drop_connection();
      return transport::Err{AttemptError{true, false, where() + ": " + *error}};
    }
    if (!telnet_options_.token.empty()) {
      if (auto error = send_line("auth " + quote(telnet_options_.token), deadline)) {
        drop_connection();
        return transport::Err{AttemptError{true, false, where() + ": auth: " + *error}};
      }
      auto auth = read_reply("auth", deadline);
      if (!auth) {
        drop_connection();
        return transport::Err{auth.error()};
      }
      if (!auth->ok) {
        drop_connection();
        AttemptError error = error_of("auth", *auth);
        error.not_found = false;
        return transport::Err{error};
      }
    }
  }
  if (auto error = send_line(line, deadline)) {
    drop_connection();
    return transport::Err{AttemptError{true, false, where() + ": " + verb + ": " + *error}};
  }
  auto reply = read_reply(verb, deadline);
  if (!reply) drop_connection();
  return reply;
}

bool TelnetAllocator::alive() {
  std::lock_guard lock(fd_mutex_);
  if (fd_ < 0) return false;
  // The allocator closes idle sessions (300 s): a readable socket with nothing to read was closed.
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return true;
  if (p.revents & (POLLERR | POLLNVAL)) return false;
  char byte = 0;
  const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

std::optional<std::string> TelnetAllocator::open(Deadline deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(telnet_options_.port);
  if (const int rc = ::getaddrinfo(telnet_options_.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return std::string("cannot resolve host: ") + ::gai_strerror(rc);
  }
  std::string error = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    {
      std::lock_guard lock(fd_mutex_);
      fd_ = fd;  // from here interrupt() can abort the connect
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, remaining_ms(deadline));
      if (rc == 0) {
        error = "connect timed out";
      } else {
        int so_error = 0;
        socklen_t length = sizeof so_error;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &length);
        if (so_error == 0) {
          rc = 0;
        } else {
          error = std::string("could not connect: ") + std::strerror(so_error);
          rc = -1;
        }
      }
    } else if (rc < 0) {
      error = std::string("could not connect: ") + std::strerror(errno);
    }
    if (rc == 0) {
      ::freeaddrinfo(found);
      return std::nullopt;
    }
    drop_connection();
  }
  ::freeaddrinfo(found);
  return error;
}

std::optional<std::string> TelnetAllocator::send_line(const std::string& line, Deadline deadline) {
  const std::string bytes = line + std::string(kNewline);
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, remaining_ms(deadline)) <= 0) return std::string("send timed out");
      continue;
    }
    return std::string("send failed: ") + std::strerror(errno);
  }
  return std::nullopt;
}

transport::Result<std::string, std::string> TelnetAllocator::read_line(Deadline deadline) {
  while (true) {
    const size_t eol = in_.find('\n');
    if (eol != std::string::npos) {
      std::string line = in_.substr(0, eol);
      in_.erase(0, eol + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::string out;
      out.reserve(line.size());
      for (size_t i = 0; i < line.size(); ++i) {
        out += line[i];
        if (static_cast<uint8_t>(line[i]) == kTelnetIac && i + 1 < line.size() &&
            static_cast<uint8_t>(line[i + 1]) == kTelnetIac) {
          ++i;
        }
      }
      return out;
    }
    if (in_.size() > kMaxLine) return transport::Err{std::string("reply line longer than 64 KiB")};
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, remaining_ms(deadline));
    if (ready == 0) return transport::Err{std::string("no answer (timed out)")};
    if (ready < 0 && errno != EINTR) return transport::Err{std::string("poll failed: ") + std::strerror(errno)};
    char chunk[kReadChunk];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n == 0) return transport::Err{std::string("connection closed by the allocator")};
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return transport::Err{std::string("read failed: ") + std::strerror(errno)};
    }
    in_.append(chunk, static_cast<size_t>(n));
  }
}

Attempt<TelnetAllocator::Reply> TelnetAllocator::read_reply(const std::string& command, Deadline deadline) {
  // Lines before the reply (the session's greeting) are skipped: a reply starts "OK" or "ERR".
  while (true) {
    auto line = read_line(deadline);
    if (!line) return transport::Err{AttemptError{true, false, where() + ": " + command + ": " + line.error()}};
    const std::string& text = *line;
    Reply reply;
    if (text == "OK" || text.rfind("OK ", 0) == 0) {
      reply.ok = true;
      reply.text = text.size() > 3 ? text.substr(3) : "";
      reply.fields = split_fields(reply.text);
      // A multi-line reply says how many lines follow (show: participants=, list: count=,
      // help: lines=); they are read so the next reply starts on the next line.
      const std::string_view verb = std::string_view(command).substr(0, command.find(' '));
      const char* key = verb == "show" ? "participants" : verb == "list" ? "count" : verb == "help" ? "lines" : "";
      const uint32_t follow = *key != '\0' ? to_count(field(reply.fields, key)).value_or(0) : 0;
      for (uint32_t i = 0; i < follow; ++i) {
        auto more = read_line(deadline);
        if (!more) return transport::Err{AttemptError{true, false, where() + ": " + command + ": " + more.error()}};
      }
      return reply;
    }
    if (text.rfind("ERR ", 0) == 0) {
      const std::string rest = text.substr(4);
      const size_t space = rest.find(' ');
      reply.code = rest.substr(0, space);
      reply.text = space == std::string::npos ? "" : rest.substr(space + 1);
      return reply;
    }
  }
}

}  // namespace confab::router
