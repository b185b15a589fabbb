#include "flags/ofrep.hpp"

#include <cstdio>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace sluice::flags::ofrep {

namespace {

// The request's evaluation context, with the tenant set; nullopt and `why` when malformed.
std::optional<Value> context_of(std::string_view body, std::string_view tenant, std::string& why) {
  Object ctx;
  if (body.find_first_not_of(" \t\r\n") != std::string_view::npos) {
    auto doc = parse_json(body, why);
    if (!doc) return std::nullopt;
    if (!doc->is_object()) {
      why = "the request body is an object: {\"context\": {...}}";
      return std::nullopt;
    }
    if (const Value* c = doc->get("context")) {
      if (!c->is_object() && !c->is_null()) {
        why = "context is an object";
        return std::nullopt;
      }
      if (c->is_object()) ctx = c->obj();
    }
  }
  if (!tenant.empty()) {
    std::erase_if(ctx, [](const auto& m) { return m.first == "tenant"; });
    ctx.emplace_back("tenant", Value::string(std::string(tenant)));
  }
  return Value::object(std::move(ctx));
}

void failure(std::string& out, std::string_view key, std::string_view code, std::string_view details) {
  out += "{\"key\":";
  append_json_string(out, key);
  out += ",\"errorCode\":\"";
  out += code;
  out += "\",\"errorDetails\":";
  append_json_string(out, details);
  out += '}';
}

void success(std::string& out, const Evaluation& e) {
  out += "{\"key\":";
  append_json_string(out, e.flag->key);
  out += ",\"reason\":\"";
  out += reason_name(e.reason);
  out += '"';
  if (e.has_value) {
    out += ",\"variant\":";
    append_json_string(out, e.variant);
    out += ",\"value\":";
    append_json(out, e.value);
  }
  out += ",\"metadata\":";
  append_json(out, e.flag->metadata);
  out += '}';
}

// A disabled flag answers its default variant (reason DISABLED), so a provider gets a value
// of the flag's type; one without a default variant answers no value (the caller's default).
Evaluation disabled(const Flag& f) {
  Evaluation e;
  e.flag = &f;
  e.reason = Reason::kDisabled;
  if (f.default_variant) {
    if (const Value* v = f.variant(*f.default_variant)) {
      e.has_value = true;
      e.value = *v;
      e.variant = *f.default_variant;
    }
  }
  return e;
}

const Flag* served(const FlagSet& set, std::string_view key) {
  const Flag* f = set.find(key);
  return f && set.role(f).kind == Kind::kPlain ? f : nullptr;
}

}  // namespace

std::string error_body(std::string_view code, std::string_view details) {
  std::string out = "{\"errorCode\":";
  append_json_string(out, code);
  out += ",\"errorDetails\":";
  append_json_string(out, details);
  return out + "}";
}

Answer evaluate_one(const FlagSet& set, std::string_view key, std::string_view body, std::string_view tenant,
                    int64_t now_s) {
  Answer a;
  std::string why;
  auto ctx = context_of(body, tenant, why);
  if (!ctx) {
    a.status = 400;
    failure(a.body, key, "INVALID_CONTEXT", why);
    return a;
  }
  const Flag* f = served(set, key);
  if (!f) {
    a.status = 404;
    failure(a.body, key, "FLAG_NOT_FOUND", "flag '" + std::string(key) + "' not found");
    return a;
  }
  Evaluation e = f->enabled ? evaluate(*f, *ctx, now_s) : disabled(*f);
  if (e.reason == Reason::kError) {
    a.status = 400;
    failure(a.body, key, error_name(e.error), e.message);
    return a;
  }
  success(a.body, e);
  return a;
}

Answer evaluate_all(const FlagSet& set, std::string_view body, std::string_view tenant,
                    std::string_view if_none_match, int64_t now_s) {
  Answer a;
  std::string why;
  auto ctx = context_of(body, tenant, why);
  if (!ctx) {
    a.status = 400;
    a.body = error_body("INVALID_CONTEXT", why);
    return a;
  }
  a.body = "{\"flags\":[";
  bool first = true;
  for (const Flag& f : set.all()) {
    if (!f.enabled || set.role(&f).kind != Kind::kPlain) continue;  // flagd leaves disabled flags out
    Evaluation e = evaluate(f, *ctx, now_s);
    if (!e.has_value && e.reason != Reason::kError) continue;  // no value: the caller's default
    if (!first) a.body += ',';
    first = false;
    if (e.reason == Reason::kError) failure(a.body, f.key, error_name(e.error), e.message);
    else success(a.body, e);
  }
  a.body += "]}";
  char tag[24];
  std::snprintf(tag, sizeof tag, "\"%016llx\"", static_cast<unsigned long long>(fnv1a(a.body)));
  a.etag = tag;
  // If-None-Match: a list of tags, possibly weak (W/"..."), or *.
  if (!if_none_match.empty() &&
      (if_none_match.find(a.etag) != std::string_view::npos || if_none_match.find('*') != std::string_view::npos)) {
    a.status = 304;
    a.body.clear();
  }
  return a;
}

}  // namespace sluice::flags::ofrep
