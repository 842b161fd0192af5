#include "metrics/stats.h"

#include <gtest/gtest.h>

namespace paretopipe {
namespace {

TEST(StatsTest, PercentileInterpolatesLinearlyLikeNumpy) {
  const std::vector<double> sorted = {1, 2, 3, 4, 5};
  EXPECT_DOUBLE_EQ(Percentile(sorted, 0.5), 3.0);
  EXPECT_DOUBLE_EQ(Percentile(sorted, 0.95), 4.8);  // numpy.percentile([1..5], 95)
  EXPECT_DOUBLE_EQ(Percentile(sorted, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(Percentile(sorted, 1.0), 5.0);
}

TEST(StatsTest, SummaryOfUnsortedSamples) {
  const Summary s = Summarize({4, 1, 3, 2});
  EXPECT_EQ(s.n, 4);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 4);
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_DOUBLE_EQ(s.median, 2.5);
}

TEST(StatsTest, MedianConfidenceIntervalUsesBinomialOrderStatistics) {
  // n = 20: P(X <= 5) = 0.0207 <= 0.025 < P(X <= 6), so the 95% interval is [x(6), x(15)].
  std::vector<double> samples;
  for (int i = 1; i <= 20; ++i) samples.push_back(i * 10.0);
  const Summary s = Summarize(samples);
  EXPECT_DOUBLE_EQ(s.median_ci_low, 60.0);
  EXPECT_DOUBLE_EQ(s.median_ci_high, 150.0);
}

TEST(StatsTest, TooFewSamplesForACiGiveTheRange) {
  const Summary s = Summarize({3, 1, 2});
  EXPECT_DOUBLE_EQ(s.median_ci_low, 1);
  EXPECT_DOUBLE_EQ(s.median_ci_high, 3);
}

TEST(StatsTest, EmptyIsAllZero) { EXPECT_EQ(Summarize({}).n, 0); }

}  // namespace
}  // namespace paretopipe
