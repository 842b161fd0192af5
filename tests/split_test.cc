// Splitting a model at any cut and running the two stages in sequence gives
// the whole model's output (max abs diff <= 1e-5 x max |output|).
#include <gtest/gtest.h>

#include "model/device.h"
#include "model/segment.h"
#include "test_util.h"

namespace paretopipe {
namespace {

using testing::BuildOrDie;
using testing::RunOrDie;

struct SplitCase {
  const char* model;
  int64_t input_side_px;  // Small, to keep the suite fast; the architecture allows it.
};

void PrintTo(const SplitCase& c, std::ostream* os) { *os << c.model << " at " << c.input_side_px; }

class SplitTest : public ::testing::TestWithParam<SplitCase> {
 protected:
  void SetUp() override { ASSERT_TRUE(ConfigureCompute(2).ok()); }
};

// max |a - b| <= 1e-5 * max |reference|.
void ExpectClose(const torch::Tensor& got, const torch::Tensor& reference, const std::string& what) {
  ASSERT_EQ(got.sizes(), reference.sizes()) << what;
  const double scale = reference.abs().max().item<double>();
  const double diff = (got - reference).abs().max().item<double>();
  EXPECT_LE(diff, 1e-5 * scale) << what << ": max abs diff " << diff << ", max |output| " << scale;
  EXPECT_GT(scale, 0.0) << what << ": an all-zero output would make the comparison vacuous";
}

TEST_P(SplitTest, SplitAtEveryCutEqualsWholeModel) {
  const SplitCase c = GetParam();
  const ModelSpec spec{c.model, 10, 3, ""};
  auto whole = BuildOrDie(spec);
  ASSERT_NE(whole, nullptr);
  const int64_t n = whole->def().entry.num_blocks;
  torch::manual_seed(11);
  for (int64_t batch : {1, 8}) {
    const torch::Tensor x = torch::randn({batch, 3, c.input_side_px, c.input_side_px});
    const torch::Tensor expected = RunOrDie(*whole, x);
    for (int64_t cut = 1; cut < n; ++cut) {
      Result<torch::Tensor> activation = whole->RunBlocks(0, cut, x);
      ASSERT_TRUE(activation.ok()) << activation.status().message();
      Result<torch::Tensor> y = whole->RunBlocks(cut, n, *activation);
      ASSERT_TRUE(y.ok()) << y.status().message();
      ExpectClose(*y, expected,
                  std::string(c.model) + " cut " + std::to_string(cut) + " batch " + std::to_string(batch));
    }
  }
}

// A stage builds only its own blocks; each block built alone must hold
// exactly the weights it has inside the whole model (per-block seeding).
TEST_P(SplitTest, EveryBlockBuiltAloneHasTheWholeModelsWeights) {
  const ModelSpec spec{GetParam().model, 10, 3, ""};
  auto whole = BuildOrDie(spec);
  ASSERT_NE(whole, nullptr);
  const auto expected = whole->StateTensors();
  size_t matched = 0;
  for (int64_t k = 0; k < whole->def().entry.num_blocks; ++k) {
    auto block = BuildOrDie(spec, {k, k + 1});
    ASSERT_NE(block, nullptr);
    for (const auto& [key, tensor] : block->StateTensors()) {
      ASSERT_LT(matched, expected.size());
      EXPECT_EQ(key, expected[matched].first) << "block " << k;
      EXPECT_TRUE(torch::equal(tensor, expected[matched].second)) << key;
      ++matched;
    }
  }
  EXPECT_EQ(matched, expected.size());
}

// Two stages built separately, as two devices would build them, at the middle cut.
TEST_P(SplitTest, SeparatelyBuiltStagesEqualWholeModel) {
  const SplitCase c = GetParam();
  const ModelSpec spec{c.model, 10, 3, ""};
  auto whole = BuildOrDie(spec);
  const int64_t n = whole->def().entry.num_blocks, cut = n / 2;
  auto stage1 = BuildOrDie(spec, {0, cut});
  auto stage2 = BuildOrDie(spec, {cut, n});
  ASSERT_TRUE(stage1 && stage2);
  torch::manual_seed(12);
  const torch::Tensor x = torch::randn({8, 3, c.input_side_px, c.input_side_px});
  ExpectClose(RunOrDie(*stage2, RunOrDie(*stage1, x)), RunOrDie(*whole, x),
              std::string(c.model) + " cut " + std::to_string(cut));
}

INSTANTIATE_TEST_SUITE_P(Zoo, SplitTest,
                         ::testing::Values(SplitCase{"mobilenet_v2", 32}, SplitCase{"resnet18", 32},
                                           SplitCase{"resnet50", 32}, SplitCase{"vgg16", 32},
                                           SplitCase{"alexnet", 63}, SplitCase{"inception_v3", 75}),
                         [](const auto& info) { return std::string(info.param.model); });

TEST(SegmentTest, ThreeStagePipelineEqualsWholeModel) {
  const ModelSpec spec{"resnet18", 10, 5, ""};
  auto whole = BuildOrDie(spec);
  auto a = BuildOrDie(spec, {0, 3});
  auto b = BuildOrDie(spec, {3, 6});
  auto c = BuildOrDie(spec, {6, 9});
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({2, 3, 32, 32});
  ExpectClose(RunOrDie(*c, RunOrDie(*b, RunOrDie(*a, x))), RunOrDie(*whole, x), "resnet18 cuts 3,6");
}

TEST(SegmentTest, StageMaterializesOnlyItsOwnBlocks) {
  // VGG-16 blocks 0..4: conv(3->64), relu, conv(64->64), relu, maxpool.
  auto stage = BuildOrDie({"vgg16", 1000, 0, ""}, {0, 5});
  ASSERT_NE(stage, nullptr);
  EXPECT_EQ(stage->ParameterCount(), (3 * 64 * 9 + 64) + (64 * 64 * 9 + 64));
  int64_t bytes = 0;
  for (const auto& [key, tensor] : stage->StateTensors()) {
    bytes += tensor.numel() * tensor.element_size();
    EXPECT_EQ(key.rfind("features.", 0), 0u) << key << " belongs to another stage";
  }
  EXPECT_LT(bytes, 1 << 20);
}

TEST(SegmentTest, WrongInputShapeIsAClearError) {
  auto stage = BuildOrDie({"resnet18", 10, 0, ""}, {2, 9});
  // Block 2 expects 64 channels; give it 5.
  Result<torch::Tensor> y = stage->Run(torch::zeros({1, 5, 8, 8}));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("[1, 5, 8, 8]"), std::string::npos) << y.status().message();
  EXPECT_EQ(y.status().message().find('\n'), std::string::npos) << "error must be one line";

  auto first = BuildOrDie({"resnet18", 10, 0, ""}, {0, 2});
  EXPECT_FALSE(first->Run(torch::zeros({1, 3, 8, 8})).ok()) << "smaller than the minimum input";
  EXPECT_FALSE(first->Run(torch::zeros({3, 224, 224})).ok()) << "missing batch dimension";
  EXPECT_FALSE(first->Run(torch::zeros({1, 3, 64, 64}, torch::kDouble)).ok()) << "float64 input";
}

TEST(SegmentTest, OutOfRangeBlockRangeIsRejected) {
  EXPECT_FALSE(Segment::Build({"alexnet", 10, 0, ""}, {0, 14}).ok());
  EXPECT_FALSE(Segment::Build({"alexnet", 10, 0, ""}, {5, 5}).ok());
  EXPECT_FALSE(Segment::Build({"alexnet", 10, 0, ""}, {-1, 3}).ok());
}

}  // namespace
}  // namespace paretopipe
