#include <gtest/gtest.h>

#include <simdjson.h>

#include "otel/span.hpp"

using namespace sluice::otel;

namespace {

Span make_span() {
  Span s;
  s.trace = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").value().trace;
  s.id = {1, 2, 3, 4, 5, 6, 7, 8};
  s.parent = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31};
  s.name = "chat gpt-4o";
  s.kind = Kind::kServer;
  s.start_ns = 1700000000123456789;
  s.end_ns = 1700000000223456789;
  s.attributes = {{"gen_ai.request.model", std::string("gpt-\"4o\"\n")},
                  {"gen_ai.usage.input_tokens", int64_t(12)},
                  {"gen_ai.request.temperature", 0.25},
                  {"gen_ai.request.stream", true},
                  {"gen_ai.response.finish_reasons", std::vector<std::string>{"stop"}}};
  s.error = true;
  s.status_message = "upstream_failed";
  return s;
}

}  // namespace

TEST(OtelEncode, OtlpJsonShapeIdsTimesAndTypedValues) {
  std::vector<Span> spans{make_span()};
  Span child;
  child.trace = spans[0].trace;
  child.id = {9, 9, 9, 9, 9, 9, 9, 9};
  child.parent = spans[0].id;
  child.kind = Kind::kClient;
  child.name = "chat";
  spans.push_back(child);
  const std::string body = encode(spans, "sluice", "0.1.0");
  simdjson::dom::parser p;
  simdjson::dom::element doc = p.parse(body);
  auto rs = doc["resourceSpans"].at(0);
  EXPECT_EQ(std::string_view(rs["resource"]["attributes"].at(0)["key"]), "service.name");
  EXPECT_EQ(std::string_view(rs["resource"]["attributes"].at(0)["value"]["stringValue"]), "sluice");
  auto ss = rs["scopeSpans"].at(0)["spans"];
  auto s = ss.at(0);
  EXPECT_EQ(std::string_view(s["traceId"]), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(std::string_view(s["spanId"]), "0102030405060708");
  EXPECT_EQ(std::string_view(s["parentSpanId"]), "b7ad6b7169203331");
  EXPECT_EQ(int64_t(s["kind"]), 2);
  EXPECT_EQ(std::string_view(s["startTimeUnixNano"]), "1700000000123456789");
  EXPECT_EQ(std::string_view(s["endTimeUnixNano"]), "1700000000223456789");
  auto attrs = s["attributes"];
  EXPECT_EQ(std::string_view(attrs.at(0)["value"]["stringValue"]), "gpt-\"4o\"\n");
  EXPECT_EQ(std::string_view(attrs.at(1)["value"]["intValue"]), "12");
  EXPECT_DOUBLE_EQ(double(attrs.at(2)["value"]["doubleValue"]), 0.25);
  EXPECT_TRUE(bool(attrs.at(3)["value"]["boolValue"]));
  EXPECT_EQ(std::string_view(attrs.at(4)["value"]["arrayValue"]["values"].at(0)["stringValue"]), "stop");
  EXPECT_EQ(int64_t(s["status"]["code"]), 2);
  EXPECT_EQ(std::string_view(s["status"]["message"]), "upstream_failed");
  auto c = ss.at(1);
  EXPECT_EQ(int64_t(c["kind"]), 3);
  EXPECT_EQ(std::string_view(c["parentSpanId"]), "0102030405060708");
  // A span without error has an empty status (UNSET).
  EXPECT_EQ(c["status"].get_object().size(), 0u);
}

TEST(OtelEncode, RootSpanHasNoParentId) {
  Span s;
  s.trace = random_trace_id();
  s.id = random_span_id();
  const std::string body = encode({s}, "sluice", "x");
  EXPECT_EQ(body.find("parentSpanId"), std::string::npos);
  EXPECT_NE(body.find(hex(s.trace)), std::string::npos);
}

TEST(OtelTraceParent, ParsesAndRejects) {
  auto tp = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  ASSERT_TRUE(tp);
  EXPECT_TRUE(tp->sampled);
  EXPECT_EQ(hex(tp->trace), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(hex(tp->parent), "b7ad6b7169203331");
  EXPECT_EQ(format_traceparent(tp->trace, tp->parent, true), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  auto unsampled = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
  ASSERT_TRUE(unsampled);
  EXPECT_FALSE(unsampled->sampled);
  EXPECT_FALSE(parse_traceparent(""));
  EXPECT_FALSE(parse_traceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01"));  // zero trace id
  EXPECT_FALSE(parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"));  // zero parent
  EXPECT_FALSE(parse_traceparent("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"));  // uppercase
  EXPECT_FALSE(parse_traceparent("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));  // invalid version
  EXPECT_FALSE(parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x"));  // v00 has no suffix
  EXPECT_TRUE(parse_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future"));
}

TEST(OtelSampling, ParentDecidesElseRatioOfTraceId) {
  TraceParent yes, no;
  yes.sampled = true;
  EXPECT_TRUE(sample(random_trace_id(), yes, 0.0));
  EXPECT_FALSE(sample(random_trace_id(), no, 1.0));
  EXPECT_TRUE(sample(random_trace_id(), std::nullopt, 1.0));
  EXPECT_FALSE(sample(random_trace_id(), std::nullopt, 0.0));
  TraceId low{}, high{};
  high.fill(0xff);
  low[15] = 1;
  EXPECT_TRUE(sample(low, std::nullopt, 0.01));
  EXPECT_FALSE(sample(high, std::nullopt, 0.99));
  // Deterministic per trace id, and about the ratio over many ids.
  TraceId t = random_trace_id();
  EXPECT_EQ(sample(t, std::nullopt, 0.5), sample(t, std::nullopt, 0.5));
  int kept = 0;
  for (int i = 0; i < 20000; ++i) kept += sample(random_trace_id(), std::nullopt, 0.25);
  EXPECT_GT(kept, 4000);
  EXPECT_LT(kept, 6000);
}

TEST(OtelTrace, AttemptsEndOnceAndCarryTheirTraceparent) {
  Trace t;
  t.trace = random_trace_id();
  size_t a = t.begin_attempt("primary", "127.0.0.1", 9000, 100, random_span_id());
  size_t b = t.begin_attempt("backup", "127.0.0.1", 9001, 200, random_span_id());
  EXPECT_EQ(t.attempts[b].number, 2);
  t.end_attempt(a, "failure", "answered 503", 150);
  t.end_attempt(a, "success", "", 999);  // ignored: ended already
  t.end_attempt(7, "success", "", 999);  // out of range: ignored
  EXPECT_EQ(t.attempts[a].outcome, "failure");
  EXPECT_EQ(t.attempts[a].end_ns, 150);
  EXPECT_EQ(t.traceparent(b), "00-" + hex(t.trace) + "-" + hex(t.attempts[b].id) + "-01");
  EXPECT_EQ(t.traceparent(9), "");
}

TEST(OtelTruncate, CutsOnUtf8Boundary) {
  EXPECT_EQ(truncate_utf8("abc", 10), "abc");
  EXPECT_EQ(truncate_utf8("abcdef", 3), "abc");
  EXPECT_EQ(truncate_utf8("a\xc3\xa9" "b", 2), "a");  // é would be cut in half
  EXPECT_EQ(truncate_utf8("a\xc3\xa9" "b", 3), "a\xc3\xa9");
}
