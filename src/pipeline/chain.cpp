#include "pipeline/filter.hpp"
#include "pipeline/filters.hpp"  // request_cost

namespace sluice::pipeline {

Chain::Chain(std::vector<const Filter*> filters) : all_(std::move(filters)) {
  for (const Filter* f : all_) {
    const unsigned h = f->hooks();
    if (h & kOnRequest) request_.push_back(f);
    if (h & kOnHead) head_.push_back(f);
    if (h & kOnEvent) event_.push_back(f);
    if (h & kOnBody) body_.push_back(f);
    if (h & kOnComplete) complete_.push_back(f);
  }
}

Verdict Chain::on_request(RequestContext& ctx, Env& env) const {
  for (const Filter* f : request_) {
    Verdict v = f->on_request(ctx, env);
    if (!v.proceed()) return v;
  }
  return Verdict::next();
}

void Chain::on_head(RequestContext& ctx, const Head& h, Env& env) const {
  for (const Filter* f : head_) f->on_head(ctx, h, env);
}

void Chain::on_event(RequestContext& ctx, const Event& e, Env& env) const {
  for (const Filter* f : event_) f->on_event(ctx, e, env);
}

std::optional<ApiError> Chain::on_body(RequestContext& ctx, std::string_view body, Env& env) const {
  for (const Filter* f : body_) {
    if (auto e = f->on_body(ctx, body, env)) return e;
  }
  return std::nullopt;
}

void Chain::on_complete(RequestContext& ctx, Clock::time_point t_end, Env& env) const {
  ctx.cost_usd = request_cost(ctx, t_end);  // one figure for budgets, metrics, the log and rollouts
  for (const Filter* f : complete_) f->on_complete(ctx, t_end, env);
}

std::vector<std::string_view> Chain::names() const {
  std::vector<std::string_view> out;
  for (const Filter* f : all_) out.push_back(f->name());
  return out;
}

}  // namespace sluice::pipeline
