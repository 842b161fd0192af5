// Inception v3 (Szegedy et al., 2016) as torchvision.models.inception_v3
// builds it, without the auxiliary classifier (training only; its weights are
// skipped when loading) and without transform_input (see docs/models.md). Blocks: its 20
// top-level children before `fc` (Conv2d_1a_3x3 .. dropout); flatten and fc
// ride with the last.
#include "model/layers.h"
#include "model/model.h"

namespace paretopipe {
namespace {

namespace F = torch::nn::functional;

// torchvision.models.inception.BasicConv2d: conv (no bias), bn (eps 0.001), relu.
class BasicConv2dImpl : public torch::nn::Module {
 public:
  BasicConv2dImpl(int64_t in, int64_t out, torch::ExpandingArray<2> kernel,
                  torch::ExpandingArray<2> padding = 0, int64_t stride = 1) {
    conv_ = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                                          .stride(stride)
                                                          .padding(padding)
                                                          .bias(false)));
    bn_ = register_module("bn", layers::BatchNorm(out, 0.001));
  }
  torch::Tensor forward(torch::Tensor x) { return torch::relu(bn_->forward(conv_->forward(x))); }

 private:
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(BasicConv2d);

torch::Tensor AvgPool3x3(const torch::Tensor& x) {
  return F::avg_pool2d(x, F::AvgPool2dFuncOptions(3).stride(1).padding(1));
}
torch::Tensor MaxPool3x3s2(const torch::Tensor& x) {
  return F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2));
}

// Registers a BasicConv2d as child `name` and returns it.
// (A direct constructor call, so braced kernel sizes like {1, 7} work.)
#define PP_CONV(name, ...) \
  name = register_module(#name, BasicConv2d(std::shared_ptr<BasicConv2dImpl>(new BasicConv2dImpl(__VA_ARGS__))))

class InceptionAImpl : public torch::nn::Module {
 public:
  InceptionAImpl(int64_t in, int64_t pool_features) {
    PP_CONV(branch1x1, in, 64, 1);
    PP_CONV(branch5x5_1, in, 48, 1);
    PP_CONV(branch5x5_2, 48, 64, 5, 2);
    PP_CONV(branch3x3dbl_1, in, 64, 1);
    PP_CONV(branch3x3dbl_2, 64, 96, 3, 1);
    PP_CONV(branch3x3dbl_3, 96, 96, 3, 1);
    PP_CONV(branch_pool, in, pool_features, 1);
  }
  torch::Tensor forward(torch::Tensor x) {
    return torch::cat({branch1x1(x), branch5x5_2(branch5x5_1(x)),
                       branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x))),
                       branch_pool(AvgPool3x3(x))},
                      1);
  }

 private:
  BasicConv2d branch1x1{nullptr}, branch5x5_1{nullptr}, branch5x5_2{nullptr},
      branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr},
      branch_pool{nullptr};
};
TORCH_MODULE(InceptionA);

class InceptionBImpl : public torch::nn::Module {
 public:
  explicit InceptionBImpl(int64_t in) {
    PP_CONV(branch3x3, in, 384, 3, 0, 2);
    PP_CONV(branch3x3dbl_1, in, 64, 1);
    PP_CONV(branch3x3dbl_2, 64, 96, 3, 1);
    PP_CONV(branch3x3dbl_3, 96, 96, 3, 0, 2);
  }
  torch::Tensor forward(torch::Tensor x) {
    return torch::cat({branch3x3(x), branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x))),
                       MaxPool3x3s2(x)},
                      1);
  }

 private:
  BasicConv2d branch3x3{nullptr}, branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr},
      branch3x3dbl_3{nullptr};
};
TORCH_MODULE(InceptionB);

class InceptionCImpl : public torch::nn::Module {
 public:
  InceptionCImpl(int64_t in, int64_t c7) {
    PP_CONV(branch1x1, in, 192, 1);
    PP_CONV(branch7x7_1, in, c7, 1);
    PP_CONV(branch7x7_2, c7, c7, {1, 7}, {0, 3});
    PP_CONV(branch7x7_3, c7, 192, {7, 1}, {3, 0});
    PP_CONV(branch7x7dbl_1, in, c7, 1);
    PP_CONV(branch7x7dbl_2, c7, c7, {7, 1}, {3, 0});
    PP_CONV(branch7x7dbl_3, c7, c7, {1, 7}, {0, 3});
    PP_CONV(branch7x7dbl_4, c7, c7, {7, 1}, {3, 0});
    PP_CONV(branch7x7dbl_5, c7, 192, {1, 7}, {0, 3});
    PP_CONV(branch_pool, in, 192, 1);
  }
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor b7 = branch7x7_3(branch7x7_2(branch7x7_1(x)));
    torch::Tensor dbl = branch7x7dbl_1(x);
    dbl = branch7x7dbl_5(branch7x7dbl_4(branch7x7dbl_3(branch7x7dbl_2(dbl))));
    return torch::cat({branch1x1(x), b7, dbl, branch_pool(AvgPool3x3(x))}, 1);
  }

 private:
  BasicConv2d branch1x1{nullptr}, branch7x7_1{nullptr}, branch7x7_2{nullptr},
      branch7x7_3{nullptr}, branch7x7dbl_1{nullptr}, branch7x7dbl_2{nullptr},
      branch7x7dbl_3{nullptr}, branch7x7dbl_4{nullptr}, branch7x7dbl_5{nullptr},
      branch_pool{nullptr};
};
TORCH_MODULE(InceptionC);

class InceptionDImpl : public torch::nn::Module {
 public:
  explicit InceptionDImpl(int64_t in) {
    PP_CONV(branch3x3_1, in, 192, 1);
    PP_CONV(branch3x3_2, 192, 320, 3, 0, 2);
    PP_CONV(branch7x7x3_1, in, 192, 1);
    PP_CONV(branch7x7x3_2, 192, 192, {1, 7}, {0, 3});
    PP_CONV(branch7x7x3_3, 192, 192, {7, 1}, {3, 0});
    PP_CONV(branch7x7x3_4, 192, 192, 3, 0, 2);
  }
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor b7 = branch7x7x3_4(branch7x7x3_3(branch7x7x3_2(branch7x7x3_1(x))));
    return torch::cat({branch3x3_2(branch3x3_1(x)), b7, MaxPool3x3s2(x)}, 1);
  }

 private:
  BasicConv2d branch3x3_1{nullptr}, branch3x3_2{nullptr}, branch7x7x3_1{nullptr},
      branch7x7x3_2{nullptr}, branch7x7x3_3{nullptr}, branch7x7x3_4{nullptr};
};
TORCH_MODULE(InceptionD);

class InceptionEImpl : public torch::nn::Module {
 public:
  explicit InceptionEImpl(int64_t in) {
    PP_CONV(branch1x1, in, 320, 1);
    PP_CONV(branch3x3_1, in, 384, 1);
    PP_CONV(branch3x3_2a, 384, 384, {1, 3}, {0, 1});
    PP_CONV(branch3x3_2b, 384, 384, {3, 1}, {1, 0});
    PP_CONV(branch3x3dbl_1, in, 448, 1);
    PP_CONV(branch3x3dbl_2, 448, 384, 3, 1);
    PP_CONV(branch3x3dbl_3a, 384, 384, {1, 3}, {0, 1});
    PP_CONV(branch3x3dbl_3b, 384, 384, {3, 1}, {1, 0});
    PP_CONV(branch_pool, in, 192, 1);
  }
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor b3 = branch3x3_1(x);
    b3 = torch::cat({branch3x3_2a(b3), branch3x3_2b(b3)}, 1);
    torch::Tensor dbl = branch3x3dbl_2(branch3x3dbl_1(x));
    dbl = torch::cat({branch3x3dbl_3a(dbl), branch3x3dbl_3b(dbl)}, 1);
    return torch::cat({branch1x1(x), b3, dbl, branch_pool(AvgPool3x3(x))}, 1);
  }

 private:
  BasicConv2d branch1x1{nullptr}, branch3x3_1{nullptr}, branch3x3_2a{nullptr},
      branch3x3_2b{nullptr}, branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr},
      branch3x3dbl_3a{nullptr}, branch3x3dbl_3b{nullptr}, branch_pool{nullptr};
};
TORCH_MODULE(InceptionE);

#undef PP_CONV

}  // namespace

ModelDef DefineInceptionV3(int64_t num_classes) {
  using torch::nn::AnyModule;
  auto max_pool = [] {
    return AnyModule(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2)));
  };
  const std::vector<Child> children = {
      {"Conv2d_1a_3x3", [] { return AnyModule(BasicConv2d(3, 32, 3, 0, 2)); }},
      {"Conv2d_2a_3x3", [] { return AnyModule(BasicConv2d(32, 32, 3)); }},
      {"Conv2d_2b_3x3", [] { return AnyModule(BasicConv2d(32, 64, 3, 1)); }},
      {"maxpool1", max_pool},
      {"Conv2d_3b_1x1", [] { return AnyModule(BasicConv2d(64, 80, 1)); }},
      {"Conv2d_4a_3x3", [] { return AnyModule(BasicConv2d(80, 192, 3)); }},
      {"maxpool2", max_pool},
      {"Mixed_5b", [] { return AnyModule(InceptionA(192, 32)); }},
      {"Mixed_5c", [] { return AnyModule(InceptionA(256, 64)); }},
      {"Mixed_5d", [] { return AnyModule(InceptionA(288, 64)); }},
      {"Mixed_6a", [] { return AnyModule(InceptionB(288)); }},
      {"Mixed_6b", [] { return AnyModule(InceptionC(768, 128)); }},
      {"Mixed_6c", [] { return AnyModule(InceptionC(768, 160)); }},
      {"Mixed_6d", [] { return AnyModule(InceptionC(768, 160)); }},
      {"Mixed_6e", [] { return AnyModule(InceptionC(768, 192)); }},
      {"Mixed_7a", [] { return AnyModule(InceptionD(768)); }},
      {"Mixed_7b", [] { return AnyModule(InceptionE(1280)); }},
      {"Mixed_7c", [] { return AnyModule(InceptionE(2048)); }},
      {"avgpool", [] {
         return AnyModule(torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions(1)));
       }},
      {"dropout", [] { return AnyModule(torch::nn::Dropout(0.5)); }},
  };

  ModelDef def;
  def.entry = {"inception_v3",
               "Inception v3 (torchvision, no aux logits); blocks: Conv2d_1a_3x3..dropout, "
               "flatten + fc with the last",
               3, 299, 75, 0};
  def.init = InitScheme::kInceptionV3;
  // torchvision builds the auxiliary classifier by default and its pretrained
  // state dicts carry it; it only runs in training, so inference skips it.
  def.skipped_state_prefixes = {"AuxLogits"};
  def.blocks = BlocksOfChildren(children, {" +fc", {"fc"}, [num_classes](BlockImpl& b) {
                                             b.Append("", AnyModule(torch::nn::Flatten()));
                                             b.Append("fc", AnyModule(torch::nn::Linear(2048, num_classes)));
                                           }});
  return def;
}

}  // namespace paretopipe
