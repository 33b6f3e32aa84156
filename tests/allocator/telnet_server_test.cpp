// Tests TelnetServer over real TCP on 127.0.0.1 (kernel-picked ports): greeting, replies, quit,
// line assembly, limits (line length, sessions, idle time, unread output), auth, IAC negotiation,
// many concurrent clients and stop() with clients connected.
#include "allocator/telnet_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/wait_until.h"

namespace confab::allocator {
namespace {

using namespace std::chrono_literals;
using test_support::wait_until;

constexpr size_t kBigReplyBytes = 100 * 1000;

// A blocking TCP client that reads CR LF lines with deadlines.
class Client {
 public:
  // `receive_buffer` > 0 shrinks SO_RCVBUF before connecting, so unread replies back up quickly.
  explicit Client(uint16_t port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (receive_buffer > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    const int on = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // The next line without its CR LF; nullopt when the server closed or the deadline passed.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const size_t end = buffer_.find("\r\n");
      if (end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return line;
      }
      if (!receive_some(deadline)) return std::nullopt;
    }
  }

  // Whether the server closed the connection (EOF or reset) before the deadline; data read on the
  // way is dropped.
  bool wait_closed(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (receive_some(deadline)) buffer_.clear();
    return closed_;
  }

 private:
  // Appends what arrives before the deadline; false on close (sets closed_) or timeout.
  bool receive_some(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string buffer_;
};

// echo: "ECHO" and the words; big: 100 kB; multi: two lines; boom: throws; anything else "OK <verb>".
std::string test_handler(const TelnetCommand& c) {
  if (c.verb == "big") return std::string(kBigReplyBytes, 'x');
  if (c.verb == "multi") return "first\nsecond\r\nthird";
  if (c.verb == "boom") throw std::runtime_error("handler bug");
  if (c.verb != "echo") return "OK " + c.verb;
  std::string reply = "ECHO";
  for (const auto& word : c.positional) reply += " " + word;
  for (const auto& [key, value] : c.options) reply += " " + key + "=" + value;
  return reply;
}

class TelnetServerTest : public ::testing::Test {
 protected:
  void start(TelnetOptions options = {}) {
    options.port = 0;
    server_ = std::make_unique<TelnetServer>(std::move(options), test_handler);
    std::string error;
    ASSERT_TRUE(server_->start(&error)) << error;
    ASSERT_NE(server_->port(), 0);
  }
  // A connected client whose greeting has been read.
  std::unique_ptr<Client> connect() {
    auto c = std::make_unique<Client>(server_->port());
    EXPECT_TRUE(c->connected());
    EXPECT_EQ(c->read_line(), "confab ready");
    return c;
  }
  bool open_sessions_reach(uint64_t n) {
    return wait_until([&] { return server_->sessions_open() == n; }, 10s);
  }

  std::unique_ptr<TelnetServer> server_;
};

TEST_F(TelnetServerTest, GreetsRepliesAndSaysByeOnQuit) {
  start();
  auto c = connect();
  ASSERT_TRUE(c->send("echo hello world\r\n"));
  EXPECT_EQ(c->read_line(), "ECHO hello world");
  ASSERT_TRUE(c->send("ECHO a name=\"x y\"\n"));
  EXPECT_EQ(c->read_line(), "ECHO a name=x y");
  ASSERT_TRUE(c->send("multi\r\n"));
  EXPECT_EQ(c->read_line(), "first");
  EXPECT_EQ(c->read_line(), "second");
  EXPECT_EQ(c->read_line(), "third");
  ASSERT_TRUE(c->send("quit\r\n"));
  EXPECT_EQ(c->read_line(), "OK bye");
  EXPECT_TRUE(c->wait_closed());
  EXPECT_TRUE(open_sessions_reach(0));

  auto d = connect();
  ASSERT_TRUE(d->send("EXIT now\r\n"));
  EXPECT_EQ(d->read_line(), "OK bye");
  EXPECT_TRUE(d->wait_closed());
  EXPECT_EQ(server_->sessions_total(), 2u);
}

TEST_F(TelnetServerTest, ReportsParseErrorsAndIgnoresBlankLines) {
  start();
  auto c = connect();
  ASSERT_TRUE(c->send("create name=\"x\r\n"));
  EXPECT_EQ(c->read_line(), "ERR BAD_LINE unterminated quote at column 13");
  ASSERT_TRUE(c->send("\r\n  \r\n\t\necho after\r\n"));
  EXPECT_EQ(c->read_line(), "ECHO after");
  ASSERT_TRUE(c->send("boom\r\n"));
  EXPECT_EQ(c->read_line(), "ERR INTERNAL internal error");
  ASSERT_TRUE(c->send("echo still here\r\n"));
  EXPECT_EQ(c->read_line(), "ECHO still here");
}

TEST_F(TelnetServerTest, HandlesSeveralLinesInOneWriteAndOneLineOverSeveral) {
  start();
  auto c = connect();
  ASSERT_TRUE(c->send("echo 1\r\necho 2\necho 3\r\n"));
  EXPECT_EQ(c->read_line(), "ECHO 1");
  EXPECT_EQ(c->read_line(), "ECHO 2");
  EXPECT_EQ(c->read_line(), "ECHO 3");

  ASSERT_TRUE(c->send("ec"));
  ASSERT_TRUE(c->send("ho sp"));
  // An unfinished line gets no answer (a short wait can only pass if the server is right).
  EXPECT_EQ(c->read_line(100ms), std::nullopt);
  ASSERT_TRUE(c->send("lit\r"));
  ASSERT_TRUE(c->send("\necho next\r\n"));
  EXPECT_EQ(c->read_line(), "ECHO split");
  EXPECT_EQ(c->read_line(), "ECHO next");
}

TEST_F(TelnetServerTest, TooLongLineIsRefusedAndTheSessionGoesOn) {
  TelnetOptions options;
  options.max_line_bytes = 64;
  start(options);
  auto c = connect();
  ASSERT_TRUE(c->send("echo " + std::string(59, 'a') + "\r\n"));  // exactly 64 bytes
  EXPECT_EQ(c->read_line(), "ECHO " + std::string(59, 'a'));
  ASSERT_TRUE(c->send("echo " + std::string(5000, 'b') + "\r\necho ok\r\n"));
  EXPECT_EQ(c->read_line(), "ERR LINE_TOO_LONG line over 64 bytes");
  EXPECT_EQ(c->read_line(), "ECHO ok");
  EXPECT_EQ(server_->lines_too_long(), 1u);
}

TEST_F(TelnetServerTest, RefusesOverMaxSessionsUntilASlotFrees) {
  TelnetOptions options;
  options.max_sessions = 2;
  start(options);
  auto a = connect();
  auto b = connect();
  Client refused(server_->port());
  ASSERT_TRUE(refused.connected());
  EXPECT_EQ(refused.read_line(), "ERR AT_CAPACITY too many telnet sessions (max 2)");
  EXPECT_TRUE(refused.wait_closed());
  EXPECT_EQ(server_->sessions_refused(), 1u);

  ASSERT_TRUE(a->send("quit\r\n"));
  EXPECT_EQ(a->read_line(), "OK bye");
  ASSERT_TRUE(open_sessions_reach(1));
  auto c = connect();
  ASSERT_TRUE(c->send("echo in\r\n"));
  EXPECT_EQ(c->read_line(), "ECHO in");
  EXPECT_EQ(server_->sessions_open(), 2u);
}

TEST_F(TelnetServerTest, ClosesIdleSessions) {
  TelnetOptions options;
  options.idle_timeout = 1s;
  start(options);
  auto c = connect();
  EXPECT_EQ(c->read_line(20s), "ERR IDLE_TIMEOUT closing idle session");
  EXPECT_TRUE(c->wait_closed());
  EXPECT_EQ(server_->idle_closed(), 1u);
  EXPECT_TRUE(open_sessions_reach(0));
}

TEST_F(TelnetServerTest, TokenAuthGatesTheHandler) {
  TelnetOptions options;
  options.token = "s3cret";
  start(options);
  auto c = connect();
  ASSERT_TRUE(c->send("echo x\r\n"));
  EXPECT_EQ(c->read_line(), "ERR UNAUTHORIZED send auth <token> first");
  ASSERT_TRUE(c->send("auth wrong\r\n"));
  EXPECT_EQ(c->read_line(), "ERR UNAUTHORIZED bad token");
  ASSERT_TRUE(c->send("auth s3cret\r\n"));
  EXPECT_EQ(c->read_line(), "OK");
  ASSERT_TRUE(c->send("echo x\r\n"));
  EXPECT_EQ(c->read_line(), "ECHO x");

  // Three bad tokens close the session (a wrong length, a prefix, extra words all count).
  auto d = connect();
  ASSERT_TRUE(d->send("auth s3cre\r\nauth s3cretX\r\n"));
  EXPECT_EQ(d->read_line(), "ERR UNAUTHORIZED bad token");
  EXPECT_EQ(d->read_line(), "ERR UNAUTHORIZED bad token");
  ASSERT_TRUE(d->send("auth s3cret extra\r\n"));
  EXPECT_EQ(d->read_line(), "ERR UNAUTHORIZED bad token");
  EXPECT_TRUE(d->wait_closed());
  EXPECT_EQ(server_->auth_failures(), 4u);

  // quit needs no auth.
  auto e = connect();
  ASSERT_TRUE(e->send("quit\r\n"));
  EXPECT_EQ(e->read_line(), "OK bye");
}

TEST_F(TelnetServerTest, AuthWithoutATokenIsANoOp) {
  start();
  auto c = connect();
  ASSERT_TRUE(c->send("auth anything\r\n"));
  EXPECT_EQ(c->read_line(), "OK no token configured");
  ASSERT_TRUE(c->send("echo x\r\n"));
  EXPECT_EQ(c->read_line(), "ECHO x");
}

TEST_F(TelnetServerTest, ClientThatNeverReadsDoesNotStallOthers) {
  start();
  Client stuck(server_->port(), 4096);
  ASSERT_TRUE(stuck.connected());
  ASSERT_TRUE(stuck.send("big\r\n"));
  auto other = connect();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(other->send("echo " + std::to_string(i) + "\r\n"));
    ASSERT_EQ(other->read_line(), "ECHO " + std::to_string(i));
  }
  // The stuck client still gets everything once it reads.
  EXPECT_EQ(stuck.read_line(), "confab ready");
  EXPECT_EQ(stuck.read_line(), std::string(kBigReplyBytes, 'x'));
  EXPECT_EQ(server_->slow_readers_closed(), 0u);
}

TEST_F(TelnetServerTest, ClosesAClientWhoseUnreadOutputPassesTheBound) {
  TelnetOptions options;
  options.max_pending_output = 256 * 1024;
  start(options);
  Client stuck(server_->port(), 4096);
  ASSERT_TRUE(stuck.connected());
  // 100 replies of 100 kB: more than kernel buffers plus the bound.
  std::string lines;
  for (int i = 0; i < 100; ++i) lines += "big\r\n";
  ASSERT_TRUE(stuck.send(lines));
  auto other = connect();
  ASSERT_TRUE(other->send("echo alive\r\n"));
  EXPECT_EQ(other->read_line(), "ECHO alive");
  EXPECT_TRUE(wait_until([&] { return server_->slow_readers_closed() == 1; }, 20s));
  EXPECT_TRUE(stuck.wait_closed(20s));
  ASSERT_TRUE(other->send("echo still\r\n"));
  EXPECT_EQ(other->read_line(), "ECHO still");
}

TEST_F(TelnetServerTest, FiftyClientsTwentyRoundTripsEach) {
  start();
  constexpr int kClients = 50;
  constexpr int kRounds = 20;
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      Client c(server_->port());
      if (!c.connected() || c.read_line() != "confab ready") return;
      for (int r = 0; r < kRounds; ++r) {
        const std::string tag = std::to_string(i) + "/" + std::to_string(r);
        if (!c.send("echo " + tag + "\r\n") || c.read_line() != "ECHO " + tag) return;
        answered.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(answered.load(), kClients * kRounds);
  EXPECT_EQ(server_->sessions_total(), static_cast<uint64_t>(kClients));
  EXPECT_EQ(server_->sessions_refused(), 0u);
}

TEST_F(TelnetServerTest, IgnoresIacNegotiation) {
  start();
  auto c = connect();
  // What a telnet client may send unasked: IAC DO ECHO, IAC WILL NAWS, IAC SB NAWS 80x24 IAC SE.
  ASSERT_TRUE(c->send(std::string("\xFF\xFD\x01\xFF\xFB\x1F\xFF\xFA\x1F\x00\x50\x00\x18\xFF\xF0", 15)));
  // A line of negotiation only, then IAC NOP in the middle of a verb.
  ASSERT_TRUE(c->send("\xFF\xFB\x18\r\n"));
  ASSERT_TRUE(c->send("ec\xFF\xF1ho x\r\n"));
  // The first answer is to the echo: no error for the negotiation.
  EXPECT_EQ(c->read_line(), "ECHO x");
  // A data byte 255 arrives as IAC IAC and goes back out doubled (RFC 854).
  ASSERT_TRUE(c->send("echo \xFF\xFF\r\n"));
  EXPECT_EQ(c->read_line(), "ECHO \xFF\xFF");
}

TEST_F(TelnetServerTest, StopWithClientsConnectedReturnsAndClosesThem) {
  start();
  auto a = connect();
  auto b = connect();
  ASSERT_TRUE(b->send("echo half a li"));
  Client stuck(server_->port(), 4096);
  ASSERT_TRUE(stuck.send("big\r\nbig\r\n"));
  ASSERT_TRUE(open_sessions_reach(3));
  server_->stop();
  EXPECT_EQ(server_->sessions_open(), 0u);
  EXPECT_TRUE(a->wait_closed());
  EXPECT_TRUE(b->wait_closed());
  EXPECT_TRUE(stuck.wait_closed());
  server_->stop();  // idempotent
}

TEST_F(TelnetServerTest, StartFailsOnABadOrTakenAddress) {
  TelnetOptions bad;
  bad.host = "not-an-ip";
  TelnetServer by_name(bad, test_handler);
  std::string error;
  EXPECT_FALSE(by_name.start(&error));
  EXPECT_NE(error.find("not an IP address"), std::string::npos) << error;

  start();
  TelnetOptions taken;
  taken.port = server_->port();
  TelnetServer second(taken, test_handler);
  EXPECT_FALSE(second.start(&error));
  EXPECT_NE(error.find("cannot bind"), std::string::npos) << error;
  second.stop();  // never started: nothing to do

  std::string again;
  EXPECT_FALSE(server_->start(&again));
  EXPECT_EQ(again, "telnet server already started");
}

}  // namespace
}  // namespace confab::allocator
