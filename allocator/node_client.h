// NodeClient: a typed client of one MCU node's REST control API (cpp-httplib), with which the
// cluster allocator creates conferences on a node under a given ID and forwards every conference
// and participant operation to it. Answers come back exactly as the node's ConferenceService gave
// them, errors included.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "allocator/api_types.h"

namespace httplib {
class Client;
}

namespace confab::allocator {

struct NodeClientOptions {
  // A node that does not accept within this is unavailable (503 NODE_UNAVAILABLE).
  std::chrono::milliseconds connect_timeout{1000};
  // A node that accepted but does not answer (or read) within this is unavailable too: a stuck
  // node must not hold the allocator's request for long.
  std::chrono::milliseconds read_timeout{1000};
  std::chrono::milliseconds write_timeout{1000};
  std::string token;  // non-empty: sent as "Authorization: Bearer <token>"
  // Keep-alive connections kept open between calls; calls beyond them at the same moment open
  // more, which close after use.
  size_t max_idle_connections = 8;
};

class NodeClient {
 public:
  // `base_url`: "http://IP:PORT" (NodeRegistration::control_url).
  explicit NodeClient(std::string base_url, NodeClientOptions options = {});
  ~NodeClient();
  NodeClient(const NodeClient&) = delete;
  NodeClient& operator=(const NodeClient&) = delete;

  const std::string& base_url() const { return base_url_; }

  // Every call is safe from any thread, and calls from different threads run at once (each on a
  // connection of its own). Errors: the node's own {"error": {code, message}} with its status;
  // 503 NODE_UNAVAILABLE "node <url>: <reason>" when it cannot be reached or does not answer in
  // time; 502 BAD_NODE_REPLY when what it answers is not what the API promises.

  // PUT /v1/conferences/{id}: every setting sent, none left to the node's defaults.
  ApiResult<ConferenceInfo> create(const ConferenceSettings& settings, uint64_t id);
  ApiResult<std::vector<ConferenceInfo>> list();
  ApiResult<ConferenceInfo> get(uint64_t id);
  ApiResult<ConferenceInfo> update(uint64_t id, const ConferencePatch& patch);
  ApiResult<Done> destroy(uint64_t id);

  ApiResult<ParticipantInfo> join(uint64_t conference, const ParticipantRequest& request);
  ApiResult<ParticipantInfo> participant(uint64_t conference, uint64_t participant);
  ApiResult<ParticipantInfo> update_participant(uint64_t conference, uint64_t participant,
                                                const ParticipantPatch& patch);
  ApiResult<Done> leave(uint64_t conference, uint64_t participant);

 private:
  // One request; a 2xx answer's body, or the error the call comes to.
  ApiResult<std::string> call(const char* method, const std::string& path, const std::string& body);
  // call() and the answer decoded by `decode` (a json_codec answer decoder).
  template <typename T, typename Decode>
  ApiResult<T> call_json(const char* method, const std::string& path, const std::string& body, Decode decode);
  std::unique_ptr<httplib::Client> acquire();
  void release(std::unique_ptr<httplib::Client> client);

  const std::string base_url_;
  const NodeClientOptions options_;
  std::mutex mutex_;  // guards idle_
  std::vector<std::unique_ptr<httplib::Client>> idle_;
};

}  // namespace confab::allocator
