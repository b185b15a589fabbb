#include "core/strings.hpp"
#include "metrics/metrics.hpp"

#include <algorithm>
#include <initializer_list>
#include <cstdio>
#include <limits>

namespace sluice::metrics {

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < kBuckets.size() && v > kBuckets[i]) ++i;
  ++counts[i];
  sum += v;
  ++count;
}

void Histogram::merge(const Histogram& o) {
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
  sum += o.sum;
  count += o.count;
}

double histogram_quantile(const Histogram& h, double q) {
  if (h.count == 0) return std::numeric_limits<double>::quiet_NaN();
  const double rank = q * static_cast<double>(h.count);
  uint64_t cum = 0;
  for (size_t i = 0; i < h.counts.size(); ++i) {
    const uint64_t before = cum;
    cum += h.counts[i];
    if (static_cast<double>(cum) < rank || h.counts[i] == 0) continue;
    if (i >= kBuckets.size()) return kBuckets.back();
    const double lo = i == 0 ? 0.0 : kBuckets[i - 1], hi = kBuckets[i];
    return lo + (hi - lo) * std::clamp((rank - static_cast<double>(before)) / static_cast<double>(h.counts[i]), 0.0, 1.0);
  }
  return kBuckets.back();
}

void RequestSeries::merge(const RequestSeries& o) {
  for (size_t i = 0; i < by_class.size(); ++i) by_class[i] += o.by_class[i];
  latency.merge(o.latency);
  ttft.merge(o.ttft);
  tpot.merge(o.tpot);
  tokens_in += o.tokens_in;
  tokens_out += o.tokens_out;
}

void Totals::add(const Totals& o) {
  requests += o.requests;
  errors += o.errors;
  refusal_checked += o.refusal_checked;
  refusals += o.refusals;
  tokens_in += o.tokens_in;
  tokens_out += o.tokens_out;
  cost_usd += o.cost_usd;
  latency.merge(o.latency);
  ttft.merge(o.ttft);
}

Totals Totals::since(const Totals& e) const {
  if (requests < e.requests) return *this;
  Totals d = *this;
  auto minus = [](uint64_t a, uint64_t b) { return a >= b ? a - b : a; };
  d.requests = minus(requests, e.requests);
  d.errors = minus(errors, e.errors);
  d.refusal_checked = minus(refusal_checked, e.refusal_checked);
  d.refusals = minus(refusals, e.refusals);
  d.tokens_in = minus(tokens_in, e.tokens_in);
  d.tokens_out = minus(tokens_out, e.tokens_out);
  d.cost_usd = cost_usd - e.cost_usd;
  auto hist = [&](Histogram& h, const Histogram& a, const Histogram& b) {
    for (size_t i = 0; i < h.counts.size(); ++i) h.counts[i] = minus(a.counts[i], b.counts[i]);
    h.count = minus(a.count, b.count);
    h.sum = a.sum - b.sum;
  };
  hist(d.latency, latency, e.latency);
  hist(d.ttft, ttft, e.ttft);
  return d;
}

namespace {
// A series key: the parts joined by \x1f (reusing the shard's scratch string).
void join_key(std::string& k, std::initializer_list<std::string_view> parts) {
  k.clear();
  bool first = true;
  for (std::string_view p : parts) {
    if (!first) k.push_back('\x1f');
    first = false;
    k.append(p);
  }
}
}  // namespace

void Shard::record(const RequestSample& s) {
  std::lock_guard<std::mutex> lock(mu_);
  join_key(key_, {s.route, s.release, s.upstream});
  auto it = series_.find(key_);
  if (it == series_.end()) it = series_.emplace(key_, RequestSeries{}).first;
  RequestSeries& r = it->second;
  int cls = s.status / 100;
  ++r.by_class[(cls >= 1 && cls <= 5) ? cls : 0];
  r.latency.observe(s.latency_s);
  if (s.ttft_s >= 0) r.ttft.observe(s.ttft_s);
  if (s.tpot_s >= 0) r.tpot.observe(s.tpot_s);
  if (s.tokens_in > 0) r.tokens_in += static_cast<uint64_t>(s.tokens_in);
  if (s.tokens_out > 0) r.tokens_out += static_cast<uint64_t>(s.tokens_out);
  if (s.cost_usd >= 0) {
    join_key(key_, {s.route, s.release, s.tenant});
    auto c = cost_.find(key_);
    if (c == cost_.end()) c = cost_.emplace(key_, CostTotal{}).first;
    c->second.usd += s.cost_usd;
    ++c->second.requests;
  }
  // Alarms' and series' view: one more key with the tenant (route \x1f release \x1f tenant \x1f upstream).
  join_key(key_, {s.route, s.release, s.tenant, s.upstream});
  auto t = totals_.find(key_);
  if (t == totals_.end()) t = totals_.emplace(key_, Totals{}).first;
  Totals& a = t->second;
  ++a.requests;
  if (s.status >= 500) ++a.errors;
  if (s.refusal_checked) {
    ++a.refusal_checked;
    if (s.refused) ++a.refusals;
  }
  if (s.tokens_in > 0) a.tokens_in += static_cast<uint64_t>(s.tokens_in);
  if (s.tokens_out > 0) a.tokens_out += static_cast<uint64_t>(s.tokens_out);
  if (s.cost_usd > 0) a.cost_usd += s.cost_usd;
  a.latency.observe(s.latency_s);
  if (s.ttft_s >= 0) a.ttft.observe(s.ttft_s);
}

void Shard::count_pair(std::unordered_map<std::string, uint64_t>& m, std::string_view a, std::string_view b) {
  std::lock_guard<std::mutex> lock(mu_);
  key_.assign(a);
  key_.push_back('\x1f');
  key_.append(b);
  ++m[key_];
}

void Shard::upstream_error(std::string_view upstream, std::string_view kind) { count_pair(upstream_errors_, upstream, kind); }

void Shard::fallback(std::string_view route, std::string_view served_by) { count_pair(fallbacks_, route, served_by); }
void Shard::refused(std::string_view tenant, std::string_view reason) { count_pair(refused_, tenant, reason); }

Registry::Registry(size_t workers) {
  for (size_t i = 0; i < workers; ++i) shards_.push_back(std::make_unique<Shard>());
}

int64_t Registry::inflight() const {
  int64_t n = 0;
  for (const auto& s : shards_) n += s->inflight.load(std::memory_order_relaxed);
  return n;
}

std::map<std::string, CostTotal> Registry::cost_totals() const {
  std::map<std::string, CostTotal> out;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu_);
    for (const auto& [k, v] : s->cost_) {
      CostTotal& t = out[k];
      t.usd += v.usd;
      t.requests += v.requests;
    }
  }
  return out;
}

std::map<std::string, Histogram> Registry::ttft_by_upstream() const {
  std::map<std::string, Histogram> out;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu_);
    for (const auto& [k, v] : s->series_) {
      if (v.ttft.count == 0) continue;
      out[k.substr(k.rfind('\x1f') + 1)].merge(v.ttft);
    }
  }
  return out;
}

std::map<std::string, Totals> Registry::collect() const {
  std::map<std::string, Totals> out;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu_);
    for (const auto& [k, v] : s->totals_) out[k].add(v);
  }
  return out;
}

namespace {

std::string escape_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string prometheus_label(std::string_view v) { return escape_label(v); }

namespace {

std::pair<std::string, std::string> split_key(const std::string& k) {
  size_t p = k.find('\x1f');
  return {k.substr(0, p), k.substr(p + 1)};
}

// route="...",[release="...",]upstream="..." from a series key. The release label appears on
// routes served by releases (so dashboards can compare a canary with its stable release).
std::string series_labels(const std::string& k) {
  size_t a = k.find('\x1f'), b = k.find('\x1f', a + 1);
  std::string release = k.substr(a + 1, b - a - 1);
  std::string l = "route=\"" + escape_label(k.substr(0, a)) + "\"";
  if (!release.empty()) l += ",release=\"" + escape_label(release) + "\"";
  return l + ",upstream=\"" + escape_label(k.substr(b + 1)) + "\"";
}

void fmt_double(std::string& out, double v) { out += num_text(v, 9, NonFinite::kPrometheus); }

void render_histogram(std::string& out, const char* name, const std::string& labels, const Histogram& h) {
  uint64_t cum = 0;
  for (size_t i = 0; i < h.counts.size(); ++i) {
    cum += h.counts[i];
    out += name;
    out += "_bucket{" + labels + ",le=\"";
    if (i < kBuckets.size()) {
      fmt_double(out, kBuckets[i]);
    } else {
      out += "+Inf";
    }
    out += "\"} " + std::to_string(cum) + "\n";
  }
  out += std::string(name) + "_sum{" + labels + "} ";
  fmt_double(out, h.sum);
  out += "\n" + std::string(name) + "_count{" + labels + "} " + std::to_string(h.count) + "\n";
}

}  // namespace

std::string Registry::render_prometheus() const {
  std::map<std::string, RequestSeries> series;
  std::map<std::string, uint64_t> errors, fallbacks, refused;
  int64_t inflight = 0, streams = 0, ofrep = 0;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu_);
    for (const auto& [k, v] : s->series_) series[k].merge(v);
    for (const auto& [k, v] : s->upstream_errors_) errors[k] += v;
    for (const auto& [k, v] : s->fallbacks_) fallbacks[k] += v;
    for (const auto& [k, v] : s->refused_) refused[k] += v;
    inflight += s->inflight.load(std::memory_order_relaxed);
    streams += s->open_streams.load(std::memory_order_relaxed);
    ofrep += s->ofrep_evaluations.load(std::memory_order_relaxed);
  }
  std::string out;
  out.reserve(4096 + series.size() * 4096);
  out += "# HELP sluice_requests_total Requests finished, by route, release, upstream and status class.\n";
  out += "# TYPE sluice_requests_total counter\n";
  static const char* kClass[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (const auto& [k, v] : series) {
    std::string l = series_labels(k);
    for (size_t c = 0; c < v.by_class.size(); ++c) {
      if (v.by_class[c] == 0) continue;
      out += "sluice_requests_total{" + l + ",status_class=\"" + kClass[c] + "\"} " + std::to_string(v.by_class[c]) + "\n";
    }
  }
  struct H {
    const char* name;
    const char* help;
    const Histogram RequestSeries::*member;
  };
  static const H kHists[] = {
      {"sluice_request_duration_seconds", "End-to-end request latency seen by the gateway.", &RequestSeries::latency},
      {"sluice_time_to_first_token_seconds", "Time from request arrival to the first streamed token.", &RequestSeries::ttft},
      {"sluice_time_per_output_token_seconds", "Mean time per output token after the first, per stream.", &RequestSeries::tpot},
  };
  for (const H& h : kHists) {
    out += std::string("# HELP ") + h.name + " " + h.help + "\n# TYPE " + h.name + " histogram\n";
    for (const auto& [k, v] : series) {
      if ((v.*(h.member)).count == 0) continue;
      render_histogram(out, h.name, series_labels(k), v.*(h.member));
    }
  }
  out += "# HELP sluice_tokens_total Tokens by direction (input = prompt, output = completion).\n";
  out += "# TYPE sluice_tokens_total counter\n";
  for (const auto& [k, v] : series) {
    std::string l = series_labels(k);
    out += "sluice_tokens_total{" + l + ",direction=\"input\"} " + std::to_string(v.tokens_in) + "\n";
    out += "sluice_tokens_total{" + l + ",direction=\"output\"} " + std::to_string(v.tokens_out) + "\n";
  }
  out += "# HELP sluice_upstream_errors_total Upstream failures by kind.\n";
  out += "# TYPE sluice_upstream_errors_total counter\n";
  for (const auto& [k, v] : errors) {
    auto [upstream, kind] = split_key(k);
    out += "sluice_upstream_errors_total{upstream=\"" + escape_label(upstream) + "\",kind=\"" + escape_label(kind) +
           "\"} " + std::to_string(v) + "\n";
  }
  out += "# HELP sluice_fallbacks_total Requests answered by a step of their route's fallback chain.\n";
  out += "# TYPE sluice_fallbacks_total counter\n";
  for (const auto& [k, v] : fallbacks) {
    auto [route, by] = split_key(k);
    out += "sluice_fallbacks_total{route=\"" + escape_label(route) + "\",served_by=\"" + escape_label(by) + "\"} " +
           std::to_string(v) + "\n";
  }
  out += "# HELP sluice_admission_refused_total Requests the gateway refused: a tenant's limit or a pool shedding load.\n";
  out += "# TYPE sluice_admission_refused_total counter\n";
  for (const auto& [k, v] : refused) {
    auto [tenant, reason] = split_key(k);
    out += "sluice_admission_refused_total{tenant=\"" + escape_label(tenant) + "\",reason=\"" + escape_label(reason) +
           "\"} " + std::to_string(v) + "\n";
  }
  // Money, from the upstreams' prices (tokens, cached tokens, or time on a self-hosted upstream).
  out += "# HELP sluice_cost_usd_total Spend in US dollars by route, release and tenant.\n"
         "# TYPE sluice_cost_usd_total counter\n";
  const std::map<std::string, CostTotal> cost = cost_totals();
  auto cost_labels = [](const std::string& k) {
    size_t a = k.find('\x1f'), b = k.find('\x1f', a + 1);
    return "route=\"" + escape_label(k.substr(0, a)) + "\",release=\"" + escape_label(k.substr(a + 1, b - a - 1)) +
           "\",tenant=\"" + escape_label(k.substr(b + 1)) + "\"";
  };
  for (const auto& [k, v] : cost) {
    out += "sluice_cost_usd_total{" + cost_labels(k) + "} ";
    fmt_double(out, v.usd);
    out += "\n";
  }
  out += "# HELP sluice_priced_requests_total Requests with a price (the denominator of cost per request).\n"
         "# TYPE sluice_priced_requests_total counter\n";
  for (const auto& [k, v] : cost) out += "sluice_priced_requests_total{" + cost_labels(k) + "} " + std::to_string(v.requests) + "\n";
  out += "# HELP sluice_inflight_requests Requests being served now.\n# TYPE sluice_inflight_requests gauge\n";
  out += "sluice_inflight_requests " + std::to_string(inflight) + "\n";
  out += "# HELP sluice_open_streams Streaming responses being relayed now.\n# TYPE sluice_open_streams gauge\n";
  out += "sluice_open_streams " + std::to_string(streams) + "\n";
  out += "# HELP sluice_ofrep_requests_total OFREP evaluation requests answered (single and bulk).\n"
         "# TYPE sluice_ofrep_requests_total counter\n";
  out += "sluice_ofrep_requests_total " + std::to_string(ofrep) + "\n";
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
           std::to_string(v) + "\n";
  };
  counter("sluice_request_log_written_total", "Request log lines written.", reqlog_written.load());
  counter("sluice_request_log_dropped_total", "Request log lines dropped because the queue was full.", reqlog_dropped.load());
  counter("sluice_config_reloads_total", "Configuration snapshots published after start.", config_reloads.load());
  counter("sluice_config_reload_failures_total", "Rejected configuration reloads.", config_reload_failures.load());
  counter("sluice_connections_accepted_total", "Client connections accepted.", connections_accepted.load());
  return out;
}

}  // namespace sluice::metrics
