#include <gtest/gtest.h>

#include "otel/exporter.hpp"

using namespace sluice::otel;

namespace {

// Port 1 (tcpmux): privileged and unused on test machines, so a connect is refused at once.
int closed_port() { return 1; }

}  // namespace

TEST(OtelExporter, FullQueueDropsAndCountsWithoutBlocking) {
  ExporterSettings s;
  s.port = closed_port();
  s.queue_size = 4;
  s.batch_size = 4;
  s.flush_interval_ms = 600000;  // the thread does not drain during the test
  Exporter e(s);
  std::vector<Span> three(3);
  EXPECT_TRUE(e.push(std::move(three)));
  std::vector<Span> two(2);
  EXPECT_FALSE(e.push(std::move(two)));  // 3 + 2 > 4: both dropped
  EXPECT_EQ(e.dropped(), 2u);
}

TEST(OtelExporter, UnreachableCollectorCountsFailedSpans) {
  ExporterSettings s;
  s.port = closed_port();
  s.queue_size = 16;
  s.batch_size = 2;
  s.flush_interval_ms = 10;
  s.timeout_ms = 500;
  Exporter e(s);
  std::vector<Span> two(2);
  ASSERT_TRUE(e.push(std::move(two)));
  e.stop();  // flushes what is queued
  EXPECT_EQ(e.failed(), 2u);
  EXPECT_EQ(e.exported(), 0u);
  EXPECT_NE(e.prometheus().find("sluice_otel_spans_total{outcome=\"failed\"} 2"), std::string::npos);
}
