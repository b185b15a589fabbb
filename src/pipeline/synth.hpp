// pipeline/synth.hpp: answers sluice writes itself, in OpenAI's shape (a static degraded
// answer, a cached whole answer replayed as a stream), and whether a rendered request is
// deterministic enough to cache. No I/O: the proxy sends what these return.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "pipeline/context.hpp"

namespace simdjson::dom {
class parser;
}

namespace sluice::pipeline {

// A chat completion, or its stream when the request asked for one. `content` and `usage`
// are JSON literals.
std::string synth_answer(const RequestContext& ctx, std::string_view content, std::string_view finish,
                         std::string_view usage);
// A whole chat completion, whatever the request asked for (stored for degraded mode).
std::string completion_json(const RequestContext& ctx, std::string_view content, std::string_view finish,
                            std::string_view usage);
// The request that continues a cut answer on a target that accepts an assistant prefill
// (vLLM's continue_final_message): the same request, its messages followed by the answer so
// far as the assistant's message. nullopt when the body has no messages array.
std::optional<std::string> continuation_request(simdjson::dom::parser& p, const std::string& body,
                                                std::string_view answer_so_far);
// A static degraded answer (finish_reason stop, zero usage).
std::string static_answer(const RequestContext& ctx, std::string_view text);
// Whether a rendered request is deterministic enough to cache: temperature 0, or a seed.
bool deterministic(simdjson::dom::parser& p, const std::string& body);
// A cached whole completion as the stream a streaming client asked for; "" when it cannot
// be replayed (tool calls, n > 1).
std::string replay_as_stream(simdjson::dom::parser& p, const RequestContext& ctx, const std::string& cached);

}  // namespace sluice::pipeline
