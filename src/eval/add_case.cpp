#include "eval/add_case.hpp"

#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>

#include "core/files.hpp"
#include "core/strings.hpp"
#include "eval/suite.hpp"

namespace sluice::eval {

namespace {

namespace fs = std::filesystem;

std::string clip(std::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  size_t cut = n;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut)) + "...";
}

// Indents every line of `text` by `n` spaces.
std::string indent(const std::string& text, int n) {
  std::string pad(static_cast<size_t>(n), ' '), out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    if (!line.empty()) out += pad;
    out.append(line);
    out += '\n';
    start = end + 1;
  }
  return out;
}

// The line (0-based) holding byte offset `pos`, and the text split into lines.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      if (start < text.size()) out.push_back(text.substr(start));
      break;
    }
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

std::optional<LoggedRequest> find_logged_request(const std::string& log_path, const std::string& request_id,
                                                 std::string& error) {
  std::ifstream in(log_path, std::ios::binary);
  if (!in) {
    error = "cannot read the request log " + log_path;
    return std::nullopt;
  }
  simdjson::dom::parser parser;
  std::string partial;
  std::string needle = "\"" + request_id + "\"";
  std::optional<LoggedRequest> found;
  // Lines are read in blocks and never held beyond kMaxLogLineBytes (longer ones are skipped).
  std::vector<char> block(1 << 20);
  std::deque<std::string> lines;
  bool skipping = false;
  auto next_line = [&](std::string& out) -> bool {
    for (;;) {
      if (!lines.empty()) {
        out = std::move(lines.front());
        lines.pop_front();
        return true;
      }
      if (!in) {
        if (partial.empty() || skipping) return false;
        out = std::move(partial);
        partial.clear();
        return true;
      }
      in.read(block.data(), static_cast<std::streamsize>(block.size()));
      size_t got = static_cast<size_t>(in.gcount());
      const char* p = block.data();
      const char* end = p + got;
      while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
        const char* stop = nl ? nl : end;
        if (!skipping) {
          partial.append(p, stop);
          if (partial.size() > kMaxLogLineBytes) {
            partial.clear();
            skipping = true;
          }
        }
        if (nl) {
          if (!skipping) lines.push_back(std::move(partial));
          partial.clear();
          skipping = false;
        }
        p = nl ? nl + 1 : end;
      }
    }
  };
  std::string current;
  while (next_line(current)) {
    const std::string& line = current;
    if (line.find(needle) == std::string::npos) continue;
    simdjson::dom::element d;
    if (parser.parse(line).get(d)) continue;
    std::string_view id;
    if (d["request_id"].get_string().get(id) || id != request_id) continue;
    LoggedRequest r;
    r.request_id = request_id;
    std::string_view sv;
    if (!d["route"].get_string().get(sv)) r.route = std::string(sv);
    if (!d["release"].get_string().get(sv)) r.release = std::string(sv);
    simdjson::dom::element body;
    if (!d["request_body"].get(body)) {
      if (!body.get_string().get(sv))
        r.body = std::string(sv);
      else if (body.is_object())
        r.body = simdjson::minify(body);
    }
    if (!d["response_text"].get_string().get(sv)) r.response_text = std::string(sv);
    found = std::move(r);  // the last line with this id wins (there should be one)
  }
  if (!found) error = "request " + request_id + " is not in " + log_path;
  return found;
}

std::string case_yaml(const LoggedRequest& req, const AddCaseOptions& o, std::string& error) {
  if (req.body.empty()) {
    error = "the request log line of " + req.request_id +
            " has no \"request_body\": the route does not log request bodies, so the request cannot be replayed";
    return "";
  }
  simdjson::dom::parser parser;
  simdjson::dom::element body;
  if (parser.parse(req.body).get(body) || !body.is_object()) {
    error = "the logged request_body of " + req.request_id + " is not a JSON object";
    return "";
  }
  if (o.expect.empty()) {
    error = "give at least one --expect TYPE[:VALUE] (what the right answer must satisfy, e.g. --expect not-refusal)";
    return "";
  }
  YAML::Emitter e;
  e << YAML::BeginSeq << YAML::BeginMap;
  e << YAML::Key << "id" << YAML::Value << ("prod-" + req.request_id);
  std::string desc = !o.description.empty() ? o.description : "production request " + req.request_id;
  e << YAML::Key << "description" << YAML::Value << desc;
  e << YAML::Key << "category" << YAML::Value << o.category;
  simdjson::dom::object vars;
  bool any = false;
  if (!body["vars"].get_object().get(vars) && vars.size() > 0) {
    e << YAML::Key << "vars" << YAML::Value << YAML::BeginMap;
    for (auto f : vars) {
      std::string_view s;
      std::string v = f.value.get_string().get(s) ? simdjson::minify(f.value) : std::string(s);
      e << YAML::Key << std::string(f.key) << YAML::Value << v;
    }
    e << YAML::EndMap;
    any = true;
  }
  simdjson::dom::array msgs;
  if (!body["messages"].get_array().get(msgs) && msgs.size() > 0) {
    YAML::Node n;
    try {
      n = YAML::Load(simdjson::minify(msgs));  // JSON is YAML
    } catch (const YAML::Exception& ex) {
      error = "the logged messages cannot be written as YAML: " + std::string(ex.what());
      return "";
    }
    e << YAML::Key << "messages" << YAML::Value << n;
    any = true;
  }
  if (!any) {
    error = "the logged request has neither 'vars' nor 'messages'";
    return "";
  }
  e << YAML::Key << "assert" << YAML::Value << YAML::BeginSeq;
  for (const auto& x : o.expect) {
    std::string spec(trim(x));
    size_t colon = spec.find(':');
    std::string type = std::string(trim(spec.substr(0, colon)));
    std::string value = colon == std::string::npos ? "" : std::string(trim(spec.substr(colon + 1)));
    if (type.empty()) {
      error = "--expect '" + x + "': no assertion type";
      return "";
    }
    std::string base = starts_with(type, "not-") ? type.substr(4) : type;
    e << YAML::BeginMap << YAML::Key << "type" << YAML::Value << type;
    if (!value.empty()) {
      if (base == "latency" || base == "cost")
        e << YAML::Key << "threshold" << YAML::Value << value;
      else
        e << YAML::Key << "value" << YAML::Value << value;
    }
    e << YAML::EndMap;
  }
  e << YAML::EndSeq;
  e << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "request_id" << YAML::Value << req.request_id;
  if (!req.route.empty()) e << YAML::Key << "route" << YAML::Value << req.route;
  if (!req.release.empty()) e << YAML::Key << "release" << YAML::Value << req.release;
  if (!req.response_text.empty())
    e << YAML::Key << "logged_response" << YAML::Value << YAML::Literal << clip(req.response_text, 4000);
  e << YAML::EndMap;
  e << YAML::EndMap << YAML::EndSeq;
  if (!e.good()) {
    error = "cannot write the case as YAML: " + e.GetLastError();
    return "";
  }
  std::string out = e.c_str();
  if (out.empty() || out.back() != '\n') out += '\n';
  return out;
}

std::string insert_case(const std::string& text, const std::string& item, std::string& error) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& ex) {
    error = "line " + std::to_string(ex.mark.line + 1) + ": " + ex.msg;
    return "";
  }
  if (!root.IsMap()) {
    error = "the suite is not a YAML mapping";
    return "";
  }
  auto lines = lines_of(text);
  std::string base = text;
  if (!base.empty() && base.back() != '\n') base += '\n';
  YAML::Node tests = root["tests"];
  if (!tests) return base + "tests:\n" + indent(item, 2);
  if (!tests.IsSequence() || tests.Style() == YAML::EmitterStyle::Flow) {
    error = "'tests' is not a block list (- ...) in this file; add the case by hand or point add-case at the file it "
            "references";
    return "";
  }
  // Where the list ends: the line of the next top-level key, or the end of the file.
  int next_line = -1;
  bool after = false;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (after) {
      next_line = it->first.Mark().line;
      break;
    }
    after = it->first.Scalar() == "tests";
  }
  // The list's indentation: the column of the '-' of its first item.
  int dash_col = 2;
  if (tests.size() > 0) {
    auto m = tests[0].Mark();
    if (m.line >= 0 && static_cast<size_t>(m.line) < lines.size()) {
      const std::string& l = lines[static_cast<size_t>(m.line)];
      size_t upto = std::min(static_cast<size_t>(m.column), l.size());
      size_t dash = l.rfind('-', upto == 0 ? 0 : upto - 1);
      if (dash != std::string::npos) dash_col = static_cast<int>(dash);
    }
  }
  std::string block = indent(item, dash_col);
  if (next_line < 0) return base + block;
  // Insert before the next key, above the comments and blank lines that lead into it.
  int at = next_line;
  while (at > 0) {
    std::string_view prev = trim(lines[static_cast<size_t>(at - 1)]);
    bool col0_comment = !lines[static_cast<size_t>(at - 1)].empty() && lines[static_cast<size_t>(at - 1)][0] == '#';
    if (prev.empty() || col0_comment)
      --at;
    else
      break;
  }
  std::string out;
  for (int i = 0; i < static_cast<int>(lines.size()); ++i) {
    if (i == at) out += block;
    out += lines[static_cast<size_t>(i)];
    out += '\n';
  }
  return out;
}

int add_case(const AddCaseOptions& o, std::ostream& out, std::ostream& err) {
  std::string error;
  std::string suite_path = o.suite_path;
  // The suite must load before and after: add-case never breaks a suite.
  auto before = load_suite(suite_path, error);
  if (!before) {
    err << "error: " << error << "\n";
    return 2;
  }
  for (const auto& c : before->cases) {
    if (c.id == "prod-" + o.request_id) {
      err << "error: " << c.origin << ": the suite already has the case prod-" << o.request_id << "\n";
      return 1;
    }
  }
  std::string log = o.log_path.empty() ? o.data_dir + "/requests.jsonl" : o.log_path;
  auto req = find_logged_request(log, o.request_id, error);
  if (!req) {
    err << "error: " << error << "\n";
    return 1;
  }
  std::string item = case_yaml(*req, o, error);
  if (item.empty()) {
    err << "error: " << error << "\n";
    return 1;
  }
  // `tests: file://x.yaml`: the case goes into that file (a YAML list).
  std::string target = suite_path;
  {
    auto text = read_file(suite_path);
    YAML::Node root;
    try {
      root = YAML::Load(text ? *text : "");
    } catch (const YAML::Exception&) {
    }
    if (root.IsMap() && root["tests"] && root["tests"].IsScalar()) {
      std::string ref = root["tests"].Scalar();
      if (starts_with(ref, "file://")) ref = ref.substr(7);
      fs::path p(ref);
      if (p.is_relative()) p = fs::path(suite_path).parent_path() / p;
      std::string ext = p.extension().string();
      if (ext != ".yaml" && ext != ".yml") {
        err << "error: the suite's tests come from " << p.string() << "; add-case writes YAML lists only\n";
        return 2;
      }
      target = p.string();
    }
  }
  auto text = read_file(target);
  if (!text) {
    err << "error: cannot read " << target << "\n";
    return 2;
  }
  if (text->size() > kMaxSuiteBytes) {
    err << "error: " << target << " is larger than the 8 MiB limit\n";
    return 2;
  }
  std::string updated;
  if (target != suite_path) {
    updated = *text;
    if (!updated.empty() && updated.back() != '\n') updated += '\n';
    updated += item;
  } else {
    updated = insert_case(*text, item, error);
    if (updated.empty()) {
      err << "error: " << target << ": " << error << "\n";
      return 2;
    }
  }
  std::string tmp = target + ".add-case.tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << updated;
    if (!f.good()) {
      err << "error: cannot write " << tmp << "\n";
      return 2;
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    err << "error: cannot replace " << target << ": " << ec.message() << "\n";
    fs::remove(tmp, ec);
    return 2;
  }
  auto after = load_suite(suite_path, error);
  if (!after) {
    // Put the file back as it was: a suite that does not load gates nothing.
    std::ofstream f(target, std::ios::binary | std::ios::trunc);
    f << *text;
    err << "error: the new case does not load (" << error << "); " << target << " is unchanged\n";
    return 2;
  }
  out << "added case prod-" << o.request_id << " (" << o.category << ") to " << target << ": "
      << after->cases.size() << " cases\n";
  return 0;
}

}  // namespace sluice::eval
