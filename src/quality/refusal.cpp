#include "quality/refusal.hpp"

#include <string>

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

// `phrase` occurs in `s` at a word boundary on both sides, and that occurrence does not begin
// one of `exceptions`.
bool contains_phrase(std::string_view s, std::string_view phrase,
                     const std::vector<std::string>& exceptions) {
  if (phrase.empty()) return false;
  const bool word_start = is_word_byte(static_cast<unsigned char>(phrase.front()));
  const bool word_end = is_word_byte(static_cast<unsigned char>(phrase.back()));
  for (size_t pos = s.find(phrase); pos != std::string_view::npos; pos = s.find(phrase, pos + 1)) {
    if (word_start && pos > 0 && is_word_byte(static_cast<unsigned char>(s[pos - 1]))) continue;
    size_t end = pos + phrase.size();
    if (word_end && end < s.size() && is_word_byte(static_cast<unsigned char>(s[end]))) continue;
    bool excepted = false;
    for (const auto& e : exceptions) {
      if (s.substr(pos).starts_with(e)) {
        excepted = true;
        break;
      }
    }
    if (!excepted) return true;
  }
  return false;
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

}  // namespace

const RefusalConfig& default_refusal_config() {
  static const RefusalConfig config = make_default();
  return config;
}

bool is_refusal(std::string_view text, std::string_view finish_reason, const RefusalConfig& cfg) {
  if (cfg.content_filter && finish_reason == "content_filter") return true;
  if (cfg.phrases.empty() || text.empty() || cfg.window == 0) return false;
  const std::string opening = fold_opening(text, cfg.window);
  for (const auto& phrase : cfg.phrases) {
    if (contains_phrase(opening, phrase, cfg.exceptions)) return true;
  }
  return false;
}

}  // namespace sluice::quality
