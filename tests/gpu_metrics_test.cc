// GPU utilization sampling: the sampler's averaging, and NVML's absence on a
// machine without the NVIDIA driver.
#include "metrics/gpu_metrics.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

namespace paretopipe {
namespace {

using std::chrono::milliseconds;

TEST(UtilizationSamplerTest, AveragesEverySampleOfTheIntervalAndOneAtTheEnd) {
  std::atomic<int> reads{0};
  // Reads 10, 20, 30, ...: the mean of the first n is 5 (n + 1).
  UtilizationSampler sampler([&]() -> std::optional<double> { return 10.0 * ++reads; },
                             milliseconds(5));

  sampler.Start();
  std::this_thread::sleep_for(milliseconds(60));
  const double mean = sampler.Stop();

  const int n = reads.load();
  ASSERT_GE(n, 2) << "no sample taken while sampling";
  EXPECT_DOUBLE_EQ(mean, 5.0 * (n + 1));
}

TEST(UtilizationSamplerTest, IntervalShorterThanAPeriodStillHasItsFinalSample) {
  UtilizationSampler sampler([]() -> std::optional<double> { return 42.0; }, milliseconds(60000));

  sampler.Start();
  const double mean = sampler.Stop();

  EXPECT_DOUBLE_EQ(mean, 42.0);
}

TEST(UtilizationSamplerTest, RestartForgetsTheLastInterval) {
  double value = 90;
  UtilizationSampler sampler([&]() -> std::optional<double> { return value; }, milliseconds(60000));
  sampler.Start();
  sampler.Stop();
  value = 10;

  sampler.Start();
  const double mean = sampler.Stop();

  EXPECT_DOUBLE_EQ(mean, 10.0);
}

TEST(UtilizationSamplerTest, EveryReadFailingIsUnknown) {
  UtilizationSampler sampler([]() -> std::optional<double> { return std::nullopt; },
                             milliseconds(1));

  sampler.Start();
  std::this_thread::sleep_for(milliseconds(10));
  const double mean = sampler.Stop();

  EXPECT_EQ(mean, -1);
}

TEST(NvmlTest, WithoutTheDriversLibraryUtilizationIsUnavailableSayingWhy) {
  if (void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_NOLOAD | RTLD_LOCAL);
      lib != nullptr || (lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL)) != nullptr) {
    dlclose(lib);
    GTEST_SKIP() << "this machine has NVML (the NVIDIA driver)";
  }

  Result<UtilizationReader> reader = NvmlUtilizationReader("00000000:00:00.0");

  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(reader.status().message().find("libnvidia-ml.so.1"), std::string::npos)
      << reader.status().message();
}

}  // namespace
}  // namespace paretopipe
