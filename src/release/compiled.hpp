// release/compiled.hpp: a release ready for the hot path. Built once per snapshot (templates
// compiled, params pre-serialized); render() applies it to one request body.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "json/splice.hpp"
#include "release/template.hpp"

namespace simdjson::dom {
class parser;
}

namespace sluice::release {

enum class PromptMode { kNone, kPrependSystem, kReplace, kTemplateUser };

struct Compiled {
  std::string id;
  std::string route;
  std::string upstream;  // upstream name from the manifest
  std::string model_id;  // pinned provider model id
  std::string prompt_hash;   // "p_" + 12 hex, or "" without a prompt
  std::string adapter;       // "name@hash" or ""
  std::string index_version; // or ""
  PromptMode mode = PromptMode::kNone;
  std::optional<Template> system, user;
  std::vector<std::pair<std::string, Template>> few_shot;  // role, content
  std::vector<std::pair<std::string, std::string>> params;  // name, raw JSON value
  std::vector<std::string> overridable;
  std::string tools_json;  // "[...]" or ""
};

// Builds from the canonical tuple JSON and a blob lookup (sha256 -> content).
std::shared_ptr<const Compiled> compile(const std::string& id, const std::string& tuple_json,
                                        const std::function<std::optional<std::string>(const std::string&)>& blob,
                                        std::string& error);

// Applies the release to a chat request body: pinned model, rendered prompt merged with the
// caller's messages, params (callers override only `overridable` ones), tools, and removes
// the `vars` member. Variables come from the body's top-level "vars" object, then from the
// x-sluice-vars header (a JSON object). Returns the error to answer (400) on failure.
// `extra` edits (e.g. the gateway's stream_options) join the same splice: one pass over the body.
std::optional<ApiError> render(const Compiled& r, std::string& body, std::string_view vars_header,
                               simdjson::dom::parser& parser, const std::vector<json::Edit>& extra = {});

}  // namespace sluice::release
