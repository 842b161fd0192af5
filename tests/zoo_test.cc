#include <gtest/gtest.h>

#include "model/segment.h"
#include "model/zoo.h"
#include "test_util.h"

namespace paretopipe {
namespace {

using testing::BuildOrDie;

struct Expected {
  const char* name;
  int64_t blocks;      // Valid cuts are 1 .. blocks - 1, as in the Python ParetoPipe.
  int64_t parameters;  // sum(p.numel() for p in torchvision_model.parameters()), 1000 classes.
};

constexpr Expected kModels[] = {
    {"mobilenet_v2", 19, 3'504'872}, {"resnet18", 9, 11'689'512},   {"resnet50", 17, 25'557'032},
    {"vgg16", 31, 138'357'544},      {"alexnet", 13, 61'100'840},   {"inception_v3", 20, 23'834'568},
};

TEST(ZooTest, BlockCountsGiveThePythonParetoPipeCutIndices) {
  ASSERT_EQ(ZooModels().size(), std::size(kModels));
  for (const Expected& e : kModels) {
    Result<ZooEntry> entry = FindZooModel(e.name);
    ASSERT_TRUE(entry.ok()) << e.name;
    EXPECT_EQ(entry->num_blocks, e.blocks) << e.name;
  }
}

TEST(ZooTest, ParameterCountsEqualTorchvision) {
  for (const Expected& e : kModels) {
    auto model = BuildOrDie({e.name, 1000, 0, ""});
    ASSERT_NE(model, nullptr);
    EXPECT_EQ(model->ParameterCount(), e.parameters) << e.name;
  }
}

TEST(ZooTest, MobileNetV2WithTenClassesHasTorchvisionsParameterCount) {
  auto model = BuildOrDie({"mobilenet_v2", 10, 0, ""});
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->ParameterCount(), 2'236'682);
}

TEST(ZooTest, UnknownModelIsNotFoundAndListsTheKnownOnes) {
  Result<ZooEntry> entry = FindZooModel("resnet1000");
  ASSERT_FALSE(entry.ok());
  EXPECT_EQ(entry.status().code(), Status::Code::kNotFound);
  EXPECT_NE(entry.status().message().find("mobilenet_v2"), std::string::npos);
}

TEST(ZooTest, ValidateCutsRejectsOutOfRangeAndNonIncreasing) {
  const ZooEntry entry = FindZooModel("mobilenet_v2").value();
  EXPECT_TRUE(ValidateCuts(entry, {1}).ok());
  EXPECT_TRUE(ValidateCuts(entry, {3, 9, 18}).ok());
  EXPECT_FALSE(ValidateCuts(entry, {0}).ok());
  EXPECT_FALSE(ValidateCuts(entry, {19}).ok());
  EXPECT_FALSE(ValidateCuts(entry, {5, 5}).ok());
  EXPECT_FALSE(ValidateCuts(entry, {6, 2}).ok());
}

TEST(ZooTest, SameSeedGivesSameWeightsAndOtherSeedsDiffer) {
  auto a = BuildOrDie({"resnet18", 10, 7, ""}, {0, 2});
  auto b = BuildOrDie({"resnet18", 10, 7, ""}, {0, 2});
  auto c = BuildOrDie({"resnet18", 10, 8, ""}, {0, 2});
  const auto ta = a->StateTensors(), tb = b->StateTensors(), tc = c->StateTensors();
  ASSERT_EQ(ta.size(), tb.size());
  EXPECT_TRUE(torch::equal(ta[0].second, tb[0].second));
  EXPECT_FALSE(torch::equal(ta[0].second, tc[0].second));
}

TEST(ZooTest, CudaDeviceFailsClearlyOnACpuOnlyBuild) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this LibTorch has CUDA; the CPU-only error path does not apply";
  Result<std::unique_ptr<Segment>> segment = Segment::Build({"alexnet", 10, 0, ""}, {0, 3}, "cuda");
  ASSERT_FALSE(segment.ok());
  EXPECT_EQ(segment.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(segment.status().message().find("CUDA"), std::string::npos);
}

TEST(ZooTest, UnknownDeviceIsRejected) {
  Result<std::unique_ptr<Segment>> segment = Segment::Build({"alexnet", 10, 0, ""}, {0, 3}, "tpu");
  ASSERT_FALSE(segment.ok());
  EXPECT_NE(segment.status().message().find("tpu"), std::string::npos);
}

}  // namespace
}  // namespace paretopipe
