// pipeline/flags_filter.hpp: the flags filter (release flags, kill switches), between the
// route and render stages; see flags_filter.cpp.
#pragma once
#include "flags/value.hpp"
#include "pipeline/filter.hpp"

namespace sluice::pipeline {

const Filter& flags_filter();
// The evaluation context of the gateway's own flags for this request.
flags::Value request_context(const RequestContext& ctx);

}  // namespace sluice::pipeline
