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
};

// The built-in phrase list (tuned on nothing but general knowledge of refusal wording;
// measured on XSTest).
const RefusalConfig& default_refusal_config();

bool is_refusal(std::string_view text, std::string_view finish_reason,
                const RefusalConfig& cfg = default_refusal_config());

}  // namespace sluice::quality
