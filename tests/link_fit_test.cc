// The link model fitted to round trips (analysis/link_model.h FitLinkModel):
// synthetic samples from known parameters give those parameters back.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "analysis/link_model.h"

namespace paretopipe {
namespace {

// Round trips of a link with `overhead_ms`, `rate` and `delay_ms`, each
// message acknowledged by an empty reply, with multiplicative noise.
void Sample(double overhead_ms, double rate_bits_per_s, double delay_ms, double noise,
            std::vector<int64_t>* bytes, std::vector<double>* rtt_ms) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> jitter(1 - noise, 1 + noise);
  for (int64_t size = 64; size <= (int64_t{16} << 20); size *= 4) {
    for (int i = 0; i < 5; ++i) {
      const double rtt = 2 * (overhead_ms + delay_ms) + size * 8 / rate_bits_per_s * 1000;
      bytes->push_back(size);
      rtt_ms->push_back(rtt * (noise > 0 ? jitter(rng) : 1));
    }
  }
}

TEST(LinkFitTest, ExactSamplesGiveTheParametersBack) {
  std::vector<int64_t> bytes;
  std::vector<double> rtt;
  Sample(0.2, 20e6, 20, 0, &bytes, &rtt);

  Result<LinkFit> fit = FitLinkModel(bytes, rtt, 0.2);

  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_NEAR(fit->model.rate_bits_per_s, 20e6, 20e6 * 1e-9);
  EXPECT_NEAR(fit->model.delay_ms, 20, 1e-9);
  EXPECT_DOUBLE_EQ(fit->model.overhead_ms, 0.2);
  EXPECT_NEAR(fit->rms_residual_ms, 0, 1e-9);
  EXPECT_EQ(fit->sizes, 10);
  EXPECT_EQ(fit->samples, 50);
}

TEST(LinkFitTest, NoisySamplesGiveTheParametersWithinTheNoise) {
  std::vector<int64_t> bytes;
  std::vector<double> rtt;
  Sample(0.5, 5e6, 100, 0.02, &bytes, &rtt);

  Result<LinkFit> fit = FitLinkModel(bytes, rtt, 0.5);

  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_NEAR(fit->model.rate_bits_per_s, 5e6, 5e6 * 0.05);
  EXPECT_NEAR(fit->model.delay_ms, 100, 100 * 0.05);
  EXPECT_LT(fit->max_relative_residual, 0.05);
}

TEST(LinkFitTest, NoCostPerByteIsAnUnlimitedRate) {
  Result<LinkFit> fit = FitLinkModel({64, 1024, 65536}, {1.0, 1.0, 1.0}, 0.1);

  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_EQ(fit->model.rate_bits_per_s, 0);
  EXPECT_NEAR(fit->model.delay_ms, 0.4, 1e-12);
}

TEST(LinkFitTest, TooFewSizesOrBadSamplesAreRefused) {
  EXPECT_FALSE(FitLinkModel({64, 64}, {1.0, 1.1}, 0).ok());
  EXPECT_FALSE(FitLinkModel({64, 1024}, {1.0}, 0).ok());
  EXPECT_FALSE(FitLinkModel({64, 1024}, {1.0, -2.0}, 0).ok());
  EXPECT_FALSE(FitLinkModel({64, 1024}, {1.0, 2.0}, -1).ok());
}

TEST(LinkFitTest, TheLinkFileReadsBackAsTheFittedModel) {
  std::vector<int64_t> bytes;
  std::vector<double> rtt;
  Sample(0.2, 20e6, 20, 0, &bytes, &rtt);
  Result<LinkFit> fit = FitLinkModel(bytes, rtt, 0.2);
  ASSERT_TRUE(fit.ok());

  Result<LinkModel> read = ParseLinkFile(LinkFileText(*fit, "a -> b over tcp"), "test");

  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(*read, fit->model);
}

}  // namespace
}  // namespace paretopipe
