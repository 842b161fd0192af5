// Small torch::nn building blocks shared by the zoo definitions (zoo_*.cc).
// Each mirrors a torchvision module and registers its children under
// torchvision's names, so state-dict keys match.
#pragma once

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

namespace paretopipe::layers {

// nn.Sequential with a concrete forward(Tensor), so that it can be stored in
// an AnyModule and nested in another Chain (torch::nn::Sequential cannot:
// its forward is a template). Children are named "0", "1", ... as in PyTorch.
class ChainImpl : public torch::nn::SequentialImpl {
 public:
  using SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return SequentialImpl::forward(x); }
};
TORCH_MODULE(Chain);

inline torch::nn::Conv2d Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1,
                              int64_t padding = 0, int64_t groups = 1, bool bias = false) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                               .stride(stride)
                               .padding(padding)
                               .groups(groups)
                               .bias(bias));
}

inline torch::nn::BatchNorm2d BatchNorm(int64_t channels, double eps = 1e-5) {
  return torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels).eps(eps));
}

// torchvision.ops.Conv2dNormActivation with BatchNorm2d and ReLU6, as MobileNetV2
// uses it: Sequential(conv, bn, relu6), keys "0.weight", "1.weight", ...
inline Chain ConvBnRelu6(int64_t in, int64_t out, int64_t kernel,
                                         int64_t stride = 1, int64_t groups = 1) {
  return Chain(Conv(in, out, kernel, stride, (kernel - 1) / 2, groups),
                               BatchNorm(out), torch::nn::ReLU6());
}

// Global average pooling to 1x1, then flatten: what MobileNetV2 and ResNet
// run between their features and their classifier.
inline torch::Tensor PoolFlatten(torch::Tensor x) {
  return torch::flatten(torch::adaptive_avg_pool2d(x, {1, 1}), 1);
}

}  // namespace paretopipe::layers
