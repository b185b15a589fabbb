// guard/pii.hpp: personal data and secrets in text, found by their structure and, where one
// exists, their checksum: email addresses, phone numbers, payment card numbers (Luhn), IBANs
// (ISO 13616 mod 97 and the country's length), national identifiers (US SSN by its assignment
// rules, Spanish DNI/NIE by its check letter, Aadhaar by Verhoeff), IP addresses, and API keys
// and secrets (known prefixes, PEM private keys, long high-entropy tokens).
//
// Everything is a scan over bytes: no regex engine, no allocation but the result, linear in
// the text. Redaction keeps text readable ("mail [EMAIL] or call [PHONE]"). StreamRedactor
// does the same over a stream of chunks while holding back a bounded tail: nothing that could
// still become part of a match is emitted before it is known.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::guard {

enum class PiiKind : uint8_t { kEmail, kPhone, kCard, kIban, kNationalId, kIp, kSecret };
inline constexpr int kPiiKinds = 7;

// "EMAIL", "PHONE", "CARD", "IBAN", "NATIONAL_ID", "IP", "SECRET".
std::string_view pii_label(PiiKind k);
// The kind named by a label or its lower-case config name ("email", "card", "national_id"...).
bool parse_pii_kind(std::string_view name, PiiKind& out);

using PiiMask = uint32_t;
inline constexpr PiiMask kAllPii = (1u << kPiiKinds) - 1;
inline constexpr PiiMask pii_bit(PiiKind k) { return 1u << static_cast<unsigned>(k); }

struct PiiMatch {
  PiiKind kind;
  size_t begin = 0, end = 0;  // byte offsets, [begin, end)
};

// Every match of the kinds in `mask`, in order, none overlapping.
std::vector<PiiMatch> find_pii(std::string_view text, PiiMask mask = kAllPii);
// `text` with each match replaced by "[LABEL]".
std::string redact(std::string_view text, const std::vector<PiiMatch>& matches);

// The checks behind the detectors, exposed for tests and other callers.
bool luhn_valid(std::string_view digits);
bool iban_valid(std::string_view compact);  // no spaces, upper case
bool verhoeff_valid(std::string_view digits);

// Redaction over a stream. push() returns what may be sent now, redacted; finish() the rest.
// At most `hold` bytes are held back (an open PEM private key block is held, up to 16 KiB,
// until its end line arrives).
class StreamRedactor {
 public:
  static constexpr size_t kDefaultHold = 256;
  explicit StreamRedactor(PiiMask mask = kAllPii, size_t hold = kDefaultHold) : mask_(mask), hold_(hold) {}
  std::string push(std::string_view chunk);
  std::string finish();
  // Matches redacted so far, per kind.
  const uint32_t* hits() const { return hits_; }
  size_t total_hits() const;
  size_t held() const { return pending_.size(); }

 private:
  std::string take(size_t cut, const std::vector<PiiMatch>& matches);
  PiiMask mask_;
  size_t hold_;
  std::string pending_;
  uint32_t hits_[kPiiKinds] = {};
};

}  // namespace sluice::guard
