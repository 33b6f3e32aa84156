// Holds the real daemon to docs/openapi.json: the served document is the file, every documented
// operation is routed and answers a documented status (and media type), every undocumented method
// of a documented path is a 405 whose Allow lists the documented ones, and the document's own
// references and error codes are well-formed.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/support/daemon.h"
#include "tests/support/rest_client.h"

namespace confab::allocator {
namespace {

using nlohmann::json;
using test_support::Api;
using test_support::conference_path;
using test_support::error_code;
using test_support::error_message;
using test_support::header;

// The order in which rest_server.cpp's route_table lists a route's methods in Allow.
const std::vector<std::string> kAllowOrder = {"GET", "POST", "PUT", "PATCH", "DELETE"};
// Methods a client might try that the document could describe; HEAD is left out because HTTP
// answers it wherever GET is served (RFC 9110 9.3.2).
const std::vector<std::string> kProbeMethods = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"};

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

// "text/plain; version=0.0.4" -> "text/plain"
std::string media_type(const std::string& content_type) { return content_type.substr(0, content_type.find(';')); }

const std::string& openapi_file_text() {
  static const std::string text = test_support::read_text_file(std::string(CONFAB_SOURCE_DIR) + "/docs/openapi.json");
  return text;
}

const json& document() {
  static const json doc = json::parse(openapi_file_text(), nullptr, false);
  return doc;
}

// The documented methods of `path`, upper-case, in Allow order.
std::vector<std::string> documented_methods(const json& path_item) {
  std::vector<std::string> methods;
  for (const std::string& method : kAllowOrder) {
    if (path_item.contains(lower(method))) methods.push_back(method);
  }
  return methods;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "" : ", ") + part;
  return out;
}

// Every "$ref" anywhere under `node`, with the JSON pointer where it sits.
void collect_refs(const json& node, const std::string& where, std::vector<std::pair<std::string, std::string>>& out) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if (key == "$ref" && value.is_string()) out.emplace_back(where, value.get<std::string>());
      collect_refs(value, where + "/" + key, out);
    }
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i) collect_refs(node[i], where + "/" + std::to_string(i), out);
  }
}

TEST(OpenApiDocumentTest, IsOpenApi3WithResolvableRefsAndWellFormedErrorCodes) {
  ASSERT_FALSE(openapi_file_text().empty()) << "cannot read docs/openapi.json under " << CONFAB_SOURCE_DIR;
  const json& doc = document();
  ASSERT_TRUE(doc.is_object()) << "docs/openapi.json is not JSON";
  ASSERT_TRUE(doc["openapi"].is_string());
  EXPECT_TRUE(std::regex_match(doc["openapi"].get<std::string>(), std::regex(R"(3\.0\.[0-9]+)"))) << doc["openapi"];
  ASSERT_TRUE(doc["paths"].is_object() && !doc["paths"].empty());

  // Every $ref is local and resolves inside components.
  std::vector<std::pair<std::string, std::string>> refs;
  collect_refs(doc, "", refs);
  EXPECT_GT(refs.size(), 10u);
  for (const auto& [where, ref] : refs) {
    SCOPED_TRACE(where);
    ASSERT_EQ(ref.rfind("#/components/", 0), 0u) << ref;
    EXPECT_TRUE(doc.contains(json::json_pointer(ref.substr(1)))) << ref << " does not resolve";
  }

  // Every response of every operation has a description; every non-2xx JSON response is the Error
  // schema; every error code the descriptions and examples name is UPPER_SNAKE.
  const std::regex code_pattern("^[A-Z][A-Z0-9_]*$");
  EXPECT_EQ(doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["pattern"],
            "^[A-Z][A-Z0-9_]*$");
  size_t error_responses = 0;
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const std::string& method : documented_methods(item)) {
      const json& operation = item[lower(method)];
      SCOPED_TRACE(method + " " + path);
      ASSERT_TRUE(operation.contains("responses"));
      bool has_success = false;
      for (const auto& [status, response] : operation["responses"].items()) {
        EXPECT_TRUE(std::regex_match(status, std::regex("[1-5][0-9][0-9]"))) << status;
        EXPECT_TRUE(response.contains("description")) << status;
        has_success = has_success || status[0] == '2';
        if (status[0] == '2' || !response.contains("content")) continue;
        ++error_responses;
        const json& content = response["content"];
        ASSERT_TRUE(content.contains("application/json")) << status;
        EXPECT_EQ(content["application/json"]["schema"]["$ref"], "#/components/schemas/Error") << status;
        // Codes named in an example, or as the leading UPPER_SNAKE words of the description.
        if (content["application/json"].contains("example")) {
          const json& example = content["application/json"]["example"];
          ASSERT_TRUE(example.contains("error")) << status;
          EXPECT_TRUE(std::regex_match(example["error"]["code"].get<std::string>(), code_pattern)) << status;
        }
        const std::string description = response["description"].get<std::string>();
        const std::regex named(R"(\b([A-Z][A-Z0-9]*_[A-Z0-9_]+)\b)");
        for (auto it = std::sregex_iterator(description.begin(), description.end(), named);
             it != std::sregex_iterator(); ++it) {
          EXPECT_TRUE(std::regex_match((*it)[1].str(), code_pattern)) << (*it)[1].str();
        }
      }
      EXPECT_TRUE(has_success);
    }
  }
  EXPECT_GT(error_responses, 20u);
}

class OpenApiTest : public test_support::DaemonFixture {
 protected:
  void start(std::vector<std::string> extra = {}) { DaemonFixture::start(std::move(extra), 60, 1); }
  Api api(std::string token = "") { return Api(daemon_->rest_port(), std::move(token)); }

  // A fresh conference with one participant whose audio remote is known (so its SDP can be
  // written); `path` with {id} and {pid} filled in for them, and {node} with the daemon's node.
  std::string concrete(Api& a, const std::string& path) {
    const auto conference = a.post("/v1/conferences", R"({"name": "openapi"})");
    EXPECT_EQ(conference.status, 201) << conference.text;
    const uint64_t id = conference.body.value("id", uint64_t{0});
    const auto participant = a.post(conference_path(id) + "/participants",
                                    R"({"name": "p", "audio": {"codec": "opus", "remote": "127.0.0.1:5004"}})");
    EXPECT_EQ(participant.status, 201) << participant.text;
    const uint64_t pid = participant.body.value("id", uint64_t{0});
    return replace_all(replace_all(replace_all(path, "{id}", std::to_string(id)), "{pid}", std::to_string(pid)),
                       "{node}", "local");
  }

};

// A body that makes `method` on `path` succeed, and its content type.
std::string success_body(const std::string& method, const std::string& path) {
  if (method == "POST" && path == "/v1/conferences") return R"({"name": "made", "layout": "3x3"})";
  if (method == "PATCH" && path == "/v1/conferences/{id}") return R"({"layout": "1x1"})";
  if (method == "PUT" && path == "/v1/conferences/{id}") return R"({"name": "placed"})";
  if (method == "POST" && path == "/v1/conferences/{id}/participants") return R"({"audio": {"codec": "pcmu"}})";
  if (method == "PATCH" && path == "/v1/conferences/{id}/participants/{pid}") return R"({"muted": true})";
  return "";
}

TEST_F(OpenApiTest, ServesTheDocumentByteForByte) {
  start();
  Api a = api();
  const auto served = a.get("/v1/openapi.json");
  ASSERT_EQ(served.status, 200);
  EXPECT_EQ(media_type(header(served, "Content-Type")), "application/json");
  EXPECT_EQ(served.text.size(), openapi_file_text().size());
  EXPECT_TRUE(served.text == openapi_file_text()) << "GET /v1/openapi.json differs from docs/openapi.json";
  ASSERT_TRUE(served.body.is_object());
  EXPECT_TRUE(std::regex_match(served.body["openapi"].get<std::string>(), std::regex(R"(3\.0\.[0-9]+)")));
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(OpenApiTest, EveryDocumentedOperationIsRoutedAndAnswersADocumentedStatus) {
  start();
  Api a = api();
  const json& doc = document();
  ASSERT_TRUE(doc.is_object());
  size_t operations = 0;
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const std::string& method : documented_methods(item)) {
      SCOPED_TRACE(method + " " + path);
      ++operations;
      const json& responses = item[lower(method)]["responses"];
      std::string success;  // the documented 2xx
      for (const auto& [status, response] : responses.items()) {
        if (status[0] == '2') success = status;
      }
      ASSERT_FALSE(success.empty());
      // The daemon's one node cannot be drained: what it answers is the documented 409.
      const bool drain = path == "/v1/nodes/{node}/drain";
      if (drain) success = "409";
      // PUT creates under the ID given, so it needs one nobody has (and has no "missing" ID).
      const bool put = method == "PUT";

      const std::string target = put ? conference_path(1000000 + operations) : concrete(a, path);
      const auto got = a.send(method, target, success_body(method, path));
      EXPECT_FALSE(got.status == 404 && error_message(got).rfind("no route", 0) == 0) << got.text;
      EXPECT_NE(got.status, 405) << got.text;
      EXPECT_EQ(std::to_string(got.status), success) << got.text;
      ASSERT_TRUE(responses.contains(std::to_string(got.status))) << got.status << " is not documented";
      const json& response = responses[std::to_string(got.status)];
      if (response.contains("content")) {
        EXPECT_TRUE(response["content"].contains(media_type(header(got, "Content-Type"))))
            << header(got, "Content-Type") << " is not documented for " << got.status;
      } else {
        EXPECT_TRUE(got.text.empty()) << got.text;
      }

      // With IDs naming nothing: a documented 404. With a body that is not JSON: a documented 400.
      if (path.find('{') != std::string::npos && !put) {
        const std::string missing =
            replace_all(replace_all(replace_all(path, "{id}", "999999"), "{pid}", "999999"), "{node}", "nowhere");
        const auto not_found = a.send(method, missing, success_body(method, path));
        EXPECT_EQ(not_found.status, 404) << not_found.text;
        EXPECT_EQ(error_code(not_found), "NOT_FOUND") << not_found.text;
        EXPECT_TRUE(responses.contains("404")) << "404 is not documented";
      }
      if (item[lower(method)].contains("requestBody")) {
        const auto bad = a.send(method, concrete(a, path), "{bad json");
        EXPECT_EQ(bad.status, 400) << bad.text;
        EXPECT_EQ(error_code(bad), "BAD_JSON") << bad.text;
        EXPECT_TRUE(responses.contains("400")) << "400 is not documented";
      }
    }
  }
  EXPECT_EQ(operations, 19u);
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(OpenApiTest, UndocumentedMethodsAre405WithTheDocumentedAllow) {
  start();
  Api a = api();
  const json& doc = document();
  ASSERT_TRUE(doc.is_object());
  for (const auto& [path, item] : doc["paths"].items()) {
    const std::vector<std::string> documented = documented_methods(item);
    const std::string allow = join(documented);
    const std::string target = concrete(a, path);
    for (const std::string& method : kProbeMethods) {
      if (std::find(documented.begin(), documented.end(), method) != documented.end()) continue;
      SCOPED_TRACE(method + " " + path);
      const auto got = a.send(method, target, method == "TRACE" ? "" : "{}");
      EXPECT_EQ(got.status, 405) << got.text;
      EXPECT_EQ(error_code(got), "METHOD_NOT_ALLOWED") << got.text;
      EXPECT_EQ(header(got, "Allow"), allow);
    }
    // HEAD is GET without the body (RFC 9110 9.3.2), wherever GET is documented.
    if (item.contains("get")) {
      const auto head = a.send("HEAD", target);
      EXPECT_EQ(head.status, a.get(target).status) << "HEAD " << path;
      EXPECT_TRUE(head.text.empty()) << "HEAD " << path;
    }
    // No operation object the document does not know the method of.
    for (const auto& [key, value] : item.items()) {
      EXPECT_TRUE(key == "parameters" || key == "summary" || key == "description" ||
                  std::find(kAllowOrder.begin(), kAllowOrder.end(), upper(key)) != kAllowOrder.end())
          << path << " has " << key;
    }
  }
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

TEST_F(OpenApiTest, EveryOperationButHealthzDocumentsAndAnswers401WithoutTheToken) {
  start({"--token", "t0ken"});
  Api anonymous = api();
  Api member = api("t0ken");
  const json& doc = document();
  ASSERT_TRUE(doc.is_object());
  for (const auto& [path, item] : doc["paths"].items()) {
    const std::string target = concrete(member, path);
    for (const std::string& method : documented_methods(item)) {
      SCOPED_TRACE(method + " " + path);
      const json& operation = item[lower(method)];
      // "security": [] opts out of the document-wide bearer requirement.
      const bool open = operation.contains("security") && operation["security"].empty();
      EXPECT_EQ(open, path == "/healthz");
      const auto got = anonymous.send(method, target, success_body(method, path));
      if (open) {
        EXPECT_EQ(got.status, 200) << got.text;
        continue;
      }
      EXPECT_EQ(got.status, 401) << got.text;
      EXPECT_EQ(error_code(got), "UNAUTHORIZED");
      EXPECT_TRUE(operation["responses"].contains("401")) << "401 is not documented";
    }
  }
  EXPECT_EQ(daemon_->stop(), std::optional<int>(0));
}

}  // namespace
}  // namespace confab::allocator
