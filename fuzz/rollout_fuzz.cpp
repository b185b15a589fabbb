// fuzz/rollout_fuzz.cpp: rollout specs (operator YAML, and the JSON they are stored as) and
// stored rollout state (evidence that survives restarts).
// Invariants: no crash; a spec that parses serializes to JSON that parses to the same JSON.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "rollout/machine.hpp"
#include "rollout/spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  std::string err;
  if (auto spec = sluice::rollout::parse_spec(in, err)) {
    std::string json = sluice::rollout::spec_json(*spec);
    auto again = sluice::rollout::parse_spec(json, err);
    if (!again || sluice::rollout::spec_json(*again) != json) std::abort();
    sluice::rollout::State st;
    sluice::rollout::begin(*spec, st, 0);
    sluice::rollout::advance(*spec, st, 1000);
  }
  sluice::rollout::State st;
  if (st.from_json(in)) (void)st.to_json();
  return 0;
}
