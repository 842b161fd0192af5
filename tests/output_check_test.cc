// sweep --verify's comparison: exact outputs pass, any difference shows,
// NaN never passes for a number, and a missing output is an error.
#include "sweep/output_check.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "model/compute.h"
#include "runtime/input_set.h"

namespace paretopipe {
namespace {

// The "whole model": doubles its input.
class Doubler : public StageCompute {
 public:
  Result<torch::Tensor> Run(const torch::Tensor& input) override { return input * 2; }
};

// What a sink returning `whole`'s output of every synthetic batch would keep,
// each value passed through `edit`.
std::vector<KeptOutput> Outputs(int batches, const std::vector<int64_t>& shape,
                                const std::function<void(std::vector<float>*)>& edit = {}) {
  std::vector<KeptOutput> out;
  for (int b = 0; b < batches; ++b) {
    const torch::Tensor t = (SyntheticBatch(7, b, batches, shape) * 2).contiguous();
    KeptOutput o{b, shape, {t.data_ptr<float>(), t.data_ptr<float>() + t.numel()}};
    if (edit) edit(&o.values);
    out.push_back(std::move(o));
  }
  return out;
}

TEST(OutputCheckTest, ExactOutputsAreIdenticalAndAnyDifferenceShows) {
  OutputCheck check(std::make_shared<Doubler>(), nullptr, 7);
  const std::vector<int64_t> shape = {2, 3};

  Result<OutputComparison> same = check.Compare(Outputs(6, shape), 6, shape);
  Result<OutputComparison> off =
      check.Compare(Outputs(6, shape, [](std::vector<float>* v) { (*v)[4] += 0.25f; }), 6, shape);

  ASSERT_TRUE(same.ok()) << same.status().message();
  EXPECT_TRUE(same->identical());
  EXPECT_EQ(same->batches, 6);
  ASSERT_TRUE(off.ok());
  EXPECT_NEAR(off->max_abs_diff, 0.25, 1e-6);
}

TEST(OutputCheckTest, NanForANumberIsAnInfiniteDifference) {
  OutputCheck check(std::make_shared<Doubler>(), nullptr, 7);
  const std::vector<int64_t> shape = {2, 3};

  Result<OutputComparison> nan = check.Compare(
      Outputs(4, shape,
              [](std::vector<float>* v) { (*v)[0] = std::numeric_limits<float>::quiet_NaN(); }),
      4, shape);

  ASSERT_TRUE(nan.ok());
  EXPECT_TRUE(std::isinf(nan->max_abs_diff));
  EXPECT_FALSE(nan->identical());
}

TEST(OutputCheckTest, MissingOutputsAreAnErrorNotAPass) {
  OutputCheck check(std::make_shared<Doubler>(), nullptr, 7);
  Result<OutputComparison> none = check.Compare({}, 4, {2, 3});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("0 outputs of 4 batches"), std::string::npos);
}

}  // namespace
}  // namespace paretopipe
