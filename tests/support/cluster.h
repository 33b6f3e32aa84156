// Cluster: the cluster mode on loopback with real processes for a test — a private etcd member,
// confab-mcu nodes (--etcd, one worker each, port ranges of their own) and confab-allocator
// instances, all killed with the test.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "tests/support/daemon.h"
#include "tests/support/etcd.h"
#include "tests/support/rest_client.h"
#include "tests/support/wait_until.h"

namespace confab::test_support {

class Cluster {
 public:
  // Lease TTL of the nodes: the default (a shorter one risks a node starved of CPU by the
  // parallel suite being declared dead).
  static constexpr int kLeaseTtlSeconds = 3;
  static constexpr int kPortsPerNode = 40;
  static constexpr int kMaxNodes = 4;

  bool start_etcd() { return etcd_.start(); }
  EtcdServer& etcd() { return etcd_; }

  // A node with `id`, kPortsPerNode media ports of its own and `extra` flags, run with `env` added to
  // its environment; null (with the log in the failure) when it did not start.
  Daemon* start_node(const std::string& id, std::vector<std::string> extra = {},
                     const std::vector<std::string>& env = {}) {
    // One free range for the whole cluster, a slice of it per node: ranges found one at a time
    // would all be the same (nothing binds them until participants join).
    if (media_port_lo_ == 0) {
      const std::string range = free_media_ports(kPortsPerNode * kMaxNodes);
      EXPECT_FALSE(range.empty());
      if (range.empty()) return nullptr;
      media_port_lo_ = static_cast<uint16_t>(std::stoi(range.substr(0, range.find('-'))));
    }
    EXPECT_LT(started_nodes_, kMaxNodes);
    const int lo = media_port_lo_ + kPortsPerNode * started_nodes_++;
    const std::string ports = std::to_string(lo) + "-" + std::to_string(lo + kPortsPerNode - 1);
    std::vector<std::string> args = {"--workers", "1", "--video-workers", "1", "--media-ports", ports, "--etcd",
                                     etcd_.endpoint(), "--node-id", id, "--lease-ttl",
                                     std::to_string(kLeaseTtlSeconds), "--orphan-grace-ms", "2000"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto node = launch(CONFAB_MCU_BINARY, Daemon::mcu_defaults(args), args, "_" + id, env);
    EXPECT_TRUE(node->ready()) << node->log();
    if (!node->ready()) return nullptr;
    nodes_[id] = std::move(node);
    return nodes_[id].get();
  }
  Daemon* node(const std::string& id) { return nodes_.at(id).get(); }

  Daemon* start_allocator(std::vector<std::string> extra = {}, const std::vector<std::string>& env = {}) {
    std::vector<std::string> args = {"--etcd", etcd_.endpoint()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto allocator = launch(CONFAB_ALLOCATOR_BINARY, {}, args, "_allocator" + std::to_string(allocators_.size()), env);
    EXPECT_TRUE(allocator->ready()) << allocator->log();
    if (!allocator->ready()) return nullptr;
    allocators_.push_back(std::move(allocator));
    return allocators_.back().get();
  }
  Daemon* allocator(size_t i) { return allocators_.at(i).get(); }

  // Waits until allocator `i` lists exactly `ids` as nodes taking conferences (state up), or in
  // any state when `any_state`.
  bool wait_for_nodes(size_t i, const std::set<std::string>& ids, bool any_state = false) {
    Api api(allocator(i)->rest_port());
    return wait_until(
        [&] {
          const auto answer = api.get("/v1/nodes");
          if (answer.status != 200) return false;
          std::set<std::string> seen;
          for (const auto& node : answer.body["nodes"]) {
            if (!any_state && node["state"] != "up") continue;
            seen.insert(node["id"].get<std::string>());
          }
          return seen == ids;
        },
        std::chrono::seconds(30), std::chrono::milliseconds(50));
  }

  // The node hosting each conference, as `api` answers its creates: id -> node.
  static std::map<uint64_t, std::string> placements(Api& api) {
    std::map<uint64_t, std::string> out;
    const auto list = api.get("/v1/conferences");
    for (const auto& c : list.body["conferences"]) out[c["id"].get<uint64_t>()] = c["node"].get<std::string>();
    return out;
  }

 private:
  // `binary` as a Daemon, through env(1) when `env` adds variables to its environment.
  static std::unique_ptr<Daemon> launch(const std::string& binary, std::vector<std::string> defaults,
                                        const std::vector<std::string>& args, const std::string& tag,
                                        const std::vector<std::string>& env) {
    if (env.empty()) return std::make_unique<Daemon>(binary, defaults, args, tag);
    std::vector<std::string> prefix = env;
    prefix.push_back(binary);
    defaults.insert(defaults.begin(), prefix.begin(), prefix.end());
    return std::make_unique<Daemon>("env", defaults, args, tag);
  }

  EtcdServer etcd_;
  uint16_t media_port_lo_ = 0;
  int started_nodes_ = 0;
  std::map<std::string, std::unique_ptr<Daemon>> nodes_;
  std::vector<std::unique_ptr<Daemon>> allocators_;
};

}  // namespace confab::test_support
