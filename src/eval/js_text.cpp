#include "eval/js_text.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace sluice::eval {

namespace {

// Every code point whose lower case is one other code point, as runs: `count` code points
// from `first`, `stride` apart, each mapped to itself + `delta`. Generated from Node 22
// (Unicode 15.1) with:
//   for c in 0..0x10FFFF: d = String.fromCodePoint(c).toLowerCase().codePointAt(0) - c
//   (single code point results only; the one longer result, U+0130, is handled in js_lower)
struct Run {
  uint32_t first;
  uint16_t count;
  uint8_t stride;
  int32_t delta;
};
constexpr Run kRuns[] = {
    {0x41, 26, 1, 32},      {0xC0, 23, 1, 32},      {0xD8, 7, 1, 32},       {0x100, 24, 2, 1},
    {0x132, 3, 2, 1},       {0x139, 8, 2, 1},       {0x14A, 23, 2, 1},      {0x178, 1, 1, -121},
    {0x179, 3, 2, 1},       {0x181, 1, 1, 210},     {0x182, 2, 2, 1},       {0x186, 1, 1, 206},
    {0x187, 1, 1, 1},       {0x189, 2, 1, 205},     {0x18B, 1, 1, 1},       {0x18E, 1, 1, 79},
    {0x18F, 1, 1, 202},     {0x190, 1, 1, 203},     {0x191, 1, 1, 1},       {0x193, 1, 1, 205},
    {0x194, 1, 1, 207},     {0x196, 1, 1, 211},     {0x197, 1, 1, 209},     {0x198, 1, 1, 1},
    {0x19C, 1, 1, 211},     {0x19D, 1, 1, 213},     {0x19F, 1, 1, 214},     {0x1A0, 3, 2, 1},
    {0x1A6, 1, 1, 218},     {0x1A7, 1, 1, 1},       {0x1A9, 1, 1, 218},     {0x1AC, 1, 1, 1},
    {0x1AE, 1, 1, 218},     {0x1AF, 1, 1, 1},       {0x1B1, 2, 1, 217},     {0x1B3, 2, 2, 1},
    {0x1B7, 1, 1, 219},     {0x1B8, 1, 1, 1},       {0x1BC, 1, 1, 1},       {0x1C4, 1, 1, 2},
    {0x1C5, 1, 1, 1},       {0x1C7, 1, 1, 2},       {0x1C8, 1, 1, 1},       {0x1CA, 1, 1, 2},
    {0x1CB, 9, 2, 1},       {0x1DE, 9, 2, 1},       {0x1F1, 1, 1, 2},       {0x1F2, 2, 2, 1},
    {0x1F6, 1, 1, -97},     {0x1F7, 1, 1, -56},     {0x1F8, 20, 2, 1},      {0x220, 1, 1, -130},
    {0x222, 9, 2, 1},       {0x23A, 1, 1, 10795},   {0x23B, 1, 1, 1},       {0x23D, 1, 1, -163},
    {0x23E, 1, 1, 10792},   {0x241, 1, 1, 1},       {0x243, 1, 1, -195},    {0x244, 1, 1, 69},
    {0x245, 1, 1, 71},      {0x246, 5, 2, 1},       {0x370, 2, 2, 1},       {0x376, 1, 1, 1},
    {0x37F, 1, 1, 116},     {0x386, 1, 1, 38},      {0x388, 3, 1, 37},      {0x38C, 1, 1, 64},
    {0x38E, 2, 1, 63},      {0x391, 17, 1, 32},     {0x3A3, 9, 1, 32},      {0x3CF, 1, 1, 8},
    {0x3D8, 12, 2, 1},      {0x3F4, 1, 1, -60},     {0x3F7, 1, 1, 1},       {0x3F9, 1, 1, -7},
    {0x3FA, 1, 1, 1},       {0x3FD, 3, 1, -130},    {0x400, 16, 1, 80},     {0x410, 32, 1, 32},
    {0x460, 17, 2, 1},      {0x48A, 27, 2, 1},      {0x4C0, 1, 1, 15},      {0x4C1, 7, 2, 1},
    {0x4D0, 48, 2, 1},      {0x531, 38, 1, 48},     {0x10A0, 38, 1, 7264},  {0x10C7, 1, 1, 7264},
    {0x10CD, 1, 1, 7264},   {0x13A0, 80, 1, 38864}, {0x13F0, 6, 1, 8},      {0x1C89, 1, 1, 1},
    {0x1C90, 43, 1, -3008}, {0x1CBD, 3, 1, -3008},  {0x1E00, 75, 2, 1},     {0x1E9E, 1, 1, -7615},
    {0x1EA0, 48, 2, 1},     {0x1F08, 8, 1, -8},     {0x1F18, 6, 1, -8},     {0x1F28, 8, 1, -8},
    {0x1F38, 8, 1, -8},     {0x1F48, 6, 1, -8},     {0x1F59, 4, 2, -8},     {0x1F68, 8, 1, -8},
    {0x1F88, 8, 1, -8},     {0x1F98, 8, 1, -8},     {0x1FA8, 8, 1, -8},     {0x1FB8, 2, 1, -8},
    {0x1FBA, 2, 1, -74},    {0x1FBC, 1, 1, -9},     {0x1FC8, 4, 1, -86},    {0x1FCC, 1, 1, -9},
    {0x1FD8, 2, 1, -8},     {0x1FDA, 2, 1, -100},   {0x1FE8, 2, 1, -8},     {0x1FEA, 2, 1, -112},
    {0x1FEC, 1, 1, -7},     {0x1FF8, 2, 1, -128},   {0x1FFA, 2, 1, -126},   {0x1FFC, 1, 1, -9},
    {0x2126, 1, 1, -7517},  {0x212A, 1, 1, -8383},  {0x212B, 1, 1, -8262},  {0x2132, 1, 1, 28},
    {0x2160, 16, 1, 16},    {0x2183, 1, 1, 1},      {0x24B6, 26, 1, 26},    {0x2C00, 48, 1, 48},
    {0x2C60, 1, 1, 1},      {0x2C62, 1, 1, -10743}, {0x2C63, 1, 1, -3814},  {0x2C64, 1, 1, -10727},
    {0x2C67, 3, 2, 1},      {0x2C6D, 1, 1, -10780}, {0x2C6E, 1, 1, -10749}, {0x2C6F, 1, 1, -10783},
    {0x2C70, 1, 1, -10782}, {0x2C72, 1, 1, 1},      {0x2C75, 1, 1, 1},      {0x2C7E, 2, 1, -10815},
    {0x2C80, 50, 2, 1},     {0x2CEB, 2, 2, 1},      {0x2CF2, 1, 1, 1},      {0xA640, 23, 2, 1},
    {0xA680, 14, 2, 1},     {0xA722, 7, 2, 1},      {0xA732, 31, 2, 1},     {0xA779, 2, 2, 1},
    {0xA77D, 1, 1, -35332}, {0xA77E, 5, 2, 1},      {0xA78B, 1, 1, 1},      {0xA78D, 1, 1, -42280},
    {0xA790, 2, 2, 1},      {0xA796, 10, 2, 1},     {0xA7AA, 1, 1, -42308}, {0xA7AB, 1, 1, -42319},
    {0xA7AC, 1, 1, -42315}, {0xA7AD, 1, 1, -42305}, {0xA7AE, 1, 1, -42308}, {0xA7B0, 1, 1, -42258},
    {0xA7B1, 1, 1, -42282}, {0xA7B2, 1, 1, -42261}, {0xA7B3, 1, 1, 928},    {0xA7B4, 8, 2, 1},
    {0xA7C4, 1, 1, -48},    {0xA7C5, 1, 1, -42307}, {0xA7C6, 1, 1, -35384}, {0xA7C7, 2, 2, 1},
    {0xA7CB, 1, 1, -42343}, {0xA7CC, 8, 2, 1},      {0xA7DC, 1, 1, -42561}, {0xA7F5, 1, 1, 1},
    {0xFF21, 26, 1, 32},    {0x10400, 40, 1, 40},   {0x104B0, 36, 1, 40},   {0x10570, 11, 1, 39},
    {0x1057C, 15, 1, 39},   {0x1058C, 7, 1, 39},    {0x10594, 2, 1, 39},    {0x10C80, 51, 1, 64},
    {0x10D50, 22, 1, 32},   {0x118A0, 32, 1, 32},   {0x16E40, 32, 1, 32},   {0x16EA0, 25, 1, 27},
    {0x1E900, 34, 1, 34},
};

uint32_t lower_cp(uint32_t c) {
  // The last run starting at or before c.
  auto it = std::upper_bound(std::begin(kRuns), std::end(kRuns), c,
                             [](uint32_t v, const Run& r) { return v < r.first; });
  if (it == std::begin(kRuns)) return c;
  const Run& r = *std::prev(it);
  uint32_t off = c - r.first;
  if (off % r.stride != 0 || off / r.stride >= r.count) return c;
  return static_cast<uint32_t>(static_cast<int64_t>(c) + r.delta);
}

bool cased_letter(uint32_t c) {
  return c != 0 && (lower_cp(c) != c || (c >= 'a' && c <= 'z') || (c >= 0xDF && c <= 0x24F) ||
                    (c >= 0x3AC && c <= 0x3FF) || (c >= 0x430 && c <= 0x45F));
}

void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// The code point at s[i] and its length in bytes; length 0 when it is not UTF-8.
uint32_t decode(std::string_view s, size_t i, int& len) {
  auto b = static_cast<unsigned char>(s[i]);
  len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + static_cast<size_t>(len) > s.size()) return len = 0, 0;
  uint32_t c = len == 1 ? b : len == 2 ? b & 0x1Fu : len == 3 ? b & 0x0Fu : b & 0x07u;
  for (int k = 1; k < len; ++k) {
    auto cb = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((cb & 0xC0) != 0x80) return len = 0, 0;
    c = (c << 6) | (cb & 0x3Fu);
  }
  return c;
}

}  // namespace

std::wstring js_widen(std::string_view s) {
  std::wstring out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    int len = 0;
    uint32_t c = decode(s, i, len);
    if (len == 0) {
      out += static_cast<wchar_t>(static_cast<unsigned char>(s[i++]));
      continue;
    }
    out += static_cast<wchar_t>(c);
    i += static_cast<size_t>(len);
  }
  return out;
}

std::string js_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  uint32_t prev = 0;
  for (size_t i = 0; i < s.size();) {
    int len = 0;
    uint32_t c = decode(s, i, len);
    if (len == 0) {
      out += s[i++];
      prev = 0;
      continue;
    }
    i += static_cast<size_t>(len);
    if (c < 0x80) {
      out += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    } else if (c == 0x130) {
      out += "i\xCC\x87";  // İ: i and a combining dot above
    } else if (c == 0x3A3) {
      // Σ ends a word as ς (Unicode's Final_Sigma): after a cased letter, before none.
      int nlen = 0;
      uint32_t next = i < s.size() ? decode(s, i, nlen) : 0;
      append_utf8(out, cased_letter(prev) && !cased_letter(next) ? 0x3C2 : 0x3C3);
    } else {
      append_utf8(out, lower_cp(c));
    }
    prev = c;
  }
  return out;
}

}  // namespace sluice::eval
