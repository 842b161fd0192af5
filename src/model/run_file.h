// Running a block range on a tensor file, for `paretopipe run`: the way a
// Python user feeds ParetoPipe a tensor and checks its output. Without
// LibTorch headers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/zoo.h"
#include "util/status.h"

namespace paretopipe {

struct RunFileRequest {
  ModelSpec model;
  int64_t from = 0;   // First block.
  int64_t to = -1;    // One past the last block; -1: the model's end.
  std::string input_path;   // torch.save(tensor) file.
  std::string output_path;  // Written like torch.save(tensor).
  std::string device = "cpu";
  int threads = 0;    // 0: every CPU this process may use.
  // TorchScript models starting after block 0: the image side their blocks
  // were found at (`cuts --input-size`); 0: 224.
  int64_t input_side_px = 0;
};

struct RunFileResult {
  int64_t from = 0, to = 0;  // The block range that ran, resolved.
  std::vector<int64_t> input_shape, output_shape;
  double compute_ms = 0;  // Steady-clock time of the blocks' forward, one cold run.
};

// Reads the input tensor, runs blocks [from, to) on it and writes the output (on the CPU).
Result<RunFileResult> RunOnTensorFile(const RunFileRequest& request);

}  // namespace paretopipe
