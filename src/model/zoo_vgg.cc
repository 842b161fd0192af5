// VGG-16 (configuration D, no batch norm; Simonyan & Zisserman, 2015) and
// AlexNet (Krizhevsky et al., 2012, torchvision's single-GPU variant), as
// torchvision builds them. Blocks: the children of `features`; avgpool and the
// classifier ride with the last.
#include "model/layers.h"
#include "model/model.h"

namespace paretopipe {
namespace {

using MakeModule = std::function<torch::nn::AnyModule()>;

MakeModule ConvLayer(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return [=] { return torch::nn::AnyModule(layers::Conv(in, out, kernel, stride, padding, 1, true)); };
}
MakeModule Relu() {
  return [] { return torch::nn::AnyModule(torch::nn::ReLU()); };
}
MakeModule MaxPool(int64_t kernel, int64_t stride) {
  return [=] {
    return torch::nn::AnyModule(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(kernel).stride(stride)));
  };
}

// Blocks from `features` children; the last also runs adaptive average
// pooling to `pool_side`, flatten and `classifier`.
ModelDef ChainOfFeatures(ZooEntry entry, InitScheme init, const std::vector<MakeModule>& features,
                         int64_t pool_side, std::function<layers::Chain()> classifier) {
  ModelDef def;
  def.entry = std::move(entry);
  def.init = init;
  std::vector<Child> children;
  for (const MakeModule& make : features) {
    children.push_back({"features." + std::to_string(children.size()), make});
  }
  def.blocks = BlocksOfChildren(children, {" +avgpool+classifier", {"classifier"}, [=](BlockImpl& b) {
                                             b.Append("", torch::nn::AnyModule(torch::nn::AdaptiveAvgPool2d(
                                                              torch::nn::AdaptiveAvgPool2dOptions(
                                                                  {pool_side, pool_side}))));
                                             b.Append("", torch::nn::AnyModule(torch::nn::Flatten()));
                                             b.Append("classifier", torch::nn::AnyModule(classifier()));
                                           }});
  return def;
}

}  // namespace

ModelDef DefineVgg16(int64_t num_classes) {
  std::vector<MakeModule> features;
  int64_t in = 3;
  // Configuration "D": channel counts, 0 for a 2x2 max-pool.
  for (int64_t v : {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0}) {
    if (v == 0) {
      features.push_back(MaxPool(2, 2));
    } else {
      features.push_back(ConvLayer(in, v, 3, 1, 1));
      features.push_back(Relu());
      in = v;
    }
  }
  auto classifier = [num_classes] {
    return layers::Chain(torch::nn::Linear(512 * 7 * 7, 4096), torch::nn::ReLU(),
                                 torch::nn::Dropout(0.5), torch::nn::Linear(4096, 4096),
                                 torch::nn::ReLU(), torch::nn::Dropout(0.5),
                                 torch::nn::Linear(4096, num_classes));
  };
  return ChainOfFeatures(
      {"vgg16", "VGG-16 (torchvision); blocks: features.0..30, avgpool + classifier with the last",
       3, 224, 32, 0},
      InitScheme::kVgg, features, 7, classifier);
}

ModelDef DefineAlexNet(int64_t num_classes) {
  std::vector<MakeModule> features = {
      ConvLayer(3, 64, 11, 4, 2),    Relu(), MaxPool(3, 2),
      ConvLayer(64, 192, 5, 1, 2),   Relu(), MaxPool(3, 2),
      ConvLayer(192, 384, 3, 1, 1),  Relu(),
      ConvLayer(384, 256, 3, 1, 1),  Relu(),
      ConvLayer(256, 256, 3, 1, 1),  Relu(), MaxPool(3, 2)};
  auto classifier = [num_classes] {
    return layers::Chain(torch::nn::Dropout(0.5), torch::nn::Linear(256 * 6 * 6, 4096),
                                 torch::nn::ReLU(), torch::nn::Dropout(0.5),
                                 torch::nn::Linear(4096, 4096), torch::nn::ReLU(),
                                 torch::nn::Linear(4096, num_classes));
  };
  return ChainOfFeatures(
      {"alexnet", "AlexNet (torchvision); blocks: features.0..12, avgpool + classifier with the last",
       3, 224, 63, 0},
      InitScheme::kPyTorchDefault, features, 6, classifier);
}

}  // namespace paretopipe
