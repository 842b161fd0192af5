// A model as ParetoPipe sees it: a chain of blocks, each owning a contiguous
// run of torchvision's modules. Cut index k puts blocks [0, k) on one side and
// [k, n) on the other. Torch-facing: include only from .cc files.
//
// A block is built on its own, with its own random generator seeded from the
// model seed and the block index, so a stage can materialize just its blocks
// and get the same weights the whole model would have.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "model/zoo.h"

namespace paretopipe {

// One block of a chain model: parts applied in order. Each part carries the
// state-dict prefix torchvision gives it ("features.3", "layer1.0", "fc"), so
// the state-dict keys of a model equal torchvision's exactly.
class BlockImpl : public torch::nn::Module {
 public:
  // Appends `part`. Its parameters and buffers appear in the state dict as
  // "`state_prefix`.<its own key>"; parameterless parts pass "".
  void Append(const std::string& state_prefix, torch::nn::AnyModule part);

  torch::Tensor forward(torch::Tensor x);

  // (torchvision state-dict key, tensor) of every parameter and buffer, in
  // registration order. The tensors alias the module's storage.
  std::vector<std::pair<std::string, torch::Tensor>> StateTensors() const;

 private:
  struct Part {
    std::string state_prefix;
    torch::nn::AnyModule module;
  };
  std::vector<Part> parts_;
};
TORCH_MODULE(Block);

// How a block's parameters are initialized, following torchvision's own
// per-architecture init so activations keep realistic magnitudes.
enum class InitScheme {
  kPyTorchDefault,  // nn.Module defaults: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (AlexNet).
  kMobileNetV2,     // conv: kaiming normal fan_out; linear: N(0, 0.01), bias 0.
  kResNet,          // conv: kaiming normal fan_out (relu); linear: default.
  kVgg,             // conv: kaiming normal fan_out (relu), bias 0; linear: N(0, 0.01), bias 0.
  kInceptionV3,     // conv and linear weights: truncated N(0, 0.1) in [-2, 2].
};

struct BlockDef {
  std::string name;                         // For humans: "features.3", "layer2.0".
  std::vector<std::string> state_prefixes;  // State-dict prefixes this block owns.
  std::function<Block()> build;             // Builds the block with PyTorch's default init.
};

// The definition of a chain model. Cheap: no block is built until asked.
struct ModelDef {
  ZooEntry entry;
  InitScheme init = InitScheme::kPyTorchDefault;
  std::vector<BlockDef> blocks;
  // State-dict prefixes of torchvision modules this model leaves out and whose
  // keys loading skips (Inception v3's training-only "AuxLogits").
  std::vector<std::string> skipped_state_prefixes;
};

// A child module of a torchvision model: its state-dict prefix ("features.3",
// "Mixed_5b") and how to build it.
struct Child {
  std::string prefix;
  std::function<torch::nn::AnyModule()> make;
};

// What rides with the last block after its child: pooling, flatten, classifier.
struct Head {
  std::string label;                        // Appended to the last block's name: " +pool+classifier".
  std::vector<std::string> state_prefixes;  // "classifier", "fc".
  std::function<void(BlockImpl&)> append;   // Appends the head's parts.
};

// One block per child, in order; `head` rides with the last.
std::vector<BlockDef> BlocksOfChildren(const std::vector<Child>& children, const Head& head);

// Returns the definition of zoo model `spec.name` with `spec.num_classes`.
Result<ModelDef> DefineModel(const ModelSpec& spec);

// Initializes every conv, batch-norm and linear layer inside `block` by
// `scheme`, drawing from `generator` only (never from the global generator).
void InitializeBlock(BlockImpl& block, InitScheme scheme, at::Generator generator);

// The seed of block `block_index` for model seed `seed` (SplitMix64 of both).
uint64_t BlockSeed(uint64_t seed, int64_t block_index);

// The per-architecture definitions (zoo_*.cc); entry.num_blocks is left for
// DefineModel to fill in from the blocks.
ModelDef DefineMobileNetV2(int64_t num_classes);
ModelDef DefineResNet18(int64_t num_classes);
ModelDef DefineResNet50(int64_t num_classes);
ModelDef DefineVgg16(int64_t num_classes);
ModelDef DefineAlexNet(int64_t num_classes);
ModelDef DefineInceptionV3(int64_t num_classes);

}  // namespace paretopipe
