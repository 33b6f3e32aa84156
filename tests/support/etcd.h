// EtcdServer: a private single-member etcd (scripts/etcd.sh run) on kernel-picked loopback ports,
// data in a temporary directory, for the cluster mode's tests; can be killed and restarted on the
// same data to test outages.
#pragma once

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "allocator/etcd_client.h"
#include "tests/support/free_port.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait_until.h"

namespace confab::test_support {

class EtcdServer {
 public:
  EtcdServer() : client_port_(free_tcp_port()), peer_port_(free_tcp_port()) {
    char dir_template[] = "/tmp/confab_etcd_XXXXXX";
    dir_ = ::mkdtemp(dir_template);
  }
  ~EtcdServer() {
    process_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // Starts (or restarts, on the same data) the member and waits until a write succeeds.
  bool start() {
    process_ = std::make_unique<Subprocess>(
        std::vector<std::string>{std::string(CONFAB_SOURCE_DIR) + "/scripts/etcd.sh", "run", dir_,
                                 std::to_string(client_port_), std::to_string(peer_port_)},
        dir_ + "/etcd.log");
    allocator::EtcdClient client(allocator::EtcdOptions{endpoint(), std::chrono::milliseconds(500)});
    return wait_until([&] { return bool(client.put("/confab-test/ready", "1")); }, std::chrono::seconds(20),
                      std::chrono::milliseconds(50));
  }
  // SIGKILL: the member vanishes mid-request.
  void kill() { process_.reset(); }
  // SIGSTOP / SIGCONT: requests sent meanwhile wait unanswered (connections stay open).
  void freeze() {
    if (process_) process_->signal(SIGSTOP);
  }
  void thaw() {
    if (process_) process_->signal(SIGCONT);
  }

  // Compacts the member's history up to `revision` (etcdctl compact): reads and watches from
  // before it are refused from then on.
  bool compact(int64_t revision) {
    Subprocess etcdctl({"etcdctl", "--endpoints=" + endpoint(), "compact", std::to_string(revision)},
                       dir_ + "/etcdctl.log");
    std::optional<int> code;
    wait_until([&] { return (code = etcdctl.poll()).has_value(); }, std::chrono::seconds(20),
               std::chrono::milliseconds(10));
    return code == 0;
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(client_port_); }
  allocator::EtcdOptions options() const { return allocator::EtcdOptions{endpoint(), std::chrono::milliseconds(1000)}; }
  const std::string& dir() const { return dir_; }

 private:
  uint16_t client_port_;
  uint16_t peer_port_;
  std::string dir_;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace confab::test_support
