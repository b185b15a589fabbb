// pipeline/stages.hpp: the request stages that run before any I/O, in order. Each returns an
// ApiError to answer the client with, or nothing to continue. Each is also a filter of the
// chain (pipeline/filters.hpp); the functions stay callable alone for the endpoints that
// need only one of them (listing models, feedback: authenticate).
#pragma once
#include <optional>
#include <string>

#include "core/error.hpp"
#include "metrics/metrics.hpp"
#include "pipeline/context.hpp"
#include "pipeline/filter.hpp"

namespace sluice::pipeline {

std::optional<ApiError> authenticate(RequestContext& ctx, Env& env);
// A request to another API's front door (Responses, Anthropic Messages): its body becomes a
// chat completions body and ctx.front the translator of the answer (bridge/front.hpp).
std::optional<ApiError> translate(RequestContext& ctx, Env& env);
std::optional<ApiError> parse(RequestContext& ctx, Env& env);
std::optional<ApiError> admit(RequestContext& ctx, Env& env);
std::optional<ApiError> route(RequestContext& ctx, Env& env);
std::optional<ApiError> render(RequestContext& ctx, Env& env);
std::optional<ApiError> select_upstream(RequestContext& ctx, Env& env);

// Rollouts: picks the arm (sticky by user or session) and whether to mirror (route stage).
void assign_arm(RequestContext& ctx);

// What the metrics and request log filters record for a finished request.
metrics::RequestSample to_sample(const RequestContext& ctx, Clock::time_point t_end);
std::string request_log_line(const RequestContext& ctx, Clock::time_point t_end);

}  // namespace sluice::pipeline
