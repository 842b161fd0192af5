// Deterministic, per-block parameter initialization following torchvision's
// per-architecture init, drawing only from an explicit generator so blocks can
// be built independently and in any order.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "model/model.h"

namespace paretopipe {
namespace {

// fan_in and fan_out as torch.nn.init._calculate_fan_in_and_fan_out computes them.
std::pair<double, double> Fans(const torch::Tensor& weight) {
  double receptive = 1;
  for (int64_t d = 2; d < weight.dim(); ++d) receptive *= static_cast<double>(weight.size(d));
  return {static_cast<double>(weight.size(1)) * receptive,
          static_cast<double>(weight.size(0)) * receptive};
}

// torch.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu").
void KaimingNormalFanOut(torch::Tensor& w, at::Generator& gen) {
  const double stddev = std::sqrt(2.0) / std::sqrt(Fans(w).second);
  w.normal_(0.0, stddev, gen);
}

// nn.Conv2d / nn.Linear reset_parameters(): kaiming_uniform_(a=sqrt(5)) for the
// weight, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
void PyTorchDefault(torch::Tensor& w, torch::Tensor& b, at::Generator& gen) {
  const double bound = 1.0 / std::sqrt(Fans(w).first);
  w.uniform_(-bound, bound, gen);
  if (b.defined()) b.uniform_(-bound, bound, gen);
}

// torch.nn.init.trunc_normal_(w, mean=0, std=stddev, a=-2, b=2), by the same
// inverse-CDF method PyTorch uses.
void TruncatedNormal(torch::Tensor& w, double stddev, at::Generator& gen) {
  auto norm_cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  const double lo = norm_cdf(-2.0 / stddev), hi = norm_cdf(2.0 / stddev);
  w.uniform_(2 * lo - 1, 2 * hi - 1, gen);
  w.erfinv_().mul_(stddev * std::sqrt(2.0)).clamp_(-2.0, 2.0);
}

void InitConv(torch::Tensor& w, torch::Tensor& b, InitScheme scheme, at::Generator& gen) {
  switch (scheme) {
    case InitScheme::kPyTorchDefault:
      PyTorchDefault(w, b, gen);
      return;
    case InitScheme::kInceptionV3:
      TruncatedNormal(w, 0.1, gen);
      if (b.defined()) b.zero_();
      return;
    case InitScheme::kMobileNetV2:
    case InitScheme::kResNet:
    case InitScheme::kVgg:
      KaimingNormalFanOut(w, gen);
      if (b.defined()) b.zero_();
      return;
  }
}

void InitLinear(torch::Tensor& w, torch::Tensor& b, InitScheme scheme, at::Generator& gen) {
  switch (scheme) {
    case InitScheme::kPyTorchDefault:
    case InitScheme::kResNet:
      PyTorchDefault(w, b, gen);
      return;
    case InitScheme::kInceptionV3: {
      TruncatedNormal(w, 0.1, gen);
      const double bound = 1.0 / std::sqrt(Fans(w).first);  // Bias keeps nn.Linear's default.
      if (b.defined()) b.uniform_(-bound, bound, gen);
      return;
    }
    case InitScheme::kMobileNetV2:
    case InitScheme::kVgg:
      w.normal_(0.0, 0.01, gen);
      if (b.defined()) b.zero_();
      return;
  }
}

}  // namespace

uint64_t BlockSeed(uint64_t seed, int64_t block_index) {
  // SplitMix64 (Steele et al., 2014) over seed and index: nearby seeds and
  // indices give unrelated generator states.
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (static_cast<uint64_t>(block_index) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void InitializeBlock(BlockImpl& block, InitScheme scheme, at::Generator generator) {
  torch::NoGradGuard no_grad;
  for (const auto& module : block.modules(/*include_self=*/false)) {
    if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(module.get())) {
      InitConv(conv->weight, conv->bias, scheme, generator);
    } else if (auto* linear = dynamic_cast<torch::nn::LinearImpl*>(module.get())) {
      InitLinear(linear->weight, linear->bias, scheme, generator);
    } else if (auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(module.get())) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
    }
  }
}

}  // namespace paretopipe
