// Summary statistics of repeated measurements.
//
// Owns: arithmetic on samples. Must not touch: models, clocks, I/O.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

namespace paretopipe {

struct Summary {
  int64_t n = 0;
  double mean = 0, min = 0, max = 0;
  double median = 0;
  double p95 = 0;  // 95th percentile, linear interpolation between order statistics.
  // Distribution-free 95% confidence interval of the median: order statistics
  // x(j), x(k) with j, k from the Binomial(n, 1/2) distribution (Conover,
  // Practical Nonparametric Statistics, 3rd ed., sec. 3.2). Its coverage is
  // at least 95% for n >= 6; below that it is [min, max] and covers less.
  double median_ci_low = 0, median_ci_high = 0;
};

// Percentile `q` in [0, 1] of `sorted` (ascending), linear interpolation
// between closest ranks (numpy's default, "type 7"). REQUIRES: !sorted.empty().
double Percentile(const std::vector<double>& sorted, double q);

// Summarizes `samples`; all fields zero when empty.
Summary Summarize(std::vector<double> samples);

}  // namespace paretopipe
