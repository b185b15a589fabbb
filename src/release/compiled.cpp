#include "release/compiled.hpp"

#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include "json/splice.hpp"
#include "release/canonical.hpp"

namespace sluice::release {

std::shared_ptr<const Compiled> compile(const std::string& id, const std::string& tuple_json,
                                        const std::function<std::optional<std::string>(const std::string&)>& blob,
                                        std::string& error) {
  auto v = from_json(tuple_json);
  const Object* t = v ? v->as_object() : nullptr;
  if (!t) {
    error = "release " + id + ": tuple is not a JSON object";
    return nullptr;
  }
  auto c = std::make_shared<Compiled>();
  c->id = id;
  auto str = [&](const Object& o, const char* k) -> std::string {
    auto it = o.find(k);
    return it != o.end() && it->second.as_string() ? *it->second.as_string() : std::string();
  };
  c->route = str(*t, "route");
  if (auto m = t->find("model"); m != t->end() && m->second.as_object()) {
    c->upstream = str(*m->second.as_object(), "upstream");
    c->model_id = str(*m->second.as_object(), "id");
  }
  if (auto a = t->find("adapter"); a != t->end() && a->second.as_object())
    c->adapter = str(*a->second.as_object(), "name") + "@" + str(*a->second.as_object(), "hash");
  if (auto ix = t->find("index"); ix != t->end() && ix->second.as_object())
    c->index_version = str(*ix->second.as_object(), "version");
  if (auto p = t->find("prompt"); p != t->end() && p->second.as_object()) {
    std::string hash = str(*p->second.as_object(), "hash");
    std::string mode = str(*p->second.as_object(), "mode");
    c->prompt_hash = "p_" + hash.substr(0, 12);
    c->mode = mode == "replace" ? PromptMode::kReplace
              : mode == "template_user" ? PromptMode::kTemplateUser
                                        : PromptMode::kPrependSystem;
    auto content = blob(hash);
    if (!content) {
      error = "release " + id + ": prompt blob " + hash + " missing from the store";
      return nullptr;
    }
    try {
      YAML::Node pf = YAML::Load(*content);
      std::string terr;
      if (pf["system"]) {
        c->system = Template::compile(pf["system"].Scalar(), terr);
        if (!c->system) error = terr;
      }
      if (pf["user"]) {
        c->user = Template::compile(pf["user"].Scalar(), terr);
        if (!c->user) error = terr;
      }
      for (const auto& m : pf["few_shot"]) {
        auto tpl = Template::compile(m["content"].Scalar(), terr);
        if (!tpl) {
          error = terr;
          break;
        }
        c->few_shot.emplace_back(m["role"] ? m["role"].Scalar() : "user", std::move(*tpl));
      }
    } catch (const YAML::Exception& e) {
      error = e.what();
    }
    if (!error.empty()) {
      error = "release " + id + ": prompt: " + error;
      return nullptr;
    }
  }
  if (auto p = t->find("params"); p != t->end() && p->second.as_object()) {
    for (const auto& [k, val] : *p->second.as_object()) c->params.emplace_back(k, to_json(val));
  }
  if (auto o = t->find("overridable"); o != t->end() && o->second.as_array()) {
    for (const auto& x : *o->second.as_array())
      if (x.as_string()) c->overridable.push_back(*x.as_string());
  }
  if (auto ts = t->find("tools"); ts != t->end() && ts->second.as_array() && !ts->second.as_array()->empty()) {
    c->tools_json = "[";
    bool first = true;
    for (const auto& x : *ts->second.as_array()) {
      std::string hash = x.as_object() ? str(*x.as_object(), "hash") : "";
      auto content = blob(hash);
      auto tool = content ? from_json(*content) : std::nullopt;
      if (!tool) {
        error = "release " + id + ": tool blob " + hash + " missing or invalid";
        return nullptr;
      }
      if (!first) c->tools_json += ",";
      first = false;
      c->tools_json += to_json(*tool);
    }
    c->tools_json += "]";
  }
  return c;
}

namespace {

void add_vars_from(simdjson::dom::element obj, Vars& vars) {
  simdjson::dom::object o;
  if (obj.get_object().get(o)) return;
  for (auto [k, v] : o) {
    std::string key(k);
    bool present = false;
    for (const auto& [ek, ev] : vars) present = present || ek == key;
    if (present) continue;
    std::string_view s;
    if (!v.get_string().get(s)) {
      vars.emplace_back(std::move(key), std::string(s));
    } else {
      vars.emplace_back(std::move(key), simdjson::minify(v));
    }
  }
}

void append_message(std::string& out, std::string_view role, std::string_view content) {
  if (out.size() > 1) out.push_back(',');
  out += "{\"role\":";
  append_json_string(out, role);
  out += ",\"content\":";
  append_json_string(out, content);
  out += "}";
}

ApiError missing_var(const std::string& name) {
  ApiError e = bad_request("prompt variable '" + name + "' is missing: send it in \"vars\" or the x-sluice-vars header",
                           "missing_variable");
  e.param = "vars." + name;
  e.kind = ErrorKind::kMissingVariable;
  return e;
}

}  // namespace

std::optional<ApiError> render(const Compiled& r, std::string& body, std::string_view vars_header,
                               simdjson::dom::parser& parser, const std::vector<json::Edit>& extra) {
  auto members = json::top_level_members(body);
  if (!members) return bad_request("request body must be a JSON object", "invalid_json");
  std::string_view messages_raw, vars_raw;
  std::vector<std::string_view> present;
  for (const auto& m : *members) {
    if (m.key == "messages") messages_raw = m.value;
    if (m.key == "vars") vars_raw = m.value;
    present.push_back(m.key);
  }
  Vars vars;
  if (!vars_raw.empty()) {
    simdjson::dom::element e;
    if (parser.parse(vars_raw.data(), vars_raw.size(), true).get(e) || !e.is_object()) {
      ApiError err = bad_request("'vars' must be an object of strings", "invalid_type");
      err.param = "vars";
      return err;
    }
    add_vars_from(e, vars);
  }
  if (!vars_header.empty()) {
    simdjson::dom::element e;
    if (parser.parse(vars_header.data(), vars_header.size(), true).get(e) || !e.is_object())
      return bad_request("the x-sluice-vars header must be a JSON object", "invalid_vars_header");
    add_vars_from(e, vars);
  }

  std::vector<json::Edit> edits;
  std::string model_literal;
  append_json_string(model_literal, r.model_id);
  edits.push_back({"model", model_literal});
  edits.push_back({"vars", ""});  // sluice's own field never reaches the upstream

  std::string messages;
  if (r.mode != PromptMode::kNone) {
    std::string missing, text;
    // For template_user, the caller's last user message is the variable {{input}}.
    std::string last_user_content;
    std::vector<std::string> caller;  // minified caller messages (template_user only)
    std::vector<std::string> last_user_parts;  // its image/audio parts, kept after the text
    int last_user = -1;
    if (r.mode == PromptMode::kTemplateUser) {
      simdjson::dom::element arr;
      if (parser.parse(messages_raw.data(), messages_raw.size(), true).get(arr) || !arr.is_array())
        return bad_request("'messages' must be an array", "invalid_type");
      int i = 0;
      std::vector<std::string> other_parts;  // non-text parts of the last user message, kept
      for (auto m : arr.get_array()) {
        caller.push_back(simdjson::minify(m));
        std::string_view role, content;
        if (!m["role"].get_string().get(role) && role == "user") {
          // The last user message is wrapped, whatever the shape of its content.
          last_user = i;
          last_user_content.clear();
          other_parts.clear();
          simdjson::dom::array parts;
          if (!m["content"].get_string().get(content)) {
            last_user_content.assign(content);
          } else if (!m["content"].get_array().get(parts)) {
            for (auto part : parts) {
              std::string_view type, t;
              if (!part["type"].get_string().get(type) && type == "text" && !part["text"].get_string().get(t)) {
                if (!last_user_content.empty()) last_user_content.push_back('\n');
                last_user_content.append(t);
              } else {
                other_parts.push_back(simdjson::minify(part));
              }
            }
          }
        }
        ++i;
      }
      last_user_parts = std::move(other_parts);
      if (last_user < 0 || (last_user_content.empty() && last_user_parts.empty()))
        return bad_request("template_user prompts need a user message with text content", "missing_user_message");
      vars.emplace_back("input", last_user_content);
    }
    messages = "[";
    if (r.system) {
      text.clear();
      if (!r.system->render(vars, text, missing)) return missing_var(missing);
      append_message(messages, "system", text);
    }
    for (const auto& [role, tpl] : r.few_shot) {
      text.clear();
      if (!tpl.render(vars, text, missing)) return missing_var(missing);
      append_message(messages, role, text);
    }
    if (r.mode == PromptMode::kReplace) {
      text.clear();
      if (!r.user->render(vars, text, missing)) return missing_var(missing);
      append_message(messages, "user", text);
    } else if (r.mode == PromptMode::kTemplateUser) {
      for (size_t i = 0; i < caller.size(); ++i) {
        if (static_cast<int>(i) == last_user) {
          text.clear();
          if (!r.user->render(vars, text, missing)) return missing_var(missing);
          if (last_user_parts.empty()) {
            append_message(messages, "user", text);
          } else {
            // Content parts: the rendered text first, then the caller's other parts as sent.
            if (messages.size() > 1) messages.push_back(',');
            messages += "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":";
            append_json_string(messages, text);
            messages += "}";
            for (const auto& p : last_user_parts) messages += "," + p;
            messages += "]}";
          }
        } else {
          if (messages.size() > 1) messages.push_back(',');
          messages += caller[i];
        }
      }
    } else {
      // prepend_system: the caller's messages follow, byte for byte.
      std::string_view inner = messages_raw;
      if (inner.size() >= 2) inner = inner.substr(1, inner.size() - 2);
      bool empty_inner = inner.find_first_not_of(" \t\r\n") == std::string_view::npos;
      if (!empty_inner) {
        if (messages.size() > 1) messages.push_back(',');
        messages.append(inner);
      }
    }
    messages += "]";
    edits.push_back({"messages", messages});
  }
  auto caller_has = [&](std::string_view k) {
    for (auto p : present)
      if (p == k) return true;
    return false;
  };
  for (const auto& [k, v] : r.params) {
    bool overridable = false;
    for (const auto& o : r.overridable) overridable = overridable || o == k;
    if (overridable && caller_has(k)) continue;
    edits.push_back({k, v});
  }
  if (!r.tools_json.empty() && !caller_has("tools")) edits.push_back({"tools", r.tools_json});
  edits.insert(edits.end(), extra.begin(), extra.end());
  auto out = json::splice_members(body, edits);
  if (!out) return bad_request("request body must be a JSON object", "invalid_json");
  body = std::move(*out);
  return std::nullopt;
}

}  // namespace sluice::release
