// Loading weights from state-dict files: round trips and every error a user
// can cause with a wrong file.
#include <gtest/gtest.h>

#include "model/segment.h"
#include "model/tensor_file.h"
#include "test_util.h"

namespace paretopipe {
namespace {

using testing::BuildOrDie;
using testing::RunOrDie;

class WeightsTest : public ::testing::Test {
 protected:
  // Writes the state dict of resnet18 (10 classes, seed 1) and returns its path.
  std::string WriteReference(const std::function<void(NamedTensors&)>& edit = nullptr) {
    auto model = BuildOrDie({"resnet18", 10, 1, ""});
    NamedTensors tensors;
    for (auto& [key, tensor] : model->StateTensors()) tensors.emplace_back(key, tensor.clone());
    if (edit) edit(tensors);
    const std::string path = dir_ + "/state_" + std::to_string(files_++) + ".pth";
    Status s = WriteStateDict(tensors, path);
    EXPECT_TRUE(s.ok()) << s.message();
    return path;
  }

  std::string BuildError(const ModelSpec& spec) {
    Result<std::unique_ptr<Segment>> segment = Segment::Build(spec, {0, -1});
    EXPECT_FALSE(segment.ok());
    return segment.ok() ? "" : segment.status().message();
  }

  testing::ScopedTempDir temp_;
  std::string dir_ = temp_.path();
  int files_ = 0;
  torch::Tensor input_ = torch::randn({2, 3, 32, 32}, torch::TensorOptions().dtype(torch::kFloat));
};

TEST_F(WeightsTest, RoundTripReproducesTheSavedModel) {
  const std::string path = WriteReference();
  auto original = BuildOrDie({"resnet18", 10, 1, ""});
  auto loaded = BuildOrDie({"resnet18", 10, /*seed=*/2, path});
  auto unloaded = BuildOrDie({"resnet18", 10, /*seed=*/2, ""});
  const torch::Tensor expected = RunOrDie(*original, input_);
  EXPECT_TRUE(torch::equal(RunOrDie(*loaded, input_), expected));
  EXPECT_FALSE(torch::equal(RunOrDie(*unloaded, input_), expected)) << "seeds 1 and 2 must differ";
}

TEST_F(WeightsTest, StageLoadsOnlyItsOwnBlocksFromAWholeModelFile) {
  const std::string path = WriteReference();
  auto original = BuildOrDie({"resnet18", 10, 1, ""}, {4, 9});
  auto stage = BuildOrDie({"resnet18", 10, 2, path}, {4, 9});
  const torch::Tensor x = torch::randn({2, 128, 4, 4});
  EXPECT_TRUE(torch::equal(RunOrDie(*stage, x), RunOrDie(*original, x)));
}

TEST_F(WeightsTest, DataParallelModulePrefixIsAccepted) {
  const std::string path = WriteReference([](NamedTensors& t) {
    for (auto& [key, tensor] : t) key = "module." + key;
  });
  auto original = BuildOrDie({"resnet18", 10, 1, ""});
  auto loaded = BuildOrDie({"resnet18", 10, 2, path});
  EXPECT_TRUE(torch::equal(RunOrDie(*loaded, input_), RunOrDie(*original, input_)));
}

TEST_F(WeightsTest, MissingKeyIsNamed) {
  const std::string path = WriteReference([](NamedTensors& t) {
    t.erase(std::remove_if(t.begin(), t.end(), [](const auto& kv) { return kv.first == "layer3.1.bn2.running_var"; }),
            t.end());
  });
  const std::string error = BuildError({"resnet18", 10, 0, path});
  EXPECT_NE(error.find("missing"), std::string::npos) << error;
  EXPECT_NE(error.find("layer3.1.bn2.running_var"), std::string::npos) << error;
}

TEST_F(WeightsTest, UnexpectedKeyIsNamed) {
  const std::string path =
      WriteReference([](NamedTensors& t) { t.emplace_back("head.extra.weight", torch::zeros({3})); });
  const std::string error = BuildError({"resnet18", 10, 0, path});
  EXPECT_NE(error.find("unexpected"), std::string::npos) << error;
  EXPECT_NE(error.find("head.extra.weight"), std::string::npos) << error;
}

TEST_F(WeightsTest, ShapeMismatchNamesKeyShapesAndHintsAtNumClasses) {
  const std::string path = WriteReference();  // 10 classes.
  const std::string error = BuildError({"resnet18", 1000, 0, path});
  EXPECT_NE(error.find("fc.weight"), std::string::npos) << error;
  EXPECT_NE(error.find("[10, 512]"), std::string::npos) << error;
  EXPECT_NE(error.find("[1000, 512]"), std::string::npos) << error;
  EXPECT_NE(error.find("--num-classes"), std::string::npos) << error;
}

TEST_F(WeightsTest, MissingFileIsNotFound) {
  Result<std::unique_ptr<Segment>> segment =
      Segment::Build({"resnet18", 10, 0, dir_ + "/does_not_exist.pth"}, {0, -1});
  ASSERT_FALSE(segment.ok());
  EXPECT_EQ(segment.status().code(), Status::Code::kNotFound);
  EXPECT_NE(segment.status().message().find("does_not_exist.pth"), std::string::npos);
}

TEST_F(WeightsTest, WrongModelsFileIsRejected) {
  const std::string path = WriteReference();  // resnet18 keys.
  const std::string error = BuildError({"mobilenet_v2", 10, 0, path});
  EXPECT_NE(error.find("unexpected"), std::string::npos) << error;
}

}  // namespace
}  // namespace paretopipe
