// confab-control-load: the control plane's load generator. N concurrent clients create and destroy
// conferences on a running confab-mcu through REST or telnet, as fast as answers come; prints
// requests/s and latency percentiles per operation.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "transport/socket_address.h"

namespace {

using Clock = std::chrono::steady_clock;

// One client's connection: create returns the new ID, destroy whether it worked.
class Client {
 public:
  virtual ~Client() = default;
  virtual std::optional<uint64_t> create() = 0;
  virtual bool destroy(uint64_t id) = 0;
};

class RestClient final : public Client {
 public:
  RestClient(const std::string& host, uint16_t port, const std::string& token) : http_(host, port) {
    http_.set_keep_alive(true);
    http_.set_tcp_nodelay(true);  // headers and body go out in separate writes
    if (!token.empty()) http_.set_bearer_token_auth(token.c_str());
  }
  std::optional<uint64_t> create() override {
    auto res = http_.Post("/v1/conferences", R"({"name":"load"})", "application/json");
    if (!res || res->status != 201) return std::nullopt;
    return nlohmann::json::parse(res->body)["id"].get<uint64_t>();
  }
  bool destroy(uint64_t id) override {
    auto res = http_.Delete(("/v1/conferences/" + std::to_string(id)).c_str());
    return res && res->status == 204;
  }

 private:
  httplib::Client http_;
};

class TelnetClient final : public Client {
 public:
  TelnetClient(const confab::transport::SocketAddress& address, const std::string& token) {
    fd_ = ::socket(address.family(), SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ok_ = ::connect(fd_, address.sockaddr_ptr(), address.length()) == 0 && read_line().has_value();  // greeting
    if (ok_ && !token.empty()) ok_ = command("auth " + token).rfind("OK", 0) == 0;
  }
  ~TelnetClient() override { ::close(fd_); }
  bool ok() const { return ok_; }

  std::optional<uint64_t> create() override {
    const std::string reply = command("create name=load");
    if (reply.rfind("OK id=", 0) != 0) return std::nullopt;
    return std::stoull(reply.substr(6));
  }
  bool destroy(uint64_t id) override { return command("destroy " + std::to_string(id)) == "OK"; }

 private:
  std::string command(const std::string& line) {
    const std::string out = line + "\r\n";
    if (::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) return "";
    return read_line().value_or("");
  }
  std::optional<std::string> read_line() {
    for (;;) {
      const size_t eol = buffer_.find("\r\n");
      if (eol != std::string::npos) {
        std::string line = buffer_.substr(0, eol);
        buffer_.erase(0, eol + 2);
        return line;
      }
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  int fd_ = -1;
  bool ok_ = false;
  std::string buffer_;
};

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return sorted[i];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"confab-control-load: concurrent conference create+destroy against a running confab-mcu"};
  std::string rest, telnet, token;
  unsigned clients = 4;
  unsigned per_client = 2000;
  app.add_option("--rest", rest, "IP:PORT of the daemon's REST API");
  app.add_option("--telnet", telnet, "IP:PORT of the daemon's telnet API");
  app.add_option("--token", token, "the daemon's --token, if it has one");
  app.add_option("--clients", clients, "concurrent clients (threads, one connection each)")->default_val(4);
  app.add_option("--cycles", per_client, "create+destroy cycles per client")->default_val(2000);
  CLI11_PARSE(app, argc, argv);
  const auto address = confab::transport::SocketAddress::parse(rest.empty() ? telnet : rest);
  if (!address || rest.empty() == telnet.empty()) {
    std::fprintf(stderr, "give exactly one of --rest IP:PORT or --telnet IP:PORT\n");
    return 2;
  }

  std::vector<std::vector<double>> create_us(clients), destroy_us(clients);
  std::atomic<uint64_t> failures{0};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (unsigned c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::unique_ptr<Client> client;
      if (!rest.empty()) {
        client = std::make_unique<RestClient>(address->ip_string(), address->port(), token);
      } else {
        auto t = std::make_unique<TelnetClient>(*address, token);
        if (!t->ok()) {
          failures += per_client;
          return;
        }
        client = std::move(t);
      }
      create_us[c].reserve(per_client);
      destroy_us[c].reserve(per_client);
      for (unsigned i = 0; i < per_client; ++i) {
        const auto t0 = Clock::now();
        const auto id = client->create();
        const auto t1 = Clock::now();
        if (!id) {
          ++failures;
          continue;
        }
        const bool destroyed = client->destroy(*id);
        const auto t2 = Clock::now();
        if (!destroyed) ++failures;
        create_us[c].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        destroy_us[c].push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> creates, destroys;
  for (unsigned c = 0; c < clients; ++c) {
    creates.insert(creates.end(), create_us[c].begin(), create_us[c].end());
    destroys.insert(destroys.end(), destroy_us[c].begin(), destroy_us[c].end());
  }
  std::sort(creates.begin(), creates.end());
  std::sort(destroys.begin(), destroys.end());
  std::printf("api=%s clients=%u cycles=%zu failures=%llu seconds=%.2f\n", rest.empty() ? "telnet" : "rest", clients,
              creates.size(), static_cast<unsigned long long>(failures.load()), seconds);
  // A cycle is one create and one destroy, each a full request/answer round trip.
  std::printf("cycles/s=%.0f requests/s=%.0f\n", static_cast<double>(creates.size()) / seconds,
              2.0 * static_cast<double>(creates.size()) / seconds);
  std::printf("create_us p50=%.0f p90=%.0f p99=%.0f max=%.0f\n", percentile(creates, 0.5), percentile(creates, 0.9),
              percentile(creates, 0.99), creates.empty() ? 0.0 : creates.back());
  std::printf("destroy_us p50=%.0f p90=%.0f p99=%.0f max=%.0f\n", percentile(destroys, 0.5),
              percentile(destroys, 0.9), percentile(destroys, 0.99), destroys.empty() ? 0.0 : destroys.back());
  return failures == 0 ? 0 : 1;
}
