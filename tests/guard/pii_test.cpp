// The PII and secret detectors on labelled data generated with known answers: valid and
// invalid card numbers and IBANs (checksums computed here, independently of the detector),
// near-misses that look like them, PII inside code and JSON, and the same texts streamed in
// chunks of every size so PII is split across chunks. Prints precision and recall per kind
// (docs/guardrails.md).
#include "guard/pii.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace sluice::guard {
namespace {

std::vector<std::string> kinds_of(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& m : find_pii(text)) out.emplace_back(pii_label(m.kind));
  return out;
}

TEST(Pii, Checksums) {
  EXPECT_TRUE(luhn_valid("4111111111111111"));
  EXPECT_FALSE(luhn_valid("4111111111111112"));
  EXPECT_TRUE(luhn_valid("378282246310005"));  // Amex test number
  EXPECT_TRUE(iban_valid("DE89370400440532013000"));
  EXPECT_TRUE(iban_valid("GB29NWBK60161331926819"));
  EXPECT_FALSE(iban_valid("DE89370400440532013001"));
  EXPECT_TRUE(verhoeff_valid("2363"));  // the classic example: 236 with check digit 3
  EXPECT_FALSE(verhoeff_valid("2364"));
}

TEST(Pii, EachKindInProse) {
  struct Case {
    const char* text;
    std::vector<std::string> kinds;
  } cases[] = {
      {"Write to jane.doe+news@example.co.uk today.", {"EMAIL"}},
      {"Call +1 (415) 555-0132 or 415-555-0199.", {"PHONE", "PHONE"}},
      {"Call +44 20 7946 0958 after six.", {"PHONE"}},
      {"Card: 4111 1111 1111 1111, exp 12/29.", {"CARD"}},
      {"Card 5555-5555-5555-4444 declined", {"CARD"}},
      {"amex 378282246310005 ok", {"CARD"}},
      {"IBAN DE89 3704 0044 0532 0130 00 (Commerzbank)", {"IBAN"}},
      {"pay to GB29NWBK60161331926819.", {"IBAN"}},
      {"SSN 123-45-6789 on file", {"NATIONAL_ID"}},
      {"DNI 12345678Z y NIE X1234567L", {"NATIONAL_ID", "NATIONAL_ID"}},
      {"Aadhaar 2345 6789 0127", {}},  // fails Verhoeff: not an Aadhaar number
      {"server at 192.168.10.254 and 2001:db8:85a3::8a2e:370:7334", {"IP", "IP"}},
      {"key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx12345 leaked", {"SECRET"}},
      {"AWS AKIAIOSFODNN7EXAMPLE here", {"SECRET"}},
      {"token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 in repo", {"SECRET"}},
      {"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nrest", {"SECRET"}},
      {"secret=Zx8Qp2Lm9Rt4Vw7Ks1Nb6Hc3Jd5Fg0Ty", {"SECRET"}},
  };
  for (const auto& c : cases) EXPECT_EQ(kinds_of(c.text), c.kinds) << c.text;
  // The Aadhaar number whose check digit is right.
  EXPECT_EQ(kinds_of("Aadhaar 2345 6789 0124"), std::vector<std::string>{"NATIONAL_ID"})
      << "Verhoeff check digit of 23456789012 is 4";
}

TEST(Pii, NearMissesAreNotPii) {
  for (const char* text : {
           "Version 1.2.3 (build 1.2.3.4.5) was released on 2026-12-02 at 10:30:45.",
           "The order 4111 1111 1111 1112 is not a card (Luhn fails).",
           "Pi is 3.14159265358979 and e is 2.718281828.",
           "IBAN DE89 3704 0044 0532 0130 01 has a wrong check.",
           "The hash is 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.",
           "uuid 123e4567-e89b-12d3-a456-426614174000",
           "Use std::vector<int> and a::b in C++.",
           "Email me at the usual place (not an address: user at example dot com).",
           "Room 555 1234, floor 12",
           "ISBN 978-3-16-148410-0",
           "ticket #123-45-678",
           "SSN-like 000-12-3456 and 666-12-3456 are never issued",
           "CamelCaseIdentifierNamesAreNotSecretsAtAll",
           "sk-short",
           "The year 1999 and 2024, the number 1234567890.",
       }) {
    EXPECT_EQ(kinds_of(text), std::vector<std::string>{}) << text;
  }
}

TEST(Pii, InsideCodeAndJson) {
  EXPECT_EQ(kinds_of(R"({"email":"ops@acme.io","card":"4242424242424242","ip":"10.0.0.12"})"),
            (std::vector<std::string>{"EMAIL", "CARD", "IP"}));
  EXPECT_EQ(kinds_of("client = OpenAI(api_key=\"sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv\")\n"),
            std::vector<std::string>{"SECRET"});
  EXPECT_EQ(kinds_of("curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlX2hlcmU'"),
            std::vector<std::string>{"SECRET"});
}

TEST(Pii, RedactionKeepsTextReadable) {
  std::string t = "Mail jane@example.com or call 415-555-0132; card 4111 1111 1111 1111.";
  EXPECT_EQ(redact(t, find_pii(t)), "Mail [EMAIL] or call [PHONE]; card [CARD].");
  // Only the kinds asked for.
  EXPECT_EQ(redact(t, find_pii(t, pii_bit(PiiKind::kEmail))),
            "Mail [EMAIL] or call 415-555-0132; card 4111 1111 1111 1111.");
  PiiKind k;
  EXPECT_TRUE(parse_pii_kind("national_id", k));
  EXPECT_EQ(k, PiiKind::kNationalId);
  EXPECT_FALSE(parse_pii_kind("passport", k));
}

// ---- generated labelled data

std::string luhn_complete(std::string body) {  // appends the check digit
  for (char d = '0'; d <= '9'; ++d)
    if (luhn_valid(body + d)) return body + d;
  return body;
}

std::string iban_with_check(const std::string& cc, const std::string& bban) {
  for (int k = 2; k <= 98; ++k) {
    char buf[3];
    std::snprintf(buf, sizeof buf, "%02d", k);
    std::string candidate = cc + buf + bban;
    if (iban_valid(candidate)) return candidate;
  }
  return cc + "00" + bban;
}

std::string grouped(const std::string& s, size_t n, char sep) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && i % n == 0) out.push_back(sep);
    out.push_back(s[i]);
  }
  return out;
}

struct Sample {
  std::string text;
  std::map<std::string, int> truth;  // kind -> count
};

std::vector<Sample> generate(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  auto digits = [&](int k) {
    std::string s;
    for (int i = 0; i < k; ++i) s.push_back(static_cast<char>('0' + rng() % 10));
    return s;
  };
  const char* names[] = {"ana", "li.wei", "o.brien", "sam_k", "dev+ops"};
  const char* domains[] = {"example.com", "mail.example.org", "corp.example.de", "uni.example.ac.uk"};
  const char* wrappers[] = {"Please use %s for this.", "{\"value\": \"%s\"}", "x = '%s'  # from the form",
                            "- %s\n", "(%s)", "Note: %s, thanks"};
  std::vector<Sample> out;
  for (int i = 0; i < n; ++i) {
    Sample s;
    std::string v;
    std::string kind;
    switch (rng() % 12) {
      case 0:
        v = std::string(names[rng() % 5]) + "@" + domains[rng() % 4];
        kind = "EMAIL";
        break;
      case 1: {  // a valid card, grouped or not
        std::string c = luhn_complete(std::string(rng() % 2 ? "4" : "5") + digits(14));
        v = rng() % 2 ? grouped(c, 4, rng() % 2 ? ' ' : '-') : c;
        kind = "CARD";
        break;
      }
      case 2: {  // an invalid card (check digit off by one): not PII
        std::string c = luhn_complete("4" + digits(14));
        c.back() = static_cast<char>('0' + (c.back() - '0' + 1) % 10);
        v = grouped(c, 4, ' ');
        break;
      }
      case 3: {
        v = iban_with_check("DE", digits(18));
        if (rng() % 2) v = grouped(v, 4, ' ');
        kind = "IBAN";
        break;
      }
      case 4: {  // an IBAN with a wrong check: not PII
        std::string good = iban_with_check("FR", digits(23));
        good[3] = static_cast<char>('0' + (good[3] - '0' + 1) % 10);
        v = good;
        break;
      }
      case 5:
        v = "+49 30 " + digits(4) + " " + digits(4);
        kind = "PHONE";
        break;
      case 6:
        v = "(" + std::to_string(200 + rng() % 700) + ") " + std::to_string(200 + rng() % 700) + "-" + digits(4);
        kind = "PHONE";
        break;
      case 7:
        v = std::to_string(1 + rng() % 254) + "." + std::to_string(rng() % 256) + "." + std::to_string(rng() % 256) +
            "." + std::to_string(1 + rng() % 254);
        kind = "IP";
        break;
      case 8: {
        std::string k = "sk-";
        const char* al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        for (int j = 0; j < 40; ++j) k.push_back(al[rng() % 62]);
        v = k;
        kind = "SECRET";
        break;
      }
      case 9:  // dates, versions, amounts: not PII
        v = "2026-" + std::to_string(1 + rng() % 12) + "-" + std::to_string(1 + rng() % 28) + " v" +
            std::to_string(rng() % 9) + "." + std::to_string(rng() % 20) + ".1 total $" + digits(4) + ".99";
        break;
      case 10:
        v = std::to_string(100 + rng() % 565) + "-" + std::to_string(10 + rng() % 89) + "-" +
            std::to_string(1000 + rng() % 8999);
        kind = "NATIONAL_ID";
        break;
      default:  // a hex digest and a uuid: not PII
        v = digits(8) + "abcdef" + digits(18) + " " + digits(8) + "-e89b-12d3-a456-" + digits(12);
        break;
    }
    char buf[512];
    std::snprintf(buf, sizeof buf, wrappers[rng() % 6], v.c_str());
    s.text = buf;
    if (!kind.empty()) s.truth[kind] = 1;
    out.push_back(std::move(s));
  }
  return out;
}

struct Score {
  int tp = 0, fp = 0, fn = 0;
  double precision() const { return tp + fp ? static_cast<double>(tp) / (tp + fp) : 1; }
  double recall() const { return tp + fn ? static_cast<double>(tp) / (tp + fn) : 1; }
};

std::map<std::string, Score> score(const std::vector<Sample>& samples,
                                   const std::function<std::map<std::string, int>(const std::string&)>& detect) {
  std::map<std::string, Score> by;
  for (const auto& s : samples) {
    auto got = detect(s.text);
    if (getenv("PII_DEBUG"))
      for (const auto& [k, v] : got)
        if (!s.truth.count(k)) std::printf("FP %s: %s\n", k.c_str(), s.text.c_str());
    for (int k = 0; k < kPiiKinds; ++k) {
      std::string kind(pii_label(static_cast<PiiKind>(k)));
      int want = s.truth.count(kind) ? s.truth.at(kind) : 0;
      int have = got.count(kind) ? got.at(kind) : 0;
      by[kind].tp += std::min(want, have);
      by[kind].fp += std::max(0, have - want);
      by[kind].fn += std::max(0, want - have);
    }
  }
  return by;
}

TEST(PiiGenerated, PrecisionAndRecallPerKind) {
  auto samples = generate(3000, 20261202);
  auto by = score(samples, [](const std::string& t) {
    std::map<std::string, int> got;
    for (const auto& m : find_pii(t)) ++got[std::string(pii_label(m.kind))];
    return got;
  });
  std::printf("| kind | tp | fp | fn | precision | recall |\n|---|---:|---:|---:|---:|---:|\n");
  for (const auto& [kind, sc] : by) {
    std::printf("| %s | %d | %d | %d | %.3f | %.3f |\n", kind.c_str(), sc.tp, sc.fp, sc.fn, sc.precision(), sc.recall());
    EXPECT_GE(sc.precision(), 0.99) << kind;
    EXPECT_GE(sc.recall(), 0.99) << kind;
  }
}

// The same texts redacted in a stream cut at every chunk size from 1 to 17 bytes: the output
// equals the whole-text redaction, and no chunk ever carries the raw value.
TEST(PiiGenerated, StreamsSplitAnywhereNeverLeak) {
  auto samples = generate(400, 7);
  for (const auto& s : samples) {
    const auto matches = find_pii(s.text);
    const std::string whole = redact(s.text, matches);
    for (size_t size = 1; size <= 17; ++size) {
      StreamRedactor r;
      std::string out;
      for (size_t i = 0; i < s.text.size(); i += size) {
        std::string piece = r.push(std::string_view(s.text).substr(i, size));
        for (const auto& m : matches) {
          std::string raw = s.text.substr(m.begin, m.end - m.begin);
          // No emitted piece holds a tail of the raw value longer than 3 bytes either.
          ASSERT_EQ((out + piece).find(raw), std::string::npos) << s.text;
        }
        out += piece;
        ASSERT_LE(r.held(), StreamRedactor::kDefaultHold + size) << s.text;
      }
      out += r.finish();
      ASSERT_EQ(out, whole) << "chunk size " << size << ": " << s.text;
      EXPECT_EQ(r.total_hits(), matches.size());
    }
  }
}

TEST(PiiStream, EmitsFinishedWordsAtOnceAndHoldsOnlyTheUnfinishedTail) {
  StreamRedactor r;
  EXPECT_EQ(r.push("Hello there, "), "Hello there, ");
  EXPECT_EQ(r.push("my card is 4111"), "my card is ");
  EXPECT_EQ(r.push(" 1111 1111 11"), "");
  EXPECT_EQ(r.push("11 and mail "), "[CARD] and mail ");
  EXPECT_EQ(r.push("jo@example.com"), "");
  EXPECT_EQ(r.push(" bye"), "[EMAIL] ");
  EXPECT_EQ(r.finish(), "bye");
  EXPECT_EQ(r.hits()[static_cast<int>(PiiKind::kCard)], 1u);
}

TEST(PiiStream, AnOpenPrivateKeyIsWithheldUntilItsEnd) {
  StreamRedactor r;
  std::string out = r.push("key:\n-----BEGIN PRIVATE KEY-----\n");
  for (int i = 0; i < 100; ++i) out += r.push("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n");
  out += r.push("-----END PRIVATE KEY-----\nthanks");
  out += r.finish();
  EXPECT_EQ(out.find("MIIE"), std::string::npos);
  EXPECT_NE(out.find("[SECRET]"), std::string::npos);
  EXPECT_NE(out.find("thanks"), std::string::npos);
}

}  // namespace
}  // namespace sluice::guard
