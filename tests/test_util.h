// Helpers shared by the tests.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "model/segment.h"

namespace paretopipe::testing {

// Builds a segment or fails the test.
inline std::unique_ptr<Segment> BuildOrDie(const ModelSpec& spec, BlockRange range = {0, -1}) {
  Result<std::unique_ptr<Segment>> segment = Segment::Build(spec, range);
  EXPECT_TRUE(segment.ok()) << segment.status().message();
  return segment.ok() ? std::move(segment).value() : nullptr;
}

inline torch::Tensor RunOrDie(Segment& segment, const torch::Tensor& x) {
  Result<torch::Tensor> y = segment.Run(x);
  EXPECT_TRUE(y.ok()) << y.status().message();
  return y.ok() ? std::move(y).value() : torch::Tensor();
}

// A fresh temporary directory, removed with everything in it when this object dies.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string pattern = ::testing::TempDir() + "pp_test_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~ScopedTempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace paretopipe::testing
