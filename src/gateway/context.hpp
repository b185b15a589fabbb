// gateway/context.hpp: everything one request carries through the pipeline. Stages read
// what earlier stages wrote; nothing here is shared with another request.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/snapshot.hpp"
#include "core/clock.hpp"
#include "json/chat.hpp"

namespace sluice::gateway {

enum class Endpoint { kChat, kEmbeddings, kModels };

struct RequestContext {
  // Set by the listener before the pipeline runs.
  std::string request_id;
  Clock::time_point t_start;
  Endpoint endpoint = Endpoint::kChat;
  std::string* body = nullptr;  // the client's body; stages may replace it
  std::string_view authorization;
  const config::Snapshot* snap = nullptr;

  // parse
  json::RequestInfo info;
  bool strip_usage = false;  // the gateway asked for usage the client did not ask for
  // authenticate
  std::string tenant;
  // route
  const config::Resolution* resolution = nullptr;
  // render: the release that served the request (from the route), if any
  const release::Compiled* release = nullptr;
  std::string_view vars_header;  // x-sluice-vars
  // Looks up a request header (the rollout's sticky session header); may be empty.
  std::function<std::string_view(std::string_view)> header;
  // route (rollouts): which arm serves the request, and whether it is mirrored
  bool candidate = false;       // served by the rollout's candidate release
  bool capture = false;         // keep the answer (refusal, schema and shadow checks)
  bool shadow = false;          // mirror to the candidate after the stable answer
  std::string shadow_body;      // the client's body before rendering, for the mirror
  std::string fallback_body;    // candidate requests: the client's body, to fall back to stable
  std::string log_body;         // request_log.bodies: the client's body as sent
  std::string candidate_failure;  // the candidate failed first (its error kind); stable answered
  double candidate_failed_ms = 0;
  // select_upstream: indices into snap->upstreams(), in try order
  std::vector<size_t> candidates;

  // forward / relay results
  std::string upstream;    // name of the upstream that answered (or was last tried)
  std::string fallback;    // the fallback step that answered ("pool/model", or "static": degraded)
  std::string cache;       // "hit" | "miss" on routes with a response cache
  int attempts = 0;
  int status = 0;          // what the client got (or, for a cut stream, the failure status)
  std::string error_kind;  // "" on success
  bool streamed = false;
  int64_t tokens_in = -1, tokens_out = -1;
  int64_t content_chunks = 0;
  Clock::time_point t_first_token{}, t_last_token{};
  std::string answer;         // captured answer text (bounded), when capture is set
  std::string finish_reason;  // of the first choice, when capture is set
};

inline constexpr size_t kMaxCapturedAnswer = 64 << 10;

}  // namespace sluice::gateway
