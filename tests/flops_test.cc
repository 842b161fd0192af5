#include <ATen/record_function.h>
#include <gtest/gtest.h>

#include <thread>

#include "model/cuts.h"
#include "model/flop_counter.h"
#include "model/segment.h"

namespace paretopipe {
namespace {

// torchvision's documented "GFLOPS" per model (multiply-accumulates of
// convolutions and linear layers, at the nominal input), rounded there to 2-3 digits.
struct Published {
  const char* name;
  double gmacs;
};

TEST(FlopsTest, ModelMacsMatchTorchvisionsPublishedFigures) {
  for (const Published p : {Published{"mobilenet_v2", 0.30}, Published{"resnet18", 1.81},
                            Published{"resnet50", 4.09}, Published{"vgg16", 15.47},
                            Published{"alexnet", 0.71}, Published{"inception_v3", 5.71}}) {
    Result<ModelAnalysis> a = AnalyzeModel({p.name, 1000, 0, ""});
    ASSERT_TRUE(a.ok()) << a.status().message();
    EXPECT_NEAR(a->total_macs / 1e9, p.gmacs, 0.025 * p.gmacs) << p.name;
  }
}

TEST(FlopsTest, CountsConvolutionAndLinearExactly) {
  c10::InferenceMode inference;
  MacCounter counter;
  // 2x3x8x8 -> conv 3->4, 3x3, pad 1: 2*4*8*8 outputs x 3*9 MACs each.
  torch::Tensor y = torch::conv2d(torch::ones({2, 3, 8, 8}), torch::ones({4, 3, 3, 3}), {}, 1, 1);
  EXPECT_EQ(counter.macs(), 2 * 4 * 8 * 8 * 3 * 9);
  counter.Reset();
  // Depthwise: groups = channels, weight [4, 1, 3, 3].
  y = torch::conv2d(torch::ones({1, 4, 8, 8}), torch::ones({4, 1, 3, 3}), {}, 1, 1, 1, 4);
  EXPECT_EQ(counter.macs(), 4 * 8 * 8 * 9);
  counter.Reset();
  // linear: [5, 16] x [16 -> 7]; aten::linear calls addmm inside, counted once.
  y = torch::linear(torch::ones({5, 16}), torch::ones({7, 16}), torch::ones({7}));
  EXPECT_EQ(counter.macs(), 5 * 7 * 16);
  counter.Reset();
  y = torch::relu(torch::ones({100}));
  EXPECT_EQ(counter.macs(), 0);
}

TEST(FlopsTest, CounterStopsObservingWhenDestroyed) {
  ASSERT_FALSE(at::hasThreadLocalCallbacks()) << "another observer is installed; the test cannot tell";
  {
    MacCounter counter;
    EXPECT_TRUE(at::hasThreadLocalCallbacks());
    torch::mm(torch::ones({2, 2}), torch::ones({2, 2}));
    EXPECT_EQ(counter.macs(), 8);
  }
  EXPECT_FALSE(at::hasThreadLocalCallbacks());
}

TEST(FlopsTest, OperatorsOnOtherThreadsAreNotCounted) {
  MacCounter counter;
  std::thread other([] { torch::mm(torch::ones({4, 4}), torch::ones({4, 4})); });
  other.join();
  EXPECT_EQ(counter.macs(), 0);
}

}  // namespace
}  // namespace paretopipe
