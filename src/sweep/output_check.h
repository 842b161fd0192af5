// `sweep --verify`: every run's outputs compared with the whole model's.
// The orchestrator runs the whole model once per distinct input batch (the
// source cycles through at most 4 synthetic batches, or through the input
// set) and compares the sink's output of every batch with it.
//
// Owns: the whole model on the orchestrator and the expected outputs. Must
// not touch: the network, the store.
// Thread safety: one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/stage.h"
#include "util/status.h"

namespace paretopipe {

class StageCompute;
struct InputSet;

// How far a run's outputs are from the whole model's.
struct OutputComparison {
  int64_t batches = 0;       // Outputs compared.
  double max_abs_diff = 0;   // Largest |pipeline - whole| over every value.
  double max_abs_value = 0;  // Largest |whole|, for scale.
  bool identical() const { return max_abs_diff == 0; }
};

class OutputCheck {
 public:
  // `whole` computes the whole model. Inputs: `inputs` when not null, else
  // the synthetic batches of `input_seed`.
  OutputCheck(std::shared_ptr<StageCompute> whole, std::shared_ptr<const InputSet> inputs,
              uint64_t input_seed);
  ~OutputCheck();

  // Compares the sink's outputs of a pass of `batches` batches of
  // `input_shape` (batch included) with the whole model's outputs.
  Result<OutputComparison> Compare(const std::vector<KeptOutput>& outputs, int batches,
                                   const std::vector<int64_t>& input_shape);

  const std::shared_ptr<StageCompute>& whole() const { return whole_; }

 private:
  std::shared_ptr<StageCompute> whole_;
  std::shared_ptr<const InputSet> inputs_;
  uint64_t input_seed_;
  // Expected output per (distinct input, batch size), computed once.
  std::map<std::pair<int64_t, int64_t>, std::vector<float>> expected_;
};

}  // namespace paretopipe
