// quality/refusal_model.hpp: the learned refusal detector's weights and scorer. The weights are
// generated at build time by tools/refusal/train.py from XSTest's human labels (or taken from
// the committed src/quality/refusal_model.cpp when the data is missing); see
// docs/refusal-detector.md. Callers use quality::refusal_score / is_refusal (refusal.hpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::quality::refusal_model {

// The feature extraction the weights were trained with (mirrored from train.py).
struct Shape {
  int table_bits;   // hashed buckets: 2^table_bits
  int char_window;  // bytes of the folded opening that give character 3-5-grams
  int word_window;  // bytes of the folded opening that give word 1-3-grams
  int max_words;    // word n-grams come from the first max_words words
};

struct Weight {
  uint32_t bucket;
  float w;
};

// One trained weight set: logistic regression over the hashed features plus the built-in
// phrase list's verdict (`rule`), calibrated by Platt scaling: p = 1/(1+exp(-(a*margin+b))).
struct Weights {
  const char* name;  // "full", or "without-<model>" for a leave-one-model-out fold
  const Weight* weights;
  size_t count;
  double bias, rule, platt_a, platt_b;
  double gate;       // threshold with the best out-of-model F1 (rollout refusal rates)
  double assertion;  // lowest threshold with out-of-model precision >= 0.95 (eval assertions)
};

extern const Shape kShape;
extern const Weights kFull;        // production: trained on all three XSTest models
extern const Weights kFolds[];     // refusal_model_folds.cpp (library sluice_quality_lomo)
extern const size_t kFoldCount;

// Calibrated probability that `text` is a refusal under `set`, whose rule feature is
// `rule_hit` (the built-in phrases matched). The first call per set builds its dense table.
double score(const Weights& set, std::string_view text, bool rule_hit);

}  // namespace sluice::quality::refusal_model
