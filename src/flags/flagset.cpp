#include "flags/flagset.hpp"

#include "core/hash.hpp"

namespace sluice::flags {

namespace {
std::string meta(const Flag& f, std::string_view key) {
  const Value* v = f.metadata.get(key);
  return v && v->is_string() ? v->s : std::string();
}

bool all_of_kind(const Flag& f, Value::Kind k) {
  for (const auto& [name, v] : f.variants)
    if (v.kind != k) return false;
  return true;
}
}  // namespace

Role role_of(const Flag& f) {
  Role r;
  r.route = meta(f, "route");
  const std::string kill = meta(f, "kill");
  if (kill == "route") r.kind = Kind::kKillRoute;
  else if (kill == "tool") r.kind = Kind::kKillTool;
  else if (kill == "shadow") r.kind = Kind::kKillShadow;
  else if (kill == "rollouts") r.kind = Kind::kKillRollouts;
  else if (kill.empty() && !r.route.empty()) r.kind = Kind::kRelease;
  if (r.kind == Kind::kKillTool) r.tool = meta(f, "tool");
  if ((r.kind == Kind::kKillShadow || r.kind == Kind::kKillRollouts) && r.route.empty()) r.route = "*";
  return r;
}

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::kPlain:
      return "flag";
    case Kind::kRelease:
      return "release";
    case Kind::kKillRoute:
      return "kill.route";
    case Kind::kKillTool:
      return "kill.tool";
    case Kind::kKillShadow:
      return "kill.shadow";
    case Kind::kKillRollouts:
      return "kill.rollouts";
  }
  return "flag";
}

std::optional<RouteKill> route_kill_mode(std::string_view v) {
  if (v == "off") return RouteKill::kOff;
  if (v == "block") return RouteKill::kBlock;
  if (v == "fallback") return RouteKill::kFallback;
  if (v == "static") return RouteKill::kStatic;
  return std::nullopt;
}

std::string check_role(const Flag& f,
                       const std::function<std::optional<std::string>(const std::string&)>& release_route) {
  const std::string kill = meta(f, "kill");
  const Role r = role_of(f);
  const std::string where = "flags." + f.key + ": ";
  if (!kill.empty() && r.kind == Kind::kPlain)
    return where + "metadata.kill is route, tool, shadow or rollouts, not '" + kill + "'";
  switch (r.kind) {
    case Kind::kPlain:
      return "";
    case Kind::kRelease: {
      if (!all_of_kind(f, Value::Kind::kString))
        return where + "a release flag (metadata.route) has string variants naming releases of route '" + r.route + "'";
      for (const auto& [name, v] : f.variants) {
        if (v.s.empty()) continue;  // no pin
        auto route = release_route(v.s);
        if (!route) return where + "variant '" + name + "' names release '" + v.s + "', which does not exist";
        if (*route != r.route)
          return where + "variant '" + name + "' names release '" + v.s + "' of route '" + *route + "', not of '" +
                 r.route + "'";
      }
      return "";
    }
    case Kind::kKillRoute:
      if (r.route.empty()) return where + "a route kill switch names its route (metadata.route, or \"*\")";
      for (const auto& [name, v] : f.variants)
        if (!v.is_string() || !route_kill_mode(v.s))
          return where + "variant '" + name + "' of a route kill switch is \"off\", \"block\", \"fallback\" or \"static\"";
      return "";
    case Kind::kKillTool:
      if (r.route.empty() || r.tool.empty())
        return where + "a tool kill switch names its route (metadata.route, or \"*\") and tool (metadata.tool)";
      [[fallthrough]];
    case Kind::kKillShadow:
    case Kind::kKillRollouts:
      if (!all_of_kind(f, Value::Kind::kBool)) return where + "a " + std::string(kind_name(r.kind)) + " kill switch has boolean variants";
      return "";
  }
  return "";
}

FlagSet::FlagSet(std::vector<Flag> flags, uint64_t version) : flags_(std::move(flags)), version_(version) {
  for (size_t i = 0; i < flags_.size(); ++i) {
    const Flag* f = &flags_[i];
    by_key_[f->key] = i;
    fingerprints_.push_back(fnv1a(f->json(), fnv1a(f->key)));
    roles_.push_back(role_of(*f));
    const Role& r = roles_.back();
    switch (r.kind) {
      case Kind::kRelease:
        release_by_route_[r.route] = f;
        break;
      case Kind::kKillRoute:
      case Kind::kKillTool:
        (r.route == "*" ? any_route_kills_ : route_kills_[r.route]).push_back(f);
        kills_ = true;
        break;
      case Kind::kKillShadow:
        (r.route == "*" ? any_shadow_kills_ : shadow_kills_[r.route]).push_back(f);
        kills_ = true;
        break;
      case Kind::kKillRollouts:
        rollout_kills_.push_back(f);
        kills_ = true;
        break;
      case Kind::kPlain:
        break;
    }
  }
  // A route's list holds the "*" switches too, so the hot path reads one list.
  for (auto& [route, list] : route_kills_) list.insert(list.end(), any_route_kills_.begin(), any_route_kills_.end());
  for (auto& [route, list] : shadow_kills_) list.insert(list.end(), any_shadow_kills_.begin(), any_shadow_kills_.end());
}

const Flag* FlagSet::find(std::string_view key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : &flags_[it->second];
}

const Flag* FlagSet::release_flag(std::string_view route) const {
  if (release_by_route_.empty()) return nullptr;
  auto it = release_by_route_.find(route);
  return it == release_by_route_.end() ? nullptr : it->second;
}

const std::vector<const Flag*>& FlagSet::route_kills(std::string_view route) const {
  if (!kills_) return any_route_kills_;
  auto it = route_kills_.find(route);
  return it == route_kills_.end() ? any_route_kills_ : it->second;
}

const std::vector<const Flag*>& FlagSet::shadow_kills(std::string_view route) const {
  if (!kills_) return any_shadow_kills_;
  auto it = shadow_kills_.find(route);
  return it == shadow_kills_.end() ? any_shadow_kills_ : it->second;
}

}  // namespace sluice::flags
