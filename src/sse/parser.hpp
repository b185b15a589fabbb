// sse/parser.hpp: splits a byte stream into whole SSE events, holding at most one partial
// event (bounded by max_event_bytes). The relay forwards whole events only, so a cut stream
// can always be finished with a well-formed error event.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::sse {

class Parser {
 public:
  explicit Parser(size_t max_event_bytes) : max_event_(max_event_bytes) {}

  // Feeds bytes; calls on_event(raw) for each complete event, where raw includes its
  // terminating blank line. Returns false once a single event exceeds the limit (the
  // parser is then unusable). `raw` views stay valid only during the callback.
  template <class F>
  bool feed(std::string_view bytes, F&& on_event) {
    if (failed_) return false;
    if (pending_.empty()) {
      size_t consumed = scan(bytes, on_event);
      bytes.remove_prefix(consumed);
      if (bytes.size() > max_event_) return fail();
      pending_.assign(bytes);
      scanned_ = rescan_from(pending_.size());
      return true;
    }
    pending_.append(bytes);
    size_t consumed = scan_pending(on_event);
    pending_.erase(0, consumed);
    if (pending_.size() > max_event_) return fail();
    scanned_ = rescan_from(pending_.size());
    return true;
  }

  // Bytes of an event that has started but not finished.
  bool has_partial() const { return !pending_.empty(); }
  size_t buffered() const { return pending_.size(); }

  // The data field of a raw event: the `data:` lines joined with '\n'. Returns a view into
  // raw when there is exactly one data line (the common case), else into scratch.
  static std::string_view data_of(std::string_view raw, std::string& scratch);

 private:
  // Finds complete events in `s`, calling on_event; returns bytes consumed.
  template <class F>
  size_t scan(std::string_view s, F& on_event) {
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      size_t end = terminator_end(s, i);
      if (end != 0) {
        on_event(s.substr(start, end - start));
        start = end;
        i = end - 1;
      }
    }
    return start;
  }
  template <class F>
  size_t scan_pending(F& on_event) {
    // Terminators can straddle the old/new boundary: rescan from a little before it.
    size_t from = scanned_;
    size_t start = 0;
    for (size_t i = from; i < pending_.size(); ++i) {
      size_t end = terminator_end(pending_, i);
      if (end != 0) {
        on_event(std::string_view(pending_).substr(start, end - start));
        start = end;
        i = end - 1;
      }
    }
    return start;
  }
  // If a blank-line terminator ("\n\n", "\r\n\r\n", "\r\r", "\n\r\n", "\r\n\n") starts at i,
  // returns one past its end, else 0.
  static size_t terminator_end(std::string_view s, size_t i) {
    char c = s[i];
    if (c != '\n' && c != '\r') return 0;
    size_t j = i + 1;
    if (c == '\r' && j < s.size() && s[j] == '\n') ++j;
    if (j >= s.size()) return 0;
    if (s[j] == '\n') return j + 1;
    if (s[j] == '\r') {
      if (j + 1 < s.size() && s[j + 1] == '\n') return j + 2;
      if (j + 1 < s.size()) return j + 1;
      return 0;  // "\r" at the end: may become "\r\n"
    }
    return 0;
  }
  static size_t rescan_from(size_t n) { return n >= 3 ? n - 3 : 0; }
  bool fail() {
    failed_ = true;
    pending_.clear();
    return false;
  }

  size_t max_event_;
  std::string pending_;
  size_t scanned_ = 0;
  bool failed_ = false;
};

}  // namespace sluice::sse
