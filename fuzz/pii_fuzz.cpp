// fuzz/pii_fuzz.cpp: the PII and secret detectors (guard/pii.hpp) on arbitrary bytes.
// Invariants: no crash; matches are in order, inside the text, never overlapping; the
// streamed redaction of the text cut into pieces equals the redaction of the whole text
// (unless a private key block outgrew its hold), no raw match leaves a stream, and the held
// tail stays bounded.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "guard/pii.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  using namespace sluice::guard;
  const size_t piece = 1 + data[0] % 23;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto matches = find_pii(in);
  size_t last = 0;
  for (const auto& m : matches) {
    if (m.begin < last || m.end <= m.begin || m.end > in.size()) std::abort();
    last = m.end;
  }
  const std::string whole = redact(in, matches);
  StreamRedactor r;
  std::string out;
  for (size_t i = 0; i < in.size(); i += piece) {
    out += r.push(in.substr(i, piece));
    if (r.held() > 16 * 1024 + StreamRedactor::kDefaultHold + piece) std::abort();
  }
  out += r.finish();
  if (in.size() < 8192 && in.find("-----BEGIN") == std::string_view::npos && out != whole) std::abort();
  for (const auto& m : matches) {
    std::string_view raw = in.substr(m.begin, m.end - m.begin);
    if (raw.size() >= 8 && whole.find(raw) == std::string::npos && out.find(raw) != std::string::npos) std::abort();
  }
  return 0;
}
