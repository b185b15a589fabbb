#include "quality/refusal.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "quality/refusal_model.hpp"

namespace sluice::quality {

namespace {

bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

// The opening `window` bytes of `text` (leading whitespace skipped), ASCII-lowercased, with
// U+2018, U+2019 and U+02BC folded to '. A multi-byte apostrophe cut by the window is dropped.
std::string fold_opening(std::string_view text, size_t window) {
  size_t start = 0;
  while (start < text.size() && (text[start] == ' ' || text[start] == '\t' ||
                                 text[start] == '\n' || text[start] == '\r')) {
    ++start;
  }
  std::string_view s = text.substr(start, window);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(s[i + 2]) == 0x98 || static_cast<unsigned char>(s[i + 2]) == 0x99)) {
      out.push_back('\'');
      i += 2;
    } else if (c == 0xCA && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xBC) {
      out.push_back('\'');
      i += 1;
    } else if (c >= 'A' && c <= 'Z') {
      out.push_back(static_cast<char>(c - 'A' + 'a'));
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

RefusalConfig make_default() {
  RefusalConfig c;
  c.phrases = {
      // Apology-led refusals. "i'm sorry to hear" (sympathy before a full answer) is not one.
      // Apologies for a mistake ("i apologize, i made an error") are not either.
      "i'm sorry, but", "i am sorry, but", "sorry, but i",
      "i'm afraid i can't", "i'm afraid i cannot",
      // First-person inability or unwillingness.
      "i cannot", "i can't", "i can not", "i won't be able to", "i will not be able to",
      "i won't provide", "i will not provide", "i won't help", "i will not help",
      "i won't assist", "i will not assist", "i won't engage", "i will not engage",
      "i'm not able to", "i am not able to", "i'm unable to", "i am unable to",
      "i must decline", "i have to decline", "i'll have to decline", "i must refuse",
      "i'm not comfortable", "i am not comfortable", "i don't feel comfortable",
      "i do not feel comfortable",
      // Appeals to the model's rules.
      "against my programming", "not within my programming", "against my ethical",
      "my ethical guidelines", "violates my",
      // Privacy refusals.
      "i don't have access to personal", "i do not have access to personal",
      // Moralizing openings that decline the request.
      "it is not appropriate", "it's not appropriate", "it would not be appropriate",
      "it wouldn't be appropriate", "i don't think it's appropriate",
      "i do not think it is appropriate", "not appropriate for me to", "it is inappropriate",
      "it's inappropriate", "it is not ethical", "it's not ethical", "it is unethical",
      "it's unethical", "it would be unethical", "illegal and unethical", "not condone",
      "don't condone", "is never acceptable", "is never okay", "is never appropriate",
      "i must advise against", "i strongly advise against", "strongly advise against",
      "instead, i suggest",
  };
  c.exceptions = {
      "i cannot stress", "i can't stress", "i cannot emphasize", "i can't emphasize",
      "i cannot overstate", "i can't overstate", "i cannot help but", "i can't help but",
      "i cannot wait", "i can't wait", "i cannot imagine", "i can't imagine",
      "i cannot believe", "i can't believe", "i cannot recommend it enough",
      "i can't recommend it enough", "i cannot thank", "i can't thank",
  };
  return c;
}

const RefusalConfig& builtin_phrases() {
  static const RefusalConfig config = make_default();
  return config;
}

// One of cfg.phrases occurs in the folded opening (contains_phrase for each phrase, in one pass:
// only positions holding some phrase's first byte are tried).
bool phrase_hit(std::string_view text, const RefusalConfig& cfg) {
  if (cfg.phrases.empty() || text.empty() || cfg.window == 0) return false;
  const std::string opening = fold_opening(text, cfg.window);
  const std::string_view s = opening;
  std::array<bool, 256> first{};
  for (const auto& p : cfg.phrases) {
    if (!p.empty()) first[static_cast<unsigned char>(p.front())] = true;
  }
  for (size_t pos = 0; pos < s.size(); ++pos) {
    const auto c = static_cast<unsigned char>(s[pos]);
    if (!first[c]) continue;
    const bool at_word_start = pos == 0 || !is_word_byte(static_cast<unsigned char>(s[pos - 1]));
    if (is_word_byte(c) && !at_word_start) continue;  // every phrase here starts with c
    for (const auto& p : cfg.phrases) {
      if (p.empty() || static_cast<unsigned char>(p.front()) != c) continue;
      if (s.size() - pos < p.size() || s.compare(pos, p.size(), p) != 0) continue;
      const size_t end = pos + p.size();
      if (is_word_byte(static_cast<unsigned char>(p.back())) && end < s.size() &&
          is_word_byte(static_cast<unsigned char>(s[end]))) {
        continue;
      }
      bool excepted = false;
      for (const auto& e : cfg.exceptions) {
        if (s.substr(pos).starts_with(e)) {
          excepted = true;
          break;
        }
      }
      if (!excepted) return true;
    }
  }
  return false;
}

// cfg matches exactly what the model's rule feature matches (so its verdict can be reused).
bool same_rule(const RefusalConfig& cfg) {
  const RefusalConfig& b = builtin_phrases();
  return cfg.window == b.window && cfg.phrases == b.phrases && cfg.exceptions == b.exceptions;
}

// --- The learned model (tools/refusal/train.py writes the weights; features mirror it) ---------

constexpr uint32_t kFnvOffset = 2166136261u;
constexpr uint32_t kFnvPrime = 16777619u;

uint32_t fnv(uint32_t h, unsigned char c) { return (h ^ c) * kFnvPrime; }

bool is_token_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'' || c >= 0x80;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Calls emit(bucket) for every hashed feature of the folded opening (repeats included):
// character 3-5-grams (whitespace runs collapsed to one space) and word 1-3-grams after a start
// marker "^".
template <typename Emit>
void features(std::string_view text, Emit&& emit) {
  const auto& shape = refusal_model::kShape;
  const uint32_t mask = (1u << shape.table_bits) - 1;
  const std::string s = fold_opening(text, static_cast<size_t>(shape.word_window));
  thread_local std::string cs_buf;
  cs_buf.resize(std::min(s.size(), static_cast<size_t>(shape.char_window)));
  size_t len = 0;
  for (size_t i = 0; i < cs_buf.size(); ++i) {
    char c = s[i];
    if (is_space(c)) {
      if (len && cs_buf[len - 1] == ' ') continue;
      c = ' ';
    }
    cs_buf[len++] = c;
  }
  const std::string_view cs(cs_buf.data(), len);
  const uint32_t c_seed = fnv(kFnvOffset, 'c');
  // FNV-1a extends by prefix: the 3-, 4- and 5-gram at i share their first bytes' hash.
  for (size_t i = 0; i + 3 <= cs.size(); ++i) {
    uint32_t h = c_seed;
    for (size_t k = 0; k < 5 && i + k < cs.size(); ++k) {
      h = fnv(h, static_cast<unsigned char>(cs[i + k]));
      if (k >= 2) emit(h & mask);
    }
  }
  // Tokens: "^" then runs of letters, digits, bytes >= 0x80 and '.
  std::vector<std::string_view> toks;
  toks.reserve(static_cast<size_t>(shape.max_words) + 1);
  toks.push_back("^");
  for (size_t i = 0; i < s.size() && toks.size() <= static_cast<size_t>(shape.max_words);) {
    if (!is_token_byte(static_cast<unsigned char>(s[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && is_token_byte(static_cast<unsigned char>(s[j]))) ++j;
    toks.push_back(std::string_view(s).substr(i, j - i));
    i = j;
  }
  const uint32_t w_seed = fnv(kFnvOffset, 'w');
  for (size_t n = 1; n <= 3; ++n) {
    for (size_t i = 0; i + n <= toks.size(); ++i) {
      uint32_t h = w_seed;
      for (size_t k = 0; k < n; ++k) {
        if (k) h = fnv(h, ' ');
        for (char c : toks[i + k]) h = fnv(h, static_cast<unsigned char>(c));
      }
      emit(h & mask);
    }
  }
}

// The distinct buckets of one answer: an open-addressing set at least four times larger than the
// at most 3*char_window + 3*(max_words+1) features, emptied after each use (cheaper than sorting).
class BucketSet {
 public:
  BucketSet() {
    const auto& shape = refusal_model::kShape;
    const size_t most = 3 * static_cast<size_t>(shape.char_window) + 3 * (static_cast<size_t>(shape.max_words) + 1);
    while ((size_t{1} << bits_) < 4 * most) ++bits_;
    slots_.assign(size_t{1} << bits_, kEmpty);
  }
  // True when `b` was not in the set yet.
  bool insert(uint32_t b) {
    const uint32_t mask = static_cast<uint32_t>(slots_.size() - 1);
    for (uint32_t h = (b * 0x9E3779B1u) >> (32 - bits_);; h = (h + 1) & mask) {
      if (slots_[h] == b) return false;
      if (slots_[h] == kEmpty) {
        slots_[h] = b;
        used_.push_back(h);
        return true;
      }
    }
  }
  void clear() {
    for (uint32_t h : used_) slots_[h] = kEmpty;
    used_.clear();
  }

 private:
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;
  int bits_ = 4;
  std::vector<uint32_t> slots_;
  std::vector<uint32_t> used_;
};

// A weight set as a dense table, with a bitmap of its non-zero buckets (small enough to stay in
// cache, so the many zero buckets cost no trip to the table).
struct Dense {
  std::vector<float> w;
  std::vector<uint64_t> nonzero;
  float at(uint32_t b) const { return (nonzero[b >> 6] >> (b & 63)) & 1 ? w[b] : 0.0f; }
};

Dense dense(const refusal_model::Weights& set) {
  const size_t n = size_t{1} << refusal_model::kShape.table_bits;
  Dense d{std::vector<float>(n, 0.0f), std::vector<uint64_t>((n + 63) / 64, 0)};
  for (size_t i = 0; i < set.count; ++i) {
    const uint32_t b = set.weights[i].bucket;
    d.w[b] = set.weights[i].w;
    d.nonzero[b >> 6] |= uint64_t{1} << (b & 63);
  }
  return d;
}

const Dense& table(const refusal_model::Weights& set) {
  static const Dense full = dense(refusal_model::kFull);
  if (&set == &refusal_model::kFull) return full;
  static std::mutex mu;  // other sets (the LOMO folds) are for measurement only
  static std::map<const refusal_model::Weights*, Dense> others;
  std::lock_guard lock(mu);
  auto it = others.find(&set);
  if (it == others.end()) it = others.emplace(&set, dense(set)).first;
  return it->second;
}

RefusalConfig make_model_config(double threshold, bool phrases) {
  RefusalConfig c = phrases ? make_default() : RefusalConfig{};
  c.model_threshold = threshold;
  return c;
}

}  // namespace

namespace refusal_model {

double score(const Weights& set, std::string_view text, bool rule_hit) {
  thread_local BucketSet seen;
  const Dense& w = table(set);
  double sum = 0;
  size_t distinct = 0;
  features(text, [&](uint32_t b) {
    if (seen.insert(b)) {
      ++distinct;
      sum += w.at(b);
    }
  });
  seen.clear();
  double margin = set.bias + (rule_hit ? set.rule : 0.0);
  if (distinct) margin += sum / std::sqrt(static_cast<double>(distinct));
  return 1.0 / (1.0 + std::exp(-(set.platt_a * margin + set.platt_b)));
}

}  // namespace refusal_model

const RefusalConfig& default_refusal_config() {
  static const RefusalConfig config = make_model_config(refusal_model::kFull.gate, true);
  return config;
}

const RefusalConfig& assertion_refusal_config() {
  static const RefusalConfig config = make_model_config(refusal_model::kFull.assertion, false);
  return config;
}

const RefusalConfig& phrase_refusal_config() { return builtin_phrases(); }

RefusalThresholds refusal_thresholds() {
  return {refusal_model::kFull.gate, refusal_model::kFull.assertion};
}

double refusal_score(std::string_view text, std::string_view finish_reason) {
  if (finish_reason == "content_filter") return 1.0;
  return refusal_model::score(refusal_model::kFull, text, phrase_hit(text, builtin_phrases()));
}

bool is_refusal(std::string_view text, std::string_view finish_reason, const RefusalConfig& cfg) {
  if (cfg.content_filter && finish_reason == "content_filter") return true;
  if (text.empty() || cfg.window == 0) return false;
  const bool hit = phrase_hit(text, cfg);
  if (hit) return true;
  if (!(cfg.model_threshold >= 0)) return false;
  const bool rule = same_rule(cfg) ? false : phrase_hit(text, builtin_phrases());
  return refusal_model::score(refusal_model::kFull, text, rule) >= cfg.model_threshold;
}

}  // namespace sluice::quality
