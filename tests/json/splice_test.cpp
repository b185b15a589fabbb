#include "json/splice.hpp"

#include <gtest/gtest.h>

namespace sluice::json {

TEST(TopLevelMembers, SplitsNestedValuesAndStrings) {
  auto m = top_level_members(R"( {"a": {"x":[1,"}",{"y":"]"}]}, "b\"c" : "v,}", "n": -1.5e3, "t":true} )");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->size(), 4u);
  EXPECT_EQ((*m)[0].key, "a");
  EXPECT_EQ((*m)[0].value, R"({"x":[1,"}",{"y":"]"}]})");
  EXPECT_EQ((*m)[1].key, R"(b\"c)");
  EXPECT_EQ((*m)[1].value, R"("v,}")");
  EXPECT_EQ((*m)[2].value, "-1.5e3");
  EXPECT_EQ((*m)[3].value, "true");
}

TEST(TopLevelMembers, RejectsNonObjectsAndTruncation) {
  EXPECT_FALSE(top_level_members("[1,2]"));
  EXPECT_FALSE(top_level_members(R"({"a":1)"));
  EXPECT_FALSE(top_level_members(R"({"a":1,})"));
  EXPECT_FALSE(top_level_members(R"({"a" 1})"));
  EXPECT_FALSE(top_level_members(R"({"a":"unterminated})"));
  auto empty = top_level_members(" {} ");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(SpliceMembers, ReplacesAddsRemovesAndKeepsUnknownBytes) {
  std::string body = R"({"model":"a","x_custom":{"keep": [1.000, "exact"]},"stream":true})";
  auto out = splice_members(body, {{"model", R"("gpt-4o-2024-08-06")"}, {"stream_options", R"({"include_usage":true})"}});
  ASSERT_TRUE(out);
  EXPECT_EQ(*out,
            R"({"model":"gpt-4o-2024-08-06","x_custom":{"keep": [1.000, "exact"]},"stream":true,"stream_options":{"include_usage":true}})");
  auto removed = splice_members(body, {{"stream", ""}});
  ASSERT_TRUE(removed);
  EXPECT_EQ(*removed, R"({"model":"a","x_custom":{"keep": [1.000, "exact"]}})");
}

TEST(SpliceMembers, DuplicateKeysCollapseToOneEdit) {
  auto out = splice_members(R"({"model":"a","model":"b"})", {{"model", R"("c")"}});
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, R"({"model":"c"})");
}

}  // namespace sluice::json
