#include "metrics/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace paretopipe {

double Percentile(const std::vector<double>& sorted, double q) {
  const double rank = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (rank - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

namespace {

// P(X <= k) for X ~ Binomial(n, 1/2).
double BinomialHalfCdf(int64_t n, int64_t k) {
  double total = 0;
  for (int64_t i = 0; i <= k; ++i) {
    total += std::exp(std::lgamma(n + 1.0) - std::lgamma(i + 1.0) - std::lgamma(n - i + 1.0) -
                      n * std::log(2.0));
  }
  return total;
}

}  // namespace

Summary Summarize(std::vector<double> samples) {
  Summary s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  const int64_t n = static_cast<int64_t>(samples.size());
  s.n = n;
  s.min = samples.front();
  s.max = samples.back();
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(n);
  s.median = Percentile(samples, 0.5);
  s.p95 = Percentile(samples, 0.95);
  // Largest j (1-based) with P(X <= j - 1) <= 0.025; the interval is [x(j), x(n + 1 - j)].
  int64_t j = 1;
  while (j + 1 <= n / 2 && BinomialHalfCdf(n, j) <= 0.025) ++j;
  if (BinomialHalfCdf(n, j - 1) > 0.025) j = 1;
  s.median_ci_low = samples[j - 1];
  s.median_ci_high = samples[n - j];
  return s;
}

}  // namespace paretopipe
