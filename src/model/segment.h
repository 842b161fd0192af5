// A Segment is a contiguous range of a model's blocks, materialized on one
// device: what one pipeline stage computes. Only the blocks in its range are
// built, so a stage holding VGG-16's first convolutions never allocates its
// 400 MB classifier. Torch-facing: include only from .cc files.
//
// Thread safety: Run() may be called from one thread at a time. Not copyable.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/compute.h"
#include "model/model.h"
#include "model/tensor_file.h"
#include "model/torch_util.h"
#include "util/status.h"

namespace paretopipe {

// Blocks [begin, end) of a model.
struct BlockRange {
  int64_t begin = 0;
  int64_t end = 0;
};

class Segment : public StageCompute {
 public:
  // Builds blocks `range` of model `spec` on `device` in inference (eval)
  // mode. With spec.weights_path set, loads the tensors of those blocks from
  // that state dict (keys of other blocks are ignored; unknown keys, missing
  // keys and shape mismatches are errors). Otherwise initializes each block
  // from BlockSeed(spec.seed, index).
  // `range.end` = -1 means the model's last block.
  static Result<std::unique_ptr<Segment>> Build(const ModelSpec& spec, BlockRange range,
                                                const std::string& device = "cpu");

  // Like Build, with the weights given in memory (e.g. received from the
  // orchestrator) instead of a file; `weights_name` names them in errors.
  // `weights` may hold keys of other blocks; they are ignored.
  static Result<std::unique_ptr<Segment>> BuildWithWeights(const ModelSpec& spec, BlockRange range,
                                                           const NamedTensors& weights,
                                                           const std::string& weights_name,
                                                           const std::string& device = "cpu");

  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  // Runs every block of the segment on `input` (moved to the segment's
  // device) in inference mode. Returns the output on the segment's device, or
  // an error naming the blocks and the shape they could not take.
  Result<torch::Tensor> Run(const torch::Tensor& input) override;

  // Runs blocks [from, to) only. REQUIRES: range().begin <= from <= to <= range().end.
  Result<torch::Tensor> RunBlocks(int64_t from, int64_t to, const torch::Tensor& input);

  const ModelDef& def() const { return def_; }
  BlockRange range() const { return range_; }
  torch::Device device() const { return device_; }

  // Checks `range` against `def`'s blocks, replacing end = -1 by the model's
  // last block. InvalidArgument naming the range and the model's blocks when
  // begin < 0, begin >= end or end is past the last block: e.g. a control
  // message's block range, checked before any weights are asked for.
  static Status CheckRange(const ModelDef& def, BlockRange* range);

  // Parameters (not buffers) of the materialized blocks, as torchvision counts them.
  int64_t ParameterCount() const;

  // Parameters of block `index` alone. REQUIRES: index inside range().
  int64_t BlockParameterCount(int64_t index) const;

  // (torchvision state-dict key, tensor) of every parameter and buffer of the
  // materialized blocks. The tensors alias the segment's weights.
  std::vector<std::pair<std::string, torch::Tensor>> StateTensors() const;

 private:
  static Result<std::unique_ptr<Segment>> Materialize(const ModelSpec& spec, BlockRange range,
                                                      const NamedTensors* weights,
                                                      const std::string& weights_name,
                                                      const std::string& device);
  Segment(ModelDef def, BlockRange range, torch::Device device, std::vector<Block> blocks);

  ModelDef def_;
  BlockRange range_;
  torch::Device device_;
  std::vector<Block> blocks_;  // blocks_[i] is block range_.begin + i.
};

}  // namespace paretopipe
