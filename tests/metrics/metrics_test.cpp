#include "metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace sluice::metrics {

TEST(Histogram, BucketsAreCumulativeInExposition) {
  Registry reg(2);
  RequestSample s;
  s.route = "bot";
  s.upstream = "a";
  s.status = 200;
  s.latency_s = 0.003;
  s.ttft_s = 0.0004;
  s.tokens_in = 10;
  s.tokens_out = 5;
  reg.shard(0).record(s);
  s.latency_s = 20;
  s.status = 502;
  reg.shard(1).record(s);
  std::string out = reg.render_prometheus();
  EXPECT_NE(out.find("sluice_requests_total{route=\"bot\",upstream=\"a\",status_class=\"2xx\"} 1"), std::string::npos);
  EXPECT_NE(out.find("sluice_requests_total{route=\"bot\",upstream=\"a\",status_class=\"5xx\"} 1"), std::string::npos);
  EXPECT_NE(out.find("sluice_request_duration_seconds_bucket{route=\"bot\",upstream=\"a\",le=\"0.005\"} 1"),
            std::string::npos);
  EXPECT_NE(out.find("sluice_request_duration_seconds_bucket{route=\"bot\",upstream=\"a\",le=\"30\"} 2"),
            std::string::npos);
  EXPECT_NE(out.find("sluice_request_duration_seconds_count{route=\"bot\",upstream=\"a\"} 2"), std::string::npos);
  EXPECT_NE(out.find("sluice_time_to_first_token_seconds_bucket{route=\"bot\",upstream=\"a\",le=\"0.0005\"} 2"),
            std::string::npos);
  EXPECT_NE(out.find("sluice_tokens_total{route=\"bot\",upstream=\"a\",direction=\"input\"} 20"), std::string::npos);
}

TEST(Registry, ReleasesGetTheirOwnSeries) {
  // A canary and its stable release on one route are separate series (release label);
  // routes without releases keep route+upstream only.
  Registry reg(1);
  RequestSample s;
  s.route = "bot";
  s.upstream = "a";
  s.status = 200;
  s.latency_s = 0.01;
  s.release = "rel_stable";
  reg.shard(0).record(s);
  reg.shard(0).record(s);
  s.release = "rel_canary";
  reg.shard(0).record(s);
  s.route = "plain";
  s.release = "";
  reg.shard(0).record(s);
  std::string out = reg.render_prometheus();
  EXPECT_NE(out.find("sluice_requests_total{route=\"bot\",release=\"rel_stable\",upstream=\"a\",status_class=\"2xx\"} 2"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("sluice_requests_total{route=\"bot\",release=\"rel_canary\",upstream=\"a\",status_class=\"2xx\"} 1"),
            std::string::npos);
  EXPECT_NE(out.find("sluice_request_duration_seconds_count{route=\"bot\",release=\"rel_canary\",upstream=\"a\"} 1"),
            std::string::npos);
  EXPECT_NE(out.find("sluice_requests_total{route=\"plain\",upstream=\"a\",status_class=\"2xx\"} 1"), std::string::npos);
}

TEST(Registry, EscapesLabelsAndCountsUpstreamErrors) {
  Registry reg(1);
  reg.shard(0).upstream_error("we\"ird", "idle_timeout");
  reg.shard(0).upstream_error("we\"ird", "idle_timeout");
  std::string out = reg.render_prometheus();
  EXPECT_NE(out.find("sluice_upstream_errors_total{upstream=\"we\\\"ird\",kind=\"idle_timeout\"} 2"), std::string::npos);
}

TEST(Registry, ScrapeWhileWorkersRecord) {
  Registry reg(2);
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (size_t w = 0; w < 2; ++w) {
    workers.emplace_back([&, w] {
      RequestSample s;
      s.route = "r";
      s.upstream = "u";
      s.status = 200;
      for (int i = 0; i < 20000; ++i) reg.shard(w).record(s);
    });
  }
  for (int i = 0; i < 50; ++i) (void)reg.render_prometheus();
  for (auto& t : workers) t.join();
  EXPECT_NE(reg.render_prometheus().find("status_class=\"2xx\"} 40000"), std::string::npos);
}

}  // namespace sluice::metrics
