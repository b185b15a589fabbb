// eval/js_text.hpp: text as promptfoo's JavaScript sees it: in lower case as
// String.prototype.toLowerCase gives it (icontains, icontains-any, icontains-all compare that
// way) and as characters rather than UTF-8 bytes (a regex's `.` and `[é]` match a character).
#pragma once
#include <string>
#include <string_view>

namespace sluice::eval {

// UTF-8 in, UTF-8 out; bytes that are not UTF-8 are kept as they are.
std::string js_lower(std::string_view s);

// UTF-8 as one wchar_t (UTF-32 on this platform) per code point, for std::wregex; a byte that
// is not UTF-8 becomes the code point of its value.
std::wstring js_widen(std::string_view s);

}  // namespace sluice::eval
