// MobileNetV2 (Sandler et al., 2018) as torchvision.models.mobilenet_v2 builds
// it (width 1.0). Blocks: the 19 children of `features`; pooling and the
// classifier ride with the last.
#include <cmath>

#include "model/layers.h"
#include "model/model.h"

namespace paretopipe {
namespace {

using layers::BatchNorm;
using layers::Conv;
using layers::ConvBnRelu6;

// torchvision.models.mobilenetv2.InvertedResidual.
class InvertedResidualImpl : public torch::nn::Module {
 public:
  InvertedResidualImpl(int64_t in, int64_t out, int64_t stride, int64_t expand_ratio)
      : use_residual_(stride == 1 && in == out) {
    const int64_t hidden = static_cast<int64_t>(std::llround(in * static_cast<double>(expand_ratio)));
    layers::Chain conv;
    if (expand_ratio != 1) conv->push_back(ConvBnRelu6(in, hidden, 1));
    conv->push_back(ConvBnRelu6(hidden, hidden, 3, stride, /*groups=*/hidden));
    conv->push_back(Conv(hidden, out, 1));
    conv->push_back(BatchNorm(out));
    conv_ = register_module("conv", conv);
  }

  torch::Tensor forward(torch::Tensor x) {
    return use_residual_ ? x + conv_->forward(x) : conv_->forward(x);
  }

 private:
  bool use_residual_;
  layers::Chain conv_;
};
TORCH_MODULE(InvertedResidual);

}  // namespace

ModelDef DefineMobileNetV2(int64_t num_classes) {
  ModelDef def;
  def.entry = {"mobilenet_v2",
               "MobileNetV2 (torchvision); blocks: features.0..18, pool + classifier with the last",
               3, 224, 32, 0};
  def.init = InitScheme::kMobileNetV2;

  // (expand ratio t, output channels c, repeats n, first stride s), from the paper's Table 2.
  const int64_t settings[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  std::vector<Child> features;
  auto add = [&](std::function<torch::nn::AnyModule()> make) {
    features.push_back({"features." + std::to_string(features.size()), std::move(make)});
  };
  add([] { return torch::nn::AnyModule(ConvBnRelu6(3, 32, 3, 2)); });
  int64_t in = 32;
  for (const auto& s : settings) {
    for (int64_t i = 0; i < s[2]; ++i) {
      const int64_t out = s[1], stride = i == 0 ? s[3] : 1, t = s[0];
      add([=] { return torch::nn::AnyModule(InvertedResidual(in, out, stride, t)); });
      in = out;
    }
  }
  add([] { return torch::nn::AnyModule(ConvBnRelu6(320, 1280, 1)); });

  def.blocks = BlocksOfChildren(
      features, {" +pool+classifier", {"classifier"}, [num_classes](BlockImpl& b) {
                   b.Append("", torch::nn::AnyModule(torch::nn::Functional(layers::PoolFlatten)));
                   b.Append("classifier", torch::nn::AnyModule(layers::Chain(
                                              torch::nn::Dropout(0.2),
                                              torch::nn::Linear(1280, num_classes))));
                 }});
  return def;
}

}  // namespace paretopipe
