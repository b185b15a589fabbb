// quality/refusal.hpp: is this answer a refusal? One detector for rollouts (live refusal
// rate, shadow refusal deltas) and the eval gate (`refusal` / `not-refusal` assertions): a
// phrase matcher plus a learned model (logistic regression over hashed word and character
// n-grams of the answer's opening, weights generated at build time by tools/refusal/train.py).
// Its held-out precision and recall on XSTest's human labels are measured by tests/quality
// and reported in docs/refusal-detector.md.
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
  // The learned model: also a refusal when refusal_score() >= model_threshold. Negative (the
  // default for a config built field by field): phrases only.
  double model_threshold = -1;
};

// The default: the built-in phrases OR the learned model at its gate threshold (balanced
// precision and recall; rollout refusal rates). Phrases match on word boundaries,
// case-insensitively, with curly apostrophes folded to '.
const RefusalConfig& default_refusal_config();
// The learned model alone at its assertion threshold (high precision; the eval `refusal`
// assertion). The built-in phrases still count, as one of the model's features.
const RefusalConfig& assertion_refusal_config();
// The built-in phrase list alone (the detector before the model; no model_threshold).
const RefusalConfig& phrase_refusal_config();

struct RefusalThresholds {
  double gate;       // best F1 on out-of-model scores
  double assertion;  // lowest cut with out-of-model precision >= 0.95
};
RefusalThresholds refusal_thresholds();

// Calibrated probability that the answer is a refusal (1 for finish_reason "content_filter").
double refusal_score(std::string_view text, std::string_view finish_reason);

// content_filter (if cfg.content_filter) OR one of cfg.phrases in the opening cfg.window bytes
// OR (cfg.model_threshold >= 0 and refusal_score >= cfg.model_threshold). An empty answer, or
// window 0, is not a refusal unless the finish reason says content_filter.
bool is_refusal(std::string_view text, std::string_view finish_reason,
                const RefusalConfig& cfg = default_refusal_config());

}  // namespace sluice::quality
