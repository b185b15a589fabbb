// flags/flagset.hpp: the flags the data plane reads (an immutable set published beside the
// config snapshot) and what a flag means to the gateway, read from its metadata:
//
//   metadata.route: R (no metadata.kill)   a release flag: its variants name releases of
//       route R ("" = no pin: the route's stable release or running rollout decides). The
//       router evaluates it before rollout weights.
//   metadata.kill: route, metadata.route: R|*   variants "off" | "block" | "fallback" |
//       "static": block the route with a clear error, send it straight to its fallback chain,
//       or answer with its static degraded answer.
//   metadata.kill: tool, metadata.route: R|*, metadata.tool: T   boolean: strip tool T from
//       requests to R.
//   metadata.kill: shadow (metadata.route: R|*)   boolean: no shadow traffic.
//   metadata.kill: rollouts   boolean: every running rollout holds where it is.
//
// Kill switches are flags like any other (targeting may narrow one to a tenant); a DISABLED
// kill switch does nothing. Any other flag is the application's, served over OFREP.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flags/flagd.hpp"

namespace sluice::flags {

enum class Kind : uint8_t { kPlain, kRelease, kKillRoute, kKillTool, kKillShadow, kKillRollouts };

struct Role {
  Kind kind = Kind::kPlain;
  std::string route;  // release flags and kill switches ("*": every route)
  std::string tool;   // tool kill switches
};
Role role_of(const Flag& f);
std::string_view kind_name(Kind k);

// Checks what a flag means to the gateway; "" or the error. `release_route(value)` returns the
// route of the release a variant names (by id or unique prefix), nullopt when there is none.
std::string check_role(const Flag& f, const std::function<std::optional<std::string>(const std::string&)>& release_route);

// A route kill switch's modes.
enum class RouteKill : uint8_t { kOff, kBlock, kFallback, kStatic };
std::optional<RouteKill> route_kill_mode(std::string_view v);

class FlagSet {
 public:
  FlagSet() = default;
  FlagSet(std::vector<Flag> flags, uint64_t version);

  const Flag* find(std::string_view key) const;
  // A fingerprint of a flag's definition (of this set): it changes when the flag does.
  uint64_t fingerprint(const Flag* f) const { return fingerprints_[index(f)]; }
  // What a flag of this set means to the gateway (role_of, read once when the set was built).
  const Role& role(const Flag* f) const { return roles_[index(f)]; }
  const std::vector<Flag>& all() const { return flags_; }
  uint64_t version() const { return version_; }
  // The release flag of a route, or nullptr.
  const Flag* release_flag(std::string_view route) const;
  // Kill switches that apply to a route (its own and those for "*"): route and tool kills.
  const std::vector<const Flag*>& route_kills(std::string_view route) const;
  const std::vector<const Flag*>& shadow_kills(std::string_view route) const;
  const std::vector<const Flag*>& rollout_kills() const { return rollout_kills_; }
  bool has_kills() const { return kills_; }
  // Release flags or kill switches exist: the gateway's flags filter has work to do.
  bool acts_on_requests() const { return kills_ || !release_by_route_.empty(); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <class V>
  using Map = std::unordered_map<std::string, V, Hash, std::equal_to<>>;
  size_t index(const Flag* f) const { return static_cast<size_t>(f - flags_.data()); }

  std::vector<Flag> flags_;
  std::vector<uint64_t> fingerprints_;
  std::vector<Role> roles_;
  uint64_t version_ = 0;
  bool kills_ = false;
  Map<size_t> by_key_;
  Map<const Flag*> release_by_route_;
  Map<std::vector<const Flag*>> route_kills_, shadow_kills_;
  std::vector<const Flag*> any_route_kills_, any_shadow_kills_, rollout_kills_;
};

}  // namespace sluice::flags
