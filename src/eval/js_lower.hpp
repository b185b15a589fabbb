// eval/js_lower.hpp: text in lower case as JavaScript's String.prototype.toLowerCase gives it
// (promptfoo's icontains, icontains-any and icontains-all compare that way).
#pragma once
#include <string>
#include <string_view>

namespace sluice::eval {

// UTF-8 in, UTF-8 out; bytes that are not UTF-8 are kept as they are.
std::string js_lower(std::string_view s);

}  // namespace sluice::eval
