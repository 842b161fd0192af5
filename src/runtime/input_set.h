// An input set: the images a source stage feeds the pipeline instead of
// synthetic ones (a dataset, already transformed to the model's input), as
// one float32 N x C x H x W tensor on the CPU, named by the SHA-256 of its
// bytes so a worker keeps it across runs and the orchestrator sends it once.
//
// Owns: the tensor and which images make batch b. Must not touch: files,
// labels (the orchestrator keeps those), the network.
// Thread safety: immutable once made; share it through shared_ptr<const>.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace paretopipe {

struct InputSet {
  torch::Tensor images;  // N x C x H x W, float32, contiguous, CPU.
  std::string digest;    // Sha256OfBytes of images' bytes.

  int64_t count() const { return images.defined() ? images.size(0) : 0; }

  // Batch `batch_id` of `batch_size` images: images batch_id * batch_size + j
  // (j < batch_size), modulo count(). A view when they are consecutive,
  // a copy when the batch wraps around the end.
  // REQUIRES: count() >= 1, batch_size >= 1.
  torch::Tensor Batch(int64_t batch_id, int64_t batch_size) const;
};

// The source's synthetic input of batch `batch_id` in a pass of `batches`:
// uniform [0, 1) of `shape`, from seed input_seed + (batch_id modulo
// min(batches, 4)): enough distinct batches that none repeats its neighbour.
torch::Tensor SyntheticBatch(uint64_t input_seed, int64_t batch_id, int batches,
                             const std::vector<int64_t>& shape);

// Wraps `images` (made contiguous, float32) with its digest.
// InvalidArgument unless it is a 4-D float32 tensor with at least one image.
Result<InputSet> MakeInputSet(torch::Tensor images);

}  // namespace paretopipe
