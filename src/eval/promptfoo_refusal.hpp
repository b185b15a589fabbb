// eval/promptfoo_refusal.hpp: promptfoo's `is-refusal` check (isBasicRefusal), so a suite
// asserting is-refusal gets promptfoo's verdict. sluice's own detector (quality::is_refusal)
// serves the `refusal` type.
#pragma once
#include <string_view>

namespace sluice::eval {

// The answer starts with one of promptfoo's refusal prefixes or holds one of its refusal
// phrases between word boundaries, compared in lower case with ' ′ ’ as one apostrophe.
bool promptfoo_is_refusal(std::string_view output);

}  // namespace sluice::eval
