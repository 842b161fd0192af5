// What crosses each cut of a model: the activation shape and bytes, and the
// share of the model's multiply-accumulates before the cut. Without LibTorch
// headers, for the CLI and the layers above.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/zoo.h"
#include "util/status.h"

namespace paretopipe {

struct BlockAnalysis {
  int64_t index = 0;
  std::string name;
  std::vector<int64_t> output_shape;  // At batch 1.
  // A TorchScript cut inside a skip connection carries several tensors: the
  // shapes (batch 1) of the second and later ones; output_bytes counts all.
  std::vector<std::vector<int64_t>> extra_output_shapes;
  int64_t output_bytes = 0;           // fp32, at batch 1.
  int64_t macs = 0;                   // Multiply-accumulates at batch 1 (see flop_counter.h).
  int64_t parameters = 0;
};

struct ModelAnalysis {
  ZooEntry entry;
  int64_t num_classes = 0;
  int64_t input_side_px = 0;  // Square input side the analysis ran at.
  std::vector<BlockAnalysis> blocks;
  int64_t total_macs = 0;
  int64_t total_parameters = 0;
  // A TorchScript model's blocks are runs of its graph's nodes: block k is
  // nodes [node_bounds[k], node_bounds[k + 1]). Empty for a zoo model.
  std::vector<int64_t> node_bounds;
};

// Builds the whole model `spec` and runs it once at batch 1 on a
// `input_side_px` x `input_side_px` input (0: the model's nominal size), recording
// each block's output shape, MACs and parameters. Shapes and MACs do not
// depend on the weights, so spec.weights_path is ignored.
Result<ModelAnalysis> AnalyzeModel(const ModelSpec& spec, int64_t input_side_px = 0);

struct CutInfo {
  int64_t cut = 0;                     // Blocks [0, cut) | [cut, n).
  std::string last_block_before;       // Name of block cut - 1.
  std::string first_block_after;       // Name of block cut.
  std::vector<int64_t> shape;          // Activation crossing the cut, at the batch asked for.
  int64_t bytes = 0;                   // fp32 bytes of that activation.
  int64_t macs_before = 0;             // MACs of blocks [0, cut) at the batch asked for.
  double macs_share_before = 0;        // macs_before / total MACs, in [0, 1].
};

// Every valid cut 1 .. n-1 at batch `batch`. Activation bytes and MACs scale
// exactly linearly with the batch for these models.
std::vector<CutInfo> CutsAtBatch(const ModelAnalysis& analysis, int64_t batch);

}  // namespace paretopipe
