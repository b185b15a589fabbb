#include "core/strings.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace sluice {

TEST(ParseHostPort, AcceptsIpv4Ipv6AndNames) {
  auto a = parse_host_port("127.0.0.1:8080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  auto b = parse_host_port("[::1]:0");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 0);
  EXPECT_FALSE(parse_host_port("localhost"));
  EXPECT_FALSE(parse_host_port("host:99999"));
  EXPECT_FALSE(parse_host_port(":80"));
  EXPECT_FALSE(parse_host_port("h:8x"));
}

TEST(PercentEncoding, RoundTripsAnyKeyAsOnePathSegment) {
  const std::string key = "kill.tool.my route/v2.web%search?x=1&y";
  const std::string seg = percent_encode(key);
  EXPECT_EQ(seg, "kill.tool.my%20route%2Fv2.web%25search%3Fx%3D1%26y");
  EXPECT_EQ(percent_decode(seg).value_or("?"), key);
  EXPECT_EQ(percent_decode("a%2fb+c").value_or("?"), "a/b+c");
  EXPECT_FALSE(percent_decode("bad%2"));
  EXPECT_FALSE(percent_decode("bad%zz"));
  EXPECT_FALSE(percent_decode("%"));
}

TEST(ParseUrl, SchemesPortsAndBasePath) {
  auto u = parse_url("https://api.openai.com/v1/");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "api.openai.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->base_path, "/v1");
  auto v = parse_url("http://127.0.0.1:9000");
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->tls);
  EXPECT_EQ(v->port, 9000);
  EXPECT_EQ(v->base_path, "");
  auto w = parse_url("http://[::1]:81/x");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->host, "::1");
  EXPECT_EQ(w->port, 81);
  EXPECT_FALSE(parse_url("ftp://x"));
  EXPECT_FALSE(parse_url("http://"));
}

TEST(Loopback, RecognisesLoopbackOnly) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("10.0.0.1"));
}

TEST(ApiError, RendersOpenAiShapeWithEscaping) {
  ApiError e = bad_request("bad \"thing\"\n\x01", "invalid_json");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.to_json(),
            "{\"error\":{\"message\":\"bad \\\"thing\\\"\\n\\u0001\",\"type\":\"invalid_request_error\","
            "\"param\":null,\"code\":\"invalid_json\"}}");
}

TEST(Split, KeepsEmptyFields) {
  auto parts = split("a::b", ':');
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[1], "");
}

}  // namespace sluice

#include "core/json_object.hpp"

namespace sluice {
TEST(JsonObject, BuildsEscapedObjects) {
  EXPECT_EQ(JsonObject().done(), "{}");
  EXPECT_EQ(JsonObject().str("a", "x\"y").num("n", -3).raw("r", "[1]").done(), R"({"a":"x\"y","n":-3,"r":[1]})");
}
}  // namespace sluice
