#include "sse/parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::sse {

namespace {
std::vector<std::string> feed_in_pieces(const std::string& stream, size_t piece, size_t limit = 1 << 20,
                                        bool* ok_out = nullptr) {
  Parser p(limit);
  std::vector<std::string> events;
  bool ok = true;
  for (size_t i = 0; i < stream.size(); i += piece) {
    ok = p.feed(std::string_view(stream).substr(i, piece), [&](std::string_view raw) { events.emplace_back(raw); }) && ok;
  }
  if (ok_out) *ok_out = ok;
  return events;
}
}  // namespace

TEST(SseParser, SameEventsWhateverTheReadBoundaries) {
  const std::string stream = "data: {\"a\":1}\n\n: comment\n\ndata: x\r\n\r\ndata: [DONE]\n\n";
  auto whole = feed_in_pieces(stream, stream.size());
  ASSERT_EQ(whole.size(), 4u);
  EXPECT_EQ(whole[0], "data: {\"a\":1}\n\n");
  EXPECT_EQ(whole[2], "data: x\r\n\r\n");
  for (size_t piece = 1; piece < stream.size(); ++piece) {
    EXPECT_EQ(feed_in_pieces(stream, piece), whole) << "piece size " << piece;
  }
}

TEST(SseParser, HoldsPartialEventUntilComplete) {
  Parser p(1024);
  int n = 0;
  p.feed("data: par", [&](std::string_view) { ++n; });
  EXPECT_EQ(n, 0);
  EXPECT_TRUE(p.has_partial());
  p.feed("tial\n\n", [&](std::string_view raw) {
    ++n;
    EXPECT_EQ(raw, "data: partial\n\n");
  });
  EXPECT_EQ(n, 1);
  EXPECT_FALSE(p.has_partial());
}

TEST(SseParser, EnforcesEventSizeLimit) {
  bool ok = true;
  auto events = feed_in_pieces(std::string(5000, 'x'), 100, 1024, &ok);
  EXPECT_FALSE(ok);
  EXPECT_TRUE(events.empty());
}

TEST(SseParser, CarriageReturnOnlyTerminators) {
  // A trailing "\r\r" may still become "\r\r\n", so it completes once the next byte arrives.
  auto events = feed_in_pieces("data: a\r\rdata: b\r\rdata: c", 1);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1], "data: b\r\r");
}

TEST(SseData, JoinsMultipleDataLines) {
  std::string scratch;
  EXPECT_EQ(Parser::data_of("data: one\n\n", scratch), "one");
  EXPECT_EQ(Parser::data_of("event: x\ndata:two\ndata: three\n\n", scratch), "two\nthree");
  EXPECT_EQ(Parser::data_of(": keepalive\n\n", scratch), "");
}

}  // namespace sluice::sse
