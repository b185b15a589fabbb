#include "sse/parser.hpp"

namespace sluice::sse {

std::string_view Parser::data_of(std::string_view raw, std::string& scratch) {
  std::string_view single;
  int count = 0;
  scratch.clear();
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t eol = raw.find_first_of("\r\n", pos);
    if (eol == std::string_view::npos) eol = raw.size();
    std::string_view line = raw.substr(pos, eol - pos);
    if (line.substr(0, 5) == "data:") {
      std::string_view v = line.substr(5);
      if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      if (count == 0) {
        single = v;
      } else {
        if (count == 1) scratch.assign(single);
        scratch.push_back('\n');
        scratch.append(v);
      }
      ++count;
    }
    pos = eol;
    if (pos < raw.size() && raw[pos] == '\r') ++pos;
    if (pos < raw.size() && raw[pos] == '\n') ++pos;
  }
  return count <= 1 ? single : std::string_view(scratch);
}

}  // namespace sluice::sse
