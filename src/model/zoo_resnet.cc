// ResNet-18 and ResNet-50 (He et al., 2016) as torchvision.models.resnet builds
// them. Blocks follow the Python ParetoPipe's split points:
//   resnet18: [stem + layer1.0], 7 more BasicBlocks, head (avgpool, flatten, fc);
//   resnet50: stem, 16 Bottlenecks, the head riding with the last.
#include "model/layers.h"
#include "model/model.h"

namespace paretopipe {
namespace {

using layers::BatchNorm;
using layers::Conv;

layers::Chain Downsample(int64_t in, int64_t out, int64_t stride) {
  return layers::Chain(Conv(in, out, 1, stride), BatchNorm(out));
}

// torchvision.models.resnet.BasicBlock (expansion 1).
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t planes, int64_t stride) {
    conv1_ = register_module("conv1", Conv(in, planes, 3, stride, 1));
    bn1_ = register_module("bn1", BatchNorm(planes));
    conv2_ = register_module("conv2", Conv(planes, planes, 3, 1, 1));
    bn2_ = register_module("bn2", BatchNorm(planes));
    if (stride != 1 || in != planes) {
      downsample_ = register_module("downsample", Downsample(in, planes, stride));
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor out = torch::relu(bn1_->forward(conv1_->forward(x)));
    out = bn2_->forward(conv2_->forward(out));
    out += downsample_ ? downsample_->forward(x) : x;
    return torch::relu(out);
  }

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  layers::Chain downsample_{nullptr};
};
TORCH_MODULE(BasicBlock);

// torchvision.models.resnet.Bottleneck (expansion 4, stride on the 3x3 conv: "ResNet V1.5").
class BottleneckImpl : public torch::nn::Module {
 public:
  BottleneckImpl(int64_t in, int64_t planes, int64_t stride) {
    const int64_t out = planes * 4;
    conv1_ = register_module("conv1", Conv(in, planes, 1));
    bn1_ = register_module("bn1", BatchNorm(planes));
    conv2_ = register_module("conv2", Conv(planes, planes, 3, stride, 1));
    bn2_ = register_module("bn2", BatchNorm(planes));
    conv3_ = register_module("conv3", Conv(planes, out, 1));
    bn3_ = register_module("bn3", BatchNorm(out));
    if (stride != 1 || in != out) {
      downsample_ = register_module("downsample", Downsample(in, out, stride));
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor out = torch::relu(bn1_->forward(conv1_->forward(x)));
    out = torch::relu(bn2_->forward(conv2_->forward(out)));
    out = bn3_->forward(conv3_->forward(out));
    out += downsample_ ? downsample_->forward(x) : x;
    return torch::relu(out);
  }

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  layers::Chain downsample_{nullptr};
};
TORCH_MODULE(Bottleneck);

void AppendStem(BlockImpl& b) {
  b.Append("conv1", torch::nn::AnyModule(Conv(3, 64, 7, 2, 3)));
  b.Append("bn1", torch::nn::AnyModule(BatchNorm(64)));
  b.Append("", torch::nn::AnyModule(torch::nn::ReLU()));
  b.Append("", torch::nn::AnyModule(torch::nn::MaxPool2d(
                   torch::nn::MaxPool2dOptions(3).stride(2).padding(1))));
}

void AppendHead(BlockImpl& b, int64_t features, int64_t num_classes) {
  b.Append("", torch::nn::AnyModule(torch::nn::Functional(layers::PoolFlatten)));
  b.Append("fc", torch::nn::AnyModule(torch::nn::Linear(features, num_classes)));
}

// The residual units "layerL.i" of a ResNet.
std::vector<Child> Units(const int64_t (&repeats)[4], bool bottleneck) {
  std::vector<Child> units;
  const int64_t expansion = bottleneck ? 4 : 1;
  int64_t in = 64;
  for (int64_t layer = 0; layer < 4; ++layer) {
    const int64_t planes = int64_t{64} << layer;
    for (int64_t i = 0; i < repeats[layer]; ++i) {
      const int64_t stride = (i == 0 && layer > 0) ? 2 : 1;
      Child unit{"layer" + std::to_string(layer + 1) + "." + std::to_string(i), nullptr};
      unit.make = [=] {
        return bottleneck ? torch::nn::AnyModule(Bottleneck(in, planes, stride))
                          : torch::nn::AnyModule(BasicBlock(in, planes, stride));
      };
      units.push_back(std::move(unit));
      in = planes * expansion;
    }
  }
  return units;
}

}  // namespace

ModelDef DefineResNet18(int64_t num_classes) {
  ModelDef def;
  def.entry = {"resnet18",
               "ResNet-18 (torchvision); blocks: stem+layer1.0, 7 BasicBlocks, head (avgpool, fc)",
               3, 224, 32, 0};
  def.init = InitScheme::kResNet;
  const std::vector<Child> units = Units({2, 2, 2, 2}, /*bottleneck=*/false);
  for (size_t k = 0; k < units.size(); ++k) {
    const Child unit = units[k];
    BlockDef block;
    block.name = k == 0 ? "stem+" + unit.prefix : unit.prefix;
    block.state_prefixes = {unit.prefix};
    if (k == 0) block.state_prefixes.insert(block.state_prefixes.begin(), {"conv1", "bn1"});
    block.build = [=] {
      Block b;
      if (k == 0) AppendStem(*b);
      b->Append(unit.prefix, unit.make());
      return b;
    };
    def.blocks.push_back(std::move(block));
  }
  def.blocks.push_back(BlockDef{"head (avgpool, fc)", {"fc"}, [=] {
                                  Block b;
                                  AppendHead(*b, 512, num_classes);
                                  return b;
                                }});
  return def;
}

ModelDef DefineResNet50(int64_t num_classes) {
  ModelDef def;
  def.entry = {"resnet50",
               "ResNet-50 (torchvision); blocks: stem, 16 Bottlenecks, head with the last",
               3, 224, 32, 0};
  def.init = InitScheme::kResNet;
  def.blocks.push_back(BlockDef{"stem", {"conv1", "bn1"}, [] {
                                  Block b;
                                  AppendStem(*b);
                                  return b;
                                }});
  std::vector<BlockDef> units =
      BlocksOfChildren(Units({3, 4, 6, 3}, /*bottleneck=*/true),
                       {" +avgpool+fc", {"fc"}, [num_classes](BlockImpl& b) { AppendHead(b, 2048, num_classes); }});
  def.blocks.insert(def.blocks.end(), units.begin(), units.end());
  return def;
}

}  // namespace paretopipe
