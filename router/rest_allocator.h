// RestAllocator: the conference allocator plugin over the allocator's REST API (cpp-httplib client).
#pragma once

#include <httplib.h>

#include <memory>
#include <mutex>
#include <string>

#include "router/queued_allocator.h"

namespace confab::router {

struct RestAllocatorOptions {
  // The allocator's REST root: scheme, host, port and an optional path prefix. Only http: the
  // Debian cpp-httplib build the router links has no TLS in its client.
  std::string base_url = "http://127.0.0.1:8080";
  // Sent as "Authorization: Bearer TOKEN" when the allocator runs with --token.
  std::string token;
  AllocatorClientOptions client;
};

// create_conf: POST {base}/v1/conferences {"name", "layout", "max_participants"} (the fields set)
// -> 201 {"id", "media_ip", ...} -> conf_created(ref, {media_ip, id, base + "/v1/conferences/ID/participants"}).
// Connection errors, timeouts and 5xx are retried; a 4xx is final. The failure message names the
// request, the status and the allocator's {"error": {"code", "message"}}.
// watch_conf: GET {base}/v1/conferences/ID every poll interval; the count is the length of its
// "participants"; a 404 ends the watch.
// delete_conf: DELETE {base}/v1/conferences/ID -> 204 (a 404 means it is gone already).
// "http://127.0.0.1:8080/v1/conferences/7/participants" from a base URL (a trailing '/' is
// dropped) and a conference ID: what a participant POSTs to join (ConfAddress::join_url).
std::string participants_url(std::string_view base_url, std::string_view conference_id);
// Whether `url` is http://HOST[:PORT][/PREFIX].
bool is_http_base_url(std::string_view url);

class RestAllocator final : public QueuedAllocator {
 public:
  // An empty string, or what is wrong with the options (a bad URL, 0 attempts...).
  static std::string validate(const RestAllocatorOptions& options);

  explicit RestAllocator(RestAllocatorOptions options);
  ~RestAllocator() override;

  std::string_view name() const override { return "rest_allocator"; }

 protected:
  Attempt<ConfAddress> try_create(const ConferenceRequest& request) override;
  Attempt<ConfStatus> try_status(const std::string& conference_id) override;
  std::string join_url_of(const std::string& conference_id) const override;
  Attempt<std::monostate> try_delete(const std::string& conference_id) override;
  void interrupt() override;
  void close() override;

 private:
  // The scheme://host:port part of base_url, and the path prefix ("" or "/api").
  std::string origin_;
  std::string prefix_;
  const RestAllocatorOptions rest_options_;
  // Used on the worker thread; interrupt() calls its stop() from the stopping thread.
  std::unique_ptr<httplib::Client> http_;
};

}  // namespace confab::router
