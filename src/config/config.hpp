// config/config.hpp: the configuration model. Plain values, no behaviour; the loader fills
// it from YAML and CLI flags, snapshot.hpp compiles it for the data plane.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/strings.hpp"

namespace sluice::config {

struct Timeouts {
  int64_t connect_ms = 5000;
  int64_t first_byte_ms = 120000;  // from request sent to response headers
  int64_t idle_ms = 60000;         // longest gap between two stream chunks
  int64_t total_ms = 600000;       // whole exchange
};

struct Upstream {
  std::string name;
  std::string url;  // as written, e.g. https://api.openai.com/v1
  Url parsed;
  std::string api_key_env;   // name of the environment variable holding the key
  std::string api_key_file;  // or a file holding it
  std::vector<std::string> models;  // model ids it serves (optional)
  bool tls_verify = true;
  std::string ca_file;
  int max_idle_connections = 128;  // per worker
  Timeouts timeouts;
  double price_input_per_1m = 0;
  double price_output_per_1m = 0;
};

struct Route {
  std::string name;                    // what clients put in "model"
  std::vector<std::string> upstreams;  // tried in order on failure before the first byte
  std::string model;                   // upstream model id; empty = the route name
};

struct ApiKey {
  std::string tenant;
  std::string key_sha256;  // hex sha256 of the key; the key itself is never stored
};

struct AdminToken {
  std::string name;
  std::string role;  // viewer | operator | admin
  std::string token_sha256;
};

struct Limits {
  int64_t max_body_bytes = 8 << 20;
  int64_t max_header_bytes = 16 << 10;
  int64_t max_response_bytes = 64 << 20;
  int64_t max_sse_event_bytes = 1 << 20;
  int64_t header_timeout_ms = 10000;     // a whole request header+body must arrive in this time
  int64_t keepalive_timeout_ms = 75000;  // idle keep-alive connection
  int64_t client_write_timeout_ms = 30000;
  int64_t drain_timeout_ms = 30000;
  int64_t max_inflight_per_worker = 20000;
  int max_attempts = 2;  // upstream attempts before the first byte reached the client
};

struct RequestLog {
  bool enabled = true;
  std::string path;  // default <data_dir>/requests.jsonl
  int64_t queue_capacity = 65536;
  // Also log each chat request's body and the answer text (request_body, response_text),
  // e.g. for `sluice eval add-case`. Off by default: bodies can hold personal data.
  bool bodies = false;
};

struct Config {
  std::string source;  // file it came from, or "<flags>"
  std::string listen = "127.0.0.1:8080";
  std::string admin_listen = "127.0.0.1:8081";
  int threads = 0;  // 0 = number of cores
  std::string data_dir = "./sluice-data";
  bool allow_public_unauthenticated = false;
  Limits limits;
  RequestLog request_log;
  std::vector<Upstream> upstreams;
  std::vector<Route> routes;
  std::vector<ApiKey> api_keys;
  std::vector<AdminToken> admin_tokens;
};

}  // namespace sluice::config
