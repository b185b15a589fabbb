// pipeline/filters.hpp: the built-in filters, in chain order.
//
//   authenticate  parse  admit  route  render  select_upstream   request: the stages
//   rate_limit       request: reserve the tenant's requests and tokens (429, x-ratelimit-*);
//                    completion: reconcile with the real usage
//   response_cache   request: answer a hit; whole answer: store it
//   last_good        whole answer / completion: keep the route's last good answer (degraded mode)
//   answer           each event / whole answer: tokens, first and last token, the answer text
//   metrics          response head: upstream error statuses; completion: the request sample
//   request_log      completion: one JSON line
//   rollout          completion: the arm's observation, the mirror, a failed candidate
#pragma once
#include "pipeline/filter.hpp"

namespace sluice::pipeline {

// The filter of each name, or null. Filters are stateless singletons shared by every chain.
const Filter* builtin_filter(std::string_view name);

// A stored whole completion as the answer to this request (replayed as a stream when the
// client asked for one), with its usage accounted; nullopt when it cannot be replayed so.
std::optional<Reply> stored_answer(RequestContext& ctx, Env& env, const std::string& stored);

// Whether a finished request is evidence about the release that served it (not a client
// mistake or hang-up, not the gateway's own admission).
bool says_something_about_release(const RequestContext& ctx);
// What a rollout learns from one answered request of either arm.
rollout::Observation observe(const RequestContext& ctx, Clock::time_point t_end);
// What a finished request cost in US dollars on the upstream that served it (its tokens,
// cached tokens and share of an hourly price); an answer generated with unknown usage costs
// its admission estimate. -1 when no priced upstream served it. The chain sets
// ctx.cost_usd from it before the completion hooks run.
double request_cost(const RequestContext& ctx, Clock::time_point t_end);

}  // namespace sluice::pipeline
