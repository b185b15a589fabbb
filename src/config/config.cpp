#include "config/config.hpp"

#include <algorithm>

namespace sluice::config {

double Upstream::cost(int64_t tokens_in, int64_t cached_in, int64_t tokens_out, double seconds) const {
  if (price_input_per_1m <= 0 && price_output_per_1m <= 0 && price_per_hour <= 0) return -1;
  const double in = static_cast<double>(std::max<int64_t>(tokens_in, 0));
  // Cached prompt tokens are part of the prompt tokens (OpenAI's prompt_tokens_details).
  const double cached = std::min(in, static_cast<double>(std::max<int64_t>(cached_in, 0)));
  const double cached_price = price_cached_input_per_1m >= 0 ? price_cached_input_per_1m : price_input_per_1m;
  double usd = ((in - cached) * price_input_per_1m + cached * cached_price +
                static_cast<double>(std::max<int64_t>(tokens_out, 0)) * price_output_per_1m) /
               1e6;
  if (price_per_hour > 0) usd += price_per_hour / 3600.0 * std::max(seconds, 0.0) / price_concurrency;
  return usd;
}

}  // namespace sluice::config
