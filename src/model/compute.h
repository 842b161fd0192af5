// What one pipeline stage computes on each batch: a range of a zoo model's
// blocks (Segment, model/segment.h) or a range of a TorchScript model's graph
// (ScriptStageCompute, model/torchscript.h). The stage runtime sees only this.
// Torch-facing: include only from .cc files.
//
// Thread safety: Run() from one thread at a time.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "util/status.h"

namespace paretopipe {

class StageCompute {
 public:
  virtual ~StageCompute() = default;

  // Computes the stage's part of the model on `input` in inference mode.
  // Returns the output (on the compute's device), or an error naming what
  // could not take the input.
  virtual Result<torch::Tensor> Run(const torch::Tensor& input) = 0;

  // The same with every tensor crossing into the stage, returning every
  // tensor crossing out of it (several where a cut carries a skip
  // connection). The default takes and returns one.
  virtual Result<std::vector<torch::Tensor>> RunAll(const std::vector<torch::Tensor>& inputs) {
    if (inputs.size() != 1) {
      return Status::InvalidArgument("this stage takes one tensor, got " +
                                     std::to_string(inputs.size()));
    }
    Result<torch::Tensor> out = Run(inputs[0]);
    if (!out.ok()) return out.status();
    return std::vector<torch::Tensor>{std::move(out).value()};
  }
};

}  // namespace paretopipe
