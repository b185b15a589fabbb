#include "guard/pii.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

namespace sluice::guard {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_alpha(char c) { return is_upper(c) || is_lower(c); }
bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
// Characters of API keys and base64/base64url tokens.
bool is_token(char c) { return is_alnum(c) || c == '_' || c == '-' || c == '+' || c == '/' || c == '='; }
bool is_key(char c) { return is_alnum(c) || c == '_' || c == '-'; }

char at(std::string_view s, size_t i) { return i < s.size() ? s[i] : '\0'; }
// No letter or digit right before i: a match may start here.
bool starts_word(std::string_view s, size_t i) { return i == 0 || !is_alnum(s[i - 1]); }

using Matches = std::vector<PiiMatch>;

// ---- email: local@domain.tld

void find_emails(std::string_view s, Matches& out) {
  auto local = [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'; };
  auto domain = [](char c) { return is_alnum(c) || c == '.' || c == '-'; };
  for (size_t at_pos = s.find('@'); at_pos != std::string_view::npos; at_pos = s.find('@', at_pos + 1)) {
    size_t b = at_pos;
    while (b > 0 && local(s[b - 1]) && at_pos - b < 64) --b;
    while (b < at_pos && !is_alnum(s[b])) ++b;  // not from a leading dot or dash
    if (b == at_pos) continue;
    size_t e = at_pos + 1;
    while (e < s.size() && domain(s[e]) && e - at_pos < 256) ++e;
    while (e > at_pos + 1 && !is_alnum(s[e - 1])) --e;  // a sentence's final dot
    std::string_view d = s.substr(at_pos + 1, e - at_pos - 1);
    size_t dot = d.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || d.find("..") != std::string_view::npos) continue;
    std::string_view tld = d.substr(dot + 1);
    if (tld.size() < 2 || !std::all_of(tld.begin(), tld.end(), is_alpha)) continue;
    out.push_back({PiiKind::kEmail, b, e});
  }
}

// ---- numbers written with separators: cards, phones, national ids

struct NumberRun {
  size_t begin = 0, end = 0;
  std::string digits;
  std::vector<size_t> groups;  // digits per group
  std::string seps;            // the separators between groups (one char each; ')' for "(ddd) ")
  bool plus = false, paren = false;
};

// A run of digit groups joined by single separators (space, '-', '.', or "(ddd) "), starting at i.
bool read_number(std::string_view s, size_t i, NumberRun& r) {
  r.digits.clear();
  r.groups.clear();
  r.seps.clear();
  r.plus = r.paren = false;
  r.begin = i;
  size_t p = i;
  if (s[p] == '+') {
    r.plus = true;
    ++p;
    if (!is_digit(at(s, p))) return false;
  }
  if (at(s, p) == '(') {
    size_t q = p + 1;
    while (is_digit(at(s, q))) ++q;
    if (at(s, q) != ')' || q - p - 1 < 1 || q - p - 1 > 4) return false;
    r.paren = true;
    r.groups.push_back(q - p - 1);
    r.digits.append(s.substr(p + 1, q - p - 1));
    p = q + 1;
    if (at(s, p) == ' ') ++p;
    r.seps.push_back(')');
    if (!is_digit(at(s, p))) return false;
  }
  for (;;) {
    size_t q = p;
    while (is_digit(at(s, q))) ++q;
    if (q == p) return false;
    r.groups.push_back(q - p);
    r.digits.append(s.substr(p, q - p));
    p = q;
    if (r.digits.size() > 24) return false;
    char c = at(s, p);
    if ((c == ' ' || c == '-' || c == '.') && is_digit(at(s, p + 1))) {
      r.seps.push_back(c);
      ++p;
      continue;
    }
    if (c == ' ' && at(s, p + 1) == '(' && !r.plus) break;
    if (c == ' ' && at(s, p + 1) == '(' && r.plus) {  // "+1 (555) 123-4567"
      size_t q2 = p + 2;
      while (is_digit(at(s, q2))) ++q2;
      if (at(s, q2) == ')' && q2 > p + 2 && q2 - p - 2 <= 4) {
        r.groups.push_back(q2 - p - 2);
        r.digits.append(s.substr(p + 2, q2 - p - 2));
        r.seps.push_back(')');
        p = q2 + 1;
        if (at(s, p) == ' ') ++p;
        if (!is_digit(at(s, p))) return false;
        continue;
      }
    }
    break;
  }
  // Not part of a longer word or number ("v1.2.3", "3.14", "A123").
  char next = at(s, p);
  if (is_alnum(next) || next == '_') return false;
  if ((next == '.' || next == ',') && is_digit(at(s, p + 1))) return false;
  r.end = p;
  return true;
}

bool all_seps(const NumberRun& r, char c) {
  return !r.seps.empty() && std::all_of(r.seps.begin(), r.seps.end(), [c](char x) { return x == c; });
}

bool is_card(const NumberRun& r) {
  if (r.plus || r.paren || r.digits.size() < 13 || r.digits.size() > 19) return false;
  char first = r.digits[0];
  if (first < '2' || first > '6') return false;
  if (!r.seps.empty() && !all_seps(r, ' ') && !all_seps(r, '-')) return false;
  for (size_t g : r.groups)
    if (r.groups.size() > 1 && (g < 3 || g > 6)) return false;
  return luhn_valid(r.digits);
}

bool is_ssn(const NumberRun& r) {
  if (r.plus || r.paren || r.groups != std::vector<size_t>{3, 2, 4}) return false;
  if (!all_seps(r, '-') && !all_seps(r, ' ')) return false;
  int area = std::stoi(r.digits.substr(0, 3)), group = std::stoi(r.digits.substr(3, 2)),
      serial = std::stoi(r.digits.substr(5, 4));
  return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
}

bool is_aadhaar(const NumberRun& r) {
  if (r.plus || r.paren || r.groups != std::vector<size_t>{4, 4, 4}) return false;
  if (!all_seps(r, ' ') && !all_seps(r, '-')) return false;
  return r.digits[0] >= '2' && verhoeff_valid(r.digits);
}

bool is_phone(const NumberRun& r) {
  const size_t n = r.digits.size();
  if (r.plus) return n >= 8 && n <= 15 && (r.groups.size() > 1 || n >= 10);
  // North American: (ddd) ddd-dddd, ddd-ddd-dddd, ddd.ddd.dddd, 1-ddd-ddd-dddd.
  std::vector<size_t> g = r.groups;
  if (g.size() == 4 && g[0] == 1 && r.digits[0] == '1') g.erase(g.begin());
  if (g != std::vector<size_t>{3, 3, 4}) return false;
  if (r.paren) return true;
  return all_seps(r, '-') || all_seps(r, '.') || (all_seps(r, ' ') && r.groups.size() == 3);
}

void find_numbers(std::string_view s, PiiMask mask, Matches& out) {
  NumberRun r;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (!is_digit(c) && c != '+' && c != '(') continue;
    if (!starts_word(s, i)) continue;
    if (i > 0 && (s[i - 1] == '.' || s[i - 1] == ',' || s[i - 1] == '-') && i > 1 && is_digit(s[i - 2])) continue;
    if (!read_number(s, i, r)) continue;
    i = r.end - 1;  // a run is one thing: its tail groups are not read again as a number of their own
    PiiKind kind;
    if ((mask & pii_bit(PiiKind::kCard)) && is_card(r)) kind = PiiKind::kCard;
    else if ((mask & pii_bit(PiiKind::kNationalId)) && (is_ssn(r) || is_aadhaar(r))) kind = PiiKind::kNationalId;
    else if ((mask & pii_bit(PiiKind::kPhone)) && is_phone(r)) kind = PiiKind::kPhone;
    else continue;
    out.push_back({kind, r.begin, r.end});
  }
}

// ---- Spanish DNI / NIE: 12345678Z, X1234567L (check letter mod 23)

void find_dni(std::string_view s, Matches& out) {
  static constexpr char kLetters[] = "TRWAGMYFPDXBNJZSQVHLCKE";
  for (size_t i = 0; i + 9 <= s.size(); ++i) {
    if (!starts_word(s, i)) continue;
    char c = s[i];
    if (!is_digit(c) && c != 'X' && c != 'Y' && c != 'Z') continue;
    size_t p = i + 1;
    while (p < s.size() && is_digit(s[p]) && p - i < 8) ++p;
    if (p - i != 8) continue;
    size_t letter = p;
    if (at(s, letter) == '-') ++letter;
    char l = at(s, letter);
    if (!is_upper(l) || is_alnum(at(s, letter + 1))) continue;
    long n = std::strtol(std::string(s.substr(i + 1, 7)).c_str(), nullptr, 10);
    long lead = is_digit(c) ? c - '0' : c == 'X' ? 0 : c == 'Y' ? 1 : 2;
    n += lead * 10000000L;
    if (kLetters[n % 23] != l) continue;
    out.push_back({PiiKind::kNationalId, i, letter + 1});
    i = letter;
  }
}

// ---- IBAN: CCkk BBAN, the country's length, mod 97 == 1

int iban_length(std::string_view cc) {
  struct Len {
    char cc[3];
    int n;
  };
  static constexpr Len kLens[] = {
      {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22}, {"BH", 22},
      {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DK", 18}, {"DO", 28},
      {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23},
      {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26},
      {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20},
      {"LV", 21}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18},
      {"NO", 15}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24},
      {"SC", 31}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24},
      {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
  };
  for (const auto& l : kLens)
    if (cc == l.cc) return l.n;
  return 0;
}

void find_ibans(std::string_view s, Matches& out) {
  for (size_t i = 0; i + 15 <= s.size(); ++i) {
    if (!is_upper(s[i]) || !is_upper(s[i + 1]) || !is_digit(s[i + 2]) || !is_digit(s[i + 3])) continue;
    if (!starts_word(s, i)) continue;
    const int want = iban_length(s.substr(i, 2));
    if (want == 0) continue;
    std::string compact;
    size_t p = i;
    while (p < s.size() && static_cast<int>(compact.size()) < want) {
      char c = s[p];
      if (is_alnum(c)) {
        compact.push_back(is_lower(c) ? static_cast<char>(c - 'a' + 'A') : c);
        ++p;
      } else if (c == ' ' && compact.size() % 4 == 0 && is_alnum(at(s, p + 1))) {
        ++p;  // printed in groups of four
      } else {
        break;
      }
    }
    if (static_cast<int>(compact.size()) != want || is_alnum(at(s, p))) continue;
    if (!iban_valid(compact)) continue;
    out.push_back({PiiKind::kIban, i, p});
    i = p - 1;
  }
}

// ---- IP addresses

void find_ips(std::string_view s, Matches& out) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (!is_hex(s[i]) && s[i] != ':') continue;
    if (!starts_word(s, i) || (i > 0 && (s[i - 1] == '.' || s[i - 1] == ':'))) continue;
    // IPv4: four decimal octets.
    if (is_digit(s[i])) {
      size_t p = i;
      int parts = 0;
      bool ok = true;
      while (parts < 4) {
        size_t q = p;
        while (is_digit(at(s, q)) && q - p < 4) ++q;
        int octet = 0;
        for (size_t k = p; k < q && k - p < 3; ++k) octet = octet * 10 + (s[k] - '0');
        if (q == p || q - p > 3 || octet > 255) {
          ok = false;
          break;
        }
        ++parts;
        p = q;
        if (parts < 4) {
          if (at(s, p) != '.') {
            ok = false;
            break;
          }
          ++p;
        }
      }
      if (ok && !is_alnum(at(s, p)) && !((at(s, p) == '.' || at(s, p) == ':') && is_digit(at(s, p + 1)))) {
        out.push_back({PiiKind::kIp, i, p});
        i = p - 1;
        continue;
      }
    }
    // IPv6: hex groups and colons (at least three groups, or ::1), checked by inet_pton.
    if (is_hex(s[i]) || (s[i] == ':' && at(s, i + 1) == ':')) {
      size_t p = i;
      while (p < s.size() && (is_hex(s[p]) || s[p] == ':' || s[p] == '.') && p - i <= 45) ++p;
      while (p > i && (s[p - 1] == '.' || (s[p - 1] == ':' && at(s, p - 2) != ':'))) --p;
      if (is_alnum(at(s, p)) || p - i < 3) continue;
      std::string cand(s.substr(i, p - i));
      int colons = static_cast<int>(std::count(cand.begin(), cand.end(), ':'));
      int groups = 0;
      for (size_t k = 0; k < cand.size(); ++k)
        if (is_hex(cand[k]) && (k == 0 || cand[k - 1] == ':')) ++groups;
      if (colons < 2 || (groups < 3 && cand != "::1")) continue;
      in6_addr addr;
      if (inet_pton(AF_INET6, cand.c_str(), &addr) != 1) continue;
      out.push_back({PiiKind::kIp, i, p});
      i = p - 1;
    }
  }
}

// ---- secrets

struct Prefix {
  std::string_view text;
  size_t min_body;  // characters of the key after the prefix
  size_t max_body;
};

constexpr Prefix kPrefixes[] = {
    {"sk-ant-", 20, 200}, {"sk-proj-", 20, 200}, {"sk-", 20, 200},     {"sk_live_", 16, 120}, {"sk_test_", 16, 120},
    {"rk_live_", 16, 120}, {"AKIA", 16, 16},     {"ASIA", 16, 16},     {"ghp_", 36, 40},      {"gho_", 36, 40},
    {"ghu_", 36, 40},      {"ghs_", 36, 40},     {"ghr_", 36, 40},     {"github_pat_", 22, 120}, {"glpat-", 20, 40},
    {"xoxb-", 10, 200},    {"xoxp-", 10, 200},   {"xoxa-", 10, 200},   {"xoxr-", 10, 200},    {"xoxs-", 10, 200},
    {"AIza", 35, 35},      {"hf_", 30, 40},      {"npm_", 36, 36},
};

// A PEM private key block: from its BEGIN line to its END line (or the end of the text).
size_t pem_end(std::string_view s, size_t i) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  if (s.substr(i, kBegin.size()) != kBegin) return 0;
  size_t line_end = s.find("-----", i + kBegin.size());
  if (line_end == std::string_view::npos || line_end - i > 80) return 0;
  std::string_view label = s.substr(i + kBegin.size(), line_end - i - kBegin.size());
  if (label.size() < 11 || label.substr(label.size() - 11) != "PRIVATE KEY") return 0;
  for (char c : label)  // "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY"
    if (!is_upper(c) && c != ' ') return 0;
  size_t end = s.find("-----END ", line_end + 5);
  if (end == std::string_view::npos) return s.size();
  size_t close = s.find("-----", end + 9);
  return close == std::string_view::npos ? s.size() : close + 5;
}

double entropy_bits(std::string_view t) {
  std::array<int, 256> n{};
  for (unsigned char c : t) ++n[c];
  double h = 0;
  for (int k : n)
    if (k) {
      double p = static_cast<double>(k) / static_cast<double>(t.size());
      h -= p * std::log2(p);
    }
  return h;
}

void find_secrets(std::string_view s, Matches& out) {
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '-') {
      if (size_t e = pem_end(s, i)) {
        out.push_back({PiiKind::kSecret, i, e});
        i = e - 1;
        continue;
      }
    }
    if (!is_token(c) || (i > 0 && is_token(s[i - 1]))) continue;
    bool found = false;
    const bool may_prefix = c == 's' || c == 'r' || c == 'A' || c == 'g' || c == 'x' || c == 'h' || c == 'n';
    for (const Prefix& pre : kPrefixes) {
      if (!may_prefix) break;
      const size_t plen = pre.text.size();
      if (pre.text[0] != c || s.substr(i, plen) != pre.text) continue;
      size_t p = i + plen;
      while (p < s.size() && is_key(s[p]) && p - i - plen <= pre.max_body) ++p;
      const size_t body = p - i - plen;
      if (body < pre.min_body || body > pre.max_body) continue;
      out.push_back({PiiKind::kSecret, i, p});
      i = p - 1;
      found = true;
      break;
    }
    if (found) continue;
    // A JWT (three base64url parts), or a long token of mixed case and digits with high entropy.
    size_t p = i;
    while (p < s.size() && (is_token(s[p]) || s[p] == '.') && p - i <= 4096) ++p;
    while (p > i && (s[p - 1] == '.' || s[p - 1] == '-' || s[p - 1] == '_')) --p;
    std::string_view t = s.substr(i, p - i);
    if (t.size() >= 32 && t.substr(0, 3) == "eyJ" && std::count(t.begin(), t.end(), '.') == 2) {
      out.push_back({PiiKind::kSecret, i, p});
      i = p - 1;
      continue;
    }
    if (t.size() < 32 || t.size() > 512 || t.find('.') != std::string_view::npos) {
      i = p > i ? p - 1 : i;
      continue;
    }
    int upper = 0, lower = 0, digits = 0;
    for (char c : t) upper += is_upper(c), lower += is_lower(c), digits += is_digit(c);
    if (upper >= 2 && lower >= 2 && digits >= 2 && entropy_bits(t) >= 4.3) out.push_back({PiiKind::kSecret, i, p});
    i = p - 1;
  }
}

}  // namespace

std::string_view pii_label(PiiKind k) {
  switch (k) {
    case PiiKind::kEmail: return "EMAIL";
    case PiiKind::kPhone: return "PHONE";
    case PiiKind::kCard: return "CARD";
    case PiiKind::kIban: return "IBAN";
    case PiiKind::kNationalId: return "NATIONAL_ID";
    case PiiKind::kIp: return "IP";
    case PiiKind::kSecret: return "SECRET";
  }
  return "PII";
}

bool parse_pii_kind(std::string_view name, PiiKind& out) {
  for (int k = 0; k < kPiiKinds; ++k) {
    std::string_view label = pii_label(static_cast<PiiKind>(k));
    if (name.size() != label.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size(); ++i) {
      char c = name[i];
      if (is_lower(c)) c = static_cast<char>(c - 'a' + 'A');
      same = same && c == label[i];
    }
    if (same) {
      out = static_cast<PiiKind>(k);
      return true;
    }
  }
  return false;
}

bool luhn_valid(std::string_view digits) {
  int sum = 0;
  bool dbl = false;
  for (size_t i = digits.size(); i-- > 0;) {
    if (!is_digit(digits[i])) return false;
    int d = digits[i] - '0';
    if (dbl) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
    dbl = !dbl;
  }
  return !digits.empty() && sum % 10 == 0;
}

bool iban_valid(std::string_view compact) {
  if (compact.size() < 15 || compact.size() > 34) return false;
  int mod = 0;
  for (size_t k = 0; k < compact.size(); ++k) {
    char c = compact[(k + 4) % compact.size()];  // the first four characters move to the end
    if (is_digit(c)) {
      mod = (mod * 10 + (c - '0')) % 97;
    } else if (is_upper(c)) {
      int v = c - 'A' + 10;
      mod = (mod * 100 + v) % 97;
    } else {
      return false;
    }
  }
  return mod == 1;
}

bool verhoeff_valid(std::string_view digits) {
  static constexpr int d[10][10] = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
                                    {2, 3, 4, 0, 1, 7, 8, 9, 5, 6}, {3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
                                    {4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
                                    {6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
                                    {8, 7, 6, 5, 9, 3, 2, 1, 0, 4}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}};
  static constexpr int p[8][10] = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
                                   {5, 8, 0, 3, 7, 9, 6, 1, 4, 2}, {8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
                                   {9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
                                   {2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8}};
  int c = 0;
  size_t i = 0;
  for (size_t k = digits.size(); k-- > 0; ++i) {
    if (!is_digit(digits[k])) return false;
    c = d[c][p[i % 8][digits[k] - '0']];
  }
  return !digits.empty() && c == 0;
}

std::vector<PiiMatch> find_pii(std::string_view text, PiiMask mask) {
  Matches all;
  if (mask & pii_bit(PiiKind::kSecret)) find_secrets(text, all);
  if (mask & pii_bit(PiiKind::kEmail)) find_emails(text, all);
  if (mask & pii_bit(PiiKind::kIban)) find_ibans(text, all);
  if (mask & (pii_bit(PiiKind::kCard) | pii_bit(PiiKind::kPhone) | pii_bit(PiiKind::kNationalId)))
    find_numbers(text, mask, all);
  if (mask & pii_bit(PiiKind::kNationalId)) find_dni(text, all);
  if (mask & pii_bit(PiiKind::kIp)) find_ips(text, all);
  // Earliest first, the longer of two that start together; an overlapping later one loses
  // (an email's domain is not also an IP, a key is not also a phone number).
  std::sort(all.begin(), all.end(), [](const PiiMatch& a, const PiiMatch& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
  });
  Matches out;
  for (const auto& m : all)
    if (out.empty() || m.begin >= out.back().end) out.push_back(m);
  return out;
}

std::string redact(std::string_view text, const std::vector<PiiMatch>& matches) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (const auto& m : matches) {
    if (m.begin < pos || m.end > text.size()) continue;
    out.append(text.substr(pos, m.begin - pos));
    out.push_back('[');
    out.append(pii_label(m.kind));
    out.push_back(']');
    pos = m.end;
  }
  out.append(text.substr(pos));
  return out;
}

// ---- streaming

namespace {
constexpr size_t kMaxPemHold = 16 * 1024;
}

size_t StreamRedactor::total_hits() const {
  size_t n = 0;
  for (uint32_t h : hits_) n += h;
  return n;
}

std::string StreamRedactor::take(size_t cut, const std::vector<PiiMatch>& matches) {
  std::vector<PiiMatch> inside;
  for (const auto& m : matches)
    if (m.end <= cut) {
      inside.push_back(m);
      ++hits_[static_cast<int>(m.kind)];
    }
  std::string out = redact(std::string_view(pending_).substr(0, cut), inside);
  pending_.erase(0, cut);
  return out;
}

namespace {

// Where the text's tail that might still grow into a match begins: the last word, and the
// digit or capital groups before it that single spaces join ("4111 1111 1111 1", "DE89 3704").
size_t unfinished_tail(std::string_view s) {
  auto inside = [](char c) { return is_alnum(c) || (c != '\0' && std::strchr("@._-+()/:=%,", c)); };
  size_t j = s.size();
  while (j > 0) {
    char c = s[j - 1];
    if (inside(c)) {
      --j;
    } else if (c == ' ' && j >= 2 && (is_digit(s[j - 2]) || is_upper(s[j - 2]) || s[j - 2] == ')')) {
      --j;
    } else {
      break;
    }
  }
  // A PEM header line still arriving ("-----BEGIN RSA PRIV") is held whole: its words are
  // joined by spaces the scan above does not cross.
  size_t begin = s.rfind("-----BEGIN ");
  if (begin != std::string_view::npos && begin < j && s.find("-----", begin + 11) == std::string_view::npos &&
      s.size() - begin <= 80)
    j = begin;
  return j;
}

}  // namespace

std::string StreamRedactor::push(std::string_view chunk) {
  pending_.append(chunk);
  size_t cut = unfinished_tail(pending_);
  if (pending_.size() - cut > hold_) cut = pending_.size() - hold_;
  if (cut == 0) return {};
  auto matches = find_pii(pending_, mask_);
  for (const auto& m : matches) {
    // A match across the cut, or one that reaches the end of what arrived (an open private
    // key block), may still grow.
    if (m.begin >= cut || (m.end <= cut && m.end < pending_.size())) continue;
    // A match across the cut waits whole, unless it is an open private key block that has
    // grown past its bound: that is redacted as far as it goes, and what follows of the
    // block keeps being withheld as it arrives.
    if (m.kind == PiiKind::kSecret && pending_.size() - m.begin > kMaxPemHold) {
      std::vector<PiiMatch> before;
      for (const auto& x : matches)
        if (x.end <= m.begin) before.push_back(x);
      std::string out = take(m.begin, before) + "[SECRET]";
      ++hits_[static_cast<int>(PiiKind::kSecret)];
      pending_ = "-----BEGIN PRIVATE KEY-----\n";  // the block stays open for what follows
      return out;
    }
    cut = m.begin;
    break;
  }
  while (cut > 0 && (static_cast<unsigned char>(pending_[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
  return cut == 0 ? std::string() : take(cut, matches);
}

std::string StreamRedactor::finish() {
  auto matches = find_pii(pending_, mask_);
  return take(pending_.size(), matches);
}

}  // namespace sluice::guard
