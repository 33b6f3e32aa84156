// confab-control-load: the control plane's load generator. N concurrent clients create and destroy
// conferences on a running confab-mcu or confab-allocator through REST or telnet, as fast as
// answers come; prints requests/s and latency percentiles per operation. By default each client
// runs create+destroy cycles; with --split every client first creates all its conferences, then
// (after all clients are done creating) destroys them, and each phase has its own rate.
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
#include <condition_variable>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <mutex>
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
  std::string error;  // why the last call that failed did
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
    if (!res || res->status != 201) return failed("POST", res), std::nullopt;
    return nlohmann::json::parse(res->body)["id"].get<uint64_t>();
  }
  bool destroy(uint64_t id) override {
    auto res = http_.Delete(("/v1/conferences/" + std::to_string(id)).c_str());
    if (!res || res->status != 204) return failed("DELETE", res), false;
    return true;
  }

 private:
  void failed(const char* method, const httplib::Result& res) {
    error = std::string(method) + ": " + (res ? std::to_string(res->status) + " " + res->body : httplib::to_string(res.error()));
  }

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
    if (reply.rfind("OK id=", 0) != 0) return error = "create: " + reply, std::nullopt;
    return std::stoull(reply.substr(6));
  }
  bool destroy(uint64_t id) override {
    const std::string reply = command("destroy " + std::to_string(id));
    if (reply != "OK") return error = "destroy: " + reply, false;
    return true;
  }

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
  bool split = false;
  app.add_flag("--split", split, "create every conference first, then destroy them all (a rate per phase)");
  CLI11_PARSE(app, argc, argv);
  const auto address = confab::transport::SocketAddress::parse(rest.empty() ? telnet : rest);
  if (!address || rest.empty() == telnet.empty()) {
    std::fprintf(stderr, "give exactly one of --rest IP:PORT or --telnet IP:PORT\n");
    return 2;
  }

  std::vector<std::vector<double>> create_us(clients), destroy_us(clients);
  std::atomic<uint64_t> failures{0};
  std::mutex failure_mutex;
  std::string first_failure;
  const auto fail = [&](const Client& client) {
    if (failures++ != 0) return;
    std::lock_guard lock(failure_mutex);
    first_failure = client.error;
  };
  std::vector<std::thread> threads;
  // --split: the clients wait here between creating and destroying; the last one to arrive notes
  // when the create phase ended.
  std::mutex phase_mutex;
  std::condition_variable phase_cv;
  unsigned creating = clients;
  Clock::time_point creates_done;
  const auto start = Clock::now();
  for (unsigned c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::unique_ptr<Client> client;
      if (!rest.empty()) {
        client = std::make_unique<RestClient>(address->ip_string(), address->port(), token);
      } else {
        auto t = std::make_unique<TelnetClient>(*address, token);
        if (t->ok()) {
          client = std::move(t);
        } else {
          failures += per_client;  // and this client does nothing (but still meets the others)
        }
      }
      create_us[c].reserve(per_client);
      destroy_us[c].reserve(per_client);
      if (split) {
        std::vector<uint64_t> ids;
        for (unsigned i = 0; client && i < per_client; ++i) {
          const auto t0 = Clock::now();
          const auto id = client->create();
          if (!id) {
            fail(*client);
            continue;
          }
          create_us[c].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
          ids.push_back(*id);
        }
        {
          std::unique_lock lock(phase_mutex);
          if (--creating == 0) {
            creates_done = Clock::now();
            phase_cv.notify_all();
          }
          phase_cv.wait(lock, [&] { return creating == 0; });
        }
        for (const uint64_t id : ids) {
          const auto t0 = Clock::now();
          if (!client->destroy(id)) fail(*client);
          destroy_us[c].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
        return;
      }
      for (unsigned i = 0; client && i < per_client; ++i) {
        const auto t0 = Clock::now();
        const auto id = client->create();
        const auto t1 = Clock::now();
        if (!id) {
          fail(*client);
          continue;
        }
        const bool destroyed = client->destroy(*id);
        const auto t2 = Clock::now();
        if (!destroyed) fail(*client);
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
  if (split) {
    const double create_seconds = std::chrono::duration<double>(creates_done - start).count();
    std::printf("creates/s=%.0f destroys/s=%.0f\n", static_cast<double>(creates.size()) / create_seconds,
                static_cast<double>(destroys.size()) / (seconds - create_seconds));
  } else {
    // A cycle is one create and one destroy, each a full request/answer round trip.
    std::printf("cycles/s=%.0f requests/s=%.0f\n", static_cast<double>(creates.size()) / seconds,
                2.0 * static_cast<double>(creates.size()) / seconds);
  }
  std::printf("create_us p50=%.0f p90=%.0f p99=%.0f max=%.0f\n", percentile(creates, 0.5), percentile(creates, 0.9),
              percentile(creates, 0.99), creates.empty() ? 0.0 : creates.back());
  std::printf("destroy_us p50=%.0f p90=%.0f p99=%.0f max=%.0f\n", percentile(destroys, 0.5),
              percentile(destroys, 0.9), percentile(destroys, 0.99), destroys.empty() ? 0.0 : destroys.back());
  if (failures != 0) std::printf("first failure: %s\n", first_failure.c_str());
  return failures == 0 ? 0 : 1;
}
