// gateway/stages.hpp: the named request stages that run before any I/O, in order. Each
// returns an ApiError to answer the client with, or nothing to continue. Later features
// (release selection, prompt rendering, rate limits) are new entries in kStages.
#pragma once
#include <array>
#include <optional>

#include "core/error.hpp"
#include "gateway/context.hpp"
#include "metrics/metrics.hpp"

namespace simdjson::dom {
class parser;
}

namespace sluice::gateway {

struct StageEnv {
  simdjson::dom::parser& json;
  metrics::Shard& metrics;
  int64_t max_inflight;
};

using StageFn = std::optional<ApiError> (*)(RequestContext&, StageEnv&);
struct Stage {
  const char* name;
  StageFn run;
};

std::optional<ApiError> authenticate(RequestContext& ctx, StageEnv& env);
std::optional<ApiError> parse(RequestContext& ctx, StageEnv& env);
std::optional<ApiError> admit(RequestContext& ctx, StageEnv& env);
std::optional<ApiError> route(RequestContext& ctx, StageEnv& env);
std::optional<ApiError> render(RequestContext& ctx, StageEnv& env);
std::optional<ApiError> select_upstream(RequestContext& ctx, StageEnv& env);

// Rollouts: picks the arm (sticky by user or session) and whether to mirror (route stage).
void assign_arm(RequestContext& ctx);

// Authentication runs before the body is parsed: unauthenticated clients learn nothing
// about their payload and cost no parse.
inline constexpr std::array<Stage, 6> kStages = {{
    {"authenticate", authenticate},
    {"parse", parse},
    {"admit", admit},
    {"route", route},
    {"render", render},
    {"select_upstream", select_upstream},
}};

// The account stage: metrics sample and the request log line for a finished request.
metrics::RequestSample to_sample(const RequestContext& ctx, Clock::time_point t_end);
std::string request_log_line(const RequestContext& ctx, Clock::time_point t_end);

}  // namespace sluice::gateway
