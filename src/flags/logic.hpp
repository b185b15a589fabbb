// flags/logic.hpp: JsonLogic as flagd evaluates it. flagd-core (the reference the differential
// test runs against) compiles targeting with json-logic-engine and runs it in JavaScript, so
// this evaluator follows that engine's compiled semantics: JavaScript's truthiness, `==`,
// `<` and string conversion, its numeric checks (an arithmetic NaN is an error, not a value),
// `cat` writing null as "null", and its constant folding (a rule that always fails is refused
// when it is loaded). flagd's own operators live here too: `fractional` (bucketing identical
// to flagd-core: MurmurHash3 of flagKey + targetingKey over integer weights), `sem_ver`,
// `starts_with` and `ends_with`.
//
// Compile once (Logic::compile refuses unknown operators with the rule's line and column),
// evaluate per request: no exceptions, no allocation beyond the values a rule builds.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flags/value.hpp"

namespace sluice::flags {

struct Node;

class Logic {
 public:
  // A compiled rule; nullopt and `error` ("line:column: what") when it cannot be.
  static std::optional<Logic> compile(const Value& rule, std::string& error);
  // Evaluates against `context` (an object). false: the rule failed at run time (what
  // JavaScript would throw: NaN arithmetic, a comparison with an object, ...).
  bool evaluate(const Value& context, Value& out) const;
  // The operators this rule uses (for reports: which flags split traffic).
  bool uses(std::string_view op) const;

 private:
  std::shared_ptr<const Node> root_;
};

// MurmurHash3 (32-bit, seed 0) of a string as the JavaScript library flagd-core uses hashes
// it (imurmurhash, over UTF-16 code units). For ASCII it equals MurmurHash3 of the bytes,
// which is what flagd (Go) hashes.
uint32_t flagd_murmur3(std::string_view s);

// Semantic versions as flagd-core reads them (node-semver, with a leading v and partial
// versions "1" and "1.2" accepted). -2 when either does not parse, else -1/0/1.
struct SemVer {
  uint64_t major = 0, minor = 0, patch = 0;
  std::vector<std::string> pre;  // prerelease identifiers
};
std::optional<SemVer> parse_semver(const std::string& text);
int compare_semver(const SemVer& a, const SemVer& b);

}  // namespace sluice::flags
