// Error kinds: one code per kind and back, the status a kind answers with, fallback classes.
#include "core/error.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(FailureClass, MapsForwarderKindsToFallbackClasses) {
  EXPECT_EQ(failure_class(ErrorKind::kConnectFailed), FailureClass::kConnect);
  EXPECT_EQ(failure_class(ErrorKind::kFirstTokenTimeout), FailureClass::kTimeout);
  EXPECT_EQ(failure_class(ErrorKind::kStatus5xx), FailureClass::k5xx);
  EXPECT_EQ(failure_class(ErrorKind::kReset), FailureClass::k5xx);
  EXPECT_EQ(failure_class(ErrorKind::kStatus429), FailureClass::k429);
  EXPECT_EQ(failure_class(ErrorKind::kUpstreamsUnavailable), FailureClass::kUnavailable);
  EXPECT_EQ(failure_class(ErrorKind::kContextLengthExceeded), FailureClass::kContextLength);
  EXPECT_EQ(failure_class(ErrorKind::kStatus4xx), FailureClass::kNone);
  EXPECT_EQ(failure_class(ErrorKind::kShuttingDown), FailureClass::kNone);
  EXPECT_EQ(failure_class_named("5xx"), FailureClass::k5xx);
  EXPECT_EQ(failure_class_named("4xx"), FailureClass::kNone);
}

TEST(ErrorKind, EveryKindSluiceProducesHasOneCodeAndBack) {
  for (int i = static_cast<int>(ErrorKind::kMissingVariable); i <= static_cast<int>(ErrorKind::kShuttingDown); ++i) {
    auto k = static_cast<ErrorKind>(i);
    ASSERT_FALSE(code_of(k).empty()) << i;
    EXPECT_EQ(kind_of(code_of(k)), k) << code_of(k);
  }
  EXPECT_EQ(kind_of("invalid_json"), ErrorKind::kRequest);
  EXPECT_EQ(kind_of(""), ErrorKind::kNone);
  ApiError e = error_of(ErrorKind::kIdleTimeout, "stalled");
  EXPECT_EQ(e.status, 504);
  EXPECT_EQ(e.code, "idle_timeout");
  EXPECT_EQ(error_of(ErrorKind::kUpstreamsUnavailable, "x").status, 503);
  EXPECT_EQ(error_of(ErrorKind::kStreamCut, "x").status, 502);
  EXPECT_EQ(error_of(ErrorKind::kContextLengthExceeded, "x").status, 400);
}

}  // namespace
}  // namespace sluice
