// quality/refusal.hpp: is this answer a refusal? One detector for rollouts (live refusal
// rate, shadow refusal deltas) and the eval gate (`refusal` / `not-refusal` assertions).
// Its precision and recall on XSTest's human labels are measured by tests/quality.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace sluice::quality {

struct RefusalConfig {
  bool content_filter = true;        // finish_reason "content_filter" is a refusal
  std::vector<std::string> phrases;  // lowercase; matched in the opening of the answer
  size_t window = 400;               // bytes of the answer's opening that are searched
  // Lowercase; a phrase match that is also the start of one of these does not count
  // ("i can't" matches, "i can't stress enough" does not).
  std::vector<std::string> exceptions;
};

// The built-in phrase list: general refusal wording, refined by error analysis on XSTest
// (see docs/refusal-detector.md for the method and the measured precision/recall).
// Phrases match on word boundaries, case-insensitively, with curly apostrophes folded to '.
const RefusalConfig& default_refusal_config();

bool is_refusal(std::string_view text, std::string_view finish_reason,
                const RefusalConfig& cfg = default_refusal_config());

}  // namespace sluice::quality
